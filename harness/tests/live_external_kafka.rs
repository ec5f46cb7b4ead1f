//! Live tier: `kiosk up --external-kafka`. A Kafka the mesh does not run (no sidecar, a
//! `SASL_SSL` listener with SCRAM-SHA-512 and its own CA, at `kafka.external.example:9096`),
//! two tenants each producing and consuming its own topic through its sidecars (the kiosk
//! filter doing SASL with the workload's KafkaUser, the sidecar originating TLS), and each
//! reaching for the other's topic and group. Checked here: the counts per topic in
//! Prometheus on both sides, the refusals counted per topic by the sidecars, the graph with
//! the external cluster's topic nodes and both tenants' edges; then a wrong CA for the
//! external cluster: the sidecar refuses the broker, counted, and no byte reaches the
//! broker in plaintext (read on the broker's side).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{eventually, run_dir, Mesh, ONE_MESH};
use kiosk_harness::mesh::read_state;
use kiosk_harness::prometheus::scrape;
use serde_json::Value;

const RECORDS: u64 = 400;
const TENANTS: [&str; 2] = ["tenant-a", "tenant-b"];
const EXTERNAL_CLUSTER: &str = "outbound|9096||kafka.external.example";
/// Envoy's stats port in a pod (Istio's 15090).
const STATS_PORT: u16 = 15090;

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn two_tenants_on_an_external_kafka_through_their_sidecars() {
    let _one = ONE_MESH.lock().unwrap_or_else(|e| e.into_inner());
    let home = run_dir("external-kafka");
    let records = RECORDS.to_string();
    let mesh = Mesh::up(
        &home,
        &[
            "--records",
            &records,
            "--external-kafka",
            // What this test is about needs none of these.
            "--ingress",
            "none",
            "--tracing",
            "none",
            "--schema-registry",
            "none",
        ],
    );
    each_tenant_counted_on_both_sides(&mesh);
    reaching_across_is_refused_and_counted(&mesh);
    the_graph_has_the_external_topics_and_both_tenants(&mesh);
    a_wrong_ca_refuses_the_broker_with_nothing_in_plaintext(&mesh);
    mesh.down();
}

fn each_tenant_counted_on_both_sides(mesh: &Mesh) {
    for tenant in TENANTS {
        let line = format!(
            "{tenant}: {RECORDS} records produced, {RECORDS} records consumed; no password, SASL or TLS setting"
        );
        assert!(mesh.printed.contains(&line), "{line}\n{}", mesh.printed);
    }
    let prom = mesh.prometheus();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for tenant in TENANTS {
            let topic = format!("{tenant}.orders");
            for (metric, workload) in [
                ("kafka_produced_records_total", format!("{tenant}-producer")),
                ("kafka_fetched_records_total", format!("{tenant}-consumer")),
            ] {
                let q = format!(
                    r#"sum({metric}{{namespace="{tenant}",workload="{workload}",topic="{topic}"}})"#
                );
                assert_eq!(prom.sum(&q).await.unwrap(), RECORDS as f64, "{q}");
            }
            // The filter authenticated every connection to the external cluster as the
            // workload's KafkaUser (SCRAM-SHA-512), none failed, none withheld.
            let q = format!(
                r#"sum(kafka_auth_total{{namespace="{tenant}",mechanism="SCRAM-SHA-512",result="success"}})"#
            );
            assert!(prom.sum(&q).await.unwrap() > 0.0, "{q}");
            let q = format!(r#"kafka_auth_total{{namespace="{tenant}",result!="success"}}"#);
            let others = prom.query(&q).await.unwrap();
            assert!(
                others.iter().all(|s| s.value == 0.0),
                "{q}: {:?}",
                others.iter().map(|s| (&s.labels, s.value)).collect::<Vec<_>>()
            );
            // No record of a tenant's sidecars on the other tenant's topics.
            let q = format!(
                r#"sum(kafka_produced_records_total{{namespace="{tenant}",topic!="{topic}"}} or kafka_fetched_records_total{{namespace="{tenant}",topic!="{topic}"}}) or vector(0)"#
            );
            assert_eq!(prom.sum(&q).await.unwrap(), 0.0, "{q}");
        }
    });
}

