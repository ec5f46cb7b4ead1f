//! Live tier: the REST entry behind an ingress gateway that requires a JWT (issue 18). A
//! real `kiosk up` (the default `--ingress jwt`): the producer gets a token from the issuer
//! and posts through the gateway; then, from the producer's pod, requests without a token
//! get 403 (RBAC), with a bad, expired, wrongly signed or foreign-issuer token 401 and with a
//! foreign-audience token 403 (jwt_authn), nothing of them is produced, and Prometheus counts every refusal from the gateway's
//! jwt_authn and RBAC stats; requests from the producer's and the verifier's pods straight to
//! the REST entry's Service (past the gateway, over their sidecars' mTLS) get 403 from the REST
//! entry's sidecar (RBAC: the bundle's kiosk-rest-access, issue 28), with or without a token,
//! and produce nothing; a token of the run's issuer gets 200 through the gateway. No token or
//! client secret reaches a log or a metric.

//! Live tier: the REST entry behind an ingress gateway that requires a JWT (issues 18, 30). A
//! real `kiosk up` (the default `--ingress jwt`) with Keycloak as the identity provider: the
//! producer gets a token from Keycloak's realm and posts through the gateway; then, from the
//! producer's pod, requests without a token get 403 (RBAC), with a malformed, wrongly signed,
//! foreign-issuer or expired token 401 and with a foreign-audience token 403 (jwt_authn),
//! every one of them a real Keycloak token (the foreign issuer: Keycloak's master realm; the
//! foreign audience and the expired one: clients the test adds through the admin API),
//! nothing of them is produced, and Prometheus counts every refusal from the gateway's
//! jwt_authn and RBAC stats; requests from the producer's and the verifier's pods straight to
//! the REST entry's Service (past the gateway, over their sidecars' mTLS) get 403 from the REST
//! entry's sidecar (RBAC: the bundle's kiosk-rest-access, issue 28), with or without a token,
//! and produce nothing; a token of the realm gets 200 through the gateway. Keycloak's signing
//! key is rotated through its admin API as a platform would (new key published first, then
//! signing, the old one passive, then removed): tokens of the new key pass once the gateway
//! fetched the JWKS again (as istiod does, here every 3 s), tokens of the old key until it is
//! removed. No token, client secret or admin password reaches a log or a metric.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::{eventually, run_dir, texts_outside, Mesh, ONE_MESH};
use serde_json::{json, Value};

const RECORDS: u64 = 200;
const URL: &str = "http://istio-ingressgateway.istio-ingress.svc.cluster.local/topics/events";
/// The bundle's RequestAuthentication's issuer: Keycloak's realm `kiosk`.
const ISSUER: &str = "http://keycloak.pipeline.svc.cluster.local:8080/realms/kiosk";
const TOKEN_PATH: &str = "/protocol/openid-connect/token";
/// The REST entry's own Service (the KafkaBridge's kiosk-bridge-service:8080 in the bundle).
const REST_URL: &str = "http://rest.pipeline.svc.cluster.local:8080/topics/events";
/// How often the gateway fetches the JWKS again in this test (istiod: 20 minutes).
const JWKS_REFRESH_SECS: u64 = 3;
/// Envoy's jwt_authn accepts a token until `exp` + 60 s (its default clock skew, which
/// istiod does not change) and compares whole seconds.
const SKEW_SECS: u64 = 62;

/// POST one record through the gateway from the producer's pod (through its sidecar, as
/// the producer posts); `authorization` is the header's value, passed in a file so that no
/// token is on a command line. Returns the HTTP status and the answer.
fn post(mesh: &Mesh, authorization: Option<&str>, key: &str) -> (u16, String) {
    post_from(mesh, "producer", URL, authorization, key)
}

