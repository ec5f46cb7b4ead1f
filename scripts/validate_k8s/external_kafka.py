"""An external Kafka, one Strimzi does not run (issue 27, docs/external-kafka.md): the files of
strimzi/external/ (Strimzi 1.2.0's standalone Topic and User Operators, the tenants' KafkaTopics
and KafkaUsers) and istio/external-kafka/ (the ServiceEntry, the tenants' DestinationRules and
kiosk WasmPlugins). Not yet applied by scripts/kind-up.sh (the local mesh part of issue 27), so
kept out of the other bundles and checked here as one bundle of their own:
  - the standalone operators dial the ServiceEntry's host:port, SASL_SSL with SCRAM-SHA-512,
    trusting a CA from a Secret, the admin credential from the platform's Secret and never
    written into what they log; each watches its own namespace and selects by one label, which
    every KafkaTopic/KafkaUser there carries;
  - tenants kept apart: every KafkaUser and KafkaTopic belongs to one tenant (label
    kiosk.io/tenant, a tenant namespace of the bundle), a user's name and every ACL it is allowed
    start with `<tenant>-` / `<tenant>.` (no `*`, no empty or shorter prefix, no cluster ACL),
    every user is scram-sha-512, each tenant topic has a writer and a reader of that tenant;
  - the ServiceEntry is MESH_EXTERNAL, TCP, DNS, outside cluster.local;
  - each tenant namespace has a DestinationRule originating TLS (SIMPLE or MUTUAL) to that host
    and port, with a CA (credentialName), sni and a subject name of that host, and a
    workloadSelector that selects every pod its WasmPlugin selects;
  - each tenant's kiosk WasmPlugin matches the external port only, performs SCRAM-SHA-512, names
    only the external cluster in kafka_auth.upstreams (`outbound|<port>||<host>`, no wildcard,
    no principal), gives the topic nodes the ServiceEntry's namespace, and carries the
    vmConfig of istio/wasm-plugin-kiosk.yaml (docs/wasm-vms.md).
external_kafka_self_checks puts each finding back into a copy and must see it refused."""

from __future__ import annotations

import copy
import re
from io import StringIO

from .common import ROOT, Report, ident, load_yaml_objects
from .istio import vm_environment, vm_environment_text
from .k8s import containers, pod_templates
from .probe import expect_refusals, probe
from .strimzi import acl_allows

EXTERNAL_KAFKA_DIRS = ("strimzi/external", "istio/external-kafka")
TENANT_LABEL = "kiosk.io/tenant"
OPERATOR_SCRIPTS = {"/opt/strimzi/bin/topic_operator_run.sh": "Topic", "/opt/strimzi/bin/user_operator_run.sh": "User"}
# Strimzi 1.2.0 TopicOperatorConfig.setStandardSaslConfigs: the mechanisms it accepts (lower case).
TOPIC_OPERATOR_SASL = {"scram-sha-512": "SCRAM-SHA-512", "scram-sha-256": "SCRAM-SHA-256", "plain": "PLAIN"}


def is_external_kafka(source: str) -> bool:
    return any(source == d or source.startswith(d + "/") for d in EXTERNAL_KAFKA_DIRS)


def java_properties(text: str) -> dict[str, str]:
    """Key=value lines as java.util.Properties reads the simple ones (no continuation lines)."""
    out = {}
    for line in StringIO(text or ""):
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        m = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def label_selector(text: str) -> dict[str, str]:
    """STRIMZI_RESOURCE_LABELS / STRIMZI_LABELS: comma-separated key=value."""
    return dict(p.split("=", 1) for p in (text or "").split(",") if "=" in p)


class Operator:
    def __init__(self, kind: str, obj: dict, container: dict):
        self.kind, self.obj, self.container = kind, obj, container
        self.namespace = obj["metadata"].get("namespace")
        self.env = {e.get("name"): e for e in container.get("env") or []}

    def value(self, name: str) -> str | None:
        e = self.env.get(name) or {}
        return None if "valueFrom" in e else e.get("value")

    def watched_namespace(self) -> str | None:
        e = self.env.get("STRIMZI_NAMESPACE") or {}
        ref = ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        return self.namespace if ref == "metadata.namespace" else e.get("value")

    def selector(self) -> dict[str, str]:
        return label_selector(self.value("STRIMZI_RESOURCE_LABELS" if self.kind == "Topic" else "STRIMZI_LABELS") or "")


