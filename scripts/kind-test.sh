#!/usr/bin/env bash
# Test the kiosk pipeline on the kind cluster of scripts/kind-up.sh:
#   1. `helm test` of the release: a producer Job posts the records through the REST entry
#      (Istio Gateway -> KafkaBridge), then the verify Job checks `events`, `events.mirror`
#      and MongoDB hold exactly those records, and that Kiali's graph API shows every edge;
#   2. the logs of the test Jobs' pods, every container (`helm test --logs` cannot show them:
#      it asks for a Pod named after each test hook, and these hooks are Jobs, helm/helm#11236);
#   3. the graph edges as Kiali's API returns them (through a port-forward to Kiali).
# Exits with helm test's status, after printing the logs and the edges either way.
#
# usage: scripts/kind-test.sh [--dry-run]
#   --dry-run   print every command instead of running it
# Environment: KIOSK_RELEASE (default kiosk), KIOSK_NAMESPACE (default pipeline),
#              KIALI_PORT (local port of the port-forward, default 20001).
set -euo pipefail
cd "$(dirname "$0")/.."

RELEASE="${KIOSK_RELEASE:-kiosk}"
NAMESPACE="${KIOSK_NAMESPACE:-pipeline}"
KIALI_PORT="${KIALI_PORT:-20001}"
DRY_RUN=0
case "${1:-}" in
  --dry-run) DRY_RUN=1 ;;
  "") ;;
  -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
  *) echo "kind-test.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
esac

step() { printf '\n==> %s\n' "$*"; }
run() {
  echo "+ $(printf '%q ' "$@")"
  if [[ $DRY_RUN == 0 ]]; then "$@"; fi
}
need() {
  if [[ $DRY_RUN == 1 ]]; then echo "+ command -v $1"; return; fi
  command -v "$1" >/dev/null || { echo "kind-test.sh: $1 is needed: $2" >&2; exit 1; }
}

step "prerequisites"
need helm "https://helm.sh/docs/intro/install/"
need kubectl "https://kubernetes.io/docs/tasks/tools/"
need curl "to wait for Kiali's API through the port-forward (apt install curl)"
need python3 "https://www.python.org/downloads/ (reads the graph from Kiali's API)"

step "helm test ${RELEASE} (namespace ${NAMESPACE})"
# Without --logs: on every released Helm (3.x, 4.x) it fails for Job hooks, after the tests ran.
status=0
run helm test "$RELEASE" -n "$NAMESPACE" --timeout 30m || status=$?

step "logs of the test pods (every container; the sidecars' too)"
for component in test-producer test-verify; do
  run kubectl -n "$NAMESPACE" logs \
    -l "app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=${component}" \
    --all-containers --prefix --tail=-1 --ignore-errors || true
done

step "the graph edges from Kiali's API"
echo "+ kubectl -n istio-system port-forward svc/kiali ${KIALI_PORT}:20001 &"
if [[ $DRY_RUN == 0 ]]; then
  kubectl -n istio-system port-forward svc/kiali "${KIALI_PORT}:20001" >/dev/null &
  forward=$!
  trap 'kill "$forward" 2>/dev/null || true' EXIT
  for _ in $(seq 30); do
    curl -fsS -o /dev/null "http://127.0.0.1:${KIALI_PORT}/kiali/api/status" && break
    sleep 1
  done
fi
run python3 charts/test-kafka-istio-mongo/files/kiali_edges.py \
  --url "http://127.0.0.1:${KIALI_PORT}/kiali" --namespaces "${NAMESPACE},kafka" --duration 300 || true
echo
echo "Kiali: kubectl -n istio-system port-forward svc/kiali ${KIALI_PORT}:20001, then http://localhost:${KIALI_PORT}/kiali"
if [[ $status != 0 ]]; then
  echo "kind-test.sh: helm test failed (exit $status); the test pods' logs are above" >&2
fi
exit "$status"