/// POST one record to `url` from `pod` (through its sidecar).
fn post_from(
    mesh: &Mesh,
    pod: &str,
    url: &str,
    authorization: Option<&str>,
    key: &str,
) -> (u16, String) {
    let dir = mesh.home.join("probes");
    std::fs::create_dir_all(&dir).unwrap();
    let headers = dir.join(format!("{key}.headers"));
    let mut text = "Content-Type: application/vnd.kafka.json.v2+json\n".to_string();
    if let Some(a) = authorization {
        text.push_str(&format!("Authorization: {a}\n"));
    }
    std::fs::write(&headers, text).unwrap();
    let body = format!(r#"{{"records":[{{"key":"{key}","value":{{"probe":true}}}}]}}"#);
    let out = mesh
        .in_pod(pod)
        .args([
            "curl",
            "-s",
            "-m",
            "20",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
        ])
        .arg("-H")
        .arg(format!("@{}", headers.display()))
        .args(["--data", &body, url])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&headers);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (answer, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), answer.to_string())
}

/// Keycloak, reached from the host at its pod's address (its `--hostname` pins the issuer
/// whatever address is asked), as an operator's tooling would.
struct Keycloak {
    base: String,
    admin_password: String,
    runtime: tokio::runtime::Runtime,
    http: ::reqwest::Client,
}

impl Keycloak {
    fn of(mesh: &Mesh) -> Keycloak {
        let ip = mesh
            .state
            .network
            .as_ref()
            .unwrap()
            .pod("keycloak")
            .unwrap()
            .ip;
        let run = &mesh.state.run_dir;
        Keycloak {
            base: format!("http://{ip}:8080"),
            admin_password: std::fs::read_to_string(run.join("idp-secrets/admin-password"))
                .unwrap(),
            runtime: tokio::runtime::Runtime::new().unwrap(),
            http: ::reqwest::Client::new(),
        }
    }

