# syntax=docker/dockerfile:1
# ramgate: built with the pinned toolchain (the rust:1.95.0 image, the version CI uses), run
# as a non-root user on a minimal base.
#   docker build -t ramgate .
#   docker run --rm -p 8080:8080 -p 9901:9901 ramgate        # the demo policies
# In production, mount your ramgate.toml at /etc/ramgate/ramgate.toml and the policy
# directory (a ConfigMap, say) at /etc/ramgate/policies: see config/k8s/. On SIGTERM
# ramgate drains for up to [shutdown] grace_ms (30 s by default): give `docker stop -t`
# (or terminationGracePeriodSeconds) more than that.
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them. The benches are copied
# because the manifest names them (cargo refuses a manifest whose targets are missing);
# they are not built.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir -p src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin ramgate \
    && strip target/release/ramgate

FROM debian:bookworm-slim
# The system trust store, for an https:// upstream (rustls-native-certs reads it).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 65532 --no-create-home --shell /usr/sbin/nologin ramgate
COPY --from=build /src/target/release/ramgate /usr/local/bin/ramgate
COPY config/policies /etc/ramgate/policies
# The demo configuration, but listening on every interface: a container's loopback cannot
# be reached from outside it. The backend stays at 127.0.0.1:9000, i.e. in the same pod.
COPY config/ramgate.toml /etc/ramgate/ramgate.toml
RUN sed -i -e 's/^addr = "127.0.0.1:8080"/addr = "0.0.0.0:8080"/' \
           -e 's/^addr = "127.0.0.1:9901"/addr = "0.0.0.0:9901"/' /etc/ramgate/ramgate.toml \
    && grep -q '^addr = "0.0.0.0:8080"' /etc/ramgate/ramgate.toml \
    && grep -q '^addr = "0.0.0.0:9901"' /etc/ramgate/ramgate.toml
USER 65532:65532
# 8080: the proxy; 9901: admin (/metrics /healthz /readyz /v1/status)
EXPOSE 8080 9901
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ramgate"]
CMD ["serve", "--config", "/etc/ramgate/ramgate.toml"]
