//! Connection set-up time with and without the filter's SASL, against Apache Kafka 4.3.1.
//! Each connection is an app's first steps, raw frames encoded with `kafka-protocol`: TCP
//! connect, ApiVersions v3 and its response, Metadata v12 and its response, then close; it
//! is timed from the connect to the last byte of the Metadata response. The filter starts
//! SASL at the first request after ApiVersions, so the Metadata response waits for
//! SaslHandshake and SaslAuthenticate (SCRAM: two round trips and PBKDF2 over the salt the
//! broker sends; PLAIN: one round trip).
//!
//! One broker, one JVM for every case: the client listeners `scram` and `plain` require
//! SASL (SCRAM-SHA-512 and PLAIN enabled), the platform listener is PLAINTEXT. Cases:
//! - `no SASL`: a sidecar with the filter observing only, to the PLAINTEXT listener;
//! - `SCRAM-SHA-512` and `PLAIN`: a sidecar whose filter authenticates with the credential
//!   in its environment, to a SASL listener;
//! - `direct`: no sidecar, to the PLAINTEXT listener (reference).
//!
//! Each Envoy has one worker. The cases are interleaved (one connection of each per round,
//! the order rotating) after a warm-up, KIOSK_BENCH_CONNECTIONS (200) connections each.
//! Prints p50, p99 and mean per case and the cost SASL adds to `no SASL` as a markdown
//! table; `--markdown FILE` also writes it. Checks from the sidecars' stats that every
//! connection authenticated (or, observing only, decoded without error) before printing.
//! Not a test: nothing here asserts a time.

use std::net::SocketAddr;
use std::time::Duration;

use common::{arg, percentile, run_on, sidecar, sidecar_with, wanted, FirstSteps};
use kiosk_filter::act::sasl::Mechanism;
use kiosk_harness::components::envoy::{Protocol, Sidecar};
use kiosk_harness::components::kafka::{Kafka, KafkaSpec, SaslListener};
use kiosk_harness::prometheus::scrape;
use kiosk_harness::{paths, ports};
use serde_json::json;

mod common;

const USER: &str = "bench";
const PASSWORD: &str = "bench-only-secret";
/// Connections per case before the timed ones (JIT, Envoy's and the VM's first use).
const WARM_UP: usize = 20;

