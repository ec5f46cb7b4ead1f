"""Pods as Strimzi 1.2.0 and Istio 1.30.3 make them (read from their sources): Strimzi's labels,
StrimziPodSet pod names, the NetworkPolicies its operator generates; Istio's workload and
canonical-service names, sidecar capture. Checked: every sidecar's workload, app and revision
are what the filter and the expected Kiali edges say, one app per workload, and Prometheus may
scrape every sidecar through the NetworkPolicies."""

from __future__ import annotations

import re

from .common import Report
from .k8s import selector_matches


# Prometheus as Istio 1.30.3's samples/addons/prometheus.yaml deploys it; it scrapes each
# sidecar's merged metrics on the port of the injected prometheus.io/port annotation.
PROMETHEUS = ("istio-system", {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server",
                               "app.kubernetes.io/instance": "prometheus"})
SIDECAR_METRICS_PORT = 15020
# A pod outside the mesh, for what NetworkPolicies let through to a port.
OUTSIDER = ("default", {"run": "outsider"})
CRON_JOB_NAME = re.compile(r"(.+)-\d{8,10}$")  # istio pkg/kube/util.go cronJobNameRegexp


class Pod:
    """A pod the bundle makes, with what Istio sees of it.

    `fixed_name`: the pod is created with its name (Strimzi's StrimziPodSets) rather than a
    generateName, so Istio derives no workload from its owner (pkg/kube/util.go,
    GetDeployMetaFromPod) and reports the pod name unless service.istio.io/workload-name is set."""

    def __init__(self, namespace, labels, annotations, owner, pod_name, fixed_name, source):
        self.namespace, self.labels, self.annotations = namespace, dict(labels or {}), dict(annotations or {})
        self.owner, self.pod_name, self.fixed_name, self.source = owner, pod_name, fixed_name, source

    def workload(self) -> str:
        """Istio's workload name (GetWorkloadMetaFromPod, and the injection template's
        ISTIO_META_WORKLOAD_NAME: the label, else the owner for generated names)."""
        if "service.istio.io/workload-name" in self.labels:
            return self.labels["service.istio.io/workload-name"]
        if self.fixed_name:
            return self.pod_name
        m = CRON_JOB_NAME.match(self.owner) if self.owner else None
        return m.group(1) if m and self.source.startswith("Job") else self.owner

    def canonical(self) -> tuple[str, str]:
        """Istio's canonical service and revision (pkg/kube/labels/labels.go)."""
        name = next((self.labels[k] for k in ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app") if k in self.labels), self.workload())
        rev = next((self.labels[k] for k in ("service.istio.io/canonical-revision", "app.kubernetes.io/version", "version") if k in self.labels), "latest")
        return name, rev

    def sidecar(self, injected: set[str]) -> bool:
        off = "false" in (self.labels.get("sidecar.istio.io/inject"), self.annotations.get("sidecar.istio.io/inject"))
        return self.namespace in injected and not off

    def captured(self, port: int) -> bool:
        """Whether the sidecar intercepts inbound traffic to `port` (istio-iptables)."""
        excluded = {int(p) for p in re.findall(r"\d+", self.annotations.get("traffic.sidecar.istio.io/excludeInboundPorts", ""))}
        return port not in excluded

    def __repr__(self):
        return f"{self.namespace}/{self.pod_name} ({self.source})"


def strimzi_labels(cr: dict, kind: str, name: str, component_type: str, cluster: str, template_labels: dict, extra: dict | None = None) -> dict:
    """Strimzi's pod labels (Labels.generateDefaultLabels + pod template labels)."""
    cr_labels = (cr.get("metadata") or {}).get("labels") or {}
    labels = {k: v for k, v in cr_labels.items() if not re.match(r"^app\.kubernetes\.io/(?!part-of)", k)}
    labels.update({"strimzi.io/kind": kind, "strimzi.io/name": name, "strimzi.io/cluster": cluster,
                   "strimzi.io/component-type": component_type, "app.kubernetes.io/name": component_type,
                   "app.kubernetes.io/instance": cluster, "app.kubernetes.io/part-of": f"strimzi-{cluster}",
                   "app.kubernetes.io/managed-by": "strimzi-cluster-operator"})
    labels.update(extra or {})
    labels.update(template_labels or {})
    return labels


def template_meta(spec: dict, key: str = "pod") -> tuple[dict, dict]:
    md = (((spec.get("template") or {}).get(key) or {}).get("metadata")) or {}
    return md.get("labels") or {}, md.get("annotations") or {}


def pods_of(objects: list[dict]) -> list[Pod]:
    pods = []
    kafkas = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects if o.get("kind") == "Kafka"}
    for o in objects:
        kind, md, spec = o.get("kind"), o.get("metadata") or {}, o.get("spec") or {}
        ns, name = md.get("namespace"), md.get("name")
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            t = spec.get("template") or {}
            tmd = t.get("metadata") or {}
            suffix = "-0" if kind == "StatefulSet" else "-xxxxx"
            # StatefulSet pods get their ordinal name, but from a generateName (the controller's
            # GetPodFromTemplate), so Istio still finds the StatefulSet.
            pods.append(Pod(ns, tmd.get("labels"), tmd.get("annotations"), name, name + suffix, False, f"{kind} {name}"))
        elif kind == "KafkaBridge":
            labels, annotations = template_meta(spec)
            pods.append(Pod(ns, strimzi_labels(o, "KafkaBridge", f"{name}-bridge", "kafka-bridge", name, labels), annotations,
                            f"{name}-bridge", f"{name}-bridge-xxxxx", False, f"KafkaBridge {name}"))
        elif kind == "KafkaConnect":
            labels, annotations = template_meta(spec)
            pods.append(Pod(ns, strimzi_labels(o, "KafkaConnect", f"{name}-connect", "kafka-connect", name, labels), annotations,
                            f"{name}-connect", f"{name}-connect-0", True, f"KafkaConnect {name}"))
        elif kind == "KafkaNodePool":
            cluster = (md.get("labels") or {}).get("strimzi.io/cluster", "")
            labels, annotations = template_meta(spec)
            extra = {"strimzi.io/pool-name": name}
            pods.append(Pod(ns, strimzi_labels(kafkas.get((ns, cluster), o), "Kafka", f"{cluster}-kafka", "kafka", cluster, labels, extra),
                            annotations, f"{cluster}-{name}", f"{cluster}-{name}-0", True, f"KafkaNodePool {name}"))
        elif kind == "Kafka" and spec.get("entityOperator") is not None:
            labels, annotations = template_meta(spec["entityOperator"])
            pods.append(Pod(ns, strimzi_labels(o, "Kafka", f"{name}-entity-operator", "entity-operator", name, labels), annotations,
                            f"{name}-entity-operator", f"{name}-entity-operator-xxxxx", False, f"Kafka {name} (Entity Operator)"))
    return pods


def strimzi_network_policies(objects: list[dict]) -> list[dict]:
    """The NetworkPolicies Strimzi's Cluster Operator makes (STRIMZI_NETWORK_POLICY_GENERATION
    defaults to true): KafkaCluster, KafkaConnectCluster and EntityOperator.generateNetworkPolicy,
    operator in another namespace (its peers then match in every namespace)."""
    out = []

    def np(ns, name, selector, rules):
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns},
                "spec": {"podSelector": {"matchLabels": selector}, "ingress": rules}, "_source": "made by Strimzi's Cluster Operator"}

    def rule(port, peers):
        return {"ports": [{"port": port, "protocol": "TCP"}], "from": peers}

    operator = {"podSelector": {"matchLabels": {"strimzi.io/kind": "cluster-operator"}}, "namespaceSelector": {}}
    for o in objects:
        md, spec = o.get("metadata") or {}, o.get("spec") or {}
        ns, name = md.get("namespace"), md.get("name")
        if o.get("kind") == "Kafka":
            own = {"strimzi.io/cluster": name, "strimzi.io/name": f"{name}-kafka", "strimzi.io/kind": "Kafka"}
            tools = [{"podSelector": {"matchLabels": {"strimzi.io/name": f"{name}-{c}"}}} for c in ("entity-operator", "kafka-exporter", "cruise-control")]
            rules = [rule(9090, [{"podSelector": {"matchLabels": own}}, operator]),
                     rule(9091, [operator, {"podSelector": {"matchLabels": own}}, *tools]),
                     rule(8443, [operator])]
            for listener in (spec.get("kafka") or {}).get("listeners") or []:
                rules.append(rule(listener.get("port"), listener.get("networkPolicyPeers") or []))
            out.append(np(ns, f"{name}-network-policy-kafka", own, rules))
            if spec.get("entityOperator") is not None:
                eo = {"strimzi.io/cluster": name, "strimzi.io/name": f"{name}-entity-operator", "strimzi.io/kind": "Kafka"}
                out.append(np(ns, f"{name}-entity-operator", eo, [rule(8080, []), rule(8081, [])]))
        elif o.get("kind") == "KafkaConnect" and (md.get("annotations") or {}).get("strimzi.io/use-connector-resources") == "true":
            own = {"strimzi.io/cluster": name, "strimzi.io/name": f"{name}-connect", "strimzi.io/kind": "KafkaConnect"}
            out.append(np(ns, f"{name}-connect", own, [rule(8083, [{"podSelector": {"matchLabels": own}}, operator])]))
    return out


