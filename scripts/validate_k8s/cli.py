"""The command: the steps in their order (schemas, self-checks, plain manifests, charts,
invariants over each bundle, programs run here, scripts), the lines each prints, the exit
status (0 when everything holds, 1 otherwise)."""

from __future__ import annotations

import argparse

from .common import CHARTS, CRDS_DIR, ROOT, TLS_CLIENT_IDENTITY_DIR, TLS_CLIENT_IDENTITY_VALUES, Report, helm, kv, load_yaml_objects, strip
from .contract import filter_labels
from .credentials import check_generated_credentials, check_kafka_credentials, check_tls_client_identity, tls_sync_checks
from .exactly_once import check_exactly_once, exactly_once_self_checks
from .external_kafka import EXTERNAL_KAFKA_DIRS, check_external_kafka, external_kafka_self_checks, is_external_kafka
from .health import check_health_probes, health_self_checks
from .images import check_dockerfiles, check_images
from .istio import check_destination_rules, check_mesh_config, check_wasm_pull, check_wasm_vms, check_wasmplugin, istiod_shared_mesh_config, wasm_vm_self_checks
from .kiali import kiali_edges_checks, kiali_recorded_graph_checks
from .kind import check_scripts, kind_up_applied, kind_up_dry_run, script_created_secrets
from .manifests import compare_with_charts, plain_manifest_files
from .mesh import injected_namespaces
from .metrics import check_grafana_dashboard, check_istio_shaped_series, prometheus_ingest_check
from .mongodb import check_mongodb
from .mongodb_programs import mongodb_issuer_checks, x509_users_script_checks
from .pods import check_pods
from .probe import quiet
from .registration import registration_self_checks, schema_registration_checks
from .registry import check_schema_registry, schema_registry_self_checks
from .render import render_chart
from .rest import check_ingress_jwt, check_rest_access, keycloak_variant_checks, rest_access_self_checks
from .schema import Validator
from .selfcheck import invariant_self_checks, self_checks
from .strimzi import check_kafka_listeners, check_topics_and_acls, kafka_clients
from .tracing import check_tracing, istiod_extension_providers, kind_up_jaeger_tags, tracing_self_checks


