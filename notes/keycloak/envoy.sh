#!/bin/bash
# (Re)start a scratch Envoy whose jwt_authn has Keycloak's JWKS inline, fetched now (what istiod
# does at each refresh). Envoy 1.40.0 from the project's .venv; state in $S (default /tmp/kc).
# Listener 127.0.0.1:18090, admin 127.0.0.1:18091. Stops the Envoy it started before (its pid file).
S=${S:-/tmp/kc}; KC=${KC:-http://127.0.0.1:18080}
HERE=$(cd "$(dirname "$0")" && pwd); ENVOY=${ENVOY:-$HERE/../../.venv/bin/envoy}
ISSUER=${ISSUER:-http://keycloak.pipeline.svc.cluster.local:8080/realms/kiosk}
if [ -f $S/envoy.pid ] && kill -0 $(cat $S/envoy.pid) 2>/dev/null; then
  kill $(cat $S/envoy.pid); while kill -0 $(cat $S/envoy.pid) 2>/dev/null; do sleep 0.2; done
fi
[ "$1" = stop ] && exit 0
python3 $HERE/envoy-config.py $ISSUER kiosk-rest $KC/realms/kiosk/protocol/openid-connect/certs 18090 18091 > $S/envoy.json
setsid $ENVOY -c $S/envoy.json --concurrency 1 --disable-hot-restart --base-id 7301 > $S/envoy.log 2>&1 &
echo $! > $S/envoy.pid
until curl -s 127.0.0.1:18091/ready | grep -q LIVE; do sleep 0.2; done
