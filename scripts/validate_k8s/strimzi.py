"""Kafka as Strimzi runs it: the Kafka clients of a bundle (kiosk containers, KafkaBridge,
KafkaConnect and its connectors) with the topics and groups they use; every topic has a
KafkaTopic and every client's KafkaUser the ACLs it needs, and is of the kind the listener it
dials requires; plain listeners take only Istio mTLS, TLS listeners pass the sidecar
untouched."""

from __future__ import annotations

import re

from .common import Report, ident
from .k8s import arg_value, containers, pod_templates
from .mesh import mtls_mode
from .pods import OUTSIDER, network_allows, pods_of, strimzi_network_policies


class Client:
    """A Kafka client workload: who it is, what it reads and writes."""

    def __init__(self, name, namespace, labels, user, source, obj=None, podspec=None):
        self.name, self.namespace, self.labels, self.user, self.source = name, namespace, labels, user, source
        # The object that makes its pods, and their pod spec (None: Strimzi writes it).
        self.obj, self.podspec = obj, podspec
        self.reads: set[str] = set()
        self.writes: set[str] = set()
        self.groups: set[str] = set()
        # The port it bootstraps to, and whether it speaks TLS itself.
        self.bootstrap_port: int | None = None
        self.own_tls = False


# The pod label naming the KafkaUser a Kafka client's sidecar authenticates as (the test chart's
# tkim.kafkaUserLabel; Istio's injection template kiosk-kafka-credentials reads it).
KAFKA_USER_LABEL = "kiosk.io/kafka-user"


def bootstrap_port(servers: str | None) -> int | None:
    m = re.search(r":(\d+)(?:,|$)", servers or "")
    return int(m.group(1)) if m else None


def kafka_clients(report: Report, objects: list[dict]) -> list[Client]:
    clients = []
    produced_via_rest = set()
    for obj in objects:
        for _, podspec in pod_templates(obj):
            for c in containers(podspec):
                args = [str(a) for a in c.get("args") or []]
                if args[:1] == ["producer"]:
                    produced_via_rest.add(arg_value(args, "--topic") or "events")
    for obj in objects:
        md = obj.get("metadata") or {}
        where = f"{obj.get('_source')}: {ident(obj)}"
        for labels, podspec in pod_templates(obj):
            for c in containers(podspec):
                env = {e.get("name"): e for e in c.get("env") or []}
                if "KAFKA_BOOTSTRAP_SERVERS" not in env:
                    continue
                props = (env.get("KAFKA_PROPERTIES") or {}).get("value") or ""
                user = labels.get(KAFKA_USER_LABEL)
                report.check(bool(user), f"{where}: its pods name the KafkaUser their sidecar authenticates as (label {KAFKA_USER_LABEL})")
                args = [str(a) for a in c.get("args") or []]
                sub = args[0] if args else ""
                cl = Client(f"{md.get('name')}/{c.get('name')}", md.get("namespace"), labels, user, where, obj, podspec)
                cl.bootstrap_port = bootstrap_port((env.get("KAFKA_BOOTSTRAP_SERVERS") or {}).get("value"))
                cl.own_tls = bool(re.search(r"^\s*security\.protocol\s*=\s*(SASL_)?SSL\s*$", props, re.M | re.I))

                def need(flag):
                    v = arg_value(args, flag)
                    report.check(v is not None, f"{where}: `kiosk {sub}` passes {flag} explicitly", "the invariants need it")
                    return v

                if sub == "mirror":
                    cl.reads.add(need("--from") or "")
                    cl.writes.add(need("--to") or "")
                    cl.writes.add(need("--dead-letter-topic") or "")
                    cl.groups.add(need("--group") or "")
                elif sub == "mongo-sink":
                    cl.reads.add(need("--topic") or "")
                    cl.groups.add(need("--group") or "")
                elif sub == "verify":
                    cl.reads.update((need("--topics") or "").split(","))
                    cl.groups.add("verify")  # fixed in harness/src/pipeline/verify.rs
                elif sub == "rest":
                    cl.writes.update(produced_via_rest)
                else:
                    report.error(f"{where}: unknown kiosk subcommand {sub!r} with Kafka settings")
                clients.append(cl)
        if obj.get("kind") == "KafkaBridge":
            spec = obj["spec"]
            auth = spec.get("authentication") or {}
            labels = ((((spec.get("template") or {}).get("pod") or {}).get("metadata") or {}).get("labels")) or {}
            cl = Client(f"KafkaBridge {md.get('name')}", md.get("namespace"), labels, labels.get(KAFKA_USER_LABEL) or auth.get("username"), where, obj)
            cl.writes.update(produced_via_rest)
            cl.bootstrap_port, cl.own_tls = bootstrap_port(spec.get("bootstrapServers")), spec.get("tls") is not None
            clients.append(cl)
        if obj.get("kind") == "KafkaConnect":
            spec = obj["spec"]
            auth = spec.get("authentication") or {}
            labels = ((((spec.get("template") or {}).get("pod") or {}).get("metadata") or {}).get("labels")) or {}
            cl = Client(f"KafkaConnect {md.get('name')}", md.get("namespace"), labels, labels.get(KAFKA_USER_LABEL) or auth.get("username"), where, obj)
            cl.bootstrap_port, cl.own_tls = bootstrap_port(spec.get("bootstrapServers")), spec.get("tls") is not None
            for t in ("configStorageTopic", "offsetStorageTopic", "statusStorageTopic"):
                cl.reads.add(spec[t])
                cl.writes.add(spec[t])
            cl.groups.add(spec["groupId"])
            for conn in objects:
                if conn.get("kind") == "KafkaConnector" and (conn["metadata"].get("labels") or {}).get("strimzi.io/cluster") == md.get("name") and conn["metadata"].get("namespace") == md.get("namespace"):
                    topics = str((conn["spec"].get("config") or {}).get("topics", ""))
                    cl.reads.update(t.strip() for t in topics.split(",") if t.strip())
                    cl.groups.add(f"connect-{conn['metadata']['name']}")
            clients.append(cl)
    return clients


