#!/bin/bash
# Key rotation in realm kiosk through Keycloak's admin REST API, checked against Envoy:
# 1. add an rsa-generated key provider with a higher priority (new tokens carry its kid; the
#    JWKS lists both keys); 2. make the old provider passive (it stops signing, stays in the
#    JWKS); 3. delete it (gone from the JWKS). After each step Envoy's inline JWKS is refetched
#    (envoy.sh) and a token of before the rotation and one of after are tried.
KC=${KC:-http://127.0.0.1:18080}; GW=${GW:-http://127.0.0.1:18090}; S=${S:-/tmp/kc}
HERE=$(cd "$(dirname "$0")" && pwd)
ADM=$(curl -s -d grant_type=password -d client_id=admin-cli -d username=admin --data-urlencode "password=$(cat $S/admin.pw)" \
        $KC/realms/master/protocol/openid-connect/token | python3 -c "import json,sys; print(json.load(sys.stdin)['access_token'])")
api() { curl -s -H "Authorization: Bearer $ADM" -H 'Content-Type: application/json' "$@"; }
tok() { curl -s -u "producer:$(cat $S/producer.secret)" -d grant_type=client_credentials \
          $KC/realms/kiosk/protocol/openid-connect/token | python3 -c "import json,sys; print(json.load(sys.stdin)['access_token'])"; }
kid() { python3 -c "import sys,json,base64; h=sys.argv[1].split('.')[0]; print(json.loads(base64.urlsafe_b64decode(h+'='*(-len(h)%4)))['kid'])" "$1"; }
jwks() { curl -s $KC/realms/kiosk/protocol/openid-connect/certs | python3 -c "import json,sys; print(' '.join(k['kid'][:8]+'/'+k['use'] for k in json.load(sys.stdin)['keys']))"; }
try() { for t in OLD NEW; do v=${!t}; printf '  %s token (kid %s): %s\n' $t "$(kid $v | cut -c1-8)" \
          "$(curl -s -w ' %{http_code}' -H "Authorization: Bearer $v" -X POST $GW/topics/events | tr -d '\n')"; done; }
RID=$(api $KC/admin/realms/kiosk | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])")
# The provider that signs RS256 now: highest priority among active rsa providers.
OLDP=$(api $KC/admin/realms/kiosk/keys | python3 -c "import json,sys; d=json.load(sys.stdin); a=d['active']['RS256']; print([k['providerId'] for k in d['keys'] if k['kid']==a][0])")
OLD=$(tok); echo "before: signing provider $OLDP, JWKS: $(jwks)"
PRIO=$(( $(api $KC/admin/realms/kiosk/components/$OLDP | python3 -c "import json,sys; print(json.load(sys.stdin)['config']['priority'][0])") + 100 ))
LOC=$(api -i -X POST $KC/admin/realms/kiosk/components -d "{\"name\":\"rsa-generated-$(date +%s)\",\"providerId\":\"rsa-generated\",
  \"providerType\":\"org.keycloak.keys.KeyProvider\",\"parentId\":\"$RID\",
  \"config\":{\"priority\":[\"$PRIO\"],\"enabled\":[\"true\"],\"active\":[\"true\"],\"algorithm\":[\"RS256\"],\"keySize\":[\"2048\"]}}" \
  | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
NEW=$(tok); echo "1. added ${LOC##*/} (priority $PRIO); JWKS: $(jwks)"
echo " gateway with the JWKS of before:"; try
$HERE/envoy.sh; echo " gateway after refetching the JWKS:"; try
api $KC/admin/realms/kiosk/components/$OLDP | python3 -c "import json,sys; c=json.load(sys.stdin); c['config']['active']=['false']; print(json.dumps(c))" > $S/passive.json
echo "2. old provider passive: PUT $(api -o /dev/null -w '%{http_code}' -X PUT $KC/admin/realms/kiosk/components/$OLDP --data @$S/passive.json); JWKS: $(jwks); new tokens signed by kid $(kid $(tok) | cut -c1-8)"
$HERE/envoy.sh; try
echo "3. old provider deleted: DELETE $(api -o /dev/null -w '%{http_code}' -X DELETE $KC/admin/realms/kiosk/components/$OLDP); JWKS: $(jwks)"
echo " gateway with the JWKS of before:"; try
$HERE/envoy.sh; echo " gateway after refetching the JWKS:"; try
