#!/usr/bin/env bash
# Benchmarks: figures, not tests (nothing asserts a time). Runs
#   - the native decoder throughput (criterion, filter/benches/decode.rs);
#   - the filter's cost in a real Envoy against the same listener with tcp_proxy only,
#     replayed Kafka frames against a recording sink, one worker per Envoy, interleaved
#     (harness/benches/envoy_replay.rs): CPU s/GB, MB/s, the ratio, added latency p50/p99;
#   - the module size after wasm-opt;
# and writes bench/results/latest.md (a markdown table with the date and the machine).
# usage: scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
scripts/build-filter.sh
out=bench/results
mkdir -p "$out"
printf '\n==> decoder throughput (criterion)\n'
cargo bench --quiet -p kiosk-filter --bench decode -- --warm-up-time 1 --measurement-time 3 | tee "$out/decode.txt"
printf '\n==> the filter in Envoy against tcp_proxy alone\n'
cargo bench --quiet -p kiosk-harness --bench envoy_replay -- --json "$PWD/$out/envoy.json" | tee "$out/envoy.txt"
printf '\n==> table\n'
python3 - "$out" <<'PY'
import json, os, platform, re, sys, datetime
out = sys.argv[1]
envoy = json.load(open(f"{out}/envoy.json"))
decode = open(f"{out}/decode.txt").read()
size = os.path.getsize("dist/kiosk_filter.wasm")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
lines = [f"Run {datetime.date.today()} on {os.cpu_count()} × {cpu}, {platform.system()} {platform.release()}.", "",
         "| figure | value | target |", "|---|---|---|"]
targets = {"16 KiB": 1.10, "1 KiB": 1.5}
for r in envoy["throughput"]:
    t = next(v for k, v in targets.items() if k in r["case"])
    lines.append(f"| Envoy CPU per GB, filter / tcp_proxy, {r['case']} | {r['ratio']:.2f} (runs {r['ratio_min']:.2f}–{r['ratio_max']:.2f}); {r['filter_mb_s']:.0f} vs {r['plain_mb_s']:.0f} MB/s | ≤ {t} |")
lat = envoy["latency"]
lines.append(f"| added latency per request, p50 / p99 | {lat['added_p50_us']:.0f} µs / {lat['added_p99_us']:.0f} µs | p99 ≤ 50 µs |")
for name, thr in re.findall(r"decode/(\S+)\s+time:.*?\n\s+thrpt:\s+\[\S+ \S+ (\S+ \S+)", decode):
    lines.append(f"| native decoder, {name} | {thr} | ≥ 1 GB/s |")
lines.append(f"| module size after wasm-opt | {size/1024:.0f} KiB | ≤ 400 KiB |")
open(f"{out}/latest.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
