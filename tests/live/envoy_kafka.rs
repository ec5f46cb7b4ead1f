//! The filter in a real Envoy, between real Kafka clients (librdkafka) and real Apache
//! Kafka 4.3.1: exact per-topic metrics from `/stats/prometheus`, with one broker and with
//! three (each advertising its own sidecar listener, as brokers do behind a mesh).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kiosk_harness::prometheus::scrape::{self, Sample};
use kiosk_tests::{kafka_behind_sidecar, run_dir, wait_flush};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::Message;

/// A topic, the codec its producer uses, how many records, partitions and batching.
struct Case {
    topic: &'static str,
    codec: &'static str,
    records: usize,
    partitions: i32,
    batch: usize,
}

const CASES: &[Case] = &[
    Case {
        topic: "orders",
        codec: "none",
        records: 600,
        partitions: 2,
        batch: 10,
    },
    Case {
        topic: "payments.v1",
        codec: "gzip",
        records: 250,
        partitions: 1,
        batch: 100,
    },
    Case {
        topic: "audit-log",
        codec: "lz4",
        records: 120,
        partitions: 1,
        batch: 1,
    },
    Case {
        topic: "metrics_zstd",
        codec: "zstd",
        records: 300,
        partitions: 1,
        batch: 50,
    },
    Case {
        topic: "clicks.snappy",
        codec: "snappy",
        records: 180,
        partitions: 3,
        batch: 30,
    },
];

const VALUE_BYTES: usize = 200;

fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("client.id", "kiosk-e2e");
    c
}

fn create_topics(bootstrap: &str) {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create().unwrap();
    let topics: Vec<NewTopic> = CASES
        .iter()
        .map(|c| NewTopic::new(c.topic, c.partitions, TopicReplication::Fixed(1)))
        .collect();
    let rt = std::thread::spawn({
        move || {
            let fut = admin.create_topics(
                &topics,
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
            );
            futures_block_on(fut)
        }
    });
    for result in rt.join().unwrap().expect("create_topics") {
        result.expect("topic created");
    }
}

