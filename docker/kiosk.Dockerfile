# The kiosk services (rest, mirror, mongo-sink, producer, verify: one `kiosk-services` binary, without the local mesh).
#   docker build -f docker/kiosk.Dockerfile -t localhost:5001/kiosk/kiosk:0.1.0 .
# Built with the services feature `kafka-ssl` (librdkafka with OpenSSL): SASL/SCRAM-SHA-512,
# which the Strimzi KafkaUsers of the chart use, needs it.
ARG RUST_IMAGE=docker.io/library/rust:1.95.0-slim-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev python3 perl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY filter filter
COPY services services
# Every workspace member must be present for cargo; only kiosk-services is built.
COPY harness harness
COPY tests tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p kiosk-services --features kafka-ssl --bin kiosk-services \
 && cp target/release/kiosk-services /usr/local/bin/kiosk-services

FROM ${RUNTIME_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/kiosk-services /usr/local/bin/kiosk-services
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kiosk-services"]
CMD ["--help"]
