"""MongoDB credentials (issue 15, docs/mongodb-credentials.md): no application container, no
Strimzi Connect or Bridge container and no MongoDB sink connector holds a MongoDB credential;
mongod requires TLS, client certificates of the release's MongoDB CA and authentication, its
X.509 users exactly the release's clients; each client dials the MongoDB Service in plain
MongoDB, is authenticated by a MongoDB WasmPlugin (MONGODB-X509) and has one MUTUAL
DestinationRule with its own certificate; the MongoDB WasmPlugins match only MongoDB's port
and select every client and no mongod or broker."""

from __future__ import annotations

import json
import os
import re

import jsonschema

from .common import ROOT, Report, helm, ident
from .contract import contract_knows_protocols, contract_schema, plugin_protocol
from .k8s import arg_value, containers, env_value, pod_templates, rbac_allows, secret_file, secret_value, selector_matches, service_account_of, token_mounted
from .keycloak import keycloak_own_env
from .mesh import INJECT_TEMPLATES, ISTIOD_VALUES, PROXY, injection_templates, mtls_mode, plugin_selects, tls_origination
from .pods import Pod, pods_of, template_meta
from .render import render_injection_template
from .strimzi import broker_pods


MONGODB_CLIENT_LABEL = "kiosk.io/mongodb-client"  # the label the MongoDB WasmPlugin selects
MONGODB_USER_LABEL = "kiosk.io/mongodb-user"  # the workload whose certificate the sidecar presents
# Containers that are not the application: Istio's (they hold the mesh's credentials).
MESH_CONTAINERS = {PROXY, "istio-init", "istio-validation"}
# MongoDB URI options that carry a credential or make the application speak TLS itself (the
# sidecar originates TLS; a URI with them would be TLS inside TLS, or a secret in the app).
MONGODB_URI_OPTIONS = {"tls", "ssl", "authmechanism", "authsource", "authmechanismproperties", "tlscertificatekeyfile",
                       "tlscertificatekeyfilepassword", "tlscafile", "tlsallowinvalidcertificates", "tlsallowinvalidhostnames",
                       "tlsinsecure", "username", "password"}
MONGODB_SECRET_ENV = re.compile(r"PASSWORD|PASSWD|^MONGO.*(USER|PASS|PWD|CRED|AUTH|TLS|SSL|KEY|CERT)", re.I)
SECRET_REF = re.compile(r"^\$\{secrets:([^/:}]+)/([^:}]+):([^}]+)\}$")  # Strimzi's KubernetesSecretConfigProvider
MONGO_SINK_CONNECTOR = "com.mongodb.kafka.connect.MongoSinkConnector"


def connector_value(objects: list[dict], ns: str, value) -> tuple[str | None, str]:
    """A KafkaConnector config value, with ${secrets:ns/name:key} resolved from the bundle."""
    m = SECRET_REF.match(str(value))
    if m:
        return secret_value(objects, m.group(1), m.group(2), m.group(3)), f"Secret {m.group(1)}/{m.group(2)} key {m.group(3)}"
    return str(value), "its value"


def mongodb_uri_findings(uri: str) -> list[str]:
    """What a MongoDB URI holds that an application of the mesh must not: a user or password,
    authentication or TLS options (the sidecar's TLS and the filter's MONGODB-X509 do that)."""
    from urllib.parse import parse_qsl, urlsplit

    out = []
    try:
        u = urlsplit(uri)
    except ValueError:
        return [f"not a URI: {uri!r}"]
    if u.scheme == "mongodb+srv":
        out.append("mongodb+srv:// (implies tls=true)")
    if "@" in u.netloc:
        out.append("a user" + (" and password" if ":" in u.netloc.split("@")[0] else "") + " (userinfo)")
    for k, _ in parse_qsl(u.query, keep_blank_values=True):
        if k.lower() in MONGODB_URI_OPTIONS:
            out.append(f"option {k}=")
    return out


def is_mongod(container: dict) -> bool:
    """mongod itself: it holds the server's key, as any TLS server does."""
    words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
    return bool(words) and os.path.basename(words[0]) == "mongod"


def mongodb_secret_names(objects: list[dict]) -> set[tuple[str, str]]:
    """The Secrets holding MongoDB keys: those the MongoDB certificate issuer keeps (the CA,
    mongod's, the clients')."""
    out = set()
    for iss in mongodb_issuers(objects):
        out |= {iss.ca, iss.server} | set(iss.clients.values())
    return out


