#!/usr/bin/env python3
"""Register the pipeline's mock schema in the schema registry and prove its compatibility level.

Run by the chart's registration Job after every install and upgrade, as the producer's identity
(the only one the registry's AuthorizationPolicy lets write), against the registry's
Confluent-compatible API (Apicurio Registry's /apis/ccompat/v7). Python standard library only.

  1. wait until the registry answers (its pod pulls and starts a JVM; the mesh may answer 503
     until then);
  2. PUT  /config/<subject>                       the subject's compatibility level (BACKWARD);
  3. POST /subjects/<subject>/versions            the schema (v1): its id (a rerun gets the same);
  4. GET  /schemas/ids/<id>                       the registry hands that schema back;
  5. POST /compatibility/subjects/<subject>/versions/latest   the compatible evolution (v2):
                                                  is_compatible must be true (not registered);
  6. POST /compatibility/... then POST /subjects/<subject>/versions with the incompatible one
     (v3): is_compatible false, and registering it must answer 409;
  7. GET  /config/<subject>                       the level is still the one set.

Exits 0 when all of it holds, 1 otherwise (the Job fails, and with it `helm install`).

Environment:
  SCHEMA_REGISTRY_URL        the API's base URL (.../apis/ccompat/v7)
  KIOSK_SCHEMA_SUBJECT       the subject (events-value)
  KIOSK_SCHEMA_COMPATIBILITY the level (BACKWARD)
  KIOSK_SCHEMA               the schema to register (a JSON Schema file)
  KIOSK_SCHEMA_COMPATIBLE    an evolution the level must accept
  KIOSK_SCHEMA_INCOMPATIBLE  an evolution the level must refuse
  KIOSK_WAIT_SECS            how long to wait for the registry (default 300)
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
# The mesh answers these while the registry (or its sidecar) is not ready yet.
NOT_READY = {502, 503, 504}


class Failed(Exception):
    pass


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if not value:
        raise Failed(f"{name} is not set")
    return value


class Registry:
    def __init__(self, base: str, deadline: float):
        self.base = base.rstrip("/")
        self.deadline = deadline

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        """One request, retried while the registry is unreachable or not ready (until the
        deadline): (status, the answer's JSON or text)."""
        data = json.dumps(body).encode() if body is not None else None
        last = ""
        while True:
            req = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": CONTENT_TYPE, "Accept": f"{CONTENT_TYPE}, application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    status, text = r.status, r.read().decode("utf-8", "replace")
            except urllib.error.HTTPError as e:
                status, text = e.code, e.read().decode("utf-8", "replace")
            except (urllib.error.URLError, OSError) as e:
                status, text = 0, str(getattr(e, "reason", e))
            if status and status not in NOT_READY:
                try:
                    return status, json.loads(text)
                except ValueError:
                    return status, text
            last = f"{status or 'no answer'}: {text[:200]}"
            if time.monotonic() > self.deadline:
                raise Failed(f"{method} {self.base}{path}: the registry did not answer in time (last: {last})")
            time.sleep(2)


def schema_body(path: str) -> tuple[str, dict]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    json.loads(text)  # a JSON Schema is JSON: fail here, not in the registry
    return text, {"schemaType": "JSON", "schema": text}


def expect(cond: bool, what: str, status: int, answer: object) -> None:
    if not cond:
        hint = " (403: the registry's AuthorizationPolicy refused this identity)" if status == 403 else ""
        raise Failed(f"{what}: got {status} {json.dumps(answer)[:300]}{hint}")


def main() -> int:
    try:
        base = env("SCHEMA_REGISTRY_URL")
        subject = env("KIOSK_SCHEMA_SUBJECT")
        level = env("KIOSK_SCHEMA_COMPATIBILITY")
        v1_path, v2_path, v3_path = env("KIOSK_SCHEMA"), env("KIOSK_SCHEMA_COMPATIBLE"), env("KIOSK_SCHEMA_INCOMPATIBLE")
        wait = int(env("KIOSK_WAIT_SECS", "300"))
        reg = Registry(base, time.monotonic() + wait)
        v1_text, v1 = schema_body(v1_path)
        _, v2 = schema_body(v2_path)
        _, v3 = schema_body(v3_path)

        status, answer = reg.call("PUT", f"/config/{subject}", {"compatibility": level})
        expect(status == 200 and isinstance(answer, dict) and answer.get("compatibility") == level,
               f"PUT /config/{subject} {level}", status, answer)
        print(f"{subject}: compatibility {level}", flush=True)

        status, answer = reg.call("POST", f"/subjects/{subject}/versions", v1)
        expect(status == 200 and isinstance(answer, dict) and isinstance(answer.get("id"), int),
               f"registering {os.path.basename(v1_path)} as {subject}", status, answer)
        schema_id = answer["id"]
        print(f"{subject}: {os.path.basename(v1_path)} registered, id {schema_id}", flush=True)

        status, answer = reg.call("GET", f"/schemas/ids/{schema_id}")
        expect(status == 200 and isinstance(answer, dict) and isinstance(answer.get("schema"), str)
               and json.loads(answer["schema"]) == json.loads(v1_text),
               f"GET /schemas/ids/{schema_id} hands back {os.path.basename(v1_path)}", status, answer)

        status, answer = reg.call("POST", f"/compatibility/subjects/{subject}/versions/latest", v2)
        expect(status == 200 and isinstance(answer, dict) and answer.get("is_compatible") is True,
               f"{os.path.basename(v2_path)} must be {level}-compatible with the latest version", status, answer)
        print(f"{subject}: {os.path.basename(v2_path)} is compatible ({level})", flush=True)

        status, answer = reg.call("POST", f"/compatibility/subjects/{subject}/versions/latest", v3)
        expect(status == 200 and isinstance(answer, dict) and answer.get("is_compatible") is False,
               f"{os.path.basename(v3_path)} must not be {level}-compatible with the latest version", status, answer)
        status, answer = reg.call("POST", f"/subjects/{subject}/versions", v3)
        if status == 200:
            raise Failed(f"{os.path.basename(v3_path)} was registered under {subject} ({json.dumps(answer)}): "
                         f"the registry does not enforce {level}, and the subject now holds an incompatible version")
        expect(status == 409, f"registering {os.path.basename(v3_path)} must be refused with 409", status, answer)
        print(f"{subject}: {os.path.basename(v3_path)} refused (409)", flush=True)

        status, answer = reg.call("GET", f"/config/{subject}")
        got = (answer.get("compatibilityLevel") or answer.get("compatibility")) if isinstance(answer, dict) else None
        expect(status == 200 and got == level, f"GET /config/{subject} is {level}", status, answer)
        print(f"{subject}: ready, schema id {schema_id}", flush=True)
        return 0
    except Failed as e:
        print(f"schema registration failed: {e}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
