#!/usr/bin/env bash
# The kiosk pipeline on a local Kubernetes (kind) cluster, from nothing:
#   1. a local image registry (localhost:5001 on this machine, kind-registry:5000 inside)
#      and a one-node kind cluster whose containerd pulls from it;
#   2. the images: the filter as an OCI Wasm image, the kiosk services; pushed to the registry
#      (the filter is then pinned by the digest the registry gave it);
#   3. Istio 1.30.3 (Helm charts base, then the kiosk-filter chart: WasmPlugin + the mesh
#      settings the filter needs, so that istiod starts with them and every sidecar it injects
#      has them; then istiod with istio/helm/istiod-values.yaml and the ingress gateway with
#      istio/helm/gateway-values.yaml), Prometheus and Jaeger (Istio's addons), Grafana from
#      its chart with the dashboard sidecar (istio/helm/grafana-values.yaml: the kiosk
#      dashboard and Istio's), Kiali through the Kiali operator 2.29.0 with the kiosk `kafka`
#      extension (istio/kiali.yaml), waited for;
#   4. the Strimzi 1.2.0 operator, the Kafka cluster (strimzi/kafka-cluster.yaml and its node
#      pool), STRICT mTLS for `pipeline` and `kafka`, the NetworkPolicy that lets Prometheus
#      scrape the brokers' sidecars;
#   5. the test-kafka-istio-mongo chart, then a check that every Kafka client's sidecar
#      started with the filter's stat tags.
# The Kafka clients hold no Kafka credential: their sidecars supply it (docs/kafka-credentials.md).
# By default the kiosk filter performs SASL (SCRAM-SHA-512) on the plain listener; with
# --kafka-auth tls (TLS client identity, the alternative) the charts are installed with
# kiosk-filter kafkaAuth.mechanism=none and test-kafka-istio-mongo kafka.authentication=tls,
# and istio/kafka-tls-client-identity/ (per-workload DestinationRules, the certificate sync,
# the sidecars' RBAC) is applied before the chart.
# Then run scripts/kind-test.sh. Needs docker, kind, kubectl, helm, python3, and the Rust
# toolchain of scripts/setup.sh with its wasm32-wasip1 target (for the filter module); about
# 4 CPUs and 8 GiB for Docker.
#
# usage: scripts/kind-up.sh [--dry-run] [--kafka-auth scram-sha-512|tls]
#   --dry-run      print every command instead of running it (nothing is created or changed)
#   --kafka-auth   how the sidecars authenticate the Kafka clients (default scram-sha-512)
# Environment: KIOSK_CLUSTER (default kiosk), KIOSK_REGISTRY_PORT (default 5001).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER="${KIOSK_CLUSTER:-kiosk}"
REGISTRY_NAME=kind-registry
REGISTRY_PORT="${KIOSK_REGISTRY_PORT:-5001}"
ISTIO_VERSION=1.30.3
KIALI_OPERATOR_VERSION=2.29.0
# The Grafana chart Istio 1.30.3's samples/addons/grafana.yaml is rendered from.
GRAFANA_CHART_VERSION=9.2.2
STRIMZI_VERSION=1.2.0
KIND_NODE_IMAGE=kindest/node:v1.34.0
REGISTRY_IMAGE=docker.io/library/registry:3.0.0
KIOSK_VERSION=0.1.0
# The registry as this machine sees it (push) and as the cluster sees it (pull, WasmPlugin).
PUSH_REGISTRY="localhost:${REGISTRY_PORT}"
CLUSTER_REGISTRY="${REGISTRY_NAME}:5000"
ISTIO_ADDONS="https://raw.githubusercontent.com/istio/istio/${ISTIO_VERSION}/samples/addons"

DRY_RUN=0
KAFKA_AUTH=scram-sha-512
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --kafka-auth)
      KAFKA_AUTH="${2:-}"
      shift
      [[ $KAFKA_AUTH == scram-sha-512 || $KAFKA_AUTH == tls ]] || {
        echo "kind-up.sh: --kafka-auth takes scram-sha-512 or tls" >&2
        exit 2
      }
      ;;
    -h | --help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "kind-up.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
