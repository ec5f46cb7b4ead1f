"""Kafka credentials (issue 14, docs/kafka-credentials.md): the mesh supplies them, applications
hold none. No application container holds a Kafka credential; a WasmPlugin with kafka_auth
takes both variables from the sidecar and every pod it selects gives its istio-proxy the
user's name and Secret. TLS client identity (`kind-up.sh --kafka-auth tls`): each client of a
listener requiring certificates has one MUTUAL DestinationRule for its own KafkaUser, whose
Secret a sync Deployment keeps (its program run here against a stand-in API), istiod may serve
it to that sidecar and the application gets no API token. Credentials a StatefulSet keeps in
its volume outlive a reinstall."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import Report, ident
from .contract import filter_config_fields, plugin_protocol
from .fakeapi import FakeApi
from .k8s import containers, pod_templates, rbac_allows, selector_matches, service_account_of, token_mounted
from .mesh import PROXY, injected_proxy_env, istio_match, plugin_selects, tls_origination
from .mongodb import is_mongodb_rule
from .strimzi import KAFKA_USER_LABEL, Client, kafka_clients, kafka_listeners, listener_on


def client_cert_targets(objects: list[dict]) -> dict[tuple[str, str], tuple[dict, tuple[str, str], tuple[str, str]]]:
    """Secrets a TLS sync Deployment keeps (istio/kafka-tls-client-identity/tls-sync-*.yaml):
    (namespace, copy) -> (Deployment, the KafkaUser's Secret it copies, the cluster CA Secret)."""
    out = {}
    for o in objects:
        if o.get("kind") != "Deployment":
            continue
        for c in containers((o["spec"].get("template") or {}).get("spec") or {}):
            env = {e.get("name"): e.get("value") for e in c.get("env") or []}
            if not (env.get("KIOSK_CLIENT_CERTS") and env.get("KIOSK_CA_SOURCE")):
                continue
            suffix = env.get("KIOSK_CLIENT_CERT_SUFFIX") or "-mesh-tls"
            ca = tuple(env["KIOSK_CA_SOURCE"].split("/", 1))
            for u in re.split(r"[,\s]+", env["KIOSK_CLIENT_CERTS"]):
                if u:
                    ns, user = u.split("/", 1)
                    out[(ns, user + suffix)] = (o, (ns, user), ca)
    return out


def check_tls_client_identity(report: Report, label: str, objects: list[dict], script_secrets: set[tuple[str, str]]) -> None:
    """TLS client identity: a DestinationRule that originates TLS to a Kafka TLS listener
    presents one KafkaUser's certificate (MUTUAL) to exactly that user's pods, trusts Strimzi's
    current cluster CA and pins the broker's name; the credential is kept in sync with the
    User Operator's Secret and Strimzi's CA by a Deployment whose Roles allow what it does;
    istiod may serve it to those sidecars (list secrets) and their applications cannot use that
    grant. Every Kafka client of a TLS listener has such a rule and does no TLS of its own."""
    listeners = {l.get("port"): (k, l) for k, l in kafka_listeners(objects)}
    targets = client_cert_targets(objects)
    clients = kafka_clients(Report(False), objects)
    users = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects if o.get("kind") == "KafkaUser"}
    for dr, port, tls in tls_origination(objects):
        if is_mongodb_rule(objects, dr):
            continue  # check_mongodb_clients
        ns = dr["metadata"].get("namespace")
        who = f"{label}: {ident(dr)} port {port}"
        if not report.check(port in listeners and listeners[port][1].get("tls"), f"{who}: originates TLS to a Kafka TLS listener", "no Kafka listener with tls: true on that port"):
            continue
        kafka, listener = listeners[port]
        kns, kname = kafka["metadata"].get("namespace"), kafka["metadata"]["name"]
        san = f"{kname}-kafka-bootstrap.{kns}.svc.cluster.local"
        report.check(san in (tls.get("subjectAltNames") or []), f"{who}: verifies the broker's name ({san}, in every broker certificate Strimzi issues)",
                     "without subjectAltNames Istio checks no name for TCP: any holder of a certificate from that CA would do")
        client_auth = (listener.get("authentication") or {}).get("type") == "tls"
        report.check(tls.get("mode") == "MUTUAL" or not client_auth, f"{who}: presents a client certificate (MUTUAL), as listener {listener.get('name')} requires",
                     f"mode {tls.get('mode')}: the broker would refuse the handshake")
        secret = (ns, tls.get("credentialName"))
        report.check(secret not in script_secrets, f"{who}: Secret {secret[1]} is not a copy made once by scripts/kind-up.sh",
                     "Strimzi renews its CAs and certificates; a one-off copy goes stale and the handshake then fails")
        if not report.check(secret in targets, f"{who}: Secret {secret[1]} is kept in sync with Strimzi's user certificate and cluster CA by a Deployment",
                            "no Deployment with KIOSK_CLIENT_CERTS for it"):
            continue
        dep, user_secret, ca = targets[secret]
        source = (kns, f"{kname}-cluster-ca-cert")
        report.check(ca == source, f"{who}: its CA is copied from {source[0]}/{source[1]} (the CA that signs the brokers)", f"from {ca}")
        podspec = dep["spec"]["template"]["spec"]
        sa = (dep["metadata"].get("namespace"), podspec.get("serviceAccountName", "default"))
        for verb, rns, name in [("get", ca[0], ca[1]), ("get", user_secret[0], user_secret[1]), ("get", secret[0], secret[1]),
                                ("create", secret[0], None), ("update", secret[0], secret[1])]:
            report.check(rbac_allows(objects, sa, rns, verb, "secrets", name), f"{who}: the sync's service account {sa[0]}/{sa[1]} may {verb} secret {rns}/{name or '*'}")
        user = users.get(user_secret)
        utype = ((user or {}).get("spec", {}).get("authentication") or {}).get("type")
        if not report.check(utype == "tls", f"{who}: KafkaUser {user_secret[1]} is a tls user (the User Operator issues it a certificate)",
                            f"it is {utype or 'missing'}"):
            continue
        wsel = dr["spec"].get("workloadSelector")
        selected = [cl for cl in clients if cl.namespace == ns and wsel is not None and selector_matches(wsel, cl.labels)]
        report.check(bool(selected), f"{who}: selects the pods of KafkaUser {user_secret[1]}", f"workloadSelector {wsel} selects no Kafka client")
        for cl in selected:
            cwho = f"{who}: {cl.name}"
            report.check(cl.user == user_secret[1], f"{cwho} is KafkaUser {user_secret[1]}, whose certificate it presents", f"it is {cl.user}: it would act as another user")
            csa = service_account_of(cl.obj, cl.podspec)
            report.check(csa[1] != "default" and rbac_allows(objects, csa, ns, "list", "secrets", None),
                         f"{cwho}: istiod serves the key to its sidecar (service account {csa[0]}/{csa[1]} may list secrets, and is its own)",
                         "istiod asks a SubjectAccessReview for list secrets (pilot/pkg/credentials/kube/secrets.go) and serves nothing otherwise; the default account would extend it to every pod")
            if cl.podspec is not None:
                report.check(not token_mounted(objects, cl.obj, cl.podspec), f"{cwho}: its application gets no API token (the list-secrets grant is the sidecar's only)",
                             "automountServiceAccountToken is not false: the application could list the namespace's secrets")
    for cl in clients:
        listener = listener_on(objects, cl.bootstrap_port)
        if not listener or not listener.get("tls"):
            continue
        report.check(not cl.own_tls, f"{label}: {cl.name} bootstraps to {cl.bootstrap_port} without TLS of its own (its sidecar originates it)", "TLS inside TLS")
        if (listener.get("authentication") or {}).get("type") == "tls":
            rules = [dr for dr, port, tls in tls_origination(objects) if port == cl.bootstrap_port and tls.get("mode") == "MUTUAL"
                     and dr["metadata"].get("namespace") == cl.namespace and dr["spec"].get("workloadSelector") is not None
                     and selector_matches(dr["spec"]["workloadSelector"], cl.labels)]
            report.check(len(rules) == 1, f"{label}: {cl.name} dials a listener that requires a client certificate ({cl.bootstrap_port}): one DestinationRule gives its sidecar one",
                         f"{len(rules)} do: {[ident(r) for r in rules]}")


