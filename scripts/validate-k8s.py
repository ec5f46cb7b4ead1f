#!/usr/bin/env python3
"""Offline validation of the Kubernetes bundle (strimzi/, istio/, charts/, kind scripts).

No cluster, no Docker, no network: what can be proven here is proven here.
  1. Every chart is rendered with Helm's own engine (PyPI helm-python-sdk: libhelm_c, no helm
     binary) for its default values and each values file under its ci/, its values are checked
     against values.schema.json, and `helm lint --strict` runs through the same library.
  2. Every rendered object and every file under strimzi/ and istio/ is validated strictly
     (unknown fields are errors): built-in kinds against the Kubernetes JSON schemas of PyPI
     kubernetes-validate, custom resources against the openAPIV3Schema of the pinned CRDs
     (Strimzi 1.2.0, Istio 1.30.3, Kiali 2.29.0) read from $KIOSK_CRDS_DIR, default
     ../shared/crds (never copied into the repository). An object schema with `properties` and
     no x-kubernetes-preserve-unknown-fields is closed, as `kubectl apply --validate=strict`.
  3. Cross-object invariants: every topic a service uses has a KafkaTopic and an ACL for that
     service's KafkaUser (groups too); the WasmPlugin selects every Kafka client workload and no
     broker; extraStatTags cover every label the filter emits (read from filter/src/metrics.rs);
     pluginConfig has only fields the filter knows (filter/src/config.rs) and names the Kiali CR's
     extension; DestinationRule credentialName Secrets live in the workload's namespace; every
     image is pinned; the plain manifests under strimzi/ and istio/ equal what the charts render.
  4. shellcheck on every scripts/*.sh; the kind scripts' --dry-run prints the commands and runs
     none (docker, kind, kubectl, helm, ... are replaced by stubs that record any call).
  5. Self-checks: deliberately wrong objects must be rejected, or the validator proves nothing.
Exit status 0 when everything holds, 1 otherwise; every error names the file, object and path.

usage: .venv/bin/python scripts/validate-k8s.py [--k8s-version 1.34] [-v]
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from fnmatch import fnmatchcase
from pathlib import Path

import jsonschema
import yaml

try:
    import helm_python as helm
    import kubernetes_validate.utils as kv
except ImportError as e:  # pragma: no cover
    sys.exit(f"validate-k8s: {e}: run scripts/setup.sh (it installs helm-python-sdk and kubernetes-validate into .venv)")

ROOT = Path(__file__).resolve().parent.parent
CRDS_DIR = Path(os.environ.get("KIOSK_CRDS_DIR") or (ROOT / ".." / "shared" / "crds")).resolve()
NAMESPACE = "pipeline"  # where scripts/kind-up.sh installs the charts
CHARTS = {  # chart -> release name kind-up.sh uses
    "kiosk-filter": "kiosk-filter",
    "test-kafka-istio-mongo": "kiosk",
}
# istio/ and strimzi/ files that kind-up.sh applies itself (the rest equal chart output).
PLATFORM_FILES = {
    "strimzi/kafka-cluster.yaml",
    "strimzi/kafka-node-pool-dual-role.yaml",
    "istio/peer-authentication-pipeline-strict.yaml",
    "istio/kiali.yaml",
    "istio/telemetry-tracing.yaml",
    "istio/destination-rule-kafka-tls-origination.yaml",
}
STUBBED_TOOLS = ["docker", "kind", "kubectl", "helm", "cargo", "curl", "python3", "istioctl", "wasm-opt", "base64"]


class Report:
    def __init__(self, verbose: bool):
        self.errors: list[str] = []
        self.checks = 0
        self.verbose = verbose

    def step(self, title: str) -> None:
        print(f"\n==> {title}", flush=True)

    def ok(self, what: str) -> None:
        self.checks += 1
        if self.verbose:
            print(f"  ok    {what}")

    def error(self, what: str) -> None:
        self.checks += 1
        self.errors.append(what)
        print(f"  ERROR {what}", flush=True)

    def check(self, cond: bool, what: str, why: str = "") -> bool:
        if cond:
            self.ok(what)
        else:
            self.error(f"{what}: {why}" if why else what)
        return cond


def ident(obj: dict) -> str:
    md = obj.get("metadata") or {}
    ns = md.get("namespace")
    return f"{obj.get('kind')}/{(ns + '/') if ns else ''}{md.get('name')}"


# ---------------------------------------------------------------------------------------
# Schemas


def close_schema(schema, path=""):
    """A copy of a CRD schema with object schemas closed and `nullable` honoured."""
    if isinstance(schema, list):
        return [close_schema(s, path) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: close_schema(v, path) for k, v in schema.items() if k not in ("properties",)}
    if "properties" in schema:
        out["properties"] = {k: close_schema(v, f"{path}.{k}") for k, v in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in schema:
            out["additionalProperties"] = False
    if schema.get("nullable") and "type" in schema:
        out["type"] = [schema["type"], "null"]
    return out


OBJECT_META = {"name", "namespace", "labels", "annotations", "generateName", "finalizers", "ownerReferences"}


class Validator:
    def __init__(self, report: Report, k8s_version: str):
        self.report = report
        self.k8s_version = k8s_version
        self.crds: dict[tuple[str, str], dict] = {}
        self.crd_files: set[str] = set()

    def load_crds(self) -> None:
        if not CRDS_DIR.is_dir():
            sys.exit(
                f"validate-k8s: no CRD directory {CRDS_DIR}: set KIOSK_CRDS_DIR to the pinned CRDs "
                "(Strimzi 1.2.0, Istio 1.30.3, Kiali 2.29.0; see ../shared/crds/README.md)"
            )
        for f in sorted(CRDS_DIR.rglob("*.yaml")):
            for doc in yaml.safe_load_all(f.read_text()):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
                for v in doc["spec"]["versions"]:
                    if not v.get("served", True):
                        continue
                    schema = (v.get("schema") or {}).get("openAPIV3Schema")
                    if schema:
                        closed = close_schema(schema)
                        # Some CRDs (Istio's) leave the type fields out of their schema.
                        props = closed.setdefault("properties", {})
                        props.setdefault("apiVersion", {"type": "string"})
                        props.setdefault("kind", {"type": "string"})
                        props.setdefault("metadata", {"type": "object"})
                        self.crds[(f"{group}/{v['name']}", kind)] = closed
                        self.crd_files.add(str(f.relative_to(CRDS_DIR)))

    def errors_of(self, obj: dict) -> list[str]:
        """Every schema violation of one object, each as `path: message`."""
        if not isinstance(obj, dict) or "apiVersion" not in obj or "kind" not in obj:
            return ["not a Kubernetes object (apiVersion and kind are required)"]
        key = (obj["apiVersion"], obj["kind"])
        md = obj.get("metadata") or {}
        out = [f"metadata.{k}: unknown field" for k in md if k not in OBJECT_META]
        if not md.get("name"):
            out.append("metadata.name: required")
        if key in self.crds:
            validator = jsonschema.Draft7Validator(self.crds[key])
            body = {k: v for k, v in obj.items() if k != "metadata"}
            for e in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
                out.append(f"{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}")
            return out
        group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
        if "." in group and not group.endswith(".k8s.io"):
            return out + [f"no CRD schema for {obj['apiVersion']} {obj['kind']} in {CRDS_DIR}"]
        try:
            kv.validate(obj, self.k8s_version, strict=True)
        except kv.ValidationError as e:
            out.append(f"{'.'.join(str(p) for p in e.path) or '(top)'}: {e.message}")
        except kv.SchemaNotFoundError as e:
            out.append(e.message)
        return out

    def validate(self, obj: dict, where: str) -> bool:
        errs = self.errors_of(obj)
        if errs:
            for e in errs:
                self.report.error(f"{where}: {ident(obj)}: {e}")
            return False
        self.report.ok(f"{where}: {ident(obj)}")
        return True


# ---------------------------------------------------------------------------------------
# Loading objects


def load_yaml_objects(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def render_chart(report: Report, chart: str, values_file: Path | None) -> list[dict] | None:
    path = ROOT / "charts" / chart
    values = yaml.safe_load(values_file.read_text()) if values_file else None
    label = f"charts/{chart} ({values_file.relative_to(ROOT) if values_file else 'default values'})"
    try:
        with helm.Chart.load(path) as c:
            c.validate_schema(values)
            rendered = c.render(values, name=CHARTS[chart], namespace=NAMESPACE, is_install=True)
    except helm.HelmError as e:
        report.error(f"{label}: helm render failed: {e}")
        return None
    objects = []
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt") or not text.strip():
            continue
        try:
            docs = [d for d in yaml.safe_load_all(text) if d]
        except yaml.YAMLError as e:
            report.error(f"{label}: {template}: not YAML: {e}")
            continue
        for d in docs:
            d.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
            d["_source"] = f"{label} {template}"
            objects.append(d)
    report.ok(f"{label}: rendered {len(objects)} objects")
    lint = helm.lint(path, values, strict=True, namespace=NAMESPACE)
    problems = [m for m in lint.get("messages", []) if m.get("severity", 0) >= 2] + [
        {"path": "", "error": e} for e in lint.get("errors") or []
    ]
    for m in problems:
        report.error(f"{label}: helm lint: {m.get('path')}: {m.get('error')}")
    if not problems:
        report.ok(f"{label}: helm lint --strict clean")
    print(f"  {label}: {len(objects)} objects rendered, helm lint {'clean' if not problems else 'FAILED'}")
    return objects


def strip(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


# ---------------------------------------------------------------------------------------
# Invariants


def filter_labels() -> list[str]:
    src = (ROOT / "filter/src/metrics.rs").read_text()
    m = re.search(r"pub const LABELS: &\[&str\] = &\[(.*?)\];", src, re.S)
    if not m:
        sys.exit("validate-k8s: cannot find `pub const LABELS` in filter/src/metrics.rs")
    return re.findall(r'"([^"]+)"', re.sub(r"//[^\n]*", "", m.group(1)))


def filter_config_fields() -> dict[str, set[str]]:
    src = (ROOT / "filter/src/config.rs").read_text()
    out = {}
    for struct in ("Config", "Kiali"):
        m = re.search(r"pub struct %s \{(.*?)\n\}" % struct, src, re.S)
        if not m:
            sys.exit(f"validate-k8s: cannot find `pub struct {struct}` in filter/src/config.rs")
        out[struct] = set(re.findall(r"^\s*pub (\w+):", m.group(1), re.M))
    return out


def pod_templates(obj: dict) -> list[tuple[dict, dict]]:
    """(pod labels, pod spec) of a workload object."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        t = spec.get("template") or {}
        return [((t.get("metadata") or {}).get("labels") or {}, t.get("spec") or {})]
    if kind == "Job":
        t = spec.get("template") or {}
        return [((t.get("metadata") or {}).get("labels") or {}, t.get("spec") or {})]
    if kind == "Pod":
        return [((obj.get("metadata") or {}).get("labels") or {}, spec)]
    return []


