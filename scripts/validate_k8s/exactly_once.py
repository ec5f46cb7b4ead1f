"""Exactly once (docs/exactly-once.md): the mirror writes each batch, its dead letters and its
consumed offsets in one Kafka transaction under a transactional id of its instance; whoever
reads what it writes reads only committed records. Checked: its KafkaUser may Write and
Describe its transactional id and Read its group; the id is per instance; every reader of its
topics reads read_committed; the transaction state log fits the brokers; the model of `kiosk
mirror` is read back from services/src/mirror.rs."""

from __future__ import annotations

import copy
import json
import re

from .common import ROOT, Report, ident
from .k8s import Parts, arg_value, container_env, containers, expand_refs, fixed_prefix, merge_parts, parts_text, pod_templates, workload_replicas
from .manifests import compare_with_charts
from .probe import chart_variants, expect_refusals, probe, quiet
from .services import kiosk_program
from .strimzi import KAFKA_USER_LABEL, acl_allows, kafka_clients


MIRROR_RS = ROOT / "services/src/mirror.rs"
KAFKA_RS = ROOT / "services/src/kafka.rs"
# `kiosk mirror`'s defaults (services/src/mirror.rs, Args; mirror_code_checks holds the code to
# them). Its transactional id: --transactional-id, else env KIOSK_TRANSACTIONAL_ID, else
# <group>-<host>, the host from HOSTNAME (the pod's hostname: its name unless spec.hostname).
MIRROR_DEFAULTS = {"--from": "events", "--to": "events.mirror", "--group": "mirror", "--dead-letter-topic": "events.dlq"}
TRANSACTIONAL_ID_ENV = "KIOSK_TRANSACTIONAL_ID"
TRANSACTIONAL_ID_ARG = "--transactional-id"
READ_COMMITTED = "read_committed"
# Kafka Connect: its sink tasks' consumers take the worker's consumer.* settings (the
# KafkaConnect's spec.config), and a connector's own consumer.override.* where the worker's
# connector.client.config.override.policy admits them (All, Kafka's default since 3.0, KIP-722;
# None and Principal refuse an isolation.level override, failing the connector).
CONNECT_ISOLATION = "consumer.isolation.level"
CONNECTOR_ISOLATION = "consumer.override.isolation.level"
CONNECT_OVERRIDE_POLICY = "connector.client.config.override.policy"


class Mirror:
    """A mirror instance's Kafka identity and transactions: its KafkaUser, group, the topics it
    writes in transactions, and its transactional id (parts) with where it comes from."""

    def __init__(self, who, user, group, outputs, tid, tid_from, replicas):
        self.who, self.user, self.group, self.outputs = who, user, group, outputs
        self.tid, self.tid_from, self.replicas = tid, tid_from, replicas


def mirrors(objects: list[dict]) -> list[Mirror]:
    """Every container running `kiosk mirror`; in a bundle without one (strimzi/ alone: the
    chart runs the mirror), the KafkaUser that may Write the mirror's output topic, taken as the
    mirror's identity with `kiosk mirror`'s defaults (group, topics, <group>-<host>)."""
    found = []
    for obj in objects:
        ns = obj["metadata"].get("namespace")
        for labels, podspec in pod_templates(obj):
            for c in containers(podspec):
                if kiosk_program(c) != "mirror":
                    continue
                args = [str(a) for a in c.get("args") or []]
                env = container_env(objects, ns, c)
                group = arg_value(args, "--group") or MIRROR_DEFAULTS["--group"]
                arg = arg_value(args, TRANSACTIONAL_ID_ARG)
                if arg is not None:  # clap: the argument wins over the env; the kubelet expands args with the container's env
                    tid, where = expand_refs(arg, env), f"its argument {TRANSACTIONAL_ID_ARG} {arg}"
                elif TRANSACTIONAL_ID_ENV in env:
                    e = next((e for e in reversed(c.get("env") or []) if e["name"] == TRANSACTIONAL_ID_ENV), None)
                    shown = "from envFrom" if e is None else e.get("value") if "value" in e else json.dumps(e.get("valueFrom"))
                    tid, where = env[TRANSACTIONAL_ID_ENV], f"env {TRANSACTIONAL_ID_ENV} {shown}"
                else:
                    host = env.get("HOSTNAME") or ([("text", str(podspec["hostname"]))] if podspec.get("hostname") else [("pod", "the pod's name")])
                    tid, where = merge_parts([("text", f"{group}-")] + host), "the default <group>-<hostname>"
                outputs = {arg_value(args, "--to") or MIRROR_DEFAULTS["--to"], arg_value(args, "--dead-letter-topic") or MIRROR_DEFAULTS["--dead-letter-topic"]}
                found.append(Mirror(f"{obj.get('_source')}: {ident(obj)}/{c.get('name')}", labels.get(KAFKA_USER_LABEL), group, outputs, tid, where,
                                    workload_replicas(obj)))
    if not found:
        for u in objects:
            if u.get("kind") == "KafkaUser" and acl_allows(u, "topic", MIRROR_DEFAULTS["--to"], "Write"):
                group = MIRROR_DEFAULTS["--group"]
                found.append(Mirror(f"{u.get('_source')}: {ident(u)} (the mirror's identity; no `kiosk mirror` container here, its defaults)", u["metadata"]["name"],
                                    group, {MIRROR_DEFAULTS["--to"], MIRROR_DEFAULTS["--dead-letter-topic"]},
                                    [("text", f"{group}-"), ("pod", "the pod's name")], "the default <group>-<hostname>", None))
    return found


