"""An external Kafka, one Strimzi does not run (issue 27, docs/external-kafka.md): the files of
strimzi/external/ (Strimzi 1.2.0's standalone Topic and User Operators, the tenants' KafkaTopics
and KafkaUsers) and istio/external-kafka/ (the ServiceEntry, the tenants' DestinationRules and
kiosk WasmPlugins). Not yet applied by scripts/kind-up.sh (the local mesh part of issue 27), so
kept out of the other bundles and checked here as one bundle of their own:
  - the standalone operators dial the ServiceEntry's host:port, SASL_SSL with SCRAM-SHA-512,
    trusting a CA from a Secret, the admin credential from the platform's Secret and never
    written into what they log; each selects by one label, which every KafkaTopic/KafkaUser it
    watches carries; the Topic Operator watches its own namespace;
  - one User Operator per tenant namespace, running beside the admin credential (the operators'
    namespace, never a tenant's) and watching its tenant's namespace, where that tenant's
    KafkaUsers are, so that Strimzi writes each user's Secret (named as the user, no prefix) where
    the sidecar reads it; its STRIMZI_IGNORED_USERS_PATTERN ignores every Kafka user whose name
    does not start with `<tenant>-` and none of its own (else its periodic reconciliation deletes
    the other tenants' users and the admin's); it reads the CA in its own namespace; its service
    account holds exactly Strimzi's install Role in its tenant's namespace and `get` on the CA
    Secret, nothing else; no one else may write KafkaUsers in a tenant namespace (no other
    subject bound to such a Role, no ClusterRole aggregated into Kubernetes' roles with that
    right); no tenant's name starts with another's `<tenant>-`;
  - tenants kept apart: every KafkaUser and KafkaTopic belongs to one tenant (label
    kiosk.io/tenant, a tenant namespace of the bundle), a user's name and every ACL it is allowed
    start with `<tenant>-` / `<tenant>.` (no `*`, no empty or shorter prefix, no cluster ACL),
    every user is scram-sha-512, each tenant topic has a writer and a reader of that tenant;
  - the ServiceEntry is MESH_EXTERNAL, TCP, DNS, outside cluster.local;
  - each tenant namespace has a DestinationRule originating TLS (SIMPLE or MUTUAL) to that host
    and port, with a CA (credentialName), sni and a subject name of that host, and a
    workloadSelector that selects every pod its WasmPlugin selects;
  - each tenant's kiosk WasmPlugin matches the external port only, performs SCRAM-SHA-512, names
    in kafka_auth.upstreams.dns_names only the external host (the DNS name the broker's
    certificate proves; no wildcard), any clusters only the external one, no principal, gives
    the topic nodes the ServiceEntry's namespace, and carries the
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

    def ca_namespace(self) -> str | None:
        """Where the User Operator reads its CA Secrets: STRIMZI_CA_NAMESPACE, else the watched
        namespace (Strimzi 1.2.0 UserOperatorConfig.getCaNamespaceOrNamespace)."""
        e = self.env.get("STRIMZI_CA_NAMESPACE") or {}
        ref = ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if ref == "metadata.namespace":
            return self.namespace
        return e.get("value") or self.watched_namespace()

    def service_account(self) -> tuple[str | None, str]:
        return self.namespace, self.obj["spec"]["template"]["spec"].get("serviceAccountName") or "default"


def operators(objects: list[dict]) -> list[Operator]:
    out = []
    for o in objects:
        for _, podspec in pod_templates(o):
            for c in containers(podspec):
                for a in c.get("args") or []:
                    if a in OPERATOR_SCRIPTS:
                        out.append(Operator(OPERATOR_SCRIPTS[a], o, c))
    return out


# Strimzi 1.2.0's install/user-operator/02-Role-strimzi-user-operator.yaml: what a User Operator
# may do in the namespace it watches, no more and no less (group, resource, verb).
USER_OPERATOR_INSTALL_GRANT = frozenset(
    [("kafka.strimzi.io", "kafkausers", v) for v in ("get", "list", "watch", "create", "patch", "update")]
    + [("kafka.strimzi.io", "kafkausers/status", v) for v in ("get", "patch", "update")]
    + [("kafka.strimzi.io", "kafkausers/finalizers", "update")]
    + [("", "secrets", v) for v in ("get", "list", "watch", "create", "patch", "update", "delete")])
KAFKA_USER_WRITE = ("create", "update", "patch", "delete", "deletecollection", "*")
# Names a tenant's User Operator must ignore (STRIMZI_IGNORED_USERS_PATTERN) besides the other
# tenants' users: an admin user, Kafka's special principals, a name with a line break.
OUTSIDE_NAMES = ("admin", "kafka-external-admin", "ANONYMOUS", "*", "admin\nx")


def grants(objects: list[dict], sa: tuple[str | None, str]) -> list[tuple[dict, str | None, tuple[str, str, str, str | None]]]:
    """What the bindings of the bundle give service account `sa` (namespace, name): (binding,
    the namespace it applies in or None for the whole cluster, (group, resource, verb,
    resourceName or None))."""
    roles = {(o.get("kind"), o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects if o.get("kind") in ("Role", "ClusterRole")}
    out = []
    for b in objects:
        if b.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        bns = b["metadata"].get("namespace") if b["kind"] == "RoleBinding" else None
        if not any(s.get("kind") == "ServiceAccount" and (s.get("namespace") or bns, s.get("name")) == sa for s in b.get("subjects") or []):
            continue
        ref = b.get("roleRef") or {}
        role = roles.get((ref.get("kind"), bns if ref.get("kind") == "Role" else None, ref.get("name")))
        for r in (role or {}).get("rules") or []:
            for g in r.get("apiGroups") or []:
                for res in r.get("resources") or []:
                    for v in r.get("verbs") or []:
                        for n in r.get("resourceNames") or [None]:
                            out.append((b, bns, (g, res, v, n)))
    return out


def ignored(pattern, name: str) -> bool:
    """Whether STRIMZI_IGNORED_USERS_PATTERN ignores a Kafka user: Java's Matcher.matches(), the
    whole name (ScramCredentialsOperator, SimpleAclOperator, QuotasOperator: getAllUsers). The
    patterns here use only what Java's and Python's regular expressions share."""
    return pattern.fullmatch(name) is not None


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
    for t in sorted(tenants):
        for other in sorted(tenants - {t}):
            report.check(not other.startswith(f"{t}-"), f"{label}: tenant {other} does not start with tenant {t}'s user prefix {t}-",
                         f"{t}'s users are the names starting with {t}-: {other}'s users would be {t}'s, and {t}'s User Operator would delete them")
    topics = [o for o in objects if o.get("kind") == "KafkaTopic"]
    users = [o for o in objects if o.get("kind") == "KafkaUser"]

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
    topic_ops = [op for op in ops if op.kind == "Topic"]
    user_ops = [op for op in ops if op.kind == "User"]
    report.check(len(topic_ops) == 1, f"{label}: one standalone Topic Operator", f"found {len(topic_ops)}")
    ops_ns = topic_ops[0].namespace if topic_ops else None
    # One User Operator per tenant namespace: Strimzi writes a user's Secret in its KafkaUser's
    # namespace (KafkaUserModel.createSecret), and a sidecar reads a Secret of its own namespace only.
    for t in sorted(tenants):
        watching = [op for op in user_ops if op.watched_namespace() == t]
        report.check(len(watching) == 1, f"{label}: tenant {t}: one standalone User Operator watches its namespace (its users' Secrets are written there)",
                     f"found {len(watching)}")
    secret_refs = set()
    for op in ops:
        who = f"{label}: {ident(op.obj)} ({op.kind} Operator)"
        bs = op.value("STRIMZI_KAFKA_BOOTSTRAP_SERVERS") or ""
        report.check(bool(bs) and set(bs.split(",")) <= bootstrap, f"{who}: STRIMZI_KAFKA_BOOTSTRAP_SERVERS {bs!r} is the ServiceEntry's host:port",
                     f"the ServiceEntry declares {sorted(bootstrap)}")
        if op.kind == "Topic":
            report.check(op.watched_namespace() == op.namespace, f"{who}: watches its own namespace {op.namespace} (STRIMZI_NAMESPACE)", f"{op.watched_namespace()}")
        else:
            report.check(op.watched_namespace() in tenants, f"{who}: watches a tenant namespace (STRIMZI_NAMESPACE)", f"{op.watched_namespace()}, tenants {sorted(tenants)}")
            report.check(op.namespace == ops_ns and op.namespace not in tenants,
                         f"{who}: runs in the operators' namespace {ops_ns}, beside the admin credential, not in a tenant's", f"{op.namespace}")
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
            check_user_operator(report, who, op, objects, tenants, users)
    for s in (o for o in objects if o.get("kind") == "Secret"):
        report.error(f"{label}: {ident(s)}: a Secret in the bundle: the admin credential and the CA are the platform's (docs/external-kafka.md)")

    # The tenants' KafkaTopics and KafkaUsers: watched, labelled, kept apart.
    user_op_of = {op.watched_namespace(): op for op in user_ops}
    for o in topics + users:
        who = f"{label}: {ident(o)}"
        md = o["metadata"]
        labels = md.get("labels") or {}
        op = (topic_ops or [None])[0] if o["kind"] == "KafkaTopic" else user_op_of.get(md.get("namespace"))
        if o["kind"] == "KafkaTopic" and op is not None:
            report.check(md.get("namespace") == op.watched_namespace(), f"{who}: in the namespace its standalone operator watches ({op.watched_namespace()})", f"{md.get('namespace')}")
        if o["kind"] == "KafkaUser":
            report.check(op is not None, f"{who}: in the namespace its standalone operator watches (a tenant's User Operator)",
                         f"{md.get('namespace')}: no User Operator watches it (User Operators watch {sorted(k for k in user_op_of if k)})")
        if op is not None:
            report.check(all(labels.get(k) == v for k, v in op.selector().items()), f"{who}: carries the label its standalone operator selects {op.selector()}", f"{labels}")
        tenant = labels.get(TENANT_LABEL)
        if not report.check(tenant in tenants, f"{who}: belongs to a tenant ({TENANT_LABEL} names a tenant namespace)", f"{tenant!r}, tenants {sorted(tenants)}"):
            continue
        if o["kind"] == "KafkaUser":
            report.check(md.get("namespace") == tenant, f"{who}: in its tenant's namespace {tenant}, where its User Operator writes its Secret and the sidecar reads it",
                         f"{md.get('namespace')}: a sidecar reads a Secret of its own namespace only (secretKeyRef)")
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
            hosts = {host for _, host, _ in endpoints}
            clusters, principals = ups.get("clusters") or [], ups.get("principals") or []
            dns_names = ups.get("dns_names") or []
            report.check(bool(dns_names) and set(dns_names) <= hosts, f"{who}: kafka_auth.upstreams.dns_names name only the external host the broker's certificate proves",
                         f"{dns_names} (the ServiceEntry's hosts: {sorted(hosts)}): without it the filter would send SASL to whatever the cluster reaches, "
                         "in plaintext if the DestinationRule is missing; a wildcard or another name would accept another server's certificate")
            report.check(set(clusters) <= allowed, f"{who}: kafka_auth.upstreams.clusters name only the external cluster, if any",
                         f"{clusters} (allowed: {sorted(allowed)}): a wildcard or another cluster would receive the SASL exchange")
            report.check(not principals, f"{who}: kafka_auth.upstreams has no principals (the external broker proves no mesh identity)", f"{principals}")
            tns = (cfg.get("kiali") or {}).get("topic_namespace")
            report.check(tns == se_ns, f"{who}: kiali.topic_namespace {se_ns} (the external cluster's topic nodes apart from the internal ones)", f"{tns!r}")
            if kafka_plugin is not None:
                report.check(vm_environment(p) == vm_environment(kafka_plugin), f"{who}: the vmConfig of istio/wasm-plugin-kiosk.yaml (docs/wasm-vms.md)",
                             f"{vm_environment_text(p)} != {vm_environment_text(kafka_plugin)}")
    # Only a tenant's User Operator writes KafkaUsers in a tenant namespace: whoever may write them
    # there chooses the ACLs and names the operator applies with the admin credential.
    op_sas = {op.watched_namespace(): op.service_account() for op in user_ops}
    roles = {(o.get("kind"), o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects if o.get("kind") in ("Role", "ClusterRole")}
    for b in objects:
        if b.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        bns = b["metadata"].get("namespace") if b["kind"] == "RoleBinding" else None
        if bns is not None and bns not in tenants:
            continue
        ref = b.get("roleRef") or {}
        role = roles.get((ref.get("kind"), bns if ref.get("kind") == "Role" else None, ref.get("name"))) or {}
        writes = any(("kafkausers" in (r.get("resources") or []) or "*" in (r.get("resources") or []))
                     and any(v in KAFKA_USER_WRITE for v in r.get("verbs") or []) for r in role.get("rules") or [])
        if not writes:
            continue
        others = [s for s in b.get("subjects") or [] if bns is None or (s.get("kind"), s.get("namespace") or bns, s.get("name")) != ("ServiceAccount", *op_sas.get(bns, (None, None)))]
        report.check(not others, f"{label}: {ident(b)}: only the tenant's User Operator may write KafkaUsers in {bns or 'every namespace'}",
                     f"it lets {[s.get('name') for s in others]} write them: a tenant would choose its own ACLs, or name another tenant's user and take it over "
                     "(the User Operator applies every KafkaUser it watches; STRIMZI_IGNORED_USERS_PATTERN acts on its periodic listing only)")
    for cr in (o for o in objects if o.get("kind") == "ClusterRole"):
        agg = [k for k, v in (cr["metadata"].get("labels") or {}).items() if k.startswith("rbac.authorization.k8s.io/aggregate-to-") and v == "true"]
        writes = any("kafkausers" in (r.get("resources") or []) and any(v in KAFKA_USER_WRITE for v in r.get("verbs") or []) for r in cr.get("rules") or [])
        report.check(not (agg and writes), f"{label}: {ident(cr)}: not aggregated into Kubernetes' roles with write on KafkaUsers",
                     f"{agg}: every namespace editor could write the tenants' KafkaUsers")

    # The admin credential reaches the standalone operators only.
    for o in objects:
        if o.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job", "Pod") and o not in [op.obj for op in ops]:
            text = repr(o)
            for s in secret_refs:
                report.check(s not in text, f"{label}: {ident(o)} does not use the operators' Secret {s}")


def check_user_operator(report: Report, who: str, op: Operator, objects: list[dict], tenants: set[str], users: list[dict]) -> None:
    """A tenant's User Operator: it writes its users' Secrets where the sidecars read them, leaves
    every other user of the cluster alone, reads the CA beside the admin credential, and holds no
    grant beyond Strimzi's install Role in its tenant's namespace and `get` on that CA."""
    tenant = op.watched_namespace()
    prefix = op.env.get("STRIMZI_SECRET_PREFIX") or {}
    report.check(not prefix.get("value") and "valueFrom" not in prefix, f"{who}: writes each user's Secret under the user's name (no STRIMZI_SECRET_PREFIX)",
                 f"{prefix}: the sidecar template (kiosk-kafka-credentials) reads the Secret `<user>`")
    ca = op.value("STRIMZI_CLUSTER_CA_CERT_SECRET_NAME")
    report.check(op.ca_namespace() == op.namespace, f"{who}: reads the external CA in its own namespace {op.namespace} (STRIMZI_CA_NAMESPACE)",
                 f"{op.ca_namespace()}: Main.createAdminClient reads {ca} there and, finding none, trusts no private CA")
    # STRIMZI_IGNORED_USERS_PATTERN: each periodic reconciliation lists every user with SCRAM
    # credentials, ACLs or quotas in Kafka but those it matches, and deletes each one no KafkaUser
    # of the watched namespace names (KafkaUserOperator.getAllUsers, UserControllerLoop.reconcile,
    # KafkaUserOperator.delete).
    text = op.value("STRIMZI_IGNORED_USERS_PATTERN")
    if not report.check(bool(text), f"{who}: STRIMZI_IGNORED_USERS_PATTERN set",
                        f"missing: its periodic reconciliation deletes every user in Kafka that no KafkaUser in {tenant} names: the other tenants', the admin's"):
        return
    try:
        pattern = re.compile(text)
    except re.error as e:
        report.error(f"{who}: STRIMZI_IGNORED_USERS_PATTERN {text!r}: {e}")
        return
    own = [u["metadata"]["name"] for u in users if u["metadata"].get("namespace") == tenant]
    others = [u["metadata"]["name"] for u in users if u["metadata"].get("namespace") != tenant]
    outside = sorted(set(others + [f"{t}-producer" for t in tenants - {tenant}] + [tenant, f"{tenant}b-producer", f"x{tenant}-producer"] + list(OUTSIDE_NAMES)))
    outside = [n for n in outside if not n.startswith(f"{tenant}-")]
    missed = [n for n in outside if not ignored(pattern, n)]
    report.check(not missed, f"{who}: STRIMZI_IGNORED_USERS_PATTERN ignores every Kafka user whose name does not start with {tenant}-",
                 f"{text!r} does not ignore {missed}: this operator would delete them (no KafkaUser in {tenant} names them)")
    mine = [n for n in own + [f"{tenant}-any"] if ignored(pattern, n)]
    report.check(not mine, f"{who}: STRIMZI_IGNORED_USERS_PATTERN leaves {tenant}'s own users managed", f"{text!r} ignores {mine}")
    # Its grants: Strimzi's install Role in its tenant's namespace, `get` on the CA in its own.
    sa = op.service_account()
    given = grants(objects, sa)
    in_tenant = {(g, r, v) for b, ns, (g, r, v, n) in given if ns == tenant and n is None}
    report.check(in_tenant == USER_OPERATOR_INSTALL_GRANT, f"{who}: its service account holds in {tenant} what Strimzi's install Role grants, no more",
                 f"missing {sorted(USER_OPERATOR_INSTALL_GRANT - in_tenant)}, more {sorted(in_tenant - USER_OPERATOR_INSTALL_GRANT)}")
    report.check(("", "secrets", "get", ca) in {x for _, ns, x in given if ns == op.namespace}, f"{who}: its service account may get the Secret {ca} in {op.namespace}")
    for b, ns, (g, r, v, n) in given:
        if ns == tenant and n is None:
            continue
        if ns == op.namespace and (g, r, v, n) == ("", "secrets", "get", ca):
            continue
        report.error(f"{who}: its service account {sa[1]} gets {v} on {r}{'/' + n if n else ''} in {ns or 'every namespace'} ({ident(b)}): "
                     f"beyond Strimzi's install Role in {tenant} and get on the Secret {ca} in {op.namespace}")


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

    def uo_env(b, tenant):
        return find(b, "Deployment", f"strimzi-user-operator-{tenant}")["spec"]["template"]["spec"]["containers"][0]["env"]

    def rebind(binding, sa):
        b2 = copy.deepcopy(binding)
        b2["metadata"]["name"] = f"{sa}-too"
        b2["subjects"] = [{"kind": "ServiceAccount", "name": sa, "namespace": "kafka-external"}]
        return b2

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
        ("a KafkaUser in kafka-external (its Secret out of the sidecars' reach, no operator watching it)", objects,
         lambda b: find(b, "KafkaUser", "tenant-a-consumer")["metadata"].update(namespace="kafka-external"), "in the namespace its standalone operator watches"),
        ("tenant-a's KafkaUser in tenant-b's namespace (its Secret beside tenant-b's workloads)", objects,
         lambda b: find(b, "KafkaUser", "tenant-a-consumer")["metadata"].update(namespace="tenant-b"), "in its tenant's namespace tenant-a"),
        ("a tls KafkaUser", objects, lambda b: find(b, "KafkaUser", "tenant-b-producer")["spec"]["authentication"].update(type="tls"), "scram-sha-512"),
        ("a KafkaUser without a tenant", objects, lambda b: find(b, "KafkaUser", "tenant-b-producer")["metadata"]["labels"].pop(TENANT_LABEL), "belongs to a tenant"),
        ("tenant-a's topic named in tenant-b's prefix", objects, lambda b: find(b, "KafkaTopic", "tenant-a.orders")["spec"].update(topicName="tenant-b.orders2"), "starts with its tenant's prefix"),
        ("the Topic Operator's bootstrap another host", objects, lambda b: env(b, "strimzi-topic-operator", "STRIMZI_KAFKA_BOOTSTRAP_SERVERS", "kafka.other.example:9096"), "is the ServiceEntry's host:port"),
        ("the User Operator's bootstrap another port", objects, lambda b: env(b, "strimzi-user-operator-tenant-b", "STRIMZI_KAFKA_BOOTSTRAP_SERVERS", "kafka.external.example:9092"), "is the ServiceEntry's host:port"),
        ("the ServiceEntry on another port than the operators dial", objects, lambda b: find(b, "ServiceEntry", "kafka-external")["spec"]["ports"][0].update(number=9094), "is the ServiceEntry's host:port"),
        ("the Topic Operator without SASL_SSL", objects, lambda b: env(b, "strimzi-topic-operator", "STRIMZI_SECURITY_PROTOCOL", "SASL_PLAINTEXT"), "STRIMZI_SECURITY_PROTOCOL SASL_SSL"),
        ("the Topic Operator's mechanism upper case (refused by TopicOperatorConfig)", objects, lambda b: env(b, "strimzi-topic-operator", "STRIMZI_SASL_MECHANISM", "SCRAM-SHA-512"), "STRIMZI_SASL_MECHANISM scram-sha-512"),
        ("the Topic Operator's admin password literal", objects, lambda b: env(b, "strimzi-topic-operator", "STRIMZI_SASL_PASSWORD", "changeit"), "holds a literal value"),
        ("the User Operator's admin password written into its admin client properties", objects,
         lambda b: env(b, "strimzi-user-operator-tenant-a", uo_conf, re.sub(r'password="[^"]*"', 'password="changeit"', next(
             e["value"] for e in find(b, "Deployment", "strimzi-user-operator-tenant-a")["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == uo_conf))),
         "never written into"),
        ("the User Operator's admin password expanded by the kubelet into its properties", objects,
         lambda b: env(b, "strimzi-user-operator-tenant-a", uo_conf, re.sub(r'password="[^"]*"', 'password="$(ADMIN_PASSWORD)"', next(
             e["value"] for e in find(b, "Deployment", "strimzi-user-operator-tenant-a")["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == uo_conf))),
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
        ("tenant-a's WasmPlugin also sending SASL to any cluster (`*`)", objects, lambda b: plugin(b, "tenant-a")["pluginConfig"]["kafka_auth"]["upstreams"].update(clusters=["*"]),
         "name only the external cluster, if any"),
        ("tenant-a's WasmPlugin with a wildcard host cluster", objects,
         lambda b: plugin(b, "tenant-a")["pluginConfig"]["kafka_auth"]["upstreams"].update(clusters=["outbound|9096||*"]), "name only the external cluster, if any"),
        ("tenant-b's WasmPlugin naming the internal cluster too", objects,
         lambda b: plugin(b, "tenant-b")["pluginConfig"]["kafka_auth"]["upstreams"].update(clusters=["outbound|9092||kiosk-kafka-bootstrap.kafka.svc.cluster.local"]),
         "name only the external cluster, if any"),
        ("tenant-a's WasmPlugin trusting the cluster alone (no dns_names: plaintext SASL if the DestinationRule goes)", objects,
         lambda b: plugin(b, "tenant-a")["pluginConfig"]["kafka_auth"].update(upstreams={"clusters": ["outbound|9096||kafka.external.example"]}),
         "dns_names name only the external host"),
        ("tenant-b's WasmPlugin accepting any DNS name (`*`)", objects,
         lambda b: plugin(b, "tenant-b")["pluginConfig"]["kafka_auth"]["upstreams"].update(dns_names=["*"]), "dns_names name only the external host"),
        ("tenant-a's WasmPlugin accepting another host's certificate", objects,
         lambda b: plugin(b, "tenant-a")["pluginConfig"]["kafka_auth"]["upstreams"]["dns_names"].append("kafka.other.example"), "dns_names name only the external host"),
        ("tenant-b's WasmPlugin with a principal `*`", objects, lambda b: plugin(b, "tenant-b")["pluginConfig"]["kafka_auth"]["upstreams"].update(principals=["*"]), "has no principals"),
        ("tenant-a's WasmPlugin on the internal ports too", objects, lambda b: plugin(b, "tenant-a")["match"][0]["ports"].append({"number": 9092}), "external port only"),
        ("tenant-a's WasmPlugin with its topic nodes in namespace kafka", objects, lambda b: plugin(b, "tenant-a")["pluginConfig"]["kiali"].update(topic_namespace="kafka"),
         "kiali.topic_namespace"),
        ("tenant-b's WasmPlugin without vmConfig", objects, lambda b: plugin(b, "tenant-b").pop("vmConfig"), "the vmConfig of istio/wasm-plugin-kiosk.yaml"),
        ("tenant-a's User Operator without STRIMZI_IGNORED_USERS_PATTERN (it deletes tenant-b's users and the admin's)", objects,
         lambda b: uo_env(b, "tenant-a").remove(next(e for e in uo_env(b, "tenant-a") if e["name"] == "STRIMZI_IGNORED_USERS_PATTERN")), "STRIMZI_IGNORED_USERS_PATTERN set"),
        ("tenant-a's User Operator ignoring only tenant-b's users (it deletes the admin's)", objects,
         lambda b: env(b, "strimzi-user-operator-tenant-a", "STRIMZI_IGNORED_USERS_PATTERN", "tenant-b-.*"), "ignores every Kafka user whose name does not start with tenant-a-"),
        ("tenant-b's User Operator ignoring what starts with `tenant-b` without its dash (it deletes tenant-bx's)", objects,
         lambda b: env(b, "strimzi-user-operator-tenant-b", "STRIMZI_IGNORED_USERS_PATTERN", "(?s)(?!tenant-b).*"), "ignores every Kafka user whose name does not start with tenant-b-"),
        ("tenant-a's User Operator's pattern without (?s) (a name with a line break is deleted)", objects,
         lambda b: env(b, "strimzi-user-operator-tenant-a", "STRIMZI_IGNORED_USERS_PATTERN", "(?!tenant-a-).*"), "ignores every Kafka user whose name does not start with tenant-a-"),
        ("tenant-b's User Operator ignoring its own users too", objects,
         lambda b: env(b, "strimzi-user-operator-tenant-b", "STRIMZI_IGNORED_USERS_PATTERN", ".*"), "leaves tenant-b's own users managed"),
        ("tenant-b's User Operator watching tenant-a (two operators on one namespace, none on tenant-b)", objects,
         lambda b: env(b, "strimzi-user-operator-tenant-b", "STRIMZI_NAMESPACE", "tenant-a"), "tenant tenant-b: one standalone User Operator watches its namespace"),
        ("one User Operator watching kafka-external for both tenants (the Secrets out of the sidecars' reach)", objects,
         lambda b: [env(b, "strimzi-user-operator-tenant-a", "STRIMZI_NAMESPACE", "kafka-external")] + [find(b, "KafkaUser", u)["metadata"].update(namespace="kafka-external")
                    for u in ("tenant-a-producer", "tenant-a-consumer")], "in its tenant's namespace tenant-a"),
        ("tenant-a's User Operator with a Secret prefix (the sidecar reads `<user>`)", objects,
         lambda b: env(b, "strimzi-user-operator-tenant-a", "STRIMZI_SECRET_PREFIX", "kafka-"), "no STRIMZI_SECRET_PREFIX"),
        ("tenant-a's User Operator reading the CA in tenant-a (no STRIMZI_CA_NAMESPACE)", objects,
         lambda b: uo_env(b, "tenant-a").remove(next(e for e in uo_env(b, "tenant-a") if e["name"] == "STRIMZI_CA_NAMESPACE")), "reads the external CA in its own namespace"),
        ("tenant-a's User Operator running in tenant-a (the admin credential in a tenant's namespace)", objects,
         lambda b: find(b, "Deployment", "strimzi-user-operator-tenant-a")["metadata"].update(namespace="tenant-a"), "not in a tenant's"),
        ("tenant-a's User Operator also bound in tenant-b (it could read tenant-b's Secrets)", objects,
         lambda b: b.append(rebind(find(b, "RoleBinding", "strimzi-user-operator", "tenant-b"), "strimzi-user-operator-tenant-a")), "beyond Strimzi's install Role in tenant-a"),
        ("tenant-a's User Operator bound to a ClusterRole everywhere", objects,
         lambda b: b.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "uo-everywhere"},
                             "subjects": [{"kind": "ServiceAccount", "name": "strimzi-user-operator-tenant-a", "namespace": "kafka-external"}],
                             "roleRef": {"kind": "ClusterRole", "name": "uo-everywhere", "apiGroup": "rbac.authorization.k8s.io"}})
         or b.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "uo-everywhere"},
                      "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]}), "in every namespace"),
        ("the User Operators' CA Role on every Secret of kafka-external (the admin credential too)", objects,
         lambda b: find(b, "Role", "strimzi-user-operator-read-ca")["rules"][0].pop("resourceNames"), "gets get on secrets in kafka-external"),
        ("tenant-b's User Operator without its Role in tenant-b", objects,
         lambda b: b.remove(find(b, "RoleBinding", "strimzi-user-operator", "tenant-b")), "what Strimzi's install Role grants"),
        ("tenant-a's default service account bound to the User Operator's Role (a tenant writing KafkaUsers)", objects,
         lambda b: find(b, "RoleBinding", "strimzi-user-operator", "tenant-a")["subjects"].append({"kind": "ServiceAccount", "name": "default", "namespace": "tenant-a"}),
         "only the tenant's User Operator may write KafkaUsers in tenant-a"),
        ("Strimzi's strimzi-admin ClusterRole, aggregated into edit, in the bundle", objects,
         lambda b: b.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "strimzi-admin", "labels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}},
                             "rules": [{"apiGroups": ["kafka.strimzi.io"], "resources": ["kafkausers"], "verbs": ["get", "list", "watch", "create", "delete", "patch", "update"]}]}),
         "not aggregated into Kubernetes' roles"),
        ("tenants tenant-a and tenant-a-b (tenant-a's user prefix covers tenant-a-b's users)", objects,
         lambda b: b.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant-a-b", "labels": {TENANT_LABEL: "tenant-a-b"}}}),
         "does not start with tenant tenant-a's user prefix"),
        ("the ServiceEntry MESH_INTERNAL", objects, lambda b: find(b, "ServiceEntry", "kafka-external")["spec"].update(location="MESH_INTERNAL"), "location MESH_EXTERNAL"),
        ("the ServiceEntry not exported to tenant-b", objects, lambda b: find(b, "ServiceEntry", "kafka-external")["spec"]["exportTo"].remove("tenant-b"), "exported to tenant namespace tenant-b"),
    ]
    expect_refusals(report, cases, lambda b: probe(check_external_kafka, b),
                    "self-check: external Kafka: {what}: accepted", "self-check: external Kafka: {what}: rejected")
