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
     no x-kubernetes-preserve-unknown-fields is closed, as `kubectl apply --validate=strict`
     (except under allOf/anyOf/oneOf/not, which only validate values of a structural schema).
  3. Cross-object invariants: every topic a service uses has a KafkaTopic and an ACL for that
     service's KafkaUser (groups too); the WasmPlugin selects every Kafka client workload and no
     broker, and is pinned by digest or pulled Always; any two WasmPlugins of one module that may
     select one pod (same namespace or the root one, no label required with two values; no
     selector: every pod) carry the same vmConfig, since they share one Wasm VM there whose
     environment is that of whichever Envoy creates first (docs/wasm-vms.md); extraStatTags cover every label the filter
     emits (filter/contract/metrics.json, generated from the filter's code); pluginConfig has
     only fields the filter knows (filter/contract/plugin-config.schema.json) and names the
     Kiali CR's extension; DestinationRule credentialName Secrets live in the workload's
     namespace; every image is pinned; each plain manifest under strimzi/ and istio/ is applied
     by kind-up.sh or equal to what a chart renders. The REST entry's ingress requires a JWT:
     the gateway's RequestAuthentication names the token issuer the chart deploys (issuer,
     audience, jwksUri, its Service), its AuthorizationPolicy requires a request principal in
     every rule, the issuer runs outside the mesh, the producer is a client the issuer knows;
     the filter's Grafana dashboard ships in a ConfigMap the Grafana chart's sidecar loads.
     One trace across the Kafka hops (docs/tracing.md): a mesh-wide Telemetry samples every
     request for providers istiod's values define, each `opentelemetry` over gRPC to the
     Service and port of Jaeger's OTLP gRPC receiver in the Jaeger addon kind-up.sh applies (as
     read from Istio 1.30.3's samples/addons/jaeger.yaml); every KafkaBridge has tracing.type
     opentelemetry and exports OTLP gRPC to that same service:port.
     Exactly once (docs/exactly-once.md): the KafkaUser each mirror runs as (a `kiosk mirror`
     container's; in strimzi/ alone, the user that writes events.mirror, with the mirror's
     defaults) may Write and Describe its transactional id (--transactional-id, else env
     KIOSK_TRANSACTIONAL_ID, $(VAR) expanded as the kubelet does, else <group>-<hostname>; a
     literal ACL equal to it or a prefix of its fixed part) and Read its group; that id is per
     instance (it includes the pod's name: fieldRef metadata.name, or the hostname left to the
     pod), since two producers with one id fence each other; every reader of what the mirror
     writes (its --to and --dead-letter-topic) reads read_committed: a KafkaConnector through
     its KafkaConnect's consumer.isolation.level or its own consumer.override.isolation.level
     (where the worker's override policy admits it), a KafkaBridge that may read them through
     spec.consumer.config, the kiosk consumers through services/src/kafka.rs consumer_config;
     the transaction state log fits the brokers (replication factor and min.isr);
     the validator's model of `kiosk mirror` (defaults, id) is read back from services/src/mirror.rs.
     Probes (docs/exactly-once.md, "Probes"): every container of a program that touches a health
     file (`kiosk-services mirror`: services/src/*.rs calling touch_while_healthy) names it
     (--health-file, else env KIOSK_HEALTH_FILE), in a directory it can write (the mount point
     of a writable emptyDir, or /tmp or /var/tmp on a root filesystem not read-only), and has a
     readiness probe running the image's binary (docker/kiosk.Dockerfile ENTRYPOINT) `health`
     on that same file with a --max-age of two touches or more, a liveness probe on it with a
     greater --max-age, any startup probe on it too, restartPolicy Always; no other kiosk
     program has a probe on a health file; the model (touch interval, flags, default age) is
     read back from services/src/health.rs.
     Pods as Strimzi 1.2.0 and Istio 1.30.3 make them (Strimzi's labels, StrimziPodSet pod names,
     the NetworkPolicies its operator generates; Istio's workload and canonical-service names,
     sidecar capture, PeerAuthentication precedence): every sidecar's workload, app and revision
     are what the filter and the expected Kiali edges say, one app per workload; Prometheus may
     scrape every sidecar through the NetworkPolicies; plain Kafka listeners take only Istio
     mTLS, TLS listeners pass untouched; credentials a StatefulSet keeps in its volume outlive
     a reinstall; the filter's istio_tcp_received_bytes_total can share Istio's family (same
     type, never the same series, every label Kiali groups by).
     Kafka credentials (docs/kafka-credentials.md), for the default install (SASL performed by
     the filter) and for `kind-up.sh --kafka-auth tls` (TLS client identity:
     istio/kafka-tls-client-identity/ with the charts' ci/ TLS values): no application
     container of any pod spec (every container but istio-proxy, and Strimzi's Bridge and
     Connect) holds a Kafka credential (env *SASL*/*JAAS*/*PASSWORD*, KAFKA_PROPERTIES with
     sasl./ssl./security.protocol, a KafkaUser's Secret by env, envFrom or volume); each
     KafkaUser is of the kind its listener requires; a WasmPlugin with kafka_auth takes both
     variables from the sidecar (vmConfig.env valueFrom: HOST, no value), performs what the
     listener requires, faces no re-authentication (connections.max.reauth.ms), and every pod
     it selects gives its istio-proxy the user's name and Secret (its pod spec's istio-proxy
     container, or Istio's injection template of istio/helm/istiod-values.yaml, rendered here
     for the pod in both sidecar modes); without kafka_auth no client dials a SASL listener.
     TLS client identity: each client of a listener requiring certificates has one MUTUAL
     DestinationRule for its own KafkaUser (a tls user), checking the broker's name, whose
     Secret a sync Deployment keeps from the User Operator's and Strimzi's cluster CA (its
     Roles allowing it), and istiod may serve it to that sidecar (list secrets, its own service
     account) while the application gets no API token.
     MongoDB credentials (docs/mongodb-credentials.md): no application container of any pod
     spec (every container but Istio's and mongod), no Strimzi Connect or Bridge container and
     no MongoDB sink connector holds a MongoDB credential (an env var named like a password or
     a MongoDB secret; a MongoDB URI, resolved through the bundle's Secrets and Strimzi's
     ${secrets:...}, with a user, password, authentication or TLS option; anything of a
     MongoDB certificate's Secret); mongod requires TLS, client certificates of the release's
     MongoDB CA and authentication, with the issuer's certificate, its port uncaptured by its
     sidecar and mTLS DISABLE on it, no password in its pod, X.509 users exactly the release's
     clients (their certificates' subjects, readWrite on the databases they use); each MongoDB
     client dials the MongoDB Service in plain MongoDB, is authenticated by a MongoDB
     WasmPlugin (MONGODB-X509) and has one MUTUAL DestinationRule pinning mongod's name with
     its own certificate: by credentialName when istiod may serve it to that sidecar and the
     application has no API token, else as files mounted into the sidecar only (Istio's
     injection template, rendered here); the MongoDB WasmPlugin matches only MongoDB's port,
     selects every client and no mongod or broker, and its pluginConfig is valid for the
     filter's contract (checked in full once the contract has `protocol` and `mongodb_auth`).
     The schema registry (docs/schema-registry.md): its pod has a sidecar capturing its port,
     which a Service names HTTP, and takes Istio mTLS only (a PeerAuthentication of its own);
     its AuthorizationPolicies, evaluated here as Istio would for every service account of the
     bundle and for outsiders, let exactly the pipeline's readers (found from what each
     workload runs: producer, mirror, verifier, the MongoDB sink) GET, only the producer's
     identity POST/PUT its subject, and nobody delete, change the global config or use
     Apicurio's own API, each principal a service account of the bundle; its storage (H2 in a
     file on a PersistentVolumeClaim, one replica, Recreate) outlives the pod; every schema user
     gets SCHEMA_REGISTRY_URL of its Service, and only identities that may read get it; the
     registration Job is a post-install/post-upgrade hook in the mesh with a native sidecar,
     runs as the producer's identity, the chart's program, the repository's schemas byte for
     byte (and charts/test-kafka-istio-mongo/files/schemas/ equals schemas/).
  4. Programs of the bundle run here: the TLS client identity's certificate sync program
     against a stand-in Kubernetes API through the life of Strimzi's certificates (its Roles
     must allow each call); the MongoDB certificate issuer (with this machine's openssl)
     against the same stand-in through the life of its certificates (first start, renewal with
     mongod restarted, a CA renewal with both CAs trusted, a changed subject; its Role must
     allow each call), with TLS handshakes between `openssl s_server` holding mongod's
     certificate and `openssl s_client` presenting a client's (accepted; refused without one,
     with another CA's, or checking another name); the MongoDB pod's X.509 user script with
     Node.js against a stand-in of mongod's user commands; files/kiali_edges.py against a graph
     in Kiali 2.29.0's response shape (testdata/kiali-graph-pipeline.json) with and without an
     edge; the schema registration program against a stand-in of the registry's
     Confluent-compatible API (503 while starting, content ids, 409 for an incompatible
     version under a model of Apicurio 3.3.3's JSON Schema rules): it sets BACKWARD, registers
     v1, has v2 judged compatible and v3 refused, idempotently, and fails against a registry
     that enforces nothing, judges v2 incompatible, refuses its writes (403) or never answers;
     then, where scripts/setup.sh installed it (and a Java 21+ is here), against Apicurio
     Registry 3.3.3 itself on an H2 file, rerun and restarted (the id kept), and with v1 an open
     content model (refused as the model says); with --prometheus, this machine's Prometheus
     scrapes a sidecar-shaped exposition.
  5. shellcheck on every scripts/*.sh; the kind scripts' --dry-run prints the commands and runs
     none (docker, kind, kubectl, helm, ... are replaced by stubs that record any call); their
     order, prerequisites and waits are read from what they print.
  6. Self-checks: deliberately wrong objects must be rejected, and each finding of issue 16 put
     back into the bundle or the scripts must be rejected, as must each way an application
     could come to hold a Kafka credential or a sidecar lack one (issue 14, both installs), and
     each way an application could come to hold a MongoDB credential, mongod accept a client
     without TLS, certificate or user, or a sidecar present no or another workload's certificate
     (issue 15), and each way the schema registry could admit the wrong identity, lose its
     schemas, or its users and registration Job be pointed wrong, a registration program that
     checks nothing or skips a step, schemas Apicurio would refuse, a chart copy of a schema or
     the plain policy differing from their source (issue 17), each way one trace across the
     Kafka hops could break (issue 18: provider, sampling, Jaeger addon, the Bridge's tracing),
     each way two WasmPlugins of the module could give their shared VM different environments
     (issue 24: the MongoDB plugin without vmConfig or with another env list, in the chart's
     render and in istio/), each way the mirror's transactions could be refused (its
     transactionalId ACL removed, on another prefix, literal, Describe or Write only, denied,
     its group ACL removed), two instances share a transactional id (a fixed one by env or
     argument, with 1 or 2 replicas, POD_NAME from another field, defined after its use or
     escaped, from a ConfigMap, a fixed hostname) or a reader of its topics see aborted records
     (Connect's isolation removed or read_uncommitted, a connector's override, refused under
     policy None, a KafkaBridge allowed to read them), in the kind installs and strimzi/ alone,
     each way the mirror's probes could miss a stuck mirror or restart a waiting one (a probe
     removed, on another file, not `health` of the image's binary; the env or argument naming
     another file; liveness --max-age not above readiness; readiness --max-age one touch; the
     file on a read-only root, a read-only or non-emptyDir volume, below the mount point; a
     health probe on `kiosk mongo-sink`), or the validator proves nothing.
Exit status 0 when everything holds, 1 otherwise; every error names the file, object and path.

usage: .venv/bin/python scripts/validate-k8s.py [--k8s-version 1.34] [--prometheus] [-v]
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
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
# TLS client identity, the non-default alternative (docs/kafka-credentials.md): what
# scripts/kind-up.sh --kafka-auth tls applies, and the charts' values for it (ci/).
TLS_CLIENT_IDENTITY_DIR = "istio/kafka-tls-client-identity"
TLS_CLIENT_IDENTITY_VALUES = {"test-kafka-istio-mongo": "tls-client-identity-values.yaml", "kiosk-filter": "kafka-auth-none-values.yaml"}
STUBBED_TOOLS = ["docker", "kind", "kubectl", "helm", "cargo", "rustc", "curl", "python3", "istioctl", "wasm-opt", "base64"]
# Each chart's rendered NOTES.txt (default values).
NOTES: dict[str, str] = {}


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


# A structural schema's logical junctors: their `properties` only validate values of fields the
# structural part declares (Kubernetes "Specifying a structural schema"); what is unknown is
# decided by the structural part alone. Strimzi's env items, for one, say `oneOf` [{value}, {valueFrom}].
JUNCTORS = ("allOf", "anyOf", "oneOf", "not")


def close_schema(schema, path="", closing=True):
    """A copy of a CRD schema with object schemas closed and `nullable` honoured (schemas under
    a logical junctor are left open)."""
    if isinstance(schema, list):
        return [close_schema(s, path, closing) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: close_schema(v, path, closing and k not in JUNCTORS) for k, v in schema.items() if k not in ("properties",)}
    if "properties" in schema:
        out["properties"] = {k: close_schema(v, f"{path}.{k}", closing) for k, v in schema["properties"].items()}
        if closing and not schema.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in schema:
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
        if template.endswith("NOTES.txt") and not values_file:
            NOTES[chart] = text
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


FILTER_CONTRACT = ROOT / "filter/contract"  # generated from the filter's code (filter/tests/contract.rs)


def filter_metrics() -> dict:
    """The labels and metrics the filter emits (filter/contract/metrics.json)."""
    return json.loads((FILTER_CONTRACT / "metrics.json").read_text())


def filter_labels() -> list[str]:
    return filter_metrics()["labels"]


def filter_config_fields() -> dict[str, set[str]]:
    """The pluginConfig fields the filter accepts (filter/contract/plugin-config.schema.json)."""
    schema = json.loads((FILTER_CONTRACT / "plugin-config.schema.json").read_text())
    props = schema["properties"]
    auth = props.get("kafka_auth") or {}
    auth_props = auth.get("properties") or {}
    return {"Config": set(props), "Kiali": set(props["kiali"]["properties"]), "KafkaAuth": set(auth_props),
            "KafkaAuthMechanisms": set((auth_props.get("mechanism") or {}).get("enum") or []),
            "KafkaAuthDefaults": {k: v.get("default") for k, v in auth_props.items() if "default" in v}}


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


PROXY = "istio-proxy"  # the sidecar's container name (istio/istio pkg/kube/inject, ProxyContainerName)


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


# ---------------------------------------------------------------------------------------
# Exactly once (docs/exactly-once.md): the mirror writes each batch, its dead letters and its
# consumed offsets in one Kafka transaction under a transactional id of its instance; whoever
# reads what it writes reads only committed records.

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
# Kubernetes' $(VAR) expansion of env values and args (k8s.io/kubernetes
# third_party/forked/golang/expansion): $$ is one $, $(NAME) a defined variable's value, an
# undefined one stays as written.
VAR_REF = re.compile(r"\$\$|\$\(([^)]*)\)")

# A value known offline as parts: ("text", s), ("pod", why) for the pod's name, ("unknown", why).
Parts = list[tuple[str, str]]


def merge_parts(parts: Parts) -> Parts:
    out: Parts = []
    for kind, s in parts:
        if kind == "text" and not s:
            continue
        if kind == "text" and out and out[-1][0] == "text":
            out[-1] = ("text", out[-1][1] + s)
        else:
            out.append((kind, s))
    return out


def expand_refs(text: str, env: dict[str, Parts]) -> Parts:
    parts: Parts = []
    pos = 0
    for m in VAR_REF.finditer(text):
        parts.append(("text", text[pos:m.start()]))
        if m.group(0) == "$$":
            parts.append(("text", "$"))
        elif m.group(1) in env:
            parts.extend(env[m.group(1)])
        else:
            parts.append(("text", m.group(0)))
        pos = m.end()
    parts.append(("text", text[pos:]))
    return merge_parts(parts)


def parts_text(parts: Parts) -> str:
    return "".join(s if kind == "text" else f"<{s}>" for kind, s in parts) or "''"


def fixed_prefix(parts: Parts) -> tuple[str, bool]:
    """The text every value of `parts` starts with, and whether that is the whole value."""
    prefix = ""
    for kind, s in parts:
        if kind != "text":
            return prefix, False
        prefix += s
    return prefix, True


def object_data(objects: list[dict], kind: str, ns: str, name: str | None) -> dict[str, str] | None:
    import base64

    for o in objects:
        if o.get("kind") == kind and o["metadata"].get("namespace") == ns and o["metadata"]["name"] == name:
            data = {k: str(v) for k, v in (o.get("stringData") or {}).items()}
            for k, v in (o.get("data") or {}).items():
                data.setdefault(k, base64.b64decode(v).decode("utf-8", "replace") if kind == "Secret" else str(v))
            return data
    return None


def container_env(objects: list[dict], ns: str, c: dict) -> dict[str, Parts]:
    """The variables the container's process gets from its pod spec, as parts: envFrom, then
    env in order, each env value expanded against the variables defined before it."""
    env: dict[str, Parts] = {}
    for src in c.get("envFrom") or []:
        kind, ref = ("ConfigMap", src["configMapRef"]) if "configMapRef" in src else ("Secret", src.get("secretRef") or {})
        for k, v in (object_data(objects, kind, ns, ref.get("name")) or {}).items():
            env[(src.get("prefix") or "") + k] = [("text", v)]
    for e in c.get("env") or []:
        vf = e.get("valueFrom") or {}
        if "value" in e or not vf:
            env[e["name"]] = expand_refs(str(e.get("value", "")), env)
        elif "fieldRef" in vf:
            path = vf["fieldRef"].get("fieldPath")
            env[e["name"]] = [("pod", "the pod's name")] if path == "metadata.name" else [("unknown", f"fieldRef {path}")]
        elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
            kind, ref = ("ConfigMap", vf["configMapKeyRef"]) if "configMapKeyRef" in vf else ("Secret", vf["secretKeyRef"])
            v = (object_data(objects, kind, ns, ref.get("name")) or {}).get(ref.get("key"))
            env[e["name"]] = [("text", v)] if v is not None else [("unknown", f"{kind} {ref.get('name')} key {ref.get('key')}")]
        else:
            env[e["name"]] = [("unknown", f"valueFrom {sorted(vf)}")]
    return env


class Mirror:
    """A mirror instance's Kafka identity and transactions: its KafkaUser, group, the topics it
    writes in transactions, and its transactional id (parts) with where it comes from."""

    def __init__(self, who, user, group, outputs, tid, tid_from, replicas):
        self.who, self.user, self.group, self.outputs = who, user, group, outputs
        self.tid, self.tid_from, self.replicas = tid, tid_from, replicas


def workload_replicas(obj: dict) -> int:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Job":
        return int(spec.get("parallelism", 1))
    return int(spec.get("replicas", 1)) if obj.get("kind") in ("Deployment", "StatefulSet", "ReplicaSet") else 1


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


# ---------------------------------------------------------------------------------------
# Readiness by progress (docs/exactly-once.md, "Probes"; services/src/health.rs): a service that
# reports its progress touches a health file while it makes progress, and its probes run
# `kiosk-services health --file F --max-age S` on that file.

HEALTH_RS = ROOT / "services/src/health.rs"
SERVICES_LIB_RS = ROOT / "services/src/lib.rs"
KIOSK_DOCKERFILE = ROOT / "docker/kiosk.Dockerfile"
HEALTH_FILE_ARG = "--health-file"
HEALTH_FILE_ENV = "KIOSK_HEALTH_FILE"
# Directories of debian:bookworm-slim (the image's runtime stage) every user may write: a health
# file on the root filesystem must be in one (the program creates no directory).
ROOT_FS_WRITABLE_DIRS = {"/tmp", "/var/tmp"}


def kiosk_entrypoint() -> str | None:
    """The binary the kiosk image runs (docker/kiosk.Dockerfile's exec-form ENTRYPOINT); exec
    probes do not go through the ENTRYPOINT, so they must name it themselves."""
    found = re.findall(r"^ENTRYPOINT\s+(\[.*\])\s*$", KIOSK_DOCKERFILE.read_text(), re.M)
    try:
        entry = json.loads(found[-1]) if found else []
    except json.JSONDecodeError:
        return None
    return entry[0] if entry else None


def kiosk_subcommands() -> dict[str, str]:
    """`kiosk-services` subcommand -> its module (services/src/lib.rs Command: clap names a
    variant in kebab case, MongoSink(sink::Args) is `mongo-sink` in sink.rs)."""
    m = re.search(r"pub enum Command \{(.*?)\n\}", SERVICES_LIB_RS.read_text(), re.S)
    return {re.sub(r"(?<!^)([A-Z])", r"-\1", variant).lower(): module
            for variant, module in re.findall(r"^\s*(\w+)\((\w+)::Args\)", m.group(1) if m else "", re.M)}


def health_writers() -> set[str]:
    """The subcommands whose program touches a health file (calls .touch_while_healthy())."""
    return {cmd for cmd, module in kiosk_subcommands().items()
            if (ROOT / f"services/src/{module}.rs").exists() and re.search(r"\.touch_while_healthy\(", (ROOT / f"services/src/{module}.rs").read_text())}


def health_model() -> tuple[int | None, int | None]:
    """(how often a healthy service touches its file, `health`'s default --max-age), seconds,
    from services/src/health.rs."""
    text = HEALTH_RS.read_text()
    every = re.search(r"pub const TOUCH_EVERY: Duration = Duration::from_secs\((\d+)\)", text)
    default = re.search(r"#\[arg\([^\]]*default_value_t\s*=\s*(\d+)[^\]]*\)\]\s*pub\s+max_age\s*:", text)
    return (int(every.group(1)) if every else None), (int(default.group(1)) if default else None)


def health_probe(probe: dict | None, entrypoint: str | None, default_age: int | None) -> tuple[str | None, int | None, str]:
    """(the file, --max-age) a probe's `kiosk-services health` reads, or why it is not that.
    The kubelet expands no $(VAR) in a probe's command: it is taken as written."""
    if not probe:
        return None, None, "no such probe"
    if "exec" not in probe:
        return None, None, f"a {'/'.join(k for k in probe if k in ('httpGet', 'tcpSocket', 'grpc')) or 'non-exec'} probe, which says nothing of progress"
    cmd = [str(a) for a in (probe["exec"] or {}).get("command") or []]
    if not cmd or entrypoint is None or cmd[0] not in (entrypoint, posixpath.basename(entrypoint)):
        return None, None, f"it runs {cmd[:1] or 'nothing'}, not the image's binary {entrypoint} (docker/kiosk.Dockerfile ENTRYPOINT)"
    if cmd[1:2] != ["health"]:
        return None, None, f"it runs {' '.join(cmd[:2])}, not `health`"
    file = arg_value(cmd[2:], "--file")
    if file is None:
        return None, None, "no --file"
    age = arg_value(cmd[2:], "--max-age")
    try:
        return file, int(age) if age is not None else default_age, ""
    except ValueError:
        return file, None, f"--max-age {age!r} is not a number of seconds"


def check_health_probes(report: Report, label: str, objects: list[dict]) -> None:
    """Every container of a program that touches a health file (`kiosk-services mirror`) names
    its file, which is on a writable directory, and has a readiness probe running `health` on that
    same file with a --max-age spanning two touches and a liveness probe on it with a greater
    --max-age (a startup probe, if any, on it too), in a pod that restarts it; no other kiosk
    program gets a probe on a health file it never writes."""
    writers, entrypoint = health_writers(), kiosk_entrypoint()
    every, default_age = health_model()
    for obj in objects:
        ns = obj["metadata"].get("namespace")
        for _labels, podspec in pod_templates(obj):
            volumes = {v.get("name"): v for v in podspec.get("volumes") or []}
            for c in containers(podspec):
                program = kiosk_program(c)
                if program is None:
                    continue
                who = f"{label}: {obj.get('_source')}: {ident(obj)}/{c.get('name')} (`kiosk-services {program}`)"
                probes = {k: c.get(k) for k in ("startupProbe", "readinessProbe", "livenessProbe")}
                if program not in writers:
                    on_file = [k for k, p in probes.items() if health_probe(p, entrypoint, default_age)[0] is not None]
                    report.check(not on_file, f"{who}: no probe reads a health file it never writes", f"its {', '.join(on_file)} runs `health`, and "
                                 f"`kiosk-services {program}` touches no health file: the probe fails for ever")
                    continue
                args = [str(a) for a in c.get("args") or []]
                env = container_env(objects, ns, c)
                arg = arg_value(args, HEALTH_FILE_ARG)
                if arg is not None:  # clap: the argument wins over the env; the kubelet expands args with the container's env
                    parts, where = expand_refs(arg, env), f"argument {HEALTH_FILE_ARG} {arg}"
                else:
                    parts, where = env.get(HEALTH_FILE_ENV), f"env {HEALTH_FILE_ENV}"
                known = parts is not None and all(kind == "text" for kind, _ in parts)
                if not report.check(known, f"{who}: names its health file ({HEALTH_FILE_ARG} or env {HEALTH_FILE_ENV})",
                                    f"{where}: {parts_text(parts)} is not known offline" if parts is not None else
                                    "neither: it touches no file, and every probe on one fails"):
                    continue
                file = posixpath.normpath(posixpath.join(c.get("workingDir") or "/", "".join(t for _, t in parts)))
                ages: dict[str, int | None] = {}
                for key, name in (("readinessProbe", "readiness"), ("livenessProbe", "liveness"), ("startupProbe", "startup")):
                    if key == "startupProbe" and not probes[key]:
                        continue  # optional: then readiness and liveness run from the start
                    pfile, age, why = health_probe(probes[key], entrypoint, default_age)
                    same = pfile is not None and posixpath.normpath(posixpath.join(c.get("workingDir") or "/", pfile)) == file
                    if report.check(same and age is not None, f"{who}: its {name} probe runs `{entrypoint} health` on its health file {file} ({where})",
                                    why or (f"--max-age {age}" if pfile is not None and same else f"it reads {pfile}, another file")):
                        ages[name] = age
                r, l = ages.get("readiness"), ages.get("liveness")
                if r is not None and every is not None:
                    report.check(r >= 2 * every, f"{who}: its readiness --max-age ({r} s) spans at least two touches (every {every} s, services/src/health.rs)",
                                 "a single late touch would make it not ready")
                if r is not None and l is not None:
                    report.check(l > r, f"{who}: its liveness --max-age ({l} s) exceeds its readiness --max-age ({r} s)",
                                 "the kubelet would restart it before, or as soon as, it is not ready: a mirror waiting out a broker restart would be killed instead of left to retry")
                # The program creates no directory: the file's directory must exist and be writable.
                d = posixpath.dirname(file)
                mounts = [m for m in c.get("volumeMounts") or [] if d == posixpath.normpath(m.get("mountPath", "")) or
                          d.startswith(posixpath.normpath(m.get("mountPath", "")).rstrip("/") + "/")]
                mount = max(mounts, key=lambda m: len(posixpath.normpath(m.get("mountPath", ""))), default=None)
                what = f"{who}: its health file's directory {d} is writable"
                if mount is not None:
                    vol = volumes.get(mount.get("name")) or {}
                    report.check("emptyDir" in vol and not mount.get("readOnly") and d == posixpath.normpath(mount["mountPath"]),
                                 f"{what} (the mount point of an emptyDir)",
                                 f"volume {mount.get('name')!r} at {mount.get('mountPath')}: " + (
                                     "mounted readOnly" if mount.get("readOnly") else
                                     f"a {next((k for k in vol if k != 'name'), 'missing volume')}, not an emptyDir" if "emptyDir" not in vol else
                                     f"{d} is below its mount point, and nothing creates it"))
                else:
                    read_only = bool((c.get("securityContext") or {}).get("readOnlyRootFilesystem"))
                    report.check(not read_only and d in ROOT_FS_WRITABLE_DIRS, f"{what} (the root filesystem)",
                                 "no volume is mounted there and the root filesystem is read-only (readOnlyRootFilesystem): mount an emptyDir" if read_only else
                                 f"no volume is mounted there, and the image lets every user write only {', '.join(sorted(ROOT_FS_WRITABLE_DIRS))}")
                report.check(podspec.get("restartPolicy", "Always") == "Always", f"{who}: its pod restarts it when its liveness probe fails (restartPolicy Always)",
                             f"restartPolicy {podspec.get('restartPolicy')}")


def health_code_checks(report: Report) -> None:
    """The validator's model of the health file and its probe is the code's."""
    cmds = kiosk_subcommands()
    report.check(cmds.get("health") == "health", "services/src/lib.rs: `kiosk-services health` is the probe (Command::Health(health::Args))", f"subcommands: {cmds}")
    text = HEALTH_RS.read_text()
    report.check(re.search(r"#\[arg\(long\)\]\s*pub\s+file\s*:\s*PathBuf", text) is not None and re.search(r"#\[arg\(long[^\]]*\)\]\s*pub\s+max_age\s*:\s*u64", text) is not None,
                 "services/src/health.rs: `health` takes --file and --max-age (seconds)")
    every, default_age = health_model()
    report.check(every is not None and default_age is not None, f"services/src/health.rs: a healthy service touches its file every {every} s; `health` --max-age defaults to {default_age} s")
    report.check(re.search(r'#\[arg\(long,\s*env\s*=\s*"' + HEALTH_FILE_ENV + r'"\)\]\s*pub\s+health_file\s*:', MIRROR_RS.read_text()) is not None,
                 f"services/src/mirror.rs: `kiosk-services mirror` touches the file named by {HEALTH_FILE_ARG} or env {HEALTH_FILE_ENV}")
    writers = health_writers()
    report.check("mirror" in writers, f"services/src: the programs that touch a health file (touch_while_healthy): {', '.join(sorted(writers)) or 'none'}; the mirror is one", "the mirror is not")
    entry = kiosk_entrypoint()
    report.check(entry is not None and re.search(r"^COPY\s.*\s" + re.escape(entry or "-") + r"\s*$", KIOSK_DOCKERFILE.read_text(), re.M) is not None,
                 f"docker/kiosk.Dockerfile: the image's binary is {entry} (ENTRYPOINT, copied there): the probes exec it")


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
    plugins = [o for o in objects if o.get("kind") == "WasmPlugin" and plugin_protocol(o) == "kafka"]
    if not report.check(len(plugins) >= 1, f"{label}: a WasmPlugin for Kafka is present"):
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
        unknown = sorted(set(cfg) - fields["Config"]) + sorted(f"kiali.{k}" for k in set(cfg.get("kiali") or {}) - fields["Kiali"]) \
            + sorted(f"kafka_auth.{k}" for k in set(cfg.get("kafka_auth") or {}) - fields["KafkaAuth"])
        if cfg.get("kafka_auth"):
            mech = cfg["kafka_auth"].get("mechanism")
            report.check(mech in fields["KafkaAuthMechanisms"], f"{who}: kafka_auth.mechanism {mech!r} is one the filter performs",
                         f"it performs {sorted(fields['KafkaAuthMechanisms'])}")
        report.check(not unknown, f"{who}: pluginConfig fields are known to the filter (filter/contract/plugin-config.schema.json)", f"unknown {unknown}")
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
    secrets = {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects if o.get("kind") == "Secret"} | script_secrets \
        | set(client_cert_targets(objects)) | mongodb_secret_names(objects)
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
            report.check((ns, name) in secrets, f"{who}: Secret {name} is in the workload's namespace {ns}", "no such Secret (in the bundle, kept by a sync Deployment, or created by scripts/kind-up.sh)")


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
            if c.get("name") == PROXY and c.get("image") == "auto":
                continue  # Istio's injector puts its proxy image there (pkg/kube/inject/webhook.go, AutoImage)
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


def compare_with_charts(report: Report, plain: list[dict], rendered: list[dict], applied: set[str]) -> None:
    """Each plain manifest reaches the cluster: scripts/kind-up.sh applies it, or it is what a
    chart renders (and then equal to it)."""
    by_key = {(o["kind"], o["metadata"]["name"]): o for o in rendered}
    for o in plain:
        src = o["_source"]
        key = (o["kind"], o["metadata"]["name"])
        twin = by_key.get(key)
        if src in applied:
            report.ok(f"{src}: {ident(o)} is applied by scripts/kind-up.sh")
            continue
        if not report.check(twin is not None, f"{src}: {ident(o)} is applied by scripts/kind-up.sh or rendered by a chart with default values",
                            "neither: a kind run would never create it"):
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
# Pods as Strimzi and Istio will make them (read from Strimzi 1.2.0 and Istio 1.30.3 sources)

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


def injected_namespaces() -> set[str]:
    text = (ROOT / "scripts/kind-up.sh").read_text()
    return set(re.findall(r"kubectl label namespace (\S+) istio-injection=enabled", text))


def selector_matches(sel: dict | None, labels: dict) -> bool:
    """A Kubernetes LabelSelector; an empty one matches everything."""
    sel = sel or {}
    if any(labels.get(k) != v for k, v in (sel.get("matchLabels") or {}).items()):
        return False
    for e in sel.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


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


def mtls_mode(objects: list[dict], pod: Pod, port: int, root: str = "istio-system") -> str:
    """The mTLS mode Istio applies to inbound `port` of `pod`: a workload policy (its port-level
    setting first), else the namespace's, else the mesh's; UNSET inherits; PERMISSIVE by default."""
    pas = [o for o in objects if o.get("kind") == "PeerAuthentication"]
    groups = [
        [p for p in pas if p["metadata"].get("namespace") == pod.namespace and (p["spec"] or {}).get("selector")
         and selector_matches(p["spec"]["selector"], pod.labels)],
        [p for p in pas if p["metadata"].get("namespace") == pod.namespace and not (p["spec"] or {}).get("selector")],
        [p for p in pas if p["metadata"].get("namespace") == root and not (p["spec"] or {}).get("selector")],
    ]
    for group in groups:
        for p in group:
            spec = p["spec"] or {}
            levels = spec.get("portLevelMtls") or {}
            level = levels.get(port) or levels.get(str(port)) or {}
            if level.get("mode") not in (None, "UNSET"):
                return level["mode"]
            if (spec.get("mtls") or {}).get("mode") not in (None, "UNSET"):
                return spec["mtls"]["mode"]
    return "PERMISSIVE"


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


def rbac_allows(objects: list[dict], sa: tuple[str, str], ns: str, verb: str, resource: str, name: str | None) -> bool:
    """Whether a Role bound in `ns` to service account `sa` allows `verb` on `resource` `name`."""
    roles = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects if o.get("kind") == "Role"}
    for b in objects:
        if b.get("kind") != "RoleBinding" or b["metadata"].get("namespace") != ns:
            continue
        if not any(s.get("kind") == "ServiceAccount" and (s.get("namespace"), s.get("name")) == sa for s in b.get("subjects") or []):
            continue
        role = roles.get((ns, b["roleRef"]["name"])) if b["roleRef"].get("kind") == "Role" else None
        for r in (role or {}).get("rules") or []:
            if resource in r.get("resources", []) and "" in r.get("apiGroups", []) and (verb in r.get("verbs", []) or "*" in r.get("verbs", [])):
                if not r.get("resourceNames") or name in r["resourceNames"]:
                    return True
    return False


def client_service_account(cl: Client) -> tuple[str, str]:
    """The service account of a Kafka client's pods: the pod spec's, or the one Strimzi makes
    (`<name>-bridge`, `<name>-connect`)."""
    if cl.podspec is not None:
        return cl.namespace, cl.podspec.get("serviceAccountName") or "default"
    suffix = {"KafkaBridge": "bridge", "KafkaConnect": "connect"}[cl.obj["kind"]]
    return cl.namespace, f"{cl.obj['metadata']['name']}-{suffix}"


def token_mounted(cl: Client, objects: list[dict]) -> bool:
    """Whether the Kafka client's application gets its service account's API token."""
    if cl.podspec is None:
        return True  # Strimzi mounts it (VolumeUtils.createServiceAccountVolume, KafkaBridgeCluster, KafkaConnectCluster)
    if cl.podspec.get("automountServiceAccountToken") is not None:
        return bool(cl.podspec["automountServiceAccountToken"])
    ns, name = client_service_account(cl)
    sa = next((o for o in objects if o.get("kind") == "ServiceAccount" and (o["metadata"].get("namespace"), o["metadata"]["name"]) == (ns, name)), {})
    return sa.get("automountServiceAccountToken") is not False


def tls_origination(objects: list[dict]):
    """(DestinationRule, port, tls settings) of every port-level TLS origination."""
    for dr in (o for o in objects if o.get("kind") == "DestinationRule"):
        for pls in (dr["spec"].get("trafficPolicy") or {}).get("portLevelSettings") or []:
            tls = pls.get("tls") or {}
            if tls.get("mode") in ("SIMPLE", "MUTUAL"):
                yield dr, (pls.get("port") or {}).get("number"), tls


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
            csa = client_service_account(cl)
            report.check(csa[1] != "default" and rbac_allows(objects, csa, ns, "list", "secrets", None),
                         f"{cwho}: istiod serves the key to its sidecar (service account {csa[0]}/{csa[1]} may list secrets, and is its own)",
                         "istiod asks a SubjectAccessReview for list secrets (pilot/pkg/credentials/kube/secrets.go) and serves nothing otherwise; the default account would extend it to every pod")
            if cl.podspec is not None:
                report.check(not token_mounted(cl, objects), f"{cwho}: its application gets no API token (the list-secrets grant is the sidecar's only)",
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


# ---------------------------------------------------------------------------------------
# Kafka credentials: the mesh supplies them, applications hold none (issue 14)

ISTIOD_VALUES = ROOT / "istio/helm/istiod-values.yaml"
INJECT_TEMPLATES = "inject.istio.io/templates"  # Istio's annotation naming the injection templates to run
NATIVE_SIDECAR = "sidecar.istio.io/nativeSidecar"
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


def injection_templates() -> dict[str, str]:
    """The custom sidecar injection templates istiod is installed with (istio/helm/istiod-values.yaml)."""
    values = yaml.safe_load(ISTIOD_VALUES.read_text()) or {}
    return ((values.get("sidecarInjectorWebhook") or {}).get("templates")) or {}


def render_injection_template(text: str, labels: dict, annotations: dict, native: bool) -> dict:
    """An Istio injection template rendered for a pod, as the injector runs it (Go text/template
    with sprig; pkg/kube/inject/inject.go RunTemplate): through Helm's engine, the pod's
    metadata and the native-sidecar setting bound to `.` as Istio binds them."""
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp) / "inject"
        (chart / "templates").mkdir(parents=True)
        (chart / "Chart.yaml").write_text("apiVersion: v2\nname: inject\nversion: 0.0.0\n")
        (chart / "templates" / "pod.yaml").write_text("{{- with .Values.pod }}\n" + text + "\n{{- end }}\n")
        with helm.Chart.load(chart) as c:
            out = c.render({"pod": {"ObjectMeta": {"Labels": dict(labels), "Annotations": dict(annotations)}, "NativeSidecars": native}},
                           name="inject", namespace=NAMESPACE, is_install=True)
    return yaml.safe_load(out.get("inject/templates/pod.yaml") or "") or {}


def injected_proxy_env(labels: dict, annotations: dict) -> tuple[dict[str, dict] | None, str]:
    """The environment the injection templates a pod names (annotation inject.istio.io/templates,
    run in order) give its istio-proxy container beyond Istio's own `sidecar` template, checked
    for both sidecar modes: the proxy is a container, or with native sidecars an init container
    (Istio's sidecar template decides by the pod's sidecar.istio.io/nativeSidecar, else the
    injector's setting). (None, why) when the templates cannot give it."""
    names = [n.strip() for n in annotations.get(INJECT_TEMPLATES, "sidecar").split(",") if n.strip()]
    if names[:1] != ["sidecar"]:
        return None, f"{INJECT_TEMPLATES} must start with Istio's `sidecar` template: {names}"
    templates = injection_templates()
    env: dict[str, dict] = {}
    for name in names[1:]:
        if name not in templates:
            return None, f"no injection template {name!r} in {ISTIOD_VALUES.relative_to(ROOT)} (sidecarInjectorWebhook.templates)"
        for native in (False, True):
            on = annotations.get(NATIVE_SIDECAR)
            if on in ("true", "false") and (on == "true") != native:
                continue  # the pod fixes the mode
            try:
                overlay = render_injection_template(templates[name], labels, annotations, native)
            except helm.HelmError as e:
                return None, f"injection template {name!r} does not render: {e}"
            spec = overlay.get("spec") or {}
            where, other = ("initContainers", "containers") if native else ("containers", "initContainers")
            if any(c.get("name") == PROXY for c in spec.get(other) or []):
                return None, f"injection template {name!r} puts {PROXY} under {other} with native sidecars {'on' if native else 'off'}: Istio would add a second proxy container"
            for c in spec.get(where) or []:
                if c.get("name") == PROXY:
                    env.update({e.get("name"): e for e in c.get("env") or []})
    return env, f"injection templates {names}"


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


def plugin_selects(plugin: dict, namespace: str | None, labels: dict) -> bool:
    sel = ((plugin["spec"].get("selector") or {}).get("matchLabels")) or {}
    ns = plugin["metadata"].get("namespace")
    return all(labels.get(k) == v for k, v in sel.items()) and (ns == "istio-system" or ns == namespace)


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


# ---------------------------------------------------------------------------------------
# MongoDB credentials: the mesh supplies TLS and the X.509 identity, applications hold none (issue 15)

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


def plugin_protocol(plugin: dict) -> str:
    """The protocol a WasmPlugin's filter reads (pluginConfig.protocol, `kafka` when unset)."""
    return ((plugin.get("spec") or {}).get("pluginConfig") or {}).get("protocol") or "kafka"


def contract_schema() -> dict:
    return json.loads((FILTER_CONTRACT / "plugin-config.schema.json").read_text())


def contract_knows_protocols() -> bool:
    """Whether the filter's contract already has the MongoDB fields (`protocol`, `mongodb_auth`)."""
    props = contract_schema().get("properties") or {}
    return "protocol" in props and "mongodb_auth" in props


def secret_value(objects: list[dict], ns: str, name: str, key: str) -> str | None:
    """A key of a Secret of the bundle (stringData or data), or None."""
    import base64

    for o in objects:
        if o.get("kind") == "Secret" and o["metadata"].get("namespace") == ns and o["metadata"]["name"] == name:
            if key in (o.get("stringData") or {}):
                return str(o["stringData"][key])
            if key in (o.get("data") or {}):
                return base64.b64decode(o["data"][key]).decode("utf-8", "replace")
    return None


def env_value(objects: list[dict], ns: str, e: dict) -> tuple[str | None, str]:
    """An env entry's value, resolved from the bundle's Secrets, and where it comes from."""
    if "value" in e:
        return str(e["value"]), "its value"
    ref = ((e.get("valueFrom") or {}).get("secretKeyRef")) or {}
    if ref:
        return secret_value(objects, ns, ref.get("name"), ref.get("key")), f"Secret {ref.get('name')} key {ref.get('key')}"
    return None, "not a value"


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
    hold of a MongoDB credential: an env var named like a password or a MongoDB secret, a
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
            if MONGODB_SECRET_ENV.search(name):
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
        has_token = token_mounted(Client(cl.name, cl.namespace, cl.labels, None, cl.source, cl.obj, cl.podspec), objects)
        paths = [tls.get(k) for k in ("clientCertificate", "privateKey", "caCertificates")]
        if tls.get("credentialName"):
            report.check(tls["credentialName"] == secret[1], f"{rwho}: credentialName is its own certificate's Secret {secret[1]}",
                         f"it is {tls['credentialName']}: the workload would present another's identity")
            report.check(not has_token, f"{rwho}: its application gets no API token, so the `list secrets` istiod requires is its sidecar's only",
                         "the application could read every Secret of the namespace: give its sidecar the certificate as files instead")
            sa = client_service_account(Client(cl.name, cl.namespace, cl.labels, None, cl.source, cl.obj, cl.podspec))
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


# The istio/gateway chart's pods as scripts/kind-up.sh installs it (release istio-ingressgateway
# in istio-ingress; labels app and istio from the chart's _helpers.tpl).
INGRESS_PODS = ("istio-ingress", {"app": "istio-ingressgateway", "istio": "ingressgateway"})


def secret_file(podspec: dict, container: dict, path: str) -> tuple[str, str] | None:
    """The (Secret, key) a file path of a container is mounted from, if any."""
    for m in container.get("volumeMounts") or []:
        mount = m["mountPath"].rstrip("/")
        if not path.startswith(mount + "/"):
            continue
        rel = path[len(mount) + 1:]
        vol = next((v for v in podspec.get("volumes") or [] if v["name"] == m["name"]), {})
        secret = vol.get("secret") or {}
        for item in secret.get("items") or []:
            if item["path"] == rel:
                return secret.get("secretName"), item["key"]
        if secret and not secret.get("items"):
            return secret.get("secretName"), rel
    return None


def check_ingress_jwt(report: Report, label: str, objects: list[dict]) -> None:
    """The REST entry's ingress requires a JWT (issue 18): every Gateway selects the ingress
    gateway pods; a RequestAuthentication and an ALLOW AuthorizationPolicy of their namespace
    select them; every rule of that policy requires a request principal; where the token issuer
    is deployed, the RequestAuthentication's issuer, audience and jwksUri are the issuer's (its
    arguments, its Service), the issuer runs without a sidecar (istiod fetches the JWKS in plain
    HTTP, which a STRICT sidecar would refuse), and the producer asks it for tokens with a client
    id and secret the issuer knows (the same Secret key)."""
    gateways = [o for o in objects if o.get("kind") == "Gateway"]
    if not gateways:
        return
    ns, labels = INGRESS_PODS
    for g in gateways:
        report.check(selector_matches({"matchLabels": g["spec"].get("selector") or {}}, labels),
                     f"{label}: {ident(g)} selects the ingress gateway pods ({ns}, {labels})")

    def selects(o):
        return o["metadata"].get("namespace") == ns and selector_matches(o["spec"].get("selector"), labels)

    ras = [o for o in objects if o.get("kind") == "RequestAuthentication" and selects(o)]
    aps = [o for o in objects if o.get("kind") == "AuthorizationPolicy" and selects(o) and o["spec"].get("action", "ALLOW") == "ALLOW"]
    report.check(bool(ras), f"{label}: a RequestAuthentication of {ns} selects the ingress gateway pods", "tokens would not be validated")
    report.check(bool(aps), f"{label}: an ALLOW AuthorizationPolicy of {ns} selects the ingress gateway pods", "a request without a token would pass")
    for ap in aps:
        rules = ap["spec"].get("rules") or []
        ok = bool(rules) and all(r.get("from") and all((f.get("source") or {}).get("requestPrincipals") for f in r["from"]) for r in rules)
        report.check(ok, f"{label}: {ident(ap)}: every rule requires a request principal (from[].source.requestPrincipals)",
                     "a rule without one lets a request without a token through")
    issuers = {}
    for o in objects:
        if o.get("kind") != "Deployment":
            continue
        podspec = o["spec"]["template"]["spec"]
        for c in containers(podspec):
            args = [str(a) for a in c.get("args") or []]
            if args[:1] == ["issuer"]:
                issuers[arg_value(args, "--issuer")] = (o, c, args)
    if not issuers:
        return  # the plain manifests: the chart's rendering is compared with them
    for ra in ras:
        for r in ra["spec"].get("jwtRules") or []:
            iss = r.get("issuer")
            found = issuers.get(iss)
            if not report.check(found is not None, f"{label}: {ident(ra)}: the issuer {iss} is the token issuer's (--issuer of {sorted(map(str, issuers))})",
                                "no token it validates can be had"):
                continue
            dep, _c, args = found
            report.check(arg_value(args, "--audience") in (r.get("audiences") or []),
                         f"{label}: {ident(ra)}: the audiences {r.get('audiences')} hold the issuer's --audience {arg_value(args, '--audience')}")
            report.check(r.get("jwksUri") == iss.rstrip("/") + "/.well-known/jwks.json",
                         f"{label}: {ident(ra)}: jwksUri {r.get('jwksUri')} is the issuer's JWKS ({iss}/.well-known/jwks.json)")
            m = re.match(r"^http://([^./:]+)\.([^./:]+)\.svc(?:\.cluster\.local)?(?::(\d+))?$", iss.rstrip("/"))
            svc = m and next((o for o in objects if o.get("kind") == "Service" and o["metadata"]["name"] == m.group(1)
                              and o["metadata"].get("namespace") == m.group(2)), None)
            pod_labels = dep["spec"]["template"]["metadata"].get("labels") or {}
            port = int(m.group(3) or 80) if m else None
            report.check(bool(svc) and selector_matches({"matchLabels": svc["spec"].get("selector") or {}}, pod_labels)
                         and any(p.get("port") == port for p in svc["spec"].get("ports") or []),
                         f"{label}: {ident(ra)}: the issuer's URL is a Service port selecting {ident(dep)}'s pods")
            report.check(pod_labels.get("sidecar.istio.io/inject") == "false",
                         f"{label}: {ident(dep)} runs without a sidecar (istiod fetches its JWKS in plain HTTP)",
                         "a sidecar under STRICT mTLS would refuse istiod")
    for o in objects:
        if o.get("kind") != "Job":
            continue
        podspec = o["spec"]["template"]["spec"]
        for c in containers(podspec):
            args = [str(a) for a in c.get("args") or []]
            url = arg_value(args, "--token-url")
            if url is None:
                continue
            match = next(((i, v) for i, v in issuers.items() if url == i.rstrip("/") + "/token"), None)
            if not report.check(match is not None, f"{label}: {ident(o)}: --token-url {url} is the token issuer's token endpoint"):
                continue
            dep, ic, iargs = match[1]
            client = arg_value(args, "--client-id") or "producer"
            theirs = secret_file(dep["spec"]["template"]["spec"], ic, (arg_value(iargs, "--clients") or "").rstrip("/") + "/" + client)
            ours = secret_file(podspec, c, arg_value(args, "--client-secret-file") or "")
            report.check(theirs is not None and theirs == ours,
                         f"{label}: {ident(o)}: its client secret ({ours}) is the one the issuer knows for client {client} ({theirs})")


DASHBOARD_FILE = ROOT / "charts/kiosk-filter/dashboards/kiosk-kafka.json"


def check_grafana_dashboard(report: Report, label: str, objects: list[dict]) -> None:
    """The filter's Grafana dashboard reaches Grafana as its Helm chart's sidecar loads
    dashboards: a ConfigMap labelled grafana_dashboard whose data is the dashboard file, every
    panel with a query (its PromQL is checked by promtool in harness/tests/live_dashboard.rs)."""
    maps = [o for o in objects if o.get("kind") == "ConfigMap" and "grafana_dashboard" in (o["metadata"].get("labels") or {})]
    if not any("charts/kiosk-filter" in o.get("_source", "") for o in objects):
        return  # the plain manifests: the chart ships the dashboard
    if not report.check(bool(maps), f"{label}: a ConfigMap labelled grafana_dashboard carries the filter's dashboard"):
        return
    shipped = json.loads(DASHBOARD_FILE.read_text())
    for cm in maps:
        for key, text in (cm.get("data") or {}).items():
            try:
                board = json.loads(text)
            except ValueError as e:
                report.error(f"{label}: {ident(cm)}: {key} is not JSON: {e}")
                continue
            report.check(board == shipped, f"{label}: {ident(cm)}: {key} is {DASHBOARD_FILE.relative_to(ROOT)}")
            panels = [p for p in board.get("panels") or [] if p.get("type") != "row"]
            report.check(bool(panels) and all(t.get("expr") for p in panels for t in p.get("targets") or [None]),
                         f"{label}: {ident(cm)}: {len(panels)} panels, each with a PromQL query")


# ---------------------------------------------------------------------------------------
# One trace across the Kafka hops (issue 18): Istio's tracing provider and the Bridge's tracing

# Jaeger as Istio's samples/addons/jaeger.yaml deploys it, read at each Istio tag whose addon
# scripts/kind-up.sh may apply (istio/istio <tag>:samples/addons/jaeger.yaml): its Services,
# port -> (port name, target port; the file gives no targetPort for 4317 and 4318, so the port
# itself), and the ports of its collector's OTLP receivers (the ConfigMap `jaeger`,
# receivers.otlp.protocols.grpc / http endpoints). The Jaeger pod runs without a sidecar
# (sidecar.istio.io/inject: "false"). Another tag must be read before it is added here.
JAEGER_ADDONS = {
    "1.30.3": {
        "image": "docker.io/jaegertracing/jaeger:2.14.0",
        "services": {
            ("istio-system", "jaeger-collector"): {14268: ("jaeger-collector-http", 14268), 14250: ("jaeger-collector-grpc", 14250),
                                                   9411: ("http-zipkin", 9411), 4317: ("grpc-otel", 4317), 4318: ("http-otel", 4318)},
            ("istio-system", "zipkin"): {9411: ("http-query", 9411)},
            ("istio-system", "tracing"): {80: ("http-query", 16686), 16685: ("grpc-query", 16685)},
        },
        "otlp_grpc": 4317,
        "otlp_http": 4318,
    },
}
JAEGER_ADDON_RE = re.compile(r"kubectl apply -f https://raw\.githubusercontent\.com/istio/istio/([^/\s]+)/samples/addons/jaeger\.yaml")
ROOT_NAMESPACE = "istio-system"  # Istio's root namespace: a Telemetry there without a selector is mesh-wide
# The OpenTelemetry SDK's variables the Bridge's tracer reads (sdk-extensions/autoconfigure).
OTEL_ENV = ("OTEL_SERVICE_NAME", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_PROPAGATORS", "OTEL_SDK_DISABLED")


def kind_up_dry_run(*args: str) -> list[str]:
    """The commands scripts/kind-up.sh --dry-run prints (its tools replaced by stubs that fail)."""
    with tempfile.TemporaryDirectory() as tmp:
        stubs = Path(tmp)
        for tool in STUBBED_TOOLS:
            (stubs / tool).write_text("#!/bin/sh\nexit 97\n")
            (stubs / tool).chmod(0o755)
        env = dict(os.environ, PATH=f"{stubs}:{os.environ.get('PATH', '')}")
        r = subprocess.run(["bash", str(ROOT / "scripts/kind-up.sh"), "--dry-run", *args], capture_output=True, text=True, env=env, timeout=60)
    return [l for l in r.stdout.splitlines() if l.startswith("+ ")]


def kind_up_jaeger_tags(lines: list[str]) -> list[str]:
    """The Istio tags whose samples/addons/jaeger.yaml the printed kind-up.sh commands apply."""
    return [m.group(1) for l in lines for m in [JAEGER_ADDON_RE.search(l)] if m]


def istiod_extension_providers() -> list[dict]:
    values = yaml.safe_load((ROOT / "istio/helm/istiod-values.yaml").read_text()) or {}
    return list((values.get("meshConfig") or {}).get("extensionProviders") or [])


def provider_service(service: str | None) -> tuple[str, str] | None:
    """(namespace, name) of a provider's `[<Namespace>/]<Hostname>` naming a Kubernetes Service."""
    m = re.match(r"^(?:([a-z0-9-]+)/)?([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?$", service or "")
    if not m or (m.group(1) and m.group(1) != m.group(3)):
        return None
    return m.group(3), m.group(2)


def check_tracing(report: Report, label: str, objects: list[dict], providers: list[dict], jaeger_tags: list[str]) -> None:
    """One trace across the Kafka hops (issue 18, docs/tracing.md): a mesh-wide Telemetry samples
    every request and names tracing providers that istiod's meshConfig.extensionProviders
    define; each is `opentelemetry` (Envoy's OpenTelemetry tracer writes W3C traceparent, the
    context the Bridge's OpenTelemetry SDK reads by default) over gRPC to a Service and port
    where Jaeger, as Istio's samples/addons/jaeger.yaml applied by kind-up.sh deploys it (or a
    Service of the bundle), receives OTLP gRPC; every KafkaBridge has tracing.type opentelemetry
    and its container exports OTLP gRPC to that same Service and port."""
    by_name = {p.get("name"): p for p in providers}
    telemetries = [t for t in objects if t.get("kind") == "Telemetry" and (t.get("spec") or {}).get("tracing")]
    mesh_wide = [t for t in telemetries if t["metadata"].get("namespace") == ROOT_NAMESPACE and not t["spec"].get("selector")]
    bridges = [o for o in objects if o.get("kind") == "KafkaBridge"]
    if not telemetries and not bridges:
        return
    if not report.check(bool(mesh_wide), f"{label}: a mesh-wide Telemetry ({ROOT_NAMESPACE}, no selector) configures tracing",
                        "the sidecars would report no spans"):
        return
    # Where Jaeger receives OTLP gRPC: the addon's Services (kind-up.sh applies it), and the bundle's.
    receivers: dict[tuple[str, str], dict[int, tuple[str, int]]] = {}
    report.check(len(jaeger_tags) == 1, f"{label}: scripts/kind-up.sh applies Istio's samples/addons/jaeger.yaml once", f"it applies it for {jaeger_tags}")
    otlp_grpc = None
    for tag in jaeger_tags[:1]:
        addon = JAEGER_ADDONS.get(tag)
        if report.check(addon is not None, f"{label}: the Jaeger addon kind-up.sh applies (Istio {tag}) is one read here (JAEGER_ADDONS)",
                        f"read istio/istio {tag}:samples/addons/jaeger.yaml (its Services, ports and OTLP receivers) and add it"):
            receivers.update(addon["services"])
            otlp_grpc = addon["otlp_grpc"]
    endpoints = set()
    for t in mesh_wide:
        for tr in t["spec"]["tracing"]:
            pct = tr.get("randomSamplingPercentage")
            report.check(pct == 100, f"{label}: {ident(t)}: samples every request (randomSamplingPercentage 100)", f"it is {pct}")
            for ref in tr.get("providers") or []:
                who = f"{label}: {ident(t)}: tracing provider {ref.get('name')!r}"
                p = by_name.get(ref.get("name"))
                if not report.check(p is not None, f"{who} is an extension provider of istio/helm/istiod-values.yaml",
                                    f"meshConfig.extensionProviders has {sorted(map(str, by_name))}"):
                    continue
                otel = p.get("opentelemetry")
                if not report.check(isinstance(otel, dict), f"{who} is opentelemetry (W3C traceparent, OTLP)",
                                    f"it is {sorted(k for k in p if k != 'name')}: its headers are not the ones the Bridge reads"):
                    continue
                report.check(not otel.get("http"), f"{who} exports over gRPC (no `http`)", "OTLP/HTTP is not what its port receives")
                svc, port = provider_service(otel.get("service")), otel.get("port")
                ports = receivers.get(svc) if svc else None
                if svc and ports is None:
                    found = next((o for o in objects if o.get("kind") == "Service" and (o["metadata"].get("namespace"), o["metadata"]["name"]) == svc), None)
                    if found:
                        ports = {q["port"]: (q.get("name", ""), q.get("targetPort", q["port"])) for q in found["spec"].get("ports") or []}
                if not report.check(ports is not None, f"{who}: {otel.get('service')} is a Service Jaeger exposes (Istio's jaeger addon, or the bundle)",
                                    f"Services there: {sorted('.'.join(reversed(k)) for k in receivers)}"):
                    continue
                target = ports.get(port)
                report.check(target is not None and target[1] == otlp_grpc and target[0].split("-")[0] in ("grpc", "http2"),
                             f"{who}: port {port} of {otel.get('service')} is Jaeger's OTLP gRPC receiver ({otlp_grpc}, a gRPC port to Istio)",
                             f"its ports: {ports}")
                endpoints.add(f"http://{otel.get('service')}:{port}")
    for b in bridges:
        who = f"{label}: {ident(b)}"
        spec = b.get("spec") or {}
        report.check((spec.get("tracing") or {}).get("type") == "opentelemetry", f"{who}: tracing.type is opentelemetry",
                     "without it the Bridge neither continues a request's trace nor writes it into the record headers")
        env_list = ((spec.get("template") or {}).get("bridgeContainer") or {}).get("env") or []
        env = {e.get("name"): e for e in env_list}
        by_ref = sorted(n for n in OTEL_ENV if n in env and "value" not in env[n])
        report.check(not by_ref, f"{who}: its OTEL_* variables are plain values (checked here)", f"by reference: {by_ref}")
        val = {n: env[n].get("value") for n in OTEL_ENV if n in env}
        report.check(bool(val.get("OTEL_SERVICE_NAME")), f"{who}: OTEL_SERVICE_NAME names its spans", "the Bridge starts no tracer without it")
        report.check(val.get("OTEL_SDK_DISABLED", "false").lower() != "true", f"{who}: the OpenTelemetry SDK is not disabled")
        report.check(val.get("OTEL_TRACES_EXPORTER", "otlp") == "otlp", f"{who}: OTEL_TRACES_EXPORTER is otlp", f"it is {val.get('OTEL_TRACES_EXPORTER')!r}")
        proto = val.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or val.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"
        report.check(proto == "grpc", f"{who}: exports OTLP over gRPC (the SDK's default)", f"protocol {proto!r}: the provider's port receives gRPC")
        props = [s.strip() for s in (val.get("OTEL_PROPAGATORS") or "tracecontext,baggage").split(",")]
        report.check("tracecontext" in props, f"{who}: propagates W3C tracecontext (what the sidecars write)", f"OTEL_PROPAGATORS {props}")
        endpoint = val.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or val.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        report.check(bool(endpoints) and endpoint in endpoints, f"{who}: its OTLP endpoint {endpoint} is the mesh's tracing provider's service:port",
                     f"the providers' are {sorted(endpoints)}")


def tracing_self_checks(report: Report, bundle: list[dict], plain: list[dict], default_charts: list[dict], applied: set[str],
                        providers: list[dict], jaeger_tags: list[str]) -> None:
    """Each way one trace could break across the hops, put into a copy of the kind install, its
    providers or the Jaeger addon kind-up.sh applies: check_tracing must reject it (and accept
    the install as it is); and the plain KafkaBridge differing from the chart's is rejected."""

    def find(b, kind):
        return next(o for o in b if o.get("kind") == kind)

    def jaeger(ps):
        return next(p for p in ps if p.get("name") == "jaeger")

    def bridge_env(b, name, value):
        c = find(b, "KafkaBridge")["spec"]["template"]["bridgeContainer"]
        c["env"] = [e for e in c["env"] if e["name"] != name] + ([{"name": name, "value": value}] if value is not None else [])

    old_zipkin = {"zipkin": {"service": "zipkin.istio-system.svc.cluster.local", "port": 9411}}
    cases = [
        ("the install as it is", lambda b, ps, tags: None, None),
        ("the Telemetry naming a provider istiod does not define",
         lambda b, ps, tags: find(b, "Telemetry")["spec"]["tracing"][0]["providers"][0].update(name="otel"), "is an extension provider"),
        ("the provider back to Jaeger's Zipkin endpoint (B3 headers)",
         lambda b, ps, tags: [jaeger(ps).pop("opentelemetry"), jaeger(ps).update(old_zipkin)], "is opentelemetry"),
        ("the provider to a collector nothing installs",
         lambda b, ps, tags: jaeger(ps)["opentelemetry"].update(service="opentelemetry-collector.observability.svc.cluster.local"), "is a Service Jaeger exposes"),
        ("the provider to the collector's OTLP/HTTP port",
         lambda b, ps, tags: jaeger(ps)["opentelemetry"].update(port=4318), "OTLP gRPC receiver"),
        ("the provider to the collector's Zipkin port",
         lambda b, ps, tags: jaeger(ps)["opentelemetry"].update(port=9411), "OTLP gRPC receiver"),
        ("the provider over OTLP/HTTP",
         lambda b, ps, tags: jaeger(ps)["opentelemetry"].update(http={"path": "/v1/traces"}), "exports over gRPC"),
        ("1% of requests sampled",
         lambda b, ps, tags: find(b, "Telemetry")["spec"]["tracing"][0].update(randomSamplingPercentage=1), "samples every request"),
        ("no mesh-wide Telemetry (only the pipeline's)",
         lambda b, ps, tags: find(b, "Telemetry")["metadata"].update(namespace="pipeline"), "a mesh-wide Telemetry"),
        ("kind-up.sh applying no Jaeger", lambda b, ps, tags: tags.clear(), "applies Istio's samples/addons/jaeger.yaml once"),
        ("kind-up.sh applying another Istio's Jaeger addon", lambda b, ps, tags: tags.__setitem__(0, "1.31.0"), "is one read here"),
        ("the KafkaBridge without tracing", lambda b, ps, tags: find(b, "KafkaBridge")["spec"].pop("tracing"), "tracing.type is opentelemetry"),
        ("the Bridge's spans to the OTLP/HTTP port",
         lambda b, ps, tags: bridge_env(b, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger-collector.istio-system.svc.cluster.local:4318"), "tracing provider's service:port"),
        ("the Bridge's spans to the Zipkin Service",
         lambda b, ps, tags: bridge_env(b, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://zipkin.istio-system.svc.cluster.local:4317"), "tracing provider's service:port"),
        ("the Bridge without an OTLP endpoint (the SDK's localhost)",
         lambda b, ps, tags: bridge_env(b, "OTEL_EXPORTER_OTLP_ENDPOINT", None), "tracing provider's service:port"),
        ("the Bridge's traces endpoint overriding the right one",
         lambda b, ps, tags: bridge_env(b, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://localhost:4317"), "tracing provider's service:port"),
        ("the Bridge over OTLP/HTTP", lambda b, ps, tags: bridge_env(b, "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"), "exports OTLP over gRPC"),
        ("the Bridge exporting to Zipkin", lambda b, ps, tags: bridge_env(b, "OTEL_TRACES_EXPORTER", "zipkin"), "OTEL_TRACES_EXPORTER is otlp"),
        ("the Bridge without OTEL_SERVICE_NAME", lambda b, ps, tags: bridge_env(b, "OTEL_SERVICE_NAME", None), "OTEL_SERVICE_NAME"),
        ("the Bridge reading B3 only", lambda b, ps, tags: bridge_env(b, "OTEL_PROPAGATORS", "b3multi"), "W3C tracecontext"),
    ]
    for what, doctor, want in cases:
        b, ps, tags = copy.deepcopy(bundle), copy.deepcopy(providers), list(jaeger_tags)
        doctor(b, ps, tags)
        errs = probe(check_tracing, b, ps, tags)
        if want is None:
            report.check(not errs, "self-check: tracing of the kind install passes every check", str(errs[:3]))
        else:
            report.check(any(want in e for e in errs), f"self-check: tracing with {what}: rejected", f"errors: {errs[:3]}")
    doctored = copy.deepcopy(plain)
    twin = next((o for o in doctored if o.get("kind") == "KafkaBridge"), None)
    if report.check(twin is not None, "strimzi/kafka-bridge.yaml holds a KafkaBridge"):
        twin["spec"].pop("tracing", None)
        errs = probe(lambda r, _label: compare_with_charts(r, doctored, default_charts, applied))
        report.check(any("KafkaBridge/pipeline/kiosk .spec equals" in e for e in errs),
                     "self-check: the plain KafkaBridge without the chart's tracing: rejected", str(errs[:2]))


def check_wasm_pull(report: Report, label: str, objects: list[dict]) -> None:
    for p in (o for o in objects if o.get("kind") == "WasmPlugin"):
        url, policy = p["spec"].get("url", ""), p["spec"].get("imagePullPolicy", "UNSPECIFIED_POLICY")
        by_digest = "@sha256:" in url
        report.check(by_digest or policy == "Always", f"{label}: {ident(p)}: {url} is pinned by digest or pulled Always",
                     f"imagePullPolicy {policy} with a tag: each sidecar's agent keeps the module it fetched for that URL (istio/istio pkg/wasm/cache.go)")


# ---------------------------------------------------------------------------------------
# Wasm VMs shared by WasmPlugins of one module (issue 24, docs/wasm-vms.md)


def wasm_module(plugin: dict) -> str:
    """The module a WasmPlugin loads, as Istio reads its url (no scheme: oci://)."""
    url = str((plugin.get("spec") or {}).get("url", ""))
    return url if "://" in url else f"oci://{url}"


def vm_environment(plugin: dict) -> tuple:
    """What a WasmPlugin's vmConfig gives the VM: its env entries (name, source, value), in any
    order (the VM gets a map), valueFrom INLINE when unset; no vmConfig is an empty env. Any other
    vmConfig field is kept as written."""
    vm = (plugin.get("spec") or {}).get("vmConfig") or {}
    env = sorted((str(e.get("name")), e.get("valueFrom") or "INLINE", json.dumps(e.get("value"))) for e in vm.get("env") or [])
    rest = json.dumps({k: v for k, v in vm.items() if k != "env"}, sort_keys=True)
    return tuple(env), rest


def vm_environment_text(plugin: dict) -> str:
    env, rest = vm_environment(plugin)
    text = ", ".join(f"{n} ({src})" for n, src, _ in env) or "no env"
    return text if rest == "{}" else f"{text}, {rest}"


def plugins_may_share_pod(a: dict, b: dict) -> bool:
    """Whether one pod may be selected by both WasmPlugins, conservatively: the same namespace
    (or either in the root namespace, which reaches every namespace), and no label both
    selectors require with two different values. No selector (targetRef(s) included, what they
    attach to is not read here) selects every pod."""
    na, nb = a["metadata"].get("namespace"), b["metadata"].get("namespace")
    if na != nb and ROOT_NAMESPACE not in (na, nb):
        return False
    sa = ((a["spec"].get("selector") or {}).get("matchLabels")) or {}
    sb = ((b["spec"].get("selector") or {}).get("matchLabels")) or {}
    return all(sb[k] == v for k, v in sa.items() if k in sb)


def check_wasm_vms(report: Report, label: str, objects: list[dict]) -> None:
    """Any two WasmPlugins of one module that may select the same pod carry the same vmConfig.
    Envoy keys a Wasm VM by vm_id, VM configuration and code, not by its environment, and Istio
    sets no vm_id, so on such a pod the two share one VM, created with the env of whichever
    plugin Envoy creates first (istiod sends them in no fixed order): with the Kafka and MongoDB
    plugins, the Kafka credential would be there or not by chance."""
    plugins = [o for o in objects if o.get("kind") == "WasmPlugin"]
    for i, a in enumerate(plugins):
        for b in plugins[i + 1:]:
            if wasm_module(a) != wasm_module(b) or not plugins_may_share_pod(a, b):
                continue
            report.check(vm_environment(a) == vm_environment(b),
                         f"{label}: {ident(a)} and {ident(b)} (module {wasm_module(a)}, a pod both may select) carry the same vmConfig",
                         f"{vm_environment_text(a)} != {vm_environment_text(b)}: on a pod both select they share one Wasm VM (Envoy keys it by "
                         "vm_id, VM configuration and code; Istio sets no vm_id), created with the env of whichever plugin Envoy creates "
                         "first, in no fixed order (docs/wasm-vms.md)")


def wasm_vm_self_checks(report: Report, bundle: list[dict], plain: list[dict]) -> None:
    """Each way two WasmPlugins of the module could give their shared VM different environments,
    put into a copy of the kind install (the chart's plugins) or of the plain istio/ files:
    check_wasm_vms must reject it; and the cases where no pod can share a VM, or the VM gets the
    same environment, it must accept. The chart renders the two plugins' vmConfig from one
    template, so other kafkaAuth variables reach both."""

    def find(b, name):
        return next(o for o in b if o.get("kind") == "WasmPlugin" and o["metadata"]["name"] == name)

    def spec(b, name):
        return find(b, name)["spec"]

    def third(b, ns, selector):
        p = copy.deepcopy(find(b, "kiosk-mongodb"))
        p["metadata"].update(name="kiosk-other", namespace=ns)
        p["spec"].pop("vmConfig", None)
        if selector is None:
            p["spec"].pop("selector")
        else:
            p["spec"]["selector"] = {"matchLabels": selector}
        b.append(p)

    same = "carry the same vmConfig"
    cases = [
        ("the kind install as it is", bundle, lambda b: None, None),
        ("the plain istio/ files as they are", plain, lambda b: None, None),
        ("the MongoDB plugin without vmConfig (the fault: the Kafka credential absent when it is created first)",
         bundle, lambda b: spec(b, "kiosk-mongodb").pop("vmConfig", None), same),
        ("the plain MongoDB plugin without vmConfig", plain, lambda b: spec(b, "kiosk-mongodb").pop("vmConfig", None), same),
        ("the MongoDB plugin's env without the password", bundle, lambda b: spec(b, "kiosk-mongodb")["vmConfig"]["env"].pop(1), same),
        ("the MongoDB plugin's env with a variable of its own",
         bundle, lambda b: spec(b, "kiosk-mongodb")["vmConfig"]["env"].append({"name": "KIOSK_MONGODB_USERNAME", "valueFrom": "HOST"}), same),
        ("the MongoDB plugin's password INLINE", bundle,
         lambda b: spec(b, "kiosk-mongodb")["vmConfig"]["env"][1].update(valueFrom="INLINE", value="x"), same),
        ("the Kafka plugin with an env of its own", bundle,
         lambda b: spec(b, "kiosk")["vmConfig"]["env"].append({"name": "KIOSK_TRACE", "value": "1"}), same),
        ("the MongoDB plugin without selector (every pod) nor vmConfig",
         bundle, lambda b: [spec(b, "kiosk-mongodb").pop("selector"), spec(b, "kiosk-mongodb").pop("vmConfig", None)], same),
        ("the MongoDB plugin without vmConfig and its url without oci:// (the same module)",
         bundle, lambda b: [spec(b, "kiosk-mongodb").pop("vmConfig", None), spec(b, "kiosk-mongodb").update(url=spec(b, "kiosk")["url"].removeprefix("oci://"))], same),
        ("a plugin of the module in the root namespace, without vmConfig", bundle, lambda b: third(b, ROOT_NAMESPACE, None), same),
        ("a plugin of the module without vmConfig on a subset of the Kafka clients",
         bundle, lambda b: third(b, "pipeline", {"kiosk.io/kafka-client": "true", "app": "anything"}), same),
        # Accepted: the VM gets the same environment, or no pod can hold both plugins.
        ("the MongoDB plugin's env in the other order", bundle, lambda b: spec(b, "kiosk-mongodb")["vmConfig"]["env"].reverse(), None),
        ("a plugin of the module without vmConfig requiring kiosk.io/kafka-client other than the Kafka plugin",
         bundle, lambda b: [third(b, "pipeline", {"kiosk.io/kafka-client": "false", "kiosk.io/mongodb-client": "false"})], None),
        ("a plugin of the module without vmConfig in another namespace", bundle, lambda b: third(b, "elsewhere", None), None),
        ("the MongoDB plugin without vmConfig loading another module",
         bundle, lambda b: [spec(b, "kiosk-mongodb").pop("vmConfig", None), spec(b, "kiosk-mongodb").update(url="oci://kind-registry:5000/kiosk/other:0.1.0")], None),
    ]
    for what, base, doctor, want in cases:
        b = copy.deepcopy(base)
        doctor(b)
        errs = probe(check_wasm_vms, b)
        if want is None:
            report.check(not errs, f"self-check: Wasm VMs: {what}: accepted", str(errs[:2]))
        else:
            report.check(any(want in e for e in errs), f"self-check: Wasm VMs: {what}: rejected", f"errors: {errs[:2]}")
    # The chart's two plugins take their vmConfig from one template: other variable names reach both.
    values = {"kafkaAuth": {"mechanism": "SCRAM-SHA-256", "usernameEnv": "OTHER_USER", "passwordEnv": "OTHER_PASSWORD"}}
    try:
        with helm.Chart.load(ROOT / "charts/kiosk-filter") as c:
            c.validate_schema(values)
            rendered = c.render(values, name=CHARTS["kiosk-filter"], namespace=NAMESPACE, is_install=True)
    except helm.HelmError as e:
        report.error(f"self-check: Wasm VMs: charts/kiosk-filter with other kafkaAuth variables: helm render failed: {e}")
        return
    plugins = [d for t, text in rendered.items() if "wasmplugin" in t for d in yaml.safe_load_all(text) if d]
    for d in plugins:
        d.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
    envs = {d["metadata"]["name"]: vm_environment_text(d) for d in plugins}
    report.check(len(plugins) == 2 and set(envs.values()) == {"OTHER_PASSWORD (HOST), OTHER_USER (HOST)"} and not probe(check_wasm_vms, plugins),
                 "self-check: Wasm VMs: charts/kiosk-filter with other kafkaAuth variables gives both WasmPlugins the same vmConfig", str(envs))


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
    for what, base, doctor, want in cases:
        b = copy.deepcopy(tls_bundle if base == TLS else plain if base == PLAIN else bundle)
        doctor(b)
        errs = probe(check_exactly_once, b)
        if want is None:
            report.check(not errs, f"self-check: exactly once: {what}: accepted", str(errs[:2]))
        else:
            report.check(any(want in e for e in errs), f"self-check: exactly once: {what}: rejected", f"errors: {errs[:2]}")
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
    errs = probe(lambda r, _label, *a: compare_with_charts(r, *a), b, default_charts, applied)
    report.check(any("kafka-user-mirror.yaml" in e and ".spec equals" in e for e in errs),
                 "self-check: exactly once: strimzi/kafka-user-mirror.yaml without the transactionalId ACL the chart renders is rejected (differs from the chart)", str(errs[:2]))
    # The chart ties the ACL's prefix and the pods' ids to one value, for any prefix and replicas;
    # an empty prefix is refused by its schema.
    for values, ok in [({"mirror": {"transactionalIdPrefix": "kiosk.mirror.", "replicas": 3}}, True), ({"mirror": {"transactionalIdPrefix": ""}}, False)]:
        what = f"self-check: exactly once: the test chart with {values} {'renders' if ok else 'is refused by its schema'}"
        try:
            with helm.Chart.load(ROOT / "charts/test-kafka-istio-mongo") as c:
                c.validate_schema(values)
                rendered = c.render(values, name=CHARTS["test-kafka-istio-mongo"], namespace=NAMESPACE, is_install=True)
        except helm.HelmError as e:
            report.check(not ok, what, f"helm: {e}")
            continue
        if not report.check(ok, what, "it renders"):
            continue
        objs = [d for t, text in rendered.items() if not t.endswith("NOTES.txt") for d in yaml.safe_load_all(text) if d]
        for d in objs:
            d.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
        errs = probe(check_exactly_once, objs)
        tid = env(objs, TRANSACTIONAL_ID_ENV).get("value")
        report.check(not errs and tid == "kiosk.mirror.$(POD_NAME)" and txn_acl(objs)["resource"]["name"] == "kiosk.mirror.",
                     f"self-check: exactly once: the test chart with {values}: the pods' ids ({tid}) and the ACL follow the prefix", str(errs[:2]))
    mirror_code_checks(report)


def health_self_checks(report: Report, bundle: list[dict], kiosk_bundle: list[dict]) -> None:
    """Each way the mirror's probes could miss a mirror that stopped making progress, or restart
    a mirror that is only waiting, put into a copy of the kind install (default values, or with
    the kiosk services): check_health_probes must reject it, and accept the variants that keep
    them sound. The chart refuses a liveness age not above the readiness age."""

    def find(b, name):
        return next(o for o in b if o.get("kind") == "Deployment" and o["metadata"]["name"].endswith(name))

    def pod(b, name="-mirror"):
        return find(b, name)["spec"]["template"]["spec"]

    def mirror(b, name="-mirror", cname="mirror"):
        return next(c for c in containers(pod(b, name)) if c["name"] == cname)

    def cmd(b, key):
        return mirror(b)[key]["exec"]["command"]

    def set_cmd_arg(b, key, flag, value):
        c = cmd(b, key)
        if value is None:
            i = c.index(flag)
            del c[i:i + 2]
        else:
            c[c.index(flag) + 1] = value

    def env(b):
        return next(e for e in mirror(b)["env"] if e["name"] == HEALTH_FILE_ENV)

    def move_file(b, path):
        env(b)["value"] = path
        for key in ("startupProbe", "readinessProbe", "livenessProbe"):
            set_cmd_arg(b, key, "--file", path)

    def drop_mount(b):
        mirror(b).pop("volumeMounts")
        pod(b).pop("volumes")

    ready, live, start, named = "its readiness probe runs", "its liveness probe runs", "its startup probe runs", "names its health file"
    exceeds, two, writable = "exceeds its readiness --max-age", "spans at least two touches", "is writable"
    KIOSK = "kiosk"
    cases = [
        ("the kind install as it is", None, lambda b: None, None),
        ("the kind install with the kiosk services (REST entry, mongo-sink) as it is", KIOSK, lambda b: None, None),
        # The probes, on the mirror's own file.
        ("the readiness probe removed", None, lambda b: mirror(b).pop("readinessProbe"), ready),
        ("the liveness probe removed", None, lambda b: mirror(b).pop("livenessProbe"), live),
        ("the readiness probe reading another file (/var/run/kiosk/health/other)", None, lambda b: set_cmd_arg(b, "readinessProbe", "--file", "/var/run/kiosk/health/other"), ready),
        ("the liveness probe reading another file", None, lambda b: set_cmd_arg(b, "livenessProbe", "--file", "/var/run/kiosk/health/other"), live),
        ("the startup probe reading another file", None, lambda b: set_cmd_arg(b, "startupProbe", "--file", "/var/run/kiosk/health/other"), start),
        ("KIOSK_HEALTH_FILE naming another file than the probes", None, lambda b: env(b).update(value="/var/run/kiosk/health/other"), ready),
        ("KIOSK_HEALTH_FILE removed (the mirror touches nothing)", None, lambda b: mirror(b)["env"].remove(env(b)), named),
        ("a --health-file argument naming another file (it wins over the env)", None, lambda b: mirror(b)["args"].extend([HEALTH_FILE_ARG, "/var/run/kiosk/health/x"]), ready),
        ("KIOSK_HEALTH_FILE from a Secret (not known offline)", None,
         lambda b: [env(b).pop("value"), env(b).update(valueFrom={"secretKeyRef": {"name": "nowhere", "key": "file"}})], named),
        ("the readiness probe an httpGet (the mirror serves nothing)", None, lambda b: mirror(b).update(readinessProbe={"httpGet": {"path": "/", "port": 8080}}), ready),
        ("the readiness probe through a shell (sh -c)", None,
         lambda b: mirror(b)["readinessProbe"]["exec"].update(command=["sh", "-c", " ".join(cmd(b, "readinessProbe"))]), ready),
        ("the readiness probe running a binary the image does not have (/bin/kiosk-services)", None,
         lambda b: cmd(b, "readinessProbe").__setitem__(0, "/bin/kiosk-services"), ready),
        ("the readiness probe running another subcommand (verify)", None, lambda b: cmd(b, "readinessProbe").__setitem__(1, "verify"), ready),
        # The ages.
        ("the liveness --max-age (20) below the readiness one (30)", None, lambda b: set_cmd_arg(b, "livenessProbe", "--max-age", "20"), exceeds),
        ("the liveness --max-age equal to the readiness one", None, lambda b: set_cmd_arg(b, "livenessProbe", "--max-age", "30"), exceeds),
        ("the liveness probe without --max-age (health's default, 30 s, the readiness age)", None, lambda b: set_cmd_arg(b, "livenessProbe", "--max-age", None), exceeds),
        ("the readiness --max-age 5 (one touch interval)", None, lambda b: set_cmd_arg(b, "readinessProbe", "--max-age", "5"), two),
        # Where the file is.
        ("the health file on the read-only root filesystem (its emptyDir and mount removed)", None, drop_mount, writable),
        ("the emptyDir mounted readOnly", None, lambda b: mirror(b)["volumeMounts"][0].update(readOnly=True), writable),
        ("the health volume a ConfigMap instead of an emptyDir", None,
         lambda b: pod(b)["volumes"][0].update({"configMap": {"name": "x"}}) or pod(b)["volumes"][0].pop("emptyDir"), writable),
        ("the health file in a subdirectory of the emptyDir (nothing creates it)", None, lambda b: move_file(b, "/var/run/kiosk/health/sub/mirror"), writable),
        ("the root filesystem writable, the file in /var/run/kiosk (root's, not the mirror user's)", None,
         lambda b: [drop_mount(b), mirror(b)["securityContext"].update(readOnlyRootFilesystem=False)], writable),
        # Another kiosk program.
        ("the mirror's probes given to `kiosk mongo-sink` (it writes no health file)", KIOSK,
         lambda b: mirror(b, "-mongo-sink", "mongo-sink").update({k: copy.deepcopy(mirror(b)[k]) for k in ("readinessProbe", "livenessProbe")}), "no probe reads a health file"),
        # Accepted.
        ("the startup probe removed (readiness and liveness then run from the start)", None, lambda b: mirror(b).pop("startupProbe"), None),
        ("--health-file as an argument instead of the env", None,
         lambda b: [mirror(b)["args"].extend([HEALTH_FILE_ARG, env(b)["value"]]), mirror(b)["env"].remove(env(b))], None),
        ("the readiness probe without --max-age (health's default, 30 s)", None, lambda b: set_cmd_arg(b, "readinessProbe", "--max-age", None), None),
        ("the probes naming the binary through PATH (kiosk-services)", None, lambda b: [cmd(b, k).__setitem__(0, "kiosk-services") for k in ("readinessProbe", "livenessProbe")], None),
        ("the root filesystem writable and the file in /tmp, without a volume", None,
         lambda b: [drop_mount(b), mirror(b)["securityContext"].update(readOnlyRootFilesystem=False), move_file(b, "/tmp/mirror-health")], None),
    ]
    for what, base, doctor, want in cases:
        b = copy.deepcopy(kiosk_bundle if base == KIOSK else bundle)
        doctor(b)
        errs = probe(check_health_probes, b)
        if want is None:
            report.check(not errs, f"self-check: probes: {what}: accepted", str(errs[:2]))
        else:
            report.check(any(want in e for e in errs), f"self-check: probes: {what}: rejected", f"errors: {errs[:2]}")
    # The chart: its numbers from values, the liveness age above the readiness age.
    for values, ok in [({"mirror": {"health": {"readiness": {"maxAgeSeconds": 45}, "liveness": {"maxAgeSeconds": 600}, "stuckAfterSeconds": 120}}}, True),
                       ({"mirror": {"health": {"liveness": {"maxAgeSeconds": 20}}}}, False),
                       ({"mirror": {"health": {"readiness": {"maxAgeSeconds": 5}}}}, False)]:
        what = f"self-check: probes: the test chart with {values} {'renders' if ok else 'is refused (schema or template)'}"
        try:
            with helm.Chart.load(ROOT / "charts/test-kafka-istio-mongo") as c:
                c.validate_schema(values)
                rendered = c.render(values, name=CHARTS["test-kafka-istio-mongo"], namespace=NAMESPACE, is_install=True)
        except helm.HelmError as e:
            report.check(not ok, what, f"helm: {e}")
            continue
        if not report.check(ok, what, "it renders"):
            continue
        objs = [d for t, text in rendered.items() if not t.endswith("NOTES.txt") for d in yaml.safe_load_all(text) if d]
        for d in objs:
            d.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
        errs = probe(check_health_probes, objs)
        m = mirror(objs)
        got = (arg_value(m["readinessProbe"]["exec"]["command"], "--max-age"), arg_value(m["livenessProbe"]["exec"]["command"], "--max-age"), arg_value(m["args"], "--stuck-after-secs"))
        report.check(not errs and got == ("45", "600", "120"), f"self-check: probes: the test chart with {values}: the probes' ages and --stuck-after-secs follow the values ({got})", str(errs[:2]))
    health_code_checks(report)


# Istio's own TCP series carry these labels (istio/proxy istio_stats.cc, all_tags_ minus the
# HTTP ones); Kiali's TCP graph query groups by these (kiali v2.29.0 graph/telemetry/istio/istio.go;
# `app` is a target label Prometheus adds from the pod's labels).
ISTIO_TCP_LABELS = {
    "reporter", "source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version",
    "source_canonical_service", "source_canonical_revision", "source_cluster", "destination_workload",
    "destination_workload_namespace", "destination_principal", "destination_app", "destination_version",
    "destination_service", "destination_service_name", "destination_service_namespace", "destination_canonical_service",
    "destination_canonical_revision", "destination_cluster", "request_protocol", "response_flags", "connection_security_policy",
}
KIALI_TCP_GROUP_BY = {
    "source_cluster", "source_workload_namespace", "source_workload", "source_canonical_service", "source_canonical_revision",
    "destination_cluster", "destination_service_namespace", "destination_service", "destination_service_name",
    "destination_workload_namespace", "destination_workload", "destination_canonical_service", "destination_canonical_revision",
    "response_flags",
}


def filter_istio_series() -> tuple[str, str, set[str]]:
    """(metric name, type, labels) of the filter's Istio-shaped series (filter/contract/metrics.json)."""
    istio = [m for m in filter_metrics()["metrics"] if m["name"].startswith("istio_")]
    if not istio:
        sys.exit("validate-k8s: no istio_* metric in filter/contract/metrics.json")
    return istio[0]["name"], istio[0]["type"], set(istio[0]["labels"])


def check_istio_shaped_series(report: Report, label: str, objects: list[dict]) -> None:
    """The filter's istio_tcp_received_bytes_total shares its name with Istio's own family in
    the same scrape: it must be the same type and never the same series."""
    name, kind, labels = filter_istio_series()
    report.check(kind == "counter", f"{label}: the filter's {name} is a counter, as Istio's", f"it is a {kind}")
    report.check(labels <= ISTIO_TCP_LABELS, f"{label}: the filter's {name} labels are Istio's TCP labels", f"extra: {sorted(labels - ISTIO_TCP_LABELS)}")
    report.check(KIALI_TCP_GROUP_BY <= labels, f"{label}: the filter's {name} carries every label Kiali's TCP query groups by", f"missing: {sorted(KIALI_TCP_GROUP_BY - labels)}")
    only_istio = ISTIO_TCP_LABELS - labels
    report.check({"source_principal", "destination_principal"} <= only_istio, f"{label}: the filter's {name} never equals an Istio series (it has no *_principal labels, which Istio always sets)",
                 f"labels only Istio sets: {sorted(only_istio)}")
    for t in (o for o in objects if o.get("kind") == "Telemetry"):
        for m in t["spec"].get("metrics") or []:
            for ov in m.get("overrides") or []:
                removed = {k for k, v in (ov.get("tagOverrides") or {}).items() if (v or {}).get("operation") == "REMOVE"}
                report.check(not (removed & only_istio), f"{label}: {ident(t)} keeps the labels that tell Istio's TCP series from the filter's",
                             f"removes {sorted(removed & only_istio)}")
    # Kiali sums series by its group-by labels, which leave the principals out: an Istio series
    # whose source workload in the topic namespace is named like a topic would add to the edge.
    topic_ns = {(((o.get("spec") or {}).get("pluginConfig") or {}).get("kiali") or {}).get("topic_namespace", "kafka") for o in objects if o.get("kind") == "WasmPlugin"}
    workloads = {(p.namespace, p.workload()) for p in pods_of(objects)}
    for o in (o for o in objects if o.get("kind") == "KafkaTopic"):
        topic = o["spec"].get("topicName") or o["metadata"]["name"]
        for ns in topic_ns:
            report.check((ns, topic) not in workloads, f"{label}: topic {topic!r} is no workload name in the topic namespace {ns}", "Kiali would add that workload's TCP traffic to the topic's edges")


# ---------------------------------------------------------------------------------------
# Where plain manifests come from and go to


def plain_manifest_files() -> list[Path]:
    """Every Kubernetes object file under strimzi/ and istio/ (istio/helm holds Helm values)."""
    out = []
    for d in ("strimzi", "istio"):
        for f in sorted((ROOT / d).rglob("*.yaml")):
            if f.relative_to(ROOT).parts[:2] != ("istio", "helm"):
                out.append(f)
    return out


def kind_up_applied() -> set[str]:
    """The strimzi/ and istio/ files scripts/kind-up.sh applies itself (`kubectl apply -f`,
    a directory meaning every file in it)."""
    text = (ROOT / "scripts/kind-up.sh").read_text().replace("\\\n", " ")
    out = set()
    for line in text.splitlines():
        if "kubectl apply" not in line:
            continue
        for arg in re.findall(r"-f\s+(\S+)", line):
            arg = arg.strip("'\"")
            path = ROOT / arg
            if arg.startswith(("strimzi/", "istio/")) and path.is_dir():
                out.update(str(f.relative_to(ROOT)) for f in sorted(path.rglob("*.yaml")))
            elif arg.startswith(("strimzi/", "istio/")):
                out.add(arg)
    return out


# ---------------------------------------------------------------------------------------
# The certificate sync program, run against a stand-in Kubernetes API


class FakeApi:
    """Just enough of the Kubernetes API for Secrets (GET, POST, PUT, with resourceVersions) and
    StatefulSet patches (recorded)."""

    def __init__(self):
        import http.server
        import threading

        self.secrets: dict[tuple[str, str], dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.patches: list[tuple[tuple[str, str], str, dict]] = []
        self.version = 0
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_call(self):
                api.calls.append((self.command, self.path))
                if self.headers.get("Authorization") != "Bearer fake-token":
                    return self.reply(401, {"kind": "Status", "code": 401})
                m = re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/statefulsets/([^/]+)", self.path)
                if m and self.command == "PATCH":
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                    api.patches.append((m.groups(), self.headers.get("Content-Type"), body))
                    return self.reply(200, {"kind": "StatefulSet", "metadata": {"namespace": m.group(1), "name": m.group(2)}})
                m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?", self.path)
                if not m:
                    return self.reply(404, {"kind": "Status", "code": 404})
                ns, name = m.groups()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}") if self.command in ("POST", "PUT") else None
                if self.command == "GET" and name:
                    s = api.secrets.get((ns, name))
                    return self.reply(200, s) if s else self.reply(404, {"kind": "Status", "code": 404})
                if self.command == "POST" and not name:
                    key = (ns, body["metadata"]["name"])
                    if key in api.secrets:
                        return self.reply(409, {"kind": "Status", "code": 409})
                    return self.reply(201, api.store(key, body))
                if self.command == "PUT" and name:
                    current = api.secrets.get((ns, name))
                    if current is None:
                        return self.reply(404, {"kind": "Status", "code": 404})
                    if body["metadata"].get("resourceVersion") not in (None, current["metadata"]["resourceVersion"]):
                        return self.reply(409, {"kind": "Status", "code": 409})
                    return self.reply(200, api.store((ns, name), body))
                return self.reply(405, {"kind": "Status", "code": 405})

            do_GET = do_POST = do_PUT = do_PATCH = handle_call

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def store(self, key, body):
        self.version += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.version)
        self.secrets[key] = body
        return body

    def close(self):
        self.server.shutdown()
        self.server.server_close()


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


# ---------------------------------------------------------------------------------------
# The MongoDB certificate issuer and the X.509 user script, run here


def rbac_allows_group(objects: list[dict], sa: tuple[str, str], ns: str, verb: str, group: str, resource: str, name: str | None) -> bool:
    """rbac_allows for a resource of any API group."""
    roles = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects if o.get("kind") == "Role"}
    for b in objects:
        if b.get("kind") != "RoleBinding" or b["metadata"].get("namespace") != ns:
            continue
        if not any(s.get("kind") == "ServiceAccount" and (s.get("namespace"), s.get("name")) == sa for s in b.get("subjects") or []):
            continue
        role = roles.get((ns, b["roleRef"]["name"])) if b["roleRef"].get("kind") == "Role" else None
        for r in (role or {}).get("rules") or []:
            if resource in r.get("resources", []) and group in r.get("apiGroups", []) and (verb in r.get("verbs", []) or "*" in r.get("verbs", [])):
                if not r.get("resourceNames") or name in r["resourceNames"]:
                    return True
    return False


def openssl_handshake(tmp: Path, server: tuple[str, str, str], client: tuple[str, str] | None, client_ca: str, name: str) -> tuple[bool, str]:
    """A TLS handshake between `openssl s_server` holding mongod's certificate and requiring a
    client certificate of its CA file (as mongod with --tlsCAFile does) and `openssl s_client`
    presenting `client` (certificate, key; None: none) and checking the server's chain against
    `client_ca` and its name against `name` (as the sidecar's DestinationRule asks: sni and
    subjectAltNames). (whether the server accepted it, what the two said)."""
    import socket
    import time

    def put(fname, text):
        (tmp / fname).write_text(text)
        return str(tmp / fname)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    crt, key, ca = put("hs-server.crt", server[0]), put("hs-server.key", server[1]), put("hs-server-ca.crt", server[2])
    srv = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", crt, "-key", key, "-CAfile", ca,
                            "-Verify", "1", "-verify_return_error", "-naccept", "1", "-rev"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # -rev: it answers without reading stdin
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # s_server prints ACCEPT once it listens
            line = srv.stdout.readline()
            if not line or line.strip() == "ACCEPT":
                break
        args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", put("hs-client-ca.crt", client_ca),
                "-servername", name, "-verify_hostname", name, "-verify_return_error", "-brief"]
        if client:
            args += ["-cert", put("hs-client.crt", client[0]), "-key", put("hs-client.key", client[1])]
        c = subprocess.run(args, input="", capture_output=True, text=True, timeout=20)
        out, _ = srv.communicate(timeout=20)
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.communicate()
    accepted = c.returncode == 0 and "Verification: OK" in c.stderr and re.search(r"^\s*1 server accepts that finished", out, re.M) is not None
    return accepted, (c.stderr[-300:] + " | " + out[-300:]).replace("\n", " ")


def mongodb_issuer_checks(report: Report, rendered: list[dict]) -> None:
    """Run the MongoDB certificate issuer of the test chart (files/mongodb_tls_issuer.py, as its
    Deployment runs it, with this machine's openssl) against a stand-in Kubernetes API through the
    life of its certificates: first start (the CA, mongod's certificate, one per client, shaped as
    mongod and Istio read them, the clients' subjects being the X.509 users the chart creates),
    a TLS handshake as mongod and the sidecars make it (accepted with a client's certificate,
    refused without one or with another CA's), nothing written when nothing changed, renewal
    before expiry (mongod's StatefulSet restarted), a CA renewal (both CAs trusted meanwhile), a
    changed subject; and check its Role allows every call it makes."""
    import base64

    def b64d(s, key):
        return base64.b64decode((s.get("data") or {}).get(key) or "").decode()

    cm = next((o for o in rendered if o.get("kind") == "ConfigMap" and "mongodb_tls_issuer.py" in (o.get("data") or {})), None)
    issuers = mongodb_issuers(rendered)
    if not report.check(cm is not None and len(issuers) == 1, "the test chart ships the MongoDB certificate issuer (a ConfigMap with mongodb_tls_issuer.py, one Deployment)"):
        return
    iss = issuers[0]
    server = mongodb_servers(rendered)[0]
    users, _ = x509_users(rendered, server)
    clients = mongodb_clients(rendered)
    if shutil.which("openssl") is None:
        report.error("openssl is installed (the issuer runs it; Debian package openssl)")
        return
    api = FakeApi()
    ca_key = iss.ca
    sts_writes = lambda: len(api.patches)  # noqa: E731
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        script = tmp / "mongodb_tls_issuer.py"
        script.write_text(cm["data"]["mongodb_tls_issuer.py"])
        (tmp / "token").write_text("fake-token\n")
        ready = tmp / "ready"
        base_env = dict(os.environ, KIOSK_API_URL=api.url, KIOSK_SA_DIR=str(tmp), KIOSK_SYNC_READY_FILE=str(ready),
                        **{k: v for k, v in iss.env.items() if k.startswith("KIOSK_") and k != "KIOSK_SYNC_READY_FILE"})

        def run_once(**extra):
            ready.unlink(missing_ok=True)
            r = subprocess.run([sys.executable, str(script), "--once"], env=dict(base_env, **extra), capture_output=True, text=True, timeout=120)
            return r.returncode, r.stdout + r.stderr

        def writes():
            return sum(1 for m, _ in api.calls if m in ("POST", "PUT"))

        def openssl(*args, stdin=None):
            return subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True).stdout

        def subject(pem):
            return openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", stdin=pem).strip().removeprefix("subject=").strip()

        def verify(pem, bundle):
            (tmp / "v-ca.pem").write_text(bundle)
            return subprocess.run(["openssl", "verify", "-CAfile", str(tmp / "v-ca.pem")], input=pem, capture_output=True, text=True).returncode == 0

        def secret(key):
            return api.secrets.get(key) or {}

        try:
            rc, out = run_once()
            ca, srv = secret(ca_key), secret(iss.server)
            made = {k: secret(v) for k, v in iss.clients.items()}
            report.check(rc == 0 and ready.exists() and set(ca.get("data") or {}) == {"tls.crt", "tls.key"}
                         and set(srv.get("data") or {}) == {"tls.crt", "tls.key", "ca.crt", "mongod.pem"}
                         and all(set(s.get("data") or {}) == {"tls.crt", "tls.key", "ca.crt"} for s in made.values()),
                         f"mongodb_tls_issuer.py: on first start makes the CA, mongod's certificate (tls.crt, tls.key, ca.crt, mongod.pem) and {len(made)} client certificates (tls.crt, tls.key, ca.crt, the keys Istio reads), and becomes ready",
                         out[-400:])
            if not srv or not all(made.values()):
                return
            ca_pem = b64d(ca, "tls.crt")
            report.check(b64d(srv, "mongod.pem") == b64d(srv, "tls.crt").strip() + "\n" + b64d(srv, "tls.key").strip() + "\n" and b64d(srv, "ca.crt") == ca_pem.strip() + "\n",
                         "mongodb_tls_issuer.py: mongod.pem is mongod's certificate then its key (--tlsCertificateKeyFile), ca.crt the CA (--tlsCAFile)")
            sans = openssl("x509", "-noout", "-ext", "subjectAltName,extendedKeyUsage", stdin=b64d(srv, "tls.crt"))
            report.check(f"DNS:{server.host}" in sans and "TLS Web Server Authentication" in sans and "TLS Web Client Authentication" in sans
                         and verify(b64d(srv, "tls.crt"), ca_pem),
                         f"mongodb_tls_issuer.py: mongod's certificate names {server.host} (the clients' SNI and checked name), is for serverAuth (and clientAuth, for its readiness probe) and chains to the CA", sans)
            dns = {c.workload: iss.client_dn(c.namespace, c.workload) for c in clients}
            for (ns, workload), s in made.items():
                crt = b64d(s, "tls.crt")
                eku = openssl("x509", "-noout", "-ext", "extendedKeyUsage,basicConstraints", stdin=crt)
                report.check(subject(crt) == iss.client_dn(ns, workload) and (users or {}).get(subject(crt)) is not None and "TLS Web Client Authentication" in eku
                             and "CA:FALSE" in eku and verify(crt, b64d(s, "ca.crt")) and b64d(s, "ca.crt") == ca_pem.strip() + "\n",
                             f"mongodb_tls_issuer.py: {ns}/{workload}'s certificate has the subject {iss.client_dn(ns, workload)}, an X.509 user of mongod, for clientAuth only, and its ca.crt verifies mongod",
                             f"subject {subject(crt)!r}, users {sorted(users or {})}, {eku}")
            report.check(set(dns) == {w for _, w in made}, "mongodb_tls_issuer.py: it keeps a certificate for each MongoDB client of the chart, and for no other workload",
                         f"clients {sorted(dns)}, certificates {sorted(w for _, w in made)}")
            first = next(iter(made.values()))
            server_pem = (b64d(srv, "tls.crt"), b64d(srv, "tls.key"), b64d(srv, "ca.crt"))
            ok, said = openssl_handshake(tmp, server_pem, (b64d(first, "tls.crt"), b64d(first, "tls.key")), b64d(first, "ca.crt"), server.host)
            report.check(ok, f"TLS as the sidecar originates it and mongod ends it: a client's certificate, SNI and name check {server.host}: accepted", said)
            ok, said = openssl_handshake(tmp, server_pem, None, b64d(first, "ca.crt"), server.host)
            # With TLS 1.3 the client may finish its side before the server's alert arrives: the
            # server's count of finished handshakes is what says it refused.
            report.check(not ok and "0 server accepts that finished" in said, "TLS to mongod without a client certificate: refused by mongod (it requires one)", said)
            ok, said = openssl_handshake(tmp, server_pem, (b64d(first, "tls.crt"), b64d(first, "tls.key")), b64d(first, "ca.crt"), f"elsewhere.{server.namespace}.svc.cluster.local")
            report.check(not ok and "hostname mismatch" in said, "TLS to mongod from a sidecar checking another name: refused by the sidecar (subjectAltNames pins mongod)", said)
            other = tmp / "other"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{other}.key", "-out", f"{other}.crt",
                            "-subj", "/O=kiosk/OU=pipeline/CN=intruder", "-days", "2"], capture_output=True, check=True)
            ok, said = openssl_handshake(tmp, server_pem, (Path(f"{other}.crt").read_text(), Path(f"{other}.key").read_text()), b64d(first, "ca.crt"), server.host)
            report.check(not ok and "0 server accepts that finished" in said, "TLS to mongod with a certificate of another CA (the user's name in it): refused by mongod", said)

            before = writes()
            rc, out = run_once()
            report.check(rc == 0 and "unchanged" in out and writes() == before and sts_writes() == 0 and ready.exists(),
                         "mongodb_tls_issuer.py: writes nothing and restarts nothing when nothing changed", out[-300:])
            rc, out = run_once(KIOSK_RENEW_DAYS="400")
            renewed = {k: secret(v) for k, v in iss.clients.items()}
            report.check(rc == 0 and secret(ca_key) == ca and b64d(secret(iss.server), "tls.crt") != server_pem[0]
                         and all(b64d(renewed[k], "tls.crt") != b64d(made[k], "tls.crt") for k in made)
                         and len(api.patches) == 1 and api.patches[0][0] == iss.statefulset and api.patches[0][1] == "application/merge-patch+json"
                         and "kiosk.io/mongodb-server-cert-sha256" in json.dumps(api.patches[0][2]),
                         "mongodb_tls_issuer.py: renews every certificate that expires within the renewal window, not the CA, and restarts mongod's StatefulSet (pod template annotated with the new certificate's digest)",
                         f"{out[-300:]} patches {api.patches}")
            old_client = (b64d(renewed[next(iter(renewed))], "tls.crt"), b64d(renewed[next(iter(renewed))], "tls.key"))
            rc, out = run_once(KIOSK_RENEW_DAYS="4000")
            ca2 = secret(ca_key)
            bundle = b64d(secret(iss.server), "ca.crt")
            report.check(rc == 0 and b64d(ca2, "tls.crt") != ca_pem and b64d(ca2, "previous.crt") == ca_pem and bundle.count("BEGIN CERTIFICATE") == 2
                         and all(b64d(secret(v), "ca.crt") == bundle for v in iss.clients.values())
                         and all(verify(b64d(secret(v), "tls.crt"), b64d(ca2, "tls.crt")) for v in list(iss.clients.values()) + [iss.server]),
                         "mongodb_tls_issuer.py: renews the CA before it expires, keeps the old one trusted (previous.crt, both in every ca.crt) and issues every certificate again from the new one",
                         out[-300:])
            ok, said = openssl_handshake(tmp, (b64d(secret(iss.server), "tls.crt"), b64d(secret(iss.server), "tls.key"), bundle), old_client, bundle, server.host)
            report.check(ok, "TLS during the CA renewal: a sidecar still holding its certificate of the old CA is accepted by mongod with the new one", said)
            rc, out = run_once(KIOSK_CLIENT_ORGANIZATION="kiosk-renamed")
            report.check(rc == 0 and all(subject(b64d(secret(v), "tls.crt")).endswith(",O=kiosk-renamed") for v in iss.clients.values()),
                         "mongodb_tls_issuer.py: issues a client certificate again when its subject (the X.509 user) changes", out[-300:])
            rc, out = run_once(KIOSK_CLIENT_ORGANIZATION=server_org) if (server_org := next(iter(iss.server_orgs()), "")) else (1, "")
            report.check(rc != 0 and "must differ" in out, "mongodb_tls_issuer.py: refuses clients with the server certificate's O", out[-300:])
        finally:
            api.close()
    podspec = iss.dep["spec"]["template"]["spec"]
    sa = (iss.dep["metadata"].get("namespace"), podspec.get("serviceAccountName", "default"))
    verbs = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch"}
    for method, path in sorted(set(api.calls)):
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?", path) or re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/statefulsets/([^/]+)", path)
        group, resource = ("", "secrets") if "/secrets" in path else ("apps", "statefulsets")
        report.check(bool(m) and rbac_allows_group(rendered, sa, m.group(1), verbs[method], group, resource, m.group(2)),
                     f"mongodb_tls_issuer.py: its service account {sa[0]}/{sa[1]} may {method} {path}")


def x509_users_script_checks(report: Report, rendered: list[dict]) -> None:
    """Run the MongoDB pod's user script (files/mongodb-x509-users.js, as mongosh runs it: the
    same globals `db`, `fs`, `print`, `process`) with Node.js against a stand-in of mongod's
    user commands on $external: on an empty database it creates exactly the chart's X.509
    users, with no password; run again it changes nothing; a user the release made that is no
    longer a client is dropped, one it did not make is left alone. And shellcheck its shell part."""
    cm = next((o for o in rendered if o.get("kind") == "ConfigMap" and "mongodb-x509-users.js" in (o.get("data") or {})), None)
    node = shutil.which("node") or shutil.which("nodejs")
    if not report.check(cm is not None, "the test chart ships the X.509 user script (ConfigMap with mongodb-x509-users.js)"):
        return
    if not report.check(node is not None, "node is installed (runs the X.509 user script as mongosh would)", "run scripts/setup.sh (Debian package nodejs)"):
        return
    want = json.loads(cm["data"]["x509-users.json"])["users"]
    harness = r"""
const fs = require("fs");
const vm = require("vm");
const state = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const log = [];
function reply(cmd) {
  log.push(cmd);
  if (JSON.stringify(cmd).includes('"pwd"')) return { ok: 0, errmsg: "X.509 users have no password" };
  const name = cmd.createUser || cmd.updateUser || cmd.dropUser;
  if (cmd.usersInfo === 1) {
    const f = (cmd.filter || {})["customData.managedBy"];
    return { ok: 1, users: state.users.filter((u) => f === undefined || (u.customData || {}).managedBy === f) };
  }
  if (cmd.usersInfo !== undefined) return { ok: 1, users: state.users.filter((u) => u.user === cmd.usersInfo) };
  const i = state.users.findIndex((u) => u.user === name);
  if (cmd.createUser !== undefined) {
    if (i >= 0) return { ok: 0, code: 51003, errmsg: "User already exists" };
    state.users.push({ user: name, db: "$external", roles: cmd.roles, customData: cmd.customData });
    return { ok: 1 };
  }
  if (i < 0) return { ok: 0, code: 11, errmsg: "UserNotFound" };
  if (cmd.updateUser !== undefined) { Object.assign(state.users[i], { roles: cmd.roles, customData: cmd.customData }); return { ok: 1 }; }
  if (cmd.dropUser !== undefined) { state.users.splice(i, 1); return { ok: 1 }; }
  return { ok: 0, errmsg: "unknown command " + JSON.stringify(cmd) };
}
const db = { getSiblingDB(name) { if (name !== "$external") throw new Error("users are on $external, not " + name); return { runCommand: reply }; } };
vm.runInNewContext(fs.readFileSync(process.argv[3], "utf8"), { db, fs, print: () => {}, process, JSON, Set, Map, Error });
fs.writeFileSync(process.argv[2], JSON.stringify({ users: state.users, log }));
"""
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for key in ("x509-users.json", "mongodb-x509-users.js", "mongodb-x509-users.sh"):
            (tmp / key).write_text(cm["data"][key])
        (tmp / "harness.js").write_text(harness)
        state = tmp / "state.json"

        def run(users):
            state.write_text(json.dumps({"users": users}))
            r = subprocess.run([node, str(tmp / "harness.js"), str(state), str(tmp / "mongodb-x509-users.js")], capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, KIOSK_MONGODB_X509_USERS_FILE=str(tmp / "x509-users.json")))
            return r.returncode, r.stderr[-300:], json.loads(state.read_text()) if r.returncode == 0 else {}

        mine = lambda s: {u["user"]: u["roles"] for u in s.get("users") or [] if (u.get("customData") or {}).get("managedBy")}  # noqa: E731
        rc, err, s1 = run([])
        report.check(rc == 0 and mine(s1) == {u["user"]: u["roles"] for u in want} and all("pwd" not in c for c in s1.get("log") or []),
                     f"mongodb-x509-users.js: on an empty database creates the {len(want)} X.509 users of the chart on $external with their roles, and no password", err or str(s1)[:300])
        rc, err, s2 = run(s1.get("users") or [])
        report.check(rc == 0 and mine(s2) == mine(s1) and not any("createUser" in c or "dropUser" in c for c in s2.get("log") or []),
                     "mongodb-x509-users.js: run again, creates and drops nothing", err or str(s2.get("log"))[:300])
        gone = {"user": "CN=old-client,OU=pipeline,O=kiosk", "db": "$external", "roles": [], "customData": (s1["users"][0].get("customData") if s1.get("users") else {})}
        admin = {"user": "CN=operator,OU=ops,O=elsewhere", "db": "$external", "roles": [{"role": "root", "db": "admin"}]}
        rc, err, s3 = run((s1.get("users") or []) + [gone, admin])
        names = {u["user"] for u in s3.get("users") or []}
        report.check(rc == 0 and gone["user"] not in names and admin["user"] in names and mine(s3) == mine(s1),
                     "mongodb-x509-users.js: drops a user it made for a workload that is no longer a client, and leaves others' users alone", err or str(names))
        shellcheck = shutil.which("shellcheck")
        if shellcheck:
            r = subprocess.run([shellcheck, str(tmp / "mongodb-x509-users.sh")], capture_output=True, text=True)
            report.check(r.returncode == 0, "shellcheck mongodb-x509-users.sh (the MongoDB pod's init container)", r.stdout[-1000:])


# ---------------------------------------------------------------------------------------
# The Kiali edge check against a graph response in Kiali's own shape


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


def prometheus_ingest_check(report: Report) -> None:
    """(--prometheus) Scrape, with the real Prometheus of this machine, an exposition shaped as
    a sidecar's: Istio's istio_tcp_received_bytes_total group (istiocustom) and the filter's
    (wasmcustom) are two groups with a TYPE line each, apart (Envoy groups by tag-extracted
    name, envoy source/server/admin/grouped_stats_request.cc). Prometheus must ingest both."""
    import socket
    import urllib.request

    prom = shutil.which("prometheus")
    if not report.check(prom is not None, "prometheus is installed (Debian package prometheus)"):
        return
    _, _, filter_labels_ = filter_istio_series()
    istio = {k: "x" for k in ISTIO_TCP_LABELS} | {"reporter": "source"}
    mine = {k: "x" for k in filter_labels_} | {"reporter": "destination"}
    fmt = lambda labels: ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    exposition = (f"# TYPE istio_tcp_received_bytes_total counter\nistio_tcp_received_bytes_total{{{fmt(istio)}}} 1000\n\n"
                  "# TYPE envoy_server_uptime gauge\nenvoy_server_uptime 5\n"
                  f"# TYPE istio_tcp_received_bytes_total counter\nistio_tcp_received_bytes_total{{{fmt(mine)}}} 2000\n")

    def free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    import http.server
    import threading

    class Sidecar(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            data = exposition.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sidecar)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "prom.yml").write_text(f"global: {{scrape_interval: 200ms, scrape_timeout: 200ms}}\nscrape_configs:\n  - job_name: sidecar\n"
                                            f"    static_configs: [{{targets: ['127.0.0.1:{server.server_address[1]}']}}]\n")
        proc = subprocess.Popen([prom, f"--config.file={tmp}/prom.yml", f"--storage.tsdb.path={tmp}/data", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = None
        try:
            import time

            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?query=istio_tcp_received_bytes_total", timeout=2) as r:
                        result = json.load(r)["data"]["result"]
                    if len(result) >= 2:
                        break
                except OSError:
                    pass
                time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            server.shutdown()
    reporters = sorted(r["metric"].get("reporter", "") for r in result or [])
    report.check(reporters == ["destination", "source"], "Prometheus ingests both istio_tcp_received_bytes_total groups of one sidecar's scrape", f"got {result}")


# ---------------------------------------------------------------------------------------
# Scripts


def check_scripts(report: Report, test_hooks: list[dict]) -> None:
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
                       "+ scripts/build-filter.sh", "+ kubectl -n pipeline rollout status deployment/kiosk-mongodb-tls-issuer"],
        "kind-test.sh": ["+ helm test kiosk", "+ kubectl -n istio-system port-forward svc/kiali", "+ python3 charts/test-kafka-istio-mongo/files/kiali_edges.py"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        stubs, log = Path(tmp) / "bin", Path(tmp) / "calls.log"
        stubs.mkdir()
        for tool in STUBBED_TOOLS:
            stub = stubs / tool
            stub.write_text(f"#!/bin/sh\necho \"{tool} $*\" >> '{log}'\nexit 97\n")
            stub.chmod(0o755)
        printed_by = {}
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
            printed_by[name] = printed
        # The Kafka credentials' alternative (--kafka-auth tls), dry-run too.
        env = dict(os.environ, PATH=f"{stubs}:{os.environ.get('PATH', '')}")
        r = subprocess.run(["bash", str(ROOT / "scripts/kind-up.sh"), "--dry-run", "--kafka-auth", "tls"], capture_output=True, text=True, env=env, timeout=60)
        report.check(r.returncode == 0 and not log.exists(), "scripts/kind-up.sh --dry-run --kafka-auth tls exits 0 and runs nothing", (r.stderr or r.stdout)[-1500:])
        tls_lines = [l for l in r.stdout.splitlines() if l.startswith("+ ")]
        check_kafka_auth_lines(report, printed_by.get("kind-up.sh", []), tls_lines)
        for what, d, tl, want in [
            ("the filter without SASL by default", [l.replace("kafkaAuth.mechanism=SCRAM-SHA-512", "kafkaAuth.mechanism=none") for l in printed_by.get("kind-up.sh", [])],
             tls_lines, "by default installs the kiosk-filter chart with kafkaAuth.mechanism=SCRAM-SHA-512"),
            ("--kafka-auth tls without the DestinationRules and the sync", printed_by.get("kind-up.sh", []),
             [l for l in tls_lines if TLS_CLIENT_IDENTITY_DIR not in l], "applies istio/kafka-tls-client-identity/ before the Kafka clients"),
        ]:
            errs = probe(lambda rep, _label, *a: check_kafka_auth_lines(rep, *a), d, tl)
            report.check(any(want in e for e in errs), f"self-check: kind-up.sh with {what} is rejected", str(errs[:2]))
        log.unlink(missing_ok=True)
    before = len(report.errors)
    up, test, notes = printed_by.get("kind-up.sh", []), printed_by.get("kind-test.sh", []), NOTES.get("test-kafka-istio-mongo", "")
    check_kind_script_lines(report, up, test, test_hooks, notes)
    print(f"  the kind scripts' order, prerequisites and waits: {'ok' if len(report.errors) == before else 'FAILED'}")
    # The findings about the scripts, put back: each must be rejected.
    before = len(report.errors)
    moved = [l for l in up if not l.startswith("+ helm upgrade --install kiosk-filter")]
    at = next(i for i, l in enumerate(moved) if l.startswith("+ helm upgrade --install kiosk charts/"))
    moved.insert(at, next(l for l in up if l.startswith("+ helm upgrade --install kiosk-filter")))
    cases = [
        ("3: helm test --logs with Job hooks", up, [l + " --logs" if l.startswith("+ helm test") else l for l in test], notes, "without --logs"),
        ("3: no logs of the test pods", up, [l for l in test if " logs " not in l], notes, "prints the logs of test hook"),
        ("3: NOTES.txt telling to run helm test --logs", up, test, notes.replace("-n pipeline\n", "-n pipeline --logs\n"), "NOTES.txt tells"),
        ("6: the mesh settings installed after istiod", moved, test, notes, "before istiod starts"),
        ("6: the filter installed by tag", [l.replace("image.digest=", "image.tag=") for l in up], test, notes, "with the digest"),
        ("10: no python3 check", [l for l in up if l != "+ command -v python3"], test, notes, "command -v python3"),
        ("10: no wasm target check", [l for l in up if "wasm32-wasip1" not in l], test, notes, "wasm32-wasip1"),
        ("10: no wait for Kiali", [l for l in up if "kiali/kiali" not in l], test, notes, "waits for the Kiali CR"),
    ]
    for what, u, te, no, want in cases:
        errs = probe(lambda r, _label, *a: check_kind_script_lines(r, *a), u, te, test_hooks, no)
        report.check(any(want in e for e in errs), f"self-check: finding {what} is rejected", str(errs[:3]))
    print(f"  each finding about the kind scripts put back is rejected: {'ok' if len(report.errors) == before else 'FAILED'}")


def check_kafka_auth_lines(report: Report, default: list[str], tls: list[str]) -> None:
    """kind-up.sh installs what each way of supplying Kafka credentials needs: by default the
    filter with SASL and nothing of TLS client identity; with --kafka-auth tls the filter without
    SASL, the chart with tls users, and istio/kafka-tls-client-identity/ before the chart (the
    clients' DestinationRules must exist when they start), its sync waited for once the users are."""

    def first(lines, prefix):
        return next((i for i, l in enumerate(lines) if l.startswith(prefix)), None)

    apply_dir = f"+ kubectl apply -f {TLS_CLIENT_IDENTITY_DIR}/"
    for lines, mech, auth, applies in [(default, "SCRAM-SHA-512", "scram-sha-512", False), (tls, "none", "tls", True)]:
        mode = "--kafka-auth tls" if applies else "by default"
        filt = first(lines, "+ helm upgrade --install kiosk-filter charts/kiosk-filter")
        chart = first(lines, "+ helm upgrade --install kiosk charts/test-kafka-istio-mongo")
        report.check(filt is not None and f"kafkaAuth.mechanism={mech}" in lines[filt], f"kind-up.sh {mode} installs the kiosk-filter chart with kafkaAuth.mechanism={mech}",
                     lines[filt] if filt is not None else "no kiosk-filter install")
        report.check(chart is not None and f"kafka.authentication={auth}" in lines[chart], f"kind-up.sh {mode} installs the test chart with kafka.authentication={auth}",
                     lines[chart] if chart is not None else "no test chart install")
        applied = first(lines, apply_dir)
        if not applies:
            report.check(applied is None, f"kind-up.sh {mode} does not apply {TLS_CLIENT_IDENTITY_DIR}/ (the non-default alternative)")
            continue
        users = first(lines, "+ kubectl -n pipeline wait kafkatopic\\,kafkauser")  # as printf %q prints it
        sync = first(lines, "+ kubectl -n pipeline rollout status deployment/kiosk-kafka-tls-sync")
        report.check(None not in (applied, chart) and applied < chart, f"kind-up.sh {mode} applies {TLS_CLIENT_IDENTITY_DIR}/ before the Kafka clients", f"apply {applied}, chart {chart}")
        report.check(None not in (users, sync) and users < sync, f"kind-up.sh {mode} waits for the certificate sync once the KafkaUsers are ready", f"users {users}, sync {sync}")


def check_kind_script_lines(report: Report, up: list[str], test: list[str], hooks: list[dict], notes: str) -> None:
    """What the kind scripts do, read from the commands their --dry-run prints."""

    def first(lines, prefix):
        return next((i for i, l in enumerate(lines) if l.startswith(prefix)), None)

    for want, why in [("+ command -v python3", "the checks and kind-test.sh need it"),
                      ('+ test -d "$(rustc --print sysroot)/lib/rustlib/wasm32-wasip1"', "the filter is built for wasm32-wasip1")]:
        report.check(first(up, want) is not None, f"kind-up.sh checks a prerequisite first: `{want[2:]}`", why)
    push = first(up, "+ docker push localhost:5001/kiosk/kiosk-filter")
    filt = first(up, "+ helm upgrade --install kiosk-filter charts/kiosk-filter")
    istiod = first(up, "+ helm upgrade --install istiod")
    chart = first(up, "+ helm upgrade --install kiosk charts/test-kafka-istio-mongo")
    report.check(None not in (push, filt) and push < filt and "image.digest=" in up[filt],
                 "kind-up.sh installs the kiosk-filter chart with the digest of the module it pushed", up[filt] if filt is not None else "no kiosk-filter install")
    report.check(None not in (filt, istiod, chart) and filt < istiod < chart,
                 "kind-up.sh installs the mesh settings (kiosk-filter chart) before istiod starts, and istiod before any Kafka client",
                 f"order: kiosk-filter {filt}, istiod {istiod}, test chart {chart}")
    check = next((i for i, l in enumerate(up) if "get pods -l kiosk.io/kafka-client=true -o json | python3" in l), None)
    report.check(None not in (check, chart) and check > chart, "kind-up.sh checks that every Kafka client's sidecar got the filter's extraStatTags")
    kiali = first(up, "+ kubectl apply -f istio/kiali.yaml")
    waits = [first(up, "+ kubectl -n istio-system wait kiali/kiali"), first(up, "+ kubectl -n istio-system rollout status deployment/kiali")]
    report.check(kiali is not None and None not in waits and all(w > kiali for w in waits), "kind-up.sh waits for the Kiali CR to be reconciled and Kiali to be ready")
    not_pods = sorted(f"{h['kind']}/{h['metadata']['name']}" for h in hooks if h.get("kind") != "Pod")
    helm_test = [l for l in test if l.startswith("+ helm test")]
    report.check(bool(helm_test) and (not not_pods or not any("--logs" in l for l in helm_test)),
                 "kind-test.sh runs `helm test` without --logs (every released Helm fails it for test hooks that are not Pods, helm/helm#11236)",
                 f"{helm_test} with hooks {not_pods}")
    for h in hooks:
        component = (((h.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels", {}).get("app.kubernetes.io/component")
        report.check(any(l.startswith("+ kubectl") and " logs " in l and f"app.kubernetes.io/component={component}" in l for l in test),
                     f"kind-test.sh prints the logs of test hook {h['kind']}/{h['metadata']['name']} (component {component})")
    usage = [l.strip() for l in notes.splitlines() if l.strip().startswith("helm test")]
    report.check(bool(usage) and (not not_pods or not any("--logs" in l for l in usage)), "the test chart's NOTES.txt tells to run `helm test` without --logs", str(usage))


# ---------------------------------------------------------------------------------------
# The schema registry: its access policy, storage and the services' URL; the registration
# program run against a stand-in of the registry's API and against Apicurio Registry (issue 17)

SCHEMAS_DIR = ROOT / "schemas"  # the mock schema: the one source the chart's files/schemas/ copies
CHART_SCHEMAS_DIR = ROOT / "charts/test-kafka-istio-mongo/files/schemas"
CCOMPAT = "/apis/ccompat/v7"  # Apicurio Registry's Confluent-compatible API
SCHEMA_REGISTRY_IMAGE = "apicurio/apicurio-registry"
# The kiosk services' subcommands that read schemas, and the one that writes them.
SCHEMA_READER_PROGRAMS = {"producer", "mirror", "verify", "mongo-sink"}
SCHEMA_WRITER_PROGRAMS = {"producer"}
APICURIO_VERSION = "3.3.3"
# Mesh identities no rule may admit: another namespace's workload, the namespace's default
# service account, and a plaintext caller (no identity).
OUTSIDER_PRINCIPALS = ["cluster.local/ns/default/sa/default", "cluster.local/ns/pipeline/sa/default", None]


def trust_domain() -> str:
    values = yaml.safe_load(ISTIOD_VALUES.read_text()) or {}
    return (values.get("meshConfig") or {}).get("trustDomain") or "cluster.local"


def istio_match(pattern: str, value: str | None) -> bool:
    """Istio's string match of AuthorizationPolicy values: `*` any non-empty value, `x*` prefix,
    `*x` suffix, else exact (security/v1beta1 authorization_policy.proto)."""
    if value in (None, ""):
        return False
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


SOURCE_FIELDS = {"principals", "notPrincipals", "namespaces", "notNamespaces"}
OPERATION_FIELDS = {"methods", "notMethods", "paths", "notPaths"}


def principal_namespace(principal: str | None) -> str | None:
    m = re.fullmatch(r"[^/]+/ns/([^/]+)/sa/[^/]+", principal or "")
    return m.group(1) if m else None


def rule_matches(rule: dict, principal: str | None, method: str, path: str) -> tuple[bool, list[str]]:
    """Whether one AuthorizationPolicy rule matches a request from `principal` (None: plaintext),
    and the fields this evaluator does not model (then it is not trusted)."""
    unknown = [f"rule field {k}" for k in rule if k not in ("from", "to", "when")]
    if rule.get("when"):
        unknown.append("when")

    def all_of(fields: dict, known: set[str], value_of) -> bool:
        unknown.extend(f"field {k}" for k in fields if k not in known)
        ok = True
        for k, values in fields.items():
            if k not in known:
                continue
            v = value_of(k.removeprefix("not").lower())
            hit = any(istio_match(p, v) for p in values or [])
            ok &= (not hit) if k.startswith("not") else hit
        return ok

    src_ok = True
    if rule.get("from") is not None:
        values = {"principals": principal, "namespaces": principal_namespace(principal)}
        src_ok = any(all_of(f.get("source") or {}, SOURCE_FIELDS, values.get) for f in rule["from"])
    op_ok = True
    if rule.get("to") is not None:
        values = {"methods": method, "paths": path}
        op_ok = any(all_of(t.get("operation") or {}, OPERATION_FIELDS, values.get) for t in rule["to"])
    return src_ok and op_ok, unknown


def policies_for(objects: list[dict], pod: Pod, root: str = "istio-system") -> list[dict]:
    """The AuthorizationPolicies that apply to `pod`: its namespace's with a matching selector or
    none, and the root namespace's without one."""
    out = []
    for o in objects:
        if o.get("kind") != "AuthorizationPolicy":
            continue
        ns, spec = o["metadata"].get("namespace"), o.get("spec") or {}
        sel = spec.get("selector")
        if (ns == pod.namespace and (not sel or selector_matches(sel, pod.labels))) or (ns == root and not sel):
            out.append(o)
    return out


def istio_authorizes(policies: list[dict], principal: str | None, method: str, path: str) -> tuple[bool, list[str]]:
    """Istio's decision for one request (CUSTOM, then DENY, then ALLOW: allowed when no ALLOW
    policy applies or one of its rules matches), and what could not be evaluated."""
    unknown = []
    denied = allowed = False
    allows = [p for p in policies if (p.get("spec") or {}).get("action", "ALLOW") == "ALLOW"]
    for p in policies:
        action = (p.get("spec") or {}).get("action", "ALLOW")
        extra = [k for k in (p.get("spec") or {}) if k not in ("selector", "action", "rules")]
        unknown.extend(f"{ident(p)}: {k}" for k in extra)
        if action not in ("ALLOW", "DENY"):
            unknown.append(f"{ident(p)}: action {action}")
            continue
        for r in (p.get("spec") or {}).get("rules") or []:
            hit, u = rule_matches(r, principal, method, path)
            unknown.extend(f"{ident(p)}: {x}" for x in u)
            if hit and action == "DENY":
                denied = True
            if hit and action == "ALLOW":
                allowed = True
    if denied:
        return False, unknown
    return (allowed if allows else True), unknown


# The ingress gateway's ServiceAccount: the istio/gateway chart names it after its release
# (`gateway.serviceAccountName`: serviceAccount.name, else the release name), and
# scripts/kind-up.sh installs release istio-ingressgateway in istio-ingress.
INGRESS_SERVICE_ACCOUNT = "istio-ingressgateway"
# Requests the REST entry serves besides producing (Strimzi Kafka Bridge's HTTP API): topic
# and partition metadata, the consumer API (which reads Kafka through the Bridge), OpenAPI.
# (POST /topics/<topic>/partitions/<n> produces too: the gateway routes it, as /topics/.)
REST_NOT_PRODUCE = [("GET", "/topics"), ("GET", "/topics/events"), ("GET", "/topics/events/partitions/0"),
                    ("POST", "/consumers/probe"), ("GET", "/consumers/probe/instances/x/records"),
                    ("DELETE", "/consumers/probe/instances/x"), ("GET", "/openapi"), ("PUT", "/topics/events")]


def rest_entries(objects: list[dict]) -> list[tuple[str, Pod, int, set[tuple[str, str]]]]:
    """The REST entry's pods (a KafkaBridge's, or `kiosk rest`'s): (what, pod, HTTP port, the
    (Service, namespace) pairs that reach it)."""
    out = []
    pods = {p.source: p for p in pods_of(objects)}
    for o in objects:
        ns, name = o["metadata"].get("namespace"), o["metadata"]["name"]
        if o.get("kind") == "KafkaBridge":
            port = ((o.get("spec") or {}).get("http") or {}).get("port", 8080)
            out.append((f"KafkaBridge {name}", pods[f"KafkaBridge {name}"], port, {(f"{name}-bridge-service", ns)}))
        elif o.get("kind") == "Deployment":
            for c in containers(pod_templates(o)[0][1]):
                if kiosk_program(c) != "rest":
                    continue
                pod = pods[f"Deployment {name}"]
                listen = arg_value([str(a) for a in c.get("args") or []], "--listen") or "0.0.0.0:8080"
                port = int(listen.rsplit(":", 1)[1])
                svcs = {(s["metadata"]["name"], ns) for s in objects if s.get("kind") == "Service" and s["metadata"].get("namespace") == ns
                        and s["spec"].get("selector") and selector_matches({"matchLabels": s["spec"]["selector"]}, pod.labels)}
                out.append((f"Deployment {name} (kiosk rest)", pod, port, svcs))
    return out


def check_rest_access(report: Report, label: str, objects: list[dict], injected: set[str]) -> None:
    """Who may post to the REST entry (issue 28, item 1): the JWT is checked at the ingress
    gateway only, so the REST entry's own sidecar must refuse every caller but the ones the
    design has: the ingress gateway's identity when the bundle has a Gateway, and a Job that
    posts straight to the REST entry's Service (the producer without a gateway). Evaluated as
    Istio would, with the pipeline's and the cluster's other identities and a plaintext caller:
    exactly those callers may POST /topics/<topic>; nobody may use the rest of the Bridge's API
    (its consumers read Kafka); it is in the mesh, its port captured and mTLS-only."""
    td = trust_domain()
    principal = lambda sa: f"{td}/ns/{sa[0]}/sa/{sa[1]}"  # noqa: E731
    sas = {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects if o.get("kind") == "ServiceAccount"}
    strimzi_sas = {service_account_of(o, None) for o in objects if o.get("kind") in ("KafkaConnect", "KafkaBridge")}
    gateway = principal((INGRESS_PODS[0], INGRESS_SERVICE_ACCOUNT))
    has_gateway = any(o.get("kind") == "Gateway" for o in objects)
    for what, pod, port, services in rest_entries(objects):
        who = f"{label}: the REST entry ({what})"
        callers: dict[str, str] = {gateway: "the ingress gateway"} if has_gateway else {}
        for o in objects:
            if o.get("kind") != "Job":
                continue
            podspec = pod_templates(o)[0][1]
            for c in containers(podspec):
                url = arg_value([str(a) for a in c.get("args") or []], "--url") or ""
                host = (urllib.parse.urlsplit(url).hostname or "").split(".")
                if len(host) >= 2 and (host[0], host[1]) in services:
                    callers[principal(service_account_of(o, podspec))] = f"{ident(o)} posts to {url}"
        report.check(pod.sidecar(injected), f"{who}: has a sidecar (its AuthorizationPolicy is enforced there)", f"namespace {pod.namespace} not injected or injection off")
        report.check(pod.captured(port), f"{who}: its sidecar captures port {port}", "excluded from inbound capture: no policy would apply")
        report.check(mtls_mode(objects, pod, port) == "STRICT", f"{who}: port {port} takes Istio mTLS only (STRICT: every caller has an identity)",
                     f"mode {mtls_mode(objects, pod, port)}")
        policies = policies_for(objects, pod)
        report.check(any(((p.get("spec") or {}).get("action", "ALLOW")) == "ALLOW" for p in policies),
                     f"{who}: an ALLOW AuthorizationPolicy selects its pods (without one any meshed pod may post without a token)",
                     str([ident(p) for p in policies]))
        report.check(not has_gateway or gateway in callers, f"{who}: with a Gateway, the ingress gateway's identity {gateway} is a caller")
        everyone = sorted({gateway} | set(callers) | {principal(sa) for sa in sas | strimzi_sas}) + OUTSIDER_PRINCIPALS
        unknown: set[str] = set()
        may_post, extra = set(), []
        for p in everyone:
            ok, u = istio_authorizes(policies, p, "POST", "/topics/events")
            unknown.update(u)
            if ok:
                may_post.add(p)
            for method, path in REST_NOT_PRODUCE:
                ok, u = istio_authorizes(policies, p, method, path)
                unknown.update(u)
                if ok:
                    extra.append(f"{p or '(plaintext)'} {method} {path}")
        named = {p for pol in policies for r in (pol.get("spec") or {}).get("rules") or [] for f in r.get("from") or []
                 for k in ("principals", "notPrincipals") for p in (f.get("source") or {}).get(k) or []}
        report.check(named <= set(callers), f"{who}: its policies name no principal but its callers'", str(sorted(named - set(callers))))
        report.check(not unknown, f"{who}: its AuthorizationPolicies use only what this check evaluates", str(sorted(unknown)[:5]))
        report.check(may_post == set(callers), f"{who}: only its callers may post: {sorted(f'{p} ({w})' for p, w in callers.items())}",
                     f"allowed to post: {sorted(map(str, may_post))}")
        report.check(not extra, f"{who}: nobody may use the rest of its API (topic metadata, consumers, OpenAPI)", str(extra[:5]))


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


def kiosk_program(c: dict) -> str | None:
    """The kiosk subcommand a container runs (its first argument), if it runs the kiosk image."""
    args = c.get("args") or []
    return args[0] if args and "kiosk" in (c.get("image") or "") else None


def service_account_of(obj: dict, podspec: dict | None) -> tuple[str, str]:
    ns = obj["metadata"].get("namespace")
    if podspec is not None:
        return ns, podspec.get("serviceAccountName") or "default"
    suffix = {"KafkaBridge": "bridge", "KafkaConnect": "connect"}[obj["kind"]]
    return ns, f"{obj['metadata']['name']}-{suffix}"


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
    """(Job, pod spec, container) of each schema registration Job: a container given the
    subject to register (KIOSK_SCHEMA_SUBJECT)."""
    out = []
    for o in objects:
        if o.get("kind") != "Job":
            continue
        _, podspec = pod_templates(o)[0]
        for c in containers(podspec):
            if any(e.get("name") == "KIOSK_SCHEMA_SUBJECT" for e in c.get("env") or []):
                out.append((o, podspec, c))
    return out


def mounted_configmap_file(objects: list[dict], podspec: dict, container: dict, path: str) -> tuple[dict, str] | None:
    """(ConfigMap, key) of the file at `path` in the container, if a ConfigMap volume holds it."""
    vols = {v["name"]: v for v in podspec.get("volumes") or []}
    for m in container.get("volumeMounts") or []:
        mp = m["mountPath"].rstrip("/") + "/"
        if not path.startswith(mp) or "subPath" in m:
            continue
        key = path[len(mp):]
        cm_name = ((vols.get(m["name"]) or {}).get("configMap") or {}).get("name")
        cm = next((o for o in objects if o.get("kind") == "ConfigMap" and o["metadata"]["name"] == cm_name), None)
        if cm is not None and key in (cm.get("data") or {}):
            return cm, key
    return None


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
    subject = next((e.get("value") for _, _, c in jobs for e in c.get("env") or [] if e["name"] == "KIOSK_SCHEMA_SUBJECT"), "events-value")
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
    cmd = (c.get("command") or []) + (c.get("args") or [])
    program = next((a for a in cmd if a.endswith(".py")), None)
    report.check(program is not None and mounted_configmap_file(objects, podspec, c, program) is not None,
                 f"{jwho}: its program {program} is the chart's (a mounted ConfigMap)")
    for var, name in (("KIOSK_SCHEMA", "events-value.v1.schema.json"), ("KIOSK_SCHEMA_COMPATIBLE", "events-value.v2-compatible.schema.json"),
                      ("KIOSK_SCHEMA_INCOMPATIBLE", "events-value.v3-incompatible.schema.json")):
        found = mounted_configmap_file(objects, podspec, c, je.get(var) or "")
        text = found[0]["data"][found[1]] if found else None
        report.check(text is not None and text.encode() == (SCHEMAS_DIR / name).read_bytes(),
                     f"{jwho}: {var} is schemas/{name}, byte for byte", f"{je.get(var)!r}: {'not in a mounted ConfigMap' if text is None else 'differs'}")


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


def backward_compatible(old: dict, new: dict) -> list[str]:
    """Why a JSON Schema `new` cannot read what `old` allowed (empty: compatible), as Apicurio
    Registry 3.3.3 judges the changes the mock schema exercises (its JsonSchemaDiffLibrary): a
    changed type, a required property added, an enum narrowed, a property added to an open content
    model (a record valid under `old` may hold it with any value: "Object type property schemas
    narrowed"), a property removed from a closed one. Any other change of a validating keyword
    counts as incompatible. A model for the stand-in, compared with the registry itself where
    it is installed."""
    out = []
    annotations = {"$schema", "$id", "title", "description", "default", "examples"}

    def walk(a, b, at):
        if not isinstance(a, dict) or not isinstance(b, dict):
            if a != b:
                out.append(f"{at}: changed")
            return
        if a.get("type") != b.get("type"):
            out.append(f"{at}: type {a.get('type')} -> {b.get('type')}")
            return
        if set(b.get("required") or []) - set(a.get("required") or []):
            out.append(f"{at}: required {sorted(set(b.get('required') or []) - set(a.get('required') or []))} added")
        if "enum" in b and not set(map(json.dumps, a.get("enum", []))) <= set(map(json.dumps, b["enum"])):
            out.append(f"{at}: enum narrowed")
        pa, pb = a.get("properties") or {}, b.get("properties") or {}
        a_open, b_open = a.get("additionalProperties", True) is not False, b.get("additionalProperties", True) is not False
        for name in sorted(set(pb) - set(pa)):
            if a_open:
                out.append(f"{at}/properties/{name}: added to an open content model (Object type property schemas narrowed)")
        for name in sorted(set(pa) - set(pb)):
            if not b_open:
                out.append(f"{at}/properties/{name}: removed from a closed content model")
        if a_open and not b_open:
            out.append(f"{at}: content model closed")
        for name in sorted(set(pa) & set(pb)):
            walk(pa[name], pb[name], f"{at}/properties/{name}")
        for k in sorted((set(a) | set(b)) - annotations - {"type", "required", "enum", "properties", "additionalProperties"}):
            if a.get(k) != b.get(k):
                out.append(f"{at}: {k} {a.get(k)} -> {b.get(k)}")

    walk(old, new, "")
    return out


class FakeSchemaRegistry:
    """Just enough of a Confluent-compatible registry (Apicurio Registry's /apis/ccompat/v7, as
    measured from 3.3.3): subject config, registration (content ids, the same schema the same id,
    409 for an incompatible one), look-up, schema by id, compatibility checks. `starting`: that
    many requests answered 503 first, as the mesh answers while the registry starts; `enforce`
    False: no compatibility rule (every version accepted); `judge`: the compatibility judgement;
    `deny`: methods answered 403 as the registry's sidecar would."""

    def __init__(self, starting=0, enforce=True, judge=backward_compatible, deny=()):
        import http.server
        import threading

        self.calls: list[tuple[str, str, object]] = []
        self.config: dict[str, str] = {}
        self.contents: list[str] = []  # content id - 1 -> canonical schema
        self.raw: list[str] = []  # content id - 1 -> the schema as registered
        self.subjects: dict[str, list[int]] = {}
        self.starting, self.enforce, self.judge, self.deny = starting, enforce, judge, set(deny)
        reg = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, code, body):
                data = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json" if not isinstance(body, str) else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_call(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                reg.calls.append((self.command, self.path, body))
                if reg.starting > 0:
                    reg.starting -= 1
                    return self.reply(503, "no healthy upstream")
                if self.command in reg.deny:
                    return self.reply(403, "RBAC: access denied")
                path = self.path.split("?")[0]
                if not path.startswith(CCOMPAT + "/"):
                    return self.reply(404, {"error_code": 404, "message": "not found"})
                path = path[len(CCOMPAT):]
                code, answer = reg.route(self.command, path, body)
                return self.reply(code, answer)

            do_GET = do_POST = do_PUT = do_DELETE = handle_call

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def canonical(self, schema: str) -> str:
        return json.dumps(json.loads(schema), sort_keys=True)

    def route(self, method: str, path: str, body):
        m = re.fullmatch(r"/config/([^/]+)", path)
        if m and method == "PUT":
            level = (body or {}).get("compatibility")
            if level not in ("BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"):
                return 422, {"error_code": 42203, "message": "Invalid compatibility level"}
            self.config[m.group(1)] = level
            return 200, {"compatibility": level, "normalize": False}
        if m and method == "GET":
            level = self.config.get(m.group(1))
            return (200, {"compatibilityLevel": level}) if level else (404, {"error_code": 40408, "message": "no config"})
        m = re.fullmatch(r"/subjects/([^/]+)/versions", path)
        if m and method == "POST":
            return self.register(m.group(1), body)
        if m and method == "GET":
            versions = self.subjects.get(m.group(1))
            return (200, list(range(1, len(versions) + 1))) if versions else (404, {"error_code": 40401, "message": "Subject not found."})
        m = re.fullmatch(r"/subjects/([^/]+)", path)
        if m and method == "POST":
            c = self.canonical(body["schema"])
            for i, cid in enumerate(self.subjects.get(m.group(1), [])):
                if self.contents[cid - 1] == c:
                    return 200, {"subject": m.group(1), "version": i + 1, "id": cid, "schema": body["schema"]}
            return 404, {"error_code": 40403, "message": "Schema not found"}
        m = re.fullmatch(r"/schemas/ids/(\d+)", path)
        if m and method == "GET":
            cid = int(m.group(1))
            return (200, {"schema": self.raw[cid - 1]}) if 0 < cid <= len(self.contents) else (404, {"error_code": 40403, "message": "Schema not found"})
        m = re.fullmatch(r"/compatibility/subjects/([^/]+)/versions/latest", path)
        if m and method == "POST":
            return 200, {"is_compatible": not self.incompatible(m.group(1), body["schema"])}
        return 404, {"error_code": 404, "message": f"no route {method} {path}"}

    def incompatible(self, subject: str, schema: str) -> list[str]:
        versions = self.subjects.get(subject) or []
        # Apicurio's default: no compatibility rule until one is set (NONE).
        if not self.enforce or not versions or self.config.get(subject, "NONE") == "NONE":
            return []
        return self.judge(json.loads(self.raw[versions[-1] - 1]), json.loads(schema))

    def register(self, subject: str, body):
        if not isinstance(body, dict) or body.get("schemaType") != "JSON":
            return 422, {"error_code": 42201, "message": "Failed to discover artifact type from content."}
        try:
            c = self.canonical(body["schema"])
        except ValueError:
            return 422, {"error_code": 42201, "message": "Invalid schema"}
        versions = self.subjects.setdefault(subject, [])
        for cid in versions:
            if self.contents[cid - 1] == c:
                return 200, {"id": cid}
        why = self.incompatible(subject, body["schema"])
        if why:
            return 409, {"error_code": 409, "message": f"Incompatible artifact: {subject} [JSON], list of diff types: {why}"}
        if c in self.contents:
            cid = self.contents.index(c) + 1
        else:
            self.contents.append(c)
            self.raw.append(body["schema"])
            cid = len(self.contents)
        versions.append(cid)
        return 200, {"id": cid}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def registration_inputs(rendered: list[dict]) -> tuple[str, dict[str, str], dict[str, str]] | None:
    """The registration Job's program, its schema files (name -> text) and its environment, as
    the chart renders them."""
    jobs = registration_jobs(rendered)
    if not jobs:
        return None
    job, podspec, c = jobs[0]
    cmd = (c.get("command") or []) + (c.get("args") or [])
    program_path = next((a for a in cmd if a.endswith(".py")), "")
    found = mounted_configmap_file(rendered, podspec, c, program_path)
    env = {e["name"]: e.get("value") for e in c.get("env") or []}
    schemas = {}
    for var in ("KIOSK_SCHEMA", "KIOSK_SCHEMA_COMPATIBLE", "KIOSK_SCHEMA_INCOMPATIBLE"):
        f = mounted_configmap_file(rendered, podspec, c, env.get(var) or "")
        if f:
            schemas[var] = f[0]["data"][f[1]]
    if not found or len(schemas) != 3:
        return None
    return found[0]["data"][found[1]], schemas, env


def run_registration(program: str, schemas: dict[str, str], env: dict[str, str], url: str, wait: int = 20) -> tuple[int, str]:
    """Run the registration program as the Job would, its registry at `url`: (exit status, output)."""
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "schema_registration.py").write_text(program)
        run_env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "HOME")}
        run_env.update({k: v for k, v in env.items() if v is not None})
        for var, text in schemas.items():
            f = t / Path(env.get(var) or f"{var}.json").name
            f.write_text(text)
            run_env[var] = str(f)
        path = urllib_path(env.get("SCHEMA_REGISTRY_URL") or "")
        run_env.update(SCHEMA_REGISTRY_URL=url + path, KIOSK_WAIT_SECS=str(wait), PYTHONDONTWRITEBYTECODE="1")
        try:
            r = subprocess.run([sys.executable, str(t / "schema_registration.py")], env=run_env, capture_output=True, text=True, timeout=wait + 60)
        except subprocess.TimeoutExpired as e:
            return 124, f"timed out: {e}"
        return r.returncode, r.stdout + r.stderr


def urllib_path(url: str) -> str:
    m = re.match(r"^https?://[^/]+(/.*)?$", url)
    return (m.group(1) or "") if m else ""


def check_registration_run(report: Report, label: str, program: str, schemas: dict[str, str], env: dict[str, str]) -> None:
    """The registration program against an honest stand-in (answering 503 while it "starts"): it
    sets the level, registers v1 only, reads it back by id, has v2 judged compatible and v3 both
    judged incompatible and refused (409), and exits 0; a rerun (post-upgrade) changes nothing.
    Against a registry that enforces nothing, that judges v2 incompatible, that refuses its
    writes (403) or that never answers, it exits non-zero."""
    subject = env.get("KIOSK_SCHEMA_SUBJECT") or "events-value"
    level = env.get("KIOSK_SCHEMA_COMPATIBILITY") or "BACKWARD"
    api = urllib_path(env.get("SCHEMA_REGISTRY_URL") or "")
    report.check(api == CCOMPAT, f"{label}: the Job's registry URL is the Confluent-compatible API ({CCOMPAT})", api)
    canon = {var: json.dumps(json.loads(text), sort_keys=True) for var, text in schemas.items()}
    reg = FakeSchemaRegistry(starting=3)
    try:
        rc, out = run_registration(program, schemas, env, reg.url)
        first_run = len(reg.calls)
        rc2, out2 = run_registration(program, schemas, env, reg.url)
    finally:
        reg.close()
    report.check(rc == 0, f"{label}: the registration program succeeds against the stand-in registry (after 503s while it starts)", out[-600:])
    first = [(m, p.split("?")[0].removeprefix(api), json.dumps(json.loads(b["schema"]), sort_keys=True) if isinstance(b, dict) and "schema" in b else b)
             for m, p, b in reg.calls[:first_run]]

    def index(method, path, body=None):
        return next((i for i, c in enumerate(first) if c[0] == method and c[1] == path and (body is None or c[2] == body)), None)

    set_level = index("PUT", f"/config/{subject}", {"compatibility": level})
    reg_v1 = index("POST", f"/subjects/{subject}/versions", canon["KIOSK_SCHEMA"])
    compat_v2 = index("POST", f"/compatibility/subjects/{subject}/versions/latest", canon["KIOSK_SCHEMA_COMPATIBLE"])
    reg_v3 = index("POST", f"/subjects/{subject}/versions", canon["KIOSK_SCHEMA_INCOMPATIBLE"])
    report.check(None not in (set_level, reg_v1) and set_level < reg_v1, f"{label}: it sets {subject}'s compatibility to {level} before registering", str(first[:6]))
    report.check(reg_v1 is not None and index("GET", "/schemas/ids/1") is not None, f"{label}: it registers v1 and reads it back by its id")
    report.check(None not in (reg_v1, compat_v2) and compat_v2 > reg_v1, f"{label}: it has v2 checked against the latest version (POST /compatibility/...)")
    report.check(None not in (reg_v1, reg_v3) and reg_v3 > reg_v1 and "409" in out, f"{label}: it tries to register v3 and sees it refused (409)", out[-300:])
    report.check(reg.subjects.get(subject) == [1] and reg.config.get(subject) == level,
                 f"{label}: afterwards {subject} holds v1 alone, compatibility {level}", f"versions {reg.subjects}, config {reg.config}")
    report.check(rc2 == 0 and reg.subjects.get(subject) == [1], f"{label}: run again (post-upgrade) it succeeds and changes nothing", out2[-300:])
    bad = [
        ("a registry that enforces no compatibility (v3 accepted)", dict(enforce=False), "v3-incompatible.schema.json must not be"),
        ("a registry judging v2 incompatible", dict(judge=lambda a, b: ["everything"]), "must be"),
        ("writes refused by the registry's sidecar (403)", dict(deny={"POST", "PUT"}), "403"),
    ]
    for what, kw, want in bad:
        reg = FakeSchemaRegistry(**kw)
        try:
            rc, out = run_registration(program, schemas, env, reg.url)
        finally:
            reg.close()
        report.check(rc != 0 and want in out, f"{label}: against {what} it fails, saying so", f"exit {rc}: {out[-300:]}")
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()
    rc, out = run_registration(program, schemas, env, closed, wait=3)
    report.check(rc != 0 and "did not answer" in out, f"{label}: with no registry answering it fails once its wait is over", f"exit {rc}: {out[-300:]}")


def apicurio_install() -> tuple[Path, str] | None:
    """Apicurio Registry's runnable (scripts/setup.sh unpacks it into $KIOSK_CACHE) and a Java 21+."""
    root = Path(os.environ.get("KIOSK_CACHE") or Path.home() / ".cache/kiosk") / f"apicurio-registry-{APICURIO_VERSION}"
    if not (root / "quarkus-run.jar").is_file():
        return None
    candidates = [os.environ.get("KIOSK_REGISTRY_JAVA") or ""] + sorted((str(p) for p in Path("/usr/lib/jvm").glob("temurin-*/bin/java")), reverse=True) + [shutil.which("java") or ""]
    for java in filter(None, candidates):
        try:
            r = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        m = re.search(r'version "(\d+)', r.stderr)
        if m and int(m.group(1)) >= 21:
            return root, java
    return None


def apicurio_checks(report: Report, rendered: list[dict]) -> None:
    """The registration program against Apicurio Registry itself, when installed here: H2 in a
    file as the chart runs it; install, upgrade (a rerun) and a restart of the registry keep the
    schema and its id; the stand-in's judgement of an open content model matches the registry's."""
    found = apicurio_install()
    inputs = registration_inputs(rendered)
    if found is None or inputs is None:
        print(f"  Apicurio Registry {APICURIO_VERSION}: skipped ({'not installed (scripts/setup.sh) or no Java 21+' if found is None else 'no registration Job rendered'})")
        return
    root, java = found
    program, schemas, env = inputs
    import socket
    import time
    import urllib.request

    def free_port():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    label = f"Apicurio Registry {APICURIO_VERSION} ({root})"
    with tempfile.TemporaryDirectory() as tmp:
        http, mgmt = free_port(), free_port()
        run_env = dict(os.environ, QUARKUS_HTTP_PORT=str(http), QUARKUS_MANAGEMENT_PORT=str(mgmt), QUARKUS_HTTP_HOST="127.0.0.1",
                       QUARKUS_MANAGEMENT_HOST="127.0.0.1", APICURIO_STORAGE_KIND="sql", APICURIO_STORAGE_SQL_KIND="h2",
                       APICURIO_DATASOURCE_URL=f"jdbc:h2:file:{tmp}/registry")

        def start():
            log = open(Path(tmp) / "registry.log", "ab")
            p = subprocess.Popen([java, "-Xmx384m", "-jar", str(root / "quarkus-run.jar")], env=run_env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and p.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{mgmt}/health/ready", timeout=2) as r:
                        if r.status == 200:
                            return p
                except OSError:
                    pass
                time.sleep(0.5)
            return p

        def stop(p):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

        url = f"http://127.0.0.1:{http}"
        p = start()
        try:
            ready = report.check(p.poll() is None, f"{label}: starts (H2 in a file, as the chart runs it)",
                                 (Path(tmp) / "registry.log").read_text(errors="replace")[-600:])
            if ready:
                rc, out = run_registration(program, schemas, env, url, wait=60)
                report.check(rc == 0 and "refused (409)" in out, f"{label}: the registration program succeeds: v1 registered, v2 compatible, v3 refused 409", out[-600:])
                first_id = re.findall(r"ready, schema id (\d+)", out)
                rc, out = run_registration(program, schemas, env, url, wait=60)
                report.check(rc == 0 and re.findall(r"ready, schema id (\d+)", out) == first_id, f"{label}: run again (post-upgrade) it succeeds, same id {first_id}", out[-400:])
                # v1 with an open content model: the registry refuses v2, as the stand-in's judgement says.
                v1 = json.loads(schemas["KIOSK_SCHEMA"])
                v1.pop("additionalProperties", None)
                open_env = dict(env, KIOSK_SCHEMA_SUBJECT="open-model-value")
                rc, out = run_registration(program, dict(schemas, KIOSK_SCHEMA=json.dumps(v1)), open_env, url, wait=60)
                judged = backward_compatible(v1, json.loads(schemas["KIOSK_SCHEMA_COMPATIBLE"]))
                report.check(rc != 0 and "is_compatible" in out and bool(judged),
                             f"{label}: with v1 an open content model it refuses v2, as the stand-in judges ({judged[:1]})", out[-400:])
        finally:
            stop(p)
        if ready:
            p = start()
            try:
                rc, out = run_registration(program, schemas, env, url, wait=90)
                report.check(rc == 0 and re.findall(r"ready, schema id (\d+)", out) == first_id,
                             f"{label}: restarted on the same H2 file, the schema keeps its id {first_id}", out[-400:])
            finally:
                stop(p)
    print(f"  Apicurio Registry {APICURIO_VERSION} ({java}): the registration program run against it, restarted on its H2 file")


def kind_up_timeout_minutes() -> int | None:
    text = (ROOT / "scripts/kind-up.sh").read_text().replace("\\\n", " ")
    line = next((l for l in text.splitlines() if "helm upgrade --install kiosk charts/test-kafka-istio-mongo" in l), "")
    m = re.search(r"--timeout[ =](\d+)m", line)
    return int(m.group(1)) if m else None


def schema_registration_checks(report: Report, rendered: list[dict]) -> None:
    """The registration program, as rendered, run against the stand-in (and its doctored
    versions), then against Apicurio Registry where installed; kind-up.sh waits long enough."""
    check_schema_files(report)
    inputs = registration_inputs(rendered)
    if not report.check(inputs is not None, "charts/test-kafka-istio-mongo: the schema registration Job's program and schemas are rendered ConfigMaps"):
        return
    program, schemas, env = inputs
    check_registration_run(report, "schema registration program", program, schemas, env)
    job = registration_jobs(rendered)[0][0]
    deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
    minutes = kind_up_timeout_minutes()
    report.check(deadline is not None and minutes is not None and minutes * 60 > deadline,
                 f"scripts/kind-up.sh waits longer for the chart ({minutes} min) than its registration hook may run ({deadline} s)",
                 "Helm waits for post-install hooks within --timeout (default 5 min)")
    apicurio_checks(report, rendered)


def rest_access_self_checks(report: Report, bundle: list[dict], gatewayless: list[dict], injected: set[str], plain: list[dict], applied: set[str]) -> None:
    """Each way the REST entry could take a post from another meshed pod than the gateway (issue
    28, item 1, put back among them), put into a copy of the kind install (and of the install
    without a Gateway, where the producer posts straight to it): check_rest_access must reject
    it; and the plain policy the local mesh reads must equal the chart's."""

    def find(b, kind, name):
        return next(o for o in b if o.get("kind") == kind and o["metadata"]["name"] == name)

    def policy(b, name="kiosk-rest-access"):
        return find(b, "AuthorizationPolicy", name)["spec"]

    def principals(b, name="kiosk-rest-access"):
        return policy(b, name)["rules"][0]["from"][0]["source"]["principals"]

    producer = "cluster.local/ns/pipeline/sa/kiosk-test-producer"
    bridge_pod = lambda b: find(b, "KafkaBridge", "kiosk")["spec"]["template"]["pod"]["metadata"]  # noqa: E731
    cases = [
        ("the install as it is", bundle, lambda b: None, None),
        ("28: no AuthorizationPolicy selecting the Bridge's pods (any meshed pod posts without a token)", bundle,
         lambda b: b.remove(find(b, "AuthorizationPolicy", "kiosk-rest-access")), "an ALLOW AuthorizationPolicy selects its pods"),
        ("the producer among the callers (it posts through the gateway)", bundle, lambda b: principals(b).append(producer), "only its callers may post"),
        ("the mirror among the callers", bundle, lambda b: principals(b).append("cluster.local/ns/pipeline/sa/kiosk-mirror"), "only its callers may post"),
        ("callers by namespace (pipeline)", bundle, lambda b: policy(b)["rules"][0]["from"][0].__setitem__("source", {"namespaces": ["pipeline", "istio-ingress"]}),
         "only its callers may post"),
        ("the gateway's service account misspelt", bundle, lambda b: principals(b).__setitem__(0, "cluster.local/ns/istio-ingress/sa/istio-ingress-gateway"),
         "only its callers may post"),
        ("another cluster's workload named", bundle, lambda b: principals(b).append("cluster.local/ns/elsewhere/sa/client"), "name no principal but its callers"),
        ("every path (the Bridge's consumer API)", bundle, lambda b: policy(b)["rules"][0]["to"][0]["operation"].pop("paths"), "nobody may use the rest of its API"),
        ("every method", bundle, lambda b: policy(b)["rules"][0]["to"][0]["operation"].pop("methods"), "nobody may use the rest of its API"),
        ("a rule without a source", bundle, lambda b: policy(b)["rules"][0].pop("from"), "only its callers may post"),
        ("a namespace-wide ALLOW policy", bundle, lambda b: b.append({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                                                                      "metadata": {"name": "allow-all", "namespace": "pipeline"}, "spec": {"rules": [{}]}}),
         "only its callers may post"),
        ("the policy as DENY", bundle, lambda b: policy(b).__setitem__("action", "DENY"), "an ALLOW AuthorizationPolicy selects its pods"),
        ("the policy selecting Kafka Connect's pods", bundle, lambda b: policy(b)["selector"]["matchLabels"].__setitem__("strimzi.io/kind", "KafkaConnect"),
         "an ALLOW AuthorizationPolicy selects its pods"),
        ("a token required instead, as a `when` condition", bundle,
         lambda b: policy(b)["rules"][0].__setitem__("when", [{"key": "request.auth.claims[aud]", "values": ["kiosk-rest"]}]), "only what this check evaluates"),
        ("the Bridge PERMISSIVE", bundle, lambda b: b.append({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                                                              "metadata": {"name": "bridge-permissive", "namespace": "pipeline"},
                                                              "spec": {"selector": {"matchLabels": {"strimzi.io/kind": "KafkaBridge"}}, "mtls": {"mode": "PERMISSIVE"}}}),
         "takes Istio mTLS only"),
        ("the Bridge without a sidecar", bundle, lambda b: bridge_pod(b).setdefault("labels", {}).__setitem__("sidecar.istio.io/inject", "false"), "has a sidecar"),
        ("the Bridge's port excluded from capture", bundle,
         lambda b: bridge_pod(b).setdefault("annotations", {}).__setitem__("traffic.sidecar.istio.io/excludeInboundPorts", "8080"), "captures port 8080"),
        ("no Gateway: the install as it is", gatewayless, lambda b: None, None),
        ("no Gateway: the producer, which posts straight to the REST entry, not among the callers", gatewayless,
         lambda b: principals(b, "demo-rest-access").remove("cluster.local/ns/pipeline/sa/demo-test-producer"), "only its callers may post"),
        ("no Gateway: the gateway's identity still a caller", gatewayless,
         lambda b: principals(b, "demo-rest-access").append("cluster.local/ns/istio-ingress/sa/istio-ingressgateway"), "only its callers may post"),
    ]
    for what, base, doctor, want in cases:
        b = copy.deepcopy(base)
        doctor(b)
        errs = probe(check_rest_access, b, injected)
        if want is None:
            report.check(not errs, f"self-check: the REST entry's access, {what}, passes every check", str(errs[:3]))
        else:
            report.check(any(want in e for e in errs), f"self-check: REST entry with {what}: rejected", f"errors: {errs[:3]}")
    doctored = copy.deepcopy(plain)
    twin = next((o for o in doctored if o.get("kind") == "AuthorizationPolicy" and o["metadata"]["name"] == "kiosk-rest-access"), None)
    if report.check(twin is not None, "istio/authorization-policy-rest-entry.yaml holds AuthorizationPolicy kiosk-rest-access"):
        twin["spec"]["rules"][0]["from"][0]["source"]["principals"].append(producer)
        errs = probe(lambda r, _label: compare_with_charts(r, doctored, bundle, applied))
        report.check(any("kiosk-rest-access .spec equals" in e for e in errs),
                     "self-check: the plain REST entry policy (which the local mesh reads) differing from the chart's: rejected", str(errs[:2]))


def schema_registry_self_checks(report: Report, bundle: list[dict], injected: set[str], plain: list[dict], applied: set[str]) -> None:
    """Each way the registry could be open to the wrong identity, lose its schemas, or the
    services and the registration Job be pointed wrong, put into a copy of the kind install:
    check_schema_registry must reject it; and the registration program's checks must reject a
    program that checks nothing and schemas the registry would refuse."""

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
        ("a shipped schema not the repository's", lambda b: find(b, "ConfigMap", "schema-registry-schemas")["data"].__setitem__(
            "events-value.v1.schema.json", find(b, "ConfigMap", "schema-registry-schemas")["data"]["events-value.v1.schema.json"].replace('"additionalProperties": false', '"additionalProperties": true')),
         "byte for byte"),
    ]
    for what, doctor, want in cases:
        b = copy.deepcopy(bundle)
        doctor(b)
        errs = probe(check_schema_registry, b, injected)
        if want is None:
            report.check(not errs, "self-check: the schema registry of the kind install passes every check", str(errs[:3]))
        else:
            report.check(any(want in e for e in errs), f"self-check: schema registry with {what}: rejected", f"errors: {errs[:3]}")
    # The chart's copies of schemas/ and the plain policy the local mesh reads.
    with tempfile.TemporaryDirectory() as tmp:
        for f in CHART_SCHEMAS_DIR.glob("*.json"):
            (Path(tmp) / f.name).write_bytes(f.read_bytes())
        v3 = Path(tmp) / "events-value.v3-incompatible.schema.json"
        v3.write_bytes(v3.read_bytes().rstrip(b"\n"))
        errs = probe(lambda r, _label: check_schema_files(r, Path(tmp)))
        report.check(any("byte-identical" in e for e in errs), "self-check: a chart copy of a schema differing from schemas/ (its last newline): rejected", str(errs[:2]))
        v3.unlink()
        errs = probe(lambda r, _label: check_schema_files(r, Path(tmp)))
        report.check(any("holds the files" in e for e in errs), "self-check: a schema of schemas/ missing from the chart: rejected", str(errs[:2]))
    doctored = copy.deepcopy(plain)
    twin = next((o for o in doctored if o.get("kind") == "AuthorizationPolicy" and o["metadata"]["name"] == "schema-registry-access"), None)
    if report.check(twin is not None, "istio/authorization-policy-schema-registry.yaml holds AuthorizationPolicy schema-registry-access"):
        twin["spec"]["rules"][1]["from"][0]["source"]["principals"].append("cluster.local/ns/pipeline/sa/kiosk-mirror")
        errs = probe(lambda r, _label: compare_with_charts(r, doctored, bundle, applied))
        report.check(any("schema-registry-access .spec equals" in e for e in errs),
                     "self-check: the plain schema registry policy (which the local mesh reads) differing from the chart's: rejected", str(errs[:2]))
    # The registration program and the schemas it ships.
    inputs = registration_inputs(bundle)
    if inputs is None:
        report.error("self-check: no registration Job to doctor")
        return
    program, schemas, env = inputs
    open_v1 = json.loads(schemas["KIOSK_SCHEMA"])
    open_v1.pop("additionalProperties", None)
    for what, args, want in [
        ("a program that checks nothing", ("import sys\nsys.exit(0)\n", schemas, env), "registers v1"),
        ("a program that skips v3", (program.replace('reg.call("POST", f"/subjects/{subject}/versions", v3)', '(409, {})'), schemas, env), "tries to register v3"),
        ("v1 an open content model (Apicurio refuses v2)", (program, dict(schemas, KIOSK_SCHEMA=json.dumps(open_v1, indent=2)), env), "succeeds against the stand-in"),
        ("the level left unset", (program.replace('reg.call("PUT", f"/config/{subject}", {"compatibility": level})', '(200, {"compatibility": level})'), schemas, env),
         "sets events-value's compatibility"),
    ]:
        errs = probe(check_registration_run, *args)
        report.check(any(want in e for e in errs), f"self-check: registration with {what}: rejected", f"errors: {errs[:3]}")


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
    # A junctor's branches validate values, they close nothing: Strimzi's env items (oneOf
    # value | valueFrom) take name and value, and still refuse an unknown field or both.
    bridge = load_yaml_objects(ROOT / "strimzi/kafka-bridge.yaml")[0]
    env = bridge["spec"]["template"]["bridgeContainer"]["env"]
    report.check(not v.errors_of(bridge) and any("value" in e for e in env), "self-check: a KafkaBridge env item with name and value is valid (oneOf branches stay open)",
                 str(v.errors_of(bridge)[:2]))
    bad = copy.deepcopy(bridge)
    bad["spec"]["template"]["bridgeContainer"]["env"][0]["valeu"] = "x"
    report.check(any("valeu" in e for e in v.errors_of(bad)), "self-check: an unknown field in a KafkaBridge env item is rejected")
    bad = copy.deepcopy(bridge)
    bad["spec"]["template"]["bridgeContainer"]["env"][0]["valueFrom"] = {"secretKeyRef": {"name": "s", "key": "k"}}
    report.check(bool(v.errors_of(bad)), "self-check: a KafkaBridge env item with both value and valueFrom is rejected (oneOf)")
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
    users = {("pipeline", "kiosk-mirror")}
    doctored = [
        ({"containers": [{"name": "app", "env": [{"name": "KAFKA_SASL_JAAS_CONFIG", "value": "x"}]}]}, True, "env KAFKA_SASL_JAAS_CONFIG"),
        ({"containers": [{"name": "app", "env": [{"name": "KAFKA_PROPERTIES", "value": "client.id=a\nsasl.password=x\n"}]}]}, True, "KAFKA_PROPERTIES sets"),
        ({"containers": [{"name": "app", "env": [{"name": "KAFKA_PROPERTIES", "value": "security.protocol=SSL\n"}]}]}, True, "KAFKA_PROPERTIES sets"),
        ({"containers": [{"name": "app", "env": [{"name": "DB_PASSWORD", "value": "x"}]}]}, True, "env DB_PASSWORD"),
        ({"containers": [{"name": "app", "envFrom": [{"secretRef": {"name": "kiosk-mirror"}}]}]}, False, "envFrom Secret kiosk-mirror"),
        ({"containers": [{"name": "app", "volumeMounts": [{"name": "v", "mountPath": "/s"}]}],
          "volumes": [{"name": "v", "projected": {"sources": [{"secret": {"name": "kiosk-mirror"}}]}}]}, False, "mounts Secret kiosk-mirror"),
    ]
    for spec, client, want in doctored:
        found = app_credential_findings(spec, "pipeline", client, users)
        report.check(any(want in f for f in found), f"self-check: an application container holding a Kafka credential ({want}) is found", f"found {found}")
    clean = {"containers": [{"name": "app", "env": [{"name": "KAFKA_BOOTSTRAP_SERVERS", "value": "k:9092"}, {"name": "KAFKA_PROPERTIES", "value": "client.id=a\nsecurity.protocol=PLAINTEXT\n"}]},
                            {"name": PROXY, "env": [{"name": "KIOSK_KAFKA_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "kiosk-mirror", "key": "password"}}}]}]}
    mongo = {"containers": [{"name": "mongo", "env": [{"name": "MONGO_INITDB_ROOT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "p"}}}]}]}
    report.check(not app_credential_findings(clean, "pipeline", True, users) and not app_credential_findings(mongo, "pipeline", False, users),
                 "self-check: the credential in the istio-proxy container, and a database password in a pod that is no Kafka client, are not Kafka credentials of an application")
    host = "kiosk-mongodb.pipeline.svc.cluster.local"
    for uri, want in [(f"mongodb://app:secret@{host}:27017/", "a user and password"), (f"mongodb://app@{host}:27017/", "a user"),
                      (f"mongodb://{host}:27017/?tls=true", "option tls="), (f"mongodb://{host}:27017/?ssl=true", "option ssl="),
                      (f"mongodb://{host}:27017/?authMechanism=MONGODB-X509&authSource=$external", "option authMechanism="),
                      (f"mongodb://{host}:27017/?tlsCertificateKeyFile=/c.pem", "option tlsCertificateKeyFile="),
                      (f"mongodb+srv://{host}/", "mongodb+srv://")]:
        found = mongodb_uri_findings(uri)
        report.check(any(want in f for f in found), f"self-check: a MongoDB URI with {want} is a credential or TLS setting of the application", f"found {found}")
    report.check(not mongodb_uri_findings(f"mongodb://{host}:27017/?directConnection=true") and not mongodb_uri_findings(f"mongodb://{host}:27017/pipeline"),
                 "self-check: a MongoDB URI naming only the host, port, database and directConnection is clean")
    mongo_secrets = {("pipeline", "kiosk-test-verify-mongodb-tls"), ("pipeline", "kiosk-mongodb-ca")}
    uri_secret = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "pipeline"}, "stringData": {"uri": f"mongodb://u:p@{host}:27017/"}}]
    doctored = [
        ({"containers": [{"name": "app", "env": [{"name": "MONGODB_URI", "value": f"mongodb://u:p@{host}:27017/"}]}]}, "has a user and password"),
        ({"containers": [{"name": "app", "env": [{"name": "MONGODB_URI", "valueFrom": {"secretKeyRef": {"name": "db", "key": "uri"}}}]}]}, "(Secret db key uri) has a user"),
        ({"containers": [{"name": "app", "env": [{"name": "DATABASE_URL", "value": f"mongodb://{host}:27017/?tls=true"}]}]}, "has option tls="),
        ({"containers": [{"name": "app", "env": [{"name": "MONGODB_URI", "valueFrom": {"secretKeyRef": {"name": "elsewhere", "key": "uri"}}}]}]}, "cannot be checked"),
        ({"containers": [{"name": "app", "env": [{"name": "MONGO_PASSWORD", "value": "x"}]}]}, "env MONGO_PASSWORD"),
        ({"containers": [{"name": "app", "env": [{"name": "MONGODB_USERNAME", "value": "x"}]}]}, "env MONGODB_USERNAME"),
        ({"containers": [{"name": "app", "envFrom": [{"secretRef": {"name": "kiosk-mongodb-ca"}}]}]}, "envFrom Secret kiosk-mongodb-ca"),
        ({"containers": [{"name": "app", "volumeMounts": [{"name": "v", "mountPath": "/tls"}]}],
          "volumes": [{"name": "v", "secret": {"secretName": "kiosk-test-verify-mongodb-tls"}}]}, "mounts Secret kiosk-test-verify-mongodb-tls"),
        ({"initContainers": [{"name": "reset", "command": ["mongosh", f"mongodb://{host}:27017/?authMechanism=PLAIN"]}],
          "containers": [{"name": "reset", "env": [{"name": "MONGODB_URI", "value": f"mongodb+srv://{host}/"}]}]}, "mongodb+srv://"),
    ]
    for spec, want in doctored:
        found = mongodb_credential_findings(uri_secret, spec, "pipeline", mongo_secrets)
        report.check(any(want in f for f in found), f"self-check: an application container holding a MongoDB credential ({want}) is found", f"found {found}")
    clean = {"containers": [{"name": "verify", "env": [{"name": "MONGODB_URI", "value": f"mongodb://{host}:27017/?directConnection=true"}]},
                            {"name": PROXY, "env": [{"name": "KIOSK_KAFKA_PASSWORD", "value": "x"}],
                             "volumeMounts": [{"name": "tls", "mountPath": "/etc/kiosk/mongodb-tls"}]},
                            {"name": "mongodb", "args": ["mongod", "--tlsCertificateKeyFile", "/tls/mongod.pem"], "volumeMounts": [{"name": "tls", "mountPath": "/tls"}]}],
             "volumes": [{"name": "tls", "secret": {"secretName": "kiosk-test-verify-mongodb-tls"}}]}
    report.check(not mongodb_credential_findings(uri_secret, clean, "pipeline", mongo_secrets),
                 "self-check: a plain MongoDB URI, the certificate in the istio-proxy container and mongod's own key are no MongoDB credentials of an application",
                 str(mongodb_credential_findings(uri_secret, clean, "pipeline", mongo_secrets)))
    user = load_yaml_objects(ROOT / "strimzi/kafka-user-mirror.yaml")[0]
    report.check(acl_allows(user, "topic", "events", "Read") and not acl_allows(user, "topic", "events", "Write")
                 and not acl_allows(user, "topic", "other", "Read"), "self-check: ACL matching allows exactly what the mirror's ACLs say")


def probe(fn, *args) -> list[str]:
    """The errors `fn(report, "probe", *args)` reports, quietly."""
    r = Report(False)
    with open(os.devnull, "w") as null:
        stdout, sys.stdout = sys.stdout, null
        try:
            fn(r, "probe", *args)
        finally:
            sys.stdout = stdout
    return r.errors


def invariant_self_checks(report: Report, bundle: list[dict], tls_bundle: list[dict], injected: set[str], secrets: set[tuple[str, str]]) -> None:
    """Each finding of issue 16 (and each way the ingress of issue 18 could let requests without
    a valid token through, and each way an application could come to hold a Kafka credential or
    a sidecar lack one, issue 14), put back into a copy of the kind install (the default, or
    with --kafka-auth tls): the invariant that guards it must reject it (and accept the
    installs as they are)."""

    def find(b, kind, name=None, ns=None):
        return next(o for o in b if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)
                    and (ns is None or o["metadata"].get("namespace") == ns))

    def pod_labels(o):
        if o["kind"] in ("KafkaConnect", "KafkaBridge", "KafkaNodePool"):
            return o["spec"]["template"]["pod"]["metadata"]["labels"]
        return o["spec"]["template"]["metadata"]["labels"]

    def podspec(b, kind, name):
        return find(b, kind, name)["spec"]["template"]["spec"]

    def container(b, kind, name, cname):
        return next(c for c in containers(podspec(b, kind, name)) if c["name"] == cname)

    def proxy_env(b, kind, name):
        return container(b, kind, name, PROXY)["env"]

    def mount_user_secret(b, kind, name, cname, secret):
        ps = podspec(b, kind, name)
        ps.setdefault("volumes", []).append({"name": "kafka-user", "secret": {"secretName": secret}})
        container(b, kind, name, cname).setdefault("volumeMounts", []).append({"name": "kafka-user", "mountPath": "/var/run/kafka"})

    def mongod_password(b, keep):
        b.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kiosk-mongodb-root", "namespace": "pipeline",
                  "annotations": {"helm.sh/resource-policy": "keep"} if keep else {}}, "stringData": {"root-password": "generated"}})
        container(b, "StatefulSet", "kiosk-mongodb", "mongodb").setdefault("env", []).append(
            {"name": "MONGO_INITDB_ROOT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "kiosk-mongodb-root", "key": "root-password"}}})

    def mongo_uri(b, uri):
        find(b, "Secret", "kiosk-mongodb")["stringData"]["uri"] = uri

    def mongod_args(b, drop=(), add=()):
        c = container(b, "StatefulSet", "kiosk-mongodb", "mongodb")
        args = [a for a in c["args"] if a not in drop]
        c["args"] = args + list(add)

    def mongo_rule(b, name):
        return find(b, "DestinationRule", name)["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]

    sasl_properties = "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=kiosk-mirror\nsasl.password=$(KAFKA_PASSWORD)\n"
    TLS = True
    cases = [
        ("the kind install as it is passes every invariant", lambda b: None, None, None, not TLS),
        ("the kind install --kafka-auth tls as it is passes every invariant", lambda b: None, None, None, TLS),
        ("1: Connect pods without service.istio.io/workload-name (Istio reports kiosk-connect-0)",
         lambda b: pod_labels(find(b, "KafkaConnect")).pop("service.istio.io/workload-name"), check_pods, "expected Kiali node pipeline/kiosk-connect", not TLS),
        ("2: without the NetworkPolicy admitting Prometheus to the Connect pods",
         lambda b: b.remove(find(b, "NetworkPolicy", ns="pipeline")), check_pods, "Prometheus (istio-system) may scrape", not TLS),
        ("4: namespace kafka PERMISSIVE (no PeerAuthentication there)",
         lambda b: [b.remove(o) for o in list(b) if o.get("kind") == "PeerAuthentication" and o["metadata"].get("namespace") == "kafka"],
         check_kafka_listeners, "SASL in clear", not TLS),
        ("4: the TLS listener captured under STRICT",
         lambda b: find(b, "PeerAuthentication", "kiosk-kafka-tls-listener").__setitem__("spec", {"mtls": {"mode": "STRICT"}, "selector": find(b, "PeerAuthentication", "kiosk-kafka-tls-listener")["spec"]["selector"]}),
         check_kafka_listeners, "Kafka's own TLS passes", not TLS),
        ("5: TLS origination that checks no broker name",
         lambda b: find(b, "DestinationRule", "kiosk-mirror-kafka-tls")["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"].pop("subjectAltNames"),
         check_tls_client_identity, "verifies the broker's name", TLS),
        ("5: the client certificates without their sync Deployment",
         lambda b: b.remove(find(b, "Deployment", "kiosk-kafka-tls-sync")), check_tls_client_identity, "kept in sync", TLS),
        ("5: the sync's Role without `create`",
         lambda b: find(b, "Role", "kiosk-kafka-tls-sync-client-certs")["rules"].pop(1), check_tls_client_identity, "may create secret", TLS),
        ("6: the WasmPlugin by tag with IfNotPresent",
         lambda b: find(b, "WasmPlugin", "kiosk")["spec"].update(url="oci://kind-registry:5000/kiosk/kiosk-filter:0.1.0", imagePullPolicy="IfNotPresent"), check_wasm_pull, "pinned by digest or pulled Always", not TLS),
        # MongoDB has no password since issue 15: finding 7 is put back with the root password
        # the chart's mongod had, from a Secret generated at install.
        ("7: the MongoDB Secret deleted with the release",
         lambda b: mongod_password(b, keep=False), check_generated_credentials, "outlives the release", not TLS),
        ("7: the MongoDB volume kept after the StatefulSet",
         lambda b: [mongod_password(b, keep=True), find(b, "StatefulSet")["spec"].pop("persistentVolumeClaimRetentionPolicy")],
         check_generated_credentials, "its volume goes with it", not TLS),
        ("8: pods without service.istio.io/canonical-name (the chart's app.kubernetes.io/name is every pod's app)",
         lambda b: [pod_labels(o).pop("service.istio.io/canonical-name", None) for o in b if o.get("kind") in ("Deployment", "StatefulSet", "Job")],
         check_pods, "share it", not TLS),
        ("9: a Telemetry removing source_principal from Istio's metrics",
         lambda b: b.append({"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry", "metadata": {"name": "x", "namespace": "istio-system"},
                             "spec": {"metrics": [{"overrides": [{"tagOverrides": {"source_principal": {"operation": "REMOVE"}}}]}]}}),
         check_istio_shaped_series, "keeps the labels that tell", not TLS),
        ("9: a topic named like a workload of the topic namespace",
         lambda b: find(b, "KafkaTopic")["spec"].update(topicName="kiosk-dual-role"), check_istio_shaped_series, "no workload name in the topic namespace", not TLS),
        ("18: an AuthorizationPolicy rule of the ingress without a request principal",
         lambda b: find(b, "AuthorizationPolicy")["spec"]["rules"][0].pop("from"), check_ingress_jwt, "requires a request principal", not TLS),
        ("18: no AuthorizationPolicy for the ingress gateway",
         lambda b: b.remove(find(b, "AuthorizationPolicy")), check_ingress_jwt, "an ALLOW AuthorizationPolicy", not TLS),
        ("18: a RequestAuthentication naming another issuer",
         lambda b: find(b, "RequestAuthentication")["spec"]["jwtRules"][0].update(issuer="http://elsewhere.pipeline.svc.cluster.local:8080"),
         check_ingress_jwt, "is the token issuer's", not TLS),
        ("18: a RequestAuthentication for another audience",
         lambda b: find(b, "RequestAuthentication")["spec"]["jwtRules"][0].update(audiences=["someone-else"]), check_ingress_jwt, "hold the issuer's --audience", not TLS),
        ("18: the token issuer with a sidecar",
         lambda b: find(b, "Deployment", "kiosk-issuer")["spec"]["template"]["metadata"]["labels"].update({"sidecar.istio.io/inject": "true"}),
         check_ingress_jwt, "without a sidecar", not TLS),
        ("18: the producer's client secret from another key",
         lambda b: find(b, "Job", "kiosk-test-producer")["spec"]["template"]["spec"]["volumes"][0]["secret"]["items"][0].update(key="signing-key.pem"),
         check_ingress_jwt, "the one the issuer knows", not TLS),
        # Issue 14: applications hold no Kafka credential; sidecars hold what the filter needs.
        ("14: the mirror's SASL settings and password back in its application (KAFKA_PROPERTIES, KAFKA_PASSWORD)",
         lambda b: container(b, "Deployment", "kiosk-mirror", "mirror")["env"].extend([
             {"name": "KAFKA_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "kiosk-mirror", "key": "password"}}},
             {"name": "KAFKA_PROPERTIES", "value": sasl_properties}]),
         check_kafka_credentials, "no application container holds a Kafka credential", not TLS),
        ("14: the verifier's application mounting its KafkaUser's Secret",
         lambda b: mount_user_secret(b, "Job", "kiosk-test-verify", "verify", "kiosk-verify"), check_kafka_credentials, "mounts Secret kiosk-verify", not TLS),
        ("14: a KafkaBridge that authenticates itself (Strimzi gives it the password)",
         lambda b: find(b, "KafkaBridge")["spec"].update(authentication={"type": "scram-sha-512", "username": "kiosk-bridge",
                                                                          "passwordSecret": {"secretName": "kiosk-bridge", "password": "password"}}),
         check_kafka_credentials, "spec.authentication", not TLS),
        ("14: Kafka Connect's own container given the password (template.connectContainer)",
         lambda b: find(b, "KafkaConnect")["spec"]["template"].update(connectContainer={"env": [
             {"name": "KAFKA_SASL_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "kiosk-connect", "key": "password"}}}]}),
         check_kafka_credentials, "env KAFKA_SASL_PASSWORD", not TLS),
        ("14: kafka_auth without vmConfig.env (the filter would find no credential)",
         lambda b: find(b, "WasmPlugin", "kiosk")["spec"].pop("vmConfig"), check_kafka_credentials, "vmConfig.env takes KIOSK_KAFKA_USERNAME", not TLS),
        ("14: the password written into the WasmPlugin (vmConfig.env INLINE)",
         lambda b: find(b, "WasmPlugin", "kiosk")["spec"]["vmConfig"]["env"][1].update(valueFrom="INLINE", value="hunter2"), check_kafka_credentials,
         "vmConfig.env takes KIOSK_KAFKA_PASSWORD", not TLS),
        ("14: the mirror's sidecar without the password",
         lambda b: proxy_env(b, "Deployment", "kiosk-mirror").pop(1), check_kafka_credentials, "its sidecar gets KIOSK_KAFKA_USERNAME, KIOSK_KAFKA_PASSWORD", not TLS),
        ("14: the mirror's sidecar given the password inline",
         lambda b: proxy_env(b, "Deployment", "kiosk-mirror")[1].update(value="hunter2"), check_kafka_credentials, "takes KIOSK_KAFKA_PASSWORD from key `password`", not TLS),
        ("14: the mirror's sidecar authenticating as another user",
         lambda b: proxy_env(b, "Deployment", "kiosk-mirror")[0].update(value="kiosk-verify"), check_kafka_credentials, "sets KIOSK_KAFKA_USERNAME to its KafkaUser", not TLS),
        ("14: the KafkaBridge's pods without Istio's credential injection template",
         lambda b: find(b, "KafkaBridge")["spec"]["template"]["pod"]["metadata"].pop("annotations"), check_kafka_credentials,
         "KafkaBridge kiosk (selected by WasmPlugin/pipeline/kiosk): its sidecar gets KIOSK_KAFKA_USERNAME", not TLS),
        ("14: Connect's pods without the label naming their KafkaUser",
         lambda b: pod_labels(find(b, "KafkaConnect")).pop(KAFKA_USER_LABEL), check_kafka_credentials, "KafkaConnect kiosk (selected by WasmPlugin/pipeline/kiosk): its sidecar gets KIOSK_KAFKA_USERNAME", not TLS),
        ("14: brokers asking clients to re-authenticate (KIP-368)",
         lambda b: find(b, "Kafka")["spec"]["kafka"]["config"].update({"connections.max.reauth.ms": 3600000}), check_kafka_credentials, "re-authenticate", not TLS),
        ("14: the filter performing PLAIN against the SCRAM-SHA-512 listener",
         lambda b: find(b, "WasmPlugin", "kiosk")["spec"]["pluginConfig"]["kafka_auth"].update(mechanism="PLAIN"), check_kafka_credentials, "takes kafka_auth PLAIN", not TLS),
        ("14: a Kafka client sharing its process namespace with its sidecar",
         lambda b: podspec(b, "Deployment", "kiosk-mirror").update(shareProcessNamespace=True), check_kafka_credentials, "do not share a process namespace", not TLS),
        ("14: the filter's SASL off while the clients dial the SCRAM listener",
         lambda b: find(b, "WasmPlugin", "kiosk")["spec"]["pluginConfig"].pop("kafka_auth"), check_kafka_credentials, "which nobody would perform", not TLS),
        ("14 (tls): a DestinationRule presenting no certificate to the listener that requires one",
         lambda b: find(b, "DestinationRule", "kiosk-mirror-kafka-tls")["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"].update(mode="SIMPLE"),
         check_tls_client_identity, "presents a client certificate (MUTUAL)", TLS),
        ("14 (tls): the mirror's certificate given to the verifier's pods",
         lambda b: find(b, "DestinationRule", "kiosk-mirror-kafka-tls")["spec"]["workloadSelector"]["matchLabels"].update({KAFKA_USER_LABEL: "kiosk-verify"}),
         check_tls_client_identity, "is KafkaUser kiosk-mirror, whose certificate it presents", TLS),
        ("14 (tls): no DestinationRule for the mirror",
         lambda b: b.remove(find(b, "DestinationRule", "kiosk-mirror-kafka-tls")), check_tls_client_identity, "kiosk-mirror/mirror dials a listener that requires a client certificate", TLS),
        ("14 (tls): the sidecars not allowed to list secrets (istiod serves no key)",
         lambda b: b.remove(find(b, "RoleBinding", "kiosk-kafka-tls-sidecars")), check_tls_client_identity, "istiod serves the key", TLS),
        ("14 (tls): the mirror's application given its service account's token",
         lambda b: podspec(b, "Deployment", "kiosk-mirror").update(automountServiceAccountToken=True), check_tls_client_identity, "gets no API token", TLS),
        ("14 (tls): a scram-sha-512 user behind a certificate",
         lambda b: find(b, "KafkaUser", "kiosk-mirror")["spec"].update(authentication={"type": "scram-sha-512"}), check_tls_client_identity, "is a tls user", TLS),
        ("14 (tls): the mirror's application mounting the copy of its certificate",
         lambda b: mount_user_secret(b, "Deployment", "kiosk-mirror", "mirror", "kiosk-mirror-mesh-tls"), check_kafka_credentials, "mounts Secret kiosk-mirror-mesh-tls", TLS),
    ]
    host = "kiosk-mongodb.pipeline.svc.cluster.local"
    cases += [
        # Issue 15: applications hold no MongoDB credential; mongod requires TLS, certificates and
        # X.509 users; each client's sidecar presents its own workload's certificate.
        ("15: the MongoDB URI with a user and password again (Secret kiosk-mongodb, read by Connect, the producer and verify)",
         lambda b: mongo_uri(b, f"mongodb://kiosk-app:hunter2@{host}:27017/pipeline?authSource=admin&directConnection=true"),
         check_mongodb_credentials, "has a user and password (userinfo)", not TLS),
        ("15: the MongoDB URI asking the application for TLS",
         lambda b: mongo_uri(b, f"mongodb://{host}:27017/?directConnection=true&tls=true"), check_mongodb_credentials, "has option tls=", not TLS),
        ("15: the MongoDB URI asking the application to authenticate (authMechanism)",
         lambda b: mongo_uri(b, f"mongodb://{host}:27017/?authMechanism=MONGODB-X509"), check_mongodb_credentials, "has option authMechanism=", not TLS),
        ("15: the verifier given a MongoDB password",
         lambda b: container(b, "Job", "kiosk-test-verify", "verify")["env"].append({"name": "MONGODB_PASSWORD", "value": "hunter2"}),
         check_mongodb_credentials, "env MONGODB_PASSWORD", not TLS),
        ("15: the verifier's application mounting its MongoDB certificate",
         lambda b: mount_user_secret(b, "Job", "kiosk-test-verify", "verify", "kiosk-test-verify-mongodb-tls"), check_mongodb_credentials,
         "mounts Secret kiosk-test-verify-mongodb-tls, a MongoDB certificate's", not TLS),
        ("15: Kafka Connect's container given the MongoDB CA (template.connectContainer)",
         lambda b: find(b, "KafkaConnect")["spec"]["template"].update(connectContainer={"env": [
             {"name": "CA", "valueFrom": {"secretKeyRef": {"name": "kiosk-mongodb-ca", "key": "tls.key"}}}]}),
         check_mongodb_credentials, "env CA from Secret kiosk-mongodb-ca, a MongoDB certificate's", not TLS),
        ("15: the MongoDB sink configured for TLS itself",
         lambda b: find(b, "KafkaConnector")["spec"]["config"].update({"connection.ssl.truststorePassword": "changeit"}),
         check_mongodb_credentials, "config connection.ssl.truststorePassword", not TLS),
        ("15: mongod without TLS required (preferTLS)",
         lambda b: mongod_args(b, drop=("--tlsMode", "requireTLS"), add=("--tlsMode", "preferTLS")), check_mongodb_server, "--tlsMode requireTLS", not TLS),
        ("15: mongod admitting clients without a certificate",
         lambda b: mongod_args(b, add=("--tlsAllowConnectionsWithoutCertificates",)), check_mongodb_server, "no --tlsAllowConnectionsWithoutCertificates", not TLS),
        ("15: mongod without access control",
         lambda b: mongod_args(b, drop=("--auth",)), check_mongodb_server, "--auth (access control on)", not TLS),
        ("15: mongod's port captured by its sidecar (TLS would end in the sidecar)",
         lambda b: find(b, "StatefulSet")["spec"]["template"]["metadata"]["annotations"].pop("traffic.sidecar.istio.io/excludeInboundPorts"),
         check_mongodb_server, "its sidecar does not capture 27017", not TLS),
        ("15: no PeerAuthentication passing mongod's port through",
         lambda b: b.remove(find(b, "PeerAuthentication", "kiosk-mongodb-tls")), check_mongodb_server, "mTLS DISABLE on 27017", not TLS),
        ("15: a MongoDB user the release has no client for",
         lambda b: find(b, "ConfigMap", "kiosk-mongodb-x509-users")["data"].update({"x509-users.json": json.dumps({"users": json.loads(
             find(b, "ConfigMap", "kiosk-mongodb-x509-users")["data"]["x509-users.json"])["users"] + [{"user": "CN=intruder,OU=pipeline,O=kiosk", "roles": []}]})}),
         check_mongodb_server, "every X.509 user is a client of the release", not TLS),
        ("15: the verifier's X.509 user without readWrite on the pipeline's database",
         lambda b: find(b, "ConfigMap", "kiosk-mongodb-x509-users")["data"].update({"x509-users.json": json.dumps({"users": [
             dict(u, roles=[{"role": "read", "db": "pipeline"}]) if "kiosk-test-verify" in u["user"] else u for u in json.loads(
                 find(b, "ConfigMap", "kiosk-mongodb-x509-users")["data"]["x509-users.json"])["users"]]})}),
         check_mongodb_server, "X.509 user CN=kiosk-test-verify,OU=pipeline,O=kiosk (the certificate subject of pipeline/kiosk-test-verify) may readWrite pipeline", not TLS),
        ("15: the clients' O equal to the server certificate's (MongoDB would take them for cluster members)",
         lambda b: [e.update(value="kiosk-mongodb") for e in container(b, "Deployment", "kiosk-mongodb-tls-issuer", "tls-issuer")["env"]
                    if e["name"] == "KIOSK_CLIENT_ORGANIZATION"], check_mongodb_server, "the clients' O differs", not TLS),
        ("15: no DestinationRule for the verifier (its sidecar would present no certificate)",
         lambda b: b.remove(find(b, "DestinationRule", "kiosk-test-verify-mongodb-tls")), check_mongodb_clients,
         "kiosk-test-verify/verify (MongoDB client pipeline/kiosk-test-verify): one MUTUAL DestinationRule", not TLS),
        ("15: the producer's certificate given to the verifier",
         lambda b: mongo_rule(b, "kiosk-test-verify-mongodb-tls").update(credentialName="kiosk-test-producer-mongodb-tls"), check_mongodb_clients,
         "credentialName is its own certificate's Secret", not TLS),
        ("15: a MongoDB DestinationRule that checks no name",
         lambda b: mongo_rule(b, "kiosk-test-verify-mongodb-tls").pop("subjectAltNames"), check_mongodb_clients, "checks that name in mongod's certificate", not TLS),
        ("15: Kafka Connect given its certificate by credentialName (its application holds an API token)",
         lambda b: [mongo_rule(b, "kiosk-connect-mongodb-tls").pop(k) for k in ("clientCertificate", "privateKey", "caCertificates")]
         + [mongo_rule(b, "kiosk-connect-mongodb-tls").update(credentialName="kiosk-connect-mongodb-tls")],
         check_mongodb_clients, "its application gets no API token", not TLS),
        ("15: Kafka Connect's pods without the injection template that mounts its certificate into the sidecar",
         lambda b: find(b, "KafkaConnect")["spec"]["template"]["pod"]["metadata"]["annotations"].update(
             {INJECT_TEMPLATES: "sidecar,kiosk-kafka-credentials"}), check_mongodb_clients, "mounted into the sidecar", not TLS),
        ("15: the verifier's sidecar not allowed to list secrets (istiod serves no key)",
         lambda b: b.remove(find(b, "RoleBinding", "kiosk-mongodb-client-sidecars")), check_mongodb_clients, "istiod serves the key to its sidecar", not TLS),
        ("15: the MongoDB WasmPlugin not authenticating (mongod requires it)",
         lambda b: find(b, "WasmPlugin", "kiosk-mongodb")["spec"]["pluginConfig"].pop("mongodb_auth"), check_mongodb_clients,
         "a MongoDB WasmPlugin authenticates its connections", not TLS),
        ("15: the MongoDB WasmPlugin in mongod's own pod",
         lambda b: pod_labels(find(b, "StatefulSet", "kiosk-mongodb")).update({"kiosk.io/mongodb-client": "true"}), check_mongodb_wasmplugins,
         "does not select mongod's pods", not TLS),
        ("15: the MongoDB WasmPlugin on the Kafka ports",
         lambda b: find(b, "WasmPlugin", "kiosk-mongodb")["spec"]["match"][0]["ports"].append({"number": 9092}), check_mongodb_wasmplugins,
         "match mode CLIENT on MongoDB's port only", not TLS),
        ("15 (tls): the verifier's MongoDB URI with a password, with TLS client identity for Kafka",
         lambda b: mongo_uri(b, f"mongodb://u:p@{host}:27017/"), check_mongodb_credentials, "has a user and password", TLS),
    ]
    checks = [check_pods, check_kafka_listeners, check_wasm_pull, check_wasm_vms, check_generated_credentials, check_istio_shaped_series, check_ingress_jwt,
              check_topics_and_acls, check_tls_client_identity, check_kafka_credentials, check_mongodb, check_exactly_once]

    def extra(c):
        return (injected,) if c in (check_pods, check_kafka_listeners) else (secrets,) if c is check_tls_client_identity else ()

    for what, mutate, fn, want, tls in cases:
        b = copy.deepcopy(tls_bundle if tls else bundle)
        mutate(b)
        if fn is None:
            errs = [e for c in checks for e in probe(c, b, *extra(c))]
            report.check(not errs, f"self-check: {what}", str(errs[:3]))
            continue
        errs = probe(fn, b, *extra(fn))
        report.check(any(want in e for e in errs), f"self-check: finding {what} is rejected", f"errors: {errs[:3]}")
    # 5: a certificate copied once by kind-up.sh instead of kept in sync.
    b = copy.deepcopy(tls_bundle)
    b.remove(find(b, "Deployment", "kiosk-kafka-tls-sync"))
    errs = probe(check_tls_client_identity, b, secrets | {("pipeline", "kiosk-mirror-mesh-tls")})
    report.check(any("not a copy made once" in e for e in errs), "self-check: finding 5: a certificate Secret copied once by kind-up.sh is rejected", str(errs[:3]))


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
    parser.add_argument("--prometheus", action="store_true", help="also scrape a sidecar-shaped exposition with this machine's Prometheus (about 6 s)")
    args = parser.parse_args()
    report = Report(args.verbose)
    v = Validator(report, args.k8s_version)

    report.step(f"schemas: Kubernetes {args.k8s_version} (kubernetes-validate {kv.__version__}), CRDs from {CRDS_DIR}")
    v.load_crds()
    print(f"  {len(v.crds)} CRD versions from {len(v.crd_files)} files; helm-python-sdk {helm.__version__} (Helm SDK {helm.helm_sdk_version()})")
    labels = filter_labels()
    print(f"  the filter emits {len(labels)} labels (filter/contract/metrics.json)")

    report.step("self-checks: wrong objects must be rejected")
    before = len(report.errors)
    self_checks(report, v, labels)
    print(f"  {'all rejected as they should be' if len(report.errors) == before else 'FAILED: the validator would miss errors'}")

    report.step("plain manifests: strimzi/ and istio/")
    plain = []
    for f in plain_manifest_files():
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
    applied = kind_up_applied()
    tls_files = {str(f.relative_to(ROOT)) for f in (ROOT / TLS_CLIENT_IDENTITY_DIR).rglob("*.yaml")}
    report.check(tls_files <= applied, f"scripts/kind-up.sh applies {TLS_CLIENT_IDENTITY_DIR}/ (with --kafka-auth tls)")
    platform = [o for o in plain if o["_source"] in applied and o["_source"] not in tls_files]
    tls_platform = [o for o in plain if o["_source"] in tls_files]
    secrets = script_created_secrets()
    injected = injected_namespaces()
    providers, jaeger_tags = istiod_extension_providers(), kind_up_jaeger_tags(kind_up_dry_run())
    default_charts = renders.get("kiosk-filter:default", []) + renders.get("test-kafka-istio-mongo:default", [])
    tls_charts = [o for chart, values in TLS_CLIENT_IDENTITY_VALUES.items() for o in renders.get(f"{chart}:{values}", [])]
    tls_bundle = platform + tls_platform + tls_charts
    bundles = {"strimzi/ + istio/ (plain manifests, SASL performed by the filter)": [o for o in plain if o["_source"] not in tls_files],
               "kind install (platform files + charts, default values)": platform + default_charts,
               "kind install --kafka-auth tls (platform files, istio/kafka-tls-client-identity/, charts with ci/ TLS values)": tls_bundle}
    for key, objs in renders.items():
        chart, _, values = key.partition(":")
        if values != "default" and TLS_CLIENT_IDENTITY_VALUES.get(chart) != values:
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
        check_pods(report, label, objs, injected)
        check_kafka_listeners(report, label, objs, injected)
        check_tls_client_identity(report, label, objs, secrets)
        check_kafka_credentials(report, label, objs)
        check_mongodb(report, label, objs)
        check_generated_credentials(report, label, objs)
        check_wasm_pull(report, label, objs)
        check_wasm_vms(report, label, objs)
        check_istio_shaped_series(report, label, objs)
        check_ingress_jwt(report, label, objs)
        check_grafana_dashboard(report, label, objs)
        check_schema_registry(report, label, objs, injected)
        check_rest_access(report, label, objs, injected)
        check_tracing(report, label, objs, providers, jaeger_tags)
        check_exactly_once(report, label, objs)
        check_health_probes(report, label, objs)
        print(f"  {label}: {len(objs)} objects, {len(clients)} Kafka clients: {'ok' if len(report.errors) == before else 'FAILED'}")
    before = len(report.errors)
    invariant_self_checks(report, platform + default_charts, tls_bundle, injected, secrets)
    schema_registry_self_checks(report, platform + default_charts, injected, plain, applied)
    rest_access_self_checks(report, platform + default_charts, bundles.get("kind install with test-kafka-istio-mongo:kiosk-services-values.yaml", []),
                            injected, plain, applied)
    errs = probe(lambda r, _label, *a: compare_with_charts(r, *a), plain, default_charts, applied - {"strimzi/kafka-network-policy-prometheus.yaml"})
    report.check(any("neither" in e for e in errs), "self-check: a plain manifest neither applied by kind-up.sh nor rendered by a chart is rejected", str(errs[:2]))
    print(f"  each finding of issues 16, 14 and 28 (item 1) put back is rejected, and each way to open the schema registry or the REST entry or point their users wrong: {'ok' if len(report.errors) == before else 'FAILED'}")
    before = len(report.errors)
    tracing_self_checks(report, platform + default_charts, plain, default_charts, applied, providers, jaeger_tags)
    print(f"  one trace across the Kafka hops (Istio's provider, the Jaeger addon, the KafkaBridge): each way to break it is rejected: {'ok' if len(report.errors) == before else 'FAILED'}")
    before = len(report.errors)
    wasm_vm_self_checks(report, platform + default_charts, [o for o in plain if o["_source"] not in tls_files])
    print(f"  WasmPlugins of one module on one pod share one Wasm VM: each way to give it different environments is rejected: {'ok' if len(report.errors) == before else 'FAILED'}")
    before = len(report.errors)
    exactly_once_self_checks(report, platform + default_charts, tls_bundle, [o for o in plain if o["_source"] not in tls_files], default_charts, applied)
    print(f"  exactly once (the mirror's transactions, their ACLs, ids per instance, readers read_committed): each way to break it is rejected: {'ok' if len(report.errors) == before else 'FAILED'}")
    before = len(report.errors)
    health_self_checks(report, platform + default_charts, bundles.get("kind install with test-kafka-istio-mongo:kiosk-services-values.yaml", []))
    print(f"  the mirror's probes (readiness and liveness on the file it touches while making progress): each way to miss a stuck mirror or kill a waiting one is rejected: {'ok' if len(report.errors) == before else 'FAILED'}")
    before = len(report.errors)
    compare_with_charts(report, plain, default_charts, applied)
    print(f"  strimzi/ and istio/: applied by kind-up.sh, or equal to the charts' output: {'ok' if len(report.errors) == before else 'FAILED'}")
    before = len(report.errors)
    check_dockerfiles(report)
    print(f"  Dockerfiles and kind images pinned: {'ok' if len(report.errors) == before else 'FAILED'}")
    before = len(report.errors)
    kiali_edges_checks(report, renders.get("test-kafka-istio-mongo:default", []))
    kiali_recorded_graph_checks(report, renders.get("test-kafka-istio-mongo:default", []))
    print(f"  the Kiali edge check (files/kiali_edges.py) on graphs in Kiali's shape: {'ok' if len(report.errors) == before else 'FAILED'}")
    before = len(report.errors)
    tls_sync_checks(report, tls_platform)
    print(f"  the TLS client identity's certificate sync program through Strimzi's certificates' life, against a stand-in API: {'ok' if len(report.errors) == before else 'FAILED'}")
    before = len(report.errors)
    mongodb_issuer_checks(report, renders.get("test-kafka-istio-mongo:default", []))
    x509_users_script_checks(report, renders.get("test-kafka-istio-mongo:default", []))
    print(f"  the MongoDB certificate issuer through its certificates' life (stand-in API, openssl, TLS handshakes) and the X.509 user script (Node.js, stand-in mongod): {'ok' if len(report.errors) == before else 'FAILED'}")
    before = len(report.errors)
    schema_registration_checks(report, renders.get("test-kafka-istio-mongo:default", []))
    print(f"  the schema files and the schema registration program (stand-in registry, doctored registries and programs): {'ok' if len(report.errors) == before else 'FAILED'}")
    if args.prometheus:
        before = len(report.errors)
        prometheus_ingest_check(report)
        print(f"  Prometheus ingests Istio's and the filter's istio_tcp_received_bytes_total from one scrape: {'ok' if len(report.errors) == before else 'FAILED'}")

    report.step("scripts: shellcheck, kind scripts --dry-run")
    hooks = [o for o in renders.get("test-kafka-istio-mongo:default", []) if "test" in ((o["metadata"].get("annotations") or {}).get("helm.sh/hook", ""))]
    check_scripts(report, hooks)

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
