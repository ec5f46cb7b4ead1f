#!/bin/bash
# Start Keycloak 26.7.3 (start-dev) with realm-kiosk.json imported, on 127.0.0.1:$PORT, its data
# in a fresh per-run home $RUN/keycloak (bin copied, lib/conf/providers/themes symlinked to the
# unzipped dist $DIST: Keycloak's data dir is always <home>/data and its import dir
# <home>/data/import). Secrets are made here as mode-0600 files in $S and passed by environment
# (the realm file's ${KIOSK_*_SECRET} placeholders; KC_BOOTSTRAP_ADMIN_*). Prints the seconds
# until the JWKS answered 200. Stop: kill <pid in $S/kc.pid> (kc.sh forwards TERM to java).
set -e
DIST=${DIST:-/tmp/kc/keycloak-26.7.3}; S=${S:-/tmp/kc}; RUN=${RUN:-$S/run}; PORT=${PORT:-18080}
HOSTNAME_URL=${HOSTNAME_URL:-http://keycloak.pipeline.svc.cluster.local:8080}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p $S; umask 077
for f in producer outsider short; do [ -s $S/$f.secret ] || head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' > $S/$f.secret; done
[ -s $S/admin.pw ] || head -c 18 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' > $S/admin.pw
umask 022
H=$RUN/keycloak; rm -rf $H; mkdir -p $H/data/import
cp -r $DIST/bin $H/; for d in lib conf providers themes; do ln -s $DIST/$d $H/$d; done
cp $HERE/realm-kiosk.json $H/data/import/
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
export KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD=$(cat $S/admin.pw)
export KIOSK_PRODUCER_SECRET=$(cat $S/producer.secret) KIOSK_OUTSIDER_SECRET=$(cat $S/outsider.secret) KIOSK_SHORT_LIVED_SECRET=$(cat $S/short.secret)
t0=$(date +%s.%N)
setsid $H/bin/kc.sh start-dev --http-host 127.0.0.1 --http-port $PORT --hostname $HOSTNAME_URL --import-realm > $RUN/keycloak.log 2>&1 &
echo $! > $S/kc.pid
until [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/realms/kiosk/protocol/openid-connect/certs)" = 200 ]; do
  kill -0 $(cat $S/kc.pid) 2>/dev/null || { echo "keycloak exited; see $RUN/keycloak.log"; exit 1; }
  sleep 0.25
done
echo "$t0 $(date +%s.%N)" | awk '{printf "JWKS 200 after %.1f s\n", $2-$1}'
