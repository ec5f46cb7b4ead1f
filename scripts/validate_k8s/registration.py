"""The schema registration Job's program, `kiosk-services register-schemas` (services/src/schemas.rs,
the binary `cargo build -p kiosk-services --bin kiosk-services` builds), run here with the Job's
arguments and schema files as the chart renders them: against a stand-in of the registry's
Confluent-compatible API (503 while starting, content ids, 409 for an incompatible version under
a model of Apicurio 3.3.3's JSON Schema rules) and its doctored versions, then where
scripts/setup.sh installed it (and a Java 21+ is here) against Apicurio Registry 3.3.3 itself on
an H2 file, rerun and restarted; and the self-checks that a program that checks nothing or only
registers v1, a Job that skips a step, and schemas the registry would refuse, are rejected."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import ROOT, Report
from .k8s import mounted_configmap_file
from .kind import kind_up_timeout_minutes
from .probe import expect_refusals, probe
from .registry import CCOMPAT, REGISTRATION_SCHEMAS, check_schema_files, registration_jobs, registration_options


APICURIO_VERSION = "3.3.3"


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
    `deny`: methods answered 403 as the registry's sidecar would; `registers_anything`: a
    registration accepted whatever the compatibility check says."""

    def __init__(self, starting=0, enforce=True, judge=backward_compatible, deny=(), registers_anything=False):
        import http.server
        import threading

        self.calls: list[tuple[str, str, object]] = []
        self.config: dict[str, str] = {}
        self.contents: list[str] = []  # content id - 1 -> canonical schema
        self.raw: list[str] = []  # content id - 1 -> the schema as registered
        self.subjects: dict[str, list[int]] = {}
        self.starting, self.enforce, self.judge, self.deny = starting, enforce, judge, set(deny)
        self.registers_anything = registers_anything
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
        why = [] if self.registers_anything else self.incompatible(subject, body["schema"])
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


# Where `cargo build -p kiosk-services --bin kiosk-services` puts the binary the kiosk image
# carries (docker/kiosk.Dockerfile), and the command that builds it.
BUILD_COMMAND = "cargo build -p kiosk-services --bin kiosk-services"
SERVICES_SOURCES = ROOT / "services"


def kiosk_services_binary() -> Path:
    """target/debug/kiosk-services (under $CARGO_TARGET_DIR when set, as cargo puts it)."""
    return ROOT / (os.environ.get("CARGO_TARGET_DIR") or "target") / "debug" / "kiosk-services"


def registration_binary(report: Report) -> Path | None:
    """The kiosk-services binary to run, built and newer than its sources; a failed check (naming
    the command that builds it) otherwise."""
    binary = kiosk_services_binary()
    if not report.check(binary.is_file() and os.access(binary, os.X_OK), f"the kiosk-services binary {binary} is built",
                        f"missing: build it with `{BUILD_COMMAND}` (scripts/test.sh does before validating)"):
        return None
    built = binary.stat().st_mtime
    newer = sorted(str(f.relative_to(ROOT)) for f in [*SERVICES_SOURCES.glob("src/**/*.rs"), SERVICES_SOURCES / "Cargo.toml"]
                   if f.stat().st_mtime > built)
    if not report.check(not newer, f"the kiosk-services binary {binary} is newer than its sources",
                        f"{', '.join(newer[:3])} changed since: rebuild it with `{BUILD_COMMAND}`"):
        return None
    return binary


def registration_inputs(rendered: list[dict]) -> tuple[list[str], dict[str, str], dict[str, str]] | None:
    """The registration Job's arguments (`register-schemas ...`), its schema files (path in the
    container -> text, from the ConfigMap mounted there) and its environment, as the chart
    renders them."""
    jobs = registration_jobs(rendered)
    if not jobs:
        return None
    job, podspec, c = jobs[0]
    args = [str(a) for a in c.get("args") or []]
    env = {e["name"]: e.get("value") for e in c.get("env") or []}
    options = registration_options(args)
    files = {}
    for option, _ in REGISTRATION_SCHEMAS:
        for path in options.get(option) or []:
            f = mounted_configmap_file(rendered, podspec, c, path)
            if f:
                files[path] = f[0]["data"][f[1]]
    if any(not options.get(option) or options[option][0] not in files for option, _ in REGISTRATION_SCHEMAS):
        return None
    return args, files, env


