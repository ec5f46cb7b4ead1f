#!/usr/bin/env bash
# Benchmarks: figures, not tests (nothing asserts a time). Runs
#   - the native decoder throughput (criterion, filter/benches/decode.rs);
#   - memory per connection from the core's accounting (filter/benches/memory.rs);
#   - the filter's cost in a real Envoy against the same listener with tcp_proxy only,
#     one worker per Envoy, interleaved runs, with two drivers: replayed Kafka frames
#     against a sink answering with recorded responses (harness/benches/envoy_replay.rs,
#     also the added latency p50/p99), and librdkafka against Apache Kafka 4.3.1
#     (harness/benches/envoy_kafka.rs);
#   - connection set-up time through a sidecar with the filter's SASL (SCRAM-SHA-512, PLAIN)
#     and without, against Apache Kafka 4.3.1, p50/p99/mean
#     (harness/benches/kafka_auth_setup.rs, its own table bench/results/kafka-auth-setup.md);
#   - the produce cases again with records_by_schema on (each record's value prefix read);
#   - the module size after wasm-opt;
#   - kiosk against the peer Kafka proxies Kroxylicious 0.12.0 and Shotover 0.7.4 and
#     Envoy tcp_proxy, side by side against Apache Kafka 4.3.1 (harness/benches/peers.rs,
#     about 12 minutes; the peers are built once by scripts/bench-peers-setup.sh, about 6
#     minutes the first time)
# and writes bench/results/latest.md (table with the date and the machine) and
# bench/results/latest.png (plot), bench/results/peers.md and peers.png, with the raw
# outputs beside them.
# usage: scripts/bench.sh [peers]   (peers: only the peer comparison)
#   (KIOSK_BENCH_CASES, KIOSK_BENCH_KAFKA_MB, KIOSK_BENCH_CONNECTIONS, KIOSK_BENCH_PEERS_RUNS,
#   KIOSK_BENCH_PEERS_MB, KIOSK_BENCH_PEERS_DRIVERS, KIOSK_BENCH_PEERS: see the benches)
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }
only="${1:-all}"
[[ "$only" == all || "$only" == peers ]] || { echo "usage: scripts/bench.sh [peers]" >&2; exit 2; }

scripts/setup.sh >/dev/null
scripts/build-filter.sh
out=bench/results
mkdir -p "$out"

peers() {
  step "peer proxies: set-up (built once, cached in \$KIOSK_CACHE)"
  scripts/bench-peers-setup.sh
  step "kiosk against Kroxylicious 0.12.0, Shotover 0.7.4 and tcp_proxy: Apache Kafka 4.3.1 (about 12 minutes)"
  cargo bench --quiet -p kiosk-harness --bench peers -- \
    --markdown "$PWD/$out/peers-tables.md" --json "$PWD/$out/peers.json" | tee "$out/peers.txt"
  .venv/bin/python scripts/bench-peers-report.py "$out"
}
if [[ "$only" == peers ]]; then
  peers
  exit 0
fi
step "decoder throughput (criterion)"
cargo bench --quiet -p kiosk-filter --bench decode -- --warm-up-time 1 --measurement-time 3 | tee "$out/decode.txt"
step "memory per connection"
cargo bench --quiet -p kiosk-filter --bench memory | tee "$out/memory.txt"
step "the filter in Envoy against tcp_proxy alone: replayed frames"
cargo bench --quiet -p kiosk-harness --bench envoy_replay -- --json "$PWD/$out/envoy.json" | tee "$out/envoy.txt"
step "the same, produce cases with records_by_schema on (bench/results/records-by-schema.md)"
KIOSK_BENCH_CASES=produce KIOSK_BENCH_PLUGIN_CONFIG='{"records_by_schema":true}' \
  cargo bench --quiet -p kiosk-harness --bench envoy_replay | tee "$out/envoy-records-by-schema.txt"
step "the filter in Envoy against tcp_proxy alone: librdkafka against Apache Kafka 4.3.1"
cargo bench --quiet -p kiosk-harness --bench envoy_kafka -- --json "$PWD/$out/kafka.json" | tee "$out/kafka.txt"
step "connection set-up with the filter's SASL and without: Apache Kafka 4.3.1"
cargo bench --quiet -p kiosk-harness --bench kafka_auth_setup -- --markdown "$PWD/$out/kafka-auth-setup.md"
step "report"
.venv/bin/python scripts/bench-report.py "$out" dist/kiosk_filter.wasm
peers
