//! Native decoder throughput: produce requests and fetch responses with 1 KiB and 16 KiB
//! records, through `Connection` in 64 KiB chunks (the size Envoy hands a filter), every
//! request answered so the correlator works as in production.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use kiosk_filter::{Config, Connection, Identity, Recorder, Totalizer};

#[path = "../tests/frames/mod.rs"]
mod frames;

const PARTITIONS: i32 = 4;
/// Exchanges per iteration: fewer than the correlator's default `max_in_flight`, so every
/// response finds its request although all requests are fed first.
const EXCHANGES: i32 = 32;

/// Records per batch so that a batch is about 128 KiB.
fn records_per_batch(value_len: usize) -> usize {
    (128 * 1024 / value_len).max(1)
}

fn topic_name() -> TopicName {
    TopicName(StrBytes::from_static_str("bench.events"))
}

/// Produce exchanges (v9, acks=1, one batch per partition): client and broker bytes.
fn produce_session(value_len: usize) -> (Vec<u8>, Vec<u8>) {
    let batch = frames::batch_of(
        0,
        records_per_batch(value_len),
        value_len,
        Compression::None,
    );
    let (mut requests, mut responses) = (Vec::new(), Vec::new());
    for correlation in 0..EXCHANGES {
        let partitions = (0..PARTITIONS)
            .map(|p| {
                produce_request::PartitionProduceData::default()
                    .with_index(p)
                    .with_records(Some(batch.clone()))
            })
            .collect();
        let topic = produce_request::TopicProduceData::default()
            .with_name(topic_name())
            .with_partition_data(partitions);
        let req = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(1000)
            .with_topic_data(vec![topic]);
        requests.extend(frames::request(0, 9, correlation, &req));
        let parts = (0..PARTITIONS)
            .map(|p| produce_response::PartitionProduceResponse::default().with_index(p))
            .collect();
        let topic = produce_response::TopicProduceResponse::default()
            .with_name(topic_name())
            .with_partition_responses(parts);
        let resp = ProduceResponse::default().with_responses(vec![topic]);
        responses.extend(frames::response(9, correlation, &resp));
    }
    (requests, responses)
}

/// Fetch exchanges (v12, one batch per partition): client and broker bytes.
fn fetch_session(value_len: usize) -> (Vec<u8>, Vec<u8>) {
    let batch = frames::batch_of(
        0,
        records_per_batch(value_len),
        value_len,
        Compression::None,
    );
    let (mut requests, mut responses) = (Vec::new(), Vec::new());
    for correlation in 0..EXCHANGES {
        let asked = (0..PARTITIONS)
            .map(|p| {
                fetch_request::FetchPartition::default()
                    .with_partition(p)
                    .with_fetch_offset(0)
            })
            .collect();
        let topic = fetch_request::FetchTopic::default()
            .with_topic(topic_name())
            .with_partitions(asked);
        let req = FetchRequest::default()
            .with_max_wait_ms(500)
            .with_topics(vec![topic]);
        requests.extend(frames::request(1, 12, correlation, &req));
        let parts = (0..PARTITIONS)
            .map(|p| {
                fetch_response::PartitionData::default()
                    .with_partition_index(p)
                    .with_high_watermark(1_000_000)
                    .with_records(Some(batch.clone()))
            })
            .collect();
        let topic = fetch_response::FetchableTopicResponse::default()
            .with_topic(topic_name())
            .with_partitions(parts);
        let resp = FetchResponse::default().with_responses(vec![topic]);
        responses.extend(frames::response(12, correlation, &resp));
    }
    (requests, responses)
}

fn recorder() -> Recorder {
    let config = Config::default();
    let id = Identity::resolve(
        &config,
        Some("bench".into()),
        Some("bench".into()),
        None,
        None,
    );
    Recorder::new(config, id)
}

fn feed(requests: &[u8], responses: &[u8], rec: &mut Recorder) {
    let mut conn = Connection::new(rec);
    for chunk in requests.chunks(64 * 1024) {
        conn.on_request_data(chunk, 0, rec);
    }
    for chunk in responses.chunks(64 * 1024) {
        conn.on_response_data(chunk, 1, rec);
    }
    conn.on_close(rec);
}

/// The figures mean something only if the frames were decoded: check the record count.
fn check(name: &str, requests: &[u8], responses: &[u8], value_len: usize) {
    let mut rec = recorder();
    feed(requests, responses, &mut rec);
    let mut totals = Totalizer::default();
    rec.flush(&mut totals);
    let metric = if name.starts_with("produce") {
        "kafka_produced_records_total"
    } else {
        "kafka_fetched_records_total"
    };
    let counted: u64 = totals
        .counters
        .iter()
        .filter(|(k, _)| k.ends_with(metric))
        .map(|(_, v)| v)
        .sum();
    let expected = (EXCHANGES * PARTITIONS) as u64 * records_per_batch(value_len) as u64;
    assert_eq!(counted, expected, "{name}: records decoded");
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.sample_size(20);
    for (name, value_len, (requests, responses)) in [
        ("produce_1KiB", 1024, produce_session(1024)),
        ("produce_16KiB", 16 * 1024, produce_session(16 * 1024)),
        ("fetch_1KiB", 1024, fetch_session(1024)),
        ("fetch_16KiB", 16 * 1024, fetch_session(16 * 1024)),
    ] {
        check(name, &requests, &responses, value_len);
        group.throughput(Throughput::Bytes((requests.len() + responses.len()) as u64));
        let mut rec = recorder();
        group.bench_function(name, |b| b.iter(|| feed(&requests, &responses, &mut rec)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