def acl_covers_id(user: dict, rtype: str, parts: Parts, op: str) -> bool:
    """Whether the user's ACLs allow `op` on every value `parts` may take (Kafka's simple
    authorizer: an allowing ACL matches, no denying ACL may)."""
    prefix, exact = fixed_prefix(parts)
    allowed = denied = False
    for acl in ((user.get("spec") or {}).get("authorization") or {}).get("acls") or []:
        r = acl.get("resource") or {}
        if r.get("type") != rtype or not (op in acl.get("operations", []) or "All" in acl.get("operations", [])):
            continue
        name, literal = r.get("name", ""), r.get("patternType", "literal") == "literal"
        if acl.get("type", "allow") == "allow":
            # Matches every value: the wildcard, the whole value, or a prefix of its fixed part.
            allowed |= name == "*" or (exact and name == prefix if literal else prefix.startswith(name))
        else:
            # May match some value.
            if name == "*":
                denied = True
            elif literal:
                denied |= name == prefix if exact else name.startswith(prefix)
            else:
                denied |= prefix.startswith(name) or (not exact and name.startswith(prefix))
    return allowed and not denied


def transactional_acls_text(user: dict) -> str:
    acls = [a for a in ((user.get("spec") or {}).get("authorization") or {}).get("acls") or [] if (a.get("resource") or {}).get("type") == "transactionalId"]
    return "; ".join(f"{a.get('type', 'allow')} {'/'.join(a.get('operations', []))} {a['resource'].get('patternType', 'literal')} {a['resource'].get('name')!r}" for a in acls) or "none"


def connector_isolation(connect: dict, conn: dict) -> tuple[str, str]:
    """The isolation.level a connector's sink consumers read with, and what sets it."""
    wcfg, ccfg = (connect.get("spec") or {}).get("config") or {}, (conn.get("spec") or {}).get("config") or {}
    if CONNECTOR_ISOLATION in ccfg:
        policy = str(wcfg.get(CONNECT_OVERRIDE_POLICY, "All"))
        if policy != "All":
            return "(the connector refused)", f"its {CONNECTOR_ISOLATION}, which the worker's {CONNECT_OVERRIDE_POLICY} {policy} does not admit"
        return str(ccfg[CONNECTOR_ISOLATION]), f"its {CONNECTOR_ISOLATION}"
    if CONNECT_ISOLATION in wcfg:
        return str(wcfg[CONNECT_ISOLATION]), f"the KafkaConnect's {CONNECT_ISOLATION}"
    return "read_uncommitted", f"Kafka's default: neither the KafkaConnect's {CONNECT_ISOLATION} nor the connector's {CONNECTOR_ISOLATION}"