def operators(objects: list[dict]) -> list[Operator]:
    out = []
    for o in objects:
        for _, podspec in pod_templates(o):
            for c in containers(podspec):
                for a in c.get("args") or []:
                    if a in OPERATOR_SCRIPTS:
                        out.append(Operator(OPERATOR_SCRIPTS[a], o, c))
    return out


def tenants_of(objects: list[dict]) -> set[str]:
    """The tenant namespaces: Namespaces of the bundle labelled kiosk.io/tenant with their name."""
    return {o["metadata"]["name"] for o in objects if o.get("kind") == "Namespace"
            and (o["metadata"].get("labels") or {}).get(TENANT_LABEL) == o["metadata"]["name"]}


def service_entry_endpoints(objects: list[dict]) -> list[tuple[dict, str, int]]:
    return [(se, h, p.get("number")) for se in objects if se.get("kind") == "ServiceEntry"
            for h in se["spec"].get("hosts") or [] for p in se["spec"].get("ports") or []]


def check_external_kafka(report: Report, label: str, objects: list[dict]) -> None:
    endpoints = service_entry_endpoints(objects)
    bootstrap = {f"{h}:{p}" for _, h, p in endpoints}
    tenants = tenants_of(objects)
    report.check(len(tenants) >= 2, f"{label}: two tenant namespaces or more (Namespace labelled {TENANT_LABEL}=<its name>)", f"found {sorted(tenants)}")

    # The ServiceEntry: outside the mesh, TCP, resolved by DNS, a name outside the cluster.
    ses = [o for o in objects if o.get("kind") == "ServiceEntry"]
    report.check(len(ses) == 1, f"{label}: one ServiceEntry for the external Kafka", f"found {len(ses)}")
    for se in ses:
        who, spec = f"{label}: {ident(se)}", se["spec"]
        report.check(spec.get("location") == "MESH_EXTERNAL", f"{who}: location MESH_EXTERNAL", f"{spec.get('location')}")
        report.check(spec.get("resolution") == "DNS", f"{who}: resolution DNS", f"{spec.get('resolution')}")
        for p in spec.get("ports") or []:
            report.check(p.get("protocol") == "TCP", f"{who}: port {p.get('number')} is TCP (Kafka, read by the filter, not by Istio)", f"{p.get('protocol')}")
        for h in spec.get("hosts") or []:
            report.check("*" not in h and not h.endswith(".cluster.local"), f"{who}: host {h} is one external name", "a wildcard or a cluster.local name")
        exported = set(spec.get("exportTo") or ["*"])
        for t in sorted(tenants):
            report.check("*" in exported or t in exported, f"{who}: exported to tenant namespace {t}", f"exportTo {sorted(exported)}")

    # The standalone operators.
    ops = operators(objects)
    kinds = sorted(op.kind for op in ops)
    report.check(kinds == ["Topic", "User"], f"{label}: one standalone Topic Operator and one User Operator", f"found {kinds}")
    secret_refs = set()
    for op in ops:
        who = f"{label}: {ident(op.obj)} ({op.kind} Operator)"
        bs = op.value("STRIMZI_KAFKA_BOOTSTRAP_SERVERS") or ""
        report.check(bool(bs) and set(bs.split(",")) <= bootstrap, f"{who}: STRIMZI_KAFKA_BOOTSTRAP_SERVERS {bs!r} is the ServiceEntry's host:port",
                     f"the ServiceEntry declares {sorted(bootstrap)}")
        report.check(op.watched_namespace() == op.namespace, f"{who}: watches its own namespace {op.namespace} (STRIMZI_NAMESPACE)", f"{op.watched_namespace()}")
        report.check(bool(op.selector()), f"{who}: selects its resources by label ({'STRIMZI_RESOURCE_LABELS' if op.kind == 'Topic' else 'STRIMZI_LABELS'})")
        for name, e in op.env.items():
            if re.search(r"PASSWORD|SECRET_KEY|JAAS", name or "") and "value" in e:
                report.error(f"{who}: env {name} holds a literal value: a credential belongs in the platform's Secret")
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                secret_refs.add(ref.get("name"))
        for v in (op.obj["spec"]["template"]["spec"].get("volumes") or []):
            if v.get("secret"):
                secret_refs.add(v["secret"].get("secretName"))
        if op.kind == "Topic":
            report.check(op.value("STRIMZI_SECURITY_PROTOCOL") == "SASL_SSL", f"{who}: STRIMZI_SECURITY_PROTOCOL SASL_SSL", f"{op.value('STRIMZI_SECURITY_PROTOCOL')}")
            report.check(op.value("STRIMZI_SASL_ENABLED") == "true", f"{who}: STRIMZI_SASL_ENABLED true")
            report.check(TOPIC_OPERATOR_SASL.get(op.value("STRIMZI_SASL_MECHANISM") or "") == "SCRAM-SHA-512",
                         f"{who}: STRIMZI_SASL_MECHANISM scram-sha-512 (as TopicOperatorConfig spells it)", f"{op.value('STRIMZI_SASL_MECHANISM')!r}")
            for name in ("STRIMZI_SASL_USERNAME", "STRIMZI_SASL_PASSWORD"):
                ref = ((op.env.get(name) or {}).get("valueFrom") or {}).get("secretKeyRef")
                report.check(bool(ref), f"{who}: {name} comes from a Secret (secretKeyRef)", "missing or literal")
            report.check(bool(op.value("STRIMZI_TLS_TRUSTED_CERTS_SECRET_NAME")), f"{who}: trusts the external CA from a Secret (STRIMZI_TLS_TRUSTED_CERTS_SECRET_NAME)")
        else:
            props = java_properties(op.value("STRIMZI_KAFKA_ADMIN_CLIENT_CONFIGURATION") or "")
            report.check(props.get("security.protocol") == "SASL_SSL", f"{who}: admin client security.protocol SASL_SSL", f"{props.get('security.protocol')}")
            report.check(props.get("sasl.mechanism") == "SCRAM-SHA-512", f"{who}: admin client sasl.mechanism SCRAM-SHA-512", f"{props.get('sasl.mechanism')}")
            jaas = props.get("sasl.jaas.config", "")
            pw = re.search(r'password="([^"]*)"', jaas)
            report.check(bool(pw) and re.fullmatch(r"\$\{[^}]+\}", pw.group(1)) is not None,
                         f"{who}: the admin password is named through a config provider, never written into STRIMZI_KAFKA_ADMIN_CLIENT_CONFIGURATION",
                         "UserOperatorConfig.toString logs those properties unmasked (a literal, or a $(VAR) the kubelet expands, ends up in the log)")
            report.check(bool(op.value("STRIMZI_CLUSTER_CA_CERT_SECRET_NAME")), f"{who}: trusts the external CA from a Secret (STRIMZI_CLUSTER_CA_CERT_SECRET_NAME)")
            report.check(bool(op.value("STRIMZI_CA_CERT_NAME")) and bool(op.value("STRIMZI_CA_KEY_NAME")), f"{who}: STRIMZI_CA_CERT_NAME and STRIMZI_CA_KEY_NAME set (required)")
    for s in (o for o in objects if o.get("kind") == "Secret"):
        report.error(f"{label}: {ident(s)}: a Secret in the bundle: the admin credential and the CA are the platform's (docs/external-kafka.md)")

    # The tenants' KafkaTopics and KafkaUsers: watched, labelled, kept apart.
    by_kind = {op.kind: op for op in ops}
    topics = [o for o in objects if o.get("kind") == "KafkaTopic"]
    users = [o for o in objects if o.get("kind") == "KafkaUser"]
    for o, op in [(t, by_kind.get("Topic")) for t in topics] + [(u, by_kind.get("User")) for u in users]:
        who = f"{label}: {ident(o)}"
        md = o["metadata"]
        labels = md.get("labels") or {}
        if op is not None:
            report.check(md.get("namespace") == op.watched_namespace(), f"{who}: in the namespace its standalone operator watches ({op.watched_namespace()})", f"{md.get('namespace')}")
            report.check(all(labels.get(k) == v for k, v in op.selector().items()), f"{who}: carries the label its standalone operator selects {op.selector()}", f"{labels}")
        tenant = labels.get(TENANT_LABEL)
        if not report.check(tenant in tenants, f"{who}: belongs to a tenant ({TENANT_LABEL} names a tenant namespace)", f"{tenant!r}, tenants {sorted(tenants)}"):
            continue
        if o["kind"] == "KafkaTopic":
            name = (o.get("spec") or {}).get("topicName") or md["name"]
            report.check(name.startswith(f"{tenant}."), f"{who}: topic {name!r} starts with its tenant's prefix {tenant}.", "another tenant's, or no tenant's")
            continue
        spec = o.get("spec") or {}
        report.check(md["name"].startswith(f"{tenant}-"), f"{who}: its name starts with {tenant}-", "another tenant's name")
        report.check((spec.get("authentication") or {}).get("type") == "scram-sha-512", f"{who}: scram-sha-512, as the external listener authenticates",
                     f"{(spec.get('authentication') or {}).get('type')} (a tls user would need the User Operator's clients CA, which the external cluster does not trust)")
        authz = spec.get("authorization") or {}
        report.check(authz.get("type") == "simple", f"{who}: authorization simple (ACLs)", f"{authz.get('type')}")
        for i, acl in enumerate(authz.get("acls") or []):
            if acl.get("type", "allow") != "allow":
                continue
            r = acl.get("resource") or {}
            rname, pattern, rtype = r.get("name", ""), r.get("patternType", "literal"), r.get("type")
            what = f"{who}: ACL {i} ({rtype} {pattern} {rname!r})"
            if rtype == "cluster":
                report.error(f"{what}: a cluster ACL: a tenant gets no cluster-wide right")
                continue
            report.check(rname != "*", f"{what}: is not `*`", "every resource of that type, the other tenant's included")
            report.check(rname.startswith(f"{tenant}."), f"{what}: names only {tenant}'s own resources (prefix {tenant}.)",
                         "an empty, shorter or other tenant's name: it covers resources of other tenants")

    # Each tenant topic has a writer and a reader of its tenant.
    for t in topics:
        tenant = (t["metadata"].get("labels") or {}).get(TENANT_LABEL)
        name = (t.get("spec") or {}).get("topicName") or t["metadata"]["name"]
        mine = [u for u in users if (u["metadata"].get("labels") or {}).get(TENANT_LABEL) == tenant]
        report.check(any(acl_allows(u, "topic", name, "Write") for u in mine), f"{label}: topic {name!r}: a KafkaUser of {tenant} may Write it")
        report.check(any(acl_allows(u, "topic", name, "Read") and acl_allows(u, "group", f"{tenant}.consumer", "Read") for u in mine),
                     f"{label}: topic {name!r}: a KafkaUser of {tenant} may Read it in a group of its own")

    # Istio: each tenant's DestinationRule (TLS with a CA to the ServiceEntry) and WasmPlugin.
    kafka_plugin = next(iter(load_yaml_objects(ROOT / "istio/wasm-plugin-kiosk.yaml")), None)
    se_ns = ses[0]["metadata"].get("namespace") if ses else None
    for t in sorted(tenants):
        drs = [o for o in objects if o.get("kind") == "DestinationRule" and o["metadata"].get("namespace") == t]
        plugins = [o for o in objects if o.get("kind") == "WasmPlugin" and o["metadata"].get("namespace") == t]
        report.check(len(plugins) == 1, f"{label}: tenant {t} has one kiosk WasmPlugin for the external Kafka", f"found {len(plugins)}")
        for _, host, port in endpoints:
            covering = []
            for dr in drs:
                if dr["spec"].get("host") != host:
                    continue
                pol = dr["spec"].get("trafficPolicy") or {}
                tls = next((p.get("tls") for p in pol.get("portLevelSettings") or [] if (p.get("port") or {}).get("number") == port), None) or pol.get("tls")
                if tls:
                    covering.append((dr, tls))
            if not report.check(len(covering) == 1, f"{label}: tenant {t}: one DestinationRule sets TLS for {host}:{port}", f"found {len(covering)}"):
                continue
            dr, tls = covering[0]
            who = f"{label}: {ident(dr)}"
            report.check(tls.get("mode") in ("SIMPLE", "MUTUAL"), f"{who}: originates TLS to {host}:{port} (SIMPLE or MUTUAL)", f"mode {tls.get('mode')}: the SASL exchange and the records would leave in plaintext")
            report.check(bool(tls.get("credentialName")) or bool(tls.get("caCertificates")), f"{who}: verifies the broker with the external CA (credentialName)",
                         "no CA: Envoy would check the broker against the OS roots, or not at all")
            report.check(not (tls.get("insecureSkipVerify") or False), f"{who}: does not skip verification")
            report.check(tls.get("sni") == host, f"{who}: sni {host}", f"{tls.get('sni')!r}: for TCP Istio derives no SNI")
            sans = tls.get("subjectAltNames") or next((se["spec"].get("subjectAltNames") or [] for se in ses), [])
            report.check(host in sans, f"{who}: pins the broker's name {host} (subjectAltNames)", f"{sans}: for TCP Istio checks no name unless told")
            sel = ((dr["spec"].get("workloadSelector") or {}).get("matchLabels")) or {}
            report.check(bool(sel), f"{who}: has a workloadSelector", "a sidecar ignores credentialName without one and originates no TLS at all")
            for p in plugins:
                psel = ((p["spec"].get("selector") or {}).get("matchLabels")) or {}
                report.check(bool(sel) and all(psel.get(k) == v for k, v in sel.items()),
                             f"{who}: selects every pod {ident(p)} selects", f"workloadSelector {sel} vs the plugin's selector {psel}: a pod could send SASL and records unencrypted")
        for p in plugins:
            who = f"{label}: {ident(p)}"
            spec = p["spec"]
            report.check(bool(((spec.get("selector") or {}).get("matchLabels"))), f"{who}: has a selector")
            ports = {pt.get("number") for m in spec.get("match") or [] for pt in m.get("ports") or []}
            modes = [m.get("mode") for m in spec.get("match") or []]
            report.check(modes == ["CLIENT"] and ports == {port for _, _, port in endpoints}, f"{who}: matches CLIENT connections to the external port only",
                         f"modes {modes}, ports {sorted(ports)}")
            cfg = spec.get("pluginConfig") or {}
            auth = cfg.get("kafka_auth") or {}
            report.check(auth.get("mechanism") == "SCRAM-SHA-512", f"{who}: kafka_auth SCRAM-SHA-512", f"{auth.get('mechanism')}")
            ups = auth.get("upstreams") or {}
            allowed = {f"outbound|{port}||{host}" for _, host, port in endpoints}
            clusters, principals = ups.get("clusters") or [], ups.get("principals") or []
            report.check(bool(clusters) and set(clusters) <= allowed, f"{who}: kafka_auth.upstreams.clusters name only the external cluster",
                         f"{clusters} (allowed: {sorted(allowed)}): a wildcard or another cluster would receive the SASL exchange")
            report.check(not principals, f"{who}: kafka_auth.upstreams has no principals (the external broker proves no mesh identity)", f"{principals}")
            tns = (cfg.get("kiali") or {}).get("topic_namespace")
            report.check(tns == se_ns, f"{who}: kiali.topic_namespace {se_ns} (the external cluster's topic nodes apart from the internal ones)", f"{tns!r}")
            if kafka_plugin is not None:
                report.check(vm_environment(p) == vm_environment(kafka_plugin), f"{who}: the vmConfig of istio/wasm-plugin-kiosk.yaml (docs/wasm-vms.md)",
                             f"{vm_environment_text(p)} != {vm_environment_text(kafka_plugin)}")
    # The admin credential reaches the standalone operators only.
    for o in objects:
        if o.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job", "Pod") and o not in [op.obj for op in ops]:
            text = repr(o)
            for s in secret_refs:
                report.check(s not in text, f"{label}: {ident(o)} does not use the operators' Secret {s}")