def registration_schemas(args: list[str], files: dict[str, str]) -> dict[str, str]:
    """Option (--schema, --compatible, --refused) -> the text of its (first) schema, for those
    given a file."""
    options = registration_options(args)
    return {option: files[options[option][0]] for option, _ in REGISTRATION_SCHEMAS
            if options.get(option) and options[option][0] in files}


def with_schema(args: list[str], files: dict[str, str], option: str, text: str) -> dict[str, str]:
    """The files, the (first) schema of `option` replaced by `text`."""
    return dict(files, **{registration_options(args)[option][0]: text})


def with_option(args: list[str], option: str, value: str) -> list[str]:
    """The arguments with `option` given `value` (replaced, or added)."""
    out, i = [], 0
    while i < len(args):
        if args[i] == option:
            i += 2
            continue
        if args[i].startswith(option + "="):
            i += 1
            continue
        out.append(args[i])
        i += 1
    return out + [option, value]


def run_registration(program: Path | str, args: list[str], files: dict[str, str], env: dict[str, str], url: str,
                     wait: int = 20) -> tuple[int, str]:
    """Run `program args` (the kiosk-services binary, `register-schemas ...`) as the Job would, its
    schema files where the arguments name them and its registry at `url`: (exit status, output)."""
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        mapped = {}
        for i, (path, text) in enumerate(sorted(files.items())):
            f = t / str(i) / Path(path).name
            f.parent.mkdir()
            f.write_text(text)
            mapped[path] = str(f)
        argv = [mapped.get(a, a) for a in args]
        run_env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "HOME")}
        run_env.update({k: v for k, v in env.items() if v is not None})
        path = urllib_path(env.get("SCHEMA_REGISTRY_URL") or "")
        run_env.update(SCHEMA_REGISTRY_URL=url + path, KIOSK_WAIT_SECS=str(wait), KIOSK_LOG="warn")
        try:
            r = subprocess.run([str(program), *argv], env=run_env, capture_output=True, text=True, timeout=wait + 60)
        except subprocess.TimeoutExpired as e:
            return 124, f"timed out: {e}"
        except OSError as e:
            return 126, f"{program}: {e}"
        return r.returncode, r.stdout + r.stderr


def urllib_path(url: str) -> str:
    m = re.match(r"^https?://[^/]+(/.*)?$", url)
    return (m.group(1) or "") if m else ""