def connector_topics(conn: dict, topics: set[str]) -> set[str]:
    cfg = (conn.get("spec") or {}).get("config") or {}
    listed = {t.strip() for t in str(cfg.get("topics", "")).split(",") if t.strip()}
    regex = cfg.get("topics.regex")
    return {t for t in topics if t in listed or (regex is not None and re.fullmatch(str(regex), t))}


def kiosk_consumers_read_committed() -> tuple[bool, str]:
    """Whether every kiosk consumer reads committed records only: services/src/kafka.rs
    consumer_config (the settings of every kiosk consumer) sets isolation.level read_committed."""
    m = re.search(r"pub fn consumer_config\b.*?\n}", KAFKA_RS.read_text(), re.S)
    body = m.group(0) if m else ""
    ok = re.search(r'\.set\(\s*"isolation\.level"\s*,\s*"read_committed"\s*\)', body) is not None
    return ok, "services/src/kafka.rs consumer_config" + ("" if m else " (not found)")


def check_exactly_once(report: Report, label: str, objects: list[dict]) -> None:
    ms = mirrors(objects)
    if not report.check(bool(ms), f"{label}: the mirror is here (a `kiosk mirror` container, or the KafkaUser that writes {MIRROR_DEFAULTS['--to']})",
                        "none: its transactions cannot be checked"):
        return
    users = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "KafkaUser"}
    for m in ms:
        who = f"{label}: {m.who}"
        tid = parts_text(m.tid)
        if m.replicas is not None:
            report.check(any(kind == "pod" for kind, _ in m.tid), f"{who}: its transactional id {tid} ({m.tid_from}) is per instance: it includes the pod's name",
                         f"{m.replicas} replica(s) (and a rolling update's surge) would share it and fence each other's transactions")
        user = users.get(m.user)
        if not report.check(user is not None, f"{who}: the KafkaUser it runs as ({m.user}) exists", "no such KafkaUser"):
            continue
        report.check(acl_allows(user, "group", m.group, "Read"), f"{who}: user {m.user} may Read group {m.group!r} (its offsets commit in its transactions)", "no ACL")
        for op in ("Write", "Describe"):
            report.check(acl_covers_id(user, "transactionalId", m.tid, op), f"{who}: user {m.user} may {op} transactional id {tid} ({m.tid_from})",
                         f"no transactionalId ACL allows it for every value (literal equal, or a prefix of its fixed part {fixed_prefix(m.tid)[0]!r}); "
                         f"its transactionalId ACLs: {transactional_acls_text(user)}")
    # The transaction coordinators' log (__transaction_state) must be creatable on the brokers there
    # are: else InitProducerId never succeeds (COORDINATOR_NOT_AVAILABLE) and the mirror waits forever.
    for k in objects:
        if k.get("kind") != "Kafka":
            continue
        cfg = ((k.get("spec") or {}).get("kafka") or {}).get("config") or {}
        brokers = sum(int((p.get("spec") or {}).get("replicas", 0)) for p in objects if p.get("kind") == "KafkaNodePool"
                      and (p["metadata"].get("labels") or {}).get("strimzi.io/cluster") == k["metadata"]["name"] and "broker" in ((p.get("spec") or {}).get("roles") or []))
        rf, isr = int(cfg.get("transaction.state.log.replication.factor", 3)), int(cfg.get("transaction.state.log.min.isr", 2))
        report.check(rf <= brokers and isr <= rf, f"{label}: {k.get('_source')}: {ident(k)}: the transaction state log fits its {brokers} broker(s) "
                     f"(transaction.state.log.replication.factor {rf}, min.isr {isr})", "no transaction could begin (Kafka's defaults are 3 and 2)")
    topics = set().union(*(m.outputs for m in ms))
    connects = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects if o.get("kind") == "KafkaConnect"}
    for conn in objects:
        if conn.get("kind") != "KafkaConnector":
            continue
        connect = connects.get((conn["metadata"].get("namespace"), (conn["metadata"].get("labels") or {}).get("strimzi.io/cluster")))
        read = connector_topics(conn, topics)
        if connect is None or not read:
            continue
        level, where = connector_isolation(connect, conn)
        report.check(level == READ_COMMITTED, f"{label}: {conn.get('_source')}: {ident(conn)} (Kafka Connect {connect['metadata']['name']}) reads {', '.join(sorted(read))}, "
                     f"written in transactions, {READ_COMMITTED}", f"it reads {level} ({where}): aborted records would reach it")
    for b in objects:
        if b.get("kind") != "KafkaBridge":
            continue
        spec = b.get("spec") or {}
        labels = ((((spec.get("template") or {}).get("pod") or {}).get("metadata") or {}).get("labels")) or {}
        user = users.get(labels.get(KAFKA_USER_LABEL) or (spec.get("authentication") or {}).get("username"))
        read = {t for t in topics if user is not None and acl_allows(user, "topic", t, "Read")}
        if read and (spec.get("consumer") or {}).get("enabled", True) is not False:  # Strimzi: spec.consumer.enabled false, no HTTP consumers
            level = str(((spec.get("consumer") or {}).get("config") or {}).get("isolation.level", "read_uncommitted"))
            report.check(level == READ_COMMITTED, f"{label}: {b.get('_source')}: {ident(b)} may read {', '.join(sorted(read))} over HTTP, {READ_COMMITTED}",
                         f"its consumers read {level} (spec.consumer.config isolation.level)")
    readers = [c for c in kafka_clients(Report(False), objects) if c.podspec is not None and c.reads & topics]
    if readers:
        ok, where = kiosk_consumers_read_committed()
        for c in readers:
            report.check(ok, f"{label}: {c.source}: {c.name} reads {', '.join(sorted(c.reads & topics))} {READ_COMMITTED} ({where})", "isolation.level is not read_committed there")


