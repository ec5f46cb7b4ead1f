"""The REST entry: its ingress requires a JWT (issue 18: the gateway's RequestAuthentication
names a realm of the Keycloak the chart deploys, issue 30, and its AuthorizationPolicy requires a
request principal in every rule), and its own sidecar admits only its callers (issue 28, item
1: the ingress gateway's identity, or the producer posting straight to it without a Gateway),
evaluated as Istio would for every identity of the bundle and outsiders."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse

from .common import ROOT, Report, ident
from .k8s import arg_value, containers, object_data, pod_templates, secret_file, selector_matches, service_account_of
from .keycloak import DATA_DIR, IMPORT_DIR, JWKS_PATH, PLACEHOLDER, REALM_FILE, TOKEN_PATH, Keycloak, Realm, keycloaks, placeholders, strings
from .manifests import compare_with_charts
from .mesh import OUTSIDER_PRINCIPALS, istio_authorizes, mtls_mode, policies_for, trust_domain
from .pods import Pod, pods_of
from .probe import chart_variants, expect_refusals, probe, quiet
from .render import chart_templates
from .services import kiosk_program


# The istio/gateway chart's pods as scripts/kind-up.sh installs it (release istio-ingressgateway
# in istio-ingress; labels app and istio from the chart's _helpers.tpl).
INGRESS_PODS = ("istio-ingress", {"app": "istio-ingressgateway", "istio": "ingressgateway"})


def check_ingress_jwt(report: Report, label: str, objects: list[dict]) -> None:
    """The REST entry's ingress requires a JWT (issue 18) of the bundle's Keycloak (issue 30):
    every Gateway selects the ingress gateway pods; a RequestAuthentication and an ALLOW
    AuthorizationPolicy of their namespace select them; every rule of that policy requires a
    request principal. Where Keycloak is deployed: the RequestAuthentication's issuer is a realm
    Keycloak imports (--hostname + /realms/<realm of the realm file>), its jwksUri that realm's
    JWKS, its audiences ones the realm's audience mappers issue (placeholders resolved with
    Keycloak's environment); the issuer's origin is a Service port reaching Keycloak's HTTP
    port; Keycloak runs without a sidecar (istiod fetches the JWKS in plain HTTP, which a STRICT
    sidecar would refuse), one pod, ready when the JWKS answers, and imports its realm
    (--import-realm, a ConfigMap at /opt/keycloak/data/import, byte for byte the repository's
    realm file) with every placeholder without a default set (an unset one is imported as the
    literal text), client secrets as placeholders set from a Secret (never inlined); the
    producer's --token-url is that realm's token endpoint, its --client-id a confidential client
    of the realm with the client-credentials grant only, whose tokens carry `sub` and an
    audience the gateway accepts, and its client secret is the Secret key Keycloak imports."""
    gateways = [o for o in objects if o.get("kind") == "Gateway"]
    if not gateways:
        return
    ns, labels = INGRESS_PODS
    for g in gateways:
        report.check(selector_matches({"matchLabels": g["spec"].get("selector") or {}}, labels),
                     f"{label}: {ident(g)} selects the ingress gateway pods ({ns}, {labels})")

    def selects(o):
        return o["metadata"].get("namespace") == ns and selector_matches(o["spec"].get("selector"), labels)

    ras = [o for o in objects if o.get("kind") == "RequestAuthentication" and selects(o)]
    aps = [o for o in objects if o.get("kind") == "AuthorizationPolicy" and selects(o) and o["spec"].get("action", "ALLOW") == "ALLOW"]
    report.check(bool(ras), f"{label}: a RequestAuthentication of {ns} selects the ingress gateway pods", "tokens would not be validated")
    report.check(bool(aps), f"{label}: an ALLOW AuthorizationPolicy of {ns} selects the ingress gateway pods", "a request without a token would pass")
    for ap in aps:
        rules = ap["spec"].get("rules") or []
        ok = bool(rules) and all(r.get("from") and all((f.get("source") or {}).get("requestPrincipals") for f in r["from"]) for r in rules)
        report.check(ok, f"{label}: {ident(ap)}: every rule requires a request principal (from[].source.requestPrincipals)",
                     "a rule without one lets a request without a token through")
    kcs = keycloaks(objects)
    if not kcs:
        return  # the plain manifests: the chart's rendering is compared with them
    realm_text = REALM_FILE.read_text()
    issuers: dict[str, tuple[Keycloak, Realm]] = {}
    for kc in kcs:
        who = f"{label}: {kc.who}"
        check_keycloak(report, who, objects, kc, realm_text)
        for realm in kc.realms:
            if kc.issuer(realm):
                issuers[kc.issuer(realm)] = (kc, realm)
    accepted: dict[str, set[str]] = {}  # issuer -> audiences the gateway accepts
    for ra in ras:
        for r in ra["spec"].get("jwtRules") or []:
            iss = str(r.get("issuer"))
            found = issuers.get(iss)
            if not report.check(found is not None, f"{label}: {ident(ra)}: the issuer {iss} is a Keycloak realm's (--hostname + /realms/<realm>: {sorted(issuers)})",
                                "no token it validates can be had"):
                continue
            kc, realm = found
            auds = set(map(str, r.get("audiences") or []))
            accepted.setdefault(iss, set()).update(auds)
            report.check(r.get("jwksUri") == iss + JWKS_PATH,
                         f"{label}: {ident(ra)}: jwksUri {r.get('jwksUri')} is the realm's JWKS ({iss}{JWKS_PATH})", "istiod would fetch no key Keycloak signs with")
            issued = {a for c in realm.resolved.get("clients") or [] for a in realm.audiences(c)}
            report.check(bool(auds) and auds <= issued,
                         f"{label}: {ident(ra)}: the audiences {sorted(auds)} are ones the realm issues (its audience mappers, as imported with {kc.who}'s environment: {sorted(issued)})",
                         "no token of the realm would be accepted, or the gateway would accept any audience")
            origin = urllib.parse.urlsplit(iss)
            host = (origin.hostname or "").split(".")
            port = origin.port or (443 if origin.scheme == "https" else 80)
            pod_labels = kc.obj["spec"]["template"]["metadata"].get("labels") or {}
            svc = next((o for o in objects if o.get("kind") == "Service" and len(host) >= 2 and re.fullmatch(r"svc(\.cluster\.local)?", ".".join(host[2:]))
                        and (o["metadata"]["name"], o["metadata"].get("namespace")) == (host[0], host[1])), None)
            sp = next((p for p in (svc or {}).get("spec", {}).get("ports") or [] if p.get("port") == port), None)
            report.check(svc is not None and sp is not None and selector_matches({"matchLabels": svc["spec"].get("selector") or {}}, pod_labels)
                         and target_port(kc.container, sp) == kc.http_port(),
                         f"{label}: {ident(ra)}: the issuer's origin {origin.scheme}://{origin.netloc} is a Service port reaching {kc.who}'s pods on its --http-port {kc.http_port()}")
            report.check(origin.scheme != "http" or arg_value(kc.args, "--http-enabled") == "true",
                         f"{label}: {kc.who} serves plain HTTP (--http-enabled=true), as its issuer {iss} says")
    for o in objects:
        if o.get("kind") != "Job":
            continue
        podspec = o["spec"]["template"]["spec"]
        for c in containers(podspec):
            args = [str(a) for a in c.get("args") or []]
            url = arg_value(args, "--token-url")
            if url is None:
                continue
            who = f"{label}: {ident(o)}"
            match = next(((i, v) for i, v in issuers.items() if url == i + TOKEN_PATH), None)
            if not report.check(match is not None, f"{who}: --token-url {url} is a Keycloak realm's token endpoint (<issuer>{TOKEN_PATH})",
                                f"realms: {sorted(issuers)}"):
                continue
            iss, (kc, realm) = match
            client_id = arg_value(args, "--client-id") or ""
            found = realm.client(client_id)
            if not report.check(found is not None, f"{who}: --client-id {client_id} is a client of realm {realm.name} ({realm.source})"):
                continue
            raw, client = found
            grants = {"standardFlowEnabled": False, "implicitFlowEnabled": False, "directAccessGrantsEnabled": False,
                      "serviceAccountsEnabled": True, "publicClient": False}
            wrong = [f"{k}: {client.get(k)}" for k, want in grants.items() if bool(client.get(k, k == "standardFlowEnabled")) != want]
            attrs = client.get("attributes") or {}
            wrong += [f"attributes.{a}: {attrs[a]}" for a in ("oauth2.device.authorization.grant.enabled", "oidc.ciba.grant.enabled") if str(attrs.get(a)) == "true"]
            wrong += ["enabled: false"] if client.get("enabled") is False else []
            report.check(not wrong, f"{who}: client {client_id} of realm {realm.name} is enabled, confidential, with the client-credentials grant only",
                         "; ".join(wrong))
            report.check("basic" in (client.get("defaultClientScopes") or []),
                         f"{who}: tokens of client {client_id} carry `sub` (default client scope basic), which the gateway's request principal (iss/sub) needs",
                         f"defaultClientScopes {client.get('defaultClientScopes')}")
            auds = realm.audiences(client)
            report.check(bool(auds) and auds <= accepted.get(iss, set()),
                         f"{who}: the audiences of client {client_id}'s tokens {sorted(auds)} are ones the gateway accepts for {iss} ({sorted(accepted.get(iss, set()))})")
            wants = [v for v, _ in placeholders(str(raw.get("secret") or ""))]
            env = kc.env_entry(wants[0]) if len(wants) == 1 else None
            theirs = ((env or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
            theirs = (theirs.get("name"), theirs.get("key")) if theirs else None
            ours = secret_file(podspec, c, arg_value(args, "--client-secret-file") or "")
            report.check(theirs is not None and theirs == ours,
                         f"{who}: its client secret ({ours}) is the one Keycloak imports for client {client_id} ({raw.get('secret')}: {theirs})")


def check_keycloak(report: Report, who: str, objects: list[dict], kc: Keycloak, realm_text: str) -> None:
    """Keycloak as the gateway's identity provider (check_ingress_jwt): pinned issuer, the realm
    imported as the repository has it, its placeholders set, secrets from Secrets, no sidecar,
    one pod, ready on the JWKS; its data (the realm's signing keys) on a ReadWriteOnce claim of
    the release, writable for it (fsGroup), so that a restart keeps the keys the gateway has,
    or on an emptyDir only when the release makes no claim for it (the chart's
    persistence.enabled false), restarted then by a new realm or Secret (each start imports)."""
    report.check(kc.args[:1] == ["start"], f"{who}: runs `start` (production mode)", f"args {kc.args[:1]}")
    report.check(bool(kc.hostname) and bool(re.fullmatch(r"https?://[^/]+", kc.hostname or "")),
                 f"{who}: --hostname is a full URL without a path (it pins the issuer of every token, whatever Host a request carries)", f"--hostname {kc.hostname}")
    report.check(kc.import_realm and bool(kc.realms) and not kc.unreadable,
                 f"{who}: imports its realm (--import-realm, a ConfigMap's *.json mounted at {IMPORT_DIR})",
                 f"--import-realm {'given' if kc.import_realm else 'missing'}, realm files {[r.source for r in kc.realms]}, unreadable {kc.unreadable}")
    labels = kc.obj["spec"]["template"]["metadata"].get("labels") or {}
    report.check(labels.get("sidecar.istio.io/inject") == "false", f"{who}: runs without a sidecar (istiod fetches its JWKS in plain HTTP)",
                 "a sidecar under STRICT mTLS would refuse istiod")
    spec = kc.obj.get("spec") or {}
    one_pod = kc.obj.get("kind") == "Deployment" and int(spec.get("replicas", 1)) == 1 and (spec.get("strategy") or {}).get("type") == "Recreate"
    shape = f"replicas {spec.get('replicas', 1)}, strategy {(spec.get('strategy') or {}).get('type')}"
    report.check(one_pod, f"{who}: one pod at a time (replicas 1, Recreate): two would sign with different keys, or share H2's file", shape)
    annotations = kc.obj["spec"]["template"]["metadata"].get("annotations") or {}
    # Its data directory: H2 with the realm's signing keys, generated at the import. Kept on a
    # claim, a restart keeps the keys whose JWKS istiod inlined into the gateway; on an emptyDir,
    # each start makes new ones, which the gateway refuses until istiod's next JWKS refresh (20
    # minutes by default). Keycloak imports a realm only where it is not yet (IGNORE_EXISTING):
    # on the claim, at the first start only, so nothing restarts it for a new realm or Secret
    # (it would apply neither); on the emptyDir, at each start, so the checksums restart it.
    ns = kc.obj["metadata"].get("namespace")
    mount, vol = kc.data_volume()
    kind = next((k for k in vol or {} if k != "name"), None)
    report.check(kind in ("persistentVolumeClaim", "emptyDir"),
                 f"{who}: a volume holds its data directory {DATA_DIR} (a PersistentVolumeClaim, or an emptyDir with persistence off)",
                 f"{'a ' + kind + ' volume' if kind else 'volume ' + str(mount.get('name')) + ' missing' if mount else 'nothing mounted there: the container filesystem'}")
    own_claim = f"{kc.obj['metadata']['name']}-data"  # the chart's name for Keycloak's claim
    claims = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "PersistentVolumeClaim" and o["metadata"].get("namespace") == ns}
    checksums = sorted(k for k in annotations if k in ("checksum/realm", "checksum/secret"))
    if kind == "persistentVolumeClaim":
        name = str(vol["persistentVolumeClaim"].get("claimName"))
        claim = claims.get(name)
        storage = (((claim or {}).get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
        cw = f"{who}: its data directory's claim {name}"
        if report.check(claim is not None and bool(storage),
                        f"{cw} is in the bundle, requesting storage (the release makes it)", "the pod would stay Pending"):
            modes = set((claim.get("spec") or {}).get("accessModes") or [])
            report.check(bool(modes) and modes <= {"ReadWriteOnce", "ReadWriteOncePod"},
                         f"{cw} is ReadWriteOnce (one node, one writer: H2's file)", f"accessModes {sorted(modes)}")
        report.check(one_pod, f"{who}: with its data on claim {name}, one pod at a time (replicas 1, Recreate)",
                     f"{shape}: a RollingUpdate's new pod waits for the old pod's ReadWriteOnce volume on another node, or opens H2's file beside it on the same one")
        ctx = kc.podspec.get("securityContext") or {}
        report.check(ctx.get("fsGroup") is not None,
                     f"{who}: its pod sets fsGroup ({ctx.get('fsGroup')}), so that claim {name}'s volume is writable for Keycloak's user ({ctx.get('runAsUser')})",
                     "a new volume's root belongs to root: H2 could not create its file")
        report.check(not checksums,
                     f"{who}: with its data kept, no checksum/realm or checksum/secret annotation restarts it (the realm and its secrets were imported at the first start: a restart applies neither)",
                     f"annotations {checksums}")
    elif kind == "emptyDir":
        report.check(own_claim not in claims,
                     f"{who}: its data directory is on an emptyDir only when the release makes no claim for it (persistence off; claim {own_claim})",
                     f"claim {own_claim} is in the bundle but not mounted at {DATA_DIR}: each start would still make new signing keys")
        report.check(checksums == ["checksum/realm", "checksum/secret"],
                     f"{who}: on an emptyDir, checksum/realm and checksum/secret restart it for a new realm or Secret (each start imports them)",
                     f"annotations {checksums}")
    # The checksums' values: the Secret's values are made once per rendering, so the hash is of
    # the very values the Secret holds.
    if "checksum/secret" in annotations:
        names = {(((e.get("valueFrom") or {}).get("secretKeyRef")) or {}).get("name") for e in kc.container.get("env") or []} - {None}
        data = [object_data(objects, "Secret", kc.obj["metadata"].get("namespace"), n) for n in sorted(names)]
        sums = {hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest() for d in data if d is not None}
        report.check(annotations["checksum/secret"] in sums, f"{who}: its checksum/secret is the hash of the Secret it takes its credentials from ({sorted(names)})",
                     "it would restart Keycloak (new signing keys) when nothing changed, or not when the credentials did")
    if "checksum/realm" in annotations:
        report.check(annotations["checksum/realm"] in {hashlib.sha256(r.text.encode()).hexdigest() for r in kc.realms},
                     f"{who}: its checksum/realm is the hash of the realm file it imports")
    for realm in kc.realms:
        rw = f"{who}: realm {realm.name} ({realm.source})"
        report.check(realm.text == realm_text, f"{rw} is {REALM_FILE.relative_to(ROOT)} byte for byte (the one realm file, which the local mesh imports too)")
        probe = (kc.container.get("readinessProbe") or {}).get("httpGet") or {}
        report.check(probe.get("path") == f"/realms/{realm.name}{JWKS_PATH}" and target_port(kc.container, {"targetPort": probe.get("port")}) == kc.http_port(),
                     f"{who}: ready when the realm's JWKS answers (readinessProbe GET /realms/{realm.name}{JWKS_PATH} on its --http-port {kc.http_port()})",
                     f"readinessProbe.httpGet {probe}")
        unset = sorted({v for s in strings(realm.raw) for v, default in placeholders(s) if default is None and v not in kc.env})
        report.check(not unset, f"{rw}: every placeholder without a default is set in Keycloak's environment",
                     f"{unset} unset: imported as the literal text (a client secret anyone can read in the chart)")
        for client in realm.raw.get("clients") or []:
            if client.get("publicClient") or client.get("bearerOnly"):
                continue
            secret = str(client.get("secret") or "")
            vars_ = [v for v, _ in placeholders(secret)]
            cw = f"{rw}: client {client.get('clientId')}'s secret"
            if not report.check(bool(vars_) and PLACEHOLDER.fullmatch(secret) is not None and placeholders(secret)[0][1] is None,
                                f"{cw} is one placeholder without a default ({secret or 'none'})",
                                "a literal (or default) secret is in the chart for anyone to read; none at all is generated at each import"):
                continue
            e = kc.env_entry(vars_[0]) or {}
            report.check(bool(((e.get("valueFrom") or {}).get("secretKeyRef")) or {}) and "value" not in e,
                         f"{cw} ${{{vars_[0]}}} is set from a Secret (secretKeyRef), not inlined in the pod spec", f"env {e}")
    for e in kc.container.get("env") or []:
        if re.search(r"SECRET|PASSWORD", str(e.get("name")), re.I):
            report.check("value" not in e and bool((e.get("valueFrom") or {}).get("secretKeyRef")),
                         f"{who}: env {e.get('name')} is set from a Secret (secretKeyRef), not inlined in the pod spec", f"env {e}")
            ref = (e.get("valueFrom") or {}).get("secretKeyRef") or {}
            s = next((o for o in objects if o.get("kind") == "Secret" and o["metadata"]["name"] == ref.get("name")
                      and o["metadata"].get("namespace") == kc.obj["metadata"].get("namespace")), None)
            if s is not None:
                report.check(((s["metadata"].get("annotations") or {}).get("helm.sh/resource-policy")) == "keep",
                             f"{who}: Secret {ref.get('name')} (env {e.get('name')}) outlives the release (helm.sh/resource-policy: keep)",
                             "an uninstall would delete it and a reinstall make other credentials than the clients hold")


def keycloak_variant_checks(report: Report) -> None:
    """The chart's Keycloak follows its values: another name, port and audience render a
    bundle check_ingress_jwt accepts, with the issuer, JWKS and token URLs under the new origin
    and the audience given to the realm; the token lifetime is the realm file's, not a value
    (rest.gateway.jwt.tokenLifetime, which `kiosk issuer` had, is refused). Its data: on its
    ReadWriteOnce claim keycloak-data by default, the claim's size and storage class the
    values'; with persistence.enabled false on an emptyDir, no claim, every Keycloak invariant
    met, and the cost said in NOTES.txt and docs/kubernetes.md."""

    def follows(values, objs):
        errs = probe(check_ingress_jwt, objs)
        rule = next(o for o in objs if o.get("kind") == "RequestAuthentication")["spec"]["jwtRules"][0]
        want = "http://idp.pipeline.svc.cluster.local:8443/realms/kiosk"
        report.check(not errs and rule["issuer"] == want and rule["audiences"] == ["shop-rest"],
                     f"self-check: Keycloak: the test chart with {values}: its URLs and the audience follow the values ({rule['issuer']}, {rule['audiences']})",
                     str(errs[:2]))

    jwt = lambda **kw: {"rest": {"gateway": {"jwt": kw}}}  # noqa: E731
    chart_variants(report, "test-kafka-istio-mongo",
                   [(jwt(audience="shop-rest", keycloak={"name": "idp", "port": 8443}), True), (jwt(tokenLifetime=300), False),
                    (jwt(keycloak={"name": "Keycloak"}), False)],
                   lambda values, ok: f"self-check: Keycloak: the test chart with {values} {'renders' if ok else 'is refused by its schema'}", follows)

    # Its data across restarts (rest.gateway.jwt.keycloak.persistence): kept on a claim by
    # default, the claim following the values; the emptyDir only when asked, and then said.
    docs = (ROOT / "docs/kubernetes.md").read_text()

    def data_of(values, objs):
        kc = keycloaks(objs)[0]
        _, vol = kc.data_volume()
        claims = {o["metadata"]["name"]: o["spec"] for o in objs if o.get("kind") == "PersistentVolumeClaim"}
        notes = next((t for n, t in chart_templates("test-kafka-istio-mongo", values).items() if n.endswith("NOTES.txt")), "")
        warns = "new signing keys" in notes and "persistence.enabled=false" in notes
        errs = probe(check_ingress_jwt, objs)
        what = f"self-check: Keycloak's data: the test chart with {values or 'its default values'}"
        persistence = values.get("rest", {}).get("gateway", {}).get("jwt", {}).get("keycloak", {}).get("persistence", {})
        if persistence.get("enabled", True):
            spec = claims.get("keycloak-data") or {}
            want = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": persistence.get("size", "256Mi")}}}
            if persistence.get("storageClassName"):
                want["storageClassName"] = persistence["storageClassName"]
            report.check(not errs and (vol or {}).get("persistentVolumeClaim") == {"claimName": "keycloak-data"} and spec == want and not warns,
                         f"{what}: keeps Keycloak's data on its ReadWriteOnce claim keycloak-data ({spec}), and NOTES.txt gives no emptyDir warning",
                         f"data volume {vol}, errors {errs[:2]}")
        else:
            report.check(not errs and "emptyDir" in (vol or {}) and "keycloak-data" not in claims,
                         f"{what}: Keycloak's data on an emptyDir, no claim for it, every Keycloak invariant met", f"data volume {vol}, claims {sorted(claims)}, errors {errs[:2]}")
            report.check(warns, f"{what}: NOTES.txt warns that each start of Keycloak makes new signing keys (persistence.enabled=false)")
            report.check("rest.gateway.jwt.keycloak.persistence.enabled" in docs,
                         f"{what}: docs/kubernetes.md names the opt-out rest.gateway.jwt.keycloak.persistence.enabled and its cost")

    kcp = lambda **kw: jwt(keycloak={"persistence": kw})  # noqa: E731
    chart_variants(report, "test-kafka-istio-mongo",
                   [({}, True), (kcp(enabled=False), True), (kcp(enabled=True, size="1Gi", storageClassName="fast"), True),
                    (kcp(enabled="yes"), False), (kcp(size="1TB"), False)],
                   lambda values, ok: f"self-check: Keycloak's data: the test chart with {values or 'its default values'} {'renders' if ok else 'is refused by its schema'}",
                   data_of)


def target_port(container: dict, service_port: dict) -> int | None:
    """The container port a Service port's targetPort (a number or a port name) reaches."""
    tp = service_port.get("targetPort", service_port.get("port"))
    if isinstance(tp, int) or str(tp).isdigit():
        return int(tp)
    return next((p.get("containerPort") for p in container.get("ports") or [] if p.get("name") == tp), None)


# The ingress gateway's ServiceAccount: the istio/gateway chart names it after its release
# (`gateway.serviceAccountName`: serviceAccount.name, else the release name), and
# scripts/kind-up.sh installs release istio-ingressgateway in istio-ingress.
INGRESS_SERVICE_ACCOUNT = "istio-ingressgateway"
# Requests the REST entry serves besides producing (Strimzi Kafka Bridge's HTTP API): topic
# and partition metadata, the consumer API (which reads Kafka through the Bridge), OpenAPI.
# (POST /topics/<topic>/partitions/<n> produces too: the gateway routes it, as /topics/.)
REST_NOT_PRODUCE = [("GET", "/topics"), ("GET", "/topics/events"), ("GET", "/topics/events/partitions/0"),
                    ("POST", "/consumers/probe"), ("GET", "/consumers/probe/instances/x/records"),
                    ("DELETE", "/consumers/probe/instances/x"), ("GET", "/openapi"), ("PUT", "/topics/events")]


def rest_entries(objects: list[dict]) -> list[tuple[str, Pod, int, set[tuple[str, str]]]]:
    """The REST entry's pods (a KafkaBridge's, or `kiosk rest`'s): (what, pod, HTTP port, the
    (Service, namespace) pairs that reach it)."""
    out = []
    pods = {p.source: p for p in pods_of(objects)}
    for o in objects:
        ns, name = o["metadata"].get("namespace"), o["metadata"]["name"]
        if o.get("kind") == "KafkaBridge":
            port = ((o.get("spec") or {}).get("http") or {}).get("port", 8080)
            out.append((f"KafkaBridge {name}", pods[f"KafkaBridge {name}"], port, {(f"{name}-bridge-service", ns)}))
        elif o.get("kind") == "Deployment":
            for c in containers(pod_templates(o)[0][1]):
                if kiosk_program(c) != "rest":
                    continue
                pod = pods[f"Deployment {name}"]
                listen = arg_value([str(a) for a in c.get("args") or []], "--listen") or "0.0.0.0:8080"
                port = int(listen.rsplit(":", 1)[1])
                svcs = {(s["metadata"]["name"], ns) for s in objects if s.get("kind") == "Service" and s["metadata"].get("namespace") == ns
                        and s["spec"].get("selector") and selector_matches({"matchLabels": s["spec"]["selector"]}, pod.labels)}
                out.append((f"Deployment {name} (kiosk rest)", pod, port, svcs))
    return out


def check_rest_access(report: Report, label: str, objects: list[dict], injected: set[str]) -> None:
    """Who may post to the REST entry (issue 28, item 1): the JWT is checked at the ingress
    gateway only, so the REST entry's own sidecar must refuse every caller but the ones the
    design has: the ingress gateway's identity when the bundle has a Gateway, and a Job that
    posts straight to the REST entry's Service (the producer without a gateway). Evaluated as
    Istio would, with the pipeline's and the cluster's other identities and a plaintext caller:
    exactly those callers may POST /topics/<topic>; nobody may use the rest of the Bridge's API
    (its consumers read Kafka); it is in the mesh, its port captured and mTLS-only."""
    td = trust_domain()
    principal = lambda sa: f"{td}/ns/{sa[0]}/sa/{sa[1]}"  # noqa: E731
    sas = {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects if o.get("kind") == "ServiceAccount"}
    strimzi_sas = {service_account_of(o, None) for o in objects if o.get("kind") in ("KafkaConnect", "KafkaBridge")}
    gateway = principal((INGRESS_PODS[0], INGRESS_SERVICE_ACCOUNT))
    has_gateway = any(o.get("kind") == "Gateway" for o in objects)
    for what, pod, port, services in rest_entries(objects):
        who = f"{label}: the REST entry ({what})"
        callers: dict[str, str] = {gateway: "the ingress gateway"} if has_gateway else {}
        for o in objects:
            if o.get("kind") != "Job":
                continue
            podspec = pod_templates(o)[0][1]
            for c in containers(podspec):
                url = arg_value([str(a) for a in c.get("args") or []], "--url") or ""
                host = (urllib.parse.urlsplit(url).hostname or "").split(".")
                if len(host) >= 2 and (host[0], host[1]) in services:
                    callers[principal(service_account_of(o, podspec))] = f"{ident(o)} posts to {url}"
        report.check(pod.sidecar(injected), f"{who}: has a sidecar (its AuthorizationPolicy is enforced there)", f"namespace {pod.namespace} not injected or injection off")
        report.check(pod.captured(port), f"{who}: its sidecar captures port {port}", "excluded from inbound capture: no policy would apply")
        report.check(mtls_mode(objects, pod, port) == "STRICT", f"{who}: port {port} takes Istio mTLS only (STRICT: every caller has an identity)",
                     f"mode {mtls_mode(objects, pod, port)}")
        policies = policies_for(objects, pod)
        report.check(any(((p.get("spec") or {}).get("action", "ALLOW")) == "ALLOW" for p in policies),
                     f"{who}: an ALLOW AuthorizationPolicy selects its pods (without one any meshed pod may post without a token)",
                     str([ident(p) for p in policies]))
        report.check(not has_gateway or gateway in callers, f"{who}: with a Gateway, the ingress gateway's identity {gateway} is a caller")
        everyone = sorted({gateway} | set(callers) | {principal(sa) for sa in sas | strimzi_sas}) + OUTSIDER_PRINCIPALS
        unknown: set[str] = set()
        may_post, extra = set(), []
        for p in everyone:
            ok, u = istio_authorizes(policies, p, "POST", "/topics/events")
            unknown.update(u)
            if ok:
                may_post.add(p)
            for method, path in REST_NOT_PRODUCE:
                ok, u = istio_authorizes(policies, p, method, path)
                unknown.update(u)
                if ok:
                    extra.append(f"{p or '(plaintext)'} {method} {path}")
        named = {p for pol in policies for r in (pol.get("spec") or {}).get("rules") or [] for f in r.get("from") or []
                 for k in ("principals", "notPrincipals") for p in (f.get("source") or {}).get(k) or []}
        report.check(named <= set(callers), f"{who}: its policies name no principal but its callers'", str(sorted(named - set(callers))))
        report.check(not unknown, f"{who}: its AuthorizationPolicies use only what this check evaluates", str(sorted(unknown)[:5]))
        report.check(may_post == set(callers), f"{who}: only its callers may post: {sorted(f'{p} ({w})' for p, w in callers.items())}",
                     f"allowed to post: {sorted(map(str, may_post))}")
        report.check(not extra, f"{who}: nobody may use the rest of its API (topic metadata, consumers, OpenAPI)", str(extra[:5]))


def rest_access_self_checks(report: Report, bundle: list[dict], gatewayless: list[dict], injected: set[str], plain: list[dict], applied: set[str]) -> None:
    """Each way the REST entry could take a post from another meshed pod than the gateway (issue
    28, item 1, put back among them), put into a copy of the kind install (and of the install
    without a Gateway, where the producer posts straight to it): check_rest_access must reject
    it; and the plain policy the local mesh reads must equal the chart's."""

    def find(b, kind, name):
        return next(o for o in b if o.get("kind") == kind and o["metadata"]["name"] == name)

    def policy(b, name="kiosk-rest-access"):
        return find(b, "AuthorizationPolicy", name)["spec"]

    def principals(b, name="kiosk-rest-access"):
        return policy(b, name)["rules"][0]["from"][0]["source"]["principals"]

    producer = "cluster.local/ns/pipeline/sa/kiosk-test-producer"
    bridge_pod = lambda b: find(b, "KafkaBridge", "kiosk")["spec"]["template"]["pod"]["metadata"]  # noqa: E731
    cases = [
        ("the install as it is", bundle, lambda b: None, None),
        ("28: no AuthorizationPolicy selecting the Bridge's pods (any meshed pod posts without a token)", bundle,
         lambda b: b.remove(find(b, "AuthorizationPolicy", "kiosk-rest-access")), "an ALLOW AuthorizationPolicy selects its pods"),
        ("the producer among the callers (it posts through the gateway)", bundle, lambda b: principals(b).append(producer), "only its callers may post"),
        ("the mirror among the callers", bundle, lambda b: principals(b).append("cluster.local/ns/pipeline/sa/kiosk-mirror"), "only its callers may post"),
        ("callers by namespace (pipeline)", bundle, lambda b: policy(b)["rules"][0]["from"][0].__setitem__("source", {"namespaces": ["pipeline", "istio-ingress"]}),
         "only its callers may post"),
        ("the gateway's service account misspelt", bundle, lambda b: principals(b).__setitem__(0, "cluster.local/ns/istio-ingress/sa/istio-ingress-gateway"),
         "only its callers may post"),
        ("another cluster's workload named", bundle, lambda b: principals(b).append("cluster.local/ns/elsewhere/sa/client"), "name no principal but its callers"),
        ("every path (the Bridge's consumer API)", bundle, lambda b: policy(b)["rules"][0]["to"][0]["operation"].pop("paths"), "nobody may use the rest of its API"),
        ("every method", bundle, lambda b: policy(b)["rules"][0]["to"][0]["operation"].pop("methods"), "nobody may use the rest of its API"),
        ("a rule without a source", bundle, lambda b: policy(b)["rules"][0].pop("from"), "only its callers may post"),
        ("a namespace-wide ALLOW policy", bundle, lambda b: b.append({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                                                                      "metadata": {"name": "allow-all", "namespace": "pipeline"}, "spec": {"rules": [{}]}}),
         "only its callers may post"),
        ("the policy as DENY", bundle, lambda b: policy(b).__setitem__("action", "DENY"), "an ALLOW AuthorizationPolicy selects its pods"),
        ("the policy selecting Kafka Connect's pods", bundle, lambda b: policy(b)["selector"]["matchLabels"].__setitem__("strimzi.io/kind", "KafkaConnect"),
         "an ALLOW AuthorizationPolicy selects its pods"),
        ("a token required instead, as a `when` condition", bundle,
         lambda b: policy(b)["rules"][0].__setitem__("when", [{"key": "request.auth.claims[aud]", "values": ["kiosk-rest"]}]), "only what this check evaluates"),
        ("the Bridge PERMISSIVE", bundle, lambda b: b.append({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                                                              "metadata": {"name": "bridge-permissive", "namespace": "pipeline"},
                                                              "spec": {"selector": {"matchLabels": {"strimzi.io/kind": "KafkaBridge"}}, "mtls": {"mode": "PERMISSIVE"}}}),
         "takes Istio mTLS only"),
        ("the Bridge without a sidecar", bundle, lambda b: bridge_pod(b).setdefault("labels", {}).__setitem__("sidecar.istio.io/inject", "false"), "has a sidecar"),
        ("the Bridge's port excluded from capture", bundle,
         lambda b: bridge_pod(b).setdefault("annotations", {}).__setitem__("traffic.sidecar.istio.io/excludeInboundPorts", "8080"), "captures port 8080"),
        ("no Gateway: the install as it is", gatewayless, lambda b: None, None),
        ("no Gateway: the producer, which posts straight to the REST entry, not among the callers", gatewayless,
         lambda b: principals(b, "demo-rest-access").remove("cluster.local/ns/pipeline/sa/demo-test-producer"), "only its callers may post"),
        ("no Gateway: the gateway's identity still a caller", gatewayless,
         lambda b: principals(b, "demo-rest-access").append("cluster.local/ns/istio-ingress/sa/istio-ingressgateway"), "only its callers may post"),
    ]
    expect_refusals(report, cases, lambda b: probe(check_rest_access, b, injected),
                    "self-check: the REST entry's access, {what}, passes every check", "self-check: REST entry with {what}: rejected", shown=3)
    if report.check(any(o.get("kind") == "AuthorizationPolicy" and o["metadata"]["name"] == "kiosk-rest-access" for o in plain),
                    "istio/authorization-policy-rest-entry.yaml holds AuthorizationPolicy kiosk-rest-access"):
        expect_refusals(report, [("the plain REST entry policy (which the local mesh reads) differing from the chart's", plain,
                                  lambda b: principals(b).append(producer), "kiosk-rest-access .spec equals")],
                        lambda b: quiet(compare_with_charts, b, bundle, applied), "", "self-check: {what}: rejected")