def mongodb_credential_findings(objects: list[dict], podspec: dict, ns: str, mongo_secrets: set[tuple[str, str]], strict: bool = True) -> list[str]:
    """What the application containers of a pod spec (every container but Istio's and mongod)
    hold of a MongoDB credential: an env var named like a password or a MongoDB secret (but
    Keycloak's own KC_* settings in Keycloak's container, e.g. its bootstrap admin's password), a
    MongoDB URI (env, resolved from the bundle's Secrets) with a user, password, authentication
    or TLS option, or anything of a MongoDB certificate's Secret (env, envFrom, volume). `strict`:
    a URI from a Secret the bundle does not hold is a finding too (it cannot be checked)."""
    out = []
    volumes = {v.get("name"): v for v in podspec.get("volumes") or []}
    for c in containers(podspec):
        if c.get("name") in MESH_CONTAINERS or is_mongod(c):
            continue
        who = f"container {c.get('name')}"
        for e in c.get("env") or []:
            name = str(e.get("name", ""))
            ref = (((e.get("valueFrom") or {}).get("secretKeyRef")) or {}).get("name")
            if MONGODB_SECRET_ENV.search(name) and not keycloak_own_env(c, name):
                out.append(f"{who}: env {name}")
            value, where = env_value(objects, ns, e)
            if re.search(r"MONGO.*(URI|URL)", name, re.I) or (value or "").startswith(("mongodb://", "mongodb+srv://")):
                if value is None:
                    if strict:
                        out.append(f"{who}: env {name} from {where}, which the bundle does not hold: its URI cannot be checked")
                else:
                    out += [f"{who}: env {name} ({where}) has {f}" for f in mongodb_uri_findings(value)]
            if ref and (ns, ref) in mongo_secrets:
                out.append(f"{who}: env {name} from Secret {ref}, a MongoDB certificate's")
        for ef in c.get("envFrom") or []:
            ref = (ef.get("secretRef") or {}).get("name")
            if ref and (ns, ref) in mongo_secrets:
                out.append(f"{who}: envFrom Secret {ref}, a MongoDB certificate's")
        for m in c.get("volumeMounts") or []:
            v = volumes.get(m.get("name")) or {}
            refs = [(v.get("secret") or {}).get("secretName")] + [(s.get("secret") or {}).get("name") for s in (v.get("projected") or {}).get("sources") or []]
            for ref in refs:
                if ref and (ns, ref) in mongo_secrets:
                    out.append(f"{who}: mounts Secret {ref}, a MongoDB certificate's (volume {m.get('name')})")
    return out


def connector_credential_findings(objects: list[dict], conn: dict, strict: bool = True) -> list[str]:
    """The same for a KafkaConnector of the MongoDB sink: its connection.uri (resolved through
    ${secrets:...} from the bundle) and any TLS or password setting of the connector."""
    ns, cfg = conn["metadata"].get("namespace"), (conn.get("spec") or {}).get("config") or {}
    out = []
    for key, value in cfg.items():
        if re.search(r"password|ssl|tls|keystore|truststore|credential", key, re.I):
            out.append(f"config {key}")
        if key == "connection.uri" or str(value).startswith(("mongodb://", "mongodb+srv://")):
            uri, where = connector_value(objects, ns, value)
            if uri is None:
                if strict:
                    out.append(f"config {key} from {where}, which the bundle does not hold: its URI cannot be checked")
            else:
                out += [f"config {key} ({where}) has {f}" for f in mongodb_uri_findings(uri)]
    return out


class MongoServer:
    """A mongod the bundle runs: its workload, its Service's name and port, its pods."""

    def __init__(self, obj, podspec, labels, annotations, container, service, port):
        self.obj, self.podspec, self.labels, self.annotations, self.container = obj, podspec, labels, annotations, container
        self.namespace = obj["metadata"].get("namespace")
        self.service, self.port = service, port
        self.host = f"{service}.{self.namespace}.svc.cluster.local"
        self.args = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]

    def pod(self) -> Pod:
        o = self.obj
        return Pod(self.namespace, self.labels, self.annotations, o["metadata"]["name"], o["metadata"]["name"] + "-0", False, f"{o['kind']} {o['metadata']['name']}")