/// Drive one future to completion without an async runtime (rdkafka's admin API is async).
fn futures_block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Thread(std::thread::Thread);
    impl Wake for Thread {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Thread(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = Box::pin(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

fn produce(bootstrap: &str, case: &Case) {
    let producer: BaseProducer = client(bootstrap)
        .set("compression.codec", case.codec)
        .set("batch.num.messages", case.batch.to_string())
        .set("linger.ms", "20")
        .set("acks", "all")
        .create()
        .unwrap();
    for i in 0..case.records {
        let key = format!("key-{i}");
        // Compressible, but not trivially: a counter inside repeated text.
        let value = format!(
            "{:0>width$}",
            format!("record {i} of {}", case.topic),
            width = VALUE_BYTES
        );
        let partition = (i as i32) % case.partitions;
        let record = BaseRecord::to(case.topic)
            .key(&key)
            .payload(&value)
            .partition(partition);
        kiosk_services::kafka::send_waiting(&producer, record).expect("queued");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

fn consume_all(bootstrap: &str) -> HashMap<String, usize> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", "kiosk-e2e-group")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let topics: Vec<&str> = CASES.iter().map(|c| c.topic).collect();
    consumer.subscribe(&topics).unwrap();
    let want: usize = CASES.iter().map(|c| c.records).sum();
    let mut got: HashMap<String, usize> = HashMap::new();
    let start = Instant::now();
    while got.values().sum::<usize>() < want && start.elapsed() < Duration::from_secs(90) {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("consume");
            *got.entry(message.topic().to_string()).or_default() += 1;
        }
    }
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    // Keep fetching at the end of each partition so the last responses show lag 0.
    let idle = Instant::now();
    while idle.elapsed() < Duration::from_secs(3) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            *got.entry(m.topic().to_string()).or_default() += 1;
        }
    }
    got
}

fn stat(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape::sum(samples, name, labels)
}

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn five_topics_five_codecs_exact_metrics_one_broker() {
    exact_metrics("kafka-1-broker", 1);
}

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn five_topics_five_codecs_exact_metrics_three_brokers() {
    exact_metrics("kafka-3-brokers", 3);
}

fn exact_metrics(test: &str, brokers: usize) {
    let _one = kiosk_tests::one_cluster();
    let dir = run_dir(test).unwrap();
    let config = serde_json::json!({ "kiali": { "topic_namespace": "kafka" } });
    let (kafka, sidecar, bootstrap) =
        kafka_behind_sidecar(&dir, "checkout", brokers, config).expect("start Kafka and Envoy");

    create_topics(&bootstrap);
    for case in CASES {
        produce(&bootstrap, case);
    }
    let consumed = consume_all(&bootstrap);
    for case in CASES {
        assert_eq!(
            consumed.get(case.topic).copied().unwrap_or(0),
            case.records,
            "consumed from {}",
            case.topic
        );
    }
    wait_flush();
    // Envoy merges the worker threads' histograms on its stats flush (every 5 s): wait for
    // every produce latency to be in before reading the stats.
    let start = Instant::now();
    let mut text = sidecar.prometheus_text().unwrap();
    while start.elapsed() < Duration::from_secs(15) {
        let s = scrape::parse(&text);
        let requests = stat(&s, "kafka_requests_total", &[("api", "produce")]);
        let timed = stat(
            &s,
            "kafka_request_duration_milliseconds_count",
            &[("api", "produce")],
        );
        let fetches = stat(
            &s,
            "kafka_request_duration_milliseconds_count",
            &[("api", "fetch")],
        );
        if requests > 0.0 && requests == timed && fetches > 0.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        text = sidecar.prometheus_text().unwrap();
    }
    std::fs::write(dir.join("stats.prom"), &text).unwrap();
    let s = scrape::parse(&text);
    let base = [
        ("local_namespace", "shop"),
        ("local_workload", "checkout"),
        ("local_app", "checkout"),
    ];
    for case in CASES {
        let t = [("topic", case.topic)];
        let labels: Vec<(&str, &str)> = base.iter().copied().chain(t).collect();
        let produced = stat(&s, "kafka_produced_records_total", &labels);
        let fetched = stat(&s, "kafka_fetched_records_total", &labels);
        assert_eq!(
            produced, case.records as f64,
            "produced records of {}",
            case.topic
        );
        assert_eq!(
            fetched, case.records as f64,
            "fetched records of {}",
            case.topic
        );
        let bytes = stat(&s, "kafka_produced_bytes_total", &t);
        let raw = (case.records * VALUE_BYTES) as f64;
        if case.codec == "none" {
            // Each record carries its value plus a few dozen bytes of framing, key, header.
            assert!(
                bytes > raw && bytes < raw * 1.5,
                "{}: {bytes} bytes for {raw} raw",
                case.topic
            );
        } else {
            assert!(
                bytes > 0.0 && bytes < raw,
                "{}: {bytes} compressed bytes for {raw} raw",
                case.topic
            );
        }
        let batches = stat(
            &s,
            "kafka_produced_batches_total",
            &[("topic", case.topic), ("compression", case.codec)],
        );
        assert!(batches >= 1.0, "{}: no {} batches", case.topic, case.codec);
        let fetched_bytes = stat(&s, "kafka_fetched_bytes_total", &t);
        assert!(fetched_bytes > 0.0, "{}: no fetched bytes", case.topic);
        for partition in 0..case.partitions {
            let p = partition.to_string();
            let lag = scrape::select(
                &s,
                "kafka_consumer_lag",
                &[("topic", case.topic), ("partition", &p)],
            )
            .map(|x| x.value)
            .next();
            assert_eq!(lag, Some(0.0), "lag of {}/{p}", case.topic);
        }
        let edge = stat(
            &s,
            "kiali_ext_tcp_sent_total",
            &[
                ("extension", "kafka"),
                ("dest_name", case.topic),
                ("source_name", "checkout"),
                ("source_is_root", "true"),
                // The sidecar's upstream leg is plaintext here (no Istio mTLS): not secure.
                // (The local mesh checks the other way: mTLS edges are secure.)
                ("secure", "false"),
            ],
        );
        assert_eq!(edge, bytes, "kiali edge checkout -> {}", case.topic);
        let consumer_edge = stat(
            &s,
            "istio_tcp_received_bytes_total",
            &[
                ("connection_security_policy", "none"),
                ("source_workload", case.topic),
                ("destination_workload", "checkout"),
            ],
        );
        assert_eq!(
            consumer_edge, fetched_bytes,
            "edge {} -> checkout",
            case.topic
        );
    }
    for api in [
        "produce",
        "fetch",
        "metadata",
        "api_versions",
        "find_coordinator",
        "join_group",
        "sync_group",
        "offset_commit",
        "create_topics",
    ] {
        let n = stat(&s, "kafka_requests_total", &[("api", api)]);
        assert!(n >= 1.0, "no {api} requests counted");
    }
    // Every produce (acks=all) got a response: one latency sample per request.
    let produce_requests = stat(&s, "kafka_requests_total", &[("api", "produce")]);
    let produce_latencies = stat(
        &s,
        "kafka_request_duration_milliseconds_count",
        &[("api", "produce")],
    );
    assert_eq!(produce_requests, produce_latencies);
    let fetch_latencies = stat(
        &s,
        "kafka_request_duration_milliseconds_count",
        &[("api", "fetch")],
    );
    assert!(fetch_latencies > 0.0);
    assert_eq!(
        stat(&s, "kafka_decode_errors_total", &[]),
        0.0,
        "decode errors:\n{text}"
    );
    let opened = stat(&s, "kafka_connections_opened_total", &[]);
    assert!(opened >= 2.0);
    if brokers > 1 {
        // Every broker was reached through its own sidecar listener.
        let per_listener = scrape::select(&s, "envoy_cluster_upstream_cx_total", &[])
            .filter(|x| {
                x.label("cluster_name")
                    .is_some_and(|c| c.starts_with("outbound|"))
                    && x.value > 0.0
            })
            .count();
        assert!(
            per_listener >= brokers,
            "{per_listener} listeners used:\n{text}"
        );
    }
    drop(sidecar);
    drop(kafka);
}
