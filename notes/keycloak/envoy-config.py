#!/usr/bin/env python3
"""Write an Envoy bootstrap whose HTTP filters are what harness/src/istiod.rs renders for the
bundle's RequestAuthentication + AuthorizationPolicy (jwt_authn as convertToEnvoyJwtConfig
writes it, JWKS inline; RBAC requestPrincipals ["*"]), with a direct 200 in place of the
REST entry. usage: envoy-config.py ISSUER AUDIENCE JWKS_URL LISTEN_PORT ADMIN_PORT > envoy.json"""
import json, sys, urllib.request
issuer, audience, jwks_url, port, admin = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
jwks = urllib.request.urlopen(jwks_url).read().decode()
F = "envoy.filters.http.jwt_authn"
def claim(name):
    return {"metadata": {"filter": F, "path": [{"key": "payload"}, {"key": name}],
            "value": {"string_match": {"safe_regex": {"regex": ".+"}}}}}
jwt = {"name": F, "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
    "providers": {"origins-0": {
        "issuer": issuer, "audiences": [audience], "forward": False,
        "payload_in_metadata": "payload",
        "normalize_payload_in_metadata": {"space_delimited_claims": ["permission", "scope"]},
        "local_jwks": {"inline_string": jwks}}},
    "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
        {"provider_name": "origins-0"}, {"allow_missing": {}}]}}}],
    "bypass_cors_preflight": True}}
rbac = {"name": "envoy.filters.http.rbac", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
    "rules": {"policies": {"ns[istio-ingress]-policy[kiosk-rest-require-jwt]-rule[0]": {
        "permissions": [{"and_rules": {"rules": [{"any": True}]}}],
        "principals": [{"and_ids": {"ids": [{"and_ids": {"ids": [claim("iss"), claim("sub")]}}]}}]}}},
    "shadow_rules_stat_prefix": "istio_dry_run_allow_"}}
router = {"name": "envoy.filters.http.router", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
hcm = {"name": "envoy.filters.network.http_connection_manager", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "stat_prefix": "outbound_0.0.0.0_80", "http_filters": [jwt, rbac, router],
    "route_config": {"virtual_hosts": [{"name": "*:80", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "passed\n"}}}]}]}}}
print(json.dumps({
    "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
    "static_resources": {"listeners": [{"name": "0.0.0.0_80", "address": {"socket_address": {
        "address": "127.0.0.1", "port_value": port}}, "filter_chains": [{"filters": [hcm]}]}]}}, indent=1))
