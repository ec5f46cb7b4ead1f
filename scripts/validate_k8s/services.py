"""The kiosk services image as the bundle runs it: the binary its Dockerfile's ENTRYPOINT names,
the `kiosk-services` subcommands (services/src/lib.rs), the program a container runs."""

from __future__ import annotations

import json
import re

from .common import ROOT


SERVICES_LIB_RS = ROOT / "services/src/lib.rs"
KIOSK_DOCKERFILE = ROOT / "docker/kiosk.Dockerfile"


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


def kiosk_program(c: dict) -> str | None:
    """The kiosk subcommand a container runs (its first argument), if it runs the kiosk image."""
    args = c.get("args") or []
    return args[0] if args and "kiosk" in (c.get("image") or "") else None
