"""Shared by every check: the repository's paths, the charts and the release names
scripts/kind-up.sh installs them as, Helm's and kubernetes-validate's libraries, and Report,
which counts each check and prints what failed."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import yaml

try:
    import helm_python as helm
    import kubernetes_validate.utils as kv
except ImportError as e:  # pragma: no cover
    sys.exit(f"validate-k8s: {e}: run scripts/setup.sh (it installs helm-python-sdk and kubernetes-validate into .venv)")

ROOT = Path(__file__).resolve().parents[2]  # the repository: scripts/validate_k8s/common.py
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
    """The checks' tally: each check counted, each failure printed and kept (errors)."""

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

    @contextmanager
    def summing_up(self, line: str):
        """Print `  <line>: ok`, or FAILED when a check of the block failed, once it has run."""
        before = len(self.errors)
        yield
        print(f"  {line}: {'ok' if len(self.errors) == before else 'FAILED'}")


def ident(obj: dict) -> str:
    md = obj.get("metadata") or {}
    ns = md.get("namespace")
    return f"{obj.get('kind')}/{(ns + '/') if ns else ''}{md.get('name')}"


def load_yaml_objects(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def strip(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if not k.startswith("_")}
