"""One trace across the Kafka hops (issue 18, docs/tracing.md): Istio's tracing provider and the
Bridge's tracing. A mesh-wide Telemetry samples every request for providers istiod's values
define, each `opentelemetry` over gRPC to Jaeger's OTLP gRPC receiver in the Jaeger addon
kind-up.sh applies; every KafkaBridge exports OTLP gRPC to that same service:port."""

from __future__ import annotations

import re

import yaml

from .common import ROOT, Report, ident
from .manifests import compare_with_charts
from .mesh import ROOT_NAMESPACE
from .probe import expect_refusals, probe, quiet


# Jaeger as Istio's samples/addons/jaeger.yaml deploys it, read at each Istio tag whose addon
# scripts/kind-up.sh may apply (istio/istio <tag>:samples/addons/jaeger.yaml): its Services,
# port -> (port name, target port; the file gives no targetPort for 4317 and 4318, so the port
# itself), and the ports of its collector's OTLP receivers (the ConfigMap `jaeger`,
# receivers.otlp.protocols.grpc / http endpoints). The Jaeger pod runs without a sidecar
# (sidecar.istio.io/inject: "false"). Another tag must be read before it is added here.
JAEGER_ADDONS = {
    "1.30.3": {
        "image": "docker.io/jaegertracing/jaeger:2.14.0",
        "services": {
            ("istio-system", "jaeger-collector"): {14268: ("jaeger-collector-http", 14268), 14250: ("jaeger-collector-grpc", 14250),
                                                   9411: ("http-zipkin", 9411), 4317: ("grpc-otel", 4317), 4318: ("http-otel", 4318)},
            ("istio-system", "zipkin"): {9411: ("http-query", 9411)},
            ("istio-system", "tracing"): {80: ("http-query", 16686), 16685: ("grpc-query", 16685)},
        },
        "otlp_grpc": 4317,
        "otlp_http": 4318,
    },
}
JAEGER_ADDON_RE = re.compile(r"kubectl apply -f https://raw\.githubusercontent\.com/istio/istio/([^/\s]+)/samples/addons/jaeger\.yaml")


