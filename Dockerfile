# syntax=docker/dockerfile:1
# ramgate: build with the pinned toolchain (the rust:1.95.0 image, the version CI uses), run as a non-root user
# on a minimal base. Build: docker build -t ramgate .
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/decide.rs \
    && cargo build --release --locked \
    && rm -rf src benches
COPY src ./src
COPY benches ./benches
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin ramgate \
    && strip target/release/ramgate

FROM debian:bookworm-slim
RUN useradd --system --uid 65532 --no-create-home --shell /usr/sbin/nologin ramgate
COPY --from=build /src/target/release/ramgate /usr/local/bin/ramgate
COPY config/ramgate.toml /etc/ramgate/ramgate.toml
COPY config/policies /etc/ramgate/policies
USER 65532:65532
# 8080: the proxy; 9901: admin (/metrics /healthz /readyz /v1/status)
EXPOSE 8080 9901
VOLUME ["/etc/ramgate/policies"]
ENTRYPOINT ["/usr/local/bin/ramgate"]
CMD ["serve", "--config", "/etc/ramgate/ramgate.toml"]
