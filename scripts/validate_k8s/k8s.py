"""Kubernetes objects as the kubelet and the API server read them: pod templates and their
containers, arguments, a container's environment with $(VAR) expanded as the kubelet does
(values known offline as parts: text, the pod's name, unknown), label selectors, RBAC Roles
and their bindings, service accounts and their API tokens, files mounted from Secrets and
ConfigMaps."""

from __future__ import annotations

import re


# Workloads: their pods, containers, arguments, replicas, service account.

def pod_templates(obj: dict) -> list[tuple[dict, dict]]:
    """(pod labels, pod spec) of a workload object."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
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


def workload_replicas(obj: dict) -> int:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Job":
        return int(spec.get("parallelism", 1))
    return int(spec.get("replicas", 1)) if obj.get("kind") in ("Deployment", "StatefulSet", "ReplicaSet") else 1


def service_account_of(obj: dict, podspec: dict | None) -> tuple[str, str]:
    """The service account of a workload's pods: its pod spec's, or for a pod Strimzi writes
    (podspec None) the one Strimzi makes (`<name>-bridge`, `<name>-connect`)."""
    ns = obj["metadata"].get("namespace")
    if podspec is not None:
        return ns, podspec.get("serviceAccountName") or "default"
    suffix = {"KafkaBridge": "bridge", "KafkaConnect": "connect"}[obj["kind"]]
    return ns, f"{obj['metadata']['name']}-{suffix}"


def token_mounted(objects: list[dict], obj: dict, podspec: dict | None) -> bool:
    """Whether the application of a workload's pods (`podspec`; None: a pod Strimzi writes for
    a KafkaBridge or KafkaConnect) gets its service account's API token."""
    if podspec is None:
        return True  # Strimzi mounts it (VolumeUtils.createServiceAccountVolume, KafkaBridgeCluster, KafkaConnectCluster)
    if podspec.get("automountServiceAccountToken") is not None:
        return bool(podspec["automountServiceAccountToken"])
    ns, name = service_account_of(obj, podspec)
    sa = next((o for o in objects if o.get("kind") == "ServiceAccount" and (o["metadata"].get("namespace"), o["metadata"]["name"]) == (ns, name)), {})
    return sa.get("automountServiceAccountToken") is not False


# A container's environment.

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
    """The data of a ConfigMap or Secret of the bundle (stringData over data, a Secret's data
    decoded), or None."""
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


def secret_value(objects: list[dict], ns: str, name: str, key: str) -> str | None:
    """A key of a Secret of the bundle (stringData or data), or None."""
    return (object_data(objects, "Secret", ns, name) or {}).get(key)


def env_value(objects: list[dict], ns: str, e: dict) -> tuple[str | None, str]:
    """An env entry's value, resolved from the bundle's Secrets, and where it comes from."""
    if "value" in e:
        return str(e["value"]), "its value"
    ref = ((e.get("valueFrom") or {}).get("secretKeyRef")) or {}
    if ref:
        return secret_value(objects, ns, ref.get("name"), ref.get("key")), f"Secret {ref.get('name')} key {ref.get('key')}"
    return None, "not a value"


# Selectors and RBAC.

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


def rbac_allows(objects: list[dict], sa: tuple[str, str], ns: str, verb: str, resource: str, name: str | None, group: str = "") -> bool:
    """Whether a Role bound in `ns` to service account `sa` allows `verb` on `resource` `name`
    of API group `group` (the core group by default)."""
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


# Files mounted from Secrets and ConfigMaps.

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

