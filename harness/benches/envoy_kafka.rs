//! The filter's cost inside a real Envoy with real Kafka traffic: librdkafka (through the
//! `rdkafka` crate) producing to and fetching from Apache Kafka 4.3.1, once through a
//! listener with the kiosk filter and once through one with `tcp_proxy` only, interleaved
//! in one run.
//!
//! Kafka has one client listener per Envoy, each advertising that Envoy, so the client's
//! reconnections stay on that path. The broker dominates wall time here; Envoy's CPU per GB
//! of record payload is what is compared.
//! Prints per case CPU s/GB, MB/s and the ratio filter / tcp_proxy; `--json FILE` writes
//! them for `scripts/bench.sh`. Not a test: nothing here asserts a time.

use std::time::Instant;

use common::{
    check_decoded, cpu_seconds, json_out, rdkafka_fetch, rdkafka_produce, sidecar, wanted,
    Comparison,
};
use kiosk_harness::components::envoy::{Protocol, Sidecar};
use kiosk_harness::components::kafka::{Kafka, KafkaSpec};
use kiosk_harness::{paths, ports};
use kiosk_services::kafka::create_topics;
use serde_json::json;

mod common;

const PARTITIONS: i32 = 4;
const REPEATS: usize = 5;

/// Payload per run: KIOSK_BENCH_KAFKA_MB, 16 MiB by default.
fn payload_bytes() -> usize {
    std::env::var("KIOSK_BENCH_KAFKA_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(16)
        << 20
}

fn main() {
    let json_out = json_out();
    let dir = paths::root().join("target/bench-runs/envoy_kafka");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // One client listener per Envoy, each advertising that Envoy; the platform listener
    // creates the topics.
    let mut free = ports::Allocator::default();
    let spec = KafkaSpec::new(&dir, 1, &["with-filter", "tcp-proxy"], &mut free).expect("ports");
    let kafka = Kafka::start(spec).expect("Kafka");
    let platform = kafka.spec.platform_bootstrap();
    let sizes = [(1024, "1 KiB"), (16 * 1024, "16 KiB")];
    let topics: Vec<String> = sizes.iter().map(|(n, _)| format!("bench-{n}")).collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    runtime
        .block_on(create_topics(&platform, &names, PARTITIONS))
        .expect("topics");

    let pair: Vec<Sidecar> = [
        ("with-filter", Protocol::Kafka),
        ("tcp-proxy", Protocol::Tcp),
    ]
    .into_iter()
    .map(|(name, protocol)| {
        let (broker_port, listener) = kafka.spec.client_ports(name)[0];
        sidecar(&dir, name, protocol, listener, broker_port)
    })
    .collect();
    let bootstrap = |sc: &Sidecar| format!("127.0.0.1:{}", sc.spec.routes[0].port);

    let payload = payload_bytes();
    println!(
        "Envoy CPU per GB of record payload, kiosk filter vs tcp_proxy only, librdkafka against Apache Kafka 4.3.1 ({REPEATS} interleaved runs of {} MiB each, median [min-max])",
        payload >> 20
    );
    let mut results = Vec::new();
    for ((value_len, size), topic) in sizes.iter().zip(&topics) {
        let records = payload / value_len;
        // Produce runs fill the topic; fetch runs read the first `records` of it again.
        for (case, is_produce) in [
            (format!("produce {size} records"), true),
            (format!("fetch {size} records"), false),
        ] {
            if !wanted(&case) {
                continue;
            }
            let mut comparison = Comparison::default();
            for _ in 0..REPEATS {
                for (i, sc) in pair.iter().enumerate() {
                    let pid = sc.service.pid();
                    let cpu0 = cpu_seconds(pid);
                    let t0 = Instant::now();
                    if is_produce {
                        rdkafka_produce(&bootstrap(sc), topic, *value_len, records);
                    } else {
                        rdkafka_fetch(&bootstrap(sc), topic, PARTITIONS, records);
                    }
                    let secs = t0.elapsed().as_secs_f64();
                    let bytes = (records * value_len) as u64;
                    comparison.add(i, cpu_seconds(pid) - cpu0, bytes, secs);
                }
            }
            let metric = if is_produce {
                "kafka_produced_records_total"
            } else {
                "kafka_fetched_records_total"
            };
            check_decoded(&pair[0], metric);
            results.push(comparison.report(&case));
        }
    }
    if let Some(path) = json_out {
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&json!({ "throughput": results })).unwrap(),
        )
        .unwrap();
        println!("figures written to {path}");
    }
}
