"""Self-checks that cut across the concerns: the validator must reject deliberately wrong objects
(schemas, image pins, extraStatTags, credentials in applications, MongoDB URIs, ACLs), and
each finding of issues 14, 15, 16 and 18 put back into a copy of the kind install (default,
or --kafka-auth tls) must be refused by the invariant that guards it."""

from __future__ import annotations

import copy
import hashlib
import json

import yaml

from .common import ROOT, Report, load_yaml_objects
from .credentials import app_credential_findings, check_generated_credentials, check_kafka_credentials, check_tls_client_identity
from .exactly_once import check_exactly_once
from .images import pinned
from .istio import check_mesh_config, check_wasm_pull, check_wasm_vms
from .k8s import containers, object_data
from .keycloak import resolve
from .mesh import INJECT_TEMPLATES, PROXY
from .metrics import check_istio_shaped_series
from .mongodb import check_mongodb, check_mongodb_clients, check_mongodb_credentials, check_mongodb_server, check_mongodb_wasmplugins, mongodb_credential_findings, mongodb_uri_findings
from .pods import check_pods
from .probe import expect_refusals, probe
from .rest import check_ingress_jwt
from .schema import Validator, schema_self_checks
from .strimzi import KAFKA_USER_LABEL, acl_allows, check_kafka_listeners, check_topics_and_acls