def containers(podspec: dict) -> list[dict]:
    return list(podspec.get("initContainers") or []) + list(podspec.get("containers") or [])


def arg_value(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


class Client:
    """A Kafka client workload: who it is, what it reads and writes."""

    def __init__(self, name, namespace, labels, user, source):
        self.name, self.namespace, self.labels, self.user, self.source = name, namespace, labels, user, source
        self.reads: set[str] = set()
        self.writes: set[str] = set()
        self.groups: set[str] = set()


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
                m = re.search(r"^\s*sasl\.username\s*=\s*(\S+)", props, re.M)
                report.check(bool(m), f"{where}: container {c.get('name')} authenticates (sasl.username in KAFKA_PROPERTIES)")
                args = [str(a) for a in c.get("args") or []]
                sub = args[0] if args else ""
                cl = Client(f"{md.get('name')}/{c.get('name')}", md.get("namespace"), labels, m.group(1) if m else None, where)

                def need(flag):
                    v = arg_value(args, flag)
                    report.check(v is not None, f"{where}: `kiosk {sub}` passes {flag} explicitly", "the invariants need it")
                    return v

                if sub == "mirror":
                    cl.reads.add(need("--from") or "")
                    cl.writes.add(need("--to") or "")
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
            cl = Client(f"KafkaBridge {md.get('name')}", md.get("namespace"), labels, auth.get("username"), where)
            cl.writes.update(produced_via_rest)
            clients.append(cl)
        if obj.get("kind") == "KafkaConnect":
            spec = obj["spec"]
            auth = spec.get("authentication") or {}
            labels = ((((spec.get("template") or {}).get("pod") or {}).get("metadata") or {}).get("labels")) or {}
            cl = Client(f"KafkaConnect {md.get('name')}", md.get("namespace"), labels, auth.get("username"), where)
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
        report.check(((user["spec"].get("authentication") or {}).get("type")) == "scram-sha-512", f"{who}: KafkaUser {cl.user} is scram-sha-512")
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


def check_wasmplugin(report: Report, label: str, objects: list[dict], clients: list[Client]) -> None:
    plugins = [o for o in objects if o.get("kind") == "WasmPlugin"]
    if not report.check(len(plugins) >= 1, f"{label}: a WasmPlugin is present"):
        return
    brokers = broker_pods(objects)
    fields = filter_config_fields()
    kiali_exts = {e.get("name") for o in objects if o.get("kind") == "Kiali" for e in (o["spec"].get("extensions") or []) if e.get("enabled")}
    for p in plugins:
        who = f"{label}: {ident(p)}"
        spec = p["spec"]
        sel = ((spec.get("selector") or {}).get("matchLabels")) or {}
        ns = p["metadata"].get("namespace")
        report.check(bool(sel), f"{who}: has a selector", "without one it applies to every workload, brokers included")
        report.check(spec.get("type") == "NETWORK", f"{who}: type NETWORK")
        report.check(spec.get("failStrategy") == "FAIL_OPEN", f"{who}: failStrategy FAIL_OPEN")
        modes = [m.get("mode") for m in spec.get("match") or []]
        ports = {pt.get("number") for m in spec.get("match") or [] for pt in m.get("ports") or []}
        report.check(modes == ["CLIENT"] and {9092, 9093} <= ports, f"{who}: match mode CLIENT on ports 9092 and 9093", f"modes {modes}, ports {sorted(ports)}")
        root = ns == "istio-system"
        for cl in clients:
            matches = all(cl.labels.get(k) == v for k, v in sel.items())
            report.check(matches and (root or cl.namespace == ns), f"{who}: selects Kafka client {cl.namespace}/{cl.name}", f"pod labels {cl.labels} in namespace {cl.namespace}")
        for b, bns, blabels in brokers:
            matches = all(blabels.get(k) == v for k, v in sel.items()) and (root or bns == ns)
            report.check(not matches, f"{who}: does not select broker pods of {b}", "the filter must not run in brokers")
        cfg = spec.get("pluginConfig") or {}
        unknown = sorted(set(cfg) - fields["Config"]) + sorted(f"kiali.{k}" for k in set(cfg.get("kiali") or {}) - fields["Kiali"])
        report.check(not unknown, f"{who}: pluginConfig fields are known to the filter (filter/src/config.rs)", f"unknown {unknown}")
        ext = (cfg.get("kiali") or {}).get("extension", "kafka")
        if kiali_exts:
            report.check(ext in kiali_exts, f"{who}: kiali.extension {ext!r} is enabled in the Kiali CR", f"enabled: {sorted(kiali_exts)}")


def check_mesh_config(report: Report, label: str, objects: list[dict], labels: list[str], shared_name: str | None) -> None:
    meshes = [o for o in objects if o.get("kind") == "ConfigMap" and "mesh" in (o.get("data") or {})]
    if not report.check(bool(meshes), f"{label}: a mesh ConfigMap (extraStatTags) is present"):
        return
    for m in meshes:
        who = f"{label}: {ident(m)}"
        mesh = yaml.safe_load(m["data"]["mesh"]) or {}
        dc = mesh.get("defaultConfig") or {}
        tags = dc.get("extraStatTags") or []
        missing = [t for t in labels if t not in tags]
        report.check(not missing, f"{who}: extraStatTags cover all {len(labels)} filter labels", f"missing {missing}")
        prefixes = ((dc.get("proxyStatsMatcher") or {}).get("inclusionPrefixes")) or []
        report.check("wasmcustom" in prefixes, f"{who}: proxyStatsMatcher includes wasmcustom stats")
        if shared_name is not None:
            report.check(
                m["metadata"]["name"] == shared_name and m["metadata"].get("namespace") == "istio-system",
                f"{who}: is istiod's SHARED_MESH_CONFIG (istio-system/{shared_name})",
            )


def check_destination_rules(report: Report, label: str, objects: list[dict], script_secrets: set[tuple[str, str]]) -> None:
    secrets = {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects if o.get("kind") == "Secret"} | script_secrets
    for dr in (o for o in objects if o.get("kind") == "DestinationRule"):
        who = f"{label}: {ident(dr)}"
        ns = dr["metadata"].get("namespace")
        spec = dr["spec"]
        policies = [spec.get("trafficPolicy") or {}] + [s.get("trafficPolicy") or {} for s in spec.get("subsets") or []]
        tls = []
        for pol in policies:
            tls.append(pol.get("tls") or {})
            tls += [p.get("tls") or {} for p in pol.get("portLevelSettings") or []]
        for t in tls:
            name = t.get("credentialName")
            if not name:
                continue
            report.check(bool(spec.get("workloadSelector")), f"{who}: credentialName {name} comes with a workloadSelector", "sidecars only use credentialName with one")
            report.check((ns, name) in secrets, f"{who}: Secret {name} is in the workload's namespace {ns}", "no such Secret (in the bundle or created by scripts/kind-up.sh)")


IMAGE_RE = re.compile(r"^(?P<repo>[^@\s]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")


def pinned(image: str) -> bool:
    image = image.removeprefix("oci://")
    m = IMAGE_RE.match(image)
    if not m:
        return False
    if m.group("digest"):
        return True
    last = m.group("repo").rsplit("/", 1)[-1]
    return bool(m.group("tag")) and m.group("tag") != "latest" and ":" not in last


def images_of(obj: dict) -> list[tuple[str, str]]:
    out = []
    for _, podspec in pod_templates(obj):
        for c in containers(podspec):
            out.append((f"container {c.get('name')}", str(c.get("image", ""))))
    spec = obj.get("spec") or {}
    if obj.get("kind") in ("KafkaConnect", "KafkaBridge", "Kafka") and spec.get("image"):
        out.append(("spec.image", spec["image"]))
    if obj.get("kind") == "KafkaConnect" and spec.get("build"):
        out.append(("spec.build.output.image", spec["build"]["output"]["image"]))
    if obj.get("kind") == "WasmPlugin":
        out.append(("spec.url", spec.get("url", "")))
    return out


def check_images(report: Report, label: str, objects: list[dict]) -> None:
    for o in objects:
        for where, image in images_of(o):
            report.check(pinned(image), f"{label}: {ident(o)} {where} {image!r} is pinned", "needs a tag other than latest, or a digest")


def check_dockerfiles(report: Report) -> None:
    for f in sorted((ROOT / "docker").glob("*Dockerfile")):
        text = f.read_text()
        args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
        for base in re.findall(r"^FROM (\S+)", text, re.M):
            if base == "scratch":
                continue
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), "?"), base)
            report.check(pinned(image), f"{f.relative_to(ROOT)}: base image {image!r} is pinned", "needs a tag other than latest, or a digest")
    for var, image in re.findall(r"^(\w+_IMAGE)=(\S+)$", (ROOT / "scripts/kind-up.sh").read_text(), re.M):
        report.check(pinned(image), f"scripts/kind-up.sh: {var}={image} is pinned")


