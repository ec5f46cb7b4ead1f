"""Istio's model of the bundle, evaluated here as Istio would: the namespaces with injection,
PeerAuthentication precedence (mtls_mode), TLS origination of DestinationRules, the custom
injection templates of istio/helm/istiod-values.yaml (rendered for a pod in both sidecar
modes), WasmPlugin selection, and AuthorizationPolicies (CUSTOM/DENY/ALLOW, principals,
namespaces, methods, paths) for a given caller and request."""

from __future__ import annotations

import re

import yaml

from .common import ROOT, helm, ident
from .k8s import selector_matches
from .pods import Pod
from .render import render_injection_template


PROXY = "istio-proxy"  # the sidecar's container name (istio/istio pkg/kube/inject, ProxyContainerName)
ROOT_NAMESPACE = "istio-system"  # Istio's root namespace: a Telemetry there without a selector is mesh-wide
ISTIOD_VALUES = ROOT / "istio/helm/istiod-values.yaml"
INJECT_TEMPLATES = "inject.istio.io/templates"  # Istio's annotation naming the injection templates to run
NATIVE_SIDECAR = "sidecar.istio.io/nativeSidecar"


def injected_namespaces() -> set[str]:
    text = (ROOT / "scripts/kind-up.sh").read_text()
    return set(re.findall(r"kubectl label namespace (\S+) istio-injection=enabled", text))


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


def tls_origination(objects: list[dict]):
    """(DestinationRule, port, tls settings) of every port-level TLS origination."""
    for dr in (o for o in objects if o.get("kind") == "DestinationRule"):
        for pls in (dr["spec"].get("trafficPolicy") or {}).get("portLevelSettings") or []:
            tls = pls.get("tls") or {}
            if tls.get("mode") in ("SIMPLE", "MUTUAL"):
                yield dr, (pls.get("port") or {}).get("number"), tls


def injection_templates() -> dict[str, str]:
    """The custom sidecar injection templates istiod is installed with (istio/helm/istiod-values.yaml)."""
    values = yaml.safe_load(ISTIOD_VALUES.read_text()) or {}
    return ((values.get("sidecarInjectorWebhook") or {}).get("templates")) or {}


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


def plugin_selects(plugin: dict, namespace: str | None, labels: dict) -> bool:
    sel = ((plugin["spec"].get("selector") or {}).get("matchLabels")) or {}
    ns = plugin["metadata"].get("namespace")
    return all(labels.get(k) == v for k, v in sel.items()) and (ns == "istio-system" or ns == namespace)


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