fn reaching_across_is_refused_and_counted(mesh: &Mesh) {
    for (tenant, other) in [("tenant-a", "tenant-b"), ("tenant-b", "tenant-a")] {
        for line in [
            format!("{tenant}-producer produces to {other}.orders: refused, TOPIC_AUTHORIZATION_FAILED"),
            format!("{tenant}-consumer consumes {other}.orders (group {tenant}.readers): refused, TOPIC_AUTHORIZATION_FAILED"),
            format!("{tenant}-consumer consumes {tenant}.orders in group {other}.readers: refused, GROUP_AUTHORIZATION_FAILED"),
        ] {
            assert!(mesh.printed.contains(&line), "{line}\n{}", mesh.printed);
        }
    }
    let prom = mesh.prometheus();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for (tenant, other) in [("tenant-a", "tenant-b"), ("tenant-b", "tenant-a")] {
            // Per topic, by the sidecar of the workload that reached across.
            for workload in ["producer", "consumer"] {
                let q = format!(
                    r#"sum(kafka_response_errors_total{{workload="{tenant}-{workload}",topic="{other}.orders",error="TOPIC_AUTHORIZATION_FAILED"}})"#
                );
                assert!(prom.sum(&q).await.unwrap() > 0.0, "{q}");
            }
            let q = format!(
                r#"sum(kafka_response_errors_total{{workload="{tenant}-consumer",error="GROUP_AUTHORIZATION_FAILED"}})"#
            );
            assert!(prom.sum(&q).await.unwrap() > 0.0, "{q}");
        }
    });
}

fn the_graph_has_the_external_topics_and_both_tenants(mesh: &Mesh) {
    let edges = mesh.graph_edges(300);
    for tenant in TENANTS {
        // The external cluster's topic nodes carry the ServiceEntry's namespace.
        let topic = format!("kafka-external/{tenant}.orders");
        for (source, dest) in [
            (format!("{tenant}/{tenant}-producer"), topic.clone()),
            (topic.clone(), format!("{tenant}/{tenant}-consumer")),
        ] {
            let found = edges
                .iter()
                .any(|e| (&e.source, &e.dest, e.protocol.as_str()) == (&source, &dest, "kafka"));
            assert!(found, "missing edge {source} -> {dest} in {edges:?}");
        }
        // Nothing from one tenant to the other's topics: refused requests carry no records.
        let other = TENANTS.iter().find(|t| **t != tenant).unwrap();
        let across = edges.iter().find(|e| {
            let (s, d) = (&e.source, &e.dest);
            s.starts_with(&format!("{tenant}/")) && d.contains(&format!("/{other}."))
                || s.contains(&format!("/{other}.")) && d.starts_with(&format!("{tenant}/"))
        });
        assert!(across.is_none(), "an edge across tenants: {across:?}");
    }
}