# The OpenTelemetry SDK's variables the Bridge's tracer reads (sdk-extensions/autoconfigure).
OTEL_ENV = ("OTEL_SERVICE_NAME", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_PROPAGATORS", "OTEL_SDK_DISABLED")


def kind_up_jaeger_tags(lines: list[str]) -> list[str]:
    """The Istio tags whose samples/addons/jaeger.yaml the printed kind-up.sh commands apply."""
    return [m.group(1) for l in lines for m in [JAEGER_ADDON_RE.search(l)] if m]


def istiod_extension_providers() -> list[dict]:
    values = yaml.safe_load((ROOT / "istio/helm/istiod-values.yaml").read_text()) or {}
    return list((values.get("meshConfig") or {}).get("extensionProviders") or [])


def provider_service(service: str | None) -> tuple[str, str] | None:
    """(namespace, name) of a provider's `[<Namespace>/]<Hostname>` naming a Kubernetes Service."""
    m = re.match(r"^(?:([a-z0-9-]+)/)?([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?$", service or "")
    if not m or (m.group(1) and m.group(1) != m.group(3)):
        return None
    return m.group(3), m.group(2)


def check_tracing(report: Report, label: str, objects: list[dict], providers: list[dict], jaeger_tags: list[str]) -> None:
    """One trace across the Kafka hops (issue 18, docs/tracing.md): a mesh-wide Telemetry samples
    every request and names tracing providers that istiod's meshConfig.extensionProviders
    define; each is `opentelemetry` (Envoy's OpenTelemetry tracer writes W3C traceparent, the
    context the Bridge's OpenTelemetry SDK reads by default) over gRPC to a Service and port
    where Jaeger, as Istio's samples/addons/jaeger.yaml applied by kind-up.sh deploys it (or a
    Service of the bundle), receives OTLP gRPC; every KafkaBridge has tracing.type opentelemetry
    and its container exports OTLP gRPC to that same Service and port."""
    by_name = {p.get("name"): p for p in providers}
    telemetries = [t for t in objects if t.get("kind") == "Telemetry" and (t.get("spec") or {}).get("tracing")]
    mesh_wide = [t for t in telemetries if t["metadata"].get("namespace") == ROOT_NAMESPACE and not t["spec"].get("selector")]
    bridges = [o for o in objects if o.get("kind") == "KafkaBridge"]
    if not telemetries and not bridges:
        return
    if not report.check(bool(mesh_wide), f"{label}: a mesh-wide Telemetry ({ROOT_NAMESPACE}, no selector) configures tracing",
                        "the sidecars would report no spans"):
        return
    # Where Jaeger receives OTLP gRPC: the addon's Services (kind-up.sh applies it), and the bundle's.
    receivers: dict[tuple[str, str], dict[int, tuple[str, int]]] = {}
    report.check(len(jaeger_tags) == 1, f"{label}: scripts/kind-up.sh applies Istio's samples/addons/jaeger.yaml once", f"it applies it for {jaeger_tags}")
    otlp_grpc = None
    for tag in jaeger_tags[:1]:
        addon = JAEGER_ADDONS.get(tag)
        if report.check(addon is not None, f"{label}: the Jaeger addon kind-up.sh applies (Istio {tag}) is one read here (JAEGER_ADDONS)",
                        f"read istio/istio {tag}:samples/addons/jaeger.yaml (its Services, ports and OTLP receivers) and add it"):
            receivers.update(addon["services"])
            otlp_grpc = addon["otlp_grpc"]
    endpoints = set()
    for t in mesh_wide:
        for tr in t["spec"]["tracing"]:
            pct = tr.get("randomSamplingPercentage")
            report.check(pct == 100, f"{label}: {ident(t)}: samples every request (randomSamplingPercentage 100)", f"it is {pct}")
            for ref in tr.get("providers") or []:
                who = f"{label}: {ident(t)}: tracing provider {ref.get('name')!r}"
                p = by_name.get(ref.get("name"))
                if not report.check(p is not None, f"{who} is an extension provider of istio/helm/istiod-values.yaml",
                                    f"meshConfig.extensionProviders has {sorted(map(str, by_name))}"):
                    continue
                otel = p.get("opentelemetry")
                if not report.check(isinstance(otel, dict), f"{who} is opentelemetry (W3C traceparent, OTLP)",
                                    f"it is {sorted(k for k in p if k != 'name')}: its headers are not the ones the Bridge reads"):
                    continue
                report.check(not otel.get("http"), f"{who} exports over gRPC (no `http`)", "OTLP/HTTP is not what its port receives")
                svc, port = provider_service(otel.get("service")), otel.get("port")
                ports = receivers.get(svc) if svc else None
                if svc and ports is None:
                    found = next((o for o in objects if o.get("kind") == "Service" and (o["metadata"].get("namespace"), o["metadata"]["name"]) == svc), None)
                    if found:
                        ports = {q["port"]: (q.get("name", ""), q.get("targetPort", q["port"])) for q in found["spec"].get("ports") or []}
                if not report.check(ports is not None, f"{who}: {otel.get('service')} is a Service Jaeger exposes (Istio's jaeger addon, or the bundle)",
                                    f"Services there: {sorted('.'.join(reversed(k)) for k in receivers)}"):
                    continue
                target = ports.get(port)
                report.check(target is not None and target[1] == otlp_grpc and target[0].split("-")[0] in ("grpc", "http2"),
                             f"{who}: port {port} of {otel.get('service')} is Jaeger's OTLP gRPC receiver ({otlp_grpc}, a gRPC port to Istio)",
                             f"its ports: {ports}")
                endpoints.add(f"http://{otel.get('service')}:{port}")
    for b in bridges:
        who = f"{label}: {ident(b)}"
        spec = b.get("spec") or {}
        report.check((spec.get("tracing") or {}).get("type") == "opentelemetry", f"{who}: tracing.type is opentelemetry",
                     "without it the Bridge neither continues a request's trace nor writes it into the record headers")
        env_list = ((spec.get("template") or {}).get("bridgeContainer") or {}).get("env") or []
        env = {e.get("name"): e for e in env_list}
        by_ref = sorted(n for n in OTEL_ENV if n in env and "value" not in env[n])
        report.check(not by_ref, f"{who}: its OTEL_* variables are plain values (checked here)", f"by reference: {by_ref}")
        val = {n: env[n].get("value") for n in OTEL_ENV if n in env}
        report.check(bool(val.get("OTEL_SERVICE_NAME")), f"{who}: OTEL_SERVICE_NAME names its spans", "the Bridge starts no tracer without it")
        report.check(val.get("OTEL_SDK_DISABLED", "false").lower() != "true", f"{who}: the OpenTelemetry SDK is not disabled")
        report.check(val.get("OTEL_TRACES_EXPORTER", "otlp") == "otlp", f"{who}: OTEL_TRACES_EXPORTER is otlp", f"it is {val.get('OTEL_TRACES_EXPORTER')!r}")
        proto = val.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or val.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"
        report.check(proto == "grpc", f"{who}: exports OTLP over gRPC (the SDK's default)", f"protocol {proto!r}: the provider's port receives gRPC")
        props = [s.strip() for s in (val.get("OTEL_PROPAGATORS") or "tracecontext,baggage").split(",")]
        report.check("tracecontext" in props, f"{who}: propagates W3C tracecontext (what the sidecars write)", f"OTEL_PROPAGATORS {props}")
        endpoint = val.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or val.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        report.check(bool(endpoints) and endpoint in endpoints, f"{who}: its OTLP endpoint {endpoint} is the mesh's tracing provider's service:port",
                     f"the providers' are {sorted(endpoints)}")


def tracing_self_checks(report: Report, bundle: list[dict], plain: list[dict], default_charts: list[dict], applied: set[str],
                        providers: list[dict], jaeger_tags: list[str]) -> None:
    """Each way one trace could break across the hops, put into a copy of the kind install, its
    providers or the Jaeger addon kind-up.sh applies: check_tracing must reject it (and accept
    the install as it is); and the plain KafkaBridge differing from the chart's is rejected."""

    def find(b, kind):
        return next(o for o in b if o.get("kind") == kind)

    def jaeger(ps):
        return next(p for p in ps if p.get("name") == "jaeger")

    def bridge_env(b, name, value):
        c = find(b, "KafkaBridge")["spec"]["template"]["bridgeContainer"]
        c["env"] = [e for e in c["env"] if e["name"] != name] + ([{"name": name, "value": value}] if value is not None else [])

    old_zipkin = {"zipkin": {"service": "zipkin.istio-system.svc.cluster.local", "port": 9411}}
    cases = [
        ("the install as it is", lambda b, ps, tags: None, None),
        ("the Telemetry naming a provider istiod does not define",
         lambda b, ps, tags: find(b, "Telemetry")["spec"]["tracing"][0]["providers"][0].update(name="otel"), "is an extension provider"),
        ("the provider back to Jaeger's Zipkin endpoint (B3 headers)",
         lambda b, ps, tags: [jaeger(ps).pop("opentelemetry"), jaeger(ps).update(old_zipkin)], "is opentelemetry"),
        ("the provider to a collector nothing installs",
         lambda b, ps, tags: jaeger(ps)["opentelemetry"].update(service="opentelemetry-collector.observability.svc.cluster.local"), "is a Service Jaeger exposes"),
        ("the provider to the collector's OTLP/HTTP port",
         lambda b, ps, tags: jaeger(ps)["opentelemetry"].update(port=4318), "OTLP gRPC receiver"),
        ("the provider to the collector's Zipkin port",
         lambda b, ps, tags: jaeger(ps)["opentelemetry"].update(port=9411), "OTLP gRPC receiver"),
        ("the provider over OTLP/HTTP",
         lambda b, ps, tags: jaeger(ps)["opentelemetry"].update(http={"path": "/v1/traces"}), "exports over gRPC"),
        ("1% of requests sampled",
         lambda b, ps, tags: find(b, "Telemetry")["spec"]["tracing"][0].update(randomSamplingPercentage=1), "samples every request"),
        ("no mesh-wide Telemetry (only the pipeline's)",
         lambda b, ps, tags: find(b, "Telemetry")["metadata"].update(namespace="pipeline"), "a mesh-wide Telemetry"),
        ("kind-up.sh applying no Jaeger", lambda b, ps, tags: tags.clear(), "applies Istio's samples/addons/jaeger.yaml once"),
        ("kind-up.sh applying another Istio's Jaeger addon", lambda b, ps, tags: tags.__setitem__(0, "1.31.0"), "is one read here"),
        ("the KafkaBridge without tracing", lambda b, ps, tags: find(b, "KafkaBridge")["spec"].pop("tracing"), "tracing.type is opentelemetry"),
        ("the Bridge's spans to the OTLP/HTTP port",
         lambda b, ps, tags: bridge_env(b, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger-collector.istio-system.svc.cluster.local:4318"), "tracing provider's service:port"),
        ("the Bridge's spans to the Zipkin Service",
         lambda b, ps, tags: bridge_env(b, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://zipkin.istio-system.svc.cluster.local:4317"), "tracing provider's service:port"),
        ("the Bridge without an OTLP endpoint (the SDK's localhost)",
         lambda b, ps, tags: bridge_env(b, "OTEL_EXPORTER_OTLP_ENDPOINT", None), "tracing provider's service:port"),
        ("the Bridge's traces endpoint overriding the right one",
         lambda b, ps, tags: bridge_env(b, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://localhost:4317"), "tracing provider's service:port"),
        ("the Bridge over OTLP/HTTP", lambda b, ps, tags: bridge_env(b, "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"), "exports OTLP over gRPC"),
        ("the Bridge exporting to Zipkin", lambda b, ps, tags: bridge_env(b, "OTEL_TRACES_EXPORTER", "zipkin"), "OTEL_TRACES_EXPORTER is otlp"),
        ("the Bridge without OTEL_SERVICE_NAME", lambda b, ps, tags: bridge_env(b, "OTEL_SERVICE_NAME", None), "OTEL_SERVICE_NAME"),
        ("the Bridge reading B3 only", lambda b, ps, tags: bridge_env(b, "OTEL_PROPAGATORS", "b3multi"), "W3C tracecontext"),
    ]
    expect_refusals(report, [(what, (bundle, providers, jaeger_tags), lambda t, d=doctor: d(*t), want) for what, doctor, want in cases],
                    lambda t: probe(check_tracing, *t), "self-check: tracing of the kind install passes every check", "self-check: tracing with {what}: rejected", shown=3)
    if report.check(any(o.get("kind") == "KafkaBridge" for o in plain), "strimzi/kafka-bridge.yaml holds a KafkaBridge"):
        expect_refusals(report, [("the plain KafkaBridge without the chart's tracing", plain, lambda b: find(b, "KafkaBridge")["spec"].pop("tracing", None),
                                  "KafkaBridge/pipeline/kiosk .spec equals")],
                        lambda b: quiet(compare_with_charts, b, default_charts, applied), "", "self-check: {what}: rejected")
