# syntax=docker/dockerfile:1
# hookrelay container image: built with the same install script as CI, run on a slim image that
# holds only the shared libraries. docs/deployment.md explains running it.
#
#   docker build -t hookrelay .
#   docker run -d --name hookrelay -p 8080:8080 -v hookrelay-state:/var/lib/hookrelay \
#     --stop-timeout 15 --env-file hookrelay.env hookrelay

FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
# Only what the build and `cmake --install` read: no local build trees, tests or benchmarks.
COPY CMakeLists.txt CMakePresets.json ./
COPY include include
COPY src src
COPY config config
COPY docs docs
COPY systemd systemd
# The cache mount keeps ccache's objects between image builds (BuildKit).
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DHOOKRELAY_BUILD_TESTS=OFF -DHOOKRELAY_BUILD_BENCH=OFF \
 && cmake --build build --target hookrelay \
 && cmake --install build --strip --prefix /out

FROM debian:bookworm-slim
COPY scripts/install-deps.sh /tmp/install-deps.sh
# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it and volume ownership is stable.
RUN /tmp/install-deps.sh --runtime && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh \
 && groupadd --system --gid 10001 hookrelay \
 && useradd --system --uid 10001 --gid hookrelay --home-dir /var/lib/hookrelay --no-create-home \
      --shell /usr/sbin/nologin hookrelay \
 && mkdir -p /var/lib/hookrelay /etc/hookrelay \
 && chown hookrelay:hookrelay /var/lib/hookrelay && chmod 0700 /var/lib/hookrelay
COPY --from=build /out/bin/hookrelay /usr/local/bin/hookrelay
# The example config, adapted to the container: the webhook listener faces the container network
# and the store goes to the volume. The admin listener keeps its default, 127.0.0.1:9090: health
# checks run inside the container, and the admin API is not for the public. The greps fail the
# build if the example config changes shape and a sed no longer applies.
COPY config/hookrelay.yaml /etc/hookrelay/hookrelay.yaml
RUN sed -i -e 's/^listen: 127\.0\.0\.1:8080$/listen: 0.0.0.0:8080/' \
      -e 's#^state_dir: \./var$#state_dir: /var/lib/hookrelay#' /etc/hookrelay/hookrelay.yaml \
 && grep -q '^listen: 0\.0\.0\.0:8080$' /etc/hookrelay/hookrelay.yaml \
 && grep -q '^state_dir: /var/lib/hookrelay$' /etc/hookrelay/hookrelay.yaml
USER 10001:10001
VOLUME ["/var/lib/hookrelay"]
# Publish 8080 only. 9090 is the admin listener: it answers on the container's loopback unless the
# config sets admin.listen to 0.0.0.0:9090 (see docs/deployment.md before doing that).
EXPOSE 8080 9090
# No curl in the slim image: bash's /dev/tcp asks the admin listener's /healthz (no token needed).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9090 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r line <&3 && [[ $line == *' 200 '* ]]"]
# hookrelay runs in the foreground as PID 1 and installs its own SIGTERM, SIGINT and SIGHUP
# handlers (the kernel gives PID 1 no default signal actions), and it starts no child processes to
# reap, so no init such as tini is needed. docker stop's SIGTERM starts a graceful stop bounded by
# server.shutdown_grace (8s); give docker stop more than that (--stop-timeout 15).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/hookrelay"]
CMD ["run", "--config", "/etc/hookrelay/hookrelay.yaml"]
