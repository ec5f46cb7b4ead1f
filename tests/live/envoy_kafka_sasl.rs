//! SASL by the filter, in a real Envoy, against real Apache Kafka 4.3.1 whose client
//! listener requires SASL (SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN enabled, credentials
//! written as Strimzi's User Operator leaves them): librdkafka clients configured with no
//! SASL and no secret produce and consume through a sidecar that holds the credential
//! in its environment; a wrong password is refused, counted, and lets nothing through; a
//! client doing its own SASL passes untouched; the app never sees a frame of ours.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kiosk_filter::act::sasl::Mechanism;
use kiosk_harness::components::envoy::Sidecar;
use kiosk_harness::components::kafka::{request_frame, Kafka, KafkaSpec, SaslListener};
use kiosk_harness::ports;
use kiosk_harness::prometheus::scrape;
use kiosk_tests::{kafka_sidecar_to, run_dir, wait_flush};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};

const USER: &str = "checkout";
const PASSWORD: &str = "n0tInTheApp42";
const TOPIC: &str = "orders";

fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("client.id", "kiosk-sasl-e2e");
    c
}

/// `n` records produced through `bootstrap` by a client with `extra` settings; how many
/// were acknowledged.
fn produce(bootstrap: &str, n: usize, extra: &[(&str, &str)]) -> usize {
    let mut config = client(bootstrap);
    config.set("acks", "all").set("linger.ms", "5");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let producer: BaseProducer<Acks> = config.create_with_context(Acks::default()).unwrap();
    for i in 0..n {
        let value = format!("record {i}");
        let record = BaseRecord::<str, str>::to(TOPIC).payload(&value).key("k");
        producer.send(record).map_err(|(e, _)| e).expect("queued");
    }
    let _ = producer.flush(Duration::from_secs(20));
    producer.context().0.load(Ordering::SeqCst)
}

/// Counts the records the broker acknowledged.
#[derive(Default)]
struct Acks(AtomicUsize);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Every record of the topic, read through `bootstrap` in a new group.
fn count_all(bootstrap: &str, group: &str, want: usize) -> usize {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[TOPIC]).unwrap();
    let (mut got, start) = (0, Instant::now());
    while start.elapsed() < Duration::from_secs(60) {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            m.expect("consume");
            got += 1;
        } else if got >= want {
            break;
        }
    }
    got
}

fn stat(sidecar: &Sidecar, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape::sum(
        &scrape::parse(&sidecar.prometheus_text().unwrap()),
        name,
        labels,
    )
}

fn auth(
    mechanism: &'static str,
    result: &'static str,
    reason: &'static str,
) -> [(&'static str, &'static str); 3] {
    [
        ("mechanism", mechanism),
        ("result", result),
        ("reason", reason),
    ]
}

/// One request frame, as a client sends it.
fn request<M: Encodable + HeaderVersion>(api: i16, version: i16, id: i32, msg: &M) -> Vec<u8> {
    request_frame(api, version, id, "raw-app", msg).unwrap()
}

