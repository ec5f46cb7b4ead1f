//! The reference Java client (`kafka-clients` 4.3.1) through a sidecar with Istio's two
//! worker threads (two Wasm VMs), against real Apache Kafka 4.3.1: every record it had
//! acknowledged and delivered is counted under its topic's name, never `unknown`.
//!
//! The Java client is what most Kafka users run, and it is the client that shows the
//! race between workers: in Kafka 4.x it produces (v13) and fetches by topic id only, and
//! it sends Metadata on its bootstrap connection and Produce on another, which Envoy often
//! hands to the other worker within milliseconds. Each producer case is a fresh JVM, so
//! fresh connections; the repeated case runs the same producer ten times.
//!
//! Transactions: `kafka_produced_records_total` counts what the broker acknowledged,
//! aborted records included (the abort comes later, in an EndTxn naming no records);
//! `kafka_fetched_records_total` counts what a consumer was delivered, and a
//! `read_committed` consumer is never delivered aborted records (the broker stops at the
//! last stable offset and the client drops the aborted batches the response carries; the
//! filter drops them the same way, from the response's aborted transactions).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiosk_harness::components::envoy::Sidecar;
use kiosk_harness::paths;
use kiosk_harness::prometheus::scrape;
use kiosk_tests::{kafka_behind_sidecar_with, run_dir, ISTIO_CONCURRENCY};

/// A topic, the codec and delivery guarantee of its producer, how many records.
struct Case {
    topic: &'static str,
    codec: &'static str,
    mode: &'static str,
    records: usize,
}

const fn case(
    topic: &'static str,
    codec: &'static str,
    mode: &'static str,
    records: usize,
) -> Case {
    Case {
        topic,
        codec,
        mode,
        records,
    }
}

/// Every codec, each delivery guarantee.
const MATRIX: &[Case] = &[
    case("java.plain.none", "none", "plain", 300),
    case("java.idempotent.gzip", "gzip", "idempotent", 250),
    case("java.idempotent.snappy", "snappy", "idempotent", 180),
    case("java.idempotent.lz4", "lz4", "idempotent", 1500),
    case("java.idempotent.zstd", "zstd", "idempotent", 99),
    case("java.transactional.lz4", "lz4", "transactional", 400),
];

/// The producer case the race bit hardest (lz4, idempotent, Java's defaults), run again
/// and again into one topic.
const REPEATED: Case = case("java.repeated", "lz4", "idempotent", 150);

/// Records each transactional producer sends in the transaction it then aborts
/// (`JavaClients.ABORTED`).
const ABORTED: usize = 25;

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn java_client_matrix_exact_one_broker_two_workers() {
    let (sidecar, bootstrap, java, _kafka) =
        matrix("java-1-broker", 1, ISTIO_CONCURRENCY, MATRIX, 10);
    share_group(&sidecar, &bootstrap, &java, &MATRIX[1]);
}

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn java_client_matrix_exact_three_brokers_two_workers() {
    let _ = matrix("java-3-brokers", 3, ISTIO_CONCURRENCY, &MATRIX[3..], 3);
}

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn java_producer_exact_with_one_worker() {
    let _ = matrix("java-1-worker", 1, 1, &[], 3);
}

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn java_producer_exact_with_four_workers() {
    let _ = matrix("java-4-workers", 1, 4, &[], 5);
}

/// The Java program, compiled once per test run into `dir`.
struct Java {
    classes: PathBuf,
    libs: PathBuf,
    java: PathBuf,
    dir: PathBuf,
}

impl Java {
    fn compile(dir: &Path) -> Java {
        let java = paths::java().unwrap();
        let libs = paths::kafka_libs().unwrap();
        let classes = dir.join("java-classes");
        std::fs::create_dir_all(&classes).unwrap();
        let source = paths::root().join("tests/live/java/JavaClients.java");
        let out = Command::new(java.with_file_name("javac"))
            .arg("-d")
            .arg(&classes)
            .arg("-cp")
            .arg(format!("{}/*", libs.display()))
            .arg(&source)
            .output()
            .expect("javac (a JDK, Java 17 or newer)");
        assert!(
            out.status.success(),
            "javac failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Java {
            classes,
            libs,
            java,
            dir: dir.to_path_buf(),
        }
    }

