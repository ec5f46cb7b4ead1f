#!/usr/bin/env python3
"""Print the traffic graph Kiali draws, and check that expected edges are in it.

Asks Kiali's graph API (GET <kiali>/api/namespaces/graph, Cytoscape JSON: elements.nodes[].data
and elements.edges[].data with source/target node ids and traffic.protocol/rates) for a
workload graph of the given namespaces. A node is named `namespace/name` (name: its workload,
else its service, else its app). Kafka topics are nodes in the filter's topic namespace: a
service node on the producer side (Kiali's extension edges, `isExtension`) and a workload node
on the consumer side (Istio-shaped TCP series), both `kafka/<topic>`.

Expected edges are lines `from -> to` (`*` matches within a part: `*/* -> pipeline/rest`);
blank lines and `#` comments are ignored. Exits 0 when every expected edge has traffic, 1 when
some are still missing at the timeout, 2 when Kiali cannot be asked.

Standard library only: the helm test runs it in a plain Python image, scripts/kind-test.sh on
the user's machine, and scripts/validate-k8s.py tests it offline against a graph in Kiali's
shape.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def graph_url(base: str, namespaces: list[str], duration: int) -> str:
    query = urllib.parse.urlencode(
        {
            "namespaces": ",".join(namespaces),
            "graphType": "workload",
            "duration": f"{duration}s",
            "injectServiceNodes": "false",
            "includeIdleEdges": "false",
            "rateTcp": "sent",
            "rateHttp": "requests",
            "rateGrpc": "requests",
            "boxBy": "",
        }
    )
    return f"{base.rstrip('/')}/api/namespaces/graph?{query}"


def node_name(data: dict) -> str:
    name = data.get("workload") or data.get("service") or data.get("app") or data.get("id", "?")
    return f"{data.get('namespace', '?')}/{name}"


def node_kind(data: dict) -> str:
    if data.get("isExtension"):
        return "topic"
    return data.get("nodeType", "")


def edges(graph: dict) -> list[dict]:
    """The graph's edges as {from, to, protocol, rate, unit}, sorted."""
    elements = graph.get("elements") or {}
    nodes = {}
    for wrapper in elements.get("nodes") or []:
        data = wrapper.get("data") or {}
        if data.get("isBox"):
            continue
        nodes[data.get("id")] = data
    out = []
    for wrapper in elements.get("edges") or []:
        data = wrapper.get("data") or {}
        source, target = nodes.get(data.get("source")), nodes.get(data.get("target"))
        if source is None or target is None:
            continue
        traffic = data.get("traffic") or {}
        protocol = traffic.get("protocol") or "?"
        rates = traffic.get("rates") or {}
        rate = rates.get(protocol) or rates.get("tcp") or rates.get("http") or rates.get("grpc") or "0"
        out.append(
            {
                "from": node_name(source),
                "from_kind": node_kind(source),
                "to": node_name(target),
                "to_kind": node_kind(target),
                "protocol": protocol,
                "rate": float(rate),
                "unit": "B/s" if protocol == "tcp" else "req/s",
            }
        )
    return sorted(out, key=lambda e: (e["from"], e["to"], e["protocol"]))


def parse_expected(text: str) -> list[tuple[str, str]]:
    expected = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split("->")]
        if len(parts) != 2 or not all(parts) or any(p.count("/") != 1 for p in parts):
            raise ValueError(f"expected edges line {n}: want `namespace/name -> namespace/name`, got `{line}`")
        expected.append((parts[0], parts[1]))
    return expected


def missing(expected: list[tuple[str, str]], found: list[dict]) -> list[tuple[str, str]]:
    def matches(pattern: str, name: str) -> bool:
        return fnmatch.fnmatchcase(name, pattern)

    return [
        (a, b)
        for a, b in expected
        if not any(matches(a, e["from"]) and matches(b, e["to"]) and e["rate"] > 0 for e in found)
    ]


def format_edges(found: list[dict]) -> str:
    def label(name: str, kind: str) -> str:
        return f"{name} (topic)" if kind == "topic" or (kind == "service" and name.startswith("kafka/")) else name

    def rate(e: dict) -> str:
        value, unit = e["rate"], e["unit"]
        if unit == "B/s" and value >= 1024:
            value, unit = value / 1024, "KiB/s"
        return f"{value:.3g} {unit}"

    rows = [(label(e["from"], e["from_kind"]), f"--{e['protocol']} {rate(e)}-->", label(e["to"], e["to_kind"])) for e in found]
    if not rows:
        return "  (no edges)\n"
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    return "".join(f"  {a:<{w0}}  {b:<{w1}}  {c}\n" for a, b, c in rows)


def fetch(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (the URL is ours)
        return json.load(response)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="Kiali's base URL, web root included (http://kiali:20001/kiali)")
    parser.add_argument("--namespaces", required=True, help="comma-separated namespaces of the graph")
    parser.add_argument("--duration", type=int, default=120, help="rate window in seconds")
    parser.add_argument("--expect", help="file of expected edges; without it, print the graph once and exit")
    parser.add_argument("--timeout", type=int, default=300, help="seconds to wait for every expected edge")
    parser.add_argument("--interval", type=int, default=15, help="seconds between polls")
    parser.add_argument("--json", action="store_true", help="print the edges as JSON")
    args = parser.parse_args(argv)

    url = graph_url(args.url, [n for n in args.namespaces.split(",") if n], args.duration)
    expected = []
    if args.expect:
        with open(args.expect, encoding="utf-8") as f:
            expected = parse_expected(f.read())
    deadline = time.monotonic() + args.timeout
    print(f"kiali graph: GET {url}", flush=True)
    while True:
        try:
            found = edges(fetch(url))
        except (urllib.error.URLError, OSError, ValueError) as e:
            if not expected or time.monotonic() > deadline:
                print(f"kiali graph: cannot read {url}: {e}", file=sys.stderr)
                return 2
            print(f"kiali graph: {e}; retrying", flush=True)
            time.sleep(args.interval)
            continue
        gaps = missing(expected, found)
        if not gaps or time.monotonic() > deadline:
            break
        print(f"kiali graph: {len(expected) - len(gaps)}/{len(expected)} expected edges present; waiting", flush=True)
        time.sleep(args.interval)
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        print(f"kiali graph ({args.namespaces}, rates over the last {args.duration} s):")
        print(format_edges(found), end="")
    for a, b in gaps:
        print(f"kiali graph: MISSING edge {a} -> {b}", file=sys.stderr)
    if expected:
        print(f"kiali graph: {'PASS' if not gaps else 'FAIL'} ({len(expected) - len(gaps)}/{len(expected)} expected edges)")
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())