def acl_allows(user: dict, rtype: str, name: str, op: str) -> bool:
    for acl in ((user.get("spec") or {}).get("authorization") or {}).get("acls") or []:
        if acl.get("type", "allow") != "allow":
            continue
        r = acl.get("resource") or {}
        if r.get("type") != rtype:
            continue
        pattern = r.get("patternType", "literal")
        rname = r.get("name", "")
        hit = rname == "*" or (rname == name if pattern == "literal" else name.startswith(rname))
        if hit and (op in acl.get("operations", []) or "All" in acl.get("operations", [])):
            return True
    return False


def check_topics_and_acls(report: Report, label: str, objects: list[dict]) -> None:
    topics = {}
    for o in objects:
        if o.get("kind") == "KafkaTopic":
            topics[(o["spec"] or {}).get("topicName") or o["metadata"]["name"]] = o
    users = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "KafkaUser"}
    for cl in kafka_clients(report, objects):
        who = f"{label}: {cl.name}"
        if not report.check(cl.user in users, f"{who}: KafkaUser {cl.user} exists", "no such KafkaUser"):
            continue
        user = users[cl.user]
        utype = (user["spec"].get("authentication") or {}).get("type")
        listener = listener_on(objects, cl.bootstrap_port)
        if listener is not None:
            ltype = (listener.get("authentication") or {}).get("type")
            report.check(utype == ltype, f"{who}: KafkaUser {cl.user} is {ltype}, as the listener it dials ({cl.bootstrap_port}) requires",
                         f"the user is {utype}: the listener would refuse it")
        else:
            report.check(utype in ("scram-sha-512", "tls"), f"{who}: KafkaUser {cl.user} is scram-sha-512 or tls", f"it is {utype}")
        for t in sorted(cl.reads | cl.writes):
            report.check(t in topics, f"{who}: topic {t!r} has a KafkaTopic", "no KafkaTopic with that topicName")
        for t in sorted(cl.reads):
            report.check(acl_allows(user, "topic", t, "Read"), f"{who}: user {cl.user} may Read topic {t!r}", "no ACL")
        for t in sorted(cl.writes):
            report.check(acl_allows(user, "topic", t, "Write"), f"{who}: user {cl.user} may Write topic {t!r}", "no ACL")
        for g in sorted(cl.groups):
            report.check(acl_allows(user, "group", g, "Read"), f"{who}: user {cl.user} may Read group {g!r}", "no ACL")


def broker_pods(objects: list[dict]) -> list[tuple[str, str, dict]]:
    out = []
    for o in objects:
        if o.get("kind") in ("KafkaNodePool", "Kafka"):
            spec = o.get("spec") or {}
            tmpl = (spec.get("template") if o["kind"] == "KafkaNodePool" else (spec.get("kafka") or {}).get("template")) or {}
            labels = dict(((tmpl.get("pod") or {}).get("metadata") or {}).get("labels") or {})
            cluster = (o["metadata"].get("labels") or {}).get("strimzi.io/cluster") or o["metadata"]["name"]
            labels.update({"strimzi.io/cluster": cluster, "strimzi.io/kind": "Kafka"})
            out.append((ident(o), o["metadata"].get("namespace"), labels))
    return out


def kafka_listeners(objects: list[dict]):
    for o in objects:
        if o.get("kind") == "Kafka":
            for listener in (o["spec"].get("kafka") or {}).get("listeners") or []:
                yield o, listener


def listener_on(objects: list[dict], port: int | None) -> dict | None:
    """The Kafka listener on `port`, if the objects hold the Kafka CR."""
    return next((l for _, l in kafka_listeners(objects) if l.get("port") == port), None)


def check_kafka_listeners(report: Report, label: str, objects: list[dict], injected: set[str]) -> None:
    """Plain listeners take only Istio mTLS; TLS listeners reach Kafka's own TLS untouched."""
    pods = [p for p in pods_of(objects) if p.source.startswith("KafkaNodePool") and p.sidecar(injected)]
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"] + strimzi_network_policies(objects)
    for kafka, listener in kafka_listeners(objects):
        port = listener.get("port")
        for p in pods:
            if p.labels.get("strimzi.io/cluster") != kafka["metadata"]["name"] or p.namespace != kafka["metadata"].get("namespace"):
                continue
            who = f"{label}: {p.source}: listener {listener.get('name')} ({port})"
            mode = mtls_mode(objects, p, port)
            if not listener.get("tls"):
                open_to_all, _ = network_allows(policies, p, OUTSIDER, port)
                report.check(p.captured(port) and mode == "STRICT", f"{who}: only Istio mTLS gets in",
                             f"captured={p.captured(port)}, mTLS {mode}" + (" and NetworkPolicies let any pod reach it: a pod outside the mesh could send SASL in clear" if open_to_all else ""))
            else:
                report.check(not p.captured(port) or mode in ("DISABLE", "PERMISSIVE"), f"{who}: Kafka's own TLS passes the sidecar untouched",
                             f"captured with mTLS {mode}: the sidecar would demand Istio mTLS from TLS clients")