# Kafka client settings an application must not hold: SASL, JAAS, TLS (librdkafka and Java names).
CLIENT_SECRET_PROPERTY = re.compile(r"^\s*(sasl\.|ssl\.|security\.protocol\s*=\s*(?!PLAINTEXT\s*$))", re.M | re.I)


def kafka_user_secrets(objects: list[dict]) -> set[tuple[str, str]]:
    """Secrets holding a KafkaUser's credential: the one the User Operator writes (the user's
    name, its namespace) and the Istio-shaped copies a sync Deployment keeps of a tls user's."""
    out = {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects if o.get("kind") == "KafkaUser"}
    return out | set(client_cert_targets(objects))


def app_credential_findings(podspec: dict, ns: str, kafka_client: bool, user_secrets: set[tuple[str, str]]) -> list[str]:
    """What the application containers (every container but istio-proxy) of a pod spec hold of
    a Kafka credential: an environment variable named like one (*SASL*, *JAAS*; *PASSWORD* in
    a Kafka client or named *KAFKA*), KAFKA_PROPERTIES with SASL or TLS settings, or anything
    from a KafkaUser's Secret (env, envFrom, a secret or projected volume they mount)."""
    out = []
    volumes = {v.get("name"): v for v in podspec.get("volumes") or []}
    for c in containers(podspec):
        if c.get("name") == PROXY:
            continue
        who = f"container {c.get('name')}"
        for e in c.get("env") or []:
            name = str(e.get("name", ""))
            ref = (((e.get("valueFrom") or {}).get("secretKeyRef")) or {}).get("name")
            if re.search(r"SASL|JAAS", name, re.I) or (re.search(r"PASSWORD", name, re.I) and (kafka_client or "KAFKA" in name.upper())):
                out.append(f"{who}: env {name}")
            if name == "KAFKA_PROPERTIES" and CLIENT_SECRET_PROPERTY.search(str(e.get("value") or "")):
                out.append(f"{who}: KAFKA_PROPERTIES sets {CLIENT_SECRET_PROPERTY.search(str(e.get('value'))).group(0).strip()!r}")
            if ref and (ns, ref) in user_secrets:
                out.append(f"{who}: env {name} from Secret {ref}, a KafkaUser's")
        for ef in c.get("envFrom") or []:
            ref = (ef.get("secretRef") or {}).get("name")
            if ref and (ns, ref) in user_secrets:
                out.append(f"{who}: envFrom Secret {ref}, a KafkaUser's")
        for m in c.get("volumeMounts") or []:
            v = volumes.get(m.get("name")) or {}
            refs = [(v.get("secret") or {}).get("secretName")] + [(s.get("secret") or {}).get("name") for s in (v.get("projected") or {}).get("sources") or []]
            for ref in refs:
                if ref and (ns, ref) in user_secrets:
                    out.append(f"{who}: mounts Secret {ref}, a KafkaUser's (volume {m.get('name')})")
    return out


