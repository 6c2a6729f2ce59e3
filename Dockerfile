# hookrelay container image: built with the same install script as CI, run on a slim image that
# holds only the shared libraries. docs/deployment.md explains running it; the image is built and
# tested by scripts/container-test.sh (podman) in CI.
#
#   docker build -t hookrelay .
#   docker run -d --name hookrelay -p 8080:8080 -v hookrelay-state:/var/lib/hookrelay \
#     -v /srv/hookrelay/etc:/etc/hookrelay:ro --env-file hookrelay.env --stop-timeout 15 hookrelay
#
# The image carries no active config: mount a directory holding hookrelay.yaml on /etc/hookrelay
# (config/container/hookrelay.yaml is a starting point; compose.yaml shows the whole set-up).

FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
# Compilers and -dev packages only: no test tools.
RUN scripts/install-deps.sh --build \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
# Only what the build and `cmake --install` read (see also .dockerignore).
COPY CMakeLists.txt CMakePresets.json README.md LICENSE ./
COPY cmake cmake
COPY packaging packaging
COPY include include
COPY src src
COPY config config
COPY docs docs
COPY systemd systemd
COPY contrib contrib
# The profile-guided build's training run and the webhooks it sends.
COPY scripts/pgo-build.sh scripts/pgo-build.sh
COPY tools tools
COPY tests/data tests/data
# The cache mount keeps ccache's objects between image builds (BuildKit, podman/buildah). The
# daemon is built profile-guided (scripts/pgo-build.sh: trained on loopback inside the build).
RUN --mount=type=cache,target=/root/.cache/ccache \
    scripts/pgo-build.sh build -DHOOKRELAY_BUILD_TESTS=OFF -DHOOKRELAY_BUILD_BENCH=OFF \
 && cmake --build build \
 && cmake --install build --strip --prefix /out

FROM debian:bookworm-slim
COPY scripts/install-deps.sh /tmp/install-deps.sh
# The runtime stage cleans apt's lists and caches itself instead of relying on the base image's
# apt configuration to do it. A fixed numeric uid, so Kubernetes' runAsNonRoot can check it and
# volume ownership is stable.
RUN /tmp/install-deps.sh --runtime \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/install-deps.sh \
 && groupadd --system --gid 10001 hookrelay \
 && useradd --system --uid 10001 --gid hookrelay --home-dir /var/lib/hookrelay --no-create-home \
      --shell /usr/sbin/nologin hookrelay \
 && mkdir -p /var/lib/hookrelay /etc/hookrelay \
 && chown hookrelay:hookrelay /var/lib/hookrelay && chmod 0700 /var/lib/hookrelay
COPY --from=build /out/bin/hookrelay /usr/local/bin/hookrelay
# Examples only; the config the daemon runs on is mounted at /etc/hookrelay/hookrelay.yaml.
COPY config/container/hookrelay.yaml /usr/local/share/hookrelay/hookrelay.yaml.example
COPY LICENSE /usr/local/share/doc/hookrelay/LICENSE
USER 10001:10001
VOLUME ["/var/lib/hookrelay"]
# The webhook listener, as config/container/hookrelay.yaml sets it. The admin listener is not
# exposed: it stays on the container's loopback unless your config says otherwise.
EXPOSE 8080
# Liveness: `hookrelay health` reads admin.listen from the mounted config (no port hard-coded
# here) and asks /healthz. Readiness (store writable) is `hookrelay health --ready` (/readyz), for
# orchestrators that probe it separately (docs/deployment.md).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["/usr/local/bin/hookrelay", "health"]
# hookrelay runs in the foreground as PID 1 and installs its own SIGTERM, SIGINT and SIGHUP
# handlers (the kernel gives PID 1 no default signal actions), and it starts no child processes to
# reap, so no init such as tini is needed. docker stop's SIGTERM starts a graceful stop bounded by
# server.shutdown_grace (8s); give docker stop more than that (--stop-timeout 15).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/hookrelay"]
CMD ["run"]
