"""The schema registry (issue 17, docs/schema-registry.md): in the mesh with mTLS required and
HTTP seen by its sidecar; its AuthorizationPolicies let exactly the pipeline's readers GET and
only the producer's identity register its subject; its storage outlives the pod; every schema
user gets its URL; the registration Job is a post-install/post-upgrade hook in the mesh, runs
as the producer's identity `kiosk-services register-schemas` from the kiosk services' image with
the repository's schemas byte for byte (and the chart's files/schemas/ equals schemas/)."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from .common import ROOT, Report, ident
from .k8s import containers, mounted_configmap_file, pod_templates, selector_matches, service_account_of
from .manifests import compare_with_charts
from .mesh import NATIVE_SIDECAR, OUTSIDER_PRINCIPALS, istio_authorizes, mtls_mode, policies_for, trust_domain
from .mongodb import MONGO_SINK_CONNECTOR
from .pods import pods_of
from .probe import expect_refusals, probe, quiet
from .services import kiosk_program


SCHEMAS_DIR = ROOT / "schemas"  # the mock schema: the one source the chart's files/schemas/ copies
CHART_SCHEMAS_DIR = ROOT / "charts/test-kafka-istio-mongo/files/schemas"
CCOMPAT = "/apis/ccompat/v7"  # Apicurio Registry's Confluent-compatible API
SCHEMA_REGISTRY_IMAGE = "apicurio/apicurio-registry"
# The kiosk services' subcommands that read schemas, and the one that writes them.
SCHEMA_READER_PROGRAMS = {"producer", "mirror", "verify", "mongo-sink"}
SCHEMA_WRITER_PROGRAMS = {"producer"}
# The kiosk services' subcommand that registers the schema (services/src/schemas.rs), its
# schema options (the registered one, those judged compatible, those refused), and the
# repository's schema each of them is given in the chart.
REGISTRATION_PROGRAM = "register-schemas"
REGISTRATION_SCHEMAS = (("--schema", "events-value.v1.schema.json"), ("--compatible", "events-value.v2-compatible.schema.json"),
                        ("--refused", "events-value.v3-incompatible.schema.json"))


class SchemaRegistry:
    """The registry of a bundle, as the services, the mesh and the registration Job see it."""

    def __init__(self, obj, podspec, container, pod, service, port_name, port):
        self.obj, self.podspec, self.container, self.pod = obj, podspec, container, pod
        self.service, self.port_name, self.port = service, port_name, port
        self.namespace = obj["metadata"]["namespace"]

    def url(self) -> str:
        return f"http://{self.service['metadata']['name']}.{self.namespace}.svc.cluster.local:{self.port}{CCOMPAT}"

    def env(self) -> dict[str, str]:
        return {e["name"]: e.get("value") for e in self.container.get("env") or []}


def schema_registries(objects: list[dict]) -> list[SchemaRegistry]:
    out = []
    pods = {p.source: p for p in pods_of(objects)}
    for o in objects:
        if o.get("kind") != "Deployment":
            continue
        _, podspec = pod_templates(o)[0]
        for c in containers(podspec):
            if SCHEMA_REGISTRY_IMAGE not in (c.get("image") or ""):
                continue
            pod = pods[f"Deployment {o['metadata']['name']}"]
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
            svc, port_name, port = None, None, None
            for s in (x for x in objects if x.get("kind") == "Service" and x["metadata"].get("namespace") == pod.namespace):
                if not (s["spec"].get("selector") and selector_matches({"matchLabels": s["spec"]["selector"]}, pod.labels)):
                    continue
                for sp in s["spec"].get("ports") or []:
                    target = sp.get("targetPort", sp.get("port"))
                    if ports.get(target, target) == ports.get("http"):
                        svc, port_name, port = s, sp, sp.get("port")
            out.append(SchemaRegistry(o, podspec, c, pod, svc, port_name, port))
    return out


def schema_users(objects: list[dict]) -> tuple[dict[tuple[str, str], set[str]], set[tuple[str, str]]]:
    """The pipeline's schema readers, from what each workload runs, independently of the chart's
    helper: (service account -> what it is) and the writers (the producer's service accounts).
    The MongoDB sink is Kafka Connect (its KafkaConnector runs the MongoDB sink connector; its
    service account is Strimzi's <connect>-connect) or `kiosk mongo-sink`."""
    readers: dict[tuple[str, str], set[str]] = {}
    writers: set[tuple[str, str]] = set()
    for o in objects:
        for _, podspec in pod_templates(o):
            for c in containers(podspec):
                prog = kiosk_program(c)
                if prog in SCHEMA_READER_PROGRAMS:
                    sa = service_account_of(o, podspec)
                    readers.setdefault(sa, set()).add(f"{o['kind']} {o['metadata']['name']} ({prog})")
                    if prog in SCHEMA_WRITER_PROGRAMS:
                        writers.add(sa)
    connects = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects if o.get("kind") == "KafkaConnect"}
    for o in objects:
        if o.get("kind") == "KafkaConnector" and (o.get("spec") or {}).get("class") == MONGO_SINK_CONNECTOR:
            connect = connects.get((o["metadata"].get("namespace"), (o["metadata"].get("labels") or {}).get("strimzi.io/cluster")))
            if connect is not None:
                readers.setdefault(service_account_of(connect, None), set()).add(f"KafkaConnect {connect['metadata']['name']} (MongoDB sink)")
    return readers, writers


def registration_jobs(objects: list[dict]) -> list[tuple[dict, dict, dict]]:
    """(Job, pod spec, container) of each schema registration Job: a container given
    `register-schemas` as its first argument (whatever its image: check_schema_registry checks
    that it is the kiosk services')."""
    out = []
    for o in objects:
        if o.get("kind") != "Job":
            continue
        _, podspec = pod_templates(o)[0]
        for c in containers(podspec):
            if (c.get("args") or [None])[0] == REGISTRATION_PROGRAM:
                out.append((o, podspec, c))
    return out


def registration_options(args: list[str]) -> dict[str, list[str]]:
    """`register-schemas`' options as clap reads them (services/src/schemas.rs): `--name value`
    or `--name=value`, `--compatible` and `--refused` taking one value or more, repeatable;
    option -> its values, in order."""
    out: dict[str, list[str]] = {}
    current = None
    for a in [str(x) for x in args[1:]]:
        if a.startswith("--"):
            name, eq, value = a.partition("=")
            out.setdefault(name, [])
            current = name
            if eq:
                out[name].append(value)
                current = None
        elif current is not None:
            out[current].append(a)
    return out


def registration_subject(c: dict) -> str:
    """The subject a registration container registers (clap's default: events-value)."""
    return (registration_options(c.get("args") or []).get("--subject") or ["events-value"])[-1]


def check_schema_registry(report: Report, label: str, objects: list[dict], injected: set[str]) -> None:
    """The schema registry of a bundle (docs/schema-registry.md): in the mesh with Istio mTLS
    required and HTTP seen by its sidecar; its AuthorizationPolicy lets exactly the pipeline's
    readers GET and only the producer's identity POST/PUT its subject, nobody else anything, each
    principal a service account the bundle has; its storage outlives the pod; every schema user
    is given its URL; the registration Job registers as a writer, after install and upgrade,
    from the mesh, with the repository's schemas."""
    registries = schema_registries(objects)
    if not registries:
        return
    if not report.check(len(registries) == 1, f"{label}: one schema registry", str([ident(r.obj) for r in registries])):
        return
    reg = registries[0]
    who = f"{label}: schema registry {ident(reg.obj)}"
    pod = reg.pod
    td = trust_domain()
    # In the mesh, HTTP seen, mTLS required.
    report.check(pod.sidecar(injected), f"{who}: has a sidecar (its AuthorizationPolicy is enforced there)", f"namespace {pod.namespace} not injected or injection off")
    if not report.check(reg.service is not None, f"{who}: a Service selects it on its http port", "no Service port targets the container port named http"):
        return
    sp = reg.port_name
    http = sp.get("appProtocol") in ("http", "http2") or re.match(r"^(http|http2)(-|$)", sp.get("name") or "")
    report.check(bool(http), f"{who}: Service {reg.service['metadata']['name']} port {sp.get('port')} is HTTP to Istio (name http or appProtocol http)",
                 f"name {sp.get('name')!r}, appProtocol {sp.get('appProtocol')!r}: as TCP, the policy's method and path rules could not apply")
    cport = next((p["containerPort"] for p in reg.container.get("ports") or [] if p.get("name") == "http"), reg.port)
    report.check(pod.captured(cport), f"{who}: its sidecar captures port {cport}", "excluded from inbound capture: no policy would apply")
    report.check(mtls_mode(objects, pod, cport) == "STRICT", f"{who}: port {cport} takes Istio mTLS only (STRICT)", f"mode {mtls_mode(objects, pod, cport)}")
    own = [p for p in objects if p.get("kind") == "PeerAuthentication" and p["metadata"].get("namespace") == pod.namespace
           and (p.get("spec") or {}).get("selector") and selector_matches(p["spec"]["selector"], pod.labels)]
    report.check(any(((p["spec"].get("mtls") or {}).get("mode")) == "STRICT" for p in own),
                 f"{who}: a PeerAuthentication of its own requires mTLS (STRICT), whatever the namespace's", str([ident(p) for p in own]))
    # Storage.
    env = reg.env()
    kind = env.get("APICURIO_STORAGE_KIND", "sql")
    url = env.get("APICURIO_DATASOURCE_URL") or ""
    persistent, why = False, f"APICURIO_STORAGE_KIND={kind}, APICURIO_DATASOURCE_URL={url or '(default: H2 in memory)'}"
    if kind == "kafkasql":
        persistent = bool(env.get("APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"))
    elif kind == "sql" and url.startswith("jdbc:h2:file:"):
        path = url.removeprefix("jdbc:h2:file:").split(";")[0]
        vols = {v["name"]: v for v in reg.podspec.get("volumes") or []}
        mount = next((m for m in reg.container.get("volumeMounts") or [] if path.startswith(m["mountPath"].rstrip("/") + "/")), None)
        claim = ((vols.get(mount["name"]) or {}).get("persistentVolumeClaim") or {}).get("claimName") if mount else None
        persistent = any(o.get("kind") == "PersistentVolumeClaim" and o["metadata"]["name"] == claim for o in objects)
        why += f": {path} on volume {mount['name'] if mount else None} ({'claim ' + claim if claim else 'no PersistentVolumeClaim'})"
        spec = reg.obj["spec"]
        report.check(spec.get("replicas", 1) == 1 and (spec.get("strategy") or {}).get("type") == "Recreate",
                     f"{who}: one replica, replaced with Recreate (H2's file has one writer)", f"replicas {spec.get('replicas')}, strategy {spec.get('strategy')}")
    elif kind == "sql" and env.get("APICURIO_STORAGE_SQL_KIND") in ("postgresql", "mysql", "mssql"):
        persistent = bool(url)
    report.check(persistent, f"{who}: schemas and their ids outlive the registry's pod", why)
    mgmt = int(env.get("QUARKUS_MANAGEMENT_PORT") or 9000)
    ports = {p.get("name"): p["containerPort"] for p in reg.container.get("ports") or []}
    for probe_name, path in (("readinessProbe", "/health/ready"), ("livenessProbe", "/health/live")):
        get = (reg.container.get(probe_name) or {}).get("httpGet") or {}
        report.check(get.get("path") == path and ports.get(get.get("port"), get.get("port")) == mgmt,
                     f"{who}: {probe_name} is {path} on the management port {mgmt}", json.dumps(get))
    # The access policy.
    policies = policies_for(objects, pod)
    readers, writers = schema_users(objects)
    jobs = registration_jobs(objects)
    subject = next((registration_subject(c) for _, _, c in jobs), "events-value")
    principal = lambda sa: f"{td}/ns/{sa[0]}/sa/{sa[1]}"  # noqa: E731
    reader_ps = {principal(sa) for sa in readers}
    writer_ps = {principal(sa) for sa in writers}
    report.check(bool(writer_ps), f"{who}: the bundle has a producer (a writer of schemas)")
    named = {p for pol in policies for r in (pol.get("spec") or {}).get("rules") or [] for f in r.get("from") or []
             for k in ("principals", "notPrincipals") for p in (f.get("source") or {}).get(k) or []}
    sas = {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects if o.get("kind") == "ServiceAccount"}
    strimzi_sas = {service_account_of(o, None) for o in objects if o.get("kind") in ("KafkaConnect", "KafkaBridge")}
    for p in sorted(named):
        m = re.fullmatch(r"([^/]+)/ns/([^/]+)/sa/([^/]+)", p)
        ok = bool(m) and m.group(1) == td and (m.group(2), m.group(3)) in sas | strimzi_sas
        report.check(ok, f"{who}: principal {p} names a service account of the bundle (the chart's, or Strimzi's for its KafkaConnect or KafkaBridge)",
                     f"trust domain {td}; service accounts: {sorted('/'.join(s) for s in sas | strimzi_sas)}")
    reads = [("GET", f"{CCOMPAT}/schemas/ids/1"), ("GET", f"{CCOMPAT}/subjects/{subject}/versions/latest"), ("GET", f"{CCOMPAT}/config/{subject}")]
    writes = [("PUT", f"{CCOMPAT}/config/{subject}"), ("POST", f"{CCOMPAT}/subjects/{subject}/versions"),
              ("POST", f"{CCOMPAT}/subjects/{subject}"), ("POST", f"{CCOMPAT}/compatibility/subjects/{subject}/versions/latest")]
    nobody = [("DELETE", f"{CCOMPAT}/subjects/{subject}"), ("DELETE", f"{CCOMPAT}/subjects/{subject}/versions/1"),
              ("PUT", f"{CCOMPAT}/config"), ("PUT", f"{CCOMPAT}/mode"), ("POST", f"{CCOMPAT}/subjects/other-value/versions"),
              ("PUT", f"{CCOMPAT}/config/other-value"), ("GET", "/apis/registry/v3/groups/default/artifacts"),
              ("POST", "/apis/registry/v3/groups/default/artifacts"), ("DELETE", "/apis/registry/v3/groups/default/artifacts/x"),
              ("PATCH", f"{CCOMPAT}/subjects/{subject}/versions")]
    everyone = sorted(reader_ps | writer_ps | named | {principal(sa) for sa in sas | strimzi_sas}) + OUTSIDER_PRINCIPALS
    unknown: set[str] = set()
    may_read, may_write, extra = set(), set(), []
    for p in everyone:
        decisions = {}
        for method, path in reads + writes + nobody:
            ok, u = istio_authorizes(policies, p, method, path)
            unknown.update(u)
            decisions[(method, path)] = ok
        if all(decisions[r] for r in reads):
            may_read.add(p)
        if any(decisions[w] for w in writes):
            may_write.add(p)
        if p in writer_ps:
            report.check(all(decisions[w] for w in writes), f"{who}: the producer's identity {p} may register (POST, PUT on {subject})",
                         str([w for w in writes if not decisions[w]]))
        extra += [f"{p or '(plaintext)'} {m} {path}" for m, path in nobody if decisions[(m, path)]]
    report.check(not unknown, f"{who}: its AuthorizationPolicies use only what this check evaluates", str(sorted(unknown)[:5]))
    report.check(may_read == reader_ps, f"{who}: exactly the pipeline's readers may read schemas (GET): {sorted(p.rsplit('/', 1)[1] for p in reader_ps)}",
                 f"allowed {sorted(map(str, may_read))}, readers {sorted(reader_ps)} ({readers})")
    report.check(may_write == writer_ps, f"{who}: only the producer's identity may register schemas (POST, PUT): {sorted(writer_ps)}",
                 f"allowed to write: {sorted(map(str, may_write))}")
    report.check(not extra, f"{who}: nobody may delete, change the registry's own config or mode, write another subject or use Apicurio's own API",
                 str(extra[:5]))
    report.check(any(((p.get("spec") or {}).get("action", "ALLOW")) == "ALLOW" for p in policies),
                 f"{who}: an ALLOW policy applies (without one Istio lets everything through)", str([ident(p) for p in policies]))
    # The services get its URL, and only schema users get it.
    want = reg.url()
    for o in objects:
        for _, podspec in pod_templates(o):
            for c in containers(podspec):
                e = {x["name"]: x.get("value") for x in c.get("env") or []}
                prog = kiosk_program(c)
                sa = service_account_of(o, podspec)
                where = f"{label}: {o['kind']} {o['metadata']['name']} container {c['name']}"
                if prog in SCHEMA_READER_PROGRAMS:
                    report.check(e.get("SCHEMA_REGISTRY_URL") == want, f"{where} ({prog}) gets SCHEMA_REGISTRY_URL={want}", f"it has {e.get('SCHEMA_REGISTRY_URL')!r}")
                if "SCHEMA_REGISTRY_URL" in e:
                    report.check(principal(sa) in may_read, f"{where}: its identity {principal(sa)} may read the registry it is given",
                                 "the registry's sidecar would answer 403")
    # The registration Job.
    if not report.check(len(jobs) == 1, f"{label}: one schema registration Job", str([ident(j) for j, _, _ in jobs])):
        return
    job, podspec, c = jobs[0]
    jwho = f"{label}: {ident(job)}"
    hooks = set(((job["metadata"].get("annotations") or {}).get("helm.sh/hook") or "").split(","))
    report.check({"post-install", "post-upgrade"} <= hooks, f"{jwho}: runs after every install and upgrade (Helm hook post-install,post-upgrade)", str(sorted(hooks)))
    sa = service_account_of(job, podspec)
    report.check(principal(sa) in may_write and principal(sa) in writer_ps, f"{jwho}: runs as the producer's identity ({principal(sa)}), the one that may register",
                 f"writers {sorted(writer_ps)}")
    jpod = next(p for p in pods_of([job]))
    report.check(jpod.sidecar(injected) and jpod.annotations.get(NATIVE_SIDECAR) == "true",
                 f"{jwho}: in the mesh (the registry takes mTLS only), its sidecar native so the Job completes", str(jpod.annotations))
    je = {x["name"]: x.get("value") for x in c.get("env") or []}
    report.check(je.get("SCHEMA_REGISTRY_URL") == want, f"{jwho}: SCHEMA_REGISTRY_URL={want}", f"it has {je.get('SCHEMA_REGISTRY_URL')!r}")
    services = {str(x.get("image")) for o in objects for _, ps in pod_templates(o) for x in containers(ps)
                if kiosk_program(x) not in (None, REGISTRATION_PROGRAM)}
    report.check(not c.get("command") and c.get("image") in services,
                 f"{jwho}: runs `kiosk-services {REGISTRATION_PROGRAM}` from the image of the bundle's other kiosk services (its ENTRYPOINT, no command)",
                 f"image {c.get('image')!r}, command {c.get('command')}; the kiosk services run {sorted(services)}")
    options = registration_options(c.get("args") or [])
    for option, name in REGISTRATION_SCHEMAS:
        given = options.get(option) or []
        found = mounted_configmap_file(objects, podspec, c, given[0]) if len(given) == 1 else None
        text = found[0]["data"][found[1]] if found else None
        report.check(text is not None and text.encode() == (SCHEMAS_DIR / name).read_bytes(),
                     f"{jwho}: {option} is schemas/{name}, byte for byte",
                     f"{given!r}: {'not one file' if len(given) != 1 else 'not in a mounted ConfigMap' if text is None else 'differs'}")
    wait = (options.get("--wait-secs") or [None])[-1] or je.get("KIOSK_WAIT_SECS")  # clap: the argument wins over the env
    deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
    report.check(str(wait or "").isdigit() and isinstance(deadline, int) and int(wait) < deadline,
                 f"{jwho}: waits for the registry (KIOSK_WAIT_SECS or --wait-secs) less long than the Job may run",
                 f"wait {wait!r}, activeDeadlineSeconds {deadline!r}")


def check_schema_files(report: Report, chart_dir: Path = CHART_SCHEMAS_DIR) -> None:
    """The chart ships copies of schemas/ (Helm reads no file outside the chart): the same files,
    byte for byte."""
    repo = {f.name: f.read_bytes() for f in SCHEMAS_DIR.glob("*.json")}
    chart = {f.name: f.read_bytes() for f in chart_dir.glob("*.json")} if chart_dir.is_dir() else {}
    where = "charts/test-kafka-istio-mongo/files/schemas"
    report.check(bool(repo) and sorted(repo) == sorted(chart), f"{where}/ holds the files of schemas/", f"{sorted(chart)} != {sorted(repo)}")
    for name in sorted(set(repo) & set(chart)):
        report.check(repo[name] == chart[name], f"{where}/{name} is byte-identical to schemas/{name}",
                     "copy it again: cp schemas/*.json charts/test-kafka-istio-mongo/files/schemas/")


def schema_registry_self_checks(report: Report, bundle: list[dict], injected: set[str], plain: list[dict], applied: set[str]) -> None:
    """Each way the registry could be open to the wrong identity, lose its schemas, or the
    services and the registration Job be pointed wrong, put into a copy of the kind install:
    check_schema_registry must reject it; and a chart copy of a schema or the plain policy
    differing from their source must be rejected."""

    def find(b, kind, name):
        return next(o for o in b if o.get("kind") == kind and o["metadata"]["name"] == name)

    def policy(b):
        return find(b, "AuthorizationPolicy", "schema-registry-access")["spec"]

    def container(b, kind, name, cname):
        o = find(b, kind, name)
        return next(c for c in containers(pod_templates(o)[0][1]) if c["name"] == cname)

    def set_env(c, name, value):
        c["env"] = [e for e in c.get("env") or [] if e["name"] != name] + ([{"name": name, "value": value}] if value is not None else [])

    outsider = "cluster.local/ns/default/sa/default"
    cases = [
        ("the install as it is", lambda b: None, None),
        ("a rule letting everyone POST", lambda b: policy(b)["rules"].append({"to": [{"operation": {"methods": ["POST"]}}]}), "only the producer's identity may register"),
        ("the mirror among the writers", lambda b: policy(b)["rules"][1]["from"][0]["source"]["principals"].append("cluster.local/ns/pipeline/sa/kiosk-mirror"),
         "only the producer's identity may register"),
        ("the mirror not among the readers", lambda b: policy(b)["rules"][0]["from"][0]["source"]["principals"].remove("cluster.local/ns/pipeline/sa/kiosk-mirror"),
         "exactly the pipeline's readers"),
        ("another namespace's workload among the readers", lambda b: policy(b)["rules"][0]["from"][0]["source"]["principals"].append(outsider),
         "names a service account of the bundle"),
        ("a reader's principal misspelt", lambda b: policy(b)["rules"][0]["from"][0]["source"]["principals"].__setitem__(1, "cluster.local/ns/pipeline/sa/kiosk-mirrors"),
         "names a service account of the bundle"),
        ("readers by namespace", lambda b: policy(b)["rules"][0]["from"][0].__setitem__("source", {"namespaces": ["pipeline"]}), "exactly the pipeline's readers"),
        ("the writers' paths widened to *", lambda b: policy(b)["rules"][1]["to"][0]["operation"].__setitem__("paths", ["*"]), "nobody may delete"),
        ("DELETE for the producer", lambda b: policy(b)["rules"][1]["to"][0]["operation"]["methods"].append("DELETE"), "nobody may delete"),
        ("the readers' GET on every path (Apicurio's own API)", lambda b: policy(b)["rules"][0]["to"][0]["operation"].pop("paths"), "nobody may delete"),
        ("a namespace-wide ALLOW policy", lambda b: b.append({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                                                               "metadata": {"name": "allow-all", "namespace": "pipeline"}, "spec": {"rules": [{}]}}),
         "exactly the pipeline's readers"),
        ("the policy as DENY", lambda b: policy(b).__setitem__("action", "DENY"), "an ALLOW policy applies"),
        ("the policy with a `when` condition", lambda b: policy(b)["rules"][0].__setitem__("when", [{"key": "request.headers[x]", "values": ["y"]}]),
         "only what this check evaluates"),
        ("the policy selecting other pods", lambda b: policy(b)["selector"]["matchLabels"].__setitem__("app.kubernetes.io/component", "mirror"),
         "an ALLOW policy applies"),
        ("the registry PERMISSIVE", lambda b: find(b, "PeerAuthentication", "schema-registry-strict")["spec"]["mtls"].__setitem__("mode", "PERMISSIVE"),
         "takes Istio mTLS only"),
        ("the registry without a sidecar", lambda b: find(b, "Deployment", "schema-registry")["spec"]["template"]["metadata"]["labels"].__setitem__("sidecar.istio.io/inject", "false"),
         "has a sidecar"),
        ("the registry's port as TCP", lambda b: find(b, "Service", "schema-registry")["spec"]["ports"][0].update(name="tcp", appProtocol="tcp"), "is HTTP to Istio"),
        ("the registry in memory", lambda b: set_env(container(b, "Deployment", "schema-registry", "registry"), "APICURIO_DATASOURCE_URL", None), "outlive the registry's pod"),
        ("the H2 file on an emptyDir", lambda b: find(b, "Deployment", "schema-registry")["spec"]["template"]["spec"]["volumes"].__setitem__(0, {"name": "data", "emptyDir": {}}),
         "outlive the registry's pod"),
        ("two replicas on one H2 file", lambda b: find(b, "Deployment", "schema-registry")["spec"].update(replicas=2), "one replica"),
        ("the mirror without SCHEMA_REGISTRY_URL", lambda b: set_env(container(b, "Deployment", "kiosk-mirror", "mirror"), "SCHEMA_REGISTRY_URL", None), "gets SCHEMA_REGISTRY_URL"),
        ("the verifier given another port", lambda b: set_env(container(b, "Job", "kiosk-test-verify", "verify"), "SCHEMA_REGISTRY_URL",
                                                               "http://schema-registry.pipeline.svc.cluster.local:9000/apis/ccompat/v7"), "gets SCHEMA_REGISTRY_URL"),
        ("the registration Job as the mirror", lambda b: find(b, "Job", "kiosk-schema-registration")["spec"]["template"]["spec"].__setitem__("serviceAccountName", "kiosk-mirror"),
         "runs as the producer's identity"),
        ("the registration Job after install only", lambda b: find(b, "Job", "kiosk-schema-registration")["metadata"]["annotations"].__setitem__("helm.sh/hook", "post-install"),
         "after every install and upgrade"),
        ("the registration Job without a native sidecar", lambda b: find(b, "Job", "kiosk-schema-registration")["spec"]["template"]["metadata"]["annotations"].pop(NATIVE_SIDECAR),
         "its sidecar native"),
        ("the registration Job on another image", lambda b: container(b, "Job", "kiosk-schema-registration", "register").__setitem__("image", "docker.io/library/python:3.13.5-slim-bookworm"),
         "from the image of the bundle's other kiosk services"),
        ("the registration Job without --refused", lambda b: container(b, "Job", "kiosk-schema-registration", "register").__setitem__(
            "args", [a for a in container(b, "Job", "kiosk-schema-registration", "register")["args"] if "v3-incompatible" not in a and a != "--refused"]),
         "--refused is schemas/events-value.v3-incompatible.schema.json"),
        ("the registration Job waiting longer than it may run", lambda b: set_env(container(b, "Job", "kiosk-schema-registration", "register"), "KIOSK_WAIT_SECS", "100000"),
         "less long than the Job may run"),
        ("a shipped schema not the repository's", lambda b: find(b, "ConfigMap", "schema-registry-schemas")["data"].__setitem__(
            "events-value.v1.schema.json", find(b, "ConfigMap", "schema-registry-schemas")["data"]["events-value.v1.schema.json"].replace('"additionalProperties": false', '"additionalProperties": true')),
         "byte for byte"),
    ]
    expect_refusals(report, [(what, bundle, doctor, want) for what, doctor, want in cases], lambda b: probe(check_schema_registry, b, injected),
                    "self-check: the schema registry of the kind install passes every check", "self-check: schema registry with {what}: rejected", shown=3)
    # The chart's copies of schemas/ and the plain policy the local mesh reads.
    with tempfile.TemporaryDirectory() as tmp:
        for f in CHART_SCHEMAS_DIR.glob("*.json"):
            (Path(tmp) / f.name).write_bytes(f.read_bytes())
        v3 = Path(tmp) / "events-value.v3-incompatible.schema.json"
        v3.write_bytes(v3.read_bytes().rstrip(b"\n"))
        errs = quiet(check_schema_files, Path(tmp))
        report.check(any("byte-identical" in e for e in errs), "self-check: a chart copy of a schema differing from schemas/ (its last newline): rejected", str(errs[:2]))
        v3.unlink()
        errs = quiet(check_schema_files, Path(tmp))
        report.check(any("holds the files" in e for e in errs), "self-check: a schema of schemas/ missing from the chart: rejected", str(errs[:2]))
    if report.check(any(o.get("kind") == "AuthorizationPolicy" and o["metadata"]["name"] == "schema-registry-access" for o in plain),
                    "istio/authorization-policy-schema-registry.yaml holds AuthorizationPolicy schema-registry-access"):
        expect_refusals(report, [("the plain schema registry policy (which the local mesh reads) differing from the chart's", plain,
                                  lambda b: policy(b)["rules"][1]["from"][0]["source"]["principals"].append("cluster.local/ns/pipeline/sa/kiosk-mirror"),
                                  "schema-registry-access .spec equals")],
                        lambda b: quiet(compare_with_charts, b, bundle, applied), "", "self-check: {what}: rejected")