def strimzi_credential_findings(obj: dict, user_secrets: set[tuple[str, str]]) -> list[str]:
    """The same for a Strimzi KafkaBridge or KafkaConnect, whose pods Strimzi writes: its own
    `authentication` (Strimzi hands the password or key to the application), SASL or TLS
    client settings in its Kafka configuration, and its container template (env, volumes)."""
    spec, ns = obj.get("spec") or {}, obj["metadata"].get("namespace")
    out = []
    if spec.get("authentication"):
        out.append(f"spec.authentication ({spec['authentication'].get('type')}): Strimzi gives the application the credential")
    configs = {"spec.config": spec.get("config")} if obj["kind"] == "KafkaConnect" else {
        f"spec.{k}.config": (spec.get(k) or {}).get("config") for k in ("producer", "consumer", "adminClient")}
    for where, config in configs.items():
        for key in (config or {}):
            if CLIENT_SECRET_PROPERTY.search(f"{key}={config[key]}"):
                out.append(f"{where}.{key}")
    template = spec.get("template") or {}
    container = template.get("connectContainer" if obj["kind"] == "KafkaConnect" else "bridgeContainer") or {}
    pseudo = {"containers": [dict(container, name=obj["kind"])], "volumes": (template.get("pod") or {}).get("volumes") or []}
    return out + app_credential_findings(pseudo, ns, True, user_secrets)


def sidecar_env(cl: Client) -> tuple[dict[str, dict] | None, str]:
    """The environment a Kafka client's istio-proxy container gets from its pod: the container
    named istio-proxy in the pod spec (Istio merges it into the injected one), or for pods
    Strimzi writes, the injection templates the pod names."""
    if cl.podspec is not None:
        proxies = [c for c in containers(cl.podspec) if c.get("name") == PROXY]
        if not proxies:
            return None, f"its pod spec has no {PROXY} container"
        return {e.get("name"): e for e in proxies[0].get("env") or []}, f"its pod spec's {PROXY} container"
    md = (((cl.obj.get("spec") or {}).get("template") or {}).get("pod") or {}).get("metadata") or {}
    return injected_proxy_env(md.get("labels") or {}, md.get("annotations") or {})


