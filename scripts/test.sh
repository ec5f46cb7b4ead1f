#!/usr/bin/env bash
# The test command: set up (idempotent), validate the Kubernetes bundle offline, build the
# filter module, check formatting and lints, run every test (native decoders, then the real
# Envoy + tansu + librdkafka tests), then a short bounded fuzz pass over the filter core.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

scripts/setup.sh
step "Kubernetes bundle, validated offline (charts, strimzi/, istio/, kind scripts)"
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
step "cargo test"
cargo test --workspace
step "fuzz the filter core, 15 s per target (scripts/fuzz.sh)"
scripts/fuzz.sh --seconds 15
