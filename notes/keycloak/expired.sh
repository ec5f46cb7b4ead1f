#!/bin/bash
# How long after its exp Envoy (default clock_skew_seconds, 60) still accepts a token of the
# client short-lived (access.token.lifespan 1 s): polls every 0.25 s, prints each change.
KC=${KC:-http://127.0.0.1:18080}; GW=${GW:-http://127.0.0.1:18090}; S=${S:-/tmp/kc}
T=$(curl -s -u "short-lived:$(cat $S/short.secret)" -d grant_type=client_credentials \
      $KC/realms/kiosk/protocol/openid-connect/token | python3 -c "import json,sys; print(json.load(sys.stdin)['access_token'])")
E=$(echo "$T" | python3 -c "import sys,json,base64; p=sys.stdin.read().split('.')[1]; print(json.loads(base64.urlsafe_b64decode(p+'='*(-len(p)%4)))['exp'])")
last=""
while :; do
  now=$(date +%s.%N)
  r=$(curl -s -w ' %{http_code}' -H "Authorization: Bearer $T" -X POST $GW/topics/events | tr -d '\n')
  [ "$r" != "$last" ] && { echo "now-exp=$(echo "$now $E" | awk '{printf "%.2f",$1-$2}') s -> $r"; last="$r"; }
  case "$r" in *401) break;; esac
  sleep 0.25
done