def mongodb_servers(objects: list[dict]) -> list[MongoServer]:
    out = []
    for o in objects:
        if o.get("kind") not in ("StatefulSet", "Deployment"):
            continue
        t = o["spec"].get("template") or {}
        labels, annotations = (t.get("metadata") or {}).get("labels") or {}, (t.get("metadata") or {}).get("annotations") or {}
        for c in (t.get("spec") or {}).get("containers") or []:
            if not is_mongod(c):
                continue
            args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
            port = int(arg_value(args, "--port") or 27017)
            for s in objects:
                if s.get("kind") == "Service" and s["metadata"].get("namespace") == o["metadata"].get("namespace") \
                        and s["spec"].get("selector") and selector_matches({"matchLabels": s["spec"]["selector"]}, labels) \
                        and any(p.get("port") == port for p in s["spec"].get("ports") or []):
                    out.append(MongoServer(o, t.get("spec") or {}, labels, annotations, c, s["metadata"]["name"], port))
    return out


class MongoIssuer:
    """The MongoDB certificate issuer Deployment (charts/test-kafka-istio-mongo/files/mongodb_tls_issuer.py):
    the Secrets it keeps and the subjects it gives them, read from its environment."""

    def __init__(self, dep, env):
        self.dep, self.env = dep, env
        pair = lambda v: tuple(v.split("/", 1))  # noqa: E731
        self.ca, self.server = pair(env["KIOSK_CA_SECRET"]), pair(env["KIOSK_SERVER_SECRET"])
        self.server_subject = env.get("KIOSK_SERVER_SUBJECT", "")
        self.server_dns = [n for n in re.split(r"[,\s]+", env.get("KIOSK_SERVER_DNS_NAMES", "")) if n]
        self.statefulset = pair(env["KIOSK_SERVER_STATEFULSET"]) if env.get("KIOSK_SERVER_STATEFULSET") else None
        self.suffix = env.get("KIOSK_CLIENT_CERT_SUFFIX") or "-mongodb-tls"
        self.organization = env.get("KIOSK_CLIENT_ORGANIZATION") or "kiosk"
        # (namespace, workload) -> (namespace, Secret)
        self.clients = {pair(c): (pair(c)[0], pair(c)[1] + self.suffix) for c in re.split(r"[,\s]+", env.get("KIOSK_CLIENT_CERTS", "")) if c}

    def client_dn(self, ns: str, workload: str) -> str:
        """The subject MongoDB names the X.509 user by (RFC 2253), as the issuer makes it."""
        return f"CN={workload},OU={ns},O={self.organization}"

    def server_orgs(self) -> set[str]:
        return set(re.findall(r"/O=([^/]+)", self.server_subject))


def mongodb_issuers(objects: list[dict]) -> list[MongoIssuer]:
    out = []
    for o in objects:
        if o.get("kind") != "Deployment":
            continue
        for c in containers((o["spec"].get("template") or {}).get("spec") or {}):
            env = {e.get("name"): e.get("value") for e in c.get("env") or []}
            if env.get("KIOSK_CA_SECRET") and env.get("KIOSK_SERVER_SECRET") and env.get("KIOSK_CLIENT_CERTS"):
                out.append(MongoIssuer(o, env))
    return out


class MongoClient:
    """A MongoDB client workload: its pods' labels, the URI it dials, the databases it uses."""

    def __init__(self, name, namespace, labels, annotations, workload, source, obj, podspec, uris, databases):
        self.name, self.namespace, self.labels, self.annotations, self.workload = name, namespace, labels, annotations, workload
        self.source, self.obj, self.podspec, self.uris, self.databases = source, obj, podspec, uris, databases