# What a Strimzi listener's `authentication` takes from a client: the SASL mechanism, or
# TLS client identity (no SASL); Strimzi writes credentials of these kinds only.
LISTENER_MECHANISM = {"scram-sha-512": "SCRAM-SHA-512", "tls": None}


def check_kafka_credentials(report: Report, label: str, objects: list[dict]) -> None:
    """No application holds a Kafka credential; the sidecars have what the filter needs."""
    user_secrets = kafka_user_secrets(objects)
    users = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects if o.get("kind") == "KafkaUser"}
    for o in objects:
        ns = o["metadata"].get("namespace")
        for labels, podspec in pod_templates(o):
            client = KAFKA_USER_LABEL in labels or any(
                e.get("name") == "KAFKA_BOOTSTRAP_SERVERS" for c in containers(podspec) for e in c.get("env") or [])
            found = app_credential_findings(podspec, ns, client, user_secrets)
            report.check(not found, f"{label}: {ident(o)}: no application container holds a Kafka credential", "; ".join(found))
        if o.get("kind") in ("KafkaBridge", "KafkaConnect"):
            found = strimzi_credential_findings(o, user_secrets)
            report.check(not found, f"{label}: {ident(o)}: its application holds no Kafka credential (the sidecar authenticates)", "; ".join(found))
    clients = kafka_clients(Report(False), objects)
    fields = filter_config_fields()
    for p in (o for o in objects if o.get("kind") == "WasmPlugin" and plugin_protocol(o) == "kafka"):
        who = f"{label}: {ident(p)}"
        auth = (p["spec"].get("pluginConfig") or {}).get("kafka_auth")
        selected = [cl for cl in clients if plugin_selects(p, cl.namespace, cl.labels)]
        if not auth:
            for cl in selected:
                listener = listener_on(objects, cl.bootstrap_port)
                mech = LISTENER_MECHANISM.get(((listener or {}).get("authentication") or {}).get("type"))
                report.check(listener is None or mech is None, f"{label}: {cl.name}: the listener it dials ({cl.bootstrap_port}) needs no SASL, which nobody would perform",
                             f"it requires {mech}: without kafka_auth the filter only observes, and the application holds no credential")
            continue
        mech = auth.get("mechanism")
        names = [auth.get("username_env", fields["KafkaAuthDefaults"]["username_env"]), auth.get("password_env", fields["KafkaAuthDefaults"]["password_env"])]
        vm_env = {e.get("name"): e for e in ((p["spec"].get("vmConfig") or {}).get("env")) or []}
        for n in names:
            e = vm_env.get(n) or {}
            report.check(e.get("valueFrom") == "HOST" and "value" not in e, f"{who}: vmConfig.env takes {n} from the sidecar's environment (valueFrom: HOST)",
                         f"entry {e or 'missing'}: the filter would find no credential, or the secret would sit in the WasmPlugin")
        check_credential_upstreams(report, who, auth, objects)
        for b in (o for o in objects if o.get("kind") == "Kafka"):
            reauth = str(((b["spec"].get("kafka") or {}).get("config") or {}).get("connections.max.reauth.ms", "0"))
            report.check(reauth == "0", f"{who}: {ident(b)} does not ask clients to re-authenticate (connections.max.reauth.ms unset or 0)",
                         f"it is {reauth}: the filter authenticates a connection once (no KIP-368 re-authentication), so the broker would close every connection after that time")
        for cl in selected:
            cwho = f"{label}: {cl.name} (selected by {ident(p)})"
            listener = listener_on(objects, cl.bootstrap_port)
            if listener is not None:
                want = LISTENER_MECHANISM.get((listener.get("authentication") or {}).get("type"), "?")
                report.check(want == mech, f"{cwho}: the listener it dials ({cl.bootstrap_port}) takes kafka_auth {mech}",
                             f"it requires {want or 'a client certificate, no SASL'}")
            env, where = sidecar_env(cl)
            if not report.check(env is not None and all(n in env for n in names), f"{cwho}: its sidecar gets {', '.join(names)}",
                                where if env is None else f"{where} give its istio-proxy {sorted(env) or 'nothing'}"):
                continue
            user_env, password_env = env.get(names[0]) or {}, env.get(names[1]) or {}
            ref = ((password_env.get("valueFrom") or {}).get("secretKeyRef")) or {}
            report.check(bool(cl.user) and user_env.get("value") == cl.user, f"{cwho}: {where} sets {names[0]} to its KafkaUser {cl.user}",
                         f"{names[0]} is {user_env or 'missing'}")
            report.check(bool(cl.user) and ref.get("name") == cl.user and ref.get("key") == "password" and "value" not in password_env,
                         f"{cwho}: {where} takes {names[1]} from key `password` of Secret {cl.user} (the User Operator's)", f"{names[1]} is {password_env or 'missing'}")
            user = users.get((cl.namespace, cl.user))
            utype = ((user or {}).get("spec", {}).get("authentication") or {}).get("type")
            report.check(user is None or utype == "scram-sha-512", f"{cwho}: KafkaUser {cl.user} is scram-sha-512, so its Secret has a password",
                         f"it is {utype}: the key would be missing and the pod would not start")
            if cl.podspec is not None:
                report.check(not cl.podspec.get("shareProcessNamespace"), f"{cwho}: its containers do not share a process namespace",
                             "the application could read the sidecar's environment (/proc/<pid>/environ)")


