"""The filter's metrics beside Istio's: its istio_tcp_received_bytes_total can share Istio's family
(same type, never the same series, every label Kiali groups by), Prometheus ingests both
groups of one scrape (--prometheus), and the filter's Grafana dashboard ships in a ConfigMap
the Grafana chart's sidecar loads."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from .common import ROOT, Report, ident
from .contract import filter_istio_series
from .pods import pods_of


DASHBOARD_FILE = ROOT / "charts/kiosk-filter/dashboards/kiosk-kafka.json"


def check_grafana_dashboard(report: Report, label: str, objects: list[dict]) -> None:
    """The filter's Grafana dashboard reaches Grafana as its Helm chart's sidecar loads
    dashboards: a ConfigMap labelled grafana_dashboard whose data is the dashboard file, every
    panel with a query (its PromQL is checked by promtool in harness/tests/live_dashboard.rs)."""
    maps = [o for o in objects if o.get("kind") == "ConfigMap" and "grafana_dashboard" in (o["metadata"].get("labels") or {})]
    if not any("charts/kiosk-filter" in o.get("_source", "") for o in objects):
        return  # the plain manifests: the chart ships the dashboard
    if not report.check(bool(maps), f"{label}: a ConfigMap labelled grafana_dashboard carries the filter's dashboard"):
        return
    shipped = json.loads(DASHBOARD_FILE.read_text())
    for cm in maps:
        for key, text in (cm.get("data") or {}).items():
            try:
                board = json.loads(text)
            except ValueError as e:
                report.error(f"{label}: {ident(cm)}: {key} is not JSON: {e}")
                continue
            report.check(board == shipped, f"{label}: {ident(cm)}: {key} is {DASHBOARD_FILE.relative_to(ROOT)}")
            panels = [p for p in board.get("panels") or [] if p.get("type") != "row"]
            report.check(bool(panels) and all(t.get("expr") for p in panels for t in p.get("targets") or [None]),
                         f"{label}: {ident(cm)}: {len(panels)} panels, each with a PromQL query")


# Istio's own TCP series carry these labels (istio/proxy istio_stats.cc, all_tags_ minus the
# HTTP ones); Kiali's TCP graph query groups by these (kiali v2.29.0 graph/telemetry/istio/istio.go;
# `app` is a target label Prometheus adds from the pod's labels).
ISTIO_TCP_LABELS = {
    "reporter", "source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version",
    "source_canonical_service", "source_canonical_revision", "source_cluster", "destination_workload",
    "destination_workload_namespace", "destination_principal", "destination_app", "destination_version",
    "destination_service", "destination_service_name", "destination_service_namespace", "destination_canonical_service",
    "destination_canonical_revision", "destination_cluster", "request_protocol", "response_flags", "connection_security_policy",
}
KIALI_TCP_GROUP_BY = {
    "source_cluster", "source_workload_namespace", "source_workload", "source_canonical_service", "source_canonical_revision",
    "destination_cluster", "destination_service_namespace", "destination_service", "destination_service_name",
    "destination_workload_namespace", "destination_workload", "destination_canonical_service", "destination_canonical_revision",
    "response_flags",
}


def check_istio_shaped_series(report: Report, label: str, objects: list[dict]) -> None:
    """The filter's istio_tcp_received_bytes_total shares its name with Istio's own family in
    the same scrape: it must be the same type and never the same series."""
    name, kind, labels = filter_istio_series()
    report.check(kind == "counter", f"{label}: the filter's {name} is a counter, as Istio's", f"it is a {kind}")
    report.check(labels <= ISTIO_TCP_LABELS, f"{label}: the filter's {name} labels are Istio's TCP labels", f"extra: {sorted(labels - ISTIO_TCP_LABELS)}")
    report.check(KIALI_TCP_GROUP_BY <= labels, f"{label}: the filter's {name} carries every label Kiali's TCP query groups by", f"missing: {sorted(KIALI_TCP_GROUP_BY - labels)}")
    only_istio = ISTIO_TCP_LABELS - labels
    report.check({"source_principal", "destination_principal"} <= only_istio, f"{label}: the filter's {name} never equals an Istio series (it has no *_principal labels, which Istio always sets)",
                 f"labels only Istio sets: {sorted(only_istio)}")
    for t in (o for o in objects if o.get("kind") == "Telemetry"):
        for m in t["spec"].get("metrics") or []:
            for ov in m.get("overrides") or []:
                removed = {k for k, v in (ov.get("tagOverrides") or {}).items() if (v or {}).get("operation") == "REMOVE"}
                report.check(not (removed & only_istio), f"{label}: {ident(t)} keeps the labels that tell Istio's TCP series from the filter's",
                             f"removes {sorted(removed & only_istio)}")
    # Kiali sums series by its group-by labels, which leave the principals out: an Istio series
    # whose source workload in the topic namespace is named like a topic would add to the edge.
    topic_ns = {(((o.get("spec") or {}).get("pluginConfig") or {}).get("kiali") or {}).get("topic_namespace", "kafka") for o in objects if o.get("kind") == "WasmPlugin"}
    workloads = {(p.namespace, p.workload()) for p in pods_of(objects)}
    for o in (o for o in objects if o.get("kind") == "KafkaTopic"):
        topic = o["spec"].get("topicName") or o["metadata"]["name"]
        for ns in topic_ns:
            report.check((ns, topic) not in workloads, f"{label}: topic {topic!r} is no workload name in the topic namespace {ns}", "Kiali would add that workload's TCP traffic to the topic's edges")


def prometheus_ingest_check(report: Report) -> None:
    """(--prometheus) Scrape, with the real Prometheus of this machine, an exposition shaped as
    a sidecar's: Istio's istio_tcp_received_bytes_total group (istiocustom) and the filter's
    (wasmcustom) are two groups with a TYPE line each, apart (Envoy groups by tag-extracted
    name, envoy source/server/admin/grouped_stats_request.cc). Prometheus must ingest both."""
    import socket
    import urllib.request

    prom = shutil.which("prometheus")
    if not report.check(prom is not None, "prometheus is installed (Debian package prometheus)"):
        return
    _, _, filter_labels_ = filter_istio_series()
    istio = {k: "x" for k in ISTIO_TCP_LABELS} | {"reporter": "source"}
    mine = {k: "x" for k in filter_labels_} | {"reporter": "destination"}
    fmt = lambda labels: ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    exposition = (f"# TYPE istio_tcp_received_bytes_total counter\nistio_tcp_received_bytes_total{{{fmt(istio)}}} 1000\n\n"
                  "# TYPE envoy_server_uptime gauge\nenvoy_server_uptime 5\n"
                  f"# TYPE istio_tcp_received_bytes_total counter\nistio_tcp_received_bytes_total{{{fmt(mine)}}} 2000\n")

    def free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    import http.server
    import threading

    class Sidecar(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            data = exposition.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sidecar)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "prom.yml").write_text(f"global: {{scrape_interval: 200ms, scrape_timeout: 200ms}}\nscrape_configs:\n  - job_name: sidecar\n"
                                            f"    static_configs: [{{targets: ['127.0.0.1:{server.server_address[1]}']}}]\n")
        proc = subprocess.Popen([prom, f"--config.file={tmp}/prom.yml", f"--storage.tsdb.path={tmp}/data", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = None
        try:
            import time

            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?query=istio_tcp_received_bytes_total", timeout=2) as r:
                        result = json.load(r)["data"]["result"]
                    if len(result) >= 2:
                        break
                except OSError:
                    pass
                time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            server.shutdown()
    reporters = sorted(r["metric"].get("reporter", "") for r in result or [])
    report.check(reporters == ["destination", "source"], "Prometheus ingests both istio_tcp_received_bytes_total groups of one sidecar's scrape", f"got {result}")
