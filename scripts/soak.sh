#!/usr/bin/env bash
# The fault drill, again and again: `kiosk up --once --faults` RUNS times in a row (default
# 20), each from a fresh home, each required to pass exactly (every record in `events`,
# `events.mirror` copied once, exactly N documents, dead letters exact; see docs/local-mesh.md,
# "Behaviour, restarts and faults"). Prints each run's result and time, then the total; stops at the first
# failure, naming its log.
#   usage: scripts/soak.sh [RUNS] [-- extra `kiosk up` arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=20
if [[ $# -gt 0 && "$1" != "--" ]]; then runs=$1; shift; fi
[[ "${1:-}" == "--" ]] && shift
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "soak: RUNS must be a positive number, got '$runs'" >&2; exit 2; }
scripts/setup.sh >/dev/null
scripts/build-filter.sh >/dev/null
cargo build --quiet -p kiosk-harness --bin kiosk
homes=$(mktemp -d "${TMPDIR:-/tmp}/kiosk-soak.XXXXXX")
echo "soak: $runs fault drills (600 records each, kiosk up --once --faults --rate 40 $*); homes in $homes"
start=$SECONDS
for i in $(seq 1 "$runs"); do
  home="$homes/run-$i"
  began=$SECONDS
  if target/debug/kiosk --home "$home" up --once --faults --rate 40 --records 600 "$@" >"$homes/run-$i.log" 2>&1 \
      && grep -q 'verify: PASS (600 records' "$homes/run-$i.log"; then
    restarts=$(grep -o 'restarts (restartPolicy Always): .*' "$homes/run-$i.log" | head -1 || true)
    printf 'soak: run %d/%d PASS in %d s  %s\n' "$i" "$runs" $((SECONDS - began)) "$restarts"
    rm -rf "$home/runs"
  else
    printf 'soak: run %d/%d FAIL after %d s; its output: %s, its run: %s\n' "$i" "$runs" $((SECONDS - began)) "$homes/run-$i.log" "$home/runs"
    target/debug/kiosk --home "$home" down >/dev/null 2>&1 || true
    exit 1
  fi
done
echo "soak: $runs of $runs fault drills passed in $((SECONDS - start)) s"