def namespace_labels(ns: str) -> dict:
    return {"kubernetes.io/metadata.name": ns}


def network_allows(policies: list[dict], dst: Pod, src: tuple[str, dict], port: int) -> tuple[bool, list[str]]:
    """Whether ingress from `src` (namespace, labels) to `port` of `dst` is allowed, and the
    policies that select `dst` (Kubernetes NetworkPolicy semantics: isolated once selected by
    an Ingress policy; allowed if any rule of any selecting policy admits it)."""
    src_ns, src_labels = src
    selecting = [p for p in policies if p["metadata"].get("namespace") == dst.namespace
                 and "Ingress" in ((p["spec"].get("policyTypes")) or ["Ingress"])
                 and selector_matches(p["spec"].get("podSelector"), dst.labels)]
    names = [f"{p['metadata']['name']} ({p.get('_source', '?')})" for p in selecting]
    if not selecting:
        return True, names
    for p in selecting:
        for r in p["spec"].get("ingress") or []:
            ports = r.get("ports") or []
            if ports and not any(pt.get("port") == port and pt.get("protocol", "TCP") == "TCP" for pt in ports):
                continue
            peers = r.get("from") or []
            if not peers:
                return True, names
            for peer in peers:
                if "ipBlock" in peer:
                    continue
                ns_ok = (src_ns == dst.namespace) if peer.get("namespaceSelector") is None else selector_matches(peer["namespaceSelector"], namespace_labels(src_ns))
                if ns_ok and selector_matches(peer.get("podSelector"), src_labels):
                    return True, names
    return False, names


