#!/usr/bin/env python3
"""Issue and renew the MongoDB certificates of the release, from the release's own MongoDB CA.

The Kafka side's certificates come from Strimzi (its clients and cluster CAs, its User Operator);
nothing issues MongoDB's, so this program does, the same way in the same shape: a CA kept in a
Secret, and Secrets with the keys their readers take.

  - The CA: Secret KIOSK_CA_SECRET (tls.crt, tls.key; `previous.crt` while a renewed CA's
    predecessor is still valid). Made here when missing, renewed KIOSK_RENEW_DAYS before it
    expires; both CAs are trusted until the old one expires, so the renewal needs no downtime.
  - mongod's certificate: Secret KIOSK_SERVER_SECRET (tls.crt, tls.key, ca.crt, and mongod.pem,
    certificate and key in the one file mongod's --tlsCertificateKeyFile takes), subject
    KIOSK_SERVER_SUBJECT, the DNS names KIOSK_SERVER_DNS_NAMES, for serverAuth and clientAuth (the
    readiness probe presents it). mongod reads it at start: when this Secret changes, the
    StatefulSet KIOSK_SERVER_STATEFULSET is restarted (its pod template annotated with the
    certificate's digest, so the StatefulSet controller rolls the pod).
  - One certificate per MongoDB client workload (KIOSK_CLIENT_CERTS, namespace/workload): Secret
    <workload>KIOSK_CLIENT_CERT_SUFFIX in the workload's namespace with tls.crt, tls.key and ca.crt,
    the keys Istio reads for a DestinationRule `credentialName` (or the files a sidecar reads), for
    clientAuth, subject /O=KIOSK_CLIENT_ORGANIZATION/OU=<namespace>/CN=<workload>, which MongoDB
    names CN=<workload>,OU=<namespace>,O=<organization> (RFC 2253): the X.509 user on $external.

Certificates last KIOSK_CERT_DAYS and are renewed KIOSK_RENEW_DAYS before they expire, or at once
when their subject, names, key, issuer or trusted CAs are not what they should be. Checks every
KIOSK_SYNC_INTERVAL seconds and writes only on change; touches KIOSK_SYNC_READY_FILE after a pass in
which every Secret is current (the readiness probe). Keys are RSA 2048, made with the `openssl`
command (the Python image has it: Debian's ca-certificates depends on openssl); they exist here
only in a private temporary directory and in the Secrets.

Environment: KIOSK_CA_SECRET, KIOSK_CA_SUBJECT (default /O=kiosk/CN=kiosk-mongodb-ca),
KIOSK_SERVER_SECRET, KIOSK_SERVER_SUBJECT, KIOSK_SERVER_DNS_NAMES, KIOSK_SERVER_STATEFULSET
(optional), KIOSK_CLIENT_CERTS, KIOSK_CLIENT_CERT_SUFFIX (default -mongodb-tls),
KIOSK_CLIENT_ORGANIZATION (default kiosk), KIOSK_CA_DAYS (3650), KIOSK_CERT_DAYS (365),
KIOSK_RENEW_DAYS (30), KIOSK_SYNC_INTERVAL (60), KIOSK_SYNC_READY_FILE; KIOSK_API_URL and
KIOSK_SA_DIR replace the in-cluster API address and service account directory (tests),
KIOSK_OPENSSL the openssl command.
usage: mongodb_tls_issuer.py [--once]
"""

import base64
import hashlib
import json
import os
import re
import secrets
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