def install_identities(objects: list[dict]) -> set[str]:
    """Every workload identity of the install (Istio's principal form): each pod template's
    service account, the ones Strimzi gives the pods it writes (KafkaBridge, KafkaConnect, the
    brokers, the entity operator), and every ServiceAccount."""
    found = set()
    for o in objects:
        ns = o["metadata"].get("namespace")
        if o.get("kind") in ("KafkaBridge", "KafkaConnect"):
            found.add(service_account_of(o, None))
        elif o.get("kind") == "Kafka":
            found |= {(ns, f"{o['metadata']['name']}-kafka"), (ns, f"{o['metadata']['name']}-entity-operator")}
        elif o.get("kind") == "ServiceAccount":
            found.add((ns, o["metadata"]["name"]))
        for _labels, podspec in pod_templates(o):
            found.add(service_account_of(o, podspec))
    return {f"cluster.local/ns/{ns}/sa/{sa}" for ns, sa in found if ns}


def check_credential_upstreams(report: Report, who: str, auth: dict, objects: list[dict]) -> None:
    """kafka_auth.upstreams (issue 28): a WasmPlugin matches ports by number, so an app it
    selects may dial any service on them; the filter sends the credential only to the
    upstreams named, which must be the brokers' identity (Strimzi runs every broker pod of a
    cluster as `<cluster>-kafka`) and no other identity of the install."""
    ups = auth.get("upstreams") or {}
    principals, clusters = ups.get("principals") or [], ups.get("clusters") or []
    if not report.check(bool(principals or clusters), f"{who}: kafka_auth.upstreams names where the credential may go",
                        "it names nothing: the filter refuses the configuration (and would otherwise hand the credential to any service on the port)"):
        return
    brokers = {f"cluster.local/ns/{o['metadata'].get('namespace')}/sa/{o['metadata']['name']}-kafka" for o in objects if o.get("kind") == "Kafka"}
    others = install_identities(objects) - brokers
    report.check(not brokers or any(istio_match(p, b) for p in principals for b in brokers),
                 f"{who}: kafka_auth.upstreams.principals names the brokers' identity ({', '.join(sorted(brokers))})",
                 f"principals {principals}: the filter would send no credential to the brokers, and every client would be refused")
    for p in principals:
        also = sorted(i for i in others if istio_match(p, i))
        report.check(not p.startswith("spiffe://") and not also and p != "*",
                     f"{who}: kafka_auth.upstreams.principals {p!r} matches no identity but the brokers'",
                     "the filter refuses `spiffe://` (Istio's principal form has none)" if p.startswith("spiffe://") else
                     f"it also matches {', '.join(also) or 'any identity'}: the credential would go to them")
    report.check("*" not in clusters, f"{who}: kafka_auth.upstreams.clusters is not `*`", "any Envoy cluster: any service on the port")