def mongodb_clients(objects: list[dict]) -> list[MongoClient]:
    """Every container with a MONGODB_URI, and every KafkaConnect running a MongoDB sink connector."""
    pods = {p.source: p for p in pods_of(objects)}
    out = []
    for o in objects:
        md = o.get("metadata") or {}
        ns = md.get("namespace")
        t = (o.get("spec") or {}).get("template") or {}
        for labels, podspec in pod_templates(o):
            for c in containers(podspec):
                env = [e for e in c.get("env") or [] if e.get("name") == "MONGODB_URI"]
                if not env:
                    continue
                uri, _ = env_value(objects, ns, env[0])
                args = [str(a) for a in c.get("args") or []]
                # `kiosk` subcommands take --database; a mongosh script names it with getSiblingDB.
                dbs = {arg_value(args, "--database")} if arg_value(args, "--database") else \
                    set(re.findall(r"getSiblingDB\(\s*[\"']([^\"']+)[\"']", " ".join(str(w) for w in (c.get("command") or []) + args)))
                pod = pods.get(f"{o['kind']} {md.get('name')}")
                out.append(MongoClient(f"{md.get('name')}/{c.get('name')}", ns, labels, (t.get("metadata") or {}).get("annotations") or {},
                                       pod.workload() if pod else md.get("name"), f"{o.get('_source')}: {ident(o)}", o, podspec,
                                       [uri], dbs or {""}))
        if o.get("kind") == "KafkaConnect":
            conns = [c for c in objects if c.get("kind") == "KafkaConnector" and c["spec"].get("class") == MONGO_SINK_CONNECTOR
                     and (c["metadata"].get("labels") or {}).get("strimzi.io/cluster") == md.get("name") and c["metadata"].get("namespace") == ns]
            if not conns:
                continue
            labels, annotations = template_meta(o["spec"])
            pod = pods.get(f"KafkaConnect {md.get('name')}")
            out.append(MongoClient(f"KafkaConnect {md.get('name')}", ns, pod.labels if pod else labels, annotations,
                                   pod.workload() if pod else f"{md.get('name')}-connect", f"{o.get('_source')}: {ident(o)}", o, None,
                                   [connector_value(objects, ns, (c["spec"].get("config") or {}).get("connection.uri", ""))[0] for c in conns],
                                   {str((c["spec"].get("config") or {}).get("database", "")) for c in conns}))
    return out


def uri_endpoint(uri: str | None) -> tuple[str, int] | None:
    from urllib.parse import urlsplit

    try:
        u = urlsplit(uri or "")
        hosts = u.netloc.rsplit("@", 1)[-1].split(",")
        host, _, port = hosts[0].partition(":")
        return (host, int(port or 27017)) if u.scheme == "mongodb" and len(hosts) == 1 else None
    except ValueError:
        return None


def strimzi_sidecar_mounts(labels: dict, annotations: dict) -> tuple[list[tuple[str, str]] | None, str]:
    """(Secret, mount path) pairs the injection templates a Strimzi pod names give its istio-proxy
    container (the same in both sidecar modes), or (None, why)."""
    names = [n.strip() for n in annotations.get(INJECT_TEMPLATES, "sidecar").split(",") if n.strip()]
    templates = injection_templates()
    found = None
    for native in (False, True):
        mounts = []
        for name in names[1:]:
            if name not in templates:
                return None, f"no injection template {name!r} in {ISTIOD_VALUES.relative_to(ROOT)}"
            try:
                overlay = render_injection_template(templates[name], labels, annotations, native)
            except helm.HelmError as e:
                return None, f"injection template {name!r} does not render: {e}"
            spec = overlay.get("spec") or {}
            vols = {v.get("name"): (v.get("secret") or {}).get("secretName") for v in spec.get("volumes") or []}
            where, other = ("initContainers", "containers") if native else ("containers", "initContainers")
            if any(c.get("name") == PROXY for c in spec.get(other) or []):
                return None, f"injection template {name!r} puts {PROXY} under {other} with native sidecars {'on' if native else 'off'}"
            for c in spec.get(where) or []:
                if c.get("name") == PROXY:
                    mounts += [(vols.get(m.get("name")), m.get("mountPath", "").rstrip("/")) for m in c.get("volumeMounts") or [] if vols.get(m.get("name"))]
        if found is not None and sorted(found) != sorted(mounts):
            return None, "the injection templates mount other Secrets with native sidecars on and off"
        found = mounts
    return found or [], f"injection templates {names}"


def podspec_sidecar_mounts(podspec: dict) -> list[tuple[str, str]]:
    """(Secret, mount path) pairs of the istio-proxy container declared in a pod spec (Istio
    merges it into the one it injects)."""
    vols = {v.get("name"): (v.get("secret") or {}).get("secretName") for v in podspec.get("volumes") or []}
    return [(vols.get(m.get("name")), m.get("mountPath", "").rstrip("/")) for c in containers(podspec) if c.get("name") == PROXY
            for m in c.get("volumeMounts") or [] if vols.get(m.get("name"))]


def mongodb_rules(objects: list[dict], server: MongoServer):
    """(DestinationRule, tls) of every port-level TLS origination to the server's Service and port."""
    for dr, port, tls in tls_origination(objects):
        if dr["spec"].get("host") == server.host and port == server.port and dr["metadata"].get("namespace") == server.namespace:
            yield dr, tls


def is_mongodb_rule(objects: list[dict], dr: dict) -> bool:
    return any(dr["spec"].get("host") == s.host for s in mongodb_servers(objects))