    /// Run one command of the program; its `<word> <topic> <n>` lines.
    fn run(&self, name: &str, args: &[&str]) -> Vec<(String, String, usize)> {
        let mut java = Command::new(&self.java);
        java.arg("-cp")
            .arg(format!(
                "{}:{}/*",
                self.classes.display(),
                self.libs.display()
            ))
            .args(["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.dir.join("log4j2.properties").display()
            ))
            .arg("JavaClients")
            .args(args);
        let log = self.dir.join(format!("{name}.log"));
        kiosk_tests::run_client(&format!("Java client {name}"), java, &log)
    }
}

/// Run the producer `cases` and `repeats` runs of [`REPEATED`], consume everything
/// `read_committed`, and hold the sidecar's counts against what the client saw. Returns
/// the running sidecar, the bootstrap address, the Java program and the cluster (kept
/// running while the caller goes on).
fn matrix(
    test: &str,
    brokers: usize,
    concurrency: u32,
    cases: &[Case],
    repeats: usize,
) -> (Sidecar, String, Java, Running) {
    let one = kiosk_tests::one_cluster();
    let dir = run_dir(test).unwrap();
    std::fs::write(
        dir.join("log4j2.properties"),
        "rootLogger.level = WARN\nrootLogger.appenderRef.e.ref = E\nappender.e.type = Console\n\
         appender.e.name = E\nappender.e.target = SYSTEM_ERR\nappender.e.layout.type = PatternLayout\n\
         appender.e.layout.pattern = %p %m (%c)%n\n",
    )
    .unwrap();
    let java = Java::compile(&dir);
    let config = serde_json::json!({ "kiali": { "topic_namespace": "kafka" } });
    let (kafka, sidecar, bootstrap) =
        kafka_behind_sidecar_with(&dir, "checkout", brokers, config, concurrency)
            .expect("start Kafka and Envoy");

    let mut topics: Vec<&str> = cases.iter().map(|c| c.topic).collect();
    topics.push(REPEATED.topic);
    let mut create = vec!["create", bootstrap.as_str(), "3"];
    create.extend(&topics);
    java.run("create", &create);

    // What the client saw: acknowledged per topic, and aborted per topic.
    let mut acked: BTreeMap<String, usize> = BTreeMap::new();
    let mut aborted: BTreeMap<String, usize> = BTreeMap::new();
    let runs = cases.iter().chain(std::iter::repeat_n(&REPEATED, repeats));
    for (i, case) in runs.enumerate() {
        let records = case.records.to_string();
        let lines = java.run(
            &format!("produce-{i}-{}", case.topic),
            &[
                "produce", &bootstrap, case.topic, &records, case.codec, case.mode,
            ],
        );
        for (word, topic, n) in lines {
            let into = match word.as_str() {
                "acked" => &mut acked,
                "aborted" => &mut aborted,
                _ => continue,
            };
            *into.entry(topic).or_default() += n;
        }
        assert_eq!(
            acked.get(case.topic).copied().unwrap_or(0) % case.records,
            0
        );
    }
    for case in cases.iter().chain([&REPEATED]) {
        let runs = if case.topic == REPEATED.topic {
            repeats
        } else {
            1
        };
        let want = case.records * runs;
        assert_eq!(
            acked.get(case.topic),
            Some(&want),
            "acked of {}",
            case.topic
        );
        if case.mode == "transactional" {
            assert_eq!(aborted.get(case.topic), Some(&ABORTED));
        }
    }
    let expected: usize = acked.values().sum();
    let mut consume = vec![
        "consume",
        bootstrap.as_str(),
        "kiosk-java-group",
        "read_committed",
    ];
    let expected_arg = expected.to_string();
    consume.push(&expected_arg);
    consume.extend(&topics);
    let consumed: BTreeMap<String, usize> = java
        .run("consume", &consume)
        .into_iter()
        .map(|(_, topic, n)| (topic, n))
        .collect();
    assert_eq!(
        consumed, acked,
        "a read_committed consumer gets the committed records"
    );

    let s = kiosk_tests::stats_settled(&sidecar, &dir);
    let stat = |name: &str, labels: &[(&str, &str)]| scrape::sum(&s, name, labels);
    for (topic, &n) in &acked {
        let t = [("topic", topic.as_str())];
        let sent = n + aborted.get(topic).copied().unwrap_or(0);
        assert_eq!(
            stat("kafka_produced_records_total", &t),
            sent as f64,
            "produced records of {topic} (acknowledged, aborted included)"
        );
        assert_eq!(
            stat("kafka_fetched_records_total", &t),
            consumed[topic] as f64,
            "fetched records of {topic} (delivered to a read_committed consumer)"
        );
    }
    let unknown = [("topic", "unknown")];
    assert_eq!(stat("kafka_produced_records_total", &unknown), 0.0);
    assert_eq!(stat("kafka_fetched_records_total", &unknown), 0.0);
    assert_eq!(stat("kafka_decode_errors_total", &[]), 0.0);
    // Produce went by (kafka-clients 4.3.1 sends it as v13, topics by id only).
    assert!(stat("kafka_requests_total", &[("api", "produce")]) > 0.0);
    (
        sidecar,
        bootstrap,
        java,
        Running {
            _kafka: kafka,
            _one: one,
        },
    )
}