def external_kafka_self_checks(report: Report, objects: list[dict]) -> None:
    """Each finding put back into a copy of the external bundle must be refused."""

    def find(b, kind, name, ns=None):
        return next(o for o in b if o.get("kind") == kind and o["metadata"]["name"] == name and (ns is None or o["metadata"].get("namespace") == ns))

    def acls(b, user):
        return find(b, "KafkaUser", user)["spec"]["authorization"]["acls"]

    def add_acl(user, rtype, name, pattern, ops=("Read",)):
        return lambda b: acls(b, user).append({"resource": {"type": rtype, "name": name, "patternType": pattern}, "operations": list(ops)})

    def env(b, deployment, name, value):
        c = find(b, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]
        for e in c["env"]:
            if e["name"] == name:
                e.clear()
                e.update(name=name, value=value)
                return
        c["env"].append({"name": name, "value": value})

    def dr_tls(b, ns):
        return find(b, "DestinationRule", "kafka-external", ns)["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]

    def plugin(b, ns):
        return find(b, "WasmPlugin", "kiosk-external", ns)["spec"]

    uo_conf = "STRIMZI_KAFKA_ADMIN_CLIENT_CONFIGURATION"
    cases = [
        ("the external bundle as it is", objects, None, None),
        ("tenant-a's producer with a Write ACL on tenant-b's prefix", objects, add_acl("tenant-a-producer", "topic", "tenant-b.", "prefix", ["Write"]), "names only tenant-a's own"),
        ("tenant-a's consumer with a group ACL on tenant-b's prefix", objects, add_acl("tenant-a-consumer", "group", "tenant-b.", "prefix"), "names only tenant-a's own"),
        ("tenant-b's consumer reading tenant-a's topic literally", objects, add_acl("tenant-b-consumer", "topic", "tenant-a.orders", "literal"), "names only tenant-b's own"),
        ("a LITERAL `*` topic ACL", objects, add_acl("tenant-a-consumer", "topic", "*", "literal"), "is not `*`"),
        ("a PREFIXED empty prefix", objects, add_acl("tenant-a-consumer", "topic", "", "prefix"), "names only tenant-a's own"),
        ("a PREFIXED prefix `tenant-` (shorter than the tenant's)", objects, add_acl("tenant-a-consumer", "topic", "tenant-", "prefix"), "names only tenant-a's own"),
        ("a PREFIXED prefix `tenant-a` without its dot (covers tenant-ab.)", objects, add_acl("tenant-a-consumer", "topic", "tenant-a", "prefix"), "names only tenant-a's own"),
        ("a cluster ACL", objects, lambda b: acls(b, "tenant-a-producer").append({"resource": {"type": "cluster"}, "operations": ["Alter"]}), "a cluster ACL"),
        ("a KafkaUser labelled for another cluster", objects, lambda b: find(b, "KafkaUser", "tenant-a-consumer")["metadata"]["labels"].update({"strimzi.io/cluster": "kiosk"}),
         "carries the label its standalone operator selects"),
        ("a KafkaUser outside the watched namespace", objects, lambda b: find(b, "KafkaUser", "tenant-a-consumer")["metadata"].update(namespace="tenant-a"), "in the namespace its standalone operator watches"),
        ("a tls KafkaUser", objects, lambda b: find(b, "KafkaUser", "tenant-b-producer")["spec"]["authentication"].update(type="tls"), "scram-sha-512"),
        ("a KafkaUser without a tenant", objects, lambda b: find(b, "KafkaUser", "tenant-b-producer")["metadata"]["labels"].pop(TENANT_LABEL), "belongs to a tenant"),
        ("tenant-a's topic named in tenant-b's prefix", objects, lambda b: find(b, "KafkaTopic", "tenant-a.orders")["spec"].update(topicName="tenant-b.orders2"), "starts with its tenant's prefix"),
        ("the Topic Operator's bootstrap another host", objects, lambda b: env(b, "strimzi-topic-operator", "STRIMZI_KAFKA_BOOTSTRAP_SERVERS", "kafka.other.example:9096"), "is the ServiceEntry's host:port"),
        ("the User Operator's bootstrap another port", objects, lambda b: env(b, "strimzi-user-operator", "STRIMZI_KAFKA_BOOTSTRAP_SERVERS", "kafka.external.example:9092"), "is the ServiceEntry's host:port"),
        ("the ServiceEntry on another port than the operators dial", objects, lambda b: find(b, "ServiceEntry", "kafka-external")["spec"]["ports"][0].update(number=9094), "is the ServiceEntry's host:port"),
        ("the Topic Operator without SASL_SSL", objects, lambda b: env(b, "strimzi-topic-operator", "STRIMZI_SECURITY_PROTOCOL", "SASL_PLAINTEXT"), "STRIMZI_SECURITY_PROTOCOL SASL_SSL"),
        ("the Topic Operator's mechanism upper case (refused by TopicOperatorConfig)", objects, lambda b: env(b, "strimzi-topic-operator", "STRIMZI_SASL_MECHANISM", "SCRAM-SHA-512"), "STRIMZI_SASL_MECHANISM scram-sha-512"),
        ("the Topic Operator's admin password literal", objects, lambda b: env(b, "strimzi-topic-operator", "STRIMZI_SASL_PASSWORD", "changeit"), "holds a literal value"),
        ("the User Operator's admin password written into its admin client properties", objects,
         lambda b: env(b, "strimzi-user-operator", uo_conf, re.sub(r'password="[^"]*"', 'password="changeit"', next(
             e["value"] for e in find(b, "Deployment", "strimzi-user-operator")["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == uo_conf))),
         "never written into"),
        ("the User Operator's admin password expanded by the kubelet into its properties", objects,
         lambda b: env(b, "strimzi-user-operator", uo_conf, re.sub(r'password="[^"]*"', 'password="$(ADMIN_PASSWORD)"', next(
             e["value"] for e in find(b, "Deployment", "strimzi-user-operator")["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == uo_conf))),
         "never written into"),
        ("a Secret with the admin credential in the bundle", objects,
         lambda b: b.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kafka-external-admin", "namespace": "kafka-external"}, "stringData": {"password": "x"}}), "a Secret in the bundle"),
        ("tenant-a's DestinationRule without TLS (DISABLE)", objects, lambda b: dr_tls(b, "tenant-a").update(mode="DISABLE"), "originates TLS"),
        ("tenant-b's DestinationRule without a CA", objects, lambda b: dr_tls(b, "tenant-b").pop("credentialName"), "verifies the broker with the external CA"),
        ("tenant-a's DestinationRule skipping verification", objects, lambda b: dr_tls(b, "tenant-a").update(insecureSkipVerify=True), "does not skip verification"),
        ("tenant-a's DestinationRule with another SNI", objects, lambda b: dr_tls(b, "tenant-a").update(sni="kafka.other.example"), "sni kafka.external.example"),
        ("tenant-a's DestinationRule without subjectAltNames", objects, lambda b: dr_tls(b, "tenant-a").pop("subjectAltNames"), "pins the broker's name"),
        ("tenant-a's DestinationRule without workloadSelector (no TLS at all in sidecars)", objects,
         lambda b: find(b, "DestinationRule", "kafka-external", "tenant-a")["spec"].pop("workloadSelector"), "has a workloadSelector"),
        ("tenant-b's DestinationRule selecting fewer pods than its WasmPlugin", objects,
         lambda b: find(b, "DestinationRule", "kafka-external", "tenant-b")["spec"]["workloadSelector"]["matchLabels"].update(app="only-one"), "selects every pod"),
        ("tenant-b's DestinationRule for another host", objects, lambda b: find(b, "DestinationRule", "kafka-external", "tenant-b")["spec"].update(host="kafka.other.example"),
         "one DestinationRule sets TLS"),
        ("tenant-a's WasmPlugin sending SASL to any cluster (`*`)", objects, lambda b: plugin(b, "tenant-a")["pluginConfig"]["kafka_auth"]["upstreams"].update(clusters=["*"]),
         "name only the external cluster"),
        ("tenant-a's WasmPlugin with a wildcard host cluster", objects,
         lambda b: plugin(b, "tenant-a")["pluginConfig"]["kafka_auth"]["upstreams"].update(clusters=["outbound|9096||*"]), "name only the external cluster"),
        ("tenant-b's WasmPlugin naming the internal cluster too", objects,
         lambda b: plugin(b, "tenant-b")["pluginConfig"]["kafka_auth"]["upstreams"]["clusters"].append("outbound|9092||kiosk-kafka-bootstrap.kafka.svc.cluster.local"),
         "name only the external cluster"),
        ("tenant-b's WasmPlugin with a principal `*`", objects, lambda b: plugin(b, "tenant-b")["pluginConfig"]["kafka_auth"]["upstreams"].update(principals=["*"]), "has no principals"),
        ("tenant-a's WasmPlugin on the internal ports too", objects, lambda b: plugin(b, "tenant-a")["match"][0]["ports"].append({"number": 9092}), "external port only"),
        ("tenant-a's WasmPlugin with its topic nodes in namespace kafka", objects, lambda b: plugin(b, "tenant-a")["pluginConfig"]["kiali"].update(topic_namespace="kafka"),
         "kiali.topic_namespace"),
        ("tenant-b's WasmPlugin without vmConfig", objects, lambda b: plugin(b, "tenant-b").pop("vmConfig"), "the vmConfig of istio/wasm-plugin-kiosk.yaml"),
        ("the ServiceEntry MESH_INTERNAL", objects, lambda b: find(b, "ServiceEntry", "kafka-external")["spec"].update(location="MESH_INTERNAL"), "location MESH_EXTERNAL"),
        ("the ServiceEntry not exported to tenant-b", objects, lambda b: find(b, "ServiceEntry", "kafka-external")["spec"]["exportTo"].remove("tenant-b"), "exported to tenant namespace tenant-b"),
    ]
    expect_refusals(report, cases, lambda b: probe(check_external_kafka, b),
                    "self-check: external Kafka: {what}: accepted", "self-check: external Kafka: {what}: rejected")