/// Timed connections per case: KIOSK_BENCH_CONNECTIONS, 200 by default.
fn connections() -> usize {
    std::env::var("KIOSK_BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

struct Case {
    name: &'static str,
    address: SocketAddr,
    sidecar: Option<Sidecar>,
    /// `kafka_auth_total{mechanism}` the sidecar must count, one success per connection.
    mechanism: Option<&'static str>,
    micros: Vec<f64>,
}

/// p50, p99, mean (µs).
fn summary(micros: &[f64]) -> (f64, f64, f64) {
    let mut sorted = micros.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    (percentile(&sorted, 0.5), percentile(&sorted, 0.99), mean)
}

fn ms(micros: f64) -> String {
    format!("{:.2} ms", micros / 1000.0)
}

fn added(micros: f64) -> String {
    format!("{:+.2} ms", micros / 1000.0)
}

/// The figures mean something only if the sidecars did what each case says: every
/// connection authenticated with the case's mechanism and none failed, or (observing only)
/// no SASL and no decode error. Panics otherwise.
fn check(cases: &[Case], per_case: usize) {
    // The filter flushes its counters every second.
    std::thread::sleep(Duration::from_millis(1500));
    for case in cases {
        let Some(sidecar) = &case.sidecar else {
            continue;
        };
        let samples = sidecar.prometheus().unwrap();
        let count = |name: &str, labels: &[(&str, &str)]| scrape::sum(&samples, name, labels);
        let succeeded = match case.mechanism {
            Some(m) => count(
                "kafka_auth_total",
                &[("mechanism", m), ("result", "success")],
            ),
            None => 0.0,
        };
        let want = if case.mechanism.is_some() {
            per_case as f64
        } else {
            0.0
        };
        let failed = count("kafka_auth_total", &[("result", "failure")]);
        let errors = count("kafka_decode_errors_total", &[]);
        assert!(
            succeeded == want && failed == 0.0 && errors == 0.0,
            "{}: SASL successes {succeeded} (want {want}), failures {failed}, decode errors {errors}",
            case.name
        );
    }
}

fn main() {
    let markdown_out = arg("--markdown");
    let dir = paths::root().join("target/bench-runs/kafka_auth_setup");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let mut free = ports::Allocator::default();
    let mut spec = KafkaSpec::new(&dir, 1, &["scram", "plain"], &mut free).expect("ports");
    spec.sasl = Some(SaslListener {
        mechanisms: vec![Mechanism::ScramSha512, Mechanism::Plain],
        users: vec![(USER.into(), PASSWORD.into())],
        authorize: false,
    });
    let kafka = Kafka::start(spec).expect("Kafka with SASL client listeners");
    let plaintext = kafka.spec.nodes[0].platform;
    let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let credential = vec![
        ("KIOSK_KAFKA_USERNAME".to_string(), USER.to_string()),
        ("KIOSK_KAFKA_PASSWORD".to_string(), PASSWORD.to_string()),
    ];
    let authenticating = |name: &'static str, mechanism: &'static str| {
        let (broker, listener) = kafka.spec.client_ports(name)[0];
        // No mTLS here: the broker is allowed by its Envoy cluster (`outbound|<port>||kafka`).
        let config = json!({ "kafka_auth": {
            "mechanism": mechanism,
            "upstreams": { "clusters": ["*||kafka"] },
        } });
        let sidecar = sidecar_with(
            &dir,
            name,
            Protocol::Kafka,
            listener,
            broker,
            config,
            credential.clone(),
        );
        Case {
            name: mechanism,
            address: local(listener),
            sidecar: Some(sidecar),
            mechanism: Some(mechanism),
            micros: Vec::new(),
        }
    };
    let observing = free.port().unwrap();
    let mut cases = vec![
        Case {
            name: "no SASL",
            address: local(observing),
            sidecar: Some(sidecar(
                &dir,
                "observe",
                Protocol::Kafka,
                observing,
                plaintext,
            )),
            mechanism: None,
            micros: Vec::new(),
        },
        authenticating("scram", "SCRAM-SHA-512"),
        authenticating("plain", "PLAIN"),
        Case {
            name: "direct",
            address: local(plaintext),
            sidecar: None,
            mechanism: None,
            micros: Vec::new(),
        },
    ];
    cases.retain(|c| wanted(c.name));

    let first_steps = FirstSteps::encoded();
    let n = connections();
    for case in &cases {
        for _ in 0..WARM_UP {
            first_steps.time(case.address);
        }
    }
    let count = cases.len();
    for round in 0..n {
        for k in 0..count {
            let case = &mut cases[(round + k) % count];
            let took = first_steps.time(case.address);
            case.micros.push(took.as_secs_f64() * 1e6);
        }
    }
    check(&cases, n + WARM_UP);

    let baseline = cases
        .iter()
        .find(|c| c.name == "no SASL")
        .map(|c| summary(&c.micros));
    let mut lines = vec![
        format!(
            "Connection set-up, TCP connect to the whole Metadata response (ApiVersions v3, \
             Metadata v12), to Apache Kafka 4.3.1 (one broker: SASL_PLAINTEXT listeners for \
             the SASL cases, a PLAINTEXT one for the others) through a sidecar with one Envoy \
             worker, or direct: {n} sequential connections per case, interleaved, after \
             {WARM_UP} of warm-up; added = difference to `no SASL`. Run {}.",
            run_on()
        ),
        String::new(),
        "| case | p50 | p99 | mean | added p50 | added p99 | added mean |".into(),
        "|---|---|---|---|---|---|---|".into(),
    ];
    for case in &cases {
        let (p50, p99, mean) = summary(&case.micros);
        let versus = match (baseline, case.mechanism) {
            (Some((b50, b99, bmean)), Some(_)) => {
                format!(
                    "{} | {} | {}",
                    added(p50 - b50),
                    added(p99 - b99),
                    added(mean - bmean)
                )
            }
            _ => "– | – | –".into(),
        };
        let name = match case.mechanism {
            Some(m) => format!("{m} by the filter"),
            None if case.sidecar.is_some() => "no SASL, the filter observing".into(),
            None => "direct to Kafka, no sidecar".into(),
        };
        lines.push(format!(
            "| {name} | {} | {} | {} | {versus} |",
            ms(p50),
            ms(p99),
            ms(mean)
        ));
    }
    let text = lines.join("\n") + "\n";
    print!("{text}");
    if let Some(path) = markdown_out {
        std::fs::write(&path, &text).unwrap();
        println!("table written to {path}");
    }
}