def check_generated_credentials(report: Report, label: str, objects: list[dict]) -> None:
    """Credentials a stateful workload keeps in its volume must not change under it."""
    secrets = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects if o.get("kind") == "Secret"}
    for o in objects:
        if o.get("kind") != "StatefulSet" or not o["spec"].get("volumeClaimTemplates"):
            continue
        ns = o["metadata"].get("namespace")
        refs = {e["valueFrom"]["secretKeyRef"]["name"] for c in containers(o["spec"]["template"]["spec"]) for e in c.get("env") or []
                if (e.get("valueFrom") or {}).get("secretKeyRef")}
        if not refs:
            continue
        who = f"{label}: {ident(o)}"
        retention = (o["spec"].get("persistentVolumeClaimRetentionPolicy") or {}).get("whenDeleted", "Retain")
        report.check(retention == "Delete", f"{who}: its volume goes with it (persistentVolumeClaimRetentionPolicy.whenDeleted: Delete)",
                     "a kept volume holds users made with credentials a reinstall would not know")
        for name in sorted(refs):
            s = secrets.get((ns, name))
            if s is None:
                continue  # an existing Secret, not the chart's
            policy = ((s["metadata"].get("annotations")) or {}).get("helm.sh/resource-policy")
            report.check(policy == "keep", f"{who}: Secret {name} it initialises its data with outlives the release (helm.sh/resource-policy: keep)",
                         "helm uninstall would delete it and a reinstall generate other passwords than the ones in the data directory")


def fake_pem(tag: str) -> str:
    import base64

    return "-----BEGIN CERTIFICATE-----\n" + base64.b64encode(f"kiosk test CA {tag}".encode()).decode() + "\n-----END CERTIFICATE-----\n"