def mirror_code_checks(report: Report) -> None:
    """The validator's model of `kiosk mirror` is the code's: its defaults, the transactional
    id's argument, env and default (services/src/mirror.rs)."""
    text = MIRROR_RS.read_text()
    for flag, value in MIRROR_DEFAULTS.items():
        field = flag[2:].replace("-", "_")
        found = re.search(r'#\[arg\([^\]]*default_value\s*=\s*"([^"]*)"[^\]]*\)\]\s*pub\s+' + field + r"\s*:", text)
        report.check(found is not None and found.group(1) == value, f"services/src/mirror.rs: `kiosk mirror` {flag} defaults to {value!r} (MIRROR_DEFAULTS)",
                     f"it defaults to {found.group(1) if found else 'nothing found'}: update MIRROR_DEFAULTS")
    report.check(re.search(r'#\[arg\([^\]]*env\s*=\s*"' + TRANSACTIONAL_ID_ENV + r'"[^\]]*\)\]\s*pub\s+transactional_id\s*:', text) is not None,
                 f"services/src/mirror.rs: `kiosk mirror` takes its transactional id from {TRANSACTIONAL_ID_ARG} or env {TRANSACTIONAL_ID_ENV}")
    report.check('"HOSTNAME"' in text and re.search(r'format!\("\{\}-\{host\}",\s*args\.group\)', text) is not None,
                 "services/src/mirror.rs: `kiosk mirror`'s default transactional id is <group>-<HOSTNAME>")
    report.check(re.search(r'\.set\(\s*"transactional\.id"\s*,\s*transactional_id\s*\)', text) is not None,
                 "services/src/mirror.rs: the mirror's producer is transactional (transactional.id set)")
    ok, where = kiosk_consumers_read_committed()
    report.check(ok, f"{where}: every kiosk consumer reads {READ_COMMITTED}")


