#!/usr/bin/env bash
# Build the kiosk filter as a proxy-wasm module: wasm32-wasip1, profile `wasm`
# (release + panic=abort + LTO), then wasm-opt. Writes dist/kiosk_filter.wasm.
#   usage: scripts/build-filter.sh [--dry-run]
set -euo pipefail
cd "$(dirname "$0")/.."
run() { echo "+ $*"; if [[ "${DRY_RUN:-0}" != 1 ]]; then "$@"; fi; }
[[ "${1:-}" == "--dry-run" ]] && DRY_RUN=1

out=dist/kiosk_filter.wasm
built="${CARGO_TARGET_DIR:-target}/wasm32-wasip1/wasm/kiosk_filter.wasm"
# shellcheck source=scripts/progress.sh
source scripts/progress.sh
with_progress "building the filter (wasm32-wasip1, release with LTO)" 90 \
  run cargo build --quiet -p kiosk-filter --target wasm32-wasip1 --profile wasm
run mkdir -p dist
if command -v wasm-opt >/dev/null; then
  run wasm-opt -O3 --strip-debug --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
    --enable-mutable-globals "$built" -o "$out"
else
  echo "warning: wasm-opt not found (run scripts/setup.sh); copying the unoptimised module" >&2
  run cp "$built" "$out"
fi
[[ "${DRY_RUN:-0}" == 1 ]] || echo "built $out ($(stat -c %s "$out") bytes)"