def check_registration_run(report: Report, label: str, program: Path | str, args: list[str], files: dict[str, str], env: dict[str, str]) -> None:
    """`kiosk-services register-schemas` as the Job runs it, against an honest stand-in (answering
    503 while it "starts"): it sets the level, registers v1 only, reads it back by id, has v2
    judged compatible and v3 both judged incompatible and refused (409), and exits 0; a rerun
    (post-upgrade) changes nothing. Against a registry that enforces nothing, that judges v2
    incompatible, that refuses its writes (403) or that never answers, it exits non-zero."""
    options = registration_options(args)
    subject = (options.get("--subject") or ["events-value"])[-1]
    level = (options.get("--compatibility") or ["BACKWARD"])[-1]
    api = urllib_path(env.get("SCHEMA_REGISTRY_URL") or "")
    report.check(api == CCOMPAT, f"{label}: the Job's registry URL is the Confluent-compatible API ({CCOMPAT})", api)
    given = {option: json.dumps(json.loads(text), sort_keys=True) for option, text in registration_schemas(args, files).items()}
    canon = {option: given.get(option, f"({option} not given)") for option, _ in REGISTRATION_SCHEMAS}
    reg = FakeSchemaRegistry(starting=3)
    try:
        rc, out = run_registration(program, args, files, env, reg.url)
        first_run = len(reg.calls)
        rc2, out2 = run_registration(program, args, files, env, reg.url)
    finally:
        reg.close()
    report.check(rc == 0, f"{label}: it succeeds against the stand-in registry (after 503s while it starts)", out[-600:])
    first = [(m, p.split("?")[0].removeprefix(api), json.dumps(json.loads(b["schema"]), sort_keys=True) if isinstance(b, dict) and "schema" in b else b)
             for m, p, b in reg.calls[:first_run]]

    def index(method, path, body=None):
        return next((i for i, c in enumerate(first) if c[0] == method and c[1] == path and (body is None or c[2] == body)), None)

    set_level = index("PUT", f"/config/{subject}", {"compatibility": level})
    reg_v1 = index("POST", f"/subjects/{subject}/versions", canon["--schema"])
    compat_v2 = index("POST", f"/compatibility/subjects/{subject}/versions/latest", canon["--compatible"])
    reg_v3 = index("POST", f"/subjects/{subject}/versions", canon["--refused"])
    report.check(None not in (set_level, reg_v1) and set_level < reg_v1, f"{label}: it sets {subject}'s compatibility to {level} before registering", str(first[:6]))
    report.check(reg_v1 is not None and index("GET", "/schemas/ids/1") is not None, f"{label}: it registers v1 and reads it back by its id")
    report.check(None not in (reg_v1, compat_v2) and compat_v2 > reg_v1, f"{label}: it has v2 checked against the latest version (POST /compatibility/...)")
    report.check(None not in (reg_v1, reg_v3) and reg_v3 > reg_v1 and "409" in out, f"{label}: it tries to register v3 and sees it refused (409)", out[-300:])
    report.check(reg.subjects.get(subject) == [1] and reg.config.get(subject) == level,
                 f"{label}: afterwards {subject} holds v1 alone, compatibility {level}", f"versions {reg.subjects}, config {reg.config}")
    report.check(rc == 0 and f"{subject}: ready, schema id 1" in out.splitlines(), f"{label}: its last word is `{subject}: ready, schema id 1`", out[-300:])
    report.check(rc2 == 0 and reg.subjects.get(subject) == [1], f"{label}: run again (post-upgrade) it succeeds and changes nothing", out2[-300:])
    bad = [
        ("a registry that enforces no compatibility (v3 accepted)", dict(enforce=False), "v3-incompatible.schema.json must not be"),
        ("a registry judging v2 incompatible", dict(judge=lambda a, b: ["everything"]), "must be"),
        ("a registry registering v3 although it judges it incompatible", dict(registers_anything=True), "the registry does not enforce"),
        ("writes refused by the registry's sidecar (403)", dict(deny={"POST", "PUT"}), "AuthorizationPolicy refused this identity"),
    ]
    for what, kw, want in bad:
        reg = FakeSchemaRegistry(**kw)
        try:
            rc, out = run_registration(program, args, files, env, reg.url)
        finally:
            reg.close()
        report.check(rc != 0 and want in out, f"{label}: against {what} it fails, saying so", f"exit {rc}: {out[-300:]}")
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()
    rc, out = run_registration(program, args, files, env, closed, wait=3)
    report.check(rc != 0 and "did not answer" in out, f"{label}: with no registry answering it fails once its wait is over", f"exit {rc}: {out[-300:]}")


def apicurio_install() -> tuple[Path, str] | None:
    """Apicurio Registry's runnable (scripts/setup.sh unpacks it into $KIOSK_CACHE) and a Java 21+."""
    root = Path(os.environ.get("KIOSK_CACHE") or Path.home() / ".cache/kiosk") / f"apicurio-registry-{APICURIO_VERSION}"
    if not (root / "quarkus-run.jar").is_file():
        return None
    candidates = [os.environ.get("KIOSK_JAVA21") or ""] + sorted((str(p) for p in Path("/usr/lib/jvm").glob("temurin-*/bin/java")), reverse=True) + [shutil.which("java") or ""]
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
    binary = kiosk_services_binary()
    if found is None or inputs is None or not binary.is_file():
        why = ("not installed (scripts/setup.sh) or no Java 21+" if found is None else "no registration Job rendered" if inputs is None
               else f"no {binary}")
        print(f"  Apicurio Registry {APICURIO_VERSION}: skipped ({why})")
        return
    root, java = found
    args, files, env = inputs
    schemas = registration_schemas(args, files)
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
                rc, out = run_registration(binary, args, files, env, url, wait=60)
                report.check(rc == 0 and "refused (409)" in out, f"{label}: register-schemas succeeds: v1 registered, v2 compatible, v3 refused 409", out[-600:])
                first_id = re.findall(r"ready, schema id (\d+)", out)
                rc, out = run_registration(binary, args, files, env, url, wait=60)
                report.check(rc == 0 and re.findall(r"ready, schema id (\d+)", out) == first_id, f"{label}: run again (post-upgrade) it succeeds, same id {first_id}", out[-400:])
                # v1 with an open content model: the registry refuses v2, as the stand-in's judgement says.
                v1 = json.loads(schemas["--schema"])
                v1.pop("additionalProperties", None)
                rc, out = run_registration(binary, with_option(args, "--subject", "open-model-value"),
                                           with_schema(args, files, "--schema", json.dumps(v1)), env, url, wait=60)
                judged = backward_compatible(v1, json.loads(schemas["--compatible"]))
                report.check(rc != 0 and "is_compatible" in out and bool(judged),
                             f"{label}: with v1 an open content model it refuses v2, as the stand-in judges ({judged[:1]})", out[-400:])
        finally:
            stop(p)
        if ready:
            p = start()
            try:
                rc, out = run_registration(binary, args, files, env, url, wait=90)
                report.check(rc == 0 and re.findall(r"ready, schema id (\d+)", out) == first_id,
                             f"{label}: restarted on the same H2 file, the schema keeps its id {first_id}", out[-400:])
            finally:
                stop(p)
    print(f"  Apicurio Registry {APICURIO_VERSION} ({java}): register-schemas run against it, restarted on its H2 file")