# What the charts are installed with for it.
FILTER_AUTH=SCRAM-SHA-512
[[ $KAFKA_AUTH == tls ]] && FILTER_AUTH=none

step() { printf '\n==> %s\n' "$*"; }
# Print a command, then run it unless --dry-run.
run() {
  echo "+ $(printf '%q ' "$@")"
  if [[ $DRY_RUN == 0 ]]; then "$@"; fi
}
# The same for a shell pipeline, given as one string.
run_sh() {
  echo "+ $1"
  if [[ $DRY_RUN == 0 ]]; then bash -o pipefail -c "$1"; fi
}
# Write a file (printed in a dry run).
write_file() {
  echo "+ write $1:"
  while IFS= read -r line; do echo "    $line"; done <<<"$2"
  if [[ $DRY_RUN == 0 ]]; then printf '%s\n' "$2" >"$1"; fi
}
need() {
  if [[ $DRY_RUN == 1 ]]; then echo "+ command -v $1"; return; fi
  command -v "$1" >/dev/null || { echo "kind-up.sh: $1 is needed: $2" >&2; exit 1; }
}
# The filter is built for wasm32-wasip1 (scripts/build-filter.sh): check the target is there
# before anything is created, not twenty minutes later.
need_wasm_target() {
  local libdir
  echo "+ test -d \"\$(rustc --print sysroot)/lib/rustlib/wasm32-wasip1\""
  if [[ $DRY_RUN == 1 ]]; then return; fi
  libdir="$(rustc --print sysroot)/lib/rustlib/wasm32-wasip1"
  [[ -d $libdir ]] || {
    echo "kind-up.sh: the Rust target wasm32-wasip1 is needed: rustup target add wasm32-wasip1 (or run scripts/setup.sh)" >&2
    exit 1
  }
}

step "prerequisites"
need docker "https://docs.docker.com/engine/install/"
need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
need kubectl "https://kubernetes.io/docs/tasks/tools/"
need helm "https://helm.sh/docs/intro/install/"
need cargo "run scripts/setup.sh (the filter is built with the project's Rust toolchain)"
need rustc "run scripts/setup.sh (the filter is built with the project's Rust toolchain)"
need python3 "https://www.python.org/downloads/ (the checks below and scripts/kind-test.sh use it)"
need_wasm_target

step "local registry ${PUSH_REGISTRY} (in the cluster: ${CLUSTER_REGISTRY})"
# Running: kept. Stopped (a reboot, `docker stop`): started again, since `docker run --name`
# would refuse the name. Absent: created.
registry_running=
if [[ $DRY_RUN == 0 ]]; then
  registry_running="$(docker inspect -f '{{.State.Running}}' "$REGISTRY_NAME" 2>/dev/null || true)"
fi
if [[ $DRY_RUN == 0 && $registry_running == false ]]; then
  run docker start "$REGISTRY_NAME"
elif [[ $DRY_RUN == 1 || $registry_running != true ]]; then
  run docker run -d --restart=always -p "127.0.0.1:${REGISTRY_PORT}:5000" --network bridge \
    --name "$REGISTRY_NAME" "$REGISTRY_IMAGE"
fi

step "kind cluster ${CLUSTER}"
workdir=/tmp/kiosk-kind-up
[[ $DRY_RUN == 1 ]] || workdir="$(mktemp -d)"
write_file "$workdir/kind.yaml" "kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
name: ${CLUSTER}
nodes:
  - role: control-plane
    image: ${KIND_NODE_IMAGE}
