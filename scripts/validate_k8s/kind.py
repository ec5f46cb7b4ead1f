"""The kind scripts: what scripts/kind-up.sh applies, creates and labels, read from it; their
--dry-run (docker, kind, kubectl, helm, ... replaced by stubs that record any call) prints
the commands and runs none; shellcheck on every scripts/*.sh; their order, prerequisites and
waits, read from what they print, with the findings about them put back and refused."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .common import NOTES, ROOT, STUBBED_TOOLS, TLS_CLIENT_IDENTITY_DIR, Report
from .probe import expect_refusals, quiet


def script_created_secrets() -> set[tuple[str, str]]:
    text = (ROOT / "scripts/kind-up.sh").read_text()
    return {(ns, name) for ns, name in re.findall(r"kubectl -n (\S+) create secret generic (\S+)", text)}


def kind_up_dry_run(*args: str) -> list[str]:
    """The commands scripts/kind-up.sh --dry-run prints (its tools replaced by stubs that fail)."""
    with tempfile.TemporaryDirectory() as tmp:
        stubs = Path(tmp)
        for tool in STUBBED_TOOLS:
            (stubs / tool).write_text("#!/bin/sh\nexit 97\n")
            (stubs / tool).chmod(0o755)
        env = dict(os.environ, PATH=f"{stubs}:{os.environ.get('PATH', '')}")
        r = subprocess.run(["bash", str(ROOT / "scripts/kind-up.sh"), "--dry-run", *args], capture_output=True, text=True, env=env, timeout=60)
    return [l for l in r.stdout.splitlines() if l.startswith("+ ")]


def kind_up_applied() -> set[str]:
    """The strimzi/ and istio/ files scripts/kind-up.sh applies itself (`kubectl apply -f`,
    a directory meaning every file in it)."""
    text = (ROOT / "scripts/kind-up.sh").read_text().replace("\\\n", " ")
    out = set()
    for line in text.splitlines():
        if "kubectl apply" not in line:
            continue
        for arg in re.findall(r"-f\s+(\S+)", line):
            arg = arg.strip("'\"")
            path = ROOT / arg
            if arg.startswith(("strimzi/", "istio/")) and path.is_dir():
                out.update(str(f.relative_to(ROOT)) for f in sorted(path.rglob("*.yaml")))
            elif arg.startswith(("strimzi/", "istio/")):
                out.add(arg)
    return out


def check_scripts(report: Report, test_hooks: list[dict]) -> None:
    scripts = sorted((ROOT / "scripts").glob("*.sh"))
    shellcheck = shutil.which("shellcheck")
    if not report.check(shellcheck is not None, "shellcheck is installed", "run scripts/setup.sh (Debian package shellcheck)"):
        return
    r = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
    report.check(r.returncode == 0, f"shellcheck {len(scripts)} scripts ({', '.join(s.name for s in scripts)})", r.stdout[-3000:])
    print(f"  shellcheck: {len(scripts)} scripts {'clean' if r.returncode == 0 else 'FAILED'}")
    expect = {
        "kind-up.sh": ["+ docker run", "+ kind create cluster", "+ helm upgrade --install istiod", "+ helm upgrade --install kiali-operator",
                       "+ helm upgrade --install strimzi", "+ kubectl apply -f istio/kiali.yaml", "+ docker build", "+ docker push",
                       "+ helm upgrade --install kiosk-filter charts/kiosk-filter", "+ helm upgrade --install kiosk charts/test-kafka-istio-mongo",
                       "+ scripts/build-filter.sh", "+ kubectl -n pipeline rollout status deployment/kiosk-mongodb-tls-issuer",
                       "+ kubectl -n pipeline rollout status deployment/keycloak"],
        "kind-test.sh": ["+ helm test kiosk", "+ kubectl -n istio-system port-forward svc/kiali", "+ python3 charts/test-kafka-istio-mongo/files/kiali_edges.py"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        stubs, log = Path(tmp) / "bin", Path(tmp) / "calls.log"
        stubs.mkdir()
        for tool in STUBBED_TOOLS:
            stub = stubs / tool
            stub.write_text(f"#!/bin/sh\necho \"{tool} $*\" >> '{log}'\nexit 97\n")
            stub.chmod(0o755)
        printed_by = {}
        for name, lines in expect.items():
            env = dict(os.environ, PATH=f"{stubs}:{os.environ.get('PATH', '')}")
            r = subprocess.run(["bash", str(ROOT / "scripts" / name), "--dry-run"], capture_output=True, text=True, env=env, timeout=60)
            out = r.stdout
            report.check(r.returncode == 0, f"scripts/{name} --dry-run exits 0", (r.stderr or out)[-1500:])
            printed = [l for l in out.splitlines() if l.startswith("+ ")]
            for want in lines:
                report.check(any(l.startswith(want) for l in printed), f"scripts/{name} --dry-run prints `{want} ...`")
            calls = log.read_text() if log.exists() else ""
            report.check(not calls, f"scripts/{name} --dry-run runs none of {', '.join(STUBBED_TOOLS)}", f"it ran: {calls.strip()[:500]}")
            print(f"  scripts/{name} --dry-run: {len(printed)} commands printed, {len(calls.splitlines())} run")
            log.unlink(missing_ok=True)
            printed_by[name] = printed
        # The Kafka credentials' alternative (--kafka-auth tls), dry-run too.
        env = dict(os.environ, PATH=f"{stubs}:{os.environ.get('PATH', '')}")
        r = subprocess.run(["bash", str(ROOT / "scripts/kind-up.sh"), "--dry-run", "--kafka-auth", "tls"], capture_output=True, text=True, env=env, timeout=60)
        report.check(r.returncode == 0 and not log.exists(), "scripts/kind-up.sh --dry-run --kafka-auth tls exits 0 and runs nothing", (r.stderr or r.stdout)[-1500:])
        tls_lines = [l for l in r.stdout.splitlines() if l.startswith("+ ")]
        check_kafka_auth_lines(report, printed_by.get("kind-up.sh", []), tls_lines)
        expect_refusals(report, [(what, (d, tl), None, want) for what, d, tl, want in [
            ("the filter without SASL by default", [l.replace("kafkaAuth.mechanism=SCRAM-SHA-512", "kafkaAuth.mechanism=none") for l in printed_by.get("kind-up.sh", [])],
             tls_lines, "by default installs the kiosk-filter chart with kafkaAuth.mechanism=SCRAM-SHA-512"),
            ("--kafka-auth tls without the DestinationRules and the sync", printed_by.get("kind-up.sh", []),
             [l for l in tls_lines if TLS_CLIENT_IDENTITY_DIR not in l], "applies istio/kafka-tls-client-identity/ before the Kafka clients"),
        ]], lambda lines: quiet(check_kafka_auth_lines, *lines), "", "self-check: kind-up.sh with {what} is rejected")
        log.unlink(missing_ok=True)
    with report.summing_up("the kind scripts' order, prerequisites and waits"):
        up, test, notes = printed_by.get("kind-up.sh", []), printed_by.get("kind-test.sh", []), NOTES.get("test-kafka-istio-mongo", "")
        check_kind_script_lines(report, up, test, test_hooks, notes)
    # The findings about the scripts, put back: each must be rejected.
    with report.summing_up("each finding about the kind scripts put back is rejected"):
        moved = [l for l in up if not l.startswith("+ helm upgrade --install kiosk-filter")]
        at = next(i for i, l in enumerate(moved) if l.startswith("+ helm upgrade --install kiosk charts/"))
        moved.insert(at, next(l for l in up if l.startswith("+ helm upgrade --install kiosk-filter")))
        cases = [
            ("3: helm test --logs with Job hooks", up, [l + " --logs" if l.startswith("+ helm test") else l for l in test], notes, "without --logs"),
            ("3: no logs of the test pods", up, [l for l in test if " logs " not in l], notes, "prints the logs of test hook"),
            ("3: NOTES.txt telling to run helm test --logs", up, test, notes.replace("-n pipeline\n", "-n pipeline --logs\n"), "NOTES.txt tells"),
            ("6: the mesh settings installed after istiod", moved, test, notes, "before istiod starts"),
            ("6: the filter installed by tag", [l.replace("image.digest=", "image.tag=") for l in up], test, notes, "with the digest"),
            ("10: no python3 check", [l for l in up if l != "+ command -v python3"], test, notes, "command -v python3"),
            ("10: no wasm target check", [l for l in up if "wasm32-wasip1" not in l], test, notes, "wasm32-wasip1"),
            ("10: no wait for Kiali", [l for l in up if "kiali/kiali" not in l], test, notes, "waits for the Kiali CR"),
        ]
        expect_refusals(report, [(what, (u, te, no), None, want) for what, u, te, no, want in cases],
                        lambda lines: quiet(check_kind_script_lines, lines[0], lines[1], test_hooks, lines[2]), "", "self-check: finding {what} is rejected", shown=3)


def check_kafka_auth_lines(report: Report, default: list[str], tls: list[str]) -> None:
    """kind-up.sh installs what each way of supplying Kafka credentials needs: by default the
    filter with SASL and nothing of TLS client identity; with --kafka-auth tls the filter without
    SASL, the chart with tls users, and istio/kafka-tls-client-identity/ before the chart (the
    clients' DestinationRules must exist when they start), its sync waited for once the users are."""

    def first(lines, prefix):
        return next((i for i, l in enumerate(lines) if l.startswith(prefix)), None)

    apply_dir = f"+ kubectl apply -f {TLS_CLIENT_IDENTITY_DIR}/"
    for lines, mech, auth, applies in [(default, "SCRAM-SHA-512", "scram-sha-512", False), (tls, "none", "tls", True)]:
        mode = "--kafka-auth tls" if applies else "by default"
        filt = first(lines, "+ helm upgrade --install kiosk-filter charts/kiosk-filter")
        chart = first(lines, "+ helm upgrade --install kiosk charts/test-kafka-istio-mongo")
        report.check(filt is not None and f"kafkaAuth.mechanism={mech}" in lines[filt], f"kind-up.sh {mode} installs the kiosk-filter chart with kafkaAuth.mechanism={mech}",
                     lines[filt] if filt is not None else "no kiosk-filter install")
        report.check(chart is not None and f"kafka.authentication={auth}" in lines[chart], f"kind-up.sh {mode} installs the test chart with kafka.authentication={auth}",
                     lines[chart] if chart is not None else "no test chart install")
        applied = first(lines, apply_dir)
        if not applies:
            report.check(applied is None, f"kind-up.sh {mode} does not apply {TLS_CLIENT_IDENTITY_DIR}/ (the non-default alternative)")
            continue
        users = first(lines, "+ kubectl -n pipeline wait kafkatopic\\,kafkauser")  # as printf %q prints it
        sync = first(lines, "+ kubectl -n pipeline rollout status deployment/kiosk-kafka-tls-sync")
        report.check(None not in (applied, chart) and applied < chart, f"kind-up.sh {mode} applies {TLS_CLIENT_IDENTITY_DIR}/ before the Kafka clients", f"apply {applied}, chart {chart}")
        report.check(None not in (users, sync) and users < sync, f"kind-up.sh {mode} waits for the certificate sync once the KafkaUsers are ready", f"users {users}, sync {sync}")


def check_kind_script_lines(report: Report, up: list[str], test: list[str], hooks: list[dict], notes: str) -> None:
    """What the kind scripts do, read from the commands their --dry-run prints."""

    def first(lines, prefix):
        return next((i for i, l in enumerate(lines) if l.startswith(prefix)), None)

    for want, why in [("+ command -v python3", "the checks and kind-test.sh need it"),
                      ('+ test -d "$(rustc --print sysroot)/lib/rustlib/wasm32-wasip1"', "the filter is built for wasm32-wasip1")]:
        report.check(first(up, want) is not None, f"kind-up.sh checks a prerequisite first: `{want[2:]}`", why)
    push = first(up, "+ docker push localhost:5001/kiosk/kiosk-filter")
    filt = first(up, "+ helm upgrade --install kiosk-filter charts/kiosk-filter")
    istiod = first(up, "+ helm upgrade --install istiod")
    chart = first(up, "+ helm upgrade --install kiosk charts/test-kafka-istio-mongo")
    report.check(None not in (push, filt) and push < filt and "image.digest=" in up[filt],
                 "kind-up.sh installs the kiosk-filter chart with the digest of the module it pushed", up[filt] if filt is not None else "no kiosk-filter install")
    report.check(None not in (filt, istiod, chart) and filt < istiod < chart,
                 "kind-up.sh installs the mesh settings (kiosk-filter chart) before istiod starts, and istiod before any Kafka client",
                 f"order: kiosk-filter {filt}, istiod {istiod}, test chart {chart}")
    check = next((i for i, l in enumerate(up) if "get pods -l kiosk.io/kafka-client=true -o json | python3" in l), None)
    report.check(None not in (check, chart) and check > chart, "kind-up.sh checks that every Kafka client's sidecar got the filter's extraStatTags")
    kiali = first(up, "+ kubectl apply -f istio/kiali.yaml")
    waits = [first(up, "+ kubectl -n istio-system wait kiali/kiali"), first(up, "+ kubectl -n istio-system rollout status deployment/kiali")]
    report.check(kiali is not None and None not in waits and all(w > kiali for w in waits), "kind-up.sh waits for the Kiali CR to be reconciled and Kiali to be ready")
    not_pods = sorted(f"{h['kind']}/{h['metadata']['name']}" for h in hooks if h.get("kind") != "Pod")
    helm_test = [l for l in test if l.startswith("+ helm test")]
    report.check(bool(helm_test) and (not not_pods or not any("--logs" in l for l in helm_test)),
                 "kind-test.sh runs `helm test` without --logs (every released Helm fails it for test hooks that are not Pods, helm/helm#11236)",
                 f"{helm_test} with hooks {not_pods}")
    for h in hooks:
        component = (((h.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels", {}).get("app.kubernetes.io/component")
        report.check(any(l.startswith("+ kubectl") and " logs " in l and f"app.kubernetes.io/component={component}" in l for l in test),
                     f"kind-test.sh prints the logs of test hook {h['kind']}/{h['metadata']['name']} (component {component})")
    usage = [l.strip() for l in notes.splitlines() if l.strip().startswith("helm test")]
    report.check(bool(usage) and (not not_pods or not any("--logs" in l for l in usage)), "the test chart's NOTES.txt tells to run `helm test` without --logs", str(usage))


def kind_up_timeout_minutes() -> int | None:
    text = (ROOT / "scripts/kind-up.sh").read_text().replace("\\\n", " ")
    line = next((l for l in text.splitlines() if "helm upgrade --install kiosk charts/test-kafka-istio-mongo" in l), "")
    m = re.search(r"--timeout[ =](\d+)m", line)
    return int(m.group(1)) if m else None
