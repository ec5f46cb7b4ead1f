//! MongoDB authentication by the filter, in a real Envoy, against a real MongoDB-wire
//! server (SecantusDB) requiring TLS, client certificates and authentication, its users
//! X.509 identities: a driver configured with a plain URI (no user, no password, no TLS)
//! writes and reads through a sidecar that originates TLS with the workload's certificate
//! while the filter sends MONGODB-X509's `authenticate`; a certificate the server has no
//! user for (refused by its `authenticate`, counted by the filter), a certificate from
//! another CA (refused in the TLS handshake, counted by Envoy's cluster) and a sidecar
//! without TLS (counted by the filter) write nothing; commands are counted by collection.

use std::path::Path;
use std::time::Duration;

use kiosk_harness::components::envoy::{Protocol, Route, Sidecar, SidecarSpec, UpstreamTls};
use kiosk_harness::components::mongo::{self, MongoServer, ServerTls, X509User};
use kiosk_harness::components::mtls::MeshCa;
use kiosk_harness::{paths, ports, prom};
use kiosk_tests::{run_dir, wait_flush};
use mongodb::bson::{doc, Document};
use serde_json::json;

const SERVER_NAME: &str = "mongodb.shop.svc.cluster.local";
const DOCUMENTS: u64 = 1000;

/// A sidecar for `workload` with one MongoDB listener in front of `upstream`, its
/// upstream leg secured by `tls`, the filter authenticating with MONGODB-X509.
fn mongodb_sidecar(dir: &Path, workload: &str, upstream: u16, tls: UpstreamTls) -> (Sidecar, u16) {
    let listener = ports::free().unwrap();
    let spec = SidecarSpec {
        workload: workload.into(),
        namespace: "shop".into(),
        app: workload.into(),
        admin_port: ports::free().unwrap(),
        routes: vec![
            Route::outbound(SERVER_NAME, listener, upstream, Protocol::MongoDb).with_tls(tls),
        ],
        plugin_config: json!({}),
        mongodb_plugin_config: json!({
            "protocol": "mongodb",
            "mongodb_auth": { "mechanism": "MONGODB-X509" },
            "flush_interval_ms": 200,
        }),
        wasm: paths::filter_wasm().unwrap(),
        concurrency: 1,
        pod: None,
        env: Vec::new(),
    };
    (Sidecar::start(spec, dir).unwrap(), listener)
}

fn stat(sidecar: &Sidecar, name: &str, labels: &[(&str, &str)]) -> f64 {
    prom::sum(
        &prom::parse(&sidecar.prometheus_text().unwrap()),
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
async fn x509_by_the_filter_writes_through_and_refuses_what_the_server_does_not_know() {
    paths::filter_wasm().expect("run scripts/build-filter.sh first");
    let dir = run_dir("envoy_mongodb_x509").unwrap();
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
    let users = [X509User {
        subject: "CN=checkout".into(),
        database: "shop".into(),
    }];
    let _mongo = MongoServer::start(&dir, port, &users, Some(tls), None)
        .await
        .unwrap();
    let originate = |client| UpstreamTls::Originate {
        client,
        ca: ca.root_file(),
        server_name: SERVER_NAME.into(),
    };

    // The workload whose certificate is a MongoDB user.
    let checkout = ca.issue_user("checkout", "checkout", None).unwrap();
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
    let intruder = ca.issue_user("intruder", "intruder", None).unwrap();
    let other_ca = MeshCa::generate_named(&dir.join("other-ca"), "other-ca").unwrap();
    let stranger = other_ca.issue_user("stranger", "checkout", None).unwrap();
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
