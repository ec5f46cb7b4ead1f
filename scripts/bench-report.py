#!/usr/bin/env python3
"""Turn the benchmark outputs in bench/results/ into latest.md (a markdown table with the
date, the machine, each figure and its target) and latest.png (the filter/tcp_proxy CPU
ratios per case, both drivers, with their spread and targets). Run by scripts/bench.sh.

usage: bench-report.py RESULTS_DIR MODULE.wasm
"""
import datetime
import json
import os
import platform
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TARGETS = {"16 KiB": 1.10, "1 KiB": 1.5}


def target(case):
    return next(v for k, v in TARGETS.items() if k in case)


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return f"{os.cpu_count()} × {cpu}, {platform.system()} {platform.release()}"


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        sys.exit(f"bench-report: {path} is missing: run scripts/bench.sh")


def main():
    out, module = sys.argv[1], sys.argv[2]
    replay = load(f"{out}/envoy.json")
    kafka = load(f"{out}/kafka.json")
    decode = open(f"{out}/decode.txt").read()
    memory = open(f"{out}/memory.txt").read()
    lines = [
        f"Run {datetime.date.today()} on {machine()}. Envoy 1.40.0, one worker per Envoy; "
        "ratios are medians of interleaved runs, the range in brackets.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
    ]
    for driver, figures in [("replayed frames", replay), ("librdkafka + Apache Kafka", kafka)]:
        for r in figures["throughput"]:
            lines.append(
                f"| Envoy CPU per GB, filter / tcp_proxy, {r['case']} ({driver}) | "
                f"**{r['ratio']:.2f}** ({r['ratio_min']:.2f}–{r['ratio_max']:.2f}); "
                f"{r['filter_mb_s']:.0f} vs {r['plain_mb_s']:.0f} MB/s | ≤ {target(r['case'])} |"
            )
    lat = replay["latency"]
    lines.append(
        f"| added latency per request, p50 / p99 | {lat['added_p50_us']:.0f} µs / "
        f"**{lat['added_p99_us']:.0f} µs** (filter {lat['filter_p99_us']:.0f}, "
        f"tcp_proxy {lat['plain_p99_us']:.0f}) | p99 ≤ 50 µs |"
    )
    for name, peak in re.findall(r"^  (.+?)\s+largest message .* peak\s+\d+ bytes \((\S+ KiB)\)", memory, re.M):
        lines.append(f"| memory per connection, {name} | {peak} | ≤ 64 KiB |")
    for name, thr in re.findall(r"decode/(\S+)\s+time:.*?\n\s+thrpt:\s+\[\S+ \S+ (\S+ \S+)", decode):
        lines.append(f"| native decoder, {name} | {thr} | ≥ 1 GB/s |")
    lines.append(f"| module size after wasm-opt | {os.path.getsize(module) / 1024:.0f} KiB | ≤ 400 KiB |")
    with open(f"{out}/latest.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(out, replay, kafka)


def plot(out, replay, kafka):
    cases = [r["case"] for r in replay["throughput"]]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.38
    for i, (driver, figures) in enumerate([("replayed frames", replay), ("librdkafka + Apache Kafka", kafka)]):
        by_case = {r["case"]: r for r in figures["throughput"]}
        xs, ys, lo, hi = [], [], [], []
        for x, case in enumerate(cases):
            if case in by_case:
                r = by_case[case]
                xs.append(x + (i - 0.5) * width)
                ys.append(r["ratio"])
                lo.append(r["ratio"] - r["ratio_min"])
                hi.append(r["ratio_max"] - r["ratio"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=driver)
    for x, case in enumerate(cases):
        ax.hlines(target(case), x - 0.45, x + 0.45, colors="red", linestyles="dashed")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(cases)), cases)
    ax.set_ylabel("Envoy CPU per GB, filter / tcp_proxy")
    ax.set_title(f"kiosk filter cost ({datetime.date.today()}); red: target; bars: median, whiskers: range")
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"{out}/latest.png", dpi=110)
    print(f"plot written to {out}/latest.png")


if __name__ == "__main__":
    main()
