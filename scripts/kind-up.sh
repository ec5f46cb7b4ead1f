#!/usr/bin/env bash
# The kiosk pipeline on a local Kubernetes (kind) cluster, from nothing:
#   1. a local image registry (localhost:5001 on this machine, kind-registry:5000 inside)
#      and a one-node kind cluster whose containerd pulls from it;
#   2. Istio 1.30.3 (Helm charts base, istiod with istio/helm/istiod-values.yaml, the
#      ingress gateway), Prometheus, Grafana and Jaeger (Istio's addons), Kiali through the
#      Kiali operator 2.29.0 with the kiosk `kafka` extension (istio/kiali.yaml);
#   3. the Strimzi 1.2.0 operator, the Kafka cluster (strimzi/kafka-cluster.yaml and its node
#      pool), STRICT mTLS for `pipeline`, TLS origination to the Kafka TLS listener;
#   4. the images: the filter as an OCI Wasm image, the kiosk services; pushed to the registry;
#   5. the charts: kiosk-filter (WasmPlugin + mesh settings) and test-kafka-istio-mongo.
# Then run scripts/kind-test.sh. Needs docker, kind, kubectl, helm, and the Rust toolchain of
# scripts/setup.sh (for the filter module); about 4 CPUs and 8 GiB for Docker.
#
# usage: scripts/kind-up.sh [--dry-run]
#   --dry-run   print every command instead of running it (nothing is created or changed)
# Environment: KIOSK_CLUSTER (default kiosk), KIOSK_REGISTRY_PORT (default 5001).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER="${KIOSK_CLUSTER:-kiosk}"
REGISTRY_NAME=kind-registry
REGISTRY_PORT="${KIOSK_REGISTRY_PORT:-5001}"
ISTIO_VERSION=1.30.3
KIALI_OPERATOR_VERSION=2.29.0
STRIMZI_VERSION=1.2.0
KIND_NODE_IMAGE=kindest/node:v1.34.0
REGISTRY_IMAGE=docker.io/library/registry:3.0.0
KIOSK_VERSION=0.1.0
# The registry as this machine sees it (push) and as the cluster sees it (pull, WasmPlugin).
PUSH_REGISTRY="localhost:${REGISTRY_PORT}"
CLUSTER_REGISTRY="${REGISTRY_NAME}:5000"
ISTIO_ADDONS="https://raw.githubusercontent.com/istio/istio/${ISTIO_VERSION}/samples/addons"

DRY_RUN=0
case "${1:-}" in
  --dry-run) DRY_RUN=1 ;;
  "") ;;
  -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
  *) echo "kind-up.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
esac

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

step "prerequisites"
need docker "https://docs.docker.com/engine/install/"
need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
need kubectl "https://kubernetes.io/docs/tasks/tools/"
need helm "https://helm.sh/docs/intro/install/"
need cargo "run scripts/setup.sh (the filter is built with the project's Rust toolchain)"

step "local registry ${PUSH_REGISTRY} (in the cluster: ${CLUSTER_REGISTRY})"
if [[ $DRY_RUN == 1 ]] || [[ "$(docker inspect -f '{{.State.Running}}' "$REGISTRY_NAME" 2>/dev/null || true)" != true ]]; then
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

step "Istio ${ISTIO_VERSION} (shared mesh config istio-system/istio-user, tracing to Jaeger)"
run helm repo add istio https://istio-release.storage.googleapis.com/charts --force-update
run helm repo add kiali https://kiali.org/helm-charts --force-update
run helm repo update istio kiali
run helm upgrade --install istio-base istio/base --version "$ISTIO_VERSION" \
  -n istio-system --create-namespace --wait
run helm upgrade --install istiod istio/istiod --version "$ISTIO_VERSION" \
  -n istio-system -f istio/helm/istiod-values.yaml --wait
run helm upgrade --install istio-ingressgateway istio/gateway --version "$ISTIO_VERSION" \
  -n istio-ingress --create-namespace --set service.type=ClusterIP --wait