def x509_users(objects: list[dict], server: MongoServer) -> tuple[dict[str, list[dict]] | None, str]:
    """The X.509 users the MongoDB pod's init container keeps ({DN: roles}), from the file its
    KIOSK_MONGODB_X509_USERS_FILE names (a mounted ConfigMap key)."""
    cms = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects if o.get("kind") == "ConfigMap"}
    for c in server.podspec.get("initContainers") or []:
        env = {e.get("name"): e.get("value") for e in c.get("env") or []}
        path = env.get("KIOSK_MONGODB_X509_USERS_FILE")
        if not path:
            continue
        for m in c.get("volumeMounts") or []:
            mount = m["mountPath"].rstrip("/")
            if not path.startswith(mount + "/"):
                continue
            vol = next((v for v in server.podspec.get("volumes") or [] if v["name"] == m["name"]), {})
            cm = cms.get((server.namespace, (vol.get("configMap") or {}).get("name")))
            text = ((cm or {}).get("data") or {}).get(path[len(mount) + 1:])
            if text is None:
                return None, f"init container {c.get('name')}: {path} is no key of a ConfigMap of the bundle"
            return {u["user"]: u.get("roles") or [] for u in json.loads(text)["users"]}, f"init container {c.get('name')} ({path})"
    return None, "no init container keeps the X.509 users (KIOSK_MONGODB_X509_USERS_FILE)"


def check_mongodb_server(report: Report, label: str, objects: list[dict]) -> None:
    """mongod requires TLS, client certificates of the release's MongoDB CA, and authentication;
    its certificate and CA are the issuer's; TLS ends at mongod (its port is not captured by its
    sidecar, and mTLS is DISABLE on it); its pod holds no password; its X.509 users are exactly
    the release's clients, named by the subjects the issuer gives their certificates, each with
    readWrite on the databases it uses."""
    issuers = mongodb_issuers(objects)
    clients = mongodb_clients(objects)
    for s in mongodb_servers(objects):
        who = f"{label}: {ident(s.obj)} (mongod, Service {s.service}:{s.port})"
        mode = arg_value(s.args, "--tlsMode")
        report.check(mode == "requireTLS", f"{who}: --tlsMode requireTLS", f"tlsMode {mode}")
        report.check("--auth" in s.args and "--noauth" not in s.args and "--transitionToAuth" not in s.args,
                     f"{who}: --auth (access control on)", f"args {s.args}")
        for bad in ("--tlsAllowConnectionsWithoutCertificates", "--tlsAllowInvalidCertificates", "--sslAllowConnectionsWithoutCertificates"):
            report.check(bad not in s.args, f"{who}: no {bad} (every client must present a valid certificate)")
        ca_path, key_path = arg_value(s.args, "--tlsCAFile"), arg_value(s.args, "--tlsCertificateKeyFile")
        ca_file = secret_file(s.podspec, s.container, ca_path or "") if ca_path else None
        key_file = secret_file(s.podspec, s.container, key_path or "") if key_path else None
        iss = next((i for i in issuers if i.server == (s.namespace, (key_file or ("", ""))[0])), None)
        report.check(ca_path is not None and ca_file is not None and iss is not None and ca_file == (iss.server[1], "ca.crt"),
                     f"{who}: --tlsCAFile is ca.crt of the issuer's server Secret (with it, mongod requires a client certificate of the MongoDB CA)",
                     f"--tlsCAFile {ca_path} is {ca_file}")
        report.check(key_file is not None and iss is not None and key_file[1] == "mongod.pem",
                     f"{who}: --tlsCertificateKeyFile is mongod.pem of the Secret the MongoDB certificate issuer keeps",
                     f"--tlsCertificateKeyFile {key_path} is {key_file}")
        if iss is not None:
            report.check(s.host in iss.server_dns, f"{who}: the server certificate names {s.host}, the host its clients dial and their sidecars check",
                         f"names {iss.server_dns}")
            report.check(iss.statefulset == (s.namespace, s.obj["metadata"]["name"]) and s.obj["kind"] == "StatefulSet",
                         f"{who}: the issuer restarts it when its certificate changes (mongod reads it at start)", f"KIOSK_SERVER_STATEFULSET {iss.statefulset}")
            report.check(iss.organization not in iss.server_orgs(), f"{who}: the clients' O differs from the server certificate's (MongoDB would take a client with the server's O, OU and DC for a cluster member)",
                         f"O={iss.organization}")
        pod = s.pod()
        report.check(not pod.captured(s.port), f"{who}: its sidecar does not capture {s.port} (TLS ends at mongod)",
                     "traffic.sidecar.istio.io/excludeInboundPorts does not list it: the sidecar would take the clients' TLS")
        mode = mtls_mode(objects, pod, s.port)
        report.check(mode == "DISABLE", f"{who}: mTLS DISABLE on {s.port} (a PeerAuthentication selecting the pod), should the port ever be captured",
                     f"mTLS {mode}: the sidecar would demand Istio mTLS from clients that speak MongoDB's TLS")
        refs = [f"{c.get('name')}: env {e.get('name')} from Secret {e['valueFrom']['secretKeyRef'].get('name')}" for c in containers(s.podspec)
                for e in c.get("env") or [] if (e.get("valueFrom") or {}).get("secretKeyRef")]
        refs += [f"{c.get('name')}: env {e.get('name')}" for c in containers(s.podspec) for e in c.get("env") or [] if MONGODB_SECRET_ENV.search(str(e.get("name")))]
        report.check(not refs, f"{who}: its pod holds no password (X.509 users only; no root user)", "; ".join(refs))
        users, where = x509_users(objects, s)
        if not report.check(users is not None, f"{who}: its X.509 users are kept by an init container from the bundle", where):
            continue
        report.check(bool(users) and all(dn.startswith("CN=") for dn in users), f"{who}: {where}: every user is a certificate subject (X.509, $external)", str(sorted(users)))
        mine = [c for c in clients if any(uri_endpoint(u) == (s.host, s.port) for u in c.uris)]
        wanted = set()
        for c in mine:
            dn = iss.client_dn(c.namespace, c.workload) if iss else None
            wanted.add(dn)
            roles = users.get(dn) or []
            for db in sorted(c.databases):
                report.check({"role": "readWrite", "db": db} in roles, f"{who}: X.509 user {dn} (the certificate subject of {c.namespace}/{c.workload}) may readWrite {db}",
                             f"roles {roles}" if dn in users else f"no such user; users: {sorted(users)}")
        report.check(set(users) <= wanted, f"{who}: every X.509 user is a client of the release", f"others: {sorted(set(users) - wanted)}")