def self_checks(report: Report, v: Validator, labels: list[str]) -> None:
    """The validator rejects deliberately wrong objects: schema violations (schema.py), unpinned
    images, extraStatTags missing a filter label, Kafka and MongoDB credentials in applications,
    MongoDB URIs with a credential or TLS setting; and its ACL matching is Kafka's."""
    schema_self_checks(report, v)
    for image, want in [("foo", False), ("foo:latest", False), ("localhost:5001/foo", False), ("foo:1.2", True),
                        ("localhost:5001/foo:1.2", True), ("foo@sha256:" + "a" * 64, True), ("oci://r:5000/x/y:0.1.0", True)]:
        report.check(pinned(image) == want, f"self-check: image {image!r} is {'pinned' if want else 'not pinned'}")
    cm = {"kind": "ConfigMap", "metadata": {"name": "istio-user", "namespace": "istio-system"},
          "data": {"mesh": yaml.safe_dump({"defaultConfig": {"extraStatTags": labels[:-1], "proxyStatsMatcher": {"inclusionPrefixes": ["wasmcustom"]}}})}}
    errs = probe(check_mesh_config, [cm], labels, None)
    report.check(len(errs) == 1 and labels[-1] in errs[0], "self-check: extraStatTags missing one filter label are rejected")
    users = {("pipeline", "kiosk-mirror")}
    doctored = [
        ({"containers": [{"name": "app", "env": [{"name": "KAFKA_SASL_JAAS_CONFIG", "value": "x"}]}]}, True, "env KAFKA_SASL_JAAS_CONFIG"),
        ({"containers": [{"name": "app", "env": [{"name": "KAFKA_PROPERTIES", "value": "client.id=a\nsasl.password=x\n"}]}]}, True, "KAFKA_PROPERTIES sets"),
        ({"containers": [{"name": "app", "env": [{"name": "KAFKA_PROPERTIES", "value": "security.protocol=SSL\n"}]}]}, True, "KAFKA_PROPERTIES sets"),
        ({"containers": [{"name": "app", "env": [{"name": "DB_PASSWORD", "value": "x"}]}]}, True, "env DB_PASSWORD"),
        ({"containers": [{"name": "app", "envFrom": [{"secretRef": {"name": "kiosk-mirror"}}]}]}, False, "envFrom Secret kiosk-mirror"),
        ({"containers": [{"name": "app", "volumeMounts": [{"name": "v", "mountPath": "/s"}]}],
          "volumes": [{"name": "v", "projected": {"sources": [{"secret": {"name": "kiosk-mirror"}}]}}]}, False, "mounts Secret kiosk-mirror"),
    ]
    for spec, client, want in doctored:
        found = app_credential_findings(spec, "pipeline", client, users)
        report.check(any(want in f for f in found), f"self-check: an application container holding a Kafka credential ({want}) is found", f"found {found}")
    clean = {"containers": [{"name": "app", "env": [{"name": "KAFKA_BOOTSTRAP_SERVERS", "value": "k:9092"}, {"name": "KAFKA_PROPERTIES", "value": "client.id=a\nsecurity.protocol=PLAINTEXT\n"}]},
                            {"name": PROXY, "env": [{"name": "KIOSK_KAFKA_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "kiosk-mirror", "key": "password"}}}]}]}
    mongo = {"containers": [{"name": "mongo", "env": [{"name": "MONGO_INITDB_ROOT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "p"}}}]}]}
    report.check(not app_credential_findings(clean, "pipeline", True, users) and not app_credential_findings(mongo, "pipeline", False, users),
                 "self-check: the credential in the istio-proxy container, and a database password in a pod that is no Kafka client, are not Kafka credentials of an application")
    host = "kiosk-mongodb.pipeline.svc.cluster.local"
    for uri, want in [(f"mongodb://app:secret@{host}:27017/", "a user and password"), (f"mongodb://app@{host}:27017/", "a user"),
                      (f"mongodb://{host}:27017/?tls=true", "option tls="), (f"mongodb://{host}:27017/?ssl=true", "option ssl="),
                      (f"mongodb://{host}:27017/?authMechanism=MONGODB-X509&authSource=$external", "option authMechanism="),
                      (f"mongodb://{host}:27017/?tlsCertificateKeyFile=/c.pem", "option tlsCertificateKeyFile="),
                      (f"mongodb+srv://{host}/", "mongodb+srv://")]:
        found = mongodb_uri_findings(uri)
        report.check(any(want in f for f in found), f"self-check: a MongoDB URI with {want} is a credential or TLS setting of the application", f"found {found}")
    report.check(not mongodb_uri_findings(f"mongodb://{host}:27017/?directConnection=true") and not mongodb_uri_findings(f"mongodb://{host}:27017/pipeline"),
                 "self-check: a MongoDB URI naming only the host, port, database and directConnection is clean")
    mongo_secrets = {("pipeline", "kiosk-test-verify-mongodb-tls"), ("pipeline", "kiosk-mongodb-ca")}
    uri_secret = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "pipeline"}, "stringData": {"uri": f"mongodb://u:p@{host}:27017/"}}]
    doctored = [
        ({"containers": [{"name": "app", "env": [{"name": "MONGODB_URI", "value": f"mongodb://u:p@{host}:27017/"}]}]}, "has a user and password"),
        ({"containers": [{"name": "app", "env": [{"name": "MONGODB_URI", "valueFrom": {"secretKeyRef": {"name": "db", "key": "uri"}}}]}]}, "(Secret db key uri) has a user"),
        ({"containers": [{"name": "app", "env": [{"name": "DATABASE_URL", "value": f"mongodb://{host}:27017/?tls=true"}]}]}, "has option tls="),
        ({"containers": [{"name": "app", "env": [{"name": "MONGODB_URI", "valueFrom": {"secretKeyRef": {"name": "elsewhere", "key": "uri"}}}]}]}, "cannot be checked"),
        ({"containers": [{"name": "app", "env": [{"name": "MONGO_PASSWORD", "value": "x"}]}]}, "env MONGO_PASSWORD"),
        ({"containers": [{"name": "app", "env": [{"name": "MONGODB_USERNAME", "value": "x"}]}]}, "env MONGODB_USERNAME"),
        ({"containers": [{"name": "app", "envFrom": [{"secretRef": {"name": "kiosk-mongodb-ca"}}]}]}, "envFrom Secret kiosk-mongodb-ca"),
        ({"containers": [{"name": "app", "volumeMounts": [{"name": "v", "mountPath": "/tls"}]}],
          "volumes": [{"name": "v", "secret": {"secretName": "kiosk-test-verify-mongodb-tls"}}]}, "mounts Secret kiosk-test-verify-mongodb-tls"),
        ({"initContainers": [{"name": "reset", "command": ["mongosh", f"mongodb://{host}:27017/?authMechanism=PLAIN"]}],
          "containers": [{"name": "reset", "env": [{"name": "MONGODB_URI", "value": f"mongodb+srv://{host}/"}]}]}, "mongodb+srv://"),
    ]
    for spec, want in doctored:
        found = mongodb_credential_findings(uri_secret, spec, "pipeline", mongo_secrets)
        report.check(any(want in f for f in found), f"self-check: an application container holding a MongoDB credential ({want}) is found", f"found {found}")
    clean = {"containers": [{"name": "verify", "env": [{"name": "MONGODB_URI", "value": f"mongodb://{host}:27017/?directConnection=true"}]},
                            {"name": PROXY, "env": [{"name": "KIOSK_KAFKA_PASSWORD", "value": "x"}],
                             "volumeMounts": [{"name": "tls", "mountPath": "/etc/kiosk/mongodb-tls"}]},
                            {"name": "mongodb", "args": ["mongod", "--tlsCertificateKeyFile", "/tls/mongod.pem"], "volumeMounts": [{"name": "tls", "mountPath": "/tls"}]}],
             "volumes": [{"name": "tls", "secret": {"secretName": "kiosk-test-verify-mongodb-tls"}}]}
    report.check(not mongodb_credential_findings(uri_secret, clean, "pipeline", mongo_secrets),
                 "self-check: a plain MongoDB URI, the certificate in the istio-proxy container and mongod's own key are no MongoDB credentials of an application",
                 str(mongodb_credential_findings(uri_secret, clean, "pipeline", mongo_secrets)))
    # Keycloak's own settings are Keycloak's credentials, not MongoDB's; nothing else is exempt.
    kc_image = "quay.io/keycloak/keycloak:26.7.3"
    admin = [{"name": "KC_BOOTSTRAP_ADMIN_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "kc", "key": "admin-password"}}}]
    for spec, want in [({"containers": [{"name": "keycloak", "image": kc_image, "env": admin}]}, []),
                       ({"containers": [{"name": "app", "image": "kind-registry:5000/kiosk/kiosk:0.1.0", "env": admin}]}, ["env KC_BOOTSTRAP_ADMIN_PASSWORD"]),
                       ({"containers": [{"name": "keycloak", "image": kc_image, "env": [{"name": "MONGODB_PASSWORD", "value": "x"}]}]}, ["env MONGODB_PASSWORD"])]:
        found = mongodb_credential_findings([], spec, "pipeline", set())
        report.check(all(any(w in f for f in found) for w in want) and bool(found) == bool(want),
                     f"self-check: {spec['containers'][0]['env'][0]['name']} in a container of {spec['containers'][0]['image']} is {'a' if want else 'no'} MongoDB credential",
                     f"found {found}")
    env = {"SET": [("text", "v")]}
    for text, want in [("${SET}", "v"), ("a${SET}b", "avb"), ("${UNSET:d}", "d"), ("${SET:d}", "v"), ("${UNSET}", "${UNSET}"), ("${UNSET:}", "")]:
        report.check(resolve(text, env) == want, f"self-check: Keycloak's import resolves {text!r} to {want!r}", f"resolved {resolve(text, env)!r}")
    user = load_yaml_objects(ROOT / "strimzi/kafka-user-mirror.yaml")[0]
    report.check(acl_allows(user, "topic", "events", "Read") and not acl_allows(user, "topic", "events", "Write")
                 and not acl_allows(user, "topic", "other", "Read"), "self-check: ACL matching allows exactly what the mirror's ACLs say")


def invariant_self_checks(report: Report, bundle: list[dict], tls_bundle: list[dict], injected: set[str], secrets: set[tuple[str, str]]) -> None:
    """Each finding of issue 16 (and each way the ingress of issue 18 could let requests without
    a valid token through or Keycloak, issue 30, issue tokens the gateway does not accept or
    hold a guessable or inlined secret, and each way an application could come to hold a Kafka credential or
    a sidecar lack one, issue 14), put back into a copy of the kind install (the default, or
    with --kafka-auth tls): the invariant that guards it must reject it (and accept the
    installs as they are)."""

    def find(b, kind, name=None, ns=None):
        return next(o for o in b if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)
                    and (ns is None or o["metadata"].get("namespace") == ns))

    def pod_labels(o):
        if o["kind"] in ("KafkaConnect", "KafkaBridge", "KafkaNodePool"):
            return o["spec"]["template"]["pod"]["metadata"]["labels"]
        return o["spec"]["template"]["metadata"]["labels"]

    def podspec(b, kind, name):
        return find(b, kind, name)["spec"]["template"]["spec"]

    def container(b, kind, name, cname):
        return next(c for c in containers(podspec(b, kind, name)) if c["name"] == cname)

    def proxy_env(b, kind, name):
        return container(b, kind, name, PROXY)["env"]

    def mount_user_secret(b, kind, name, cname, secret):
        ps = podspec(b, kind, name)
        ps.setdefault("volumes", []).append({"name": "kafka-user", "secret": {"secretName": secret}})
        container(b, kind, name, cname).setdefault("volumeMounts", []).append({"name": "kafka-user", "mountPath": "/var/run/kafka"})

    def mongod_password(b, keep):
        b.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kiosk-mongodb-root", "namespace": "pipeline",
                  "annotations": {"helm.sh/resource-policy": "keep"} if keep else {}}, "stringData": {"root-password": "generated"}})
        container(b, "StatefulSet", "kiosk-mongodb", "mongodb").setdefault("env", []).append(
            {"name": "MONGO_INITDB_ROOT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "kiosk-mongodb-root", "key": "root-password"}}})

    def mongo_uri(b, uri):
        find(b, "Secret", "kiosk-mongodb")["stringData"]["uri"] = uri

    def mongod_args(b, drop=(), add=()):
        c = container(b, "StatefulSet", "kiosk-mongodb", "mongodb")
        args = [a for a in c["args"] if a not in drop]
        c["args"] = args + list(add)

    def mongo_rule(b, name):
        return find(b, "DestinationRule", name)["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]

    def ra_rule(b):
        return find(b, "RequestAuthentication")["spec"]["jwtRules"][0]

    def pod_meta(b, name):
        return find(b, "Deployment", name)["spec"]["template"]["metadata"]

    def kc_container(b):
        return container(b, "Deployment", "keycloak", "keycloak")

    def kc_env(b):
        return kc_container(b)["env"]

    def producer_arg(b, flag, value):
        args = container(b, "Job", "kiosk-test-producer", "producer")["args"]
        args[args.index(flag) + 1] = value

    def kc_podspec(b):
        return podspec(b, "Deployment", "keycloak")

    def kc_data(b):
        return next(v for v in kc_podspec(b)["volumes"] if v["name"] == "data")

    def sha256(text):
        return hashlib.sha256(text.encode()).hexdigest()

    def kc_ephemeral(b, **annotations):
        """Keycloak as the chart renders it with persistence.enabled false: its data on an
        emptyDir, no claim, the checksums of its Secret and realm (overridden by `annotations`)."""
        kc_data(b).pop("persistentVolumeClaim")
        kc_data(b)["emptyDir"] = {"sizeLimit": "256Mi"}
        b.remove(find(b, "PersistentVolumeClaim", "keycloak-data"))
        sums = {"checksum/secret": sha256(json.dumps(object_data(b, "Secret", "pipeline", "keycloak"), sort_keys=True, separators=(",", ":"))),
                "checksum/realm": sha256(find(b, "ConfigMap", "keycloak-realm")["data"]["realm-kiosk.json"])}
        sums.update(annotations)
        pod_meta(b, "keycloak")["annotations"] = {k: v for k, v in sums.items() if v is not None}

    def edit_realm(b, change):
        data = find(b, "ConfigMap", "keycloak-realm")["data"]
        realm = json.loads(data["realm-kiosk.json"])
        change(realm)
        data["realm-kiosk.json"] = json.dumps(realm, indent=2) + "\n"

    sasl_properties = "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=kiosk-mirror\nsasl.password=$(KAFKA_PASSWORD)\n"
    TLS = True
    cases = [
        ("the kind install as it is passes every invariant", lambda b: None, None, None, not TLS),
        ("the kind install --kafka-auth tls as it is passes every invariant", lambda b: None, None, None, TLS),
        ("1: Connect pods without service.istio.io/workload-name (Istio reports kiosk-connect-0)",
         lambda b: pod_labels(find(b, "KafkaConnect")).pop("service.istio.io/workload-name"), check_pods, "expected Kiali node pipeline/kiosk-connect", not TLS),
        ("2: without the NetworkPolicy admitting Prometheus to the Connect pods",
         lambda b: b.remove(find(b, "NetworkPolicy", ns="pipeline")), check_pods, "Prometheus (istio-system) may scrape", not TLS),
        ("4: namespace kafka PERMISSIVE (no PeerAuthentication there)",
         lambda b: [b.remove(o) for o in list(b) if o.get("kind") == "PeerAuthentication" and o["metadata"].get("namespace") == "kafka"],
         check_kafka_listeners, "SASL in clear", not TLS),
        ("4: the TLS listener captured under STRICT",
         lambda b: find(b, "PeerAuthentication", "kiosk-kafka-tls-listener").__setitem__("spec", {"mtls": {"mode": "STRICT"}, "selector": find(b, "PeerAuthentication", "kiosk-kafka-tls-listener")["spec"]["selector"]}),
         check_kafka_listeners, "Kafka's own TLS passes", not TLS),
        ("5: TLS origination that checks no broker name",
         lambda b: find(b, "DestinationRule", "kiosk-mirror-kafka-tls")["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"].pop("subjectAltNames"),
         check_tls_client_identity, "verifies the broker's name", TLS),
        ("5: the client certificates without their sync Deployment",
         lambda b: b.remove(find(b, "Deployment", "kiosk-kafka-tls-sync")), check_tls_client_identity, "kept in sync", TLS),
        ("5: the sync's Role without `create`",
         lambda b: find(b, "Role", "kiosk-kafka-tls-sync-client-certs")["rules"].pop(1), check_tls_client_identity, "may create secret", TLS),
        ("6: the WasmPlugin by tag with IfNotPresent",
         lambda b: find(b, "WasmPlugin", "kiosk")["spec"].update(url="oci://kind-registry:5000/kiosk/kiosk-filter:0.1.0", imagePullPolicy="IfNotPresent"), check_wasm_pull, "pinned by digest or pulled Always", not TLS),
        # MongoDB has no password since issue 15: finding 7 is put back with the root password
        # the chart's mongod had, from a Secret generated at install.
        ("7: the MongoDB Secret deleted with the release",
         lambda b: mongod_password(b, keep=False), check_generated_credentials, "outlives the release", not TLS),
        ("7: the MongoDB volume kept after the StatefulSet",
         lambda b: [mongod_password(b, keep=True), find(b, "StatefulSet")["spec"].pop("persistentVolumeClaimRetentionPolicy")],
         check_generated_credentials, "its volume goes with it", not TLS),
        ("8: pods without service.istio.io/canonical-name (the chart's app.kubernetes.io/name is every pod's app)",
         lambda b: [pod_labels(o).pop("service.istio.io/canonical-name", None) for o in b if o.get("kind") in ("Deployment", "StatefulSet", "Job")],
         check_pods, "share it", not TLS),
        ("9: a Telemetry removing source_principal from Istio's metrics",
         lambda b: b.append({"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry", "metadata": {"name": "x", "namespace": "istio-system"},
                             "spec": {"metrics": [{"overrides": [{"tagOverrides": {"source_principal": {"operation": "REMOVE"}}}]}]}}),
         check_istio_shaped_series, "keeps the labels that tell", not TLS),
        ("9: a topic named like a workload of the topic namespace",
         lambda b: find(b, "KafkaTopic")["spec"].update(topicName="kiosk-dual-role"), check_istio_shaped_series, "no workload name in the topic namespace", not TLS),
        ("18: an AuthorizationPolicy rule of the ingress without a request principal",
         lambda b: find(b, "AuthorizationPolicy")["spec"]["rules"][0].pop("from"), check_ingress_jwt, "requires a request principal", not TLS),
        ("18: no AuthorizationPolicy for the ingress gateway",
         lambda b: b.remove(find(b, "AuthorizationPolicy")), check_ingress_jwt, "an ALLOW AuthorizationPolicy", not TLS),
        ("18: a RequestAuthentication naming another issuer",
         lambda b: find(b, "RequestAuthentication")["spec"]["jwtRules"][0].update(issuer="http://elsewhere.pipeline.svc.cluster.local:8080/realms/kiosk"),
         check_ingress_jwt, "is a Keycloak realm's", not TLS),
        ("18: a RequestAuthentication for another audience",
         lambda b: find(b, "RequestAuthentication")["spec"]["jwtRules"][0].update(audiences=["someone-else"]), check_ingress_jwt, "are ones the realm issues", not TLS),
        ("18: Keycloak with a sidecar",
         lambda b: pod_labels(find(b, "Deployment", "keycloak")).update({"sidecar.istio.io/inject": "true"}), check_ingress_jwt, "without a sidecar", not TLS),
        ("18: the producer's client secret from another key",
         lambda b: podspec(b, "Job", "kiosk-test-producer")["volumes"][0]["secret"]["items"][0].update(key="admin-password"),
         check_ingress_jwt, "the one Keycloak imports for client producer", not TLS),
        # Issue 30: Keycloak, the identity provider the gateway trusts.
        ("30: the RequestAuthentication's realm issuer without /realms/<realm> (Keycloak's origin)",
         lambda b: find(b, "RequestAuthentication")["spec"]["jwtRules"][0].update(issuer="http://keycloak.pipeline.svc.cluster.local:8080"),
         check_ingress_jwt, "is a Keycloak realm's", not TLS),
        ("30: jwksUri on the old issuer's path (<issuer>/.well-known/jwks.json)",
         lambda b: ra_rule(b).update(jwksUri=ra_rule(b)["issuer"] + "/.well-known/jwks.json"), check_ingress_jwt, "is the realm's JWKS", not TLS),
        ("30: jwksUri of another realm (master)",
         lambda b: ra_rule(b).update(jwksUri=ra_rule(b)["jwksUri"].replace("/realms/kiosk/", "/realms/master/")), check_ingress_jwt, "is the realm's JWKS", not TLS),
        ("30: the producer's token URL <issuer>/token (404 on Keycloak)",
         lambda b: producer_arg(b, "--token-url", ra_rule(b)["issuer"] + "/token"), check_ingress_jwt, "is a Keycloak realm's token endpoint", not TLS),
        ("30: the producer a client the realm does not have",
         lambda b: producer_arg(b, "--client-id", "kiosk-producer"), check_ingress_jwt, "is a client of realm kiosk", not TLS),
        ("30: Keycloak without KIOSK_PRODUCER_SECRET (the realm's client secret imported as the literal ${KIOSK_PRODUCER_SECRET})",
         lambda b: kc_env(b).remove(next(e for e in kc_env(b) if e["name"] == "KIOSK_PRODUCER_SECRET")), check_ingress_jwt,
         "every placeholder without a default is set", not TLS),
        ("30: KIOSK_PRODUCER_SECRET inlined in Keycloak's pod spec",
         lambda b: [e.pop("valueFrom") and e.update(value="hunter2") for e in kc_env(b) if e["name"] == "KIOSK_PRODUCER_SECRET"], check_ingress_jwt,
         "is set from a Secret (secretKeyRef), not inlined", not TLS),
        ("30: the bootstrap admin's password inlined in Keycloak's pod spec",
         lambda b: [e.pop("valueFrom") and e.update(value="admin") for e in kc_env(b) if e["name"] == "KC_BOOTSTRAP_ADMIN_PASSWORD"], check_ingress_jwt,
         "env KC_BOOTSTRAP_ADMIN_PASSWORD is set from a Secret", not TLS),
        ("30: Keycloak's Secret deleted with the release",
         lambda b: find(b, "Secret", "keycloak")["metadata"]["annotations"].pop("helm.sh/resource-policy"), check_ingress_jwt, "outlives the release", not TLS),
        ("30: the realm's audience set to another (KIOSK_REST_AUDIENCE), the RequestAuthentication unchanged",
         lambda b: [e.update(value="someone-else") for e in kc_env(b) if e["name"] == "KIOSK_REST_AUDIENCE"], check_ingress_jwt, "are ones the realm issues", not TLS),
        ("30: the realm's audience from its default, another than the RequestAuthentication's",
         lambda b: [kc_env(b).remove(e) for e in list(kc_env(b)) if e["name"] == "KIOSK_REST_AUDIENCE"]
         + [ra_rule(b).update(audiences=["kiosk-gateway"])], check_ingress_jwt, "are ones the realm issues", not TLS),
        ("30: the producer's client without an audience mapper",
         lambda b: edit_realm(b, lambda r: r["clients"][0].pop("protocolMappers")), check_ingress_jwt, "are ones the gateway accepts", not TLS),
        ("30: the producer's client secret written into the realm file",
         lambda b: edit_realm(b, lambda r: r["clients"][0].update(secret="changeme")), check_ingress_jwt, "is one placeholder without a default", not TLS),
        ("30: the producer's client secret with a default (${KIOSK_PRODUCER_SECRET:changeme})",
         lambda b: edit_realm(b, lambda r: r["clients"][0].update(secret="${KIOSK_PRODUCER_SECRET:changeme}")), check_ingress_jwt,
         "is one placeholder without a default", not TLS),
        ("30: the producer's client allowing the password grant",
         lambda b: edit_realm(b, lambda r: r["clients"][0].update(directAccessGrantsEnabled=True)), check_ingress_jwt, "with the client-credentials grant only", not TLS),
        ("30: the producer a public client",
         lambda b: edit_realm(b, lambda r: r["clients"][0].update(publicClient=True)), check_ingress_jwt, "with the client-credentials grant only", not TLS),
        ("30: the producer's client without the basic scope (no `sub`: no request principal)",
         lambda b: edit_realm(b, lambda r: r["clients"][0].update(defaultClientScopes=[])), check_ingress_jwt, "carry `sub`", not TLS),
        ("30: Keycloak without --import-realm",
         lambda b: kc_container(b)["args"].remove("--import-realm"), check_ingress_jwt, "imports its realm", not TLS),
        ("30: the realm ConfigMap mounted elsewhere",
         lambda b: [m.update(mountPath="/opt/keycloak/import") for m in kc_container(b)["volumeMounts"] if m["name"] == "realm"], check_ingress_jwt,
         "imports its realm", not TLS),
        ("30: Keycloak without --hostname (the issuer would follow each request's Host)",
         lambda b: kc_container(b).update(args=[a for a in kc_container(b)["args"] if not a.startswith("--hostname")]), check_ingress_jwt,
         "--hostname is a full URL", not TLS),
        ("30: --hostname naming another port than the Service's",
         lambda b: [kc_container(b).update(args=[a.replace(":8080", ":8443") if a.startswith("--hostname") else a for a in kc_container(b)["args"]])]
         + [ra_rule(b).update(issuer=ra_rule(b)["issuer"].replace(":8080", ":8443"), jwksUri=ra_rule(b)["jwksUri"].replace(":8080", ":8443"))],
         check_ingress_jwt, "is a Service port reaching", not TLS),
        ("30: Keycloak's HTTP listener off (--http-enabled=false) behind an http:// issuer",
         lambda b: kc_container(b).update(args=["--http-enabled=false" if a.startswith("--http-enabled") else a for a in kc_container(b)["args"]]),
         check_ingress_jwt, "serves plain HTTP", not TLS),
        ("30: two Keycloak pods (each signs with its own keys)",
         lambda b: find(b, "Deployment", "keycloak")["spec"].update(replicas=2), check_ingress_jwt, "one pod at a time", not TLS),
        ("30: Keycloak ready before its realm's JWKS answers",
         lambda b: kc_container(b)["readinessProbe"]["httpGet"].update(path="/"), check_ingress_jwt, "ready when the realm's JWKS answers", not TLS),
        ("30: Keycloak's checksum/secret not its Secret's (a Secret made twice per rendering), its data on an emptyDir",
         lambda b: kc_ephemeral(b, **{"checksum/secret": "0" * 64}), check_ingress_jwt, "its checksum/secret is the hash", not TLS),
        # Keycloak's data (the realm's signing keys) across restarts: on its claim, or on an
        # emptyDir only with persistence off.
        ("30: Keycloak's data on an emptyDir, no claim, with the checksums (persistence off, as the chart renders it): Keycloak's invariants hold",
         kc_ephemeral, check_ingress_jwt, None, not TLS),
        ("30: Keycloak's data back on an emptyDir while the release makes its claim (new signing keys at each start)",
         lambda b: kc_data(b).pop("persistentVolumeClaim") and kc_data(b).update(emptyDir={}), check_ingress_jwt,
         "on an emptyDir only when the release makes no claim for it", not TLS),
        ("30: Keycloak's data on the container's filesystem (nothing mounted at /opt/keycloak/data)",
         lambda b: kc_container(b).update(volumeMounts=[m for m in kc_container(b)["volumeMounts"] if m["name"] != "data"]), check_ingress_jwt,
         "a volume holds its data directory", not TLS),
        ("30: Keycloak's data on a hostPath",
         lambda b: kc_data(b).pop("persistentVolumeClaim") and kc_data(b).update(hostPath={"path": "/var/lib/keycloak"}), check_ingress_jwt,
         "a volume holds its data directory", not TLS),
        ("30: Keycloak's claim not in the release (the pod would stay Pending)",
         lambda b: b.remove(find(b, "PersistentVolumeClaim", "keycloak-data")), check_ingress_jwt, "is in the bundle, requesting storage", not TLS),
        ("30: Keycloak's claim ReadWriteMany (H2's file has one writer)",
         lambda b: find(b, "PersistentVolumeClaim", "keycloak-data")["spec"].update(accessModes=["ReadWriteMany"]), check_ingress_jwt, "is ReadWriteOnce", not TLS),
        ("30: Keycloak rolled out with RollingUpdate, its data on a ReadWriteOnce claim",
         lambda b: find(b, "Deployment", "keycloak")["spec"].update(strategy={"type": "RollingUpdate"}), check_ingress_jwt,
         "with its data on claim keycloak-data, one pod at a time", not TLS),
        ("30: Keycloak's pod without fsGroup (its claim's volume not writable for uid 1000)",
         lambda b: kc_podspec(b)["securityContext"].pop("fsGroup"), check_ingress_jwt, "its pod sets fsGroup", not TLS),
        ("30: checksum/realm back with the data kept (a new realm would restart Keycloak and apply nothing: the import skips an existing realm)",
         lambda b: pod_meta(b, "keycloak").update(annotations={"checksum/realm": sha256(find(b, "ConfigMap", "keycloak-realm")["data"]["realm-kiosk.json"])}),
         check_ingress_jwt, "no checksum/realm or checksum/secret annotation", not TLS),
        ("30: Keycloak's data on an emptyDir without checksum/realm (a new realm would not be imported until some restart)",
         lambda b: kc_ephemeral(b, **{"checksum/realm": None}), check_ingress_jwt, "checksum/realm and checksum/secret restart it", not TLS),
        ("30: the realm ConfigMap not the repository's realm file",
         lambda b: edit_realm(b, lambda r: r.update(accessTokenLifespan=3600)), check_ingress_jwt, "byte for byte", not TLS),
        # Issue 14: applications hold no Kafka credential; sidecars hold what the filter needs.
        ("14: the mirror's SASL settings and password back in its application (KAFKA_PROPERTIES, KAFKA_PASSWORD)",
         lambda b: container(b, "Deployment", "kiosk-mirror", "mirror")["env"].extend([
             {"name": "KAFKA_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "kiosk-mirror", "key": "password"}}},
             {"name": "KAFKA_PROPERTIES", "value": sasl_properties}]),
         check_kafka_credentials, "no application container holds a Kafka credential", not TLS),
        ("14: the verifier's application mounting its KafkaUser's Secret",
         lambda b: mount_user_secret(b, "Job", "kiosk-test-verify", "verify", "kiosk-verify"), check_kafka_credentials, "mounts Secret kiosk-verify", not TLS),
        ("14: a KafkaBridge that authenticates itself (Strimzi gives it the password)",
         lambda b: find(b, "KafkaBridge")["spec"].update(authentication={"type": "scram-sha-512", "username": "kiosk-bridge",
                                                                          "passwordSecret": {"secretName": "kiosk-bridge", "password": "password"}}),
         check_kafka_credentials, "spec.authentication", not TLS),
        ("14: Kafka Connect's own container given the password (template.connectContainer)",
         lambda b: find(b, "KafkaConnect")["spec"]["template"].update(connectContainer={"env": [
             {"name": "KAFKA_SASL_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "kiosk-connect", "key": "password"}}}]}),
         check_kafka_credentials, "env KAFKA_SASL_PASSWORD", not TLS),
        ("14: kafka_auth without vmConfig.env (the filter would find no credential)",
         lambda b: find(b, "WasmPlugin", "kiosk")["spec"].pop("vmConfig"), check_kafka_credentials, "vmConfig.env takes KIOSK_KAFKA_USERNAME", not TLS),
        ("14: the password written into the WasmPlugin (vmConfig.env INLINE)",
         lambda b: find(b, "WasmPlugin", "kiosk")["spec"]["vmConfig"]["env"][1].update(valueFrom="INLINE", value="hunter2"), check_kafka_credentials,
         "vmConfig.env takes KIOSK_KAFKA_PASSWORD", not TLS),
        ("14: the mirror's sidecar without the password",
         lambda b: proxy_env(b, "Deployment", "kiosk-mirror").pop(1), check_kafka_credentials, "its sidecar gets KIOSK_KAFKA_USERNAME, KIOSK_KAFKA_PASSWORD", not TLS),
        ("14: the mirror's sidecar given the password inline",
         lambda b: proxy_env(b, "Deployment", "kiosk-mirror")[1].update(value="hunter2"), check_kafka_credentials, "takes KIOSK_KAFKA_PASSWORD from key `password`", not TLS),
        ("14: the mirror's sidecar authenticating as another user",
         lambda b: proxy_env(b, "Deployment", "kiosk-mirror")[0].update(value="kiosk-verify"), check_kafka_credentials, "sets KIOSK_KAFKA_USERNAME to its KafkaUser", not TLS),
        ("14: the KafkaBridge's pods without Istio's credential injection template",
         lambda b: find(b, "KafkaBridge")["spec"]["template"]["pod"]["metadata"].pop("annotations"), check_kafka_credentials,
         "KafkaBridge kiosk (selected by WasmPlugin/pipeline/kiosk): its sidecar gets KIOSK_KAFKA_USERNAME", not TLS),
        ("14: Connect's pods without the label naming their KafkaUser",
         lambda b: pod_labels(find(b, "KafkaConnect")).pop(KAFKA_USER_LABEL), check_kafka_credentials, "KafkaConnect kiosk (selected by WasmPlugin/pipeline/kiosk): its sidecar gets KIOSK_KAFKA_USERNAME", not TLS),
        # Issue 28: the credential goes only to the brokers.
        ("28: kafka_auth without upstreams (the credential to any service on the port)",
         lambda b: find(b, "WasmPlugin", "kiosk")["spec"]["pluginConfig"]["kafka_auth"].pop("upstreams"), check_kafka_credentials,
         "kafka_auth.upstreams names where the credential may go", not TLS),
        ("28: kafka_auth.upstreams naming any identity",
         lambda b: find(b, "WasmPlugin", "kiosk")["spec"]["pluginConfig"]["kafka_auth"]["upstreams"].update(principals=["*"]), check_kafka_credentials,
         "matches no identity but the brokers'", not TLS),
        ("28: kafka_auth.upstreams naming the whole pipeline namespace too",
         lambda b: find(b, "WasmPlugin", "kiosk")["spec"]["pluginConfig"]["kafka_auth"]["upstreams"]["principals"].append("cluster.local/ns/pipeline/*"),
         check_kafka_credentials, "matches no identity but the brokers'", not TLS),
        ("28: kafka_auth.upstreams naming another Kafka cluster's brokers",
         lambda b: find(b, "WasmPlugin", "kiosk")["spec"]["pluginConfig"]["kafka_auth"]["upstreams"].update(principals=["cluster.local/ns/kafka/sa/other-kafka"]),
         check_kafka_credentials, "names the brokers' identity", not TLS),
        ("14: brokers asking clients to re-authenticate (KIP-368)",
         lambda b: find(b, "Kafka")["spec"]["kafka"]["config"].update({"connections.max.reauth.ms": 3600000}), check_kafka_credentials, "re-authenticate", not TLS),
        ("14: the filter performing PLAIN against the SCRAM-SHA-512 listener",
         lambda b: find(b, "WasmPlugin", "kiosk")["spec"]["pluginConfig"]["kafka_auth"].update(mechanism="PLAIN"), check_kafka_credentials, "takes kafka_auth PLAIN", not TLS),
        ("14: a Kafka client sharing its process namespace with its sidecar",
         lambda b: podspec(b, "Deployment", "kiosk-mirror").update(shareProcessNamespace=True), check_kafka_credentials, "do not share a process namespace", not TLS),
        ("14: the filter's SASL off while the clients dial the SCRAM listener",
         lambda b: find(b, "WasmPlugin", "kiosk")["spec"]["pluginConfig"].pop("kafka_auth"), check_kafka_credentials, "which nobody would perform", not TLS),
        ("14 (tls): a DestinationRule presenting no certificate to the listener that requires one",
         lambda b: find(b, "DestinationRule", "kiosk-mirror-kafka-tls")["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"].update(mode="SIMPLE"),
         check_tls_client_identity, "presents a client certificate (MUTUAL)", TLS),
        ("14 (tls): the mirror's certificate given to the verifier's pods",
         lambda b: find(b, "DestinationRule", "kiosk-mirror-kafka-tls")["spec"]["workloadSelector"]["matchLabels"].update({KAFKA_USER_LABEL: "kiosk-verify"}),
         check_tls_client_identity, "is KafkaUser kiosk-mirror, whose certificate it presents", TLS),
        ("14 (tls): no DestinationRule for the mirror",
         lambda b: b.remove(find(b, "DestinationRule", "kiosk-mirror-kafka-tls")), check_tls_client_identity, "kiosk-mirror/mirror dials a listener that requires a client certificate", TLS),
        ("14 (tls): the sidecars not allowed to list secrets (istiod serves no key)",
         lambda b: b.remove(find(b, "RoleBinding", "kiosk-kafka-tls-sidecars")), check_tls_client_identity, "istiod serves the key", TLS),
        ("14 (tls): the mirror's application given its service account's token",
         lambda b: podspec(b, "Deployment", "kiosk-mirror").update(automountServiceAccountToken=True), check_tls_client_identity, "gets no API token", TLS),
        ("14 (tls): a scram-sha-512 user behind a certificate",
         lambda b: find(b, "KafkaUser", "kiosk-mirror")["spec"].update(authentication={"type": "scram-sha-512"}), check_tls_client_identity, "is a tls user", TLS),
        ("14 (tls): the mirror's application mounting the copy of its certificate",
         lambda b: mount_user_secret(b, "Deployment", "kiosk-mirror", "mirror", "kiosk-mirror-mesh-tls"), check_kafka_credentials, "mounts Secret kiosk-mirror-mesh-tls", TLS),
    ]
    host = "kiosk-mongodb.pipeline.svc.cluster.local"
    cases += [
        # Issue 15: applications hold no MongoDB credential; mongod requires TLS, certificates and
        # X.509 users; each client's sidecar presents its own workload's certificate.
        ("15: the MongoDB URI with a user and password again (Secret kiosk-mongodb, read by Connect, the producer and verify)",
         lambda b: mongo_uri(b, f"mongodb://kiosk-app:hunter2@{host}:27017/pipeline?authSource=admin&directConnection=true"),
         check_mongodb_credentials, "has a user and password (userinfo)", not TLS),
        ("15: the MongoDB URI asking the application for TLS",
         lambda b: mongo_uri(b, f"mongodb://{host}:27017/?directConnection=true&tls=true"), check_mongodb_credentials, "has option tls=", not TLS),
        ("15: the MongoDB URI asking the application to authenticate (authMechanism)",
         lambda b: mongo_uri(b, f"mongodb://{host}:27017/?authMechanism=MONGODB-X509"), check_mongodb_credentials, "has option authMechanism=", not TLS),
        ("15: the verifier given a MongoDB password",
         lambda b: container(b, "Job", "kiosk-test-verify", "verify")["env"].append({"name": "MONGODB_PASSWORD", "value": "hunter2"}),
         check_mongodb_credentials, "env MONGODB_PASSWORD", not TLS),
        ("15: the verifier's application mounting its MongoDB certificate",
         lambda b: mount_user_secret(b, "Job", "kiosk-test-verify", "verify", "kiosk-test-verify-mongodb-tls"), check_mongodb_credentials,
         "mounts Secret kiosk-test-verify-mongodb-tls, a MongoDB certificate's", not TLS),
        ("15: Kafka Connect's container given the MongoDB CA (template.connectContainer)",
         lambda b: find(b, "KafkaConnect")["spec"]["template"].update(connectContainer={"env": [
             {"name": "CA", "valueFrom": {"secretKeyRef": {"name": "kiosk-mongodb-ca", "key": "tls.key"}}}]}),
         check_mongodb_credentials, "env CA from Secret kiosk-mongodb-ca, a MongoDB certificate's", not TLS),
        ("15: the MongoDB sink configured for TLS itself",
         lambda b: find(b, "KafkaConnector")["spec"]["config"].update({"connection.ssl.truststorePassword": "changeit"}),
         check_mongodb_credentials, "config connection.ssl.truststorePassword", not TLS),
        ("15: mongod without TLS required (preferTLS)",
         lambda b: mongod_args(b, drop=("--tlsMode", "requireTLS"), add=("--tlsMode", "preferTLS")), check_mongodb_server, "--tlsMode requireTLS", not TLS),
        ("15: mongod admitting clients without a certificate",
         lambda b: mongod_args(b, add=("--tlsAllowConnectionsWithoutCertificates",)), check_mongodb_server, "no --tlsAllowConnectionsWithoutCertificates", not TLS),
        ("15: mongod without access control",
         lambda b: mongod_args(b, drop=("--auth",)), check_mongodb_server, "--auth (access control on)", not TLS),
        ("15: mongod's port captured by its sidecar (TLS would end in the sidecar)",
         lambda b: find(b, "StatefulSet")["spec"]["template"]["metadata"]["annotations"].pop("traffic.sidecar.istio.io/excludeInboundPorts"),
         check_mongodb_server, "its sidecar does not capture 27017", not TLS),
        ("15: no PeerAuthentication passing mongod's port through",
         lambda b: b.remove(find(b, "PeerAuthentication", "kiosk-mongodb-tls")), check_mongodb_server, "mTLS DISABLE on 27017", not TLS),
        ("15: a MongoDB user the release has no client for",
         lambda b: find(b, "ConfigMap", "kiosk-mongodb-x509-users")["data"].update({"x509-users.json": json.dumps({"users": json.loads(
             find(b, "ConfigMap", "kiosk-mongodb-x509-users")["data"]["x509-users.json"])["users"] + [{"user": "CN=intruder,OU=pipeline,O=kiosk", "roles": []}]})}),
         check_mongodb_server, "every X.509 user is a client of the release", not TLS),
        ("15: the verifier's X.509 user without readWrite on the pipeline's database",
         lambda b: find(b, "ConfigMap", "kiosk-mongodb-x509-users")["data"].update({"x509-users.json": json.dumps({"users": [
             dict(u, roles=[{"role": "read", "db": "pipeline"}]) if "kiosk-test-verify" in u["user"] else u for u in json.loads(
                 find(b, "ConfigMap", "kiosk-mongodb-x509-users")["data"]["x509-users.json"])["users"]]})}),
         check_mongodb_server, "X.509 user CN=kiosk-test-verify,OU=pipeline,O=kiosk (the certificate subject of pipeline/kiosk-test-verify) may readWrite pipeline", not TLS),
        ("15: the clients' O equal to the server certificate's (MongoDB would take them for cluster members)",
         lambda b: [e.update(value="kiosk-mongodb") for e in container(b, "Deployment", "kiosk-mongodb-tls-issuer", "tls-issuer")["env"]
                    if e["name"] == "KIOSK_CLIENT_ORGANIZATION"], check_mongodb_server, "the clients' O differs", not TLS),
        ("15: no DestinationRule for the verifier (its sidecar would present no certificate)",
         lambda b: b.remove(find(b, "DestinationRule", "kiosk-test-verify-mongodb-tls")), check_mongodb_clients,
         "kiosk-test-verify/verify (MongoDB client pipeline/kiosk-test-verify): one MUTUAL DestinationRule", not TLS),
        ("15: the producer's certificate given to the verifier",
         lambda b: mongo_rule(b, "kiosk-test-verify-mongodb-tls").update(credentialName="kiosk-test-producer-mongodb-tls"), check_mongodb_clients,
         "credentialName is its own certificate's Secret", not TLS),
        ("15: a MongoDB DestinationRule that checks no name",
         lambda b: mongo_rule(b, "kiosk-test-verify-mongodb-tls").pop("subjectAltNames"), check_mongodb_clients, "checks that name in mongod's certificate", not TLS),
        ("15: Kafka Connect given its certificate by credentialName (its application holds an API token)",
         lambda b: [mongo_rule(b, "kiosk-connect-mongodb-tls").pop(k) for k in ("clientCertificate", "privateKey", "caCertificates")]
         + [mongo_rule(b, "kiosk-connect-mongodb-tls").update(credentialName="kiosk-connect-mongodb-tls")],
         check_mongodb_clients, "its application gets no API token", not TLS),
        ("15: Kafka Connect's pods without the injection template that mounts its certificate into the sidecar",
         lambda b: find(b, "KafkaConnect")["spec"]["template"]["pod"]["metadata"]["annotations"].update(
             {INJECT_TEMPLATES: "sidecar,kiosk-kafka-credentials"}), check_mongodb_clients, "mounted into the sidecar", not TLS),
        ("15: the verifier's sidecar not allowed to list secrets (istiod serves no key)",
         lambda b: b.remove(find(b, "RoleBinding", "kiosk-mongodb-client-sidecars")), check_mongodb_clients, "istiod serves the key to its sidecar", not TLS),
        ("15: the MongoDB WasmPlugin not authenticating (mongod requires it)",
         lambda b: find(b, "WasmPlugin", "kiosk-mongodb")["spec"]["pluginConfig"].pop("mongodb_auth"), check_mongodb_clients,
         "a MongoDB WasmPlugin authenticates its connections", not TLS),
        ("15: the MongoDB WasmPlugin in mongod's own pod",
         lambda b: pod_labels(find(b, "StatefulSet", "kiosk-mongodb")).update({"kiosk.io/mongodb-client": "true"}), check_mongodb_wasmplugins,
         "does not select mongod's pods", not TLS),
        ("15: the MongoDB WasmPlugin on the Kafka ports",
         lambda b: find(b, "WasmPlugin", "kiosk-mongodb")["spec"]["match"][0]["ports"].append({"number": 9092}), check_mongodb_wasmplugins,
         "match mode CLIENT on MongoDB's port only", not TLS),
        ("15 (tls): the verifier's MongoDB URI with a password, with TLS client identity for Kafka",
         lambda b: mongo_uri(b, f"mongodb://u:p@{host}:27017/"), check_mongodb_credentials, "has a user and password", TLS),
    ]
    checks = [check_pods, check_kafka_listeners, check_wasm_pull, check_wasm_vms, check_generated_credentials, check_istio_shaped_series, check_ingress_jwt,
              check_topics_and_acls, check_tls_client_identity, check_kafka_credentials, check_mongodb, check_exactly_once]

    def extra(c):
        return (injected,) if c in (check_pods, check_kafka_listeners) else (secrets,) if c is check_tls_client_identity else ()

    def errors_of(b, fn):
        """What the invariant that guards a finding reports (None: every invariant)."""
        return [e for c in checks for e in probe(c, b, *extra(c))] if fn is None else probe(fn, b, *extra(fn))

    expect_refusals(report, [(what, tls_bundle if tls else bundle, mutate, want, fn) for what, mutate, fn, want, tls in cases], errors_of,
                    "self-check: {what}", "self-check: finding {what} is rejected", shown=3)
    # 5: a certificate copied once by kind-up.sh instead of kept in sync.
    b = copy.deepcopy(tls_bundle)
    b.remove(find(b, "Deployment", "kiosk-kafka-tls-sync"))
    errs = probe(check_tls_client_identity, b, secrets | {("pipeline", "kiosk-mirror-mesh-tls")})
    report.check(any("not a copy made once" in e for e in errs), "self-check: finding 5: a certificate Secret copied once by kind-up.sh is rejected", str(errs[:3]))
