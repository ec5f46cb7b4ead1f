//! Kafka clients other than Java's through a sidecar with Istio's two worker threads (two
//! Wasm VMs), against real Apache Kafka 4.3.1: every record a client had acknowledged and
//! delivered is counted under its topic's name, never `unknown`. Built like
//! `envoy_java_clients.rs`: one program per client (`tests/live/go/franz`,
//! `tests/live/python/kafka_python_client.py`) prints what the client saw, and the
//! sidecar's counts are held against it.
//!
//! franz-go (v1.22.3, built by `scripts/setup.sh`) produces (v13) and fetches by topic id
//! against Kafka 4.x, and it was seen to hit the race between workers (Metadata on one
//! connection, Produce on another that the other worker serves: records counted under
//! `unknown`). Each producer case is a fresh process, so fresh connections; the repeated
//! case runs the same producer ten times into one topic. The programs' `create` sends no
//! Metadata naming the topics, so the sidecar learns each id from the producer's own
//! Metadata, as for an app: against the filter before the fix (ids shared between workers
//! at the next tick) this test counted 2,380 of franz-go's 3,829 records `unknown` with
//! one broker and 752 with three.
//!
//! kafka-python 3.0.12 (PyPI, in `.venv`) is checked against one broker with the codecs it
//! has without extra packages. It produces (v9 at most) and fetches (v12 at most) by
//! topic name, so it never meets the id path; it stands for clients that name topics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use kiosk_harness::components::kafka::Kafka;
use kiosk_harness::paths;
use kiosk_harness::prometheus::scrape;
use kiosk_tests::{kafka_behind_sidecar_with, run_dir, ISTIO_CONCURRENCY};

/// A topic, the codec of its producer, how many records.
struct Case {
    topic: &'static str,
    codec: &'static str,
    records: usize,
}

const fn case(topic: &'static str, codec: &'static str, records: usize) -> Case {
    Case {
        topic,
        codec,
        records,
    }
}

/// Every codec franz-go has, each with its default (idempotent) producer.
const FRANZ: &[Case] = &[
    case("franz.none", "none", 300),
    case("franz.gzip", "gzip", 250),
    case("franz.snappy", "snappy", 180),
    case("franz.lz4", "lz4", 1500),
    case("franz.zstd", "zstd", 99),
];

/// franz-go's producer run again and again into one topic.
const FRANZ_REPEATED: Case = case("franz.repeated", "lz4", 150);

/// The codecs kafka-python 3.0.12 has without extra packages (gzip is the standard
/// library's; snappy, lz4 and zstd need python-snappy, lz4, zstandard).
const PYTHON: &[Case] = &[
    case("python.none", "none", 300),
    case("python.gzip", "gzip", 250),
];

const PYTHON_REPEATED: Case = case("python.repeated", "gzip", 150);

/// Fresh producer processes of the repeated case.
const REPEATS: usize = 10;

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn franz_go_matrix_exact_one_broker_two_workers() {
    matrix(
        "franz-1-broker",
        &Client::franz(),
        1,
        FRANZ,
        &FRANZ_REPEATED,
        REPEATS,
    );
}

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn franz_go_matrix_exact_three_brokers_two_workers() {
    matrix(
        "franz-3-brokers",
        &Client::franz(),
        3,
        FRANZ,
        &FRANZ_REPEATED,
        REPEATS,
    );
}

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn kafka_python_exact_one_broker_two_workers() {
    matrix(
        "kafka-python-1-broker",
        &Client::python(),
        1,
        PYTHON,
        &PYTHON_REPEATED,
        3,
    );
}

/// A client program: the command that runs it, and the words before its arguments.
struct Client {
    name: &'static str,
    program: PathBuf,
    prefix: Vec<PathBuf>,
}

impl Client {
    /// The franz-go program `scripts/setup.sh` built (`$KIOSK_FRANZ` overrides), refused
    /// when built from other sources than the repository's.
    fn franz() -> Client {
        let program = paths::franz().unwrap();
        if std::env::var_os("KIOSK_FRANZ").is_none() {
            let built = program.with_file_name("src");
            let source = paths::root().join("tests/live/go/franz");
            for file in ["main.go", "go.mod", "go.sum"] {
                assert!(
                    std::fs::read(built.join(file)).ok() == std::fs::read(source.join(file)).ok(),
                    "{} was built from another {file} than tests/live/go/franz's: run scripts/setup.sh",
                    program.display()
                );
            }
        }
        Client {
            name: "franz-go",
            program,
            prefix: Vec::new(),
        }
    }

    /// kafka-python in the project's `.venv` (`scripts/setup.sh`).
    fn python() -> Client {
        let program = paths::root().join(".venv/bin/python");
        let check = Command::new(&program)
            .args(["-c", "import kafka; print(kafka.__version__)"])
            .output()
            .expect(".venv/bin/python (run scripts/setup.sh)");
        assert!(
            check.status.success(),
            "kafka-python is not in .venv: run scripts/setup.sh ({})",
            String::from_utf8_lossy(&check.stderr)
        );
        Client {
            name: "kafka-python",
            program,
            prefix: vec![paths::root().join("tests/live/python/kafka_python_client.py")],
        }
    }