/// The cluster of a matrix, and the one-cluster lock, held until dropped.
struct Running {
    _kafka: kiosk_harness::components::kafka::Kafka,
    _one: std::sync::MutexGuard<'static, ()>,
}

/// A `KafkaShareConsumer` (KIP-932) reads `case`'s topic, explicitly acknowledging: every
/// record whose index ends in 0 rejected, in 3 released once (and accepted when delivered
/// again), the rest accepted. The sidecar's share series match what the client did, and
/// nothing of it counts as an ordinary consumer's fetch.
fn share_group(sidecar: &Sidecar, bootstrap: &str, java: &Java, case: &Case) {
    let before = scrape::parse(&sidecar.prometheus_text().unwrap());
    let t = [("topic", case.topic)];
    let fetched_before = scrape::sum(&before, "kafka_fetched_records_total", &t);
    let expected = case.records.to_string();
    let lines = java.run(
        "share",
        &[
            "share",
            bootstrap,
            "kiosk-java-share",
            &expected,
            case.topic,
        ],
    );
    let did: BTreeMap<String, usize> = lines.into_iter().map(|(w, _, n)| (w, n)).collect();
    let tenth = case.records.div_ceil(10);
    assert_eq!(did["rejected"], tenth, "{did:?}");
    assert_eq!(
        did["released"],
        case.records / 10 + usize::from(case.records % 10 > 3)
    );
    assert_eq!(did["accepted"] + did["rejected"], case.records, "{did:?}");
    assert_eq!(did["delivered"], case.records + did["released"], "{did:?}");

    let dir = java.dir.clone();
    let s = kiosk_tests::stats_settled(sidecar, &dir);
    let stat = |name: &str, labels: &[(&str, &str)]| scrape::sum(&s, name, labels);
    assert_eq!(
        stat("kafka_share_acquired_records_total", &t),
        did["delivered"] as f64,
        "records the share group handed the consumer, redeliveries included"
    );
    for (result, word) in [
        ("accept", "accepted"),
        ("release", "released"),
        ("reject", "rejected"),
    ] {
        let labels = [("topic", case.topic), ("result", result)];
        assert_eq!(
            stat("kafka_share_acknowledged_records_total", &labels),
            did[word] as f64,
            "{result} acknowledgements"
        );
    }
    assert_eq!(
        stat("kafka_fetched_records_total", &t),
        fetched_before,
        "a share consumer's records are not an ordinary fetch"
    );
    assert_eq!(
        stat(
            "kafka_share_acquired_records_total",
            &[("topic", "unknown")]
        ),
        0.0
    );
    assert!(stat("kafka_requests_total", &[("api", "share_fetch")]) > 0.0);
    assert_eq!(stat("kafka_requests_unknown_version_total", &[]), 0.0);
}
