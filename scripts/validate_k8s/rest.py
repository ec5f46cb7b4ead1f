"""The REST entry: its ingress requires a JWT (issue 18: the gateway's RequestAuthentication
names the token issuer the chart deploys, its AuthorizationPolicy requires a request principal
in every rule), and its own sidecar admits only its callers (issue 28, item 1: the ingress
gateway's identity, or the producer posting straight to it without a Gateway), evaluated as
Istio would for every identity of the bundle and outsiders."""

from __future__ import annotations

import re
import urllib.parse

from .common import Report, ident
from .k8s import arg_value, containers, pod_templates, secret_file, selector_matches, service_account_of
from .manifests import compare_with_charts
from .mesh import OUTSIDER_PRINCIPALS, istio_authorizes, mtls_mode, policies_for, trust_domain
from .pods import Pod, pods_of
from .probe import expect_refusals, probe, quiet
from .services import kiosk_program


# The istio/gateway chart's pods as scripts/kind-up.sh installs it (release istio-ingressgateway
# in istio-ingress; labels app and istio from the chart's _helpers.tpl).
INGRESS_PODS = ("istio-ingress", {"app": "istio-ingressgateway", "istio": "ingressgateway"})


def check_ingress_jwt(report: Report, label: str, objects: list[dict]) -> None:
    """The REST entry's ingress requires a JWT (issue 18): every Gateway selects the ingress
    gateway pods; a RequestAuthentication and an ALLOW AuthorizationPolicy of their namespace
    select them; every rule of that policy requires a request principal; where the token issuer
    is deployed, the RequestAuthentication's issuer, audience and jwksUri are the issuer's (its
    arguments, its Service), the issuer runs without a sidecar (istiod fetches the JWKS in plain
    HTTP, which a STRICT sidecar would refuse), and the producer asks it for tokens with a client
    id and secret the issuer knows (the same Secret key)."""
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
    issuers = {}
    for o in objects:
        if o.get("kind") != "Deployment":
            continue
        podspec = o["spec"]["template"]["spec"]
        for c in containers(podspec):
            args = [str(a) for a in c.get("args") or []]
            if args[:1] == ["issuer"]:
                issuers[arg_value(args, "--issuer")] = (o, c, args)
    if not issuers:
        return  # the plain manifests: the chart's rendering is compared with them
    for ra in ras:
        for r in ra["spec"].get("jwtRules") or []:
            iss = r.get("issuer")
            found = issuers.get(iss)
            if not report.check(found is not None, f"{label}: {ident(ra)}: the issuer {iss} is the token issuer's (--issuer of {sorted(map(str, issuers))})",
                                "no token it validates can be had"):
                continue
            dep, _c, args = found
            report.check(arg_value(args, "--audience") in (r.get("audiences") or []),
                         f"{label}: {ident(ra)}: the audiences {r.get('audiences')} hold the issuer's --audience {arg_value(args, '--audience')}")
            report.check(r.get("jwksUri") == iss.rstrip("/") + "/.well-known/jwks.json",
                         f"{label}: {ident(ra)}: jwksUri {r.get('jwksUri')} is the issuer's JWKS ({iss}/.well-known/jwks.json)")
            m = re.match(r"^http://([^./:]+)\.([^./:]+)\.svc(?:\.cluster\.local)?(?::(\d+))?$", iss.rstrip("/"))
            svc = m and next((o for o in objects if o.get("kind") == "Service" and o["metadata"]["name"] == m.group(1)
                              and o["metadata"].get("namespace") == m.group(2)), None)
            pod_labels = dep["spec"]["template"]["metadata"].get("labels") or {}
            port = int(m.group(3) or 80) if m else None
            report.check(bool(svc) and selector_matches({"matchLabels": svc["spec"].get("selector") or {}}, pod_labels)
                         and any(p.get("port") == port for p in svc["spec"].get("ports") or []),
                         f"{label}: {ident(ra)}: the issuer's URL is a Service port selecting {ident(dep)}'s pods")
            report.check(pod_labels.get("sidecar.istio.io/inject") == "false",
                         f"{label}: {ident(dep)} runs without a sidecar (istiod fetches its JWKS in plain HTTP)",
                         "a sidecar under STRICT mTLS would refuse istiod")
    for o in objects:
        if o.get("kind") != "Job":
            continue
        podspec = o["spec"]["template"]["spec"]
        for c in containers(podspec):
            args = [str(a) for a in c.get("args") or []]
            url = arg_value(args, "--token-url")
            if url is None:
                continue
            match = next(((i, v) for i, v in issuers.items() if url == i.rstrip("/") + "/token"), None)
            if not report.check(match is not None, f"{label}: {ident(o)}: --token-url {url} is the token issuer's token endpoint"):
                continue
            dep, ic, iargs = match[1]
            client = arg_value(args, "--client-id") or "producer"
            theirs = secret_file(dep["spec"]["template"]["spec"], ic, (arg_value(iargs, "--clients") or "").rstrip("/") + "/" + client)
            ours = secret_file(podspec, c, arg_value(args, "--client-secret-file") or "")
            report.check(theirs is not None and theirs == ours,
                         f"{label}: {ident(o)}: its client secret ({ours}) is the one the issuer knows for client {client} ({theirs})")


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