/// The correlation ids of every frame the app receives until the peer is quiet for 1 s.
fn correlation_ids_received(stream: &mut TcpStream) -> Vec<i32> {
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let (mut bytes, mut chunk) = (Vec::new(), [0u8; 65536]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    let mut ids = Vec::new();
    let mut rest = Bytes::from(bytes);
    while rest.len() >= 4 {
        let size = i32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        assert!(rest.len() >= 4 + size, "a partial frame reached the app");
        let mut frame = rest.slice(4..4 + size);
        rest = rest.slice(4 + size..);
        ids.push(
            ResponseHeader::decode(&mut frame, 0)
                .unwrap()
                .correlation_id,
        );
    }
    assert!(rest.is_empty(), "stray bytes reached the app");
    ids
}

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn the_sidecar_authenticates_apps_that_hold_no_secret() {
    let dir = run_dir("kafka-sasl").unwrap();
    let mut free = ports::Allocator::default();
    let workloads = ["scram", "scram256", "plain", "wrong", "elsewhere"];
    let mut spec = KafkaSpec::new(&dir, 1, &workloads, &mut free).unwrap();
    spec.config
        .insert("offsets.topic.num.partitions".into(), "1".into());
    spec.sasl = Some(SaslListener {
        mechanisms: vec![
            Mechanism::ScramSha512,
            Mechanism::ScramSha256,
            Mechanism::Plain,
        ],
        users: vec![(USER.into(), PASSWORD.into())],
        authorize: false,
    });
    let _kafka = Kafka::start(spec.clone()).expect("start Kafka with a SASL listener");
    // The test bed has no mTLS: the broker is allowed by its Envoy cluster,
    // `outbound|<port>||kafka`.
    let to_the_broker = json!({ "clusters": ["*||kafka"] });
    let sidecar_to =
        |workload: &str, mechanism: &str, password: &str, upstreams: &serde_json::Value| {
            let env = vec![
                ("KIOSK_KAFKA_USERNAME".to_string(), USER.to_string()),
                ("KIOSK_KAFKA_PASSWORD".to_string(), password.to_string()),
            ];
            let config =
                json!({ "kafka_auth": { "mechanism": mechanism, "upstreams": upstreams } });
            let routes = spec.client_ports(workload);
            let sidecar = kafka_sidecar_to(&dir, workload, &routes, config, env).unwrap();
            (sidecar, format!("127.0.0.1:{}", routes[0].1))
        };
    let sidecar = |workload: &str, mechanism: &str, password: &str| {
        sidecar_to(workload, mechanism, password, &to_the_broker)
    };
    let (scram, scram_at) = sidecar("scram", "SCRAM-SHA-512", PASSWORD);
    let (scram256, scram256_at) = sidecar("scram256", "SCRAM-SHA-256", PASSWORD);
    let (plain, plain_at) = sidecar("plain", "PLAIN", PASSWORD);
    let (wrong, wrong_at) = sidecar("wrong", "SCRAM-SHA-512", "not-the-password");
    // The credential may go only to an mTLS peer proving the brokers' identity: this
    // broker proves none, so the filter sends nothing of the credential to it.
    let brokers_only = json!({ "principals": ["cluster.local/ns/kafka/sa/kiosk-kafka"] });
    let (elsewhere, elsewhere_at) = sidecar_to("elsewhere", "PLAIN", PASSWORD, &brokers_only);

    // Apps with no SASL and no secret: every record through SCRAM, then through PLAIN.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let created = runtime.block_on(kiosk_services::kafka::create_topics(&scram_at, &[TOPIC], 1));
    created.expect("topic created through the SCRAM sidecar");
    assert_eq!(
        produce(&scram_at, 300, &[]),
        300,
        "acknowledged through SCRAM"
    );
    assert_eq!(
        produce(&plain_at, 200, &[]),
        200,
        "acknowledged through PLAIN"
    );
    let through = produce(&scram256_at, 50, &[]);
    assert_eq!(through, 50, "acknowledged through SCRAM-SHA-256");
    // A client doing its own SASL passes through untouched.
    let own = [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "PLAIN"),
        ("sasl.username", USER),
        ("sasl.password", PASSWORD),
    ];
    assert_eq!(
        produce(&scram_at, 10, &own),
        10,
        "its own SASL through the sidecar"
    );
    // A wrong password: refused, and nothing passes.
    let quick = [("message.timeout.ms", "6000")];
    assert_eq!(produce(&wrong_at, 25, &quick), 0, "nothing acknowledged");
    let withheld = produce(&elsewhere_at, 25, &quick);
    assert_eq!(withheld, 0, "no credential sent, nothing acknowledged");
    assert_eq!(
        count_all(&scram_at, "count-1", 560),
        560,
        "every acknowledged record"
    );
    assert_eq!(
        count_all(&plain_at, "count-2", 560),
        560,
        "read through PLAIN too"
    );

    // The app never sees a frame of ours: exactly its own responses, in order.
    let at: std::net::SocketAddr = scram_at.parse().unwrap();
    let mut app = TcpStream::connect(at).unwrap();
    app.write_all(&request(
        18,
        3,
        7,
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("raw"))
            .with_client_software_version(StrBytes::from_static_str("1")),
    ))
    .unwrap();
    let first = correlation_ids_received(&mut app);
    app.write_all(&request(3, 12, 8, &MetadataRequest::default()))
        .unwrap();
    let second = correlation_ids_received(&mut app);
    assert_eq!((first, second), (vec![7], vec![8]));

    wait_flush();
    let ok512 = auth("SCRAM-SHA-512", "success", "ok");
    assert!(
        stat(&scram, "kafka_auth_total", &ok512) >= 2.0,
        "SCRAM connections"
    );
    let own = auth("SCRAM-SHA-512", "skipped", "client_sasl");
    assert!(
        stat(&scram, "kafka_auth_total", &own) >= 1.0,
        "its own SASL, counted"
    );
    assert!(stat(&plain, "kafka_auth_total", &auth("PLAIN", "success", "ok")) >= 1.0);
    let ok256 = auth("SCRAM-SHA-256", "success", "ok");
    assert!(stat(&scram256, "kafka_auth_total", &ok256) >= 1.0);
    let on_topic = [("topic", TOPIC)];
    assert_eq!(
        stat(&scram256, "kafka_produced_records_total", &on_topic),
        50.0
    );
    let refused = auth("SCRAM-SHA-512", "failure", "SASL_AUTHENTICATION_FAILED");
    assert!(
        stat(&wrong, "kafka_auth_total", &refused) >= 1.0,
        "refusals counted"
    );
    assert_eq!(
        stat(&wrong, "kafka_auth_total", &[("result", "success")]),
        0.0
    );
    let produced = [("topic", TOPIC)];
    assert_eq!(stat(&wrong, "kafka_produced_records_total", &produced), 0.0);
    let not_allowed = auth("PLAIN", "skipped", "upstream_not_allowed");
    assert!(
        stat(&elsewhere, "kafka_auth_total", &not_allowed) >= 1.0,
        "withheld credentials counted"
    );
    let tried = stat(&elsewhere, "kafka_auth_total", &[("result", "success")])
        + stat(&elsewhere, "kafka_auth_total", &[("result", "failure")]);
    assert_eq!(tried, 0.0, "no exchange toward an upstream not allowed");
    // The observer saw the apps' records exactly, and none of our frames.
    assert_eq!(
        stat(&scram, "kafka_produced_records_total", &produced),
        310.0
    );
    assert_eq!(
        stat(&plain, "kafka_produced_records_total", &produced),
        200.0
    );
    for sidecar in [&scram, &scram256, &plain, &wrong, &elsewhere] {
        assert_eq!(stat(sidecar, "kafka_decode_errors_total", &[]), 0.0);
        let text = sidecar.prometheus_text().unwrap();
        assert!(!text.contains(PASSWORD) && !text.contains("not-the-password"));
    }
    for log in std::fs::read_dir(&dir).unwrap().flatten() {
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        if log.path().extension().is_some_and(|e| e == "log") {
            assert!(
                !text.contains(PASSWORD),
                "{} holds the password",
                log.path().display()
            );
        }
    }
}
