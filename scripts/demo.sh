#!/usr/bin/env bash
# Set up, build, then run the filter demo: tansu behind a real Envoy sidecar carrying the
# kiosk filter, real librdkafka producers and a consumer group, and print the per-topic
# metrics the sidecar exposes on /stats/prometheus.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build-filter.sh
printf '\n==> run: 4 topics (none/gzip/lz4/zstd) produced and consumed through the sidecar\n'
cargo test --quiet -p kiosk-tests --test envoy_kafka
stats=target/test-runs/kafka/stats.prom
printf '\n==> the sidecar'"'"'s Kafka metrics (%s, logs beside it)\n' "$stats"
grep -E '^(kafka_(produced|fetched)_(records|bytes)_total|kafka_consumer_lag|kafka_requests_total|kafka_produced_batches_total|kiali_ext_tcp_sent_total|istio_tcp_received_bytes_total)' "$stats"
