"""The filter's contract, generated from its code (filter/tests/contract.rs): the labels and
metrics it emits (filter/contract/metrics.json) and the pluginConfig it accepts
(filter/contract/plugin-config.schema.json)."""

from __future__ import annotations

import json
import sys

from .common import ROOT


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


def plugin_protocol(plugin: dict) -> str:
    """The protocol a WasmPlugin's filter reads (pluginConfig.protocol, `kafka` when unset)."""
    return ((plugin.get("spec") or {}).get("pluginConfig") or {}).get("protocol") or "kafka"


def contract_schema() -> dict:
    return json.loads((FILTER_CONTRACT / "plugin-config.schema.json").read_text())


def contract_knows_protocols() -> bool:
    """Whether the filter's contract already has the MongoDB fields (`protocol`, `mongodb_auth`)."""
    props = contract_schema().get("properties") or {}
    return "protocol" in props and "mongodb_auth" in props


def filter_istio_series() -> tuple[str, str, set[str]]:
    """(metric name, type, labels) of the filter's Istio-shaped series (filter/contract/metrics.json)."""
    istio = [m for m in filter_metrics()["metrics"] if m["name"].startswith("istio_")]
    if not istio:
        sys.exit("validate-k8s: no istio_* metric in filter/contract/metrics.json")
    return istio[0]["name"], istio[0]["type"], set(istio[0]["labels"])