MANAGED_BY = "kiosk-mongodb-tls-issuer"
SYNCED = ("created", "updated", "unchanged")
DIGEST_ANNOTATION = "kiosk.io/mongodb-server-cert-sha256"
OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = @names
[names]
"""


class Api:
    def __init__(self):
        self.sa_dir = os.environ.get("KIOSK_SA_DIR", "/var/run/secrets/kubernetes.io/serviceaccount")
        self.base = os.environ.get("KIOSK_API_URL") or "https://{}:{}".format(
            os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
        self.context = None
        if self.base.startswith("https:"):
            self.context = ssl.create_default_context(cafile=os.path.join(self.sa_dir, "ca.crt"))

    def call(self, method, path, body=None, content_type="application/json"):
        """The decoded JSON answer; None for a GET of something that does not exist."""
        with open(os.path.join(self.sa_dir, "token"), encoding="utf-8") as f:
            token = f.read().strip()  # read each time: projected tokens are rotated
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": "Bearer " + token, "Accept": "application/json",
                     "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context) as response:
                return json.load(response)
        except urllib.error.HTTPError as e:
            if e.code == 404 and method == "GET":
                return None
            raise RuntimeError("{} {}: HTTP {}: {}".format(method, path, e.code, e.read()[:300])) from e


def secrets_path(namespace, name=""):
    return "/api/v1/namespaces/{}/secrets{}".format(namespace, "/" + name if name else "")


def b64(text):
    return base64.b64encode(text.encode()).decode()


def unb64(data, key):
    return base64.b64decode((data or {}).get(key) or "").decode("ascii", "replace")


class OpenSSL:
    """The openssl command in a private temporary directory."""

    def __init__(self, workdir):
        self.dir = workdir
        self.command = os.environ.get("KIOSK_OPENSSL", "openssl")

    def path(self, name, text=None):
        p = os.path.join(self.dir, name)
        if text is not None:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(text)
        return p

    def run(self, *args, check=True):
        r = subprocess.run([self.command, *args], capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError("openssl {}: {}".format(args[0], (r.stderr or r.stdout).strip()[-300:]))
        return r

    def config(self, dns_names=()):
        names = "".join("DNS.{} = {}\n".format(i + 1, n) for i, n in enumerate(dns_names)) or "DNS.1 = unused\n"
        return self.path("openssl.cnf", OPENSSL_CONFIG + names)

    def new_key(self):
        out = self.path("new.key")
        self.run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", out)
        with open(out, encoding="ascii") as f:
            return f.read()

    def new_ca(self, subject, days):
        key = self.new_key()
        out = self.path("ca.crt")
        self.run("req", "-x509", "-new", "-config", self.config(), "-extensions", "ca", "-key", self.path("ca.key", key),
                 "-subj", subject, "-days", str(days), "-sha256", "-set_serial", serial(), "-out", out)
        with open(out, encoding="ascii") as f:
            return f.read(), key

    def issue(self, ca_crt, ca_key, subject, days, kind, dns_names=()):
        key = self.new_key()
        cfg = self.config(dns_names)
        csr = self.path("leaf.csr")
        self.run("req", "-new", "-config", cfg, "-key", self.path("leaf.key", key), "-subj", subject, "-out", csr)
        out = self.path("leaf.crt")
        self.run("x509", "-req", "-in", csr, "-CA", self.path("issuer.crt", ca_crt), "-CAkey", self.path("issuer.key", ca_key),
                 "-set_serial", serial(), "-days", str(days), "-sha256", "-extfile", cfg, "-extensions", kind, "-out", out)
        with open(out, encoding="ascii") as f:
            return f.read(), key

    def expires_within(self, crt, days):
        r = self.run("x509", "-noout", "-checkend", str(int(days * 86400)), "-in", self.path("check.crt", crt), check=False)
        return r.returncode != 0

    def subject(self, crt):
        r = self.run("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", self.path("check.crt", crt))
        return r.stdout.strip().removeprefix("subject=").strip()

    def dns_names(self, crt):
        r = self.run("x509", "-noout", "-ext", "subjectAltName", "-in", self.path("check.crt", crt), check=False)
        return sorted(re.findall(r"DNS:([^,\s]+)", r.stdout))

    def signed_by(self, crt, ca_crt):
        r = self.run("verify", "-CAfile", self.path("trust.crt", ca_crt), self.path("check.crt", crt), check=False)
        return r.returncode == 0

    def key_matches(self, crt, key):
        a = self.run("x509", "-noout", "-pubkey", "-in", self.path("check.crt", crt), check=False).stdout
        b = self.run("pkey", "-pubout", "-in", self.path("check.key", key), check=False).stdout
        return bool(a) and a == b


def serial():
    return "0x" + secrets.token_hex(16)


def rfc2253(subject):
    """/O=a/OU=b/CN=c as MongoDB and `openssl -nameopt RFC2253` print it: CN=c,OU=b,O=a."""
    parts = [p for p in subject.split("/") if p]
    return ",".join(reversed(parts))


def write(api, namespace, name, data, annotations):
    """Create or replace Secret namespace/name with `data` (base64 values) unless it holds it."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": MANAGED_BY},
            "annotations": annotations,
        },
        "data": data,
    }
    current = api.call("GET", secrets_path(namespace, name))
    if current is None:
        api.call("POST", secrets_path(namespace), secret)
        return "created"
    if (current.get("data") or {}) == data:
        return "unchanged"
    # Optimistic concurrency: a concurrent writer makes this fail, and the next pass retries.
    secret["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    api.call("PUT", secrets_path(namespace, name), secret)
    return "updated"


class Settings:
    def __init__(self, env):
        self.ca = pair(env.get("KIOSK_CA_SECRET", ""), "KIOSK_CA_SECRET")
        self.ca_subject = env.get("KIOSK_CA_SUBJECT") or "/O=kiosk/CN=kiosk-mongodb-ca"
        self.server = pair(env.get("KIOSK_SERVER_SECRET", ""), "KIOSK_SERVER_SECRET")
        self.server_subject = env.get("KIOSK_SERVER_SUBJECT", "")
        self.server_dns = [n for n in re.split(r"[,\s]+", env.get("KIOSK_SERVER_DNS_NAMES", "")) if n]
        sts = env.get("KIOSK_SERVER_STATEFULSET", "")
        self.statefulset = pair(sts, "KIOSK_SERVER_STATEFULSET") if sts else None
        self.clients = [pair(c, "KIOSK_CLIENT_CERTS") for c in re.split(r"[,\s]+", env.get("KIOSK_CLIENT_CERTS", "")) if c]
        self.suffix = env.get("KIOSK_CLIENT_CERT_SUFFIX") or "-mongodb-tls"
        self.organization = env.get("KIOSK_CLIENT_ORGANIZATION") or "kiosk"
        self.ca_days = float(env.get("KIOSK_CA_DAYS") or 3650)
        self.cert_days = float(env.get("KIOSK_CERT_DAYS") or 365)
        self.renew_days = float(env.get("KIOSK_RENEW_DAYS") or 30)
        if not self.server_subject or not self.server_dns:
            sys.exit("mongodb_tls_issuer: KIOSK_SERVER_SUBJECT and KIOSK_SERVER_DNS_NAMES are required")
        if self.organization in re.findall(r"/O=([^/]+)", self.server_subject):
            # MongoDB would take a client certificate with the server's O, OU and DC for a member of
            # the cluster (docs: core/security-x.509, client certificate requirements).
            sys.exit("mongodb_tls_issuer: the clients' organization must differ from the server certificate's O")

    def client_subject(self, namespace, workload):
        return "/O={}/OU={}/CN={}".format(self.organization, namespace, workload)


def current_ca(api, tls, s):
    """The CA's certificate and key, the PEM bundle of the CAs to trust (the CA, then its
    predecessor while that is valid), and what was done to the CA Secret; makes or renews the CA."""
    src = api.call("GET", secrets_path(*s.ca))
    data = (src or {}).get("data") or {}
    crt, key, previous = unb64(data, "tls.crt"), unb64(data, "tls.key"), unb64(data, "previous.crt")
    if src is not None and not (crt.strip() and key.strip()):
        raise RuntimeError("Secret {}/{} has no tls.crt and tls.key".format(*s.ca))
    if src is None or tls.expires_within(crt, s.renew_days):
        previous = crt if src is not None and not tls.expires_within(crt, 0) else ""
        crt, key = tls.new_ca(s.ca_subject, int(s.ca_days))
    if previous and tls.expires_within(previous, 0):
        previous = ""  # the old CA has expired: nothing it signed is valid any more
    want = {"tls.crt": b64(crt), "tls.key": b64(key)}
    if previous:
        want["previous.crt"] = b64(previous)
    result = write(api, s.ca[0], s.ca[1], want, {"kiosk.io/ca-subject": s.ca_subject}) if want != data else "unchanged"
    bundle = crt.strip() + "\n" + (previous.strip() + "\n" if previous else "")
    return crt, key, bundle, result


def leaf_current(tls, data, ca_crt, bundle, subject, dns_names, days_left):
    """Why the certificate in `data` must be issued again, or None."""
    crt, key = unb64(data, "tls.crt"), unb64(data, "tls.key")
    if not crt.strip() or not key.strip():
        return "missing"
    if unb64(data, "ca.crt") != bundle:
        return "trusted CAs changed"
    if not tls.signed_by(crt, ca_crt):
        return "not issued by the current CA"
    if tls.expires_within(crt, days_left):
        return "expires within {:g} days".format(days_left)
    if tls.subject(crt) != rfc2253(subject):
        return "subject changed"
    if dns_names and tls.dns_names(crt) != sorted(dns_names):
        return "names changed"
    if not tls.key_matches(crt, key):
        return "key does not match"
    return None


def restart(api, sts, digest):
    """Roll the StatefulSet's pod: mongod reads its certificate only when it starts."""
    patch = {"spec": {"template": {"metadata": {"annotations": {DIGEST_ANNOTATION: digest}}}}}
    api.call("PATCH", "/apis/apps/v1/namespaces/{}/statefulsets/{}".format(*sts), patch, "application/merge-patch+json")


def sync(api, s):
    """One pass: {what: result}, each `created`, `updated`, `unchanged`, or `error: ...`."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="kiosk-mongodb-tls-") as tmp:
        tls = OpenSSL(tmp)
        ca_crt, ca_key, bundle, ca_result = current_ca(api, tls, s)
        results["{}/{} (CA)".format(*s.ca)] = ca_result
        server_name = "{}/{} (mongod)".format(*s.server)
        try:
            current = api.call("GET", secrets_path(*s.server))
            data = (current or {}).get("data") or {}
            why = leaf_current(tls, data, ca_crt, bundle, s.server_subject, s.server_dns, s.renew_days)
            if why is None:
                results[server_name] = "unchanged"
            else:
                crt, key = tls.issue(ca_crt, ca_key, s.server_subject, int(s.cert_days), "server", s.server_dns)
                want = {"tls.crt": b64(crt), "tls.key": b64(key), "ca.crt": b64(bundle), "mongod.pem": b64(crt.strip() + "\n" + key.strip() + "\n")}
                result = write(api, s.server[0], s.server[1], want, {"kiosk.io/subject": rfc2253(s.server_subject), "kiosk.io/reason": why})
                if result == "updated" and s.statefulset:
                    restart(api, s.statefulset, hashlib.sha256(crt.encode()).hexdigest())
                results[server_name] = result
        except (OSError, RuntimeError, ValueError) as e:
            results[server_name] = "error: {}".format(e)
        for namespace, workload in s.clients:
            key_name = "{}/{}{}".format(namespace, workload, s.suffix)
            subject = s.client_subject(namespace, workload)
            try:
                current = api.call("GET", secrets_path(namespace, workload + s.suffix))
                data = (current or {}).get("data") or {}
                why = leaf_current(tls, data, ca_crt, bundle, subject, (), s.renew_days)
                if why is None:
                    results[key_name] = "unchanged"
                    continue
                crt, key = tls.issue(ca_crt, ca_key, subject, int(s.cert_days), "client")
                results[key_name] = write(api, namespace, workload + s.suffix, {"tls.crt": b64(crt), "tls.key": b64(key), "ca.crt": b64(bundle)},
                                          {"kiosk.io/subject": rfc2253(subject), "kiosk.io/workload": workload, "kiosk.io/reason": why})
            except (OSError, RuntimeError, ValueError) as e:
                results[key_name] = "error: {}".format(e)
    return results


def pair(text, what):
    namespace, _, name = text.strip().partition("/")
    if not namespace or not name or "/" in name:
        sys.exit("mongodb_tls_issuer: {} must be namespace/name, not {!r}".format(what, text))
    return namespace, name


def main(argv):
    s = Settings(os.environ)
    if not s.clients:
        sys.exit("mongodb_tls_issuer: KIOSK_CLIENT_CERTS names no client workload")
    interval = float(os.environ.get("KIOSK_SYNC_INTERVAL") or 60)
    ready = os.environ.get("KIOSK_SYNC_READY_FILE", "")
    once = "--once" in argv
    api = Api()
    last = {}
    while True:
        try:
            results = sync(api, s)
        except (OSError, RuntimeError, ValueError) as e:
            results = {"{}/{} (CA)".format(*s.ca): "error: {}".format(e)}
        for key, result in sorted(results.items()):
            if result != last.get(key) or once or result != "unchanged":
                print("mongodb_tls_issuer: {}: {}".format(key, result), flush=True)
        last = results
        good = all(r in SYNCED for r in results.values())
        if ready and good:
            with open(ready, "w", encoding="utf-8") as f:
                f.write("synced\n")
        if once:
            return 0 if good else 1
        time.sleep(interval)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