containerdConfigPatches:
  - |-
    [plugins.\"io.containerd.grpc.v1.cri\".registry]
      config_path = \"/etc/containerd/certs.d\""
if [[ $DRY_RUN == 1 ]] || ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  run kind create cluster --config "$workdir/kind.yaml" --wait 120s
fi
node="${CLUSTER}-control-plane"
# containerd pulls both registry names over plain HTTP from the registry container.
for host in "$PUSH_REGISTRY" "$CLUSTER_REGISTRY"; do
  run docker exec "$node" mkdir -p "/etc/containerd/certs.d/${host}"
  run docker exec "$node" sh -c "printf '[host.\"http://${CLUSTER_REGISTRY}\"]\n' > /etc/containerd/certs.d/${host}/hosts.toml"
done
if [[ $DRY_RUN == 1 ]] || [[ "$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "$REGISTRY_NAME")" == null ]]; then
  run docker network connect kind "$REGISTRY_NAME"
fi
run_sh "kubectl apply -f - <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: \"${PUSH_REGISTRY}\"
    hostFromContainerRuntime: \"${CLUSTER_REGISTRY}\"
    hostFromClusterNetwork: \"${CLUSTER_REGISTRY}\"
EOF"

step "namespaces"
run_sh "kubectl create namespace kafka --dry-run=client -o yaml | kubectl apply -f -"
run_sh "kubectl create namespace pipeline --dry-run=client -o yaml | kubectl apply -f -"
run kubectl label namespace kafka istio-injection=enabled --overwrite
run kubectl label namespace pipeline istio-injection=enabled --overwrite

step "images: the filter (OCI Wasm, Istio's compat layout) and the kiosk services"
filter_image="${PUSH_REGISTRY}/kiosk/kiosk-filter:${KIOSK_VERSION}"
run scripts/build-filter.sh
# One plain image manifest (no attestation index): Istio's fetcher resolves an index to a
# linux/amd64 child (istio/istio pkg/wasm/imagefetcher.go, desc.Image()).
run docker build --provenance=false --sbom=false -f docker/kiosk-filter.Dockerfile -t "$filter_image" dist
run docker push "$filter_image"
# The WasmPlugin pins the module by this digest: each sidecar caches modules by URL, and a
# module pushed again under the same tag would never be fetched (istio/istio pkg/wasm/cache.go).
filter_digest="sha256:DIGEST-OF-THE-PUSHED-FILTER-IMAGE"
run_sh "docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' '$filter_image' | grep -m1 '^${PUSH_REGISTRY}/kiosk/kiosk-filter@'"
if [[ $DRY_RUN == 0 ]]; then
  filter_digest="$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$filter_image" |
    grep -m1 "^${PUSH_REGISTRY}/kiosk/kiosk-filter@" || true)"
  filter_digest="${filter_digest#*@}"
  [[ $filter_digest == sha256:* ]] || { echo "kind-up.sh: the registry gave $filter_image no digest" >&2; exit 1; }
fi
echo "  filter module: ${CLUSTER_REGISTRY}/kiosk/kiosk-filter@${filter_digest}"
run docker build -f docker/kiosk.Dockerfile -t "${PUSH_REGISTRY}/kiosk/kiosk:${KIOSK_VERSION}" .
run docker push "${PUSH_REGISTRY}/kiosk/kiosk:${KIOSK_VERSION}"

step "Istio ${ISTIO_VERSION} (shared mesh config istio-system/istio-user, tracing to Jaeger)"
run helm repo add istio https://istio-release.storage.googleapis.com/charts --force-update
run helm repo add kiali https://kiali.org/helm-charts --force-update
run helm repo add grafana https://grafana.github.io/helm-charts --force-update
run helm repo update istio kiali grafana
run helm upgrade --install istio-base istio/base --version "$ISTIO_VERSION" \
  -n istio-system --create-namespace --wait
# The kiosk-filter chart before istiod: its mesh ConfigMap (extraStatTags) is then part of
# istiod's mesh config from the start. The injector copies the mesh config into each pod
# (PROXY_CONFIG) when it injects it, and Envoy's stats tags are fixed when the sidecar starts:
# a Kafka client injected before istiod had read the ConfigMap would report no labels.
run helm upgrade --install kiosk-filter charts/kiosk-filter -n pipeline \
  --set "image.repository=${CLUSTER_REGISTRY}/kiosk/kiosk-filter" --set "image.digest=${filter_digest}" \
  --set "kafkaAuth.mechanism=${FILTER_AUTH}" --wait