def main() -> int:
    parser = argparse.ArgumentParser(description="Offline validation of the Kubernetes bundle.")
    parser.add_argument("--k8s-version", default="1.34", help="Kubernetes version of the JSON schemas (kind's node is v1.34)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every passing check too")
    parser.add_argument("--prometheus", action="store_true", help="also scrape a sidecar-shaped exposition with this machine's Prometheus (about 6 s)")
    args = parser.parse_args()
    report = Report(args.verbose)
    v = Validator(report, args.k8s_version)

    report.step(f"schemas: Kubernetes {args.k8s_version} (kubernetes-validate {kv.__version__}), CRDs from {CRDS_DIR}")
    v.load_crds()
    print(f"  {len(v.crds)} CRD versions from {len(v.crd_files)} files; helm-python-sdk {helm.__version__} (Helm SDK {helm.helm_sdk_version()})")
    labels = filter_labels()
    print(f"  the filter emits {len(labels)} labels (filter/contract/metrics.json)")

    report.step("self-checks: wrong objects must be rejected")
    before = len(report.errors)
    self_checks(report, v, labels)
    print(f"  {'all rejected as they should be' if len(report.errors) == before else 'FAILED: the validator would miss errors'}")

    report.step("plain manifests: strimzi/ and istio/")
    plain = []
    for f in plain_manifest_files():
        for o in load_yaml_objects(f):
            o["_source"] = str(f.relative_to(ROOT))
            plain.append(o)
    ok = sum(v.validate(strip(o), o["_source"]) for o in plain)
    print(f"  {ok}/{len(plain)} objects valid")
    # The external Kafka (issue 27): validated above, checked as a bundle of its own below, and
    # kept out of the others until scripts/kind-up.sh applies it.
    external = [o for o in plain if is_external_kafka(o["_source"])]
    plain = [o for o in plain if not is_external_kafka(o["_source"])]

    report.step("charts: render with Helm's engine (default values and ci/*.yaml), helm lint, validate")
    renders: dict[str, list[dict]] = {}
    for chart in CHARTS:
        for values in [None, *sorted((ROOT / "charts" / chart / "ci").glob("*.yaml"))]:
            objs = render_chart(report, chart, values)
            if objs is None:
                continue
            key = f"{chart}:{values.name if values else 'default'}"
            renders[key] = objs
            ok = sum(v.validate(strip(o), o["_source"]) for o in objs)
            print(f"  {key}: {ok}/{len(objs)} objects valid")

    report.step("invariants")
    shared = istiod_shared_mesh_config(report)
    applied = kind_up_applied()
    tls_files = {str(f.relative_to(ROOT)) for f in (ROOT / TLS_CLIENT_IDENTITY_DIR).rglob("*.yaml")}
    report.check(tls_files <= applied, f"scripts/kind-up.sh applies {TLS_CLIENT_IDENTITY_DIR}/ (with --kafka-auth tls)")
    platform = [o for o in plain if o["_source"] in applied and o["_source"] not in tls_files]
    tls_platform = [o for o in plain if o["_source"] in tls_files]
    secrets = script_created_secrets()
    injected = injected_namespaces()
    providers, jaeger_tags = istiod_extension_providers(), kind_up_jaeger_tags(kind_up_dry_run())
    default_charts = renders.get("kiosk-filter:default", []) + renders.get("test-kafka-istio-mongo:default", [])
    tls_charts = [o for chart, values in TLS_CLIENT_IDENTITY_VALUES.items() for o in renders.get(f"{chart}:{values}", [])]
    tls_bundle = platform + tls_platform + tls_charts
    bundles = {"strimzi/ + istio/ (plain manifests, SASL performed by the filter)": [o for o in plain if o["_source"] not in tls_files],
               "kind install (platform files + charts, default values)": platform + default_charts,
               "kind install --kafka-auth tls (platform files, istio/kafka-tls-client-identity/, charts with ci/ TLS values)": tls_bundle}
    for key, objs in renders.items():
        chart, _, values = key.partition(":")
        if values != "default" and TLS_CLIENT_IDENTITY_VALUES.get(chart) != values:
            other = "kiosk-filter:default" if key.startswith("test-") else "test-kafka-istio-mongo:default"
            bundles[f"kind install with {key}"] = platform + objs + renders.get(other, [])
    for label, objs in bundles.items():
        clients = kafka_clients(Report(False), objs)
        with report.summing_up(f"{label}: {len(objs)} objects, {len(clients)} Kafka clients"):
            check_topics_and_acls(report, label, objs)
            check_wasmplugin(report, label, objs, clients)
            check_mesh_config(report, label, objs, labels, shared)
            check_destination_rules(report, label, objs, secrets)
            check_images(report, label, objs)
            check_pods(report, label, objs, injected)
            check_kafka_listeners(report, label, objs, injected)
            check_tls_client_identity(report, label, objs, secrets)
            check_kafka_credentials(report, label, objs)
            check_mongodb(report, label, objs)
            check_generated_credentials(report, label, objs)
            check_wasm_pull(report, label, objs)
            check_wasm_vms(report, label, objs)
            check_istio_shaped_series(report, label, objs)
            check_ingress_jwt(report, label, objs)
            check_grafana_dashboard(report, label, objs)
            check_schema_registry(report, label, objs, injected)
            check_rest_access(report, label, objs, injected)
            check_tracing(report, label, objs, providers, jaeger_tags)
            check_exactly_once(report, label, objs)
            check_health_probes(report, label, objs)
    with report.summing_up("each finding of issues 16, 14 and 28 (item 1) put back is rejected, and each way to open the schema registry or the REST entry or point their users wrong, or to break Keycloak's tokens or secrets (issue 30)"):
        invariant_self_checks(report, platform + default_charts, tls_bundle, injected, secrets)
        schema_registry_self_checks(report, platform + default_charts, injected, plain, applied)
        registration_self_checks(report, platform + default_charts)
        rest_access_self_checks(report, platform + default_charts, bundles.get("kind install with test-kafka-istio-mongo:kiosk-services-values.yaml", []),
                                injected, plain, applied)
        keycloak_variant_checks(report)
        errs = quiet(compare_with_charts, plain, default_charts, applied - {"strimzi/kafka-network-policy-prometheus.yaml"})
        report.check(any("neither" in e for e in errs), "self-check: a plain manifest neither applied by kind-up.sh nor rendered by a chart is rejected", str(errs[:2]))
    with report.summing_up("one trace across the Kafka hops (Istio's provider, the Jaeger addon, the KafkaBridge): each way to break it is rejected"):
        tracing_self_checks(report, platform + default_charts, plain, default_charts, applied, providers, jaeger_tags)
    with report.summing_up("WasmPlugins of one module on one pod share one Wasm VM: each way to give it different environments is rejected"):
        wasm_vm_self_checks(report, platform + default_charts, [o for o in plain if o["_source"] not in tls_files])
    with report.summing_up("exactly once (the mirror's transactions, their ACLs, ids per instance, readers read_committed): each way to break it is rejected"):
        exactly_once_self_checks(report, platform + default_charts, tls_bundle, [o for o in plain if o["_source"] not in tls_files], default_charts, applied)
    with report.summing_up("the mirror's probes (readiness and liveness on the file it touches while making progress): each way to miss a stuck mirror or kill a waiting one is rejected"):
        health_self_checks(report, platform + default_charts, bundles.get("kind install with test-kafka-istio-mongo:kiosk-services-values.yaml", []))
    with report.summing_up(f"the external Kafka ({', '.join(d + '/' for d in EXTERNAL_KAFKA_DIRS)}: {len(external)} objects): standalone operators, tenants kept apart, TLS origination, the filter's upstreams"):
        check_external_kafka(report, "external Kafka", external)
        check_images(report, "external Kafka", external)
        check_wasm_pull(report, "external Kafka", external)
        check_wasm_vms(report, "external Kafka", external + [o for o in plain if o.get("kind") == "WasmPlugin" and o["_source"] not in tls_files])
    with report.summing_up("the external Kafka: each way to let a tenant reach the other's topics or users, leak the admin credential, put a user's Secret out of its sidecar's reach, send SASL in plaintext or to another upstream is rejected"):
        external_kafka_self_checks(report, external)
    with report.summing_up("strimzi/ and istio/: applied by kind-up.sh, or equal to the charts' output"):
        compare_with_charts(report, plain, default_charts, applied)
    with report.summing_up("Dockerfiles and kind images pinned"):
        check_dockerfiles(report)
    with report.summing_up("the Kiali edge check (files/kiali_edges.py) on graphs in Kiali's shape"):
        kiali_edges_checks(report, renders.get("test-kafka-istio-mongo:default", []))
        kiali_recorded_graph_checks(report, renders.get("test-kafka-istio-mongo:default", []))
    with report.summing_up("the TLS client identity's certificate sync program through Strimzi's certificates' life, against a stand-in API"):
        tls_sync_checks(report, tls_platform)
    with report.summing_up("the MongoDB certificate issuer through its certificates' life (stand-in API, openssl, TLS handshakes) and the X.509 user script (Node.js, stand-in mongod)"):
        mongodb_issuer_checks(report, renders.get("test-kafka-istio-mongo:default", []))
        x509_users_script_checks(report, renders.get("test-kafka-istio-mongo:default", []))
    with report.summing_up("the schema files and kiosk-services register-schemas as the registration Job runs it (stand-in registry, doctored registries, programs and Jobs)"):
        schema_registration_checks(report, renders.get("test-kafka-istio-mongo:default", []))
    if args.prometheus:
        with report.summing_up("Prometheus ingests Istio's and the filter's istio_tcp_received_bytes_total from one scrape"):
            prometheus_ingest_check(report)

    report.step("scripts: shellcheck, kind scripts --dry-run")
    hooks = [o for o in renders.get("test-kafka-istio-mongo:default", []) if "test" in ((o["metadata"].get("annotations") or {}).get("helm.sh/hook", ""))]
    check_scripts(report, hooks)

    print()
    if report.errors:
        print(f"validate-k8s: FAIL: {len(report.errors)} of {report.checks} checks failed:")
        for e in report.errors[:50]:
            print(f"  - {e}")
        return 1
    print(f"validate-k8s: {report.checks} passed, 0 failed")
    return 0
