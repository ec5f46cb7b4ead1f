"""Helm's engine (PyPI helm-python-sdk: libhelm_c, no helm binary): each chart rendered for its
default values and each values file under its ci/, its values checked against
values.schema.json and `helm lint --strict` run; a chart rendered with other values (the
self-checks); and Istio's sidecar injection templates rendered for a pod as the injector runs
them (Go text/template with sprig)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from .common import CHARTS, NAMESPACE, NOTES, ROOT, Report, helm


def chart_templates(chart: str, values: dict | None) -> dict[str, str]:
    """The chart's templates (name -> text) rendered as scripts/kind-up.sh installs it (its
    release name, namespace pipeline), `values` checked against values.schema.json first;
    helm.HelmError when the schema or a template refuses them."""
    with helm.Chart.load(ROOT / "charts" / chart) as c:
        c.validate_schema(values)
        return c.render(values, name=CHARTS[chart], namespace=NAMESPACE, is_install=True)


def render_values(chart: str, values: dict) -> list[dict]:
    """The objects of the chart rendered with `values` (the self-checks' variants), each in
    namespace pipeline unless it names one; helm.HelmError when its schema or a template
    refuses them."""
    objects = [d for t, text in chart_templates(chart, values).items() if not t.endswith("NOTES.txt") for d in yaml.safe_load_all(text) if d]
    for d in objects:
        d.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
    return objects


def render_chart(report: Report, chart: str, values_file: Path | None) -> list[dict] | None:
    """The chart rendered for its default values (values_file None) or a values file of its ci/,
    each object tagged with where it comes from (_source), and `helm lint --strict` run: None
    when it does not render. The default rendering's NOTES.txt is kept in NOTES."""
    path = ROOT / "charts" / chart
    values = yaml.safe_load(values_file.read_text()) if values_file else None
    label = f"charts/{chart} ({values_file.relative_to(ROOT) if values_file else 'default values'})"
    try:
        rendered = chart_templates(chart, values)
    except helm.HelmError as e:
        report.error(f"{label}: helm render failed: {e}")
        return None
    objects = []
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt") and not values_file:
            NOTES[chart] = text
        if template.endswith("NOTES.txt") or not text.strip():
            continue
        try:
            docs = [d for d in yaml.safe_load_all(text) if d]
        except yaml.YAMLError as e:
            report.error(f"{label}: {template}: not YAML: {e}")
            continue
        for d in docs:
            d.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
            d["_source"] = f"{label} {template}"
            objects.append(d)
    report.ok(f"{label}: rendered {len(objects)} objects")
    lint = helm.lint(path, values, strict=True, namespace=NAMESPACE)
    problems = [m for m in lint.get("messages", []) if m.get("severity", 0) >= 2] + [
        {"path": "", "error": e} for e in lint.get("errors") or []
    ]
    for m in problems:
        report.error(f"{label}: helm lint: {m.get('path')}: {m.get('error')}")
    if not problems:
        report.ok(f"{label}: helm lint --strict clean")
    print(f"  {label}: {len(objects)} objects rendered, helm lint {'clean' if not problems else 'FAILED'}")
    return objects


def render_injection_template(text: str, labels: dict, annotations: dict, native: bool) -> dict:
    """An Istio injection template rendered for a pod, as the injector runs it (Go text/template
    with sprig; pkg/kube/inject/inject.go RunTemplate): through Helm's engine, the pod's
    metadata and the native-sidecar setting bound to `.` as Istio binds them."""
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp) / "inject"
        (chart / "templates").mkdir(parents=True)
        (chart / "Chart.yaml").write_text("apiVersion: v2\nname: inject\nversion: 0.0.0\n")
        (chart / "templates" / "pod.yaml").write_text("{{- with .Values.pod }}\n" + text + "\n{{- end }}\n")
        with helm.Chart.load(chart) as c:
            out = c.render({"pod": {"ObjectMeta": {"Labels": dict(labels), "Annotations": dict(annotations)}, "NativeSidecars": native}},
                           name="inject", namespace=NAMESPACE, is_install=True)
    return yaml.safe_load(out.get("inject/templates/pod.yaml") or "") or {}
