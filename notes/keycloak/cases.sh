#!/bin/bash
# The cases of harness/tests/live_ingress.rs against an Envoy whose jwt_authn + RBAC are what
# harness/src/istiod.rs renders (envoy-config.py), with tokens from Keycloak (realm-kiosk.json).
# Needs: Keycloak on $KC (default http://127.0.0.1:18080), Envoy's listener on $GW (default
# http://127.0.0.1:18090), the client secrets and admin password as files in $S (default /tmp/kc):
# producer.secret, outsider.secret, admin.pw. Prints what Envoy answered; never a token.
KC=${KC:-http://127.0.0.1:18080}; GW=${GW:-http://127.0.0.1:18090}; S=${S:-/tmp/kc}
B=$KC/realms/kiosk
tok() { curl -s -u "$1:$(cat $S/$2)" -d grant_type=client_credentials $B/protocol/openid-connect/token |
        python3 -c "import json,sys; print(json.load(sys.stdin)['access_token'])"; }
probe() { # what, Authorization value or empty
  if [ -n "$2" ]; then r=$(curl -s -w ' %{http_code}' -H "Authorization: $2" -X POST $GW/topics/events)
  else r=$(curl -s -w ' %{http_code}' -X POST $GW/topics/events); fi
  printf '%-34s %s\n' "$1" "$(echo $r)"
}
P=$(tok producer producer.secret)
O=$(tok outsider outsider.secret)
# Foreign issuer: a token of the same Keycloak's master realm (admin-cli, password grant).
F=$(curl -s -d grant_type=password -d client_id=admin-cli -d username=admin --data-urlencode "password=$(cat $S/admin.pw)" \
      $KC/realms/master/protocol/openid-connect/token | python3 -c "import json,sys; print(json.load(sys.stdin)['access_token'])")
# Wrong signature: the producer's header.payload with the signature of another Keycloak token
# (same kid, RS256): a real signature, over other bytes.
W="${P%.*}.${O##*.}"
probe "no token" ""
probe "malformed" "Bearer not.a.jwt"
probe "wrong signature (grafted)" "Bearer $W"
probe "foreign issuer (realm master)" "Bearer $F"
probe "foreign audience (outsider)" "Bearer $O"
probe "valid (producer)" "Bearer $P"