step "Prometheus, Grafana, Jaeger (Istio ${ISTIO_VERSION} addons)"
for addon in prometheus grafana jaeger; do
  run kubectl apply -f "${ISTIO_ADDONS}/${addon}.yaml"
done
run kubectl -n istio-system rollout status deployment/prometheus --timeout=300s

step "Kiali (operator ${KIALI_OPERATOR_VERSION}) with the kiosk kafka extension"
run helm upgrade --install kiali-operator kiali/kiali-operator --version "$KIALI_OPERATOR_VERSION" \
  -n kiali-operator --create-namespace --set cr.create=false --wait
run kubectl apply -f istio/kiali.yaml
run kubectl apply -f istio/telemetry-tracing.yaml

step "Strimzi ${STRIMZI_VERSION} operator (watches kafka and pipeline) and the Kafka cluster"
run helm upgrade --install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator \
  --version "$STRIMZI_VERSION" -n strimzi --create-namespace \
  --set 'watchNamespaces={kafka,pipeline}' --wait
run kubectl apply -f strimzi/kafka-cluster.yaml -f strimzi/kafka-node-pool-dual-role.yaml
run kubectl -n kafka wait kafka/kiosk --for=condition=Ready --timeout=900s

step "mesh security for pipeline: STRICT mTLS, TLS origination to the Kafka TLS listener"
run kubectl apply -f istio/peer-authentication-pipeline-strict.yaml
# DestinationRule credentialName Secrets must live in the workload's namespace.
run_sh "kubectl -n kafka get secret kiosk-cluster-ca-cert -o jsonpath='{.data.ca\\.crt}' | base64 -d > '$workdir/ca.crt'"
run_sh "kubectl -n pipeline create secret generic kiosk-kafka-cluster-ca --from-file=ca.crt='$workdir/ca.crt' --dry-run=client -o yaml | kubectl apply -f -"
run kubectl apply -f istio/destination-rule-kafka-tls-origination.yaml

step "images: the filter (OCI Wasm, Istio's compat layout) and the kiosk services"
run scripts/build-filter.sh
run docker build -f docker/kiosk-filter.Dockerfile -t "${PUSH_REGISTRY}/kiosk/kiosk-filter:${KIOSK_VERSION}" dist
run docker push "${PUSH_REGISTRY}/kiosk/kiosk-filter:${KIOSK_VERSION}"
run docker build -f docker/kiosk.Dockerfile -t "${PUSH_REGISTRY}/kiosk/kiosk:${KIOSK_VERSION}" .
run docker push "${PUSH_REGISTRY}/kiosk/kiosk:${KIOSK_VERSION}"

step "charts: kiosk-filter, then test-kafka-istio-mongo (namespace pipeline)"
run helm upgrade --install kiosk-filter charts/kiosk-filter -n pipeline \
  --set "image.repository=${CLUSTER_REGISTRY}/kiosk/kiosk-filter" --set "image.tag=${KIOSK_VERSION}" --wait
run helm upgrade --install kiosk charts/test-kafka-istio-mongo -n pipeline \
  --set "images.kiosk.repository=${CLUSTER_REGISTRY}/kiosk/kiosk" --set "images.kiosk.tag=${KIOSK_VERSION}"
echo "waiting for the pipeline (Kafka Connect first builds its image with the MongoDB connector: minutes)"
run kubectl -n pipeline wait kafkatopic,kafkauser --all --for=condition=Ready --timeout=600s
run kubectl -n pipeline wait kafkabridge/kiosk kafkaconnect/kiosk --for=condition=Ready --timeout=1200s
run kubectl -n pipeline wait kafkaconnector/mongodb-sink --for=condition=Ready --timeout=600s
run kubectl -n pipeline rollout status statefulset/kiosk-mongodb --timeout=600s
run kubectl -n pipeline rollout status deployment/kiosk-mirror --timeout=600s

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