def check_mongodb_clients(report: Report, label: str, objects: list[dict]) -> None:
    """Each MongoDB client dials the MongoDB Service in plain MongoDB; a MongoDB WasmPlugin
    authenticates its connections (MONGODB-X509); exactly one MUTUAL DestinationRule gives its
    sidecar the certificate the issuer keeps for that workload (whose subject is its X.509 user),
    checking mongod's name; by credentialName only when istiod may serve it to that sidecar and
    the application cannot use the grant (no API token), else as files mounted into the sidecar
    only."""
    servers = {(s.host, s.port): s for s in mongodb_servers(objects)}
    issuers = mongodb_issuers(objects)
    plugins = [p for p in objects if p.get("kind") == "WasmPlugin" and plugin_protocol(p) == "mongodb"]
    for cl in mongodb_clients(objects):
        who = f"{label}: {cl.name} (MongoDB client {cl.namespace}/{cl.workload})"
        ends = {uri_endpoint(u) for u in cl.uris}
        auth = [p for p in plugins if plugin_selects(p, cl.namespace, cl.labels)]
        report.check(bool(auth) and all(((p["spec"].get("pluginConfig") or {}).get("mongodb_auth") or {}).get("mechanism") == "MONGODB-X509" for p in auth),
                     f"{who}: a MongoDB WasmPlugin authenticates its connections (mongodb_auth MONGODB-X509)",
                     f"selected by {[ident(p) for p in auth]}: without it the connection reaches a mongod that requires authentication")
        if not servers:
            continue  # the plain manifests: MongoDB is the chart's
        server = servers.get(next(iter(ends))) if len(ends) == 1 else None
        if not report.check(server is not None, f"{who}: its URI dials the MongoDB Service of the bundle ({sorted(servers)})", f"it dials {sorted(map(str, ends))}"):
            continue
        report.check(cl.labels.get(MONGODB_USER_LABEL) == cl.workload, f"{who}: its pods carry {MONGODB_USER_LABEL}: {cl.workload} (its DestinationRule selects it)",
                     f"{MONGODB_USER_LABEL}={cl.labels.get(MONGODB_USER_LABEL)!r}")
        rules = [(dr, tls) for dr, tls in mongodb_rules(objects, server) if dr["spec"].get("workloadSelector") is not None
                 and dr["metadata"].get("namespace") == cl.namespace and selector_matches(dr["spec"]["workloadSelector"], cl.labels)]
        if not report.check(len(rules) == 1 and rules[0][1].get("mode") == "MUTUAL",
                            f"{who}: one MUTUAL DestinationRule gives its sidecar a client certificate for {server.host}:{server.port}",
                            f"{[(ident(r), t.get('mode')) for r, t in rules]}: mongod requires one"):
            continue
        dr, tls = rules[0]
        rwho = f"{who}: {ident(dr)}"
        report.check(tls.get("sni") == server.host and server.host in (tls.get("subjectAltNames") or []),
                     f"{rwho}: sends SNI {server.host} and checks that name in mongod's certificate",
                     f"sni {tls.get('sni')}, subjectAltNames {tls.get('subjectAltNames')}: for TCP Istio sets no SNI and checks no name unless told")
        iss = next((i for i in issuers if (cl.namespace, cl.workload) in i.clients), None)
        if not report.check(iss is not None, f"{who}: the MongoDB certificate issuer keeps a certificate for it", "no issuer lists it in KIOSK_CLIENT_CERTS"):
            continue
        secret = iss.clients[(cl.namespace, cl.workload)]
        has_token = token_mounted(objects, cl.obj, cl.podspec)
        paths = [tls.get(k) for k in ("clientCertificate", "privateKey", "caCertificates")]
        if tls.get("credentialName"):
            report.check(tls["credentialName"] == secret[1], f"{rwho}: credentialName is its own certificate's Secret {secret[1]}",
                         f"it is {tls['credentialName']}: the workload would present another's identity")
            report.check(not has_token, f"{rwho}: its application gets no API token, so the `list secrets` istiod requires is its sidecar's only",
                         "the application could read every Secret of the namespace: give its sidecar the certificate as files instead")
            sa = service_account_of(cl.obj, cl.podspec)
            report.check(sa[1] != "default" and rbac_allows(objects, sa, cl.namespace, "list", "secrets", None),
                         f"{rwho}: istiod serves the key to its sidecar (service account {sa[0]}/{sa[1]} may list secrets, and is its own)",
                         "istiod asks a SubjectAccessReview for list secrets (pilot/pkg/credentials/kube/secrets.go) and serves nothing otherwise")
        else:
            dirs = {os.path.dirname(p) for p in paths if p}
            mounts, where = (podspec_sidecar_mounts(cl.podspec), "its pod spec's istio-proxy container") if cl.podspec is not None \
                else strimzi_sidecar_mounts(cl.labels, cl.annotations)
            ok = None not in paths and len(dirs) == 1 and mounts is not None and (secret[1], next(iter(dirs))) in mounts \
                and [os.path.basename(p) for p in paths] == ["tls.crt", "tls.key", "ca.crt"]
            report.check(ok, f"{rwho}: the certificate files it names are Secret {secret[1]} mounted into the sidecar ({where})",
                         f"files {paths}, sidecar mounts {mounts if mounts is not None else where}")