def check_pods(report: Report, label: str, objects: list[dict], injected: set[str]) -> None:
    """Workload and app names as Istio reports them; Prometheus can scrape every sidecar."""
    pods = [p for p in pods_of(objects) if p.sidecar(injected)]
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"] + strimzi_network_policies(objects)
    workloads = {}
    for p in pods:
        who = f"{label}: {p.source}"
        w = p.workload()
        name, rev = p.canonical()
        workloads.setdefault((p.namespace, w), p)
        if p.fixed_name:
            report.check("service.istio.io/workload-name" in p.labels,
                         f"{who}: its pods, named by Strimzi without generateName ({p.pod_name}), carry service.istio.io/workload-name",
                         f"Istio would report workload {p.pod_name!r} (istio/istio pkg/kube/util.go: a pod without generateName is its own workload)")
        report.check(name == w, f"{who}: Istio's app (canonical service) is the workload {w!r}",
                     f"it is {name!r} (service.istio.io/canonical-name, else app.kubernetes.io/name, else app: istio/istio pkg/kube/labels/labels.go); "
                     "Kiali's app graph would merge every workload with that app")
        report.check(p.labels.get("app") == w, f"{who}: label app is the workload {w!r} (the kiosk filter reports LABELS.app as the consumer's app)",
                     f"app={p.labels.get('app')!r}")
        report.check(rev == "latest", f"{who}: Istio's canonical revision is `latest`, as the kiosk filter reports it", f"it is {rev!r}")
        ok, selecting = network_allows(policies, p, PROMETHEUS, SIDECAR_METRICS_PORT)
        report.check(ok, f"{who}: Prometheus ({PROMETHEUS[0]}) may scrape its sidecar ({SIDECAR_METRICS_PORT})",
                     f"NetworkPolicies select the pod and none admits Prometheus: {selecting}")
    names = {}
    for (ns, w), p in workloads.items():
        names.setdefault((ns, p.canonical()[0]), []).append(w)
    for (ns, app), ws in sorted(names.items()):
        report.check(len(ws) == 1, f"{label}: app {ns}/{app} is one workload", f"workloads {sorted(ws)} share it")
    # The Kiali edges the helm test expects name workloads Istio will report.
    cm = next((o for o in objects if o.get("kind") == "ConfigMap" and "expected-edges.txt" in (o.get("data") or {})), None)
    topic_ns = {(((o.get("spec") or {}).get("pluginConfig") or {}).get("kiali") or {}).get("topic_namespace", "kafka")
                for o in objects if o.get("kind") == "WasmPlugin"} or {"kafka"}
    if cm is not None:
        ends = {e.strip() for line in cm["data"]["expected-edges.txt"].splitlines() for e in line.split("#")[0].split("->") if e.strip()}
        for end in sorted(ends):
            ns, _, name = end.partition("/")
            if "*" in end or ns in topic_ns:
                continue
            report.check((ns, name) in workloads, f"{label}: expected Kiali node {end} is a workload Istio reports",
                         f"workloads with sidecars: {sorted(f'{a}/{b}' for a, b in workloads)}")