    /// A token request to `realm`'s token endpoint: status and answer.
    fn token_request(
        &self,
        realm: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (u16, Value) {
        let url = format!("{}/realms/{realm}{TOKEN_PATH}", self.base);
        self.runtime.block_on(async {
            let mut req = self.http.post(url).form(form);
            if let Some((user, password)) = basic {
                req = req.basic_auth(user, Some(password));
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(Value::Null))
        })
    }

    /// A client-credentials access token of realm `kiosk`.
    fn client_token(&self, client: &str, secret: &str) -> String {
        let (status, answer) = self.token_request(
            "kiosk",
            &[("grant_type", "client_credentials")],
            Some((client, secret)),
        );
        assert_eq!(status, 200, "{client}'s token: {answer}");
        answer["access_token"].as_str().unwrap().to_string()
    }

    /// A token of the master realm (the bootstrap admin's): real, signed by Keycloak, for
    /// another issuer. Its admin tokens live 60 s, so each admin call gets a new one.
    fn admin_token(&self) -> String {
        let (status, answer) = self.token_request(
            "master",
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "admin"),
                ("password", self.admin_password.trim()),
            ],
            None,
        );
        assert_eq!(status, 200, "admin token: {answer}");
        answer["access_token"].as_str().unwrap().to_string()
    }

    /// An admin REST API call on realm `kiosk`: status, answer (JSON or null) and Location.
    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value, Option<String>) {
        let url = format!("{}/admin/realms/kiosk{path}", self.base);
        let token = self.admin_token();
        self.runtime.block_on(async {
            let method = ::reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut req = self.http.request(method, url).bearer_auth(token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(String::from);
            (status, resp.json().await.unwrap_or(Value::Null), location)
        })
    }

    /// Add a confidential client-credentials client whose tokens are for `audience`,
    /// living `lifespan` seconds; its secret.
    fn add_client(&self, client: &str, audience: &str, lifespan: u64) -> String {
        let secret = format!("{client}-{}", now_nanos());
        let (status, said, _) = self.admin(
            "POST",
            "/clients",
            Some(json!({
                "clientId": client,
                "secret": secret,
                "publicClient": false,
                "serviceAccountsEnabled": true,
                "standardFlowEnabled": false,
                "directAccessGrantsEnabled": false,
                "fullScopeAllowed": false,
                "defaultClientScopes": ["basic"],
                "attributes": { "access.token.lifespan": lifespan.to_string() },
                "protocolMappers": [{
                    "name": "audience",
                    "protocol": "openid-connect",
                    "protocolMapper": "oidc-audience-mapper",
                    "config": { "included.custom.audience": audience, "access.token.claim": "true" }
                }]
            })),
        );
        assert_eq!(status, 201, "adding client {client}: {said}");
        secret
    }

    /// The realm's RSA signing key providers: (component id, kid, priority, active).
    fn rsa_keys(&self) -> Vec<(String, String, i64, bool)> {
        let (status, keys, _) = self.admin("GET", "/keys", None);
        assert_eq!(status, 200, "{keys}");
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["algorithm"] == "RS256")
            .map(|k| {
                (
                    k["providerId"].as_str().unwrap().to_string(),
                    k["kid"].as_str().unwrap().to_string(),
                    k["providerPriority"].as_i64().unwrap_or(0),
                    k["status"] == "ACTIVE",
                )
            })
            .collect()
    }

    /// Change one config entry of key provider `id` (GET, change, PUT, as the console does).
    fn set_provider(&self, id: &str, key: &str, value: &str) {
        let (status, mut component, _) = self.admin("GET", &format!("/components/{id}"), None);
        assert_eq!(status, 200, "{component}");
        component["config"][key] = json!([value]);
        let (status, said, _) = self.admin("PUT", &format!("/components/{id}"), Some(component));
        assert_eq!(status, 204, "setting {key}={value} on {id}: {said}");
    }

    /// The kids of the realm's JWKS as anyone fetches it.
    fn jwks_kids(&self) -> Vec<String> {
        let url = format!("{}/realms/kiosk/protocol/openid-connect/certs", self.base);
        let jwks: Value = self.runtime.block_on(async {
            self.http
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        kids(&jwks)
    }
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A JWT's header or payload (part 0 or 1), unverified.
fn jwt_part(token: &str, part: usize) -> Value {
    let text = token.split('.').nth(part).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The keys of the JWKS the gateway's jwt_authn has inlined now.
fn gateway_keys(run: &Path) -> Vec<Value> {
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("envoy-istio-ingressgateway.json")).unwrap(),
    )
    .unwrap();
    let mut found = Vec::new();
    walk(&config, &mut |v| {
        if let Some(text) = v["local_jwks"]["inline_string"].as_str() {
            let jwks: Value = serde_json::from_str(text).unwrap();
            found.extend(jwks["keys"].as_array().unwrap().iter().cloned());
        }
    });
    found
}

/// The kids of the JWKS the gateway has inlined now.
fn gateway_kids(run: &Path) -> Vec<String> {
    kids(&json!({ "keys": gateway_keys(run) }))
}

/// Whether the gateway's Envoy is serving: after a JWKS change it restarts with the new
/// configuration, written before the new process listens.
fn gateway_ready(mesh: &Mesh) -> bool {
    let net = mesh.state.network.as_ref().unwrap();
    let ip = net.pod("istio-ingressgateway").unwrap().ip;
    kiosk_harness::http::get_at(ip, kiosk_harness::components::pod::STATS_PORT, "/ready")
        .is_ok_and(|b| b.contains("LIVE"))
}

fn walk(v: &Value, f: &mut dyn FnMut(&Value)) {
    f(v);
    match v {
        Value::Object(m) => m.values().for_each(|c| walk(c, f)),
        Value::Array(a) => a.iter().for_each(|c| walk(c, f)),
        _ => {}
    }
}

/// Sum of a PromQL query now.
fn sum(mesh: &Mesh, q: &str) -> f64 {
    let prom = mesh.prometheus();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(prom.sum(q))
        .unwrap()
}

const PRODUCED: &str = r#"sum(kafka_produced_records_total{topic="events",local_workload="rest"})"#;
const JWT_DENIED: &str =
    r#"sum(envoy_http_jwt_authn_denied{http_conn_manager_prefix="outbound_0.0.0.0_80"})"#;
const RBAC_DENIED: &str = r#"sum(envoy_http_rbac{authz_enforce_result="denied"})"#;
const RBAC_ALLOWED: &str = r#"sum(envoy_http_rbac{authz_enforce_result="allowed"})"#;

#[test]
#[ignore = "live: starts real Envoy, Kafka, Keycloak and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn the_ingress_requires_a_valid_jwt_and_counts_every_refusal() {
    let _one = ONE_MESH.lock().unwrap_or_else(|e| e.into_inner());
    let home = run_dir("ingress_jwt");
    let refresh = JWKS_REFRESH_SECS.to_string();
    let mesh = Mesh::up(
        &home,
        &[
            "--records",
            &RECORDS.to_string(),
            "--jwks-refresh",
            &refresh,
        ],
    );
    let run = mesh.state.run_dir.clone();
    assert!(
        mesh.printed
            .contains("records to http://istio-ingressgateway.istio-ingress.svc.cluster.local"),
        "{}",
        mesh.printed
    );
    assert!(
        mesh.printed.contains(&format!(
            "producer: access token for client producer from {ISSUER}{TOKEN_PATH}"
        )),
        "the producer got no token from Keycloak: {}",
        mesh.printed
    );
    let kc = Keycloak::of(&mesh);

    // The clients of the cases the bundle's realm does not hold, added as an operator would:
    // tokens for another audience, and tokens that live one second. The latter's token is
    // taken first: Envoy refuses it only a minute after it expired.
    let short_secret = kc.add_client("short-lived", "kiosk-rest", 1);
    let expired = kc.client_token("short-lived", &short_secret);
    let expired_at = jwt_part(&expired, 1)["exp"].as_u64().unwrap();
    let outsider_secret = kc.add_client("outsider", "someone-else", 300);
    let outsider = kc.client_token("outsider", &outsider_secret);
    let producer_secret =
        std::fs::read_to_string(run.join("idp-secrets/clients/producer")).unwrap();
    let valid = kc.client_token("producer", producer_secret.trim());
    let claims = jwt_part(&valid, 1);
    assert_eq!(claims["iss"], ISSUER, "{claims}");
    assert_eq!(claims["aud"], "kiosk-rest", "{claims}");
    assert_eq!(claims["sub"], "service-account-producer", "{claims}");
    assert_eq!(jwt_part(&valid, 0)["alg"], "RS256");

    // The JWKS the gateway inlined is Keycloak's, public keys only.
    let published = kc.jwks_kids();
    assert_eq!(
        gateway_kids(&run),
        published,
        "the gateway's JWKS is not Keycloak's"
    );
    for key in gateway_keys(&run) {
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                key.get(private).is_none(),
                "a private key member in the JWKS: {key}"
            );
        }
    }

    // Every record the producer sent went through the gateway and was produced (with the
    // two it sends for the mirror to dead-letter).
    eventually(
        "the producer's records in Prometheus",
        Duration::from_secs(30),
        || sum(&mesh, PRODUCED) >= (RECORDS + 2) as f64,
    );
    let produced = sum(&mesh, PRODUCED);
    let allowed = sum(&mesh, RBAC_ALLOWED);
    assert!(
        allowed >= (RECORDS / 20) as f64,
        "{allowed} requests allowed"
    );
    assert_eq!(sum(&mesh, JWT_DENIED), 0.0);
    assert_eq!(sum(&mesh, RBAC_DENIED), 0.0);

    // Refused: no token (403, RBAC), and bad tokens (401 or 403, jwt_authn).
    let (code, said) = post(&mesh, None, "probe-no-token");
    assert_eq!(code, 403, "no token: {said}");
    assert!(said.contains("RBAC"), "{said}");
    // A producer token's header and claims under another token's signature (same key).
    let grafted = {
        let (signed, _) = valid.rsplit_once('.').unwrap();
        let (_, signature) = outsider.rsplit_once('.').unwrap();
        format!("{signed}.{signature}")
    };
    let master = kc.admin_token();
    assert_eq!(
        jwt_part(&master, 1)["iss"],
        ISSUER.replace("/kiosk", "/master")
    );
    // Envoy's jwt_authn answers 401 to a token it cannot verify and 403 to a verified token
    // for another audience ("Audiences in Jwt are not allowed").
    let mut bad: Vec<(&str, String, u16, &str)> = vec![
        (
            "not a JWT",
            "Bearer not.a.jwt".into(),
            401,
            "Jwt header is an invalid JSON",
        ),
        (
            "signed by another token's signature",
            format!("Bearer {grafted}"),
            401,
            "Jwt verification fails",
        ),
        (
            "another issuer (the master realm)",
            format!("Bearer {master}"),
            401,
            "Jwt issuer is not configured",
        ),
        (
            "another audience",
            format!("Bearer {outsider}"),
            403,
            "Audiences in Jwt are not allowed",
        ),
    ];
    for (i, (what, header, expected, why)) in bad.iter().enumerate() {
        let (code, said) = post(&mesh, Some(header), &format!("probe-bad-{i}"));
        assert_eq!(code, *expected, "{what}: {said}");
        assert!(said.contains(why), "{what}: {said}");
    }

    // Straight to the REST entry, past the gateway (issue 28): from the producer's and the
    // verifier's pods, through their sidecars (Istio mTLS with their own identities), without
    // a token and with a valid one: the REST entry's sidecar refuses each (403, RBAC: the
    // bundle's AuthorizationPolicy kiosk-rest-access lets only the ingress gateway's identity
    // post), counts it, and nothing is produced.
    let rest_denied = || {
        let ip = mesh.state.network.as_ref().unwrap().pod("rest").unwrap().ip;
        let stats = kiosk_harness::http::get_at(ip, 15090, "/stats/prometheus").unwrap();
        kiosk_harness::prometheus::scrape::parse(&stats)
            .iter()
            .filter(|s| {
                s.name.contains("rbac")
                    && (s.name.ends_with("denied")
                        || s.labels.get("authz_enforce_result").map(String::as_str)
                            == Some("denied"))
            })
            .map(|s| s.value)
            .sum::<f64>()
    };
    let before = rest_denied();
    let bearer = format!("Bearer {valid}");
    let mut direct = 0.0;
    for pod in ["producer", "verify"] {
        for (what, header) in [("no token", None), ("a valid token", Some(bearer.as_str()))] {
            let (code, said) =
                post_from(&mesh, pod, REST_URL, header, &format!("probe-direct-{pod}"));
            assert_eq!(
                code, 403,
                "{pod} straight to the REST entry with {what}: {said}"
            );
            assert!(
                said.contains("RBAC: access denied"),
                "{pod}, {what}: {said}"
            );
            direct += 1.0;
        }
    }
    assert_eq!(
        rest_denied(),
        before + direct,
        "the REST entry's sidecar counts its refusals"
    );

    // A token of the realm passes the gateway, and its record is produced.
    let (code, said) = post(&mesh, Some(&bearer), "probe-valid");
    assert_eq!(code, 200, "a valid token: {said}");
    assert!(said.contains("offsets"), "{said}");
    eventually(
        "the valid request's record",
        Duration::from_secs(20),
        || sum(&mesh, PRODUCED) == produced + 1.0,
    );

    // Keycloak refuses a wrong client secret (from the producer's pod, through its sidecar,
    // as the producer asks). Keycloak says `unauthorized_client` where RFC 6749 5.2 would
    // say `invalid_client`.
    let out = mesh
        .in_pod("producer")
        .args(["curl", "-s", "-w", "\n%{http_code}", "-u", "producer:wrong"])
        .args(["--data", "grant_type=client_credentials"])
        .arg(format!("{ISSUER}{TOKEN_PATH}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.ends_with("\n401") && text.contains("unauthorized_client"),
        "{text}"
    );

    // The expired token, once Envoy's clock skew is past.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::thread::sleep(Duration::from_secs(
        (expired_at + SKEW_SECS).saturating_sub(now),
    ));
    let header = format!("Bearer {expired}");
    let (code, said) = post(&mesh, Some(&header), "probe-expired");
    assert_eq!(code, 401, "expired: {said}");
    assert!(said.contains("Jwt is expired"), "expired: {said}");
    bad.push(("expired", header, 401, "Jwt is expired"));
    eventually(
        "the refusals in Prometheus",
        Duration::from_secs(20),
        || sum(&mesh, JWT_DENIED) == bad.len() as f64 && sum(&mesh, RBAC_DENIED) == 1.0,
    );
    // Nothing of them, nor of the requests past the gateway, was produced.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        sum(&mesh, PRODUCED),
        produced + 1.0,
        "a refused request produced"
    );

    // The graph: the producer reaches the gateway and Keycloak in plain HTTP (neither has a
    // sidecar, so no auto mTLS), the gateway reaches the REST entry over Istio mTLS.
    let edges = mesh.graph_edges(300);
    let edge = |s: &str, d: &str| {
        edges
            .iter()
            .find(|e| e.source == s && e.dest == d)
            .unwrap_or_else(|| panic!("no edge {s} -> {d} in {edges:?}"))
            .clone()
    };
    assert!(!edge("pipeline/producer", "istio-ingress/istio-ingressgateway").secure);
    assert!(edge("istio-ingress/istio-ingressgateway", "pipeline/rest").secure);
    assert_eq!(
        edge("pipeline/producer", "pipeline/keycloak").protocol,
        "http"
    );

    rotate_signing_key(&mesh, &kc, &valid);

    // No token, client secret or admin password in any log, file of the run or metric.
    let metrics = reqwest::blocking_get_text(&format!(
        "{}/federate?match[]={{job=\"envoy-sidecars\"}}",
        mesh.state.prometheus.as_deref().unwrap()
    ));
    let secrets = [
        producer_secret.trim(),
        kc.admin_password.trim(),
        &short_secret,
        &outsider_secret,
    ];
    let mut scanned = 0;
    for (name, text) in texts(&run)
        .into_iter()
        .chain([("metrics".to_string(), metrics)])
    {
        scanned += 1;
        for secret in secrets {
            assert!(!text.contains(secret), "{name} holds a secret");
        }
        assert!(!looks_like_a_jwt(&text), "{name} holds a JWT");
        for (_, header, _, _) in &bad {
            assert!(
                !text.contains(header.trim_start_matches("Bearer ")),
                "{name} holds a token"
            );
        }
    }
    assert!(scanned > 15, "only {scanned} files scanned");
    mesh.down();
}

