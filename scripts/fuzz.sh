#!/usr/bin/env bash
# Fuzz the filter core: build every cargo-fuzz target of filter/fuzz, then run each for a
# bounded time, seeded from the recorded Kafka session (scripts/fuzz-seeds.py). Prints
# progress and each target's exec count; fails if any target finds a crash (a panic,
# an assertion of the target, a timeout or a sanitizer report), naming the input.
#   usage: scripts/fuzz.sh [--seconds N] [TARGET...]     (default: 20 s, every target)
# Toolchain: nightly with AddressSanitizer when rustup has it; otherwise the stable
# compiler with RUSTC_BOOTSTRAP=1 and no sanitizer (KIOSK_FUZZ_TOOLCHAIN=stable forces it).
# Corpora grow in filter/fuzz/corpus/<target>, crashes land in filter/fuzz/artifacts/,
# logs in filter/fuzz/logs/ (all gitignored). cargo-fuzz comes from scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=20
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seconds=*) seconds="${1#*=}"; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --seconds needs a number" >&2; exit 2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is missing: run scripts/setup.sh" >&2
  exit 1
fi

# nightly + ASan, or stable + RUSTC_BOOTSTRAP without a sanitizer (own target dir, so
# the two builds do not evict each other).
# 16 codegen units: the build takes about half as long, the targets run as fast.
cargo_fuzz=(cargo fuzz)
build_flags=(--codegen-units 16)
if [[ "${KIOSK_FUZZ_TOOLCHAIN:-}" != stable ]] && cargo +nightly --version >/dev/null 2>&1; then
  cargo_fuzz=(cargo +nightly fuzz)
  mode="nightly ($(cargo +nightly --version | cut -d' ' -f2)), AddressSanitizer"
else
  export RUSTC_BOOTSTRAP=1
  build_flags+=(--sanitizer none --target-dir target/no-sanitizer)
  mode="stable ($(cargo --version | cut -d' ' -f2)) with RUSTC_BOOTSTRAP=1, no sanitizer"
fi

cd filter
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <("${cargo_fuzz[@]}" list)
fi

printf '==> fuzz seeds from the recorded session\n'
python3 ../scripts/fuzz-seeds.py --out fuzz/seeds

printf '==> building %d fuzz targets: %s\n' "${#targets[@]}" "$mode"
start=$SECONDS
mkdir -p fuzz/logs
if ! "${cargo_fuzz[@]}" build "${build_flags[@]}" >fuzz/logs/build.log 2>&1; then
  tail -40 fuzz/logs/build.log >&2
  echo "fuzz.sh: build failed (filter/fuzz/logs/build.log)" >&2
  exit 1
fi
printf '    built in %d s\n' $((SECONDS - start))

failed=()
summary=()
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target" fuzz/logs
  log="fuzz/logs/$target.log"
  before=$(find "fuzz/corpus/$target" -type f | wc -l)
  printf '==> %s: %d s (corpus %d inputs, seeds %d)\n' "$target" "$seconds" "$before" \
    "$(find "fuzz/seeds/$target" -type f | wc -l)"
  status=0
  "${cargo_fuzz[@]}" run "${build_flags[@]}" "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  after=$(find "fuzz/corpus/$target" -type f | wc -l)
  if ((status != 0)); then
    printf '    CRASH in %s (exit %d); from %s:\n' "$target" "$status" "filter/$log"
    grep -E -A4 'panicked at|^==[0-9]+==ERROR|ERROR: libFuzzer' "$log" | head -20 | sed 's/^/    | /' || true
    grep -E 'Test unit written to|^SUMMARY' "$log" | sed 's/^/    | /' || true
    failed+=("$target")
    summary+=("$(printf '%-12s CRASH after %s execs' "$target" "${execs:-?}")")
  else
    rate=$(( ${execs:-0} / (seconds > 0 ? seconds : 1) ))
    printf '    %s execs (%s/s), corpus %d -> %d inputs\n' "${execs:-?}" "$rate" "$before" "$after"
    summary+=("$(printf '%-12s %12s execs in %d s, corpus %d inputs' "$target" "${execs:-?}" "$seconds" "$after")")
  fi
done

printf '\n==> fuzz summary (%s)\n' "$mode"
printf '    %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz.sh: crashes in: ${failed[*]} (inputs in filter/fuzz/artifacts/<target>/; replay with" >&2
  echo "  cd filter && ${cargo_fuzz[*]} run ${build_flags[*]} <target> fuzz/artifacts/<target>/<crash-file>)" >&2
  exit 1
fi
