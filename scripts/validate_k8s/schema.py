"""CRD/OpenAPI validation: every object validated strictly (unknown fields are errors), built-in
kinds against the Kubernetes JSON schemas of PyPI kubernetes-validate, custom resources
against the openAPIV3Schema of the pinned CRDs (Strimzi 1.2.0, Istio 1.30.3, Kiali 2.29.0)
read from $KIOSK_CRDS_DIR, default ../shared/crds (never copied into the repository). An
object schema with `properties` and no x-kubernetes-preserve-unknown-fields is closed, as
`kubectl apply --validate=strict` (except under allOf/anyOf/oneOf/not, which only validate
values of a structural schema). And the self-checks that the validation rejects what it must."""

from __future__ import annotations

import copy
import sys

import jsonschema
import yaml

from .common import CRDS_DIR, ROOT, Report, ident, kv, load_yaml_objects


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
                "(Strimzi 1.2.0, Istio 1.30.3, Kiali 2.29.0)"
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


def schema_self_checks(report: Report, v: Validator) -> None:
    """The validation rejects what it must: unknown fields (CRD and Kubernetes schemas, nested),
    wrong types, enum violations, a kind without a schema; and a junctor's branches stay open."""
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
