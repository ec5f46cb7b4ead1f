#!/usr/bin/env bash
# The main job: set up, build, then run the local mesh in a box with `kiosk up --once`:
# Apache Kafka, Kafka Connect with the MongoDB sink, SecantusDB, Prometheus and one real
# Envoy sidecar (with the kiosk filter) per workload; the pipeline producer -> rest ->
# events -> mirror -> events.mirror -> Connect's MongoDB sink -> MongoDB with 1000 records;
# verify's result and the Kiali-style graph.
# Arguments go to `kiosk up` (for example `--records 5000`). To keep the mesh running
# for a look around, run `target/debug/kiosk up` instead (Ctrl-C or `kiosk down` stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
# Jaeger (a 4-minute build) only when tracing is asked for; `kiosk up --tracing auto` (the
# default) traces when it is built, as it is once scripts/setup.sh (the tests') ran.
setup=(--demo)
for arg in "$@"; do
  [[ "$arg" == "--tracing=jaeger" || "$arg" == "jaeger" ]] && setup+=(--with-jaeger)
done
scripts/setup.sh "${setup[@]}"
scripts/build-filter.sh
printf '\n==> build the kiosk CLI\n'
# shellcheck source=scripts/progress.sh
source scripts/progress.sh
with_progress "building the kiosk CLI (debug)" 240 cargo build --quiet -p kiosk-harness --bin kiosk
printf '\n==> kiosk up --once %s\n' "$*"
exec target/debug/kiosk up --once "$@"