run helm upgrade --install istiod istio/istiod --version "$ISTIO_VERSION" \
  -n istio-system -f istio/helm/istiod-values.yaml --wait
# The gateway's JWT and RBAC stats are kept (proxyStatsMatcher): the kiosk dashboard reads them.
run helm upgrade --install istio-ingressgateway istio/gateway --version "$ISTIO_VERSION" \
  -n istio-ingress --create-namespace -f istio/helm/gateway-values.yaml --wait

step "mesh security, before any workload: STRICT mTLS for pipeline and kafka"
# kafka: Strimzi's NetworkPolicy opens the listener ports to every pod; STRICT keeps pods
# outside the mesh from sending SCRAM exchanges in clear to 9092 (9093 is Kafka's own TLS,
# with client certificates).
run kubectl apply -f istio/peer-authentication-pipeline-strict.yaml
run kubectl apply -f istio/peer-authentication-kafka-strict.yaml -f istio/peer-authentication-kafka-brokers-tls-listener.yaml

step "Prometheus, Jaeger (Istio ${ISTIO_VERSION} addons), Grafana ${GRAFANA_CHART_VERSION} with the dashboard sidecar"
for addon in prometheus jaeger; do
  run kubectl apply -f "${ISTIO_ADDONS}/${addon}.yaml"
done
run kubectl -n istio-system rollout status deployment/prometheus --timeout=300s
# Grafana's chart (the one the addon is rendered from) with its sidecar, which loads every
# ConfigMap labelled grafana_dashboard: the kiosk-filter chart's, and Istio's own dashboards
# (the addon's ConfigMaps, labelled here).
run helm upgrade --install grafana grafana/grafana --version "$GRAFANA_CHART_VERSION" \
  -n istio-system -f istio/helm/grafana-values.yaml --wait
run_sh "kubectl create -f '${ISTIO_ADDONS}/grafana.yaml' --dry-run=client -o json | python3 -c '$(cat <<'PY'
import json, sys
items = [o for o in json.load(sys.stdin)["items"] if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboards")]
for o in items:
    o["metadata"].setdefault("labels", {})["grafana_dashboard"] = "1"
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout)
PY
)' | kubectl apply -f -"

step "Kiali (operator ${KIALI_OPERATOR_VERSION}) with the kiosk kafka extension"
run helm upgrade --install kiali-operator kiali/kiali-operator --version "$KIALI_OPERATOR_VERSION" \
  -n kiali-operator --create-namespace --set cr.create=false --wait
run kubectl apply -f istio/kiali.yaml
run kubectl apply -f istio/telemetry-tracing.yaml
# The operator deploys Kiali after it reconciles the CR: wait for both (scripts/kind-test.sh
# and the helm test ask Kiali's API).
run kubectl -n istio-system wait kiali/kiali --for=condition=Successful --timeout=600s
run kubectl -n istio-system rollout status deployment/kiali --timeout=300s

step "Strimzi ${STRIMZI_VERSION} operator (watches kafka and pipeline) and the Kafka cluster"
run helm upgrade --install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator \
  --version "$STRIMZI_VERSION" -n strimzi --create-namespace \
  --set 'watchNamespaces={kafka,pipeline}' --wait
# Strimzi's NetworkPolicy for the brokers admits only its own ports and the listeners: this
# one lets Prometheus scrape the brokers' sidecars.
run kubectl apply -f strimzi/kafka-cluster.yaml -f strimzi/kafka-node-pool-dual-role.yaml \
  -f strimzi/kafka-network-policy-prometheus.yaml
run kubectl -n kafka wait kafka/kiosk --for=condition=Ready --timeout=900s

if [[ $KAFKA_AUTH == tls ]]; then
  step "TLS client identity: each Kafka client's sidecar originates TLS to 9093 with its KafkaUser's certificate"
  # Before the clients start: per-workload DestinationRules (MUTUAL, credentialName), the
  # sidecars' `list secrets` that istiod requires, and the Deployment that keeps each user's
  # certificate with Strimzi's cluster CA in the shape Istio reads (it waits for the users).
  run kubectl apply -f istio/kafka-tls-client-identity/
