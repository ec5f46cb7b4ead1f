"""The MongoDB programs of the test chart, run here: the certificate issuer
(files/mongodb_tls_issuer.py, with this machine's openssl) against a stand-in Kubernetes API
through the life of its certificates, with TLS handshakes between `openssl s_server` holding
mongod's certificate and `openssl s_client` presenting a client's; and the MongoDB pod's X.509
user script (files/mongodb-x509-users.js) with Node.js against a stand-in of mongod's user
commands."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import Report
from .fakeapi import FakeApi
from .k8s import rbac_allows
from .mongodb import mongodb_clients, mongodb_issuers, mongodb_servers, x509_users


def openssl_handshake(tmp: Path, server: tuple[str, str, str], client: tuple[str, str] | None, client_ca: str, name: str) -> tuple[bool, str]:
    """A TLS handshake between `openssl s_server` holding mongod's certificate and requiring a
    client certificate of its CA file (as mongod with --tlsCAFile does) and `openssl s_client`
    presenting `client` (certificate, key; None: none) and checking the server's chain against
    `client_ca` and its name against `name` (as the sidecar's DestinationRule asks: sni and
    subjectAltNames). (whether the server accepted it, what the two said)."""
    import socket
    import time

    def put(fname, text):
        (tmp / fname).write_text(text)
        return str(tmp / fname)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    crt, key, ca = put("hs-server.crt", server[0]), put("hs-server.key", server[1]), put("hs-server-ca.crt", server[2])
    srv = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", crt, "-key", key, "-CAfile", ca,
                            "-Verify", "1", "-verify_return_error", "-naccept", "1", "-rev"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # -rev: it answers without reading stdin
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # s_server prints ACCEPT once it listens
            line = srv.stdout.readline()
            if not line or line.strip() == "ACCEPT":
                break
        args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", put("hs-client-ca.crt", client_ca),
                "-servername", name, "-verify_hostname", name, "-verify_return_error", "-brief"]
        if client:
            args += ["-cert", put("hs-client.crt", client[0]), "-key", put("hs-client.key", client[1])]
        c = subprocess.run(args, input="", capture_output=True, text=True, timeout=20)
        out, _ = srv.communicate(timeout=20)
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.communicate()
    accepted = c.returncode == 0 and "Verification: OK" in c.stderr and re.search(r"^\s*1 server accepts that finished", out, re.M) is not None
    return accepted, (c.stderr[-300:] + " | " + out[-300:]).replace("\n", " ")


def mongodb_issuer_checks(report: Report, rendered: list[dict]) -> None:
    """Run the MongoDB certificate issuer of the test chart (files/mongodb_tls_issuer.py, as its
    Deployment runs it, with this machine's openssl) against a stand-in Kubernetes API through the
    life of its certificates: first start (the CA, mongod's certificate, one per client, shaped as
    mongod and Istio read them, the clients' subjects being the X.509 users the chart creates),
    a TLS handshake as mongod and the sidecars make it (accepted with a client's certificate,
    refused without one or with another CA's), nothing written when nothing changed, renewal
    before expiry (mongod's StatefulSet restarted), a CA renewal (both CAs trusted meanwhile), a
    changed subject; and check its Role allows every call it makes."""
    import base64

    def b64d(s, key):
        return base64.b64decode((s.get("data") or {}).get(key) or "").decode()

    cm = next((o for o in rendered if o.get("kind") == "ConfigMap" and "mongodb_tls_issuer.py" in (o.get("data") or {})), None)
    issuers = mongodb_issuers(rendered)
    if not report.check(cm is not None and len(issuers) == 1, "the test chart ships the MongoDB certificate issuer (a ConfigMap with mongodb_tls_issuer.py, one Deployment)"):
        return
    iss = issuers[0]
    server = mongodb_servers(rendered)[0]
    users, _ = x509_users(rendered, server)
    clients = mongodb_clients(rendered)
    if shutil.which("openssl") is None:
        report.error("openssl is installed (the issuer runs it; Debian package openssl)")
        return
    api = FakeApi()
    ca_key = iss.ca
    sts_writes = lambda: len(api.patches)  # noqa: E731
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        script = tmp / "mongodb_tls_issuer.py"
        script.write_text(cm["data"]["mongodb_tls_issuer.py"])
        (tmp / "token").write_text("fake-token\n")
        ready = tmp / "ready"
        base_env = dict(os.environ, KIOSK_API_URL=api.url, KIOSK_SA_DIR=str(tmp), KIOSK_SYNC_READY_FILE=str(ready),
                        **{k: v for k, v in iss.env.items() if k.startswith("KIOSK_") and k != "KIOSK_SYNC_READY_FILE"})

        def run_once(**extra):
            ready.unlink(missing_ok=True)
            r = subprocess.run([sys.executable, str(script), "--once"], env=dict(base_env, **extra), capture_output=True, text=True, timeout=120)
            return r.returncode, r.stdout + r.stderr

        def writes():
            return sum(1 for m, _ in api.calls if m in ("POST", "PUT"))

        def openssl(*args, stdin=None):
            return subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True).stdout

        def subject(pem):
            return openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", stdin=pem).strip().removeprefix("subject=").strip()

        def verify(pem, bundle):
            (tmp / "v-ca.pem").write_text(bundle)
            return subprocess.run(["openssl", "verify", "-CAfile", str(tmp / "v-ca.pem")], input=pem, capture_output=True, text=True).returncode == 0

        def secret(key):
            return api.secrets.get(key) or {}

        try:
            rc, out = run_once()
            ca, srv = secret(ca_key), secret(iss.server)
            made = {k: secret(v) for k, v in iss.clients.items()}
            report.check(rc == 0 and ready.exists() and set(ca.get("data") or {}) == {"tls.crt", "tls.key"}
                         and set(srv.get("data") or {}) == {"tls.crt", "tls.key", "ca.crt", "mongod.pem"}
                         and all(set(s.get("data") or {}) == {"tls.crt", "tls.key", "ca.crt"} for s in made.values()),
                         f"mongodb_tls_issuer.py: on first start makes the CA, mongod's certificate (tls.crt, tls.key, ca.crt, mongod.pem) and {len(made)} client certificates (tls.crt, tls.key, ca.crt, the keys Istio reads), and becomes ready",
                         out[-400:])
            if not srv or not all(made.values()):
                return
            ca_pem = b64d(ca, "tls.crt")
            report.check(b64d(srv, "mongod.pem") == b64d(srv, "tls.crt").strip() + "\n" + b64d(srv, "tls.key").strip() + "\n" and b64d(srv, "ca.crt") == ca_pem.strip() + "\n",
                         "mongodb_tls_issuer.py: mongod.pem is mongod's certificate then its key (--tlsCertificateKeyFile), ca.crt the CA (--tlsCAFile)")
            sans = openssl("x509", "-noout", "-ext", "subjectAltName,extendedKeyUsage", stdin=b64d(srv, "tls.crt"))
            report.check(f"DNS:{server.host}" in sans and "TLS Web Server Authentication" in sans and "TLS Web Client Authentication" in sans
                         and verify(b64d(srv, "tls.crt"), ca_pem),
                         f"mongodb_tls_issuer.py: mongod's certificate names {server.host} (the clients' SNI and checked name), is for serverAuth (and clientAuth, for its readiness probe) and chains to the CA", sans)
            dns = {c.workload: iss.client_dn(c.namespace, c.workload) for c in clients}
            for (ns, workload), s in made.items():
                crt = b64d(s, "tls.crt")
                eku = openssl("x509", "-noout", "-ext", "extendedKeyUsage,basicConstraints", stdin=crt)
                report.check(subject(crt) == iss.client_dn(ns, workload) and (users or {}).get(subject(crt)) is not None and "TLS Web Client Authentication" in eku
                             and "CA:FALSE" in eku and verify(crt, b64d(s, "ca.crt")) and b64d(s, "ca.crt") == ca_pem.strip() + "\n",
                             f"mongodb_tls_issuer.py: {ns}/{workload}'s certificate has the subject {iss.client_dn(ns, workload)}, an X.509 user of mongod, for clientAuth only, and its ca.crt verifies mongod",
                             f"subject {subject(crt)!r}, users {sorted(users or {})}, {eku}")
            report.check(set(dns) == {w for _, w in made}, "mongodb_tls_issuer.py: it keeps a certificate for each MongoDB client of the chart, and for no other workload",
                         f"clients {sorted(dns)}, certificates {sorted(w for _, w in made)}")
            first = next(iter(made.values()))
            server_pem = (b64d(srv, "tls.crt"), b64d(srv, "tls.key"), b64d(srv, "ca.crt"))
            ok, said = openssl_handshake(tmp, server_pem, (b64d(first, "tls.crt"), b64d(first, "tls.key")), b64d(first, "ca.crt"), server.host)
            report.check(ok, f"TLS as the sidecar originates it and mongod ends it: a client's certificate, SNI and name check {server.host}: accepted", said)
            ok, said = openssl_handshake(tmp, server_pem, None, b64d(first, "ca.crt"), server.host)
            # With TLS 1.3 the client may finish its side before the server's alert arrives: the
            # server's count of finished handshakes is what says it refused.
            report.check(not ok and "0 server accepts that finished" in said, "TLS to mongod without a client certificate: refused by mongod (it requires one)", said)
            ok, said = openssl_handshake(tmp, server_pem, (b64d(first, "tls.crt"), b64d(first, "tls.key")), b64d(first, "ca.crt"), f"elsewhere.{server.namespace}.svc.cluster.local")
            report.check(not ok and "hostname mismatch" in said, "TLS to mongod from a sidecar checking another name: refused by the sidecar (subjectAltNames pins mongod)", said)
            other = tmp / "other"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{other}.key", "-out", f"{other}.crt",
                            "-subj", "/O=kiosk/OU=pipeline/CN=intruder", "-days", "2"], capture_output=True, check=True)
            ok, said = openssl_handshake(tmp, server_pem, (Path(f"{other}.crt").read_text(), Path(f"{other}.key").read_text()), b64d(first, "ca.crt"), server.host)
            report.check(not ok and "0 server accepts that finished" in said, "TLS to mongod with a certificate of another CA (the user's name in it): refused by mongod", said)

            before = writes()
            rc, out = run_once()
            report.check(rc == 0 and "unchanged" in out and writes() == before and sts_writes() == 0 and ready.exists(),
                         "mongodb_tls_issuer.py: writes nothing and restarts nothing when nothing changed", out[-300:])
            rc, out = run_once(KIOSK_RENEW_DAYS="400")
            renewed = {k: secret(v) for k, v in iss.clients.items()}
            report.check(rc == 0 and secret(ca_key) == ca and b64d(secret(iss.server), "tls.crt") != server_pem[0]
                         and all(b64d(renewed[k], "tls.crt") != b64d(made[k], "tls.crt") for k in made)
                         and len(api.patches) == 1 and api.patches[0][0] == iss.statefulset and api.patches[0][1] == "application/merge-patch+json"
                         and "kiosk.io/mongodb-server-cert-sha256" in json.dumps(api.patches[0][2]),
                         "mongodb_tls_issuer.py: renews every certificate that expires within the renewal window, not the CA, and restarts mongod's StatefulSet (pod template annotated with the new certificate's digest)",
                         f"{out[-300:]} patches {api.patches}")
            old_client = (b64d(renewed[next(iter(renewed))], "tls.crt"), b64d(renewed[next(iter(renewed))], "tls.key"))
            rc, out = run_once(KIOSK_RENEW_DAYS="4000")
            ca2 = secret(ca_key)
            bundle = b64d(secret(iss.server), "ca.crt")
            report.check(rc == 0 and b64d(ca2, "tls.crt") != ca_pem and b64d(ca2, "previous.crt") == ca_pem and bundle.count("BEGIN CERTIFICATE") == 2
                         and all(b64d(secret(v), "ca.crt") == bundle for v in iss.clients.values())
                         and all(verify(b64d(secret(v), "tls.crt"), b64d(ca2, "tls.crt")) for v in list(iss.clients.values()) + [iss.server]),
                         "mongodb_tls_issuer.py: renews the CA before it expires, keeps the old one trusted (previous.crt, both in every ca.crt) and issues every certificate again from the new one",
                         out[-300:])
            ok, said = openssl_handshake(tmp, (b64d(secret(iss.server), "tls.crt"), b64d(secret(iss.server), "tls.key"), bundle), old_client, bundle, server.host)
            report.check(ok, "TLS during the CA renewal: a sidecar still holding its certificate of the old CA is accepted by mongod with the new one", said)
            rc, out = run_once(KIOSK_CLIENT_ORGANIZATION="kiosk-renamed")
            report.check(rc == 0 and all(subject(b64d(secret(v), "tls.crt")).endswith(",O=kiosk-renamed") for v in iss.clients.values()),
                         "mongodb_tls_issuer.py: issues a client certificate again when its subject (the X.509 user) changes", out[-300:])
            rc, out = run_once(KIOSK_CLIENT_ORGANIZATION=server_org) if (server_org := next(iter(iss.server_orgs()), "")) else (1, "")
            report.check(rc != 0 and "must differ" in out, "mongodb_tls_issuer.py: refuses clients with the server certificate's O", out[-300:])
        finally:
            api.close()
    podspec = iss.dep["spec"]["template"]["spec"]
    sa = (iss.dep["metadata"].get("namespace"), podspec.get("serviceAccountName", "default"))
    verbs = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch"}
    for method, path in sorted(set(api.calls)):
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?", path) or re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/statefulsets/([^/]+)", path)
        group, resource = ("", "secrets") if "/secrets" in path else ("apps", "statefulsets")
        report.check(bool(m) and rbac_allows(rendered, sa, m.group(1), verbs[method], resource, m.group(2), group=group),
                     f"mongodb_tls_issuer.py: its service account {sa[0]}/{sa[1]} may {method} {path}")


def x509_users_script_checks(report: Report, rendered: list[dict]) -> None:
    """Run the MongoDB pod's user script (files/mongodb-x509-users.js, as mongosh runs it: the
    same globals `db`, `fs`, `print`, `process`) with Node.js against a stand-in of mongod's
    user commands on $external: on an empty database it creates exactly the chart's X.509
    users, with no password; run again it changes nothing; a user the release made that is no
    longer a client is dropped, one it did not make is left alone. And shellcheck its shell part."""
    cm = next((o for o in rendered if o.get("kind") == "ConfigMap" and "mongodb-x509-users.js" in (o.get("data") or {})), None)
    node = shutil.which("node") or shutil.which("nodejs")
    if not report.check(cm is not None, "the test chart ships the X.509 user script (ConfigMap with mongodb-x509-users.js)"):
        return
    if not report.check(node is not None, "node is installed (runs the X.509 user script as mongosh would)", "run scripts/setup.sh (Debian package nodejs)"):
        return
    want = json.loads(cm["data"]["x509-users.json"])["users"]
    harness = r"""
const fs = require("fs");
const vm = require("vm");
const state = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const log = [];
function reply(cmd) {
  log.push(cmd);
  if (JSON.stringify(cmd).includes('"pwd"')) return { ok: 0, errmsg: "X.509 users have no password" };
  const name = cmd.createUser || cmd.updateUser || cmd.dropUser;
  if (cmd.usersInfo === 1) {
    const f = (cmd.filter || {})["customData.managedBy"];
    return { ok: 1, users: state.users.filter((u) => f === undefined || (u.customData || {}).managedBy === f) };
  }
  if (cmd.usersInfo !== undefined) return { ok: 1, users: state.users.filter((u) => u.user === cmd.usersInfo) };
  const i = state.users.findIndex((u) => u.user === name);
  if (cmd.createUser !== undefined) {
    if (i >= 0) return { ok: 0, code: 51003, errmsg: "User already exists" };
    state.users.push({ user: name, db: "$external", roles: cmd.roles, customData: cmd.customData });
    return { ok: 1 };
  }
  if (i < 0) return { ok: 0, code: 11, errmsg: "UserNotFound" };
  if (cmd.updateUser !== undefined) { Object.assign(state.users[i], { roles: cmd.roles, customData: cmd.customData }); return { ok: 1 }; }
  if (cmd.dropUser !== undefined) { state.users.splice(i, 1); return { ok: 1 }; }
  return { ok: 0, errmsg: "unknown command " + JSON.stringify(cmd) };
}
const db = { getSiblingDB(name) { if (name !== "$external") throw new Error("users are on $external, not " + name); return { runCommand: reply }; } };
vm.runInNewContext(fs.readFileSync(process.argv[3], "utf8"), { db, fs, print: () => {}, process, JSON, Set, Map, Error });
fs.writeFileSync(process.argv[2], JSON.stringify({ users: state.users, log }));
"""
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for key in ("x509-users.json", "mongodb-x509-users.js", "mongodb-x509-users.sh"):
            (tmp / key).write_text(cm["data"][key])
        (tmp / "harness.js").write_text(harness)
        state = tmp / "state.json"

        def run(users):
            state.write_text(json.dumps({"users": users}))
            r = subprocess.run([node, str(tmp / "harness.js"), str(state), str(tmp / "mongodb-x509-users.js")], capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, KIOSK_MONGODB_X509_USERS_FILE=str(tmp / "x509-users.json")))
            return r.returncode, r.stderr[-300:], json.loads(state.read_text()) if r.returncode == 0 else {}

        mine = lambda s: {u["user"]: u["roles"] for u in s.get("users") or [] if (u.get("customData") or {}).get("managedBy")}  # noqa: E731
        rc, err, s1 = run([])
        report.check(rc == 0 and mine(s1) == {u["user"]: u["roles"] for u in want} and all("pwd" not in c for c in s1.get("log") or []),
                     f"mongodb-x509-users.js: on an empty database creates the {len(want)} X.509 users of the chart on $external with their roles, and no password", err or str(s1)[:300])
        rc, err, s2 = run(s1.get("users") or [])
        report.check(rc == 0 and mine(s2) == mine(s1) and not any("createUser" in c or "dropUser" in c for c in s2.get("log") or []),
                     "mongodb-x509-users.js: run again, creates and drops nothing", err or str(s2.get("log"))[:300])
        gone = {"user": "CN=old-client,OU=pipeline,O=kiosk", "db": "$external", "roles": [], "customData": (s1["users"][0].get("customData") if s1.get("users") else {})}
        admin = {"user": "CN=operator,OU=ops,O=elsewhere", "db": "$external", "roles": [{"role": "root", "db": "admin"}]}
        rc, err, s3 = run((s1.get("users") or []) + [gone, admin])
        names = {u["user"] for u in s3.get("users") or []}
        report.check(rc == 0 and gone["user"] not in names and admin["user"] in names and mine(s3) == mine(s1),
                     "mongodb-x509-users.js: drops a user it made for a workload that is no longer a client, and leaves others' users alone", err or str(names))
        shellcheck = shutil.which("shellcheck")
        if shellcheck:
            r = subprocess.run([shellcheck, str(tmp / "mongodb-x509-users.sh")], capture_output=True, text=True)
            report.check(r.returncode == 0, "shellcheck mongodb-x509-users.sh (the MongoDB pod's init container)", r.stdout[-1000:])
