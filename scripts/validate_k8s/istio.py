"""The mesh's own objects: the Kafka WasmPlugin (selects every Kafka client and no broker, its
pluginConfig known to the filter and naming the Kiali CR's extension, pinned by digest or
pulled Always), the mesh ConfigMap (extraStatTags cover every filter label; istiod's
SHARED_MESH_CONFIG), DestinationRule credentialName Secrets in the workload's namespace, and
Wasm VMs shared by WasmPlugins of one module (issue 24, docs/wasm-vms.md): any two that may
select one pod carry the same vmConfig."""

from __future__ import annotations

import copy
import json

import yaml

from .common import ROOT, Report, helm, ident, load_yaml_objects
from .contract import filter_config_fields, plugin_protocol
from .credentials import client_cert_targets
from .mesh import ROOT_NAMESPACE
from .mongodb import mongodb_secret_names
from .probe import expect_refusals, probe
from .render import render_values
from .strimzi import Client, broker_pods


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


def check_wasm_pull(report: Report, label: str, objects: list[dict]) -> None:
    for p in (o for o in objects if o.get("kind") == "WasmPlugin"):
        url, policy = p["spec"].get("url", ""), p["spec"].get("imagePullPolicy", "UNSPECIFIED_POLICY")
        by_digest = "@sha256:" in url
        report.check(by_digest or policy == "Always", f"{label}: {ident(p)}: {url} is pinned by digest or pulled Always",
                     f"imagePullPolicy {policy} with a tag: each sidecar's agent keeps the module it fetched for that URL (istio/istio pkg/wasm/cache.go)")


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
    expect_refusals(report, cases, lambda b: probe(check_wasm_vms, b), "self-check: Wasm VMs: {what}: accepted", "self-check: Wasm VMs: {what}: rejected")
    # The chart's two plugins take their vmConfig from one template: other variable names reach both.
    values = {"kafkaAuth": {"mechanism": "SCRAM-SHA-256", "usernameEnv": "OTHER_USER", "passwordEnv": "OTHER_PASSWORD"}}
    try:
        plugins = [d for d in render_values("kiosk-filter", values) if d.get("kind") == "WasmPlugin"]
    except helm.HelmError as e:
        report.error(f"self-check: Wasm VMs: charts/kiosk-filter with other kafkaAuth variables: helm render failed: {e}")
        return
    envs = {d["metadata"]["name"]: vm_environment_text(d) for d in plugins}
    report.check(len(plugins) == 2 and set(envs.values()) == {"OTHER_PASSWORD (HOST), OTHER_USER (HOST)"} and not probe(check_wasm_vms, plugins),
                 "self-check: Wasm VMs: charts/kiosk-filter with other kafkaAuth variables gives both WasmPlugins the same vmConfig", str(envs))
