//! MongoDB authentication by the filter, in a real Envoy, against a real MongoDB-wire
//! server (SecantusDB) requiring authentication, an app's driver configured with a plain
//! URI (no user, no password, no TLS) in every case.
//!
//! - MONGODB-X509: the server requires TLS and client certificates too; the sidecar
//!   originates TLS with the workload's certificate and the filter sends `authenticate`.
//!   A certificate the server has no user for (refused by its `authenticate`, counted by
//!   the filter), one from another CA (refused in the TLS handshake, counted by Envoy's
//!   cluster) and a sidecar without TLS (counted by the filter) write nothing.
//! - SCRAM-SHA-256: a password user, the password in the sidecar's environment; a wrong
//!   password is refused; a sidecar without it lets the app through unauthenticated and
//!   the server refuses the write.
//!
//! Commands are counted by collection throughout.

use std::path::Path;
use std::time::Duration;

use kiosk_harness::components::envoy::{Protocol, Route, Sidecar, SidecarSpec, UpstreamTls};
use kiosk_harness::components::mongo::{self, MongoServer, MongoUser, ServerTls};
use kiosk_harness::components::mtls::{DnType, MeshCa};
use kiosk_harness::prometheus::scrape;
use kiosk_harness::{paths, ports};
use kiosk_tests::{run_dir, wait_flush};
use mongodb::bson::{doc, Document};
use serde_json::json;

const SERVER_NAME: &str = "mongodb.shop.svc.cluster.local";
const DOCUMENTS: u64 = 1000;

/// A sidecar for `workload` with one MongoDB listener in front of `upstream`, its
/// upstream leg secured by `tls`, the filter authenticating with MONGODB-X509.
fn mongodb_sidecar(dir: &Path, workload: &str, upstream: u16, tls: UpstreamTls) -> (Sidecar, u16) {
    let auth = json!({ "mechanism": "MONGODB-X509" });
    sidecar_with(dir, workload, upstream, tls, auth, Vec::new())
}

/// The same with the filter's `mongodb_auth` and the sidecar's environment given.
fn sidecar_with(
    dir: &Path,
    workload: &str,
    upstream: u16,
    tls: UpstreamTls,
    auth: serde_json::Value,
    env: Vec<(String, String)>,
) -> (Sidecar, u16) {
    // The test bed has no mesh mTLS: the server is allowed by its Envoy cluster.
    let mut auth = auth;
    if auth.get("upstreams").is_none() {
        auth["upstreams"] = json!({ "clusters": [format!("*||{SERVER_NAME}")] });
    }
    let listener = ports::free().unwrap();
    let routes =
        vec![Route::outbound(SERVER_NAME, listener, upstream, Protocol::MongoDb).with_tls(tls)];
    let spec = SidecarSpec {
        mongodb_plugin_config: json!({
            "protocol": "mongodb",
            "mongodb_auth": auth,
            "flush_interval_ms": 200,
        }),
        concurrency: 1,
        env,
        ..SidecarSpec::standalone(workload, "shop", routes).unwrap()
    };
    (Sidecar::start(spec, dir).unwrap(), listener)
}

fn stat(sidecar: &Sidecar, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape::sum(
        &scrape::parse(&sidecar.prometheus_text().unwrap()),
        name,
        labels,
    )
}