/// Key rotation as a platform does it with Keycloak (which signs at once with a new active
/// provider of the highest priority): publish the new key first (lower priority), wait for the
/// gateway to fetch the JWKS, then let it sign; make the old key passive, then remove it.
/// `old` is a token of the old key.
fn rotate_signing_key(mesh: &Mesh, kc: &Keycloak, old: &str) {
    let run = &mesh.state.run_dir;
    let old_kid = jwt_part(old, 0)["kid"].as_str().unwrap().to_string();
    let before = kc.rsa_keys();
    let (old_provider, _, old_priority, _) = before
        .iter()
        .find(|(_, kid, _, _)| *kid == old_kid)
        .cloned()
        .unwrap_or_else(|| panic!("no provider signs with {old_kid}: {before:?}"));
    let (status, realm, _) = kc.admin("GET", "", None);
    assert_eq!(status, 200, "{realm}");
    let (status, said, location) = kc.admin(
        "POST",
        "/components",
        Some(json!({
            "name": "rsa-rotated",
            "providerId": "rsa-generated",
            "providerType": "org.keycloak.keys.KeyProvider",
            "parentId": realm["id"],
            "config": {
                "priority": [(old_priority - 50).to_string()],
                "enabled": ["true"], "active": ["true"],
                "algorithm": ["RS256"], "keySize": ["2048"]
            }
        })),
    );
    assert_eq!(status, 201, "adding a key provider: {said}");
    let new_provider = location.unwrap().rsplit('/').next().unwrap().to_string();
    let new_kid = kc
        .rsa_keys()
        .into_iter()
        .find(|(p, _, _, _)| *p == new_provider)
        .map(|(_, kid, _, _)| kid)
        .unwrap();
    let producer_secret =
        std::fs::read_to_string(run.join("idp-secrets/clients/producer")).unwrap();
    let token_kid = |t: &str| jwt_part(t, 0)["kid"].as_str().unwrap().to_string();

    // Published, not yet signing: the gateway fetches it within its refresh interval.
    assert!(kc.jwks_kids().contains(&new_kid));
    let fresh = kc.client_token("producer", producer_secret.trim());
    assert_eq!(token_kid(&fresh), old_kid, "the lower-priority key signed");
    eventually(
        "the gateway's JWKS with the new key",
        Duration::from_secs(30),
        || gateway_kids(run).contains(&new_kid) && gateway_ready(mesh),
    );

    // Signing with the new key: its tokens pass at once, the old key's still pass.
    kc.set_provider(&new_provider, "priority", &(old_priority + 100).to_string());
    let new = kc.client_token("producer", producer_secret.trim());
    assert_eq!(token_kid(&new), new_kid, "the new key does not sign");
    let (code, said) = post(mesh, Some(&format!("Bearer {new}")), "probe-new-key");
    assert_eq!(code, 200, "a token of the new key: {said}");
    kc.set_provider(&old_provider, "active", "false");
    std::thread::sleep(Duration::from_secs(2 * JWKS_REFRESH_SECS + 1));
    let (code, said) = post(
        mesh,
        Some(&format!("Bearer {old}")),
        "probe-old-key-passive",
    );
    assert_eq!(code, 200, "a token of the old, passive key: {said}");

    // The old key removed (after its tokens' lifetime, on a real platform): once the gateway
    // fetched the JWKS, its tokens are refused, the new key's pass.
    let (status, said, _) = kc.admin("DELETE", &format!("/components/{old_provider}"), None);
    assert_eq!(status, 204, "removing the old key: {said}");
    assert!(!kc.jwks_kids().contains(&old_kid));
    eventually(
        "the gateway's JWKS without the old key",
        Duration::from_secs(30),
        || !gateway_kids(run).contains(&old_kid) && gateway_ready(mesh),
    );
    let (code, said) = post(
        mesh,
        Some(&format!("Bearer {old}")),
        "probe-old-key-removed",
    );
    assert_eq!(code, 401, "a token of the removed key: {said}");
    assert!(
        said.contains("Jwks doesn't have key to match kid"),
        "{said}"
    );
    let (code, said) = post(mesh, Some(&format!("Bearer {new}")), "probe-new-key-after");
    assert_eq!(
        code, 200,
        "a token of the new key after the rotation: {said}"
    );
}