def exactly_once_self_checks(report: Report, bundle: list[dict], tls_bundle: list[dict], plain: list[dict], default_charts: list[dict], applied: set[str]) -> None:
    """Each way the mirror's transactions could be refused (its KafkaUser's transactionalId
    ACLs), two instances share a transactional id (and fence each other), or a reader of what
    the mirror writes see aborted records, put into a copy of the kind install (default and
    --kafka-auth tls) or of strimzi/ alone: check_exactly_once must reject it; the variants that
    keep exactly once it must accept. The chart ties the ACL's prefix to the pods' ids."""

    def find(b, kind, name=None):
        return next(o for o in b if o.get("kind") == kind and (name is None or o["metadata"]["name"].endswith(name)))

    def acls(b):
        return find(b, "KafkaUser", "-mirror")["spec"]["authorization"]["acls"]

    def txn_acl(b):
        return next(a for a in acls(b) if a["resource"]["type"] == "transactionalId")

    def mirror(b):
        return next(c for c in containers(find(b, "Deployment", "-mirror")["spec"]["template"]["spec"]) if c["name"] == "mirror")

    def env(b, name):
        return next(e for e in mirror(b)["env"] if e["name"] == name)

    def set_env(b, name, value=None, **source):
        e = env(b, name)
        e.clear()
        e.update(name=name, **({"value": value} if value is not None else source))

    def drop_env(b, *names):
        mirror(b)["env"] = [e for e in mirror(b)["env"] if e["name"] not in names]

    def connect_config(b):
        return find(b, "KafkaConnect")["spec"]["config"]

    def connector_config(b):
        return find(b, "KafkaConnector")["spec"]["config"]

    write, describe, group = "may Write transactional id", "may Describe transactional id", "may Read group 'mirror'"
    per_instance, committed = "is per instance", f"written in transactions, {READ_COMMITTED}"
    TLS, PLAIN = "tls", "plain"
    cases = [
        ("the kind install as it is", None, lambda b: None, None),
        ("the kind install --kafka-auth tls as it is", TLS, lambda b: None, None),
        ("strimzi/ alone as it is", PLAIN, lambda b: None, None),
        # (a) the mirror's identity: Write and Describe on its transactional id, Read on its group.
        ("the mirror's KafkaUser without its transactionalId ACL", None, lambda b: acls(b).remove(txn_acl(b)), write),
        ("the tls KafkaUser of the mirror without its transactionalId ACL", TLS, lambda b: acls(b).remove(txn_acl(b)), write),
        ("strimzi/kafka-user-mirror.yaml without its transactionalId ACL", PLAIN, lambda b: acls(b).remove(txn_acl(b)), write),
        ("the transactionalId ACL on another prefix (kiosk-)", None, lambda b: txn_acl(b)["resource"].update(name="kiosk-"), write),
        ("strimzi/kafka-user-mirror.yaml's transactionalId ACL on another prefix (kiosk-)", PLAIN, lambda b: txn_acl(b)["resource"].update(name="kiosk-"), write),
        ("the transactionalId ACL literal `mirror-` (no pod's id is that)", None, lambda b: txn_acl(b)["resource"].update(patternType="literal"), write),
        ("the transactionalId ACL on a prefix longer than the id's fixed part (mirror-kiosk-mirror-0: not every pod name)", None,
         lambda b: txn_acl(b)["resource"].update(name="mirror-kiosk-mirror-0"), write),
        ("the transactionalId ACL with Describe only", None, lambda b: txn_acl(b).update(operations=["Describe"]), write),
        ("the transactionalId ACL with Write only", None, lambda b: txn_acl(b).update(operations=["Write"]), describe),
        ("the transactionalId ACL's resource type changed to topic", None, lambda b: txn_acl(b)["resource"].update(type="topic"), write),
        ("a deny ACL on the mirror's transactional ids beside the allowing one", None,
         lambda b: acls(b).append({"type": "deny", "resource": {"type": "transactionalId", "name": "mirror-kiosk", "patternType": "prefix"}, "operations": ["Write"]}), write),
        ("the mirror's group ACL removed (its offsets commit in its transactions)", None,
         lambda b: acls(b).remove(next(a for a in acls(b) if a["resource"]["type"] == "group")), group),
        ("the mirror's transactional id under a prefix its ACL does not cover (kiosk-$(POD_NAME))", None,
         lambda b: set_env(b, TRANSACTIONAL_ID_ENV, "kiosk-$(POD_NAME)"), write),
        # (b) readers of the mirror's topics read committed records only.
        ("Kafka Connect without consumer.isolation.level", None, lambda b: connect_config(b).pop(CONNECT_ISOLATION), committed),
        ("strimzi/kafka-connect-mongodb.yaml without consumer.isolation.level", PLAIN, lambda b: connect_config(b).pop(CONNECT_ISOLATION), committed),
        ("Kafka Connect with consumer.isolation.level read_uncommitted", None, lambda b: connect_config(b).update({CONNECT_ISOLATION: "read_uncommitted"}), committed),
        ("the sink connector overriding it with read_uncommitted (consumer.override.isolation.level)", None,
         lambda b: connector_config(b).update({CONNECTOR_ISOLATION: "read_uncommitted"}), committed),
        ("the override read_committed on the connector only, under the worker's policy None (the connector is refused)", None,
         lambda b: [connect_config(b).pop(CONNECT_ISOLATION), connect_config(b).update({CONNECT_OVERRIDE_POLICY: "None"}),
                    connector_config(b).update({CONNECTOR_ISOLATION: READ_COMMITTED})], committed),
        ("the sink connector reading the dead letters too, by topics.regex, from a worker reading uncommitted", None,
         lambda b: [connect_config(b).pop(CONNECT_ISOLATION), connector_config(b).pop("topics"), connector_config(b).update({"topics.regex": r"events\.(mirror|dlq)"})],
         committed),
        ("the KafkaBridge allowed to read events.mirror with its consumers read_uncommitted", None,
         lambda b: find(b, "KafkaUser", "-bridge")["spec"]["authorization"]["acls"].append(
             {"resource": {"type": "topic", "name": "events.mirror", "patternType": "literal"}, "operations": ["Read", "Describe"]}), "over HTTP, read_committed"),
        ("the brokers with Kafka's default transaction.state.log.replication.factor (3) on one broker", None,
         lambda b: find(b, "Kafka")["spec"]["kafka"]["config"].pop("transaction.state.log.replication.factor"), "the transaction state log fits"),
        ("strimzi/kafka-cluster.yaml with transaction.state.log.min.isr above its replication factor", PLAIN,
         lambda b: find(b, "Kafka")["spec"]["kafka"]["config"].update({"transaction.state.log.min.isr": 2}), "the transaction state log fits"),
        # (c) one transactional id per instance.
        ("a fixed transactional id (KIOSK_TRANSACTIONAL_ID=mirror-0) with 2 replicas", None,
         lambda b: [set_env(b, TRANSACTIONAL_ID_ENV, "mirror-0"), find(b, "Deployment", "-mirror")["spec"].update(replicas=2)], per_instance),
        ("a fixed transactional id with 1 replica (a rolling update runs two pods)", None, lambda b: set_env(b, TRANSACTIONAL_ID_ENV, "mirror-0"), per_instance),
        ("a fixed --transactional-id argument (it wins over the env)", None, lambda b: mirror(b)["args"].extend([TRANSACTIONAL_ID_ARG, "mirror-0"]), per_instance),
        ("POD_NAME from metadata.namespace", None, lambda b: env(b, "POD_NAME")["valueFrom"]["fieldRef"].update(fieldPath="metadata.namespace"), per_instance),
        ("KIOSK_TRANSACTIONAL_ID before POD_NAME (the kubelet leaves $(POD_NAME) as written)", None,
         lambda b: mirror(b)["env"].sort(key=lambda e: e["name"] != TRANSACTIONAL_ID_ENV), per_instance),
        ("$$(POD_NAME) (escaped: the text itself)", None, lambda b: set_env(b, TRANSACTIONAL_ID_ENV, "mirror-$$(POD_NAME)"), per_instance),
        ("the id from a ConfigMap key (one value for every pod)", None,
         lambda b: [b.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ids", "namespace": "pipeline"}, "data": {"id": "mirror-a"}}),
                    set_env(b, TRANSACTIONAL_ID_ENV, valueFrom={"configMapKeyRef": {"name": "ids", "key": "id"}})], per_instance),
        ("the default id (no env) with the pod's hostname fixed (spec.hostname)", None,
         lambda b: [drop_env(b, "POD_NAME", TRANSACTIONAL_ID_ENV), find(b, "Deployment", "-mirror")["spec"]["template"]["spec"].update(hostname="mirror")], per_instance),
        ("the default id (no env) with HOSTNAME set to a fixed value", None,
         lambda b: [drop_env(b, "POD_NAME", TRANSACTIONAL_ID_ENV), mirror(b)["env"].append({"name": "HOSTNAME", "value": "mirror"})], per_instance),
        # Accepted: exactly once kept.
        ("the default id (no env: <group>-<the pod's name>, under the ACL's prefix mirror-)", None, lambda b: drop_env(b, "POD_NAME", TRANSACTIONAL_ID_ENV), None),
        ("--transactional-id mirror-$(POD_NAME) as an argument", None,
         lambda b: [mirror(b)["args"].extend([TRANSACTIONAL_ID_ARG, "mirror-$(POD_NAME)"]), drop_env(b, TRANSACTIONAL_ID_ENV)], None),
        ("3 replicas, each with its pod's name", None, lambda b: find(b, "Deployment", "-mirror")["spec"].update(replicas=3), None),
        ("the isolation on the connector only (consumer.override.isolation.level, the worker's default policy All)", None,
         lambda b: [connect_config(b).pop(CONNECT_ISOLATION), connector_config(b).update({CONNECTOR_ISOLATION: READ_COMMITTED})], None),
        ("the transactionalId ACL with All operations", None, lambda b: txn_acl(b).update(operations=["All"]), None),
    ]
    bases = {None: bundle, TLS: tls_bundle, PLAIN: plain}
    expect_refusals(report, [(what, bases[base], doctor, want) for what, base, doctor, want in cases], lambda b: probe(check_exactly_once, b),
                    "self-check: exactly once: {what}: accepted", "self-check: exactly once: {what}: rejected")
    # Only the transactional id's parts known offline count: a deny ACL elsewhere, or the pods'
    # names, are not guessed.
    user = {"spec": {"authorization": {"acls": [{"resource": {"type": "transactionalId", "name": "mirror-", "patternType": "prefix"}, "operations": ["Write"]},
                                                {"type": "deny", "resource": {"type": "transactionalId", "name": "other-", "patternType": "prefix"}, "operations": ["Write"]}]}}}
    pod = [("text", "mirror-"), ("pod", "the pod's name")]
    report.check(acl_covers_id(user, "transactionalId", pod, "Write") and acl_covers_id(user, "transactionalId", [("text", "mirror-0")], "Write")
                 and not acl_covers_id(user, "transactionalId", [("text", "mirror")], "Write") and not acl_covers_id(user, "transactionalId", [("pod", "x")], "Write"),
                 "self-check: exactly once: a prefix ACL covers the ids whose fixed part it begins, and no other")
    report.check(expand_refs("a-$(X)-$$(X)-$(Y)", {"X": [("pod", "p")]}) == [("text", "a-"), ("pod", "p"), ("text", "-$(X)-$(Y)")],
                 "self-check: exactly once: $(VAR) expanded as the kubelet does ($$ escapes, an undefined variable stays)")
    # strimzi/ and the chart: the plain KafkaUser and KafkaConnect are the chart's.
    b = copy.deepcopy(plain)
    acls(b).remove(txn_acl(b))
    errs = quiet(compare_with_charts, b, default_charts, applied)
    report.check(any("kafka-user-mirror.yaml" in e and ".spec equals" in e for e in errs),
                 "self-check: exactly once: strimzi/kafka-user-mirror.yaml without the transactionalId ACL the chart renders is rejected (differs from the chart)", str(errs[:2]))
    # The chart ties the ACL's prefix and the pods' ids to one value, for any prefix and replicas;
    # an empty prefix is refused by its schema.
    def follows_prefix(values, objs):
        errs = probe(check_exactly_once, objs)
        tid = env(objs, TRANSACTIONAL_ID_ENV).get("value")
        report.check(not errs and tid == "kiosk.mirror.$(POD_NAME)" and txn_acl(objs)["resource"]["name"] == "kiosk.mirror.",
                     f"self-check: exactly once: the test chart with {values}: the pods' ids ({tid}) and the ACL follow the prefix", str(errs[:2]))

    chart_variants(report, "test-kafka-istio-mongo", [({"mirror": {"transactionalIdPrefix": "kiosk.mirror.", "replicas": 3}}, True), ({"mirror": {"transactionalIdPrefix": ""}}, False)],
                   lambda values, ok: f"self-check: exactly once: the test chart with {values} {'renders' if ok else 'is refused by its schema'}", follows_prefix)
    mirror_code_checks(report)