/// The app's client: the URI without security, as the chart gives it, through the
/// sidecar's listener; refusals surface within seconds.
async fn client(listener: u16) -> mongodb::Client {
    let uri = mongo::uri("127.0.0.1", listener) + "&serverSelectionTimeoutMS=4000&appname=checkout";
    assert!(!uri.contains('@') && !uri.contains("tls") && !uri.contains("ssl"));
    mongodb::Client::with_uri_str(&uri).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
async fn x509_by_the_filter_writes_through_and_refuses_what_the_server_does_not_know() {
    paths::filter_wasm().expect("run scripts/build-filter.sh first");
    let dir = run_dir("envoy_mongodb_auth").unwrap();
    let ca = MeshCa::generate_named(&dir.join("mongodb-ca"), "mongodb-ca").unwrap();
    let server = ca
        .issue_server("server", &[SERVER_NAME.to_string()])
        .unwrap();
    let tls = ServerTls {
        cert: server.chain.clone(),
        key: server.key.clone(),
        client_ca: ca.root_file(),
    };
    let port = ports::free().unwrap();
    let users = [MongoUser {
        name: "CN=checkout,OU=shop,O=kiosk".into(),
        database: "shop".into(),
        password: None,
    }];
    let _mongo = MongoServer::start(&dir, port, &users, Some(tls), None)
        .await
        .unwrap();
    let originate = |client| UpstreamTls::Originate {
        client: Some(client),
        ca: ca.root_file(),
        server_name: SERVER_NAME.into(),
    };

    // The workload whose certificate is a MongoDB user.
    let subject = |cn| {
        [
            (DnType::CommonName, cn),
            (DnType::OrganizationalUnitName, "shop"),
            (DnType::OrganizationName, "kiosk"),
        ]
    };
    let checkout = ca
        .issue_client("checkout", &subject("checkout"), None)
        .unwrap();
    let (sidecar, listener) = mongodb_sidecar(&dir, "checkout", port, originate(checkout));
    let orders = client(listener)
        .await
        .database("shop")
        .collection::<Document>("orders");
    let batch: Vec<Document> = (0..DOCUMENTS)
        .map(|i| doc! { "_id": format!("order-{i:04}"), "total": i as i64, "note": "x".repeat(64) })
        .collect();
    for chunk in batch.chunks(100) {
        orders
            .insert_many(chunk.to_vec())
            .await
            .expect("insert through the sidecar");
    }
    assert_eq!(orders.count_documents(doc! {}).await.unwrap(), DOCUMENTS);

    // Refused: a certificate of the same CA that names no user, a certificate of another
    // CA, and a sidecar that does not originate TLS at all.
    let intruder = ca
        .issue_client("intruder", &subject("intruder"), None)
        .unwrap();
    let other_ca = MeshCa::generate_named(&dir.join("other-ca"), "other-ca").unwrap();
    let stranger = other_ca
        .issue_client("stranger", &subject("checkout"), None)
        .unwrap();
    let refused = [
        ("intruder", originate(intruder)),
        ("stranger", originate(stranger)),
        ("plaintext", UpstreamTls::None),
    ];
    let mut refusing = Vec::new();
    for (workload, tls) in refused {
        let (sidecar, listener) = mongodb_sidecar(&dir, workload, port, tls);
        let collection = client(listener)
            .await
            .database("shop")
            .collection::<Document>("orders");
        let write = collection
            .insert_one(doc! { "_id": format!("from-{workload}") })
            .await;
        assert!(write.is_err(), "{workload}: the write was accepted");
        refusing.push((workload, sidecar));
    }
    assert_eq!(
        orders.count_documents(doc! {}).await.unwrap(),
        DOCUMENTS,
        "the refused workloads wrote nothing"
    );
    assert!(orders
        .find_one(doc! { "_id": "from-intruder" })
        .await
        .unwrap()
        .is_none());

    wait_flush();
    std::thread::sleep(Duration::from_millis(500));
    let ok = [("mechanism", "MONGODB-X509"), ("result", "success")];
    assert!(stat(&sidecar, "mongodb_auth_total", &ok) >= 1.0);
    assert_eq!(
        stat(&sidecar, "mongodb_auth_total", &[("result", "failure")]),
        0.0
    );
    let inserts = [("command", "insert"), ("collection", "shop.orders")];
    assert_eq!(
        stat(&sidecar, "mongodb_commands_total", &inserts),
        10.0,
        "one insert per 100 documents"
    );
    let counts = [("command", "aggregate"), ("collection", "shop.orders")];
    assert!(
        stat(&sidecar, "mongodb_commands_total", &counts) >= 2.0,
        "count_documents is an aggregate"
    );
    assert_eq!(stat(&sidecar, "mongodb_decode_errors_total", &[]), 0.0);
    assert_eq!(stat(&sidecar, "mongodb_command_errors_total", &[]), 0.0);

    let failures = |sidecar: &Sidecar, reason: &str| {
        stat(
            sidecar,
            "mongodb_auth_total",
            &[("result", "failure"), ("reason", reason)],
        )
    };
    for (workload, sidecar) in &refusing {
        assert_eq!(stat(sidecar, "mongodb_auth_total", &ok), 0.0, "{workload}");
        let commands = [("command", "insert")];
        assert_eq!(
            stat(sidecar, "mongodb_commands_total", &commands),
            0.0,
            "{workload}"
        );
        let text = sidecar.prometheus_text().unwrap();
        match *workload {
            // mongod has no user for its subject: refused by the authenticate we sent.
            "intruder" => {
                assert!(failures(sidecar, "AuthenticationFailed") >= 1.0, "{text}");
            }
            // The server refuses the certificate in the TLS handshake: Envoy never reads
            // the app's bytes (tcp_proxy waits for the upstream), so the refusal is
            // counted by Envoy's cluster, not by the filter.
            "stranger" => {
                let failed = stat(sidecar, "envoy_cluster_upstream_cx_connect_fail", &[]);
                assert!(failed >= 1.0, "{text}");
                assert_eq!(stat(sidecar, "mongodb_auth_total", &[]), 0.0, "{text}");
            }
            // Plaintext to a TLS port: the server drops the connection while our
            // authenticate waits for its reply.
            _ => assert!(failures(sidecar, "closed_during_exchange") >= 1.0, "{text}"),
        }
    }
    println!(
        "x509: {DOCUMENTS} documents through the sidecar; refused: {}",
        refusing
            .iter()
            .map(|(w, _)| *w)
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// SCRAM-SHA-256 by the filter: a password user, the password in the sidecar's
/// environment (a WasmPlugin `vmConfig.env` HOST entry), the app's URI without it; a
/// wrong password is refused and writes nothing; a sidecar without the credential lets
/// the app through unauthenticated (counted `no_credential`) and the server refuses its
/// write (`Unauthorized`, counted by command).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
async fn scram_sha256_by_the_filter_with_the_password_in_the_sidecar_only() {
    paths::filter_wasm().expect("run scripts/build-filter.sh first");
    let dir = run_dir("envoy_mongodb_scram").unwrap();
    let port = ports::free().unwrap();
    let password = kiosk_harness::components::kafka::random_password().unwrap();
    let users = [MongoUser {
        name: "checkout".into(),
        database: "shop".into(),
        password: Some(password.clone()),
    }];
    let _mongo = MongoServer::start(&dir, port, &users, None, None)
        .await
        .unwrap();
    let scram = json!({ "mechanism": "SCRAM-SHA-256" });
    let env = |user: &str, password: &str| {
        vec![
            ("KIOSK_MONGODB_USERNAME".to_string(), user.to_string()),
            ("KIOSK_MONGODB_PASSWORD".to_string(), password.to_string()),
        ]
    };
    let (sidecar, listener) = sidecar_with(
        &dir,
        "checkout",
        port,
        UpstreamTls::None,
        scram.clone(),
        env("checkout", &password),
    );
    let orders = client(listener)
        .await
        .database("shop")
        .collection::<Document>("orders");
    let batch: Vec<Document> = (0..300)
        .map(|i| doc! { "_id": i, "v": "x".repeat(32) })
        .collect();
    orders
        .insert_many(batch)
        .await
        .expect("insert through the sidecar");
    assert_eq!(orders.count_documents(doc! {}).await.unwrap(), 300);

    let (wrong, wrong_listener) = sidecar_with(
        &dir,
        "wrong",
        port,
        UpstreamTls::None,
        scram.clone(),
        env("checkout", "not-the-password"),
    );
    let (bare, bare_listener) = sidecar_with(
        &dir,
        "bare",
        port,
        UpstreamTls::None,
        scram.clone(),
        Vec::new(),
    );
    // The credential may go only to a peer proving MongoDB's mesh identity: this
    // server proves none, so the filter sends nothing of the credential to it.
    let mut to_mesh_mongodb = scram;
    to_mesh_mongodb["upstreams"] = json!({ "principals": ["cluster.local/ns/shop/sa/mongodb"] });
    let (elsewhere, elsewhere_listener) = sidecar_with(
        &dir,
        "elsewhere",
        port,
        UpstreamTls::None,
        to_mesh_mongodb,
        env("checkout", &password),
    );
    for listener in [wrong_listener, bare_listener, elsewhere_listener] {
        let c = client(listener)
            .await
            .database("shop")
            .collection::<Document>("orders");
        assert!(c.insert_one(doc! { "_id": "intruder" }).await.is_err());
    }
    assert_eq!(
        orders.count_documents(doc! {}).await.unwrap(),
        300,
        "nothing else was written"
    );

    wait_flush();
    std::thread::sleep(Duration::from_millis(500));
    let ok = [("mechanism", "SCRAM-SHA-256"), ("result", "success")];
    assert!(stat(&sidecar, "mongodb_auth_total", &ok) >= 1.0);
    assert_eq!(
        stat(&sidecar, "mongodb_auth_total", &[("result", "failure")]),
        0.0
    );
    assert_eq!(
        stat(
            &sidecar,
            "mongodb_commands_total",
            &[("command", "insert"), ("collection", "shop.orders")]
        ),
        1.0
    );
    let refused = [("result", "failure"), ("reason", "AuthenticationFailed")];
    assert!(
        stat(&wrong, "mongodb_auth_total", &refused) >= 1.0,
        "{}",
        wrong.prometheus_text().unwrap()
    );
    assert_eq!(
        stat(&wrong, "mongodb_commands_total", &[("command", "insert")]),
        0.0
    );
    let skipped = [("result", "skipped"), ("reason", "no_credential")];
    assert!(stat(&bare, "mongodb_auth_total", &skipped) >= 1.0);
    let withheld = [("result", "skipped"), ("reason", "upstream_not_allowed")];
    assert!(stat(&elsewhere, "mongodb_auth_total", &withheld) >= 1.0);
    let tried = stat(&elsewhere, "mongodb_auth_total", &[("result", "success")])
        + stat(&elsewhere, "mongodb_auth_total", &[("result", "failure")]);
    assert_eq!(tried, 0.0, "no exchange toward an upstream not allowed");
    let unauthorized = [("command", "insert"), ("error", "Unauthorized")];
    assert!(
        stat(&bare, "mongodb_command_errors_total", &unauthorized) >= 1.0,
        "{}",
        bare.prometheus_text().unwrap()
    );
    for (name, s) in [("checkout", &sidecar), ("wrong", &wrong), ("bare", &bare)] {
        let text = s.prometheus_text().unwrap();
        assert!(
            !text.contains(&password),
            "{name}: the password in its stats"
        );
    }
}