/// Three base64url parts, the first two JSON objects (`eyJ`), separated by dots.
fn looks_like_a_jwt(text: &str) -> bool {
    text.match_indices("eyJ").any(|(i, _)| {
        let rest: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        let parts: Vec<&str> = rest.split('.').collect();
        parts.len() >= 3 && parts[1].starts_with("eyJ") && parts[2].len() > 20
    })
}

/// Every file of the run but the data stores and the secrets themselves.
fn texts(run: &Path) -> Vec<(String, String)> {
    texts_outside(
        run,
        &[
            "data",
            "secantus-data",
            "prometheus-data",
            "idp-secrets",
            "connect-secrets",
            // Keycloak's home: its H2 database holds the client secrets (as a data store),
            // lib/ and themes/ are links to the distribution; its log is keycloak.log.
            "keycloak",
        ],
    )
}

mod reqwest {
    /// A GET's body (the federation endpoint), without a runtime of the test's own.
    pub fn blocking_get_text(url: &str) -> String {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async { ::reqwest::get(url).await.unwrap().text().await.unwrap() })
    }
}

#[test]
fn a_jwt_is_recognised_in_text() {
    // A token of the shape Keycloak issues (RS256 header, claims, a 342-character signature).
    let part = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let token = format!(
        "{}.{}.{}",
        part(json!({"alg": "RS256", "typ": "JWT", "kid": "k"})),
        part(json!({"iss": ISSUER, "sub": "service-account-producer"})),
        "s".repeat(342)
    );
    assert!(looks_like_a_jwt(&format!(
        "Authorization: Bearer {token}\n"
    )));
    assert!(!looks_like_a_jwt("eyJ is not enough"));
}
