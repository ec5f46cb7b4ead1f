"""Keycloak, the identity provider the ingress gateway trusts (issue 30), as it runs from the
bundle: its container (the image quay.io/keycloak/keycloak, `start` and its flags), the realm it
imports at start (`--import-realm` reads /opt/keycloak/data/import/*.json: a ConfigMap mounted
there), that realm as Keycloak imports it (its ${VAR} and ${VAR:default} placeholders resolved
from the container's environment, an unset one without a default left as written), and the URLs
the realm answers on (--hostname pins them: the issuer <hostname>/realms/<realm>, its JWKS and
token endpoint below it), and the volume of its data directory (H2: the realms, their secrets
and signing keys; the import skips a realm that is already there). The invariants are checked
in rest.py (check_ingress_jwt)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .common import ROOT, ident
from .k8s import Parts, arg_value, container_env, containers, pod_templates

# Keycloak's data dir (<home>/data, the image's home /opt/keycloak): H2's file (--db=dev-file)
# with the realms and their signing keys, and the transaction logs.
DATA_DIR = "/opt/keycloak/data"
# What --import-realm reads.
IMPORT_DIR = DATA_DIR + "/import"
# The realm file, the one source: the chart's ConfigMap holds it, the local mesh reads it.
REALM_FILE = ROOT / "charts/test-kafka-istio-mongo/files/keycloak/realm-kiosk.json"
KEYCLOAK_IMAGE = re.compile(r"(^|/)keycloak/keycloak[:@]")
# Keycloak's placeholders in an imported realm: ${VAR}, ${VAR:default} (environment variables).
PLACEHOLDER = re.compile(r"\$\{([^}:]+)(?::([^}]*))?\}")
JWKS_PATH = "/protocol/openid-connect/certs"
TOKEN_PATH = "/protocol/openid-connect/token"
AUDIENCE_MAPPER = "oidc-audience-mapper"


def is_keycloak(container: dict) -> bool:
    """A container running Keycloak's image."""
    return bool(KEYCLOAK_IMAGE.search(str(container.get("image") or "")))


def keycloak_own_env(container: dict, name: str) -> bool:
    """An environment variable of Keycloak's own configuration (KC_*, e.g. the bootstrap
    admin's password) in Keycloak's container: a credential of Keycloak, not of its clients."""
    return is_keycloak(container) and name.startswith("KC_")


def placeholders(text: str) -> list[tuple[str, str | None]]:
    """The (variable, default or None) of each placeholder in a string."""
    return [(m.group(1), m.group(2)) for m in PLACEHOLDER.finditer(text)]


def resolve(value, env: dict[str, Parts]):
    """A realm value as Keycloak imports it: each placeholder in each string replaced by the
    variable's value (text; a value unknown offline, e.g. from a Secret the bundle lacks, as
    <unknown ...>), else its default, else left as written."""
    if isinstance(value, dict):
        return {k: resolve(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m):
        var, default = m.group(1), m.group(2)
        if var in env:
            return "".join(s if kind == "text" else f"<{s}>" for kind, s in env[var])
        return default if default is not None else m.group(0)

    return PLACEHOLDER.sub(one, value)


def strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


@dataclass
class Realm:
    name: str
    source: str  # "ConfigMap/<ns>/<name> key <key>"
    text: str  # the file as mounted
    raw: dict  # as written
    resolved: dict  # as imported

    def client(self, client_id: str) -> tuple[dict, dict] | None:
        """(as written, as imported) of a client."""
        for raw, res in zip(self.raw.get("clients") or [], self.resolved.get("clients") or []):
            if res.get("clientId") == client_id:
                return raw, res
        return None

    def audiences(self, client: dict) -> set[str]:
        """The audiences a client's audience mappers put in its access tokens (as imported)."""
        return {str((m.get("config") or {}).get("included.custom.audience") or (m.get("config") or {}).get("included.client.audience"))
                for m in client.get("protocolMappers") or []
                if m.get("protocolMapper") == AUDIENCE_MAPPER and str((m.get("config") or {}).get("access.token.claim", "true")) == "true"}


@dataclass
class Keycloak:
    obj: dict
    podspec: dict
    container: dict
    args: list[str]
    env: dict[str, Parts]
    hostname: str | None
    import_realm: bool
    realms: list[Realm] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # realm files that are no JSON

    @property
    def who(self) -> str:
        return f"{ident(self.obj)} (Keycloak)"

    def issuer(self, realm: Realm) -> str | None:
        return f"{self.hostname.rstrip('/')}/realms/{realm.name}" if self.hostname else None

    def http_port(self) -> int:
        return int(arg_value(self.args, "--http-port") or 8080)

    def env_entry(self, name: str) -> dict | None:
        return next((e for e in self.container.get("env") or [] if e.get("name") == name), None)

    def data_volume(self) -> tuple[dict | None, dict | None]:
        """(mount, volume) of the volume mounted at DATA_DIR: (None, None) when the data dir is
        on the container's own filesystem (lost with the container)."""
        mount = next((m for m in self.container.get("volumeMounts") or []
                      if str(m.get("mountPath") or "").rstrip("/") == DATA_DIR), None)
        if mount is None:
            return None, None
        return mount, next((v for v in self.podspec.get("volumes") or [] if v.get("name") == mount.get("name")), None)


def realm_files(objects: list[dict], ns: str, podspec: dict, container: dict) -> list[tuple[str, str]]:
    """(source, text) of each *.json a ConfigMap volume mounts at IMPORT_DIR (the directory, or
    one file by subPath)."""
    vols = {v.get("name"): v for v in podspec.get("volumes") or []}
    out = []
    for m in container.get("volumeMounts") or []:
        cm_ref = ((vols.get(m.get("name")) or {}).get("configMap")) or {}
        mount = str(m.get("mountPath") or "").rstrip("/")
        cm = next((o for o in objects if o.get("kind") == "ConfigMap" and o["metadata"]["name"] == cm_ref.get("name")
                   and o["metadata"].get("namespace") == ns), None) if cm_ref else None
        if cm is None:
            continue
        data = cm.get("data") or {}
        items = {i["key"]: i["path"] for i in cm_ref.get("items") or []} or {k: k for k in data}
        for key, path in items.items():
            if key not in data:
                continue
            if m.get("subPath"):
                at = mount if m["subPath"] == path else None
            else:
                at = f"{mount}/{path}"
            if at and at.rsplit("/", 1)[0] == IMPORT_DIR and at.endswith(".json"):
                out.append((f"{ident(cm)} key {key}", data[key]))
    return out


def keycloaks(objects: list[dict]) -> list[Keycloak]:
    """Every Keycloak container of the bundle's workloads, with the realms it imports."""
    out = []
    for o in objects:
        ns = o["metadata"].get("namespace")
        for _, podspec in pod_templates(o):
            for c in containers(podspec):
                if not is_keycloak(c):
                    continue
                args = [str(a) for a in c.get("args") or []]
                env = container_env(objects, ns, c)
                kc = Keycloak(o, podspec, c, args, env, arg_value(args, "--hostname"), "--import-realm" in args or "--import-realm=true" in args)
                for source, text in realm_files(objects, ns, podspec, c):
                    try:
                        raw = json.loads(text)
                    except ValueError as e:
                        kc.unreadable.append(f"{source}: {e}")
                        continue
                    kc.realms.append(Realm(str(raw.get("realm")), source, text, raw, resolve(raw, env)))
                out.append(kc)
    return out
