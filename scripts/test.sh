#!/usr/bin/env bash
# The test command: set up (idempotent), validate the Kubernetes bundle offline, build the
# filter module, check formatting and lints, run the pure tests (no process started), then
# the live tests (real Envoy, Apache Kafka, Kafka Connect, SecantusDB, Prometheus), then a
# short bounded fuzz pass over the filter core.
set -euo pipefail
cd "$(dirname "$0")/.."
# A CI run builds once, from clean: incremental caches would only take disk.
if [[ -n "${CI:-}" ]]; then export CARGO_INCREMENTAL=0; fi
step() { printf '\n==> %s\n' "$*"; }

scripts/setup.sh
step "Kubernetes bundle, validated offline (charts, strimzi/, istio/, kind scripts)"
cargo build --quiet -p kiosk-services --bin kiosk-services
.venv/bin/python scripts/validate-k8s.py
step "build the filter module"
scripts/build-filter.sh
step "cargo fmt --check"
cargo fmt --all --check
cargo fmt --all --check --manifest-path filter/fuzz/Cargo.toml
step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo clippy -p kiosk-filter --target wasm32-wasip1 --quiet -- -D warnings
cargo clippy --manifest-path filter/fuzz/Cargo.toml --all-targets --quiet -- -D warnings
step "pure tests: unit tests of every crate, the filter core's integration tests"
cargo test --workspace --lib --bins
cargo test -p kiosk-filter --test '*'
step "live tests: real Envoy, Apache Kafka, Kafka Connect, SecantusDB, Prometheus, Chromium"
cargo build --quiet -p kiosk-harness --bin kiosk
# Every live test is #[ignore]d, so that a plain `cargo test` runs only the pure tier.
cargo test -p kiosk-tests -- --include-ignored
cargo test -p kiosk-harness --test live_local_mesh --test live_external_kafka --test live_ingress --test live_dashboard -- --include-ignored
step "fuzz the filter core, 15 s per target (scripts/fuzz.sh)"
scripts/fuzz.sh --seconds 15
