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

mod common;

use std::path::Path;
use std::time::Duration;

use common::{eventually, kiosk_output, run_dir, texts_outside, Mesh, ONE_MESH};
use kiosk_services::issuer::{now, Claims, SigningKey};
use serde_json::Value;

const RECORDS: u64 = 200;
const URL: &str = "http://istio-ingressgateway.istio-ingress.svc.cluster.local/topics/events";
const ISSUER: &str = "http://kiosk-issuer.pipeline.svc.cluster.local:8080";
/// The REST entry's own Service (the KafkaBridge's kiosk-bridge-service:8080 in the bundle).
const REST_URL: &str = "http://rest.pipeline.svc.cluster.local:8080/topics/events";

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

fn claims(lifetime: u64) -> Claims {
    Claims::new(ISSUER, "kiosk-rest", "probe", Duration::from_secs(lifetime))
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
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn the_ingress_requires_a_valid_jwt_and_counts_every_refusal() {
    let _one = ONE_MESH.lock().unwrap_or_else(|e| e.into_inner());
    let home = run_dir("ingress_jwt");
    let mesh = Mesh::up(&home, &["--records", &RECORDS.to_string()]);
    let run = mesh.state.run_dir.clone();
    assert!(
        mesh.printed
            .contains("records to http://istio-ingressgateway.istio-ingress.svc.cluster.local"),
        "{}",
        mesh.printed
    );
    assert!(
        mesh.printed
            .contains("producer: access token for client producer"),
        "the producer got no token: {}",
        mesh.printed
    );

    // The JWKS the gateway inlined is the issuer's, whose key the run made.
    let key = SigningKey::from_pem(
        &std::fs::read_to_string(run.join("issuer-secrets/signing-key.pem")).unwrap(),
    )
    .unwrap();
    let config = std::fs::read_to_string(run.join("envoy-istio-ingressgateway.json")).unwrap();
    let config: Value = serde_json::from_str(&config).unwrap();
    let inline = config.to_string();
    assert!(
        inline.contains(key.kid()),
        "the gateway's JWKS lacks the issuer's key"
    );
    assert!(
        !inline.contains("\"d\""),
        "a private key member in the JWKS"
    );

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

    // Refused: no token (403, RBAC), and five bad tokens (401, jwt_authn).
    let (code, said) = post(&mesh, None, "probe-no-token");
    assert_eq!(code, 403, "no token: {said}");
    assert!(said.contains("RBAC"), "{said}");
    let other = SigningKey::generate().unwrap();
    let expired = Claims {
        iat: now() - 3600,
        nbf: now() - 3600,
        exp: now() - 1800,
        ..claims(60)
    };
    // Envoy's jwt_authn answers 401 to a token it cannot verify and 403 to a verified token
    // for another audience ("Audiences in Jwt are not allowed").
    let bad: Vec<(&str, String, u16)> = vec![
        ("not a JWT", "Bearer not.a.jwt".into(), 401),
        (
            "expired",
            format!("Bearer {}", key.sign(&expired).unwrap()),
            401,
        ),
        (
            "signed by another key",
            format!("Bearer {}", other.sign_as(key.kid(), &claims(60)).unwrap()),
            401,
        ),
        (
            "another issuer",
            format!(
                "Bearer {}",
                key.sign(&Claims {
                    iss: "http://elsewhere".into(),
                    ..claims(60)
                })
                .unwrap()
            ),
            401,
        ),
        (
            "another audience",
            format!(
                "Bearer {}",
                key.sign(&Claims {
                    aud: "someone-else".into(),
                    ..claims(60)
                })
                .unwrap()
            ),
            403,
        ),
    ];
    for (i, (what, header, expected)) in bad.iter().enumerate() {
        let (code, said) = post(&mesh, Some(header), &format!("probe-bad-{i}"));
        assert_eq!(code, *expected, "{what}: {said}");
        assert!(said.contains("Jwt"), "{what}: {said}");
    }
    eventually(
        "the refusals in Prometheus",
        Duration::from_secs(20),
        || sum(&mesh, JWT_DENIED) == bad.len() as f64 && sum(&mesh, RBAC_DENIED) == 1.0,
    );
    // Nothing of them was produced.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(sum(&mesh, PRODUCED), produced, "a refused request produced");

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
    let valid = format!("Bearer {}", key.sign(&claims(60)).unwrap());
    let mut direct = 0.0;
    for pod in ["producer", "verify"] {
        for (what, header) in [("no token", None), ("a valid token", Some(valid.as_str()))] {
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
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        sum(&mesh, PRODUCED),
        produced,
        "a request past the gateway produced"
    );

    // A token of the run's issuer passes the gateway, and its record is produced.
    let (code, said) = post(&mesh, Some(&valid), "probe-valid");
    assert_eq!(code, 200, "a valid token: {said}");
    assert!(said.contains("offsets"), "{said}");
    eventually(
        "the valid request's record",
        Duration::from_secs(20),
        || sum(&mesh, PRODUCED) == produced + 1.0,
    );

    // The issuer refuses a wrong client secret, and says so as RFC 6749 does.
    let out = mesh
        .in_pod("producer")
        .args(["curl", "-s", "-w", "\n%{http_code}", "-u", "producer:wrong"])
        .args(["--data", "grant_type=client_credentials"])
        .arg(format!("{ISSUER}/token"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.ends_with("\n401") && text.contains("invalid_client"),
        "{text}"
    );

    // The graph: the producer reaches the gateway in plain HTTP (a gateway has no sidecar,
    // so no auto mTLS), the gateway reaches the REST entry over Istio mTLS.
    let (ok, graph, said) = kiosk_output(&home, &["graph", "--json", "--duration", "300"]);
    assert!(ok, "{said}");
    let graph: Value = serde_json::from_str(&graph).unwrap();
    let edge = |s: &str, d: &str| {
        graph["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                format!(
                    "{}/{}",
                    e["source"]["namespace"].as_str().unwrap(),
                    e["source"]["name"].as_str().unwrap()
                ) == s
                    && format!(
                        "{}/{}",
                        e["dest"]["namespace"].as_str().unwrap(),
                        e["dest"]["name"].as_str().unwrap()
                    ) == d
            })
            .cloned()
            .unwrap_or_else(|| panic!("no edge {s} -> {d} in {graph}"))
    };
    assert_eq!(
        edge("pipeline/producer", "istio-ingress/istio-ingressgateway")["secure"],
        false
    );
    assert_eq!(
        edge("istio-ingress/istio-ingressgateway", "pipeline/rest")["secure"],
        true
    );
    assert_eq!(
        edge("pipeline/producer", "pipeline/kiosk-issuer")["protocol"],
        "http"
    );

    // No token and no client secret in any log, file of the run or metric.
    let secret = std::fs::read_to_string(run.join("issuer-secrets/clients/producer")).unwrap();
    let metrics = reqwest::blocking_get_text(&format!(
        "{}/federate?match[]={{job=\"envoy-sidecars\"}}",
        mesh.state.prometheus.as_deref().unwrap()
    ));
    let mut scanned = 0;
    for (name, text) in texts(&run)
        .into_iter()
        .chain([("metrics".to_string(), metrics)])
    {
        scanned += 1;
        assert!(
            !text.contains(secret.trim()),
            "{name} holds the client secret"
        );
        assert!(!looks_like_a_jwt(&text), "{name} holds a JWT");
        for (_, header, _) in &bad {
            assert!(
                !text.contains(header.trim_start_matches("Bearer ")),
                "{name} holds a token"
            );
        }
    }
    assert!(scanned > 15, "only {scanned} files scanned");
    mesh.down();
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
            "issuer-secrets",
            "connect-secrets",
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
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn a_jwt_is_recognised_in_text() {
    let key = SigningKey::generate().unwrap();
    let token = key.sign(&claims(60)).unwrap();
    assert!(looks_like_a_jwt(&format!(
        "Authorization: Bearer {token}\n"
    )));
    assert!(!looks_like_a_jwt("eyJ is not enough"));
}
