"""The plain manifests under strimzi/ and istio/ (istio/helm holds Helm values): each reaches the
cluster, applied by scripts/kind-up.sh or equal to what a chart renders."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .common import ROOT, Report, ident


def compare_with_charts(report: Report, plain: list[dict], rendered: list[dict], applied: set[str]) -> None:
    """Each plain manifest reaches the cluster: scripts/kind-up.sh applies it, or it is what a
    chart renders (and then equal to it)."""
    by_key = {(o["kind"], o["metadata"]["name"]): o for o in rendered}
    for o in plain:
        src = o["_source"]
        key = (o["kind"], o["metadata"]["name"])
        twin = by_key.get(key)
        if src in applied:
            report.ok(f"{src}: {ident(o)} is applied by scripts/kind-up.sh")
            continue
        if not report.check(twin is not None, f"{src}: {ident(o)} is applied by scripts/kind-up.sh or rendered by a chart with default values",
                            "neither: a kind run would never create it"):
            continue
        for field in ("spec", "data", "rules", "subjects", "roleRef"):
            a, b = o.get(field), twin.get(field)
            if field == "data" and a and "mesh" in a:
                a, b = yaml.safe_load(a["mesh"]), yaml.safe_load(b["mesh"])
            report.check(a == b, f"{src}: {ident(o)} .{field} equals {twin['_source']}", f"{json.dumps(a, sort_keys=True)[:300]} != {json.dumps(b, sort_keys=True)[:300]}")


def plain_manifest_files() -> list[Path]:
    """Every Kubernetes object file under strimzi/ and istio/ (istio/helm holds Helm values)."""
    out = []
    for d in ("strimzi", "istio"):
        for f in sorted((ROOT / d).rglob("*.yaml")):
            if f.relative_to(ROOT).parts[:2] != ("istio", "helm"):
                out.append(f)
    return out