/// The platform put the wrong CA in tenant-b's Secret: the producer's sidecar, restarted
/// with it, must refuse the broker's certificate (counted in its cluster's TLS stats), the
/// app gets nothing, and the broker receives only TLS handshake records: no Kafka request,
/// no SASL exchange, no name or password in plaintext.
fn a_wrong_ca_refuses_the_broker_with_nothing_in_plaintext(mesh: &Mesh) {
    let workload = "tenant-b-producer";
    let sidecar = format!("envoy-{workload}");
    let network = mesh.state.network.as_ref().unwrap();
    let pod_ip = network.pod(workload).unwrap().ip;
    let run = &mesh.state.run_dir;

    // The CA file the sidecar's cluster trusts, replaced by another CA's.
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(run.join(format!("{sidecar}.json"))).unwrap(),
    )
    .unwrap();
    let ca_file = trusted_ca(&config, EXTERNAL_CLUSTER).expect("the external cluster's CA file");
    let wrong = kiosk_harness::components::mtls::MeshCa::generate_named(
        &run.join("certs/wrong-external-ca"),
        "kafka-external-ca",
    )
    .unwrap();
    let right = std::fs::read(&ca_file).unwrap();
    std::fs::write(&ca_file, wrong.root_pem()).unwrap();
    // SIGKILL: the supervisor restarts the sidecar with its configuration, as the kubelet
    // restarts a container, and the sidecar reads the CA again.
    let old_pid = pid_of(mesh, &sidecar);
    assert!(Command::new("kill")
        .args(["-KILL", &old_pid.to_string()])
        .status()
        .unwrap()
        .success());
    eventually("the sidecar restarted", Duration::from_secs(60), || {
        pid_of(mesh, &sidecar) != old_pid
            && kiosk_harness::http::get_at(pod_ip, STATS_PORT, "/stats/prometheus").is_ok()
    });

    // The broker's side: every TCP payload to its port, as its pod receives it.
    let payloads = run.join("external-broker-payloads.jsonl");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/tcp_payloads.py");
    let mut sniffer = mesh
        .in_pod("kafka-external-0")
        .arg("python3")
        .arg(&script)
        .arg("9096")
        .arg(&payloads)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(sniffer.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");

    let mut producer = kiosk_harness::components::java::command(
        &run.join("tenants"),
        Some(network.pod(workload).unwrap()),
    )
    .unwrap();
    producer
        .arg("org.apache.kafka.tools.ProducerPerformance")
        .args(["--topic", "tenant-b.orders", "--num-records", "5"])
        .args(["--record-size", "100", "--throughput", "-1"])
        .arg("--command-property")
        .arg("bootstrap.servers=kafka.external.example:9096")
        .arg(format!("client.id={workload}"))
        .args([
            "max.block.ms=8000",
            "request.timeout.ms=5000",
            "delivery.timeout.ms=8000",
        ]);
    let started = Instant::now();
    let out = producer.output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(run.join("tenants/wrong-ca-producer.log"), &said).unwrap();
    assert!(
        !said.contains(" 5 records sent") && !said.lines().any(|l| l.starts_with("5 records sent")),
        "records acknowledged through a sidecar with the wrong CA:\n{said}"
    );

    // Counted by the sidecar: its cluster to the external broker failed verification.
    let samples = || {
        let text = kiosk_harness::http::get_at(pod_ip, STATS_PORT, "/stats/prometheus").unwrap();
        scrape::parse(&text)
    };
    // Istio's `cluster_name` tag regex keeps a cluster name's dots only before
    // `.svc.cluster.local`: for the ServiceEntry's host it takes `outbound|9096||kafka` and
    // leaves `external.example` in the stat's name, as this sidecar (configured with
    // Istio's tags) does too.
    let failed_verification = || {
        samples()
            .iter()
            .filter(|s| s.name.ends_with("_ssl_fail_verify_error"))
            .filter(|s| {
                s.labels
                    .get("cluster_name")
                    .is_some_and(|c| c.starts_with("outbound|9096||"))
            })
            .map(|s| s.value)
            .sum::<f64>()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while failed_verification() == 0.0 {
        if Instant::now() > deadline {
            let ssl: Vec<String> = samples()
                .iter()
                .filter(|s| s.name.contains("ssl"))
                .map(|s| format!("{} {:?} {}", s.name, s.labels, s.value))
                .collect();
            panic!(
                "no failed verification counted; TLS stats:\n{}",
                ssl.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Nothing of Kafka passed: the filter never saw an upstream to authenticate to.
    assert_eq!(
        scrape::sum(&samples(), "kafka_auth_total", &[("result", "success")]),
        0.0,
        "SASL after the restart with the wrong CA"
    );
    std::thread::sleep(Duration::from_millis(500));
    let _ = sniffer.kill();
    let _ = sniffer.wait();

    let passwords: Vec<Vec<u8>> = std::fs::read_dir(run.join("secrets/kafka-external"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    let segments: Vec<(String, Vec<u8>)> = std::fs::read_to_string(&payloads)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let hex = v["hex"].as_str().unwrap();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (v["src"].as_str().unwrap().to_string(), bytes)
        })
        .collect();
    let from_sidecar: Vec<&(String, Vec<u8>)> = segments
        .iter()
        .filter(|(src, _)| src.starts_with(&format!("{pod_ip}:")))
        .collect();
    assert!(
        !from_sidecar.is_empty(),
        "the broker saw no connection from the sidecar in {:?}: the check would prove nothing",
        started.elapsed()
    );
    let mut first_of_connection = std::collections::BTreeSet::new();
    for (src, bytes) in &from_sidecar {
        if first_of_connection.insert(src.clone()) {
            // A TLS handshake record (ContentType 22, version 3.x): the ClientHello.
            assert_eq!(
                &bytes[..2],
                &[0x16, 0x03],
                "{src} began without TLS: {bytes:02x?}"
            );
        }
        for needle in [
            workload.as_bytes(),
            b"SCRAM-SHA-512".as_slice(),
            b"tenant-b.orders".as_slice(),
        ]
        .into_iter()
        .chain(passwords.iter().map(Vec::as_slice))
        {
            let found = bytes.windows(needle.len()).any(|w| w == needle);
            assert!(
                !found,
                "{src} sent {:?} in plaintext",
                String::from_utf8_lossy(needle)
            );
        }
    }
    std::fs::write(&ca_file, right).unwrap();
}

/// The `trusted_ca` file of cluster `name` in an Envoy bootstrap.
fn trusted_ca(config: &Value, name: &str) -> Option<String> {
    let clusters = config["static_resources"]["clusters"].as_array()?;
    let cluster = clusters.iter().find(|c| c["name"] == name)?;
    let context = &cluster["transport_socket"]["typed_config"]["common_tls_context"];
    context["validation_context"]["trusted_ca"]["filename"]
        .as_str()
        .map(str::to_string)
}

/// The pid `mesh.json` records for process `name`.
fn pid_of(mesh: &Mesh, name: &str) -> u32 {
    let state = read_state(&mesh.home).unwrap().expect("mesh.json");
    state
        .processes
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no process {name} in mesh.json"))
        .pid
}