def compare_with_charts(report: Report, plain: list[dict], rendered: list[dict]) -> None:
    by_key = {(o["kind"], o["metadata"]["name"]): o for o in rendered}
    for o in plain:
        src = o["_source"]
        if src in PLATFORM_FILES:
            continue
        key = (o["kind"], o["metadata"]["name"])
        twin = by_key.get(key)
        if not report.check(twin is not None, f"{src}: {ident(o)} is what a chart renders with default values", "no object of that kind and name in the charts' output"):
            continue
        for field in ("spec", "data", "rules", "subjects", "roleRef"):
            a, b = o.get(field), twin.get(field)
            if field == "data" and a and "mesh" in a:
                a, b = yaml.safe_load(a["mesh"]), yaml.safe_load(b["mesh"])
            report.check(a == b, f"{src}: {ident(o)} .{field} equals {twin['_source']}", f"{json.dumps(a, sort_keys=True)[:300]} != {json.dumps(b, sort_keys=True)[:300]}")


def script_created_secrets() -> set[tuple[str, str]]:
    text = (ROOT / "scripts/kind-up.sh").read_text()
    return {(ns, name) for ns, name in re.findall(r"kubectl -n (\S+) create secret generic (\S+)", text)}


def istiod_shared_mesh_config(report: Report) -> str | None:
    values = yaml.safe_load((ROOT / "istio/helm/istiod-values.yaml").read_text()) or {}
    name = (((values.get("pilot") or {}).get("env")) or {}).get("SHARED_MESH_CONFIG")
    report.check(bool(name), "istio/helm/istiod-values.yaml: pilot.env.SHARED_MESH_CONFIG is set")
    providers = {p.get("name") for p in (values.get("meshConfig") or {}).get("extensionProviders") or []}
    telemetry = load_yaml_objects(ROOT / "istio/telemetry-tracing.yaml")
    for t in telemetry:
        for tr in t["spec"].get("tracing") or []:
            for p in tr.get("providers") or []:
                report.check(p.get("name") in providers, f"istio/telemetry-tracing.yaml: tracing provider {p.get('name')!r} is defined in istiod's meshConfig.extensionProviders")
    return name