    /// Run one command of the program; its `<word> <topic> <n>` lines. Its output is kept
    /// in `<dir>/<log>.log`.
    fn run(&self, dir: &Path, log: &str, args: &[&str]) -> Vec<(String, String, usize)> {
        let mut command = Command::new(&self.program);
        command.args(&self.prefix).args(args);
        let what = format!("{} {log} ({})", self.name, self.program.display());
        kiosk_tests::run_client(&what, command, &dir.join(format!("{log}.log")))
    }
}

/// Run the producer `cases` once each and `repeated` `repeats` times, each a fresh
/// process, consume everything in one consumer group, and hold the sidecar's counts
/// against what the client saw.
fn matrix(
    test: &str,
    client: &Client,
    brokers: usize,
    cases: &[Case],
    repeated: &Case,
    repeats: usize,
) {
    let _one = kiosk_tests::one_cluster();
    let started = Instant::now();
    let dir = run_dir(test).unwrap();
    let config = serde_json::json!({ "kiali": { "topic_namespace": "kafka" } });
    let (_kafka, sidecar, bootstrap): (Kafka, _, _) =
        kafka_behind_sidecar_with(&dir, "checkout", brokers, config, ISTIO_CONCURRENCY)
            .expect("start Kafka and Envoy");

    let mut topics: Vec<&str> = cases.iter().map(|c| c.topic).collect();
    topics.push(repeated.topic);
    let mut create = vec!["create", bootstrap.as_str(), "3"];
    create.extend(&topics);
    client.run(&dir, "create", &create);

    // What the client saw acknowledged, per topic.
    let mut acked: BTreeMap<String, usize> = BTreeMap::new();
    let runs = cases.iter().chain(std::iter::repeat_n(repeated, repeats));
    for (i, case) in runs.enumerate() {
        let records = case.records.to_string();
        let lines = client.run(
            &dir,
            &format!("produce-{i}-{}", case.topic),
            &["produce", &bootstrap, case.topic, &records, case.codec],
        );
        for (word, topic, n) in lines {
            if word == "acked" {
                *acked.entry(topic).or_default() += n;
            }
        }
    }
    for case in cases.iter().chain([repeated]) {
        let runs = if case.topic == repeated.topic {
            repeats
        } else {
            1
        };
        assert_eq!(
            acked.get(case.topic),
            Some(&(case.records * runs)),
            "acked of {}",
            case.topic
        );
    }

    let expected = acked.values().sum::<usize>().to_string();
    let group = format!("kiosk-{}-group", client.name);
    let mut consume = vec!["consume", bootstrap.as_str(), group.as_str(), &expected];
    consume.extend(&topics);
    let consumed: BTreeMap<String, usize> = client
        .run(&dir, "consume", &consume)
        .into_iter()
        .filter(|(word, _, _)| word == "consumed")
        .map(|(_, topic, n)| (topic, n))
        .collect();
    assert_eq!(consumed, acked, "the consumer group gets every record");

    let s = kiosk_tests::stats_settled(&sidecar, &dir);
    // (+ 0.0: an empty sum is -0.0)
    let stat = |name: &str, labels: &[(&str, &str)]| scrape::sum(&s, name, labels) + 0.0;
    let unknown = [("topic", "unknown")];
    let (produced_unknown, fetched_unknown) = (
        stat("kafka_produced_records_total", &unknown),
        stat("kafka_fetched_records_total", &unknown),
    );
    // Every topic's figures before any assertion, so a failure shows them all.
    let mut wrong = Vec::new();
    for (topic, &n) in &acked {
        let t = [("topic", topic.as_str())];
        let produced = stat("kafka_produced_records_total", &t);
        let fetched = stat("kafka_fetched_records_total", &t);
        if produced != n as f64 || fetched != consumed[topic] as f64 {
            wrong.push(format!(
                "{topic}: produced {produced} (acked {n}), fetched {fetched} (consumed {})",
                consumed[topic]
            ));
        }
    }
    assert!(
        wrong.is_empty() && produced_unknown == 0.0 && fetched_unknown == 0.0,
        "{} through {ISTIO_CONCURRENCY} workers, {brokers} broker(s): {}; topic=\"unknown\": \
         produced {produced_unknown}, fetched {fetched_unknown} (stats in {})",
        client.name,
        wrong.join("; "),
        dir.join("stats.prom").display()
    );
    assert_eq!(stat("kafka_decode_errors_total", &[]), 0.0);
    // franz-go opens each connection with ApiVersions at its own highest version (v5,
    // kmsg 1.15.1); Kafka 4.3.1 knows 0-4, answers UNSUPPORTED_VERSION and the client asks
    // again at v4 (the broker's ApiVersions handshake). The filter, whose layouts are
    // 4.3.1's, counts the probe as an unknown version, rightly; nothing else may be one.
    let probes = stat(
        "kafka_requests_unknown_version_total",
        &[("api", "api_versions")],
    );
    assert!(2.0 * probes <= stat("kafka_requests_total", &[("api", "api_versions")]));
    assert_eq!(
        stat("kafka_requests_unknown_version_total", &[]),
        probes,
        "requests of a version Kafka 4.3.1 does not define, other than the ApiVersions probe"
    );
    assert!(stat("kafka_requests_total", &[("api", "produce")]) > 0.0);
    assert!(stat("kafka_requests_total", &[("api", "fetch")]) > 0.0);
    eprintln!(
        "{test}: {} records in {} topics, {} producer runs, exact, none unknown ({:.0} s)",
        acked.values().sum::<usize>(),
        acked.len(),
        cases.len() + repeats,
        started.elapsed().as_secs_f64()
    );
}
