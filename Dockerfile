# Build with the same install script as CI, run on a slim image with only the shared libraries.
FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DHOOKRELAY_BUILD_TESTS=OFF \
      -DHOOKRELAY_BUILD_BENCH=OFF \
 && cmake --build build --target hookrelay

FROM debian:bookworm-slim
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN /tmp/install-deps.sh --runtime && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh \
 && useradd --system --home /var/lib/hookrelay --shell /usr/sbin/nologin hookrelay \
 && mkdir -p /var/lib/hookrelay /etc/hookrelay && chown hookrelay /var/lib/hookrelay
COPY --from=build /src/build/hookrelay /usr/local/bin/hookrelay
COPY config/hookrelay.yaml /etc/hookrelay/hookrelay.yaml
# In a container the listener must face the container network, not loopback.
RUN sed -i "s/^listen: 127.0.0.1:8080/listen: 0.0.0.0:8080/" /etc/hookrelay/hookrelay.yaml
USER hookrelay
VOLUME ["/var/lib/hookrelay"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/hookrelay"]
CMD ["run", "--config", "/etc/hookrelay/hookrelay.yaml"]
