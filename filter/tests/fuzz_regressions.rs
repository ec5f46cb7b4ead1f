//! Inputs the fuzz targets (filter/fuzz) found to break the core, kept as tests.

mod frames;

use frames::{request, response};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kiosk_filter::{Config, Identity, Totalizer, Vm};

fn new_vm() -> Vm {
    let config = Config::default();
    let id = Identity::resolve(&config, Some("shop".into()), Some("w".into()), None, None);
    Vm::new(config, id)
}

/// `connection` target: a fetch asking for offset i64::MIN, answered with a high
/// watermark, made the consumer lag `high_watermark - offset` overflow (a panic with
/// overflow checks, a wrapped negative lag without). The lag saturates.
#[test]
fn a_fetch_offset_of_i64_min_does_not_overflow_the_lag() {
    let topic = || TopicName(StrBytes::from_static_str("orders"));
    let asked = fetch_request::FetchTopic::default()
        .with_topic(topic())
        .with_partitions(vec![fetch_request::FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(i64::MIN)]);
    let req = FetchRequest::default().with_topics(vec![asked]);
    let answer = fetch_response::FetchableTopicResponse::default()
        .with_topic(topic())
        .with_partitions(vec![fetch_response::PartitionData::default()
            .with_partition_index(0)
            .with_high_watermark(10)]);
    let resp = FetchResponse::default().with_responses(vec![answer]);

    let mut vm = new_vm();
    let mut conn = vm.open_connection();
    vm.on_request_data(&mut conn, &request(1, 12, 7, &req), 0);
    vm.on_response_data(&mut conn, &response(12, 7, &resp), 1);
    let mut t = Totalizer::default();
    vm.flush(&mut t);
    let lag: Vec<i64> = t
        .gauges
        .iter()
        .filter(|(k, _)| k.ends_with("kafka_consumer_lag"))
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(lag, vec![i64::MAX]);
    assert!(!t.counters.keys().any(|k| k.contains("kafka_decode_errors")));
}