# ---------------------------------------------------------------------------------------
# Scripts


def check_scripts(report: Report) -> None:
    scripts = sorted((ROOT / "scripts").glob("*.sh"))
    shellcheck = shutil.which("shellcheck")
    if not report.check(shellcheck is not None, "shellcheck is installed", "run scripts/setup.sh (Debian package shellcheck)"):
        return
    r = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
    report.check(r.returncode == 0, f"shellcheck {len(scripts)} scripts ({', '.join(s.name for s in scripts)})", r.stdout[-3000:])
    print(f"  shellcheck: {len(scripts)} scripts {'clean' if r.returncode == 0 else 'FAILED'}")
    expect = {
        "kind-up.sh": ["+ docker run", "+ kind create cluster", "+ helm upgrade --install istiod", "+ helm upgrade --install kiali-operator",
                       "+ helm upgrade --install strimzi", "+ kubectl apply -f istio/kiali.yaml", "+ docker build", "+ docker push",
                       "+ helm upgrade --install kiosk-filter charts/kiosk-filter", "+ helm upgrade --install kiosk charts/test-kafka-istio-mongo",
                       "+ scripts/build-filter.sh"],
        "kind-test.sh": ["+ helm test kiosk", "+ kubectl -n istio-system port-forward svc/kiali", "+ python3 charts/test-kafka-istio-mongo/files/kiali_edges.py"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        stubs, log = Path(tmp) / "bin", Path(tmp) / "calls.log"
        stubs.mkdir()
        for tool in STUBBED_TOOLS:
            stub = stubs / tool
            stub.write_text(f"#!/bin/sh\necho \"{tool} $*\" >> '{log}'\nexit 97\n")
            stub.chmod(0o755)
        # A copy of scripts/ whose build-filter.sh is a stub too.
        for name, lines in expect.items():
            env = dict(os.environ, PATH=f"{stubs}:{os.environ.get('PATH', '')}")
            r = subprocess.run(["bash", str(ROOT / "scripts" / name), "--dry-run"], capture_output=True, text=True, env=env, timeout=60)
            out = r.stdout
            report.check(r.returncode == 0, f"scripts/{name} --dry-run exits 0", (r.stderr or out)[-1500:])
            printed = [l for l in out.splitlines() if l.startswith("+ ")]
            for want in lines:
                report.check(any(l.startswith(want) for l in printed), f"scripts/{name} --dry-run prints `{want} ...`")
            calls = log.read_text() if log.exists() else ""
            report.check(not calls, f"scripts/{name} --dry-run runs none of {', '.join(STUBBED_TOOLS)}", f"it ran: {calls.strip()[:500]}")
            print(f"  scripts/{name} --dry-run: {len(printed)} commands printed, {len(calls.splitlines())} run")
            log.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------
# Self-checks: the validator must reject what is wrong.


def self_checks(report: Report, v: Validator, labels: list[str]) -> None:
    topic = load_yaml_objects(ROOT / "strimzi/kafka-topic-events.yaml")[0]
    bad = copy.deepcopy(topic)
    bad["spec"]["partitionz"] = 3
    errs = v.errors_of(bad)
    report.check(any("partitionz" in e for e in errs), "self-check: an unknown field in a KafkaTopic (CRD schema) is rejected", f"got {errs}")
    bad = copy.deepcopy(topic)
    bad["spec"]["partitions"] = "three"
    report.check(bool(v.errors_of(bad)), "self-check: a wrong type in a KafkaTopic is rejected")
    wasm = load_yaml_objects(ROOT / "istio/wasm-plugin-kiosk.yaml")[0]
    bad = copy.deepcopy(wasm)
    bad["spec"]["match"][0]["portz"] = [9092]
    report.check(any("portz" in e for e in v.errors_of(bad)), "self-check: an unknown nested field in a WasmPlugin is rejected")
    bad = copy.deepcopy(wasm)
    bad["spec"]["failStrategy"] = "FAIL_SOMETIMES"
    report.check(bool(v.errors_of(bad)), "self-check: an enum violation in a WasmPlugin is rejected")
    dep = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                 "spec": {"containers": [{"name": "c", "image": "i:1", "imagePullPolizy": "Always"}]}}},
    }
    errs = v.errors_of(dep)
    report.check(any("imagePullPolizy" in e for e in errs), "self-check: an unknown field in a Deployment container (Kubernetes schema) is rejected", f"got {errs}")
    good = copy.deepcopy(dep)
    del good["spec"]["template"]["spec"]["containers"][0]["imagePullPolizy"]
    report.check(not v.errors_of(good), "self-check: the same Deployment without it is accepted", f"got {v.errors_of(good)}")
    report.check(bool(v.errors_of({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "x"}})), "self-check: a kind without a schema is rejected")
    for image, want in [("foo", False), ("foo:latest", False), ("localhost:5001/foo", False), ("foo:1.2", True),
                        ("localhost:5001/foo:1.2", True), ("foo@sha256:" + "a" * 64, True), ("oci://r:5000/x/y:0.1.0", True)]:
        report.check(pinned(image) == want, f"self-check: image {image!r} is {'pinned' if want else 'not pinned'}")
    cm = {"kind": "ConfigMap", "metadata": {"name": "istio-user", "namespace": "istio-system"},
          "data": {"mesh": yaml.safe_dump({"defaultConfig": {"extraStatTags": labels[:-1], "proxyStatsMatcher": {"inclusionPrefixes": ["wasmcustom"]}}})}}
    probe = Report(False)
    with open(os.devnull, "w") as null:
        stdout, sys.stdout = sys.stdout, null
        try:
            check_mesh_config(probe, "probe", [cm], labels, None)
        finally:
            sys.stdout = stdout
    report.check(len(probe.errors) == 1 and labels[-1] in probe.errors[0], "self-check: extraStatTags missing one filter label are rejected")
    user = load_yaml_objects(ROOT / "strimzi/kafka-user-mirror.yaml")[0]
    report.check(acl_allows(user, "topic", "events", "Read") and not acl_allows(user, "topic", "events", "Write")
                 and not acl_allows(user, "topic", "other", "Read"), "self-check: ACL matching allows exactly what the mirror's ACLs say")


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


# ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description="Offline validation of the Kubernetes bundle.")
    parser.add_argument("--k8s-version", default="1.34", help="Kubernetes version of the JSON schemas (kind's node is v1.34)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every passing check too")
    args = parser.parse_args()
    report = Report(args.verbose)
    v = Validator(report, args.k8s_version)

    report.step(f"schemas: Kubernetes {args.k8s_version} (kubernetes-validate {kv.__version__}), CRDs from {CRDS_DIR}")
    v.load_crds()
    print(f"  {len(v.crds)} CRD versions from {len(v.crd_files)} files; helm-python-sdk {helm.__version__} (Helm SDK {helm.helm_sdk_version()})")
    labels = filter_labels()
    print(f"  the filter emits {len(labels)} labels (filter/src/metrics.rs LABELS)")

    report.step("self-checks: wrong objects must be rejected")
    before = len(report.errors)
    self_checks(report, v, labels)
    print(f"  {'all rejected as they should be' if len(report.errors) == before else 'FAILED: the validator would miss errors'}")

    report.step("plain manifests: strimzi/ and istio/")
    plain = []
    for d in ("strimzi", "istio"):
        for f in sorted((ROOT / d).glob("*.yaml")):
            for o in load_yaml_objects(f):
                o["_source"] = str(f.relative_to(ROOT))
                plain.append(o)
    ok = sum(v.validate(strip(o), o["_source"]) for o in plain)
    print(f"  {ok}/{len(plain)} objects valid")

    report.step("charts: render with Helm's engine (default values and ci/*.yaml), helm lint, validate")
    renders: dict[str, list[dict]] = {}
    for chart in CHARTS:
        for values in [None, *sorted((ROOT / "charts" / chart / "ci").glob("*.yaml"))]:
            objs = render_chart(report, chart, values)
            if objs is None:
                continue
            key = f"{chart}:{values.name if values else 'default'}"
            renders[key] = objs
            ok = sum(v.validate(strip(o), o["_source"]) for o in objs)
            print(f"  {key}: {ok}/{len(objs)} objects valid")

    report.step("invariants")
    shared = istiod_shared_mesh_config(report)
    platform = [o for o in plain if o["_source"] in PLATFORM_FILES]
    secrets = script_created_secrets()
    default_charts = renders.get("kiosk-filter:default", []) + renders.get("test-kafka-istio-mongo:default", [])
    bundles = {"strimzi/ + istio/ (plain manifests)": plain, "kind install (platform files + charts, default values)": platform + default_charts}
    for key, objs in renders.items():
        if not key.endswith(":default"):
            other = "kiosk-filter:default" if key.startswith("test-") else "test-kafka-istio-mongo:default"
            bundles[f"kind install with {key}"] = platform + objs + renders.get(other, [])
    for label, objs in bundles.items():
        before = len(report.errors)
        clients = kafka_clients(Report(False), objs)
        check_topics_and_acls(report, label, objs)
        check_wasmplugin(report, label, objs, clients)
        check_mesh_config(report, label, objs, labels, shared)
        check_destination_rules(report, label, objs, secrets)
        check_images(report, label, objs)
        print(f"  {label}: {len(objs)} objects, {len(clients)} Kafka clients: {'ok' if len(report.errors) == before else 'FAILED'}")
    before = len(report.errors)
    compare_with_charts(report, plain, default_charts)
    print(f"  strimzi/ and istio/ equal the charts' output: {'ok' if len(report.errors) == before else 'FAILED'}")
    before = len(report.errors)
    check_dockerfiles(report)
    print(f"  Dockerfiles and kind images pinned: {'ok' if len(report.errors) == before else 'FAILED'}")
    before = len(report.errors)
    kiali_edges_checks(report, renders.get("test-kafka-istio-mongo:default", []))
    print(f"  the Kiali edge check (files/kiali_edges.py) on graphs in Kiali's shape: {'ok' if len(report.errors) == before else 'FAILED'}")

    report.step("scripts: shellcheck, kind scripts --dry-run")
    check_scripts(report)

    print()
    if report.errors:
        print(f"validate-k8s: FAIL: {len(report.errors)} of {report.checks} checks failed:")
        for e in report.errors[:50]:
            print(f"  - {e}")
        return 1
    print(f"validate-k8s: {report.checks} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
