#!/usr/bin/env bash
# Set-up of the peer benchmark (harness/benches/peers.rs), run by scripts/bench.sh, not by
# scripts/setup.sh (CI runs that one, and these builds are slow). Idempotent: each peer is
# built once into $KIOSK_CACHE (default ~/.cache/kiosk) and built again only when its sources
# in bench/peers/ change (a copy of them is kept beside the build).
#   - Shotover 0.7.4 (crates.io), bench/peers/shotover/, a crate outside kiosk's workspace:
#     $KIOSK_CACHE/shotover-0.7.4/shotover (about 6 minutes on 2 cores the first time, at the
#     lowest useful priority and one job, so it does not starve other builds; its 1 GB
#     target directory is kept in $KIOSK_CACHE/shotover-build for the next rebuild)
#   - Kroxylicious 0.12.0 (Maven Central), bench/peers/kroxylicious/, a ten-line launcher
#     (Maven Central has no runnable Kroxylicious app): its jar and classpath in
#     $KIOSK_CACHE/kroxylicious-0.12.0 (about a minute the first time)
# usage: scripts/bench-peers-setup.sh [shotover|kroxylicious]...   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${KIOSK_CACHE:-$HOME/.cache/kiosk}"
# Keep in step with harness/benches/peers.rs (SHOTOVER_CACHE, KROXYLICIOUS_CACHE).
SHOTOVER_VERSION=0.7.4
SHOTOVER_SRC=bench/peers/shotover
SHOTOVER_FILES=(Cargo.toml Cargo.lock src/main.rs)
SHOTOVER_ROOT="$CACHE/shotover-$SHOTOVER_VERSION"
KROXYLICIOUS_VERSION=0.12.0
KROXYLICIOUS_SRC=bench/peers/kroxylicious
KROXYLICIOUS_FILES=(pom.xml src/main/java/io/kiosk/bench/KroxyliciousLauncher.java)
KROXYLICIOUS_ROOT="$CACHE/kroxylicious-$KROXYLICIOUS_VERSION"

step() { printf '\n==> %s\n' "$*"; }
# True when every source file equals the copy kept in <root>/src.
sources_current() {
  local src=$1 root=$2; shift 2
  local f
  for f in "$@"; do cmp -s "$src/$f" "$root/src/$f" || return 1; done
}
keep_sources() {
  local src=$1 root=$2; shift 2
  local f
  for f in "$@"; do mkdir -p "$(dirname "$root/src/$f")"; cp "$src/$f" "$root/src/$f"; done
}

build_shotover() {
  step "Shotover $SHOTOVER_VERSION ($SHOTOVER_SRC, crates.io), cached in $SHOTOVER_ROOT"
  if [[ -x "$SHOTOVER_ROOT/shotover" ]] && sources_current "$SHOTOVER_SRC" "$SHOTOVER_ROOT" "${SHOTOVER_FILES[@]}"; then
    echo "already built: $SHOTOVER_ROOT/shotover"
    return
  fi
  local log="$CACHE/shotover-build.log" started=$SECONDS
  mkdir -p "$CACHE"
  echo "building (about 6 minutes the first time, one job at nice 10; under a minute"
  echo "when only main.rs changed; the log is $log)"
  # One job, at lower priority: the machine has two cores and other builds may be running.
  if ! (cd "$SHOTOVER_SRC" && CARGO_TARGET_DIR="$CACHE/shotover-build" CARGO_BUILD_JOBS="${KIOSK_PEERS_BUILD_JOBS:-1}" \
        nice -n 10 cargo build --release --locked) >"$log" 2>&1; then
    echo "building Shotover failed; last lines of $log:" >&2
    tail -20 "$log" >&2
    exit 1
  fi
  rm -rf "$SHOTOVER_ROOT.partial" && mkdir -p "$SHOTOVER_ROOT.partial"
  cp "$CACHE/shotover-build/release/shotover" "$SHOTOVER_ROOT.partial/shotover"
  keep_sources "$SHOTOVER_SRC" "$SHOTOVER_ROOT.partial" "${SHOTOVER_FILES[@]}"
  rm -rf "$SHOTOVER_ROOT" && mv "$SHOTOVER_ROOT.partial" "$SHOTOVER_ROOT"
  echo "built $SHOTOVER_ROOT/shotover ($(du -h "$SHOTOVER_ROOT/shotover" | cut -f1)) in $((SECONDS - started)) s"
}

build_kroxylicious() {
  step "Kroxylicious $KROXYLICIOUS_VERSION ($KROXYLICIOUS_SRC, Maven Central), cached in $KROXYLICIOUS_ROOT"
  if [[ -f "$KROXYLICIOUS_ROOT/complete" ]] && sources_current "$KROXYLICIOUS_SRC" "$KROXYLICIOUS_ROOT" "${KROXYLICIOUS_FILES[@]}"; then
    echo "already built: $(find "$KROXYLICIOUS_ROOT/libs" -name '*.jar' | wc -l) jars"
    return
  fi
  local log="$CACHE/kroxylicious-build.log" started=$SECONDS
  mkdir -p "$CACHE"
  echo "building the launcher and resolving its classpath (about a minute the first time, 32 MB;"
  echo "the log is $log)"
  rm -rf "$KROXYLICIOUS_ROOT.partial" && mkdir -p "$KROXYLICIOUS_ROOT.partial"
  # The build directory goes to the cache too: nothing is written into the repository.
  if ! nice -n 10 mvn -B -f "$KROXYLICIOUS_SRC/pom.xml" \
        -Dkiosk.build.directory="$KROXYLICIOUS_ROOT.partial/target" \
        package dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$KROXYLICIOUS_ROOT.partial/libs" >"$log" 2>&1; then
    echo "building the Kroxylicious launcher failed; last lines of $log:" >&2
    tail -20 "$log" >&2
    exit 1
  fi
  cp "$KROXYLICIOUS_ROOT.partial"/target/*.jar "$KROXYLICIOUS_ROOT.partial/libs/"
  rm -rf "$KROXYLICIOUS_ROOT.partial/target"
  keep_sources "$KROXYLICIOUS_SRC" "$KROXYLICIOUS_ROOT.partial" "${KROXYLICIOUS_FILES[@]}"
  touch "$KROXYLICIOUS_ROOT.partial/complete"
  rm -rf "$KROXYLICIOUS_ROOT" && mv "$KROXYLICIOUS_ROOT.partial" "$KROXYLICIOUS_ROOT"
  echo "built: $(find "$KROXYLICIOUS_ROOT/libs" -name '*.jar' | wc -l) jars, $(du -sh "$KROXYLICIOUS_ROOT" | cut -f1), in $((SECONDS - started)) s"
}

peers=("$@")
((${#peers[@]})) || peers=(shotover kroxylicious)
for peer in "${peers[@]}"; do
  case "$peer" in
    shotover) build_shotover ;;
    kroxylicious) build_kroxylicious ;;
    *) echo "unknown peer '$peer' (shotover, kroxylicious)" >&2; exit 2 ;;
  esac
done