def check_mongodb_wasmplugins(report: Report, label: str, objects: list[dict]) -> None:
    """The MongoDB WasmPlugins: a NETWORK filter on the MongoDB clients' outbound connections to
    MongoDB's port only, FAIL_OPEN (a mongod requiring authentication still refuses), never in
    mongod's or a broker's pod, with a pluginConfig the filter accepts (filter/contract)."""
    plugins = [p for p in objects if p.get("kind") == "WasmPlugin" and plugin_protocol(p) == "mongodb"]
    clients = mongodb_clients(objects)
    if clients:
        report.check(bool(plugins), f"{label}: a WasmPlugin with protocol mongodb is present for the {len(clients)} MongoDB clients")
    ports = {s.port for s in mongodb_servers(objects)} or {27017}
    schema = contract_schema()
    knows = contract_knows_protocols()
    for p in plugins:
        who = f"{label}: {ident(p)}"
        spec = p["spec"]
        report.check(bool(((spec.get("selector") or {}).get("matchLabels"))), f"{who}: has a selector", "without one it applies to every workload")
        report.check(spec.get("type") == "NETWORK", f"{who}: type NETWORK")
        report.check(spec.get("failStrategy") == "FAIL_OPEN", f"{who}: failStrategy FAIL_OPEN")
        modes = [m.get("mode") for m in spec.get("match") or []]
        matched = {pt.get("number") for m in spec.get("match") or [] for pt in m.get("ports") or []}
        report.check(modes == ["CLIENT"] and matched and matched <= ports, f"{who}: match mode CLIENT on MongoDB's port only ({sorted(ports)})",
                     f"modes {modes}, ports {sorted(matched)}")
        for cl in clients:
            report.check(plugin_selects(p, cl.namespace, cl.labels), f"{who}: selects MongoDB client {cl.namespace}/{cl.workload}", f"pod labels {cl.labels}")
        for s in mongodb_servers(objects):
            report.check(not plugin_selects(p, s.namespace, s.labels), f"{who}: does not select mongod's pods ({ident(s.obj)})")
        for b, bns, blabels in broker_pods(objects):
            report.check(not plugin_selects(p, bns, blabels), f"{who}: does not select broker pods of {b}")
        cfg = spec.get("pluginConfig") or {}
        report.check(cfg.get("protocol") == "mongodb" and (cfg.get("mongodb_auth") or {}).get("mechanism") in (None, "MONGODB-X509")
                     and set(cfg.get("mongodb_auth") or {}) <= {"mechanism"},
                     f"{who}: pluginConfig protocol mongodb, mongodb_auth.mechanism MONGODB-X509 or none", json.dumps(cfg))
        if knows:
            errs = [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(cfg)]
            report.check(not errs, f"{who}: pluginConfig is valid for the filter (filter/contract/plugin-config.schema.json)", "; ".join(errs))
        else:
            rest = {k: v for k, v in cfg.items() if k not in ("protocol", "mongodb_auth")}
            errs = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(rest)]
            report.check(not errs, f"{who}: pluginConfig beyond protocol and mongodb_auth is valid for the filter (its contract has no MongoDB fields yet)", "; ".join(errs))
            print(f"  note: filter/contract/plugin-config.schema.json has no `protocol`/`mongodb_auth` yet: {ident(p)}'s are checked against "
                  "the values above only; the full check turns itself on when the contract has them")
    for p in (o for o in objects if o.get("kind") == "WasmPlugin" and plugin_protocol(o) == "kafka"):
        matched = {pt.get("number") for m in p["spec"].get("match") or [] for pt in m.get("ports") or []}
        report.check(not (matched & {s.port for s in mongodb_servers(objects)}), f"{label}: {ident(p)} (Kafka) does not match MongoDB's port")
        if knows:
            cfg = p["spec"].get("pluginConfig") or {}
            errs = [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(cfg)]
            report.check(not errs, f"{label}: {ident(p)}: pluginConfig is valid for the filter (filter/contract/plugin-config.schema.json)", "; ".join(errs))