fi

step "chart test-kafka-istio-mongo (namespace pipeline, kafka.authentication=${KAFKA_AUTH})"
# Helm waits for the chart's post-install hook, the schema registration Job, which waits for the
# schema registry (image pull, JVM start): up to its activeDeadlineSeconds, more than Helm's
# default 5 minutes (docs/schema-registry.md).
run helm upgrade --install kiosk charts/test-kafka-istio-mongo -n pipeline --timeout 15m \
  --set "images.kiosk.repository=${CLUSTER_REGISTRY}/kiosk/kiosk" --set "images.kiosk.tag=${KIOSK_VERSION}" \
  --set "kafka.authentication=${KAFKA_AUTH}"
echo "waiting for the pipeline (Kafka Connect first builds its image with the MongoDB connector: minutes)"
run kubectl -n pipeline wait kafkatopic,kafkauser --all --for=condition=Ready --timeout=600s
if [[ $KAFKA_AUTH == tls ]]; then
  run kubectl -n pipeline rollout status deployment/kiosk-kafka-tls-sync --timeout=300s
fi
run kubectl -n pipeline wait kafkabridge/kiosk kafkaconnect/kiosk --for=condition=Ready --timeout=1200s
run kubectl -n pipeline wait kafkaconnector/mongodb-sink --for=condition=Ready --timeout=600s
# MongoDB requires TLS with client certificates and X.509 users (docs/mongodb-credentials.md): its
# pod and the MongoDB clients' sidecars wait for the certificates the chart's issuer makes.
run kubectl -n pipeline rollout status deployment/kiosk-mongodb-tls-issuer --timeout=300s
run kubectl -n pipeline rollout status statefulset/kiosk-mongodb --timeout=600s
run kubectl -n pipeline rollout status deployment/kiosk-mirror --timeout=600s
# Keycloak, the identity provider the gateway trusts: ready when its realm's JWKS answers (image
# pull, re-augmentation, realm import: a minute or more). istiod fetches that JWKS for the
# gateway and the helm test's producer asks it for tokens (docs/kubernetes.md).
run kubectl -n pipeline rollout status deployment/keycloak --timeout=600s

step "every Kafka client's sidecar has the filter's stat tags"
# The injector wrote the mesh config of that moment into each pod (PROXY_CONFIG): a pod
# injected without extraStatTags reports no labels until it is restarted.
run_sh "kubectl -n pipeline get pods -l kiosk.io/kafka-client=true -o json | python3 -c '$(cat <<'PY'
import json, sys
bad = []
for pod in json.load(sys.stdin)["items"]:
    if pod["status"].get("phase") != "Running":
        continue
    spec = pod["spec"]
    proxy = [c for c in spec.get("initContainers", []) + spec.get("containers", []) if c["name"] == "istio-proxy"]
    env = {e["name"]: e.get("value", "") for c in proxy for e in c.get("env", [])}
    tags = json.loads(env.get("PROXY_CONFIG") or "{}").get("extraStatTags", [])
    if "local_workload" not in tags or "topic" not in tags:
        bad.append(pod["metadata"]["name"])
if bad:
    sys.exit("pods injected without the filter's extraStatTags (restart them): " + " ".join(bad))
print("every running Kafka client pod has the filter's extraStatTags")
PY
)'"

step "ready"
cat <<EOF
The kiosk pipeline runs in namespace pipeline, Kafka in namespace kafka.
  test:   scripts/kind-test.sh        (helm test, then the Kafka edges from Kiali's API)
  Kiali:  kubectl -n istio-system port-forward svc/kiali 20001:20001
          then http://localhost:20001/kiali (Graph, namespaces pipeline and kafka)
  Grafana: kubectl -n istio-system port-forward svc/grafana 3000:3000
  Jaeger:  kubectl -n istio-system port-forward svc/tracing 16686:80
  remove: kind delete cluster --name ${CLUSTER}; docker rm -f ${REGISTRY_NAME}
EOF