def tls_sync_checks(report: Report, plain: list[dict]) -> None:
    """Run the TLS sync program of the bundle (as its Deployment runs it) against a stand-in
    API through the life of Strimzi's certificates: nothing yet, the CA but no user Secrets,
    creation, no change, a user certificate renewal, a CA key replacement (old CA kept as
    ca-<notAfter>.crt), the old CA removed, a user that is not `tls`; and check its Roles allow
    every call it makes."""
    import base64

    cm = next((o for o in plain if o.get("kind") == "ConfigMap" and "tls_sync.py" in (o.get("data") or {})), None)
    if not report.check(cm is not None, "the bundle ships the TLS sync program (ConfigMap with tls_sync.py)"):
        return
    dep = next((o for o in plain if o.get("kind") == "Deployment" and any(
        (v.get("configMap") or {}).get("name") == cm["metadata"]["name"] for v in o["spec"]["template"]["spec"].get("volumes") or [])), None)
    if not report.check(dep is not None, f"a Deployment runs {ident(cm)}"):
        return
    container = dep["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value", "") for e in container.get("env") or []}
    source = tuple(env["KIOSK_CA_SOURCE"].split("/", 1))
    users = [tuple(u.split("/", 1)) for u in re.split(r"[,\s]+", env["KIOSK_CLIENT_CERTS"]) if u]
    suffix = env.get("KIOSK_CLIENT_CERT_SUFFIX") or "-mesh-tls"
    b64 = lambda s: base64.b64encode(s.encode()).decode()
    api = FakeApi()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "tls_sync.py"
        script.write_text(cm["data"]["tls_sync.py"])
        (Path(tmp) / "token").write_text("fake-token\n")
        ready = Path(tmp) / "ready"
        run_env = dict(os.environ, KIOSK_API_URL=api.url, KIOSK_SA_DIR=tmp, KIOSK_SYNC_READY_FILE=str(ready),
                       **{k: v for k, v in env.items() if k.startswith(("KIOSK_CA_", "KIOSK_CLIENT_", "KIOSK_SYNC_")) and k != "KIOSK_SYNC_READY_FILE"})

        def run_once():
            r = subprocess.run([sys.executable, str(script), "--once"], env=run_env, capture_output=True, text=True, timeout=30)
            return r.returncode, r.stdout + r.stderr

        def copy(u):
            s = api.secrets.get((u[0], u[1] + suffix))
            return {k: base64.b64decode(v).decode() for k, v in s["data"].items()} if s else None

        def store_user(u, tag, tls=True):
            data = {"ca.crt": b64(fake_pem("clients CA")), "user.crt": b64(fake_pem(f"{u[1]} {tag}")), "user.key": b64(f"key of {u[1]} {tag}"),
                    "user.p12": b64("p12"), "user.password": b64("pw")} if tls else {"password": b64("secret"), "sasl.jaas.config": b64("jaas")}
            api.store(u, {"metadata": {"name": u[1], "namespace": u[0]}, "data": data})

        def writes():
            return sum(1 for m, _ in api.calls if m in ("POST", "PUT"))

        try:
            rc, out = run_once()
            report.check(rc == 1 and "waiting" in out and not api.secrets and not ready.exists(),
                         "tls_sync.py: before Strimzi made its CA and the users' Secrets it waits, writes nothing and is not ready", out[-300:])
            a, a2, b = fake_pem("A"), fake_pem("A renewed"), fake_pem("B")
            api.store(source, {"metadata": {"name": source[1], "namespace": source[0]}, "data": {"ca.crt": b64(a), "ca.p12": b64("p12"), "ca.password": b64("pw")}})
            rc, out = run_once()
            report.check(rc == 1 and "waiting" in out and writes() == 0 and not ready.exists(),
                         "tls_sync.py: with the CA but no user Secret yet it waits and writes nothing", out[-300:])
            for u in users:
                store_user(u, "v1")
            rc, out = run_once()
            made = {u: copy(u) for u in users}
            report.check(rc == 0 and ready.exists() and all(
                c is not None and set(c) == {"tls.crt", "tls.key", "ca.crt"} and c["tls.crt"] == fake_pem(f"{u[1]} v1")
                and c["tls.key"] == f"key of {u[1]} v1" and c["ca.crt"] == a for u, c in made.items()),
                f"tls_sync.py: writes <user>{suffix} for each of {len(users)} users with the user's certificate and key as tls.crt and tls.key and the cluster CA (not the clients CA) as ca.crt, nothing else, and becomes ready",
                f"{out[-300:]} {made}")
            before = writes()
            rc, out = run_once()
            report.check(rc == 0 and "unchanged" in out and writes() == before, "tls_sync.py: writes nothing when nothing changed", out[-300:])
            store_user(users[0], "v2")
            rc, out = run_once()
            report.check(rc == 0 and copy(users[0])["tls.crt"] == fake_pem(f"{users[0][1]} v2") and writes() == before + 1,
                         "tls_sync.py: follows a renewal of a user's certificate, and writes only that copy", out[-300:])
            api.store(source, {"metadata": {"name": source[1], "namespace": source[0]}, "data": {"ca.crt": b64(a2)}})
            rc, out = run_once()
            report.check(rc == 0 and all(copy(u)["ca.crt"] == a2 for u in users), "tls_sync.py: follows a renewal of the cluster CA certificate", out[-300:])
            api.store(source, {"metadata": {"name": source[1], "namespace": source[0]},
                               "data": {"ca.crt": b64(b), "ca-2027-03-01T10-20-30Z.crt": b64(a2), "ca.p12": b64("p12")}})
            rc, out = run_once()
            report.check(rc == 0 and all(copy(u)["ca.crt"] == b + a2 for u in users),
                         "tls_sync.py: during a CA key replacement trusts the new CA and the old one Strimzi keeps (ca-<notAfter>.crt)", out[-300:])
            api.store(source, {"metadata": {"name": source[1], "namespace": source[0]}, "data": {"ca.crt": b64(b)}})
            rc, out = run_once()
            report.check(rc == 0 and all(copy(u)["ca.crt"] == b for u in users), "tls_sync.py: drops the old CA once Strimzi has removed it", out[-300:])
            store_user(users[-1], "scram", tls=False)
            before = writes()
            rc, out = run_once()
            report.check(rc == 1 and "has no user.crt" in out and writes() == before and "secret" not in str(copy(users[-1]).values()),
                         "tls_sync.py: a user whose Secret has no certificate (a scram-sha-512 user) is an error, and its password is copied nowhere", out[-300:])
        finally:
            api.close()
    podspec = dep["spec"]["template"]["spec"]
    sa = (dep["metadata"].get("namespace"), podspec.get("serviceAccountName", "default"))
    verbs = {"GET": "get", "POST": "create", "PUT": "update"}
    for method, path in sorted(set(api.calls)):
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?", path)
        report.check(bool(m) and rbac_allows(plain, sa, m.group(1), verbs[method], "secrets", m.group(2)),
                     f"tls_sync.py: its service account {sa[0]}/{sa[1]} may {method} {path}")