def schema_registration_checks(report: Report, rendered: list[dict]) -> None:
    """`kiosk-services register-schemas` as the Job runs it, against the stand-in (and its doctored
    versions), then against Apicurio Registry where installed; kind-up.sh waits long enough."""
    check_schema_files(report)
    inputs = registration_inputs(rendered)
    if not report.check(inputs is not None, "charts/test-kafka-istio-mongo: the schema registration Job runs register-schemas with its schemas in rendered ConfigMaps"):
        return
    args, files, env = inputs
    job = registration_jobs(rendered)[0][0]
    deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
    minutes = kind_up_timeout_minutes()
    report.check(deadline is not None and minutes is not None and minutes * 60 > deadline,
                 f"scripts/kind-up.sh waits longer for the chart ({minutes} min) than its registration hook may run ({deadline} s)",
                 "Helm waits for post-install hooks within --timeout (default 5 min)")
    binary = registration_binary(report)
    if binary is None:
        return
    check_registration_run(report, "kiosk-services register-schemas", binary, args, files, env)
    apicurio_checks(report, rendered)


# A stand-in for the binary that registers v1 and nothing else: no level set, no evolution
# checked (it retries while the stand-in registry "starts").
V1_ONLY = """
import json, os, sys, time, urllib.error, urllib.request
a = sys.argv[1:]
subject = a[a.index("--subject") + 1] if "--subject" in a else "events-value"
body = json.dumps({"schemaType": "JSON", "schema": open(a[a.index("--schema") + 1]).read()}).encode()
req = urllib.request.Request(os.environ["SCHEMA_REGISTRY_URL"] + f"/subjects/{subject}/versions", data=body, method="POST",
                             headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
for _ in range(50):
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            print(f"{subject}: ready, schema id {json.load(r)['id']}")
            sys.exit(0)
    except urllib.error.HTTPError as e:
        if e.code not in (502, 503, 504):
            sys.exit(1)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit(1)
"""


def registration_self_checks(report: Report, bundle: list[dict]) -> None:
    """The registration checks must reject a program that checks nothing or only registers v1,
    a Job that leaves out v2's or v3's check, and schemas the registry would refuse (the kind
    install's Job, doctored)."""
    inputs = registration_inputs(bundle)
    if inputs is None:
        report.error("self-check: no registration Job to doctor")
        return
    binary = kiosk_services_binary()
    if not binary.is_file():
        print(f"  self-check of the registration checks: skipped (no {binary}; build it with `{BUILD_COMMAND}`)")
        return
    args, files, env = inputs
    open_v1 = json.loads(registration_schemas(args, files)["--schema"])
    open_v1.pop("additionalProperties", None)

    def without(option):
        options = registration_options(args)
        return [a for a in args if a != option and a not in options[option]]

    with tempfile.TemporaryDirectory() as tmp:
        nothing, v1_only = Path(tmp) / "checks-nothing", Path(tmp) / "v1-only"
        nothing.write_text("#!/bin/sh\nexit 0\n")
        v1_only.write_text(f"#!{sys.executable}\n{V1_ONLY}")
        for f in (nothing, v1_only):
            f.chmod(0o755)
        expect_refusals(report, [(what, a, None, want) for what, a, want in [
            ("a program that checks nothing", (nothing, args, files, env), "registers v1"),
            ("a program that registers v1 and leaves the level unset", (v1_only, args, files, env), "sets events-value's compatibility"),
            ("a Job that skips v3", (binary, without("--refused"), files, env), "tries to register v3"),
            ("a Job that skips v2", (binary, without("--compatible"), files, env), "has v2 checked"),
            ("v1 an open content model (Apicurio refuses v2)", (binary, args, with_schema(args, files, "--schema", json.dumps(open_v1, indent=2)), env),
             "succeeds against the stand-in"),
        ]], lambda a: probe(check_registration_run, *a), "", "self-check: registration with {what}: rejected", shown=3)