def check_mongodb_credentials(report: Report, label: str, objects: list[dict]) -> None:
    """No application container of any pod spec (every container but Istio's and mongod), no
    Strimzi Connect or Bridge container, and no MongoDB sink connector holds a MongoDB credential."""
    mongo_secrets = mongodb_secret_names(objects)
    # Where MongoDB is not in the bundle (the plain manifests: it is the chart's), a URI from a
    # Secret the bundle lacks is checked in the kind install instead, which holds both.
    strict = bool(mongodb_servers(objects))
    for o in objects:
        ns = o["metadata"].get("namespace")
        for _, podspec in pod_templates(o):
            found = mongodb_credential_findings(objects, podspec, ns, mongo_secrets, strict)
            report.check(not found, f"{label}: {ident(o)}: no application container holds a MongoDB credential", "; ".join(found))
        if o.get("kind") in ("KafkaBridge", "KafkaConnect"):
            template = o["spec"].get("template") or {}
            container = template.get("connectContainer" if o["kind"] == "KafkaConnect" else "bridgeContainer") or {}
            pseudo = {"containers": [dict(container, name=o["kind"])], "volumes": (template.get("pod") or {}).get("volumes") or []}
            found = mongodb_credential_findings(objects, pseudo, ns, mongo_secrets, strict)
            report.check(not found, f"{label}: {ident(o)}: its application holds no MongoDB credential", "; ".join(found))
        if o.get("kind") == "KafkaConnector" and o["spec"].get("class") == MONGO_SINK_CONNECTOR:
            found = connector_credential_findings(objects, o, strict)
            report.check(not found, f"{label}: {ident(o)}: the MongoDB sink's configuration holds no MongoDB credential and no TLS setting", "; ".join(found))


def check_mongodb(report: Report, label: str, objects: list[dict]) -> None:
    check_mongodb_credentials(report, label, objects)
    check_mongodb_server(report, label, objects)
    check_mongodb_clients(report, label, objects)
    check_mongodb_wasmplugins(report, label, objects)
