"""The Kiali edge check of the helm test (files/kiali_edges.py): its functions on graphs in
Kiali's Cytoscape JSON shape, and the program itself against a stand-in Kiali serving a
recorded pipeline graph (testdata/kiali-graph-pipeline.json), with and without an edge."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import ROOT, Report


def kiali_recorded_graph_checks(report: Report, rendered: list[dict]) -> None:
    """Run files/kiali_edges.py as the helm test runs it, against a stand-in Kiali serving
    testdata/kiali-graph-pipeline.json (a workload graph of the kind pipeline in Kiali 2.29.0's
    response shape, graph/config/common/common.go, with the noise a real graph has: brokers,
    test Jobs, the gateway): it passes; without one expected edge it fails naming that edge."""
    import http.server
    import threading

    fixture = ROOT / "charts/test-kafka-istio-mongo/testdata/kiali-graph-pipeline.json"
    cm = next((o for o in rendered if o.get("kind") == "ConfigMap" and "expected-edges.txt" in (o.get("data") or {})), None)
    if not report.check(fixture.is_file() and cm is not None, f"{fixture.relative_to(ROOT)} and the chart's expected edges exist"):
        return
    graph = json.loads(fixture.read_text())
    served = {"graph": graph, "paths": []}

    class Kiali(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            served["paths"].append(self.path)
            if not self.path.startswith("/kiali/api/namespaces/graph?"):
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(served["graph"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Kiali)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            expect = Path(tmp) / "expected-edges.txt"
            expect.write_text(cm["data"]["expected-edges.txt"])
            cmd = [sys.executable, str(ROOT / "charts/test-kafka-istio-mongo/files/kiali_edges.py"), "--url", f"http://127.0.0.1:{server.server_address[1]}/kiali",
                   "--namespaces", "pipeline,kafka", "--duration", "120", "--timeout", "0", "--interval", "0", "--expect", str(expect)]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            n = len([l for l in cm["data"]["expected-edges.txt"].splitlines() if l.strip()])
            report.check(r.returncode == 0 and f"PASS ({n}/{n}" in r.stdout, "kiali_edges.py: the recorded pipeline graph passes the helm test's check", (r.stdout + r.stderr)[-600:])
            report.check(any("graphType=workload" in p and "namespaces=pipeline%2Ckafka" in p for p in served["paths"]), "kiali_edges.py: asks Kiali for the workload graph of both namespaces", str(served["paths"]))
            # Remove the edge the Connect sidecar reports (topic -> Kafka Connect), as a
            # NetworkPolicy keeping Prometheus away from it would.
            nodes = {n["data"]["id"]: n["data"] for n in graph["elements"]["nodes"]}
            name = lambda d: f"{d['namespace']}/{d.get('workload') or d.get('service')}"
            cut = copy.deepcopy(graph)
            cut["elements"]["edges"] = [e for e in graph["elements"]["edges"]
                                        if (name(nodes[e["data"]["source"]]), name(nodes[e["data"]["target"]])) != ("kafka/events.mirror", "pipeline/kiosk-connect")]
            served["graph"] = cut
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            report.check(len(cut["elements"]["edges"]) == len(graph["elements"]["edges"]) - 1 and r.returncode == 1
                         and "MISSING edge kafka/events.mirror -> pipeline/kiosk-connect" in r.stderr and f"FAIL ({n - 1}/{n}" in r.stdout,
                         "kiali_edges.py: the same graph without the events.mirror -> kiosk-connect edge fails, naming it", (r.stdout + r.stderr)[-600:])
    finally:
        server.shutdown()
        server.server_close()


def kiali_edges_checks(report: Report, rendered: list[dict]) -> None:
    spec = importlib.util.spec_from_file_location("kiali_edges", ROOT / "charts/test-kafka-istio-mongo/files/kiali_edges.py")
    ke = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ke)
    cm = next((o for o in rendered if o.get("kind") == "ConfigMap" and "expected-edges.txt" in (o.get("data") or {})), None)
    if not report.check(cm is not None, "the test chart ships expected Kiali edges"):
        return
    expected = ke.parse_expected(cm["data"]["expected-edges.txt"])
    report.check(len(expected) >= 6, f"the Kiali check expects the {len(expected)} pipeline edges (REST, both topics both ways, MongoDB)")
    # A graph in Kiali's Cytoscape JSON shape: topics are service nodes (extension) on the
    # producer side and workload nodes on the consumer side.
    nodes, edges = {}, []

    def node(name, src):
        ns, n = name.split("/")
        if n == "*":
            ns, n = "istio-ingress", "istio-ingressgateway"
        topic = ns == "kafka"
        key = f"{ns}/{n}/{'svc' if topic and not src else 'wl'}"
        if key not in nodes:
            data = {"id": f"n{len(nodes)}", "nodeType": "service" if topic and not src else "workload", "cluster": "Kubernetes", "namespace": ns}
            data["service" if topic and not src else "workload"] = n
            if topic and not src:
                data["isExtension"] = {"name": "kafka"}
            nodes[key] = data
        return nodes[key]["id"]

    for a, b in expected:
        proto = "http" if a.startswith("*") else "tcp"
        edges.append({"data": {"id": f"e{len(edges)}", "source": node(a, True), "target": node(b, False),
                               "traffic": {"protocol": proto, "rates": {proto: "12.5"}}}})
    graph = {"timestamp": 0, "duration": 120, "graphType": "workload",
             "elements": {"nodes": [{"data": d} for d in nodes.values()], "edges": edges}}
    found = ke.edges(json.loads(json.dumps(graph)))
    report.check(not ke.missing(expected, found), "kiali_edges.py: a graph with every pipeline edge passes", str(ke.missing(expected, found)))
    graph["elements"]["edges"] = edges[1:]
    report.check(ke.missing(expected, ke.edges(graph)) == [expected[0]], "kiali_edges.py: a graph missing one edge fails, naming it")
    edges[2]["data"]["traffic"]["rates"] = {}
    graph["elements"]["edges"] = edges
    report.check(expected[2] in ke.missing(expected, ke.edges(graph)), "kiali_edges.py: an edge without traffic does not count")
    text = ke.format_edges(found)
    report.check("(topic)" in text and "-->" in text, "kiali_edges.py: prints edges with topics marked")
    url = ke.graph_url("http://kiali:20001/kiali", ["pipeline", "kafka"], 120)
    report.check(url.startswith("http://kiali:20001/kiali/api/namespaces/graph?namespaces=pipeline%2Ckafka&graphType=workload&duration=120s"), f"kiali_edges.py: graph URL {url}")
