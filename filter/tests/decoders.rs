//! Every decoder of the core against frames encoded by the `kafka-protocol` crate, for
//! every version it knows, split at every chunk boundary.

mod frames;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;
use frames::{batch, concat, framed, request, response};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::Compression;
use kiosk_filter::decode::kafka::schema_ids::READ_SIZE;
use kiosk_filter::decode::topics::SharedIds;
use kiosk_filter::{Config, Direction, Identity, Totalizer, Vm};
use uuid::Uuid;

const ORDERS: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
const PAYMENTS: Uuid = Uuid::from_u128(0xfeed_0000_0000_0000_0000_0000_0000_0001);

fn new_vm() -> Vm {
    vm_with(b"{}")
}

/// A VM of workload `checkout` in `shop` configured by the pluginConfig `json`.
fn vm_with(json: &[u8]) -> Vm {
    let config = Config::from_json(json).unwrap();
    let id = Identity::resolve(
        &config,
        Some("shop".into()),
        Some("checkout".into()),
        None,
        None,
    );
    Vm::new(config, id)
}

/// Record-set entries in encoded bytes (the encoder decides how records split into
/// batches), counted independently of the filter: offset (8), then length (4).
fn entries(records: &[u8]) -> u32 {
    let (mut at, mut n) = (0, 0);
    while at + 12 <= records.len() {
        at += 12 + i32::from_be_bytes(records[at + 8..at + 12].try_into().unwrap()) as usize;
        n += 1;
    }
    n
}

/// A client's bytes and the broker's bytes for one exchange.
#[derive(Default)]
struct Exchange {
    requests: Vec<u8>,
    responses: Vec<u8>,
}

/// Feed an exchange split at `cut` in both directions (requests first, as on the wire)
/// and return the flushed metrics.
fn run(ex: &Exchange, cut: usize, vm: &mut Vm) -> Totalizer {
    let mut conn = vm.open_connection();
    let (a, b) = ex.requests.split_at(cut.min(ex.requests.len()));
    vm.on_request_data(&mut conn, a, 10);
    vm.on_request_data(&mut conn, b, 10);
    let (a, b) = ex.responses.split_at(cut.min(ex.responses.len()));
    vm.on_response_data(&mut conn, a, 17);
    vm.on_response_data(&mut conn, b, 17);
    vm.close(&mut conn);
    let mut sink = Totalizer::default();
    vm.flush(&mut sink);
    sink
}

fn run_bytewise(ex: &Exchange, vm: &mut Vm) -> Totalizer {
    let mut conn = vm.open_connection();
    for b in &ex.requests {
        vm.on_request_data(&mut conn, std::slice::from_ref(b), 10);
    }
    for b in &ex.responses {
        vm.on_response_data(&mut conn, std::slice::from_ref(b), 17);
    }
    vm.close(&mut conn);
    let mut sink = Totalizer::default();
    vm.flush(&mut sink);
    sink
}

/// Feed an exchange as the Envoy glue does: each direction in two callbacks split at
/// `cut`, each read through [`Connection::on_buffer`] `window` bytes at a time. Returns
/// the flushed metrics and how many bytes were read (copied into the VM).
fn run_windowed(ex: &Exchange, cut: usize, window: usize, vm: &mut Vm) -> (Totalizer, usize) {
    let mut conn = vm.open_connection();
    let mut read = 0;
    for (direction, bytes, now) in [
        (Direction::Request, &ex.requests, 10),
        (Direction::Response, &ex.responses, 17),
    ] {
        let (a, b) = bytes.split_at(cut.min(bytes.len()));
        // Records read for their schema ids are read in larger chunks.
        let largest = match vm.config().records_by_schema {
            true => window.max(READ_SIZE as usize),
            false => window,
        };
        for part in [a, b] {
            vm.on_buffer(&mut conn, direction, part.len(), window, now, |at, len| {
                assert!(len <= largest, "asked for {len} bytes, window {window}");
                read += len;
                part.get(at..at + len)
            });
        }
    }
    vm.close(&mut conn);
    let mut sink = Totalizer::default();
    vm.flush(&mut sink);
    (sink, read)
}

fn decode_errors(t: &Totalizer) -> u64 {
    t.counter("kafka_decode_errors_total", &[])
}

/// Check an exchange at every split and byte by byte, with `check` on each result.
fn every_split(ex: &Exchange, prepare: impl Fn(&mut Vm), check: impl Fn(&Totalizer, &str)) {
    let new = || {
        let mut vm = new_vm();
        prepare(&mut vm);
        vm
    };
    every_split_in(ex, new, check)
}

/// [`every_split`], each run in a VM from `new`.
fn every_split_in(ex: &Exchange, new: impl Fn() -> Vm, check: impl Fn(&Totalizer, &str)) {
    let longest = ex.requests.len().max(ex.responses.len());
    for cut in 0..=longest {
        check(&run(ex, cut, &mut new()), &format!("split at {cut}"));
    }
    check(&run_bytewise(ex, &mut new()), "byte by byte");
    for window in [1, 7, 64, 4096] {
        for cut in (0..=longest).step_by(window.min(13)) {
            let (totals, _) = run_windowed(ex, cut, window, &mut new());
            check(&totals, &format!("windows of {window}, split at {cut}"));
        }
    }
}

/// Teach a VM the topic ids, as a Metadata v12 response would.
fn learn_ids(vm: &mut Vm) {
    let mut conn = vm.open_connection();
    let req = request(3, 12, 1, &MetadataRequest::default());
    vm.on_request_data(&mut conn, &req, 0);
    vm.on_response_data(&mut conn, &response(12, 1, &metadata_response()), 1);
}

fn metadata_response() -> MetadataResponse {
    let topic = |name: &'static str, id: Uuid| {
        MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(name))))
            .with_topic_id(id)
            .with_partitions(vec![
                MetadataResponsePartition::default().with_replica_nodes(vec![BrokerId(1)])
            ])
    };
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_host(StrBytes::from_static_str("127.0.0.1"))
            .with_port(9092)])
        .with_topics(vec![
            topic("orders", ORDERS),
            topic("payments", PAYMENTS),
            MetadataResponseTopic::default()
                .with_error_code(3)
                .with_name(Some(TopicName(StrBytes::from_static_str("missing")))),
        ])
}

fn produce_exchange(version: i16) -> Exchange {
    produce_exchange_answered(version, 0)
}

/// A produce exchange whose response gives `payments` partition 1 the error `error`.
fn produce_exchange_answered(version: i16, error: i16) -> Exchange {
    let orders = concat(&[
        &batch(0, 3, Compression::None),
        &batch(3, 5, Compression::Gzip),
    ]);
    let payments = [
        batch(0, 7, Compression::Lz4),
        batch(0, 2, Compression::Zstd),
    ];
    produce_exchange_of(version, orders, payments, error)
}

/// A produce exchange of these records for `orders` (partition 0) and `payments`
/// (partitions 0 and 1), whose response gives `payments` partition 1 the error `error`.
fn produce_exchange_of(version: i16, orders: Bytes, payments: [Bytes; 2], error: i16) -> Exchange {
    let by_id = version >= 13;
    let topic =
        |name: &'static str, id: Uuid, parts: Vec<produce_request::PartitionProduceData>| {
            let t = produce_request::TopicProduceData::default().with_partition_data(parts);
            if by_id {
                t.with_topic_id(id)
            } else {
                t.with_name(TopicName(StrBytes::from_static_str(name)))
            }
        };
    let part = |index: i32, records: Bytes| {
        produce_request::PartitionProduceData::default()
            .with_index(index)
            .with_records(Some(records))
    };
    let [payments, payments2] = payments;
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![
            topic("orders", ORDERS, vec![part(0, orders)]),
            topic(
                "payments",
                PAYMENTS,
                vec![part(0, payments), part(1, payments2)],
            ),
        ]);
    let resp_topic = |name: &'static str,
                      id: Uuid,
                      parts: Vec<produce_response::PartitionProduceResponse>| {
        let t = produce_response::TopicProduceResponse::default().with_partition_responses(parts);
        if by_id {
            t.with_topic_id(id)
        } else {
            t.with_name(TopicName(StrBytes::from_static_str(name)))
        }
    };
    let presp = |index: i32, error: i16| {
        produce_response::PartitionProduceResponse::default()
            .with_index(index)
            .with_error_code(error)
    };
    let resp = ProduceResponse::default().with_responses(vec![
        resp_topic("orders", ORDERS, vec![presp(0, 0)]),
        resp_topic("payments", PAYMENTS, vec![presp(0, 0), presp(1, error)]),
    ]);
    Exchange {
        requests: request(0, version, 42, &req),
        responses: response(version, 42, &resp),
    }
}

#[test]
fn produce_every_version_every_split() {
    for version in 3..=13 {
        let ex = produce_exchange(version);
        let orders_bytes =
            (batch(0, 3, Compression::None).len() + batch(3, 5, Compression::Gzip).len()) as u64;
        let payments_bytes =
            (batch(0, 7, Compression::Lz4).len() + batch(0, 2, Compression::Zstd).len()) as u64;
        every_split(&ex, learn_ids, |t, how| {
            let ctx = format!("produce v{version}, {how}");
            assert_eq!(decode_errors(t), 0, "{ctx}: {:?}", t.counters);
            let o = [("topic", "orders")];
            let p = [("topic", "payments")];
            assert_eq!(t.counter("kafka_produced_records_total", &o), 8, "{ctx}");
            assert_eq!(t.counter("kafka_produced_records_total", &p), 9, "{ctx}");
            assert_eq!(
                t.counter("kafka_produced_bytes_total", &o),
                orders_bytes,
                "{ctx}"
            );
            assert_eq!(
                t.counter("kafka_produced_bytes_total", &p),
                payments_bytes,
                "{ctx}"
            );
            let codec = |c| t.counter("kafka_produced_batches_total", &[("compression", c)]);
            let expected = |n, c| u64::from(entries(&batch(0, n, c)));
            assert_eq!(
                (codec("none"), codec("gzip"), codec("lz4"), codec("zstd")),
                (
                    expected(3, Compression::None),
                    expected(5, Compression::Gzip),
                    expected(7, Compression::Lz4),
                    expected(2, Compression::Zstd)
                ),
                "{ctx}"
            );
            assert_eq!(
                t.counter("kafka_requests_total", &[("api", "produce")]),
                1,
                "{ctx}"
            );
            // (Response errors: produced_records_are_counted_when_acknowledged.)
            let kiali = [
                ("extension", "kafka"),
                ("dest_name", "orders"),
                ("source_name", "checkout"),
            ];
            assert_eq!(
                t.counter("kiali_ext_tcp_sent_total", &kiali),
                orders_bytes,
                "{ctx}"
            );
            let latency = t
                .histograms
                .iter()
                .find(|(n, _)| n.contains("api=.=produce;.;"));
            assert_eq!(latency.map(|(_, v)| v.clone()), Some(vec![7]), "{ctx}");
        });
    }
}

fn fetch_exchange(version: i16) -> (Exchange, u64) {
    let by_id = version >= 13;
    let name = |n: &'static str| TopicName(StrBytes::from_static_str(n));
    let req_topic = |n: &'static str, id: Uuid, parts: Vec<fetch_request::FetchPartition>| {
        let t = fetch_request::FetchTopic::default().with_partitions(parts);
        if by_id {
            t.with_topic_id(id)
        } else {
            t.with_topic(name(n))
        }
    };
    let fp = |p: i32, offset: i64| {
        fetch_request::FetchPartition::default()
            .with_partition(p)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(1 << 20)
    };
    let req = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_topics(vec![
            req_topic("orders", ORDERS, vec![fp(0, 10), fp(1, 4)]),
            req_topic("payments", PAYMENTS, vec![fp(0, 0)]),
        ]);
    // orders/0: 6 records at offsets 10..16 (hw 20); a cut-off partial batch follows.
    let full = concat(&[
        &batch(10, 2, Compression::None),
        &batch(12, 4, Compression::Zstd),
    ]);
    let partial = batch(16, 1, Compression::None);
    assert_eq!(entries(&partial), 1);
    let with_partial = concat(&[&full, &partial[..partial.len() / 2]]);
    let data = |p: i32, hw: i64, records: Option<Bytes>, error: i16| {
        fetch_response::PartitionData::default()
            .with_partition_index(p)
            .with_high_watermark(hw)
            .with_error_code(error)
            .with_records(records)
    };
    let resp_topic = |n: &'static str, id: Uuid, parts: Vec<fetch_response::PartitionData>| {
        let t = fetch_response::FetchableTopicResponse::default().with_partitions(parts);
        if by_id {
            t.with_topic_id(id)
        } else {
            t.with_topic(name(n))
        }
    };
    let resp = FetchResponse::default().with_responses(vec![
        resp_topic(
            "orders",
            ORDERS,
            vec![data(0, 20, Some(with_partial), 0), data(1, 9, None, 0)],
        ),
        resp_topic("payments", PAYMENTS, vec![data(0, -1, None, 6)]),
    ]);
    let ex = Exchange {
        requests: request(1, version, 7, &req),
        responses: response(version, 7, &resp),
    };
    (ex, full.len() as u64)
}

#[test]
fn fetch_every_version_every_split() {
    for version in 4..=18 {
        let (ex, bytes) = fetch_exchange(version);
        every_split(&ex, learn_ids, |t, how| {
            let ctx = format!("fetch v{version}, {how}");
            assert_eq!(decode_errors(t), 0, "{ctx}: {:?}", t.counters);
            let o = [("topic", "orders")];
            assert_eq!(t.counter("kafka_fetched_records_total", &o), 6, "{ctx}");
            assert_eq!(t.counter("kafka_fetched_bytes_total", &o), bytes, "{ctx}");
            // Lag: hw 20 - next offset 16 on partition 0; hw 9 - asked 4 on partition 1.
            let lag = |p| {
                t.gauge(
                    "kafka_consumer_lag",
                    &[("topic", "orders"), ("partition", p)],
                )
            };
            assert_eq!((lag("0"), lag("1")), (Some(4), Some(5)), "{ctx}");
            let err = [
                ("api", "fetch"),
                ("topic", "payments"),
                ("error", "NOT_LEADER_OR_FOLLOWER"),
            ];
            assert_eq!(t.counter("kafka_response_errors_total", &err), 1, "{ctx}");
            let edge = [
                ("source_workload", "orders"),
                ("destination_workload", "checkout"),
            ];
            assert_eq!(
                t.counter("istio_tcp_received_bytes_total", &edge),
                bytes,
                "{ctx}"
            );
        });
    }
}

#[test]
fn metadata_every_version_names_ids_and_errors() {
    for version in 0..=13 {
        let ex = Exchange {
            requests: request(3, version, 5, &MetadataRequest::default()),
            responses: response(version, 5, &metadata_response()),
        };
        every_split(
            &ex,
            |_| {},
            |t, how| {
                let ctx = format!("metadata v{version}, {how}");
                assert_eq!(decode_errors(t), 0, "{ctx}");
                let err = [
                    ("api", "metadata"),
                    ("topic", "missing"),
                    ("error", "UNKNOWN_TOPIC_OR_PARTITION"),
                ];
                assert_eq!(t.counter("kafka_response_errors_total", &err), 1, "{ctx}");
            },
        );
        // Ids exist from v10: a later fetch by id resolves to the name.
        let mut vm = new_vm();
        run(&ex, 0, &mut vm);
        let idx = vm.topics().by_id(ORDERS.as_bytes());
        assert_eq!(
            idx.map(|i| vm.topics().name(i).to_string()),
            (version >= 10).then(|| "orders".to_string())
        );
    }
}

/// A consumer's group refused by the broker's ACLs shows in FindCoordinator's answer, top
/// level in v0-3, per key from v4 (the Java client 4.x): counted with no topic.
#[test]
fn find_coordinator_every_version_counts_a_refused_group() {
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    for version in 0..=6 {
        let request_body = match version {
            0..=3 => FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g")),
            _ => FindCoordinatorRequest::default().with_coordinator_keys(vec![
                StrBytes::from_static_str("mine"),
                StrBytes::from_static_str("theirs"),
            ]),
        };
        let response_body = match version {
            0..=3 => FindCoordinatorResponse::default()
                .with_error_code(GROUP_AUTHORIZATION_FAILED)
                .with_host(StrBytes::from_static_str("")),
            _ => FindCoordinatorResponse::default().with_coordinators(vec![
                Coordinator::default()
                    .with_key(StrBytes::from_static_str("mine"))
                    .with_host(StrBytes::from_static_str("broker-0")),
                Coordinator::default()
                    .with_key(StrBytes::from_static_str("theirs"))
                    .with_host(StrBytes::from_static_str(""))
                    .with_error_code(GROUP_AUTHORIZATION_FAILED),
            ]),
        };
        let ex = Exchange {
            requests: request(10, version, 4, &request_body),
            responses: response(version, 4, &response_body),
        };
        every_split(
            &ex,
            |_| {},
            |t, how| {
                let ctx = format!("find_coordinator v{version}, {how}");
                assert_eq!(decode_errors(t), 0, "{ctx}");
                let err = [
                    ("api", "find_coordinator"),
                    ("topic", ""),
                    ("error", "GROUP_AUTHORIZATION_FAILED"),
                ];
                assert_eq!(t.counter("kafka_response_errors_total", &err), 1, "{ctx}");
            },
        );
    }
}

#[test]
fn api_versions_every_version() {
    for version in 0..=4 {
        let resp = ApiVersionsResponse::default()
            .with_error_code(35)
            .with_api_keys(vec![api_versions_response::ApiVersion::default()
                .with_api_key(0)
                .with_max_version(13)]);
        // ApiVersions responses always carry header v0.
        let header = ResponseHeader::default().with_correlation_id(3);
        let ex = Exchange {
            requests: request(18, version, 3, &ApiVersionsRequest::default()),
            responses: framed(
                |b| header.encode(b, 0).unwrap(),
                |b| resp.encode(b, version).unwrap(),
            ),
        };
        every_split(
            &ex,
            |_| {},
            |t, how| {
                let ctx = format!("api_versions v{version}, {how}");
                assert_eq!(decode_errors(t), 0, "{ctx}");
                let err = [("api", "api_versions"), ("error", "UNSUPPORTED_VERSION")];
                assert_eq!(t.counter("kafka_response_errors_total", &err), 1, "{ctx}");
            },
        );
    }
}

#[test]
fn every_api_key_is_named_and_unknown_ones_are_counted() {
    let mut vm = new_vm();
    let mut conn = vm.open_connection();
    let heartbeat = request(12, 4, 1, &HeartbeatRequest::default());
    vm.on_request_data(&mut conn, &heartbeat, 0);
    // An API key no table knows, with a body: counted as "unknown" and skipped.
    let mut odd = vec![0, 0, 0, 14, 0, 200, 0, 1, 0, 0, 0, 2, 0, 0];
    odd.extend_from_slice(&[1, 2, 3, 4]);
    vm.on_request_data(&mut conn, &odd, 0);
    // A Produce version beyond the tables: counted, not decoded.
    let mut future = vec![0, 0, 0, 14, 0, 0, 0, 99, 0, 0, 0, 3, 0, 0];
    future.extend_from_slice(&[9, 9, 9, 9]);
    vm.on_request_data(&mut conn, &future, 0);
    vm.on_response_data(&mut conn, &[0, 0, 0, 6, 0, 0, 0, 1, 0, 0], 2);
    let mut t = Totalizer::default();
    vm.flush(&mut t);
    assert_eq!(
        t.counter("kafka_requests_total", &[("api", "heartbeat")]),
        1
    );
    assert_eq!(t.counter("kafka_requests_total", &[("api", "unknown")]), 1);
    assert_eq!(
        t.counter(
            "kafka_requests_unknown_version_total",
            &[("api", "produce")]
        ),
        1
    );
    assert_eq!(decode_errors(&t), 0, "{:?}", t.counters);
    // Kafka 4.3 has keys 0..=92 (4-7 were inter-broker APIs before KRaft).
    for key in 0..=92 {
        assert!(
            kiosk_filter::decode::kafka::tables::api_name(key).is_some(),
            "key {key}"
        );
    }
    assert_eq!(kiosk_filter::decode::kafka::tables::api_name(93), None);
    assert_eq!(
        kiosk_filter::decode::kafka::tables::api_name(89),
        Some("streams_group_describe")
    );
}

#[test]
fn acks_zero_expects_no_response_and_correlation_stays_right() {
    let mut ex = produce_exchange(9);
    // Make the request acks=0 by re-encoding it: no response will come for it.
    let req = ProduceRequest::default().with_acks(0).with_topic_data(vec![
        produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("fire-and-forget")))
            .with_partition_data(vec![produce_request::PartitionProduceData::default()
                .with_records(Some(batch(0, 4, Compression::None)))]),
    ]);
    let mut requests = request(0, 9, 41, &req);
    requests.extend_from_slice(&ex.requests);
    ex.requests = requests;
    let mut vm = new_vm();
    learn_ids(&mut vm);
    let t = run(&ex, 0, &mut vm);
    assert_eq!(
        t.counter(
            "kafka_produced_records_total",
            &[("topic", "fire-and-forget")]
        ),
        4
    );
    assert_eq!(t.counter("kafka_requests_unanswered_total", &[]), 0);
    assert_eq!(decode_errors(&t), 0);
}

#[test]
fn garbage_and_absurd_lengths_give_up_without_panicking() {
    let mut vm = new_vm();
    let mut conn = vm.open_connection();
    vm.on_request_data(&mut conn, &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3], 0);
    assert!(conn.gave_up());
    vm.on_request_data(&mut conn, &[0; 1000], 0);
    let mut t = Totalizer::default();
    vm.flush(&mut t);
    let undecodable = [("direction", "request"), ("reason", "bad_frame_size")];
    assert_eq!(
        t.counter("kafka_connections_undecodable_total", &undecodable),
        1
    );
    assert_eq!(decode_errors(&t), 1);

    // Every impossible size prefix, in either direction: given up, counted, bounded.
    for size in [i32::MAX, i32::MAX - 1, -1, -2, i32::MIN, 0, 3] {
        for direction in [Direction::Request, Direction::Response] {
            let mut vm = new_vm();
            let mut conn = vm.open_connection();
            let mut bytes = size.to_be_bytes().to_vec();
            bytes.extend_from_slice(&[0xab; 64]);
            vm.on_buffer(&mut conn, direction, bytes.len(), 1024, 0, |at, len| {
                bytes.get(at..at + len)
            });
            assert!(conn.gave_up(), "size {size}");
            assert!(conn.memory_bytes() < 4096);
            let mut t = Totalizer::default();
            vm.flush(&mut t);
            let name = if direction == Direction::Request {
                "request"
            } else {
                "response"
            };
            let undecodable = [("direction", name), ("reason", "bad_frame_size")];
            assert_eq!(
                t.counter("kafka_connections_undecodable_total", &undecodable),
                1,
                "size {size}"
            );
        }
    }

    // Pseudo-random streams of every kind never panic.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        let mut vm = new_vm();
        let mut conn = vm.open_connection();
        let len = (seed % 300) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        vm.on_request_data(&mut conn, &bytes, 0);
        vm.on_response_data(&mut conn, &bytes, 0);
        vm.flush(&mut Totalizer::default());
    }
}

#[test]
fn hostile_array_counts_and_unknown_correlation_ids_are_counted() {
    let mut vm = new_vm();
    let mut conn = vm.open_connection();
    // Produce v3 claiming 2^31-1 topics in a 30-byte frame.
    let mut body = vec![
        0, 0, 0, 3, 0, 0, 0, 9, 0, 0, 0xff, 0xff, 0, 1, 0, 0, 0x03, 0xe8,
    ];
    body.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0, 1, b'x', 0, 0, 0, 0, 0]);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    vm.on_request_data(&mut conn, &frame, 0);
    assert!(conn.memory_bytes() < 4096, "{}", conn.memory_bytes());
    // A response nobody asked for.
    vm.on_response_data(&mut conn, &[0, 0, 0, 4, 0, 0, 0x30, 0x39], 0);
    // The connection still decodes what follows.
    vm.on_request_data(
        &mut conn,
        &request(12, 4, 10, &HeartbeatRequest::default()),
        0,
    );
    let mut t = Totalizer::default();
    vm.flush(&mut t);
    assert_eq!(
        t.counter("kafka_decode_errors_total", &[("reason", "truncated")]),
        1
    );
    assert_eq!(
        t.counter(
            "kafka_decode_errors_total",
            &[("reason", "unknown_correlation_id")]
        ),
        1
    );
    assert_eq!(
        t.counter("kafka_requests_total", &[("api", "heartbeat")]),
        1
    );
    assert!(!conn.gave_up());
}

#[test]
fn memory_stays_bounded_whatever_the_message_size() {
    let mut vm = new_vm();
    let mut conn = vm.open_connection();
    // A 16 MiB produce request and a 50 MiB fetch response, streamed in 64 KiB chunks.
    let big = batch(0, 1, Compression::None);
    let records = Bytes::from(big.repeat((16 << 20) / big.len()));
    let req = ProduceRequest::default().with_acks(1).with_topic_data(vec![
        produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("big")))
            .with_partition_data(vec![produce_request::PartitionProduceData::default()
                .with_records(Some(records.clone()))]),
    ]);
    let mut peak = 0;
    for chunk in request(0, 9, 1, &req).chunks(64 << 10) {
        vm.on_request_data(&mut conn, chunk, 0);
        peak = peak.max(conn.memory_bytes());
    }
    let fetch = FetchResponse::default().with_responses(vec![
        fetch_response::FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("big")))
            .with_partitions(vec![fetch_response::PartitionData::default()
                .with_high_watermark(1)
                .with_records(Some(Bytes::from(big.repeat((50 << 20) / big.len()))))]),
    ]);
    vm.on_request_data(&mut conn, &request(1, 12, 2, &FetchRequest::default()), 0);
    vm.on_response_data(&mut conn, &response(9, 1, &ProduceResponse::default()), 0);
    for chunk in response(12, 2, &fetch).chunks(64 << 10) {
        vm.on_response_data(&mut conn, chunk, 0);
        peak = peak.max(conn.memory_bytes());
    }
    let mut t = Totalizer::default();
    vm.flush(&mut t);
    assert_eq!(decode_errors(&t), 0);
    assert_eq!(
        t.counter("kafka_produced_records_total", &[("topic", "big")]),
        ((16 << 20) / big.len()) as u64
    );
    assert!(t.counter("kafka_fetched_records_total", &[("topic", "big")]) > 0);
    assert!(peak < 16 << 10, "peak per-connection memory {peak} bytes");
}

/// A client that floods requests and never reads the answers, then a response with
/// thousands of partitions: the core's accounting stays within 64 KiB per connection.
#[test]
fn memory_is_bounded_under_a_flood_of_unanswered_requests() {
    let mut vm = new_vm();
    let mut conn = vm.open_connection();
    let fetches = frames::fetch_exchanges(16, 1, 64, 1000);
    let produces = frames::produce_exchanges(16, 1, 64, 1000);
    let mut peak = 0;
    for ((fetch, _), (produce, _)) in fetches.iter().zip(&produces) {
        vm.on_request_data(&mut conn, fetch, 0);
        vm.on_request_data(&mut conn, produce, 0);
        peak = peak.max(conn.memory_bytes());
    }
    // The answer to the last fetch, with 5000 partitions.
    let (_, answer) = &frames::fetch_exchanges(16, 1, 5000, 1000)[999];
    for chunk in answer.chunks(1000) {
        vm.on_response_data(&mut conn, chunk, 0);
        peak = peak.max(conn.memory_bytes());
    }
    let mut t = Totalizer::default();
    vm.flush(&mut t);
    assert_eq!(t.counter("kafka_fetched_records_total", &[]), 5000);
    assert!(peak <= 64 << 10, "peak per-connection memory {peak} bytes");
}

#[test]
fn client_id_label_and_topic_cap_apply_to_every_series() {
    let mut vm =
        vm_with(br#"{"client_id_label": true, "max_topics": 1, "topic_overflow_label": "_more"}"#);
    let t = run(&produce_exchange(8), 0, &mut vm);
    // "orders" took the only slot; "payments" is reported under the overflow value.
    let orders = [("topic", "orders"), ("client_id", "test-client")];
    let more = [("topic", "_more"), ("client_id", "test-client")];
    assert_eq!(t.counter("kafka_produced_records_total", &orders), 8);
    assert_eq!(t.counter("kafka_produced_records_total", &more), 9);
    assert_eq!(
        t.counter(
            "kafka_requests_total",
            &[("api", "produce"), ("client_id", "test-client")]
        ),
        1
    );
    assert_eq!(vm.topics().len(), 1);
}

/// 10,000 distinct topics, learned by id from Metadata and produced to by id and by
/// name: the label values stay within `max_topics` plus the overflow value, every record
/// is still counted, and the id map stays bounded.
#[test]
fn topic_cardinality_cap_holds_with_10000_topics() {
    const TOPICS: usize = 10_000;
    let mut vm = new_vm();
    let id = |i: usize| Uuid::from_u128(0xabc0_0000_0000_0000_0000_0000_0000_0000 + i as u128);
    let name = |i: usize| format!("tenant-{i}.orders_v{}", i % 7);
    let mut conn = vm.open_connection();
    let mut correlation = 0;
    for chunk in (0..TOPICS).collect::<Vec<_>>().chunks(200) {
        let topics = chunk
            .iter()
            .map(|&i| {
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(name(i)))))
                    .with_topic_id(id(i))
            })
            .collect();
        correlation += 1;
        let req = request(3, 12, correlation, &MetadataRequest::default());
        vm.on_request_data(&mut conn, &req, 0);
        let resp = MetadataResponse::default().with_topics(topics);
        vm.on_response_data(&mut conn, &response(12, correlation, &resp), 1);
    }
    // One produce request per topic: v13 by id for the even ones, v9 by name for the odd.
    for i in 0..TOPICS {
        let version = if i % 2 == 0 { 13 } else { 9 };
        let topic = produce_request::TopicProduceData::default().with_partition_data(vec![
            produce_request::PartitionProduceData::default().with_records(Some(batch(
                0,
                1,
                Compression::None,
            ))),
        ]);
        let topic = if version == 13 {
            topic.with_topic_id(id(i))
        } else {
            topic.with_name(TopicName(StrBytes::from_string(name(i))))
        };
        let req = ProduceRequest::default()
            .with_acks(0)
            .with_topic_data(vec![topic]);
        correlation += 1;
        vm.on_request_data(&mut conn, &request(0, version, correlation, &req), 2);
        assert!(conn.memory_bytes() <= 64 << 10);
    }
    let mut t = Totalizer::default();
    vm.flush(&mut t);
    let mut labels = std::collections::BTreeSet::new();
    for name in t.counters.keys().chain(t.gauges.keys()) {
        if let Some(rest) = name.split("topic=.=").nth(1) {
            labels.insert(rest.split(";.;").next().unwrap().to_string());
        }
    }
    let max_topics = Config::default().max_topics;
    assert!(
        labels.len() <= max_topics + 1,
        "{} topic label values",
        labels.len()
    );
    assert!(labels.contains("_other"), "overflow label in use");
    assert_eq!(vm.topics().len(), max_topics);
    assert_eq!(
        t.counter("kafka_produced_records_total", &[]),
        TOPICS as u64
    );
    assert_eq!(decode_errors(&t), 0);
    assert!(vm.topics().ids_len() <= kiosk_filter::decode::topics::MAX_IDS);
}

/// Records count as produced when the broker acknowledges them: a topic with a partition
/// error in the response has that request's records counted as refused, not produced.
#[test]
fn produced_records_are_counted_when_acknowledged() {
    for version in [3, 9, 13] {
        let mut vm = new_vm();
        learn_ids(&mut vm);
        let t = run(&produce_exchange_answered(version, 6), 0, &mut vm);
        let o = [("topic", "orders")];
        let p = [("topic", "payments")];
        assert_eq!(
            t.counter("kafka_produced_records_total", &o),
            8,
            "v{version}"
        );
        assert_eq!(
            t.counter("kafka_produced_records_total", &p),
            0,
            "v{version}"
        );
        let refused = [
            ("api", "produce"),
            ("topic", "payments"),
            ("error", "NOT_LEADER_OR_FOLLOWER"),
        ];
        assert_eq!(
            t.counter("kafka_response_errors_total", &refused),
            1,
            "v{version}"
        );
        // A request never answered counts nothing as produced.
        let ex = produce_exchange(version);
        let unanswered = Exchange {
            requests: ex.requests,
            responses: Vec::new(),
        };
        let mut vm = new_vm();
        learn_ids(&mut vm);
        let t = run(&unanswered, 0, &mut vm);
        assert_eq!(
            t.counter("kafka_produced_records_total", &o),
            0,
            "v{version}"
        );
    }
}

/// A value in the schema registries' wire format: magic byte 0, the schema id, the JSON.
fn framed_value(id: u32, json: &str) -> Option<Bytes> {
    let mut value = vec![0];
    value.extend_from_slice(&id.to_be_bytes());
    value.extend_from_slice(json.as_bytes());
    Some(Bytes::from(value))
}

/// With `records_by_schema`, produced records are counted by their values' schema ids:
/// framed values by id, others as `none`, a compressed batch's records as `compressed`
/// (never decompressed), a refused topic's not at all; every split, every version.
/// Without it, no such series.
#[test]
fn records_by_schema_counts_values_by_their_schema_id() {
    let plain = Some(Bytes::from_static(br#"{"id":1}"#));
    let mut values = vec![framed_value(3, r#"{"id":1}"#); 4];
    values.extend([
        framed_value(9, ""),
        plain.clone(),
        plain,
        None,
        Some(Bytes::from_static(&[0, 0])),
        // Magic byte 1 is not the format.
        Some(Bytes::from_static(&[1, 0, 0, 0, 3, b'{', b'}'])),
    ]);
    let orders = concat(&[
        &frames::batch_with_values(0, &values, Compression::None),
        &frames::batch_with_values(10, &vec![framed_value(3, "{}"); 5], Compression::Gzip),
    ]);
    let payments = [
        frames::batch_with_values(0, &vec![framed_value(3, "{}"); 2], Compression::None),
        frames::batch_with_values(0, &vec![framed_value(4, "{}"); 3], Compression::None),
    ];
    let on = || vm_with(br#"{"records_by_schema": true}"#);
    for version in [3, 9, 13] {
        for error in [0, 6] {
            let ex = produce_exchange_of(version, orders.clone(), payments.clone(), error);
            every_split_in(
                &ex,
                || {
                    let mut vm = on();
                    learn_ids(&mut vm);
                    vm
                },
                |t, how| {
                    let ctx = format!("produce v{version}, error {error}, {how}");
                    assert_eq!(decode_errors(t), 0, "{ctx}: {:?}", t.counters);
                    let by = |topic, schema| {
                        let labels = [("topic", topic), ("schema", schema)];
                        t.counter("kafka_produced_records_by_schema_total", &labels)
                    };
                    let orders = [by("orders", "3"), by("orders", "9"), by("orders", "none")];
                    assert_eq!(orders, [4, 1, 5], "{ctx}");
                    assert_eq!(by("orders", "compressed"), 5, "{ctx}");
                    let refused = error != 0;
                    let payments = [by("payments", "3"), by("payments", "4")];
                    let expected = if refused { [0, 0] } else { [2, 3] };
                    assert_eq!(payments, expected, "{ctx}");
                    assert_eq!(
                        t.counter("kafka_produced_records_by_schema_total", &[]),
                        t.counter("kafka_produced_records_total", &[]),
                        "{ctx}: every acknowledged record has one tag"
                    );
                },
            );
        }
        let off = run(
            &produce_exchange_of(version, orders.clone(), payments.clone(), 0),
            0,
            &mut new_vm(),
        );
        assert_eq!(off.counter("kafka_produced_records_total", &[]), 20);
        assert_eq!(
            off.counter("kafka_produced_records_by_schema_total", &[]),
            0,
            "off by default"
        );
    }
}

/// Records read for their schema ids are read in chunks of `READ_SIZE`, many records per
/// read (a read, not a byte, is what costs in Envoy); responses keep the window.
#[test]
fn records_by_schema_reads_records_in_large_chunks() {
    // 4 partitions, one batch of 64 records of 1 KiB each, 3 requests.
    let exchanges = frames::produce_exchanges(1024, 64, 4, 3);
    let requests: Vec<u8> = exchanges.iter().flat_map(|(q, _)| q.clone()).collect();
    let responses: Vec<u8> = exchanges.iter().flat_map(|(_, r)| r.clone()).collect();
    let window = 64;
    let mut vm = vm_with(br#"{"records_by_schema": true}"#);
    let mut conn = vm.open_connection();
    let mut reads = Vec::new();
    let size = requests.len();
    vm.on_buffer(
        &mut conn,
        Direction::Request,
        size,
        window,
        10,
        |at, len| {
            reads.push(len);
            requests.get(at..at + len)
        },
    );
    let size = responses.len();
    vm.on_buffer(
        &mut conn,
        Direction::Response,
        size,
        window,
        17,
        |at, len| {
            assert!(len <= window, "a response read of {len} bytes");
            responses.get(at..at + len)
        },
    );
    vm.close(&mut conn);
    let mut totals = Totalizer::default();
    vm.flush(&mut totals);
    let records = 3 * 4 * 64;
    let by = [("schema", "none")];
    assert_eq!(
        totals.counter("kafka_produced_records_by_schema_total", &by),
        records
    );
    assert_eq!(decode_errors(&totals), 0);
    assert!(reads.iter().all(|&n| n as u64 <= READ_SIZE));
    let large = reads.iter().filter(|&&n| n as u64 == READ_SIZE).count();
    // 64 KiB of records per batch: about four large reads each, not one per record.
    assert!(
        (12..=60).contains(&large),
        "{large} reads of {READ_SIZE}: {reads:?}"
    );
    assert!((reads.len() as u64) < records / 4, "{} reads", reads.len());
}

/// Produce v2 (pre-transactions, still sent by old clients) is v3 without the leading
/// nullable transactional id; the response layouts are identical. Derive it from v3.
#[test]
fn produce_v2_as_old_clients_send_it() {
    let v3 = produce_exchange(3);
    // size(4) api_key(2) version(2) correlation(4) client_id(2 + 11) | transactional_id(2: null)
    let header_end = 4 + 2 + 2 + 4 + 2 + "test-client".len();
    assert_eq!(
        &v3.requests[header_end..header_end + 2],
        &[0xff, 0xff],
        "null transactional id"
    );
    let mut requests = v3.requests[..header_end].to_vec();
    requests.extend_from_slice(&v3.requests[header_end + 2..]);
    let size = (requests.len() - 4) as i32;
    requests[..4].copy_from_slice(&size.to_be_bytes());
    requests[7] = 2; // api_version
    let ex = Exchange {
        requests,
        responses: v3.responses,
    };
    every_split(
        &ex,
        |_| {},
        |t, how| {
            assert_eq!(decode_errors(t), 0, "produce v2, {how}");
            assert_eq!(
                t.counter("kafka_produced_records_total", &[("topic", "orders")]),
                8,
                "produce v2, {how}"
            );
            assert_eq!(
                t.counter("kafka_produced_records_total", &[("topic", "payments")]),
                9,
                "produce v2, {how}"
            );
        },
    );
}

/// A legacy entry claiming fewer bytes than its own prefix is an error, not an underflow.
#[test]
fn record_entry_shorter_than_its_prefix_is_a_decode_error() {
    let mut records = vec![0u8; 8]; // offset
    records.extend_from_slice(&2i32.to_be_bytes()); // length 2 < the 5 bytes that follow
    records.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0]); // crc, magic 1, padding
    let req = ProduceRequest::default().with_acks(1).with_topic_data(vec![
        produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partition_data(vec![produce_request::PartitionProduceData::default()
                .with_records(Some(Bytes::from(records)))]),
    ]);
    let mut vm = new_vm();
    let mut conn = vm.open_connection();
    vm.on_request_data(&mut conn, &request(0, 3, 1, &req), 0);
    let mut t = Totalizer::default();
    vm.flush(&mut t);
    assert_eq!(
        t.counter(
            "kafka_decode_errors_total",
            &[("reason", "bad_record_batch")]
        ),
        1
    );
}

/// Random bodies behind valid headers, for every deeply decoded API and version, in both
/// directions: the walkers meet arbitrary lengths, counts and varints. Nothing panics
/// (overflow checks are on in tests) and every connection stays usable.
#[test]
fn random_bodies_behind_valid_headers_never_panic() {
    let mut seed = 0x853c_49e6_748f_ea9bu64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (api, versions) in [(0i16, 0..=13i16), (1, 0..=18), (3, 0..=13), (18, 0..=4)] {
        for version in versions {
            for round in 0..40i32 {
                let mut vm = new_vm();
                let mut conn = vm.open_connection();
                let len = (next() % 200) as usize;
                // Bias towards small numbers, where lengths and counts look plausible.
                let body: Vec<u8> = (0..len)
                    .map(|_| {
                        if next() % 3 == 0 {
                            (next() % 4) as u8
                        } else {
                            next() as u8
                        }
                    })
                    .collect();
                let mut req = vec![0, 0, 0, 0];
                req.extend_from_slice(&api.to_be_bytes());
                req.extend_from_slice(&version.to_be_bytes());
                req.extend_from_slice(&round.to_be_bytes());
                req.extend_from_slice(&[0, 1, b'c']);
                req.extend_from_slice(&body);
                let size = (req.len() - 4) as i32;
                req[..4].copy_from_slice(&size.to_be_bytes());
                let mut resp = (4 + body.len() as i32).to_be_bytes().to_vec();
                resp.extend_from_slice(&round.to_be_bytes());
                resp.extend_from_slice(&body);
                for chunk in req.chunks(7) {
                    vm.on_request_data(&mut conn, chunk, 0);
                }
                for chunk in resp.chunks(5) {
                    vm.on_response_data(&mut conn, chunk, 1);
                }
                assert!(!conn.gave_up(), "api {api} v{version}: framing is valid");
                assert!(conn.memory_bytes() < 64 << 10);
                vm.flush(&mut Totalizer::default());
            }
        }
    }
}

#[test]
fn record_bodies_are_never_read_into_the_vm() {
    // 4 partitions, each one batch of 4 records of 16 KiB, in both directions.
    for (name, exchanges) in [
        ("produce", frames::produce_exchanges(16 * 1024, 4, 4, 3)),
        ("fetch", frames::fetch_exchanges(16 * 1024, 4, 4, 3)),
    ] {
        let ex = Exchange {
            requests: exchanges.iter().flat_map(|(q, _)| q.clone()).collect(),
            responses: exchanges.iter().flat_map(|(_, r)| r.clone()).collect(),
        };
        let total = ex.requests.len() + ex.responses.len();
        for window in [64, 4096] {
            let mut vm = new_vm();
            let (totals, read) = run_windowed(&ex, ex.requests.len() / 3, window, &mut vm);
            let (metric, records) = match name {
                "produce" => ("kafka_produced_records_total", 3 * 16),
                _ => ("kafka_fetched_records_total", 3 * 16),
            };
            assert_eq!(
                totals.counter(metric, &[]),
                records,
                "{name}, window {window}"
            );
            assert_eq!(decode_errors(&totals), 0, "{name}, window {window}");
            // Headers plus at most one window per batch and per frame.
            let bound = 3 * 2 * (5 + 4) * window + 3 * 2 * 200;
            assert!(
                read < bound.min(total / 10),
                "{name}, window {window}: read {read} of {total}"
            );
        }
    }
}

/// A consumer that pipelines its fetches: it asks for `orders`/0 from offset 0 twice
/// before reading the first answer. The first response carries offsets 0..5, the second
/// 0..5 again and 5..8. Each record counts once as fetched; the five sent twice count
/// once more as refetched. Bytes are what crossed the wire, repeats included.
fn refetch_exchange(version: i16) -> (Exchange, u64) {
    let by_id = version >= 13;
    let topic = |parts| {
        let t = fetch_request::FetchTopic::default().with_partitions(parts);
        if by_id {
            t.with_topic_id(ORDERS)
        } else {
            t.with_topic(TopicName(StrBytes::from_static_str("orders")))
        }
    };
    let ask = || {
        let part = fetch_request::FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(0)
            .with_partition_max_bytes(1 << 20);
        FetchRequest::default()
            .with_max_wait_ms(500)
            .with_topics(vec![topic(vec![part])])
    };
    let answer = |records: Bytes| {
        let part = fetch_response::PartitionData::default()
            .with_partition_index(0)
            .with_high_watermark(8)
            .with_records(Some(records));
        let t = fetch_response::FetchableTopicResponse::default().with_partitions(vec![part]);
        let t = if by_id {
            t.with_topic_id(ORDERS)
        } else {
            t.with_topic(TopicName(StrBytes::from_static_str("orders")))
        };
        FetchResponse::default().with_responses(vec![t])
    };
    let first = batch(0, 5, Compression::None);
    let again = concat(&[&first, &batch(5, 3, Compression::Lz4)]);
    let ex = Exchange {
        requests: [
            request(1, version, 1, &ask()),
            request(1, version, 2, &ask()),
        ]
        .concat(),
        responses: [
            response(version, 1, &answer(first.clone())),
            response(version, 2, &answer(again.clone())),
        ]
        .concat(),
    };
    (ex, (first.len() + again.len()) as u64)
}

#[test]
fn a_record_fetched_twice_counts_once_and_once_as_refetched() {
    for version in [4, 12, 13, 18] {
        let (ex, bytes) = refetch_exchange(version);
        every_split(&ex, learn_ids, |t, how| {
            let ctx = format!("fetch v{version}, {how}");
            let o = [("topic", "orders")];
            assert_eq!(decode_errors(t), 0, "{ctx}");
            assert_eq!(t.counter("kafka_fetched_records_total", &o), 8, "{ctx}");
            assert_eq!(t.counter("kafka_refetched_records_total", &o), 5, "{ctx}");
            assert_eq!(t.counter("kafka_fetched_bytes_total", &o), bytes, "{ctx}");
            let lag = t.gauge(
                "kafka_consumer_lag",
                &[("topic", "orders"), ("partition", "0")],
            );
            assert_eq!(lag, Some(0), "{ctx}");
        });
    }
}

/// Once per connection: another consumer connection fetching the same records counts
/// them again, as fetched, not as refetched.
#[test]
fn each_connection_counts_its_own_first_copy() {
    let (ex, _) = refetch_exchange(12);
    let mut vm = new_vm();
    run(&ex, 0, &mut vm);
    let t = run(&ex, ex.requests.len() / 2, &mut vm);
    let o = [("topic", "orders")];
    assert_eq!(t.counter("kafka_fetched_records_total", &o), 8);
    assert_eq!(t.counter("kafka_refetched_records_total", &o), 5);
}

/// SASL on the app's behalf, through the VM as the glue drives it: the app's bytes wait
/// until the broker accepted our exchange, then pass in order; the observer reports
/// exactly what it reports without the action, plus one `kafka_auth_total`, and never
/// sees a byte of ours.
#[test]
fn sasl_on_the_apps_behalf_is_invisible_to_the_observer() {
    use kiosk_filter::act::Step;

    let ex = produce_exchange(9);
    let mut acting = plain_sasl_vm();
    let mut plain = new_vm();
    let mut conn = acting.open_connection();
    let mut other = plain.open_connection();
    // The app's first request (no ApiVersions) is taken and held; ours go out.
    let step = feed(&mut acting, &mut conn, Direction::Request, &ex.requests);
    assert_eq!(
        (step.take, step.hold, step.release.len()),
        (ex.requests.len(), true, 0)
    );
    let mut ours = Bytes::from(step.inject);
    let mut ids = Vec::new();
    for (api, version) in [(17, 1), (36, 1)] {
        let size = i32::from_be_bytes(ours[..4].try_into().unwrap()) as usize;
        let mut frame = ours.slice(4..4 + size);
        ours = ours.slice(4 + size..);
        let header = RequestHeader::decode(&mut frame, 1).unwrap();
        assert_eq!(
            (header.request_api_key, header.request_api_version),
            (api, version)
        );
        ids.push(header.correlation_id);
        if api == 17 {
            let body = SaslHandshakeRequest::decode(&mut frame, 1).unwrap();
            assert_eq!(body.mechanism.as_str(), "PLAIN");
        } else {
            let body = SaslAuthenticateRequest::decode(&mut frame, 1).unwrap();
            assert_eq!(&body.auth_bytes[..], b"\0checkout\0pw");
        }
    }
    assert!(ours.is_empty());
    // The broker accepts; its responses are taken, and the app's bytes released.
    let handshake =
        SaslHandshakeResponse::default().with_mechanisms(vec![StrBytes::from_static_str("PLAIN")]);
    let mut broker = response(1, ids[0], &handshake);
    broker.extend(response(1, ids[1], &SaslAuthenticateResponse::default()));
    let step = feed(&mut acting, &mut conn, Direction::Response, &broker);
    assert_eq!(step.take, broker.len());
    assert_eq!(step.release, ex.requests);
    assert!(!step.close && !step.hold && step.inject.is_empty());
    // From now on the action is inert: the app's responses pass as they are.
    let step = feed(&mut acting, &mut conn, Direction::Response, &ex.responses);
    assert_eq!(step, Step::default());
    feed(&mut plain, &mut other, Direction::Request, &ex.requests);
    feed(&mut plain, &mut other, Direction::Response, &ex.responses);
    let a = observed_as_without_the_action(&mut acting, &mut plain, ("success", "ok"), 1);
    assert_eq!(decode_errors(&a), 0);
    assert!(a.counter("kafka_produced_records_total", &[]) > 0);
}

/// A VM performing PLAIN on the app's behalf as `checkout` (password `pw`), toward the
/// brokers' identity only (Strimzi's `<cluster>-kafka`).
fn plain_sasl_vm() -> Vm {
    let mut vm = vm_with(
        br#"{"kafka_auth": {"mechanism": "PLAIN",
            "upstreams": {"principals": ["cluster.local/ns/kafka/sa/kiosk-kafka"]}}}"#,
    );
    vm.set_kafka_credential(Some(kiosk_filter::act::sasl::Credential {
        username: "checkout".into(),
        password: "pw".into(),
    }));
    vm
}

/// One data callback of `bytes`, as the glue hands it over (64-byte reads).
fn feed(
    vm: &mut Vm,
    conn: &mut kiosk_filter::Connection,
    direction: Direction,
    bytes: &[u8],
) -> kiosk_filter::act::Step {
    vm.on_buffer(conn, direction, bytes.len(), 64, 0, |at, len| {
        bytes.get(at..(at + len).min(bytes.len()))
    })
}

/// The acting VM counted `times` authentications with `(result, reason)`, and apart from
/// those exactly what the plain VM counted: the observer never saw the action. Returns the
/// acting VM's counters but those.
fn observed_as_without_the_action(
    acting: &mut Vm,
    plain: &mut Vm,
    (result, reason): (&str, &str),
    times: u64,
) -> Totalizer {
    let (mut a, mut b) = (Totalizer::default(), Totalizer::default());
    acting.flush(&mut a);
    plain.flush(&mut b);
    let auth = [
        ("mechanism", "PLAIN"),
        ("result", result),
        ("reason", reason),
    ];
    assert_eq!(a.counter("kafka_auth_total", &auth), times);
    a.counters
        .retain(|name, _| !name.ends_with("kafka_auth_total"));
    assert_eq!(a.counters, b.counters, "observed as without the action");
    a
}

/// A WasmPlugin matches ports by number: an app may dial any service on Kafka's port. The
/// credential goes only to the configured upstreams; toward any other the app's bytes pass
/// untouched (observed as without the action) and the withheld credential is counted.
#[test]
fn the_credential_goes_only_to_the_configured_upstreams() {
    use kiosk_filter::act::{Step, Upstream};

    let ex = produce_exchange(9);
    let mut acting = plain_sasl_vm();
    let mut plain = new_vm();
    let upstream = |principal: Option<&str>, cluster: &str| Upstream {
        principal: principal.map(String::from),
        dns_name: None,
        cluster: Some(cluster.into()),
    };
    // Another meshed service on the port, one without mTLS, and the passthrough cluster.
    let refused = [
        upstream(
            Some("spiffe://cluster.local/ns/pipeline/sa/decoy"),
            "outbound|9092||decoy.pipeline.svc.cluster.local",
        ),
        upstream(
            None,
            "outbound|9092||kiosk-kafka-bootstrap.kafka.svc.cluster.local",
        ),
        upstream(None, "PassthroughCluster"),
    ];
    for to in &refused {
        let mut conn = acting.open_connection();
        assert!(!acting.on_upstream(&mut conn, to), "{to:?}");
        for (direction, bytes) in [
            (Direction::Request, &ex.requests),
            (Direction::Response, &ex.responses),
        ] {
            let step = feed(&mut acting, &mut conn, direction, bytes);
            assert_eq!(step, Step::default(), "nothing taken, sent or held: {to:?}");
        }
        let mut other = plain.open_connection();
        assert!(plain.on_upstream(&mut other, to), "nothing to withhold");
        feed(&mut plain, &mut other, Direction::Request, &ex.requests);
        feed(&mut plain, &mut other, Direction::Response, &ex.responses);
    }
    let withheld = ("skipped", "upstream_not_allowed");
    observed_as_without_the_action(&mut acting, &mut plain, withheld, 3);
    // The brokers' identity: the exchange starts with the app's first request.
    let mut conn = acting.open_connection();
    let broker = upstream(
        Some("spiffe://cluster.local/ns/kafka/sa/kiosk-kafka"),
        "outbound|9092||kiosk-kafka-bootstrap.kafka.svc.cluster.local",
    );
    assert!(acting.on_upstream(&mut conn, &broker));
    let step = feed(&mut acting, &mut conn, Direction::Request, &ex.requests);
    assert!(step.hold && !step.inject.is_empty(), "{step:?}");
    let sent = step.inject.windows(12).any(|w| w == b"\0checkout\0pw");
    assert!(sent, "the credential goes to the brokers");
}

/// Proxy-wasm shared data as Envoy keeps it: one table for every worker's VM.
#[derive(Clone, Default)]
struct HostSharedData(Rc<RefCell<HashMap<[u8; 16], String>>>);

impl SharedIds for HostSharedData {
    fn publish(&self, id: &[u8; 16], name: &str) {
        self.0.borrow_mut().insert(*id, name.to_string());
    }
    fn lookup(&self, id: &[u8; 16]) -> Option<String> {
        self.0.borrow().get(id).cloned()
    }
}

/// The VMs of one sidecar's two worker threads (Istio's default `concurrency: 2`).
fn two_workers() -> (Vm, Vm) {
    let shared = HostSharedData::default();
    let worker = || {
        let mut vm = new_vm();
        vm.topics_mut().share_with(Box::new(shared.clone()));
        vm
    };
    (worker(), worker())
}

/// What the Java client does through a sidecar with two workers: Metadata on connection A,
/// served by worker 1, then, a millisecond later, Produce v13 and Fetch v13+ (topics by id
/// only) on connection B, served by worker 2. No tick and no flush comes between: the id
/// must reach worker 2 in the callback that learned it.
#[test]
fn ids_learned_on_one_worker_count_by_name_on_the_other_at_once() {
    // Produce names topics by id from v13, the newest version.
    {
        let (mut vm1, mut vm2) = two_workers();
        learn_ids(&mut vm1);
        let t = run(&produce_exchange(13), usize::MAX, &mut vm2);
        let ctx = "produce v13";
        assert_eq!(
            t.counter("kafka_produced_records_total", &[("topic", "orders")]),
            8,
            "{ctx}"
        );
        assert_eq!(
            t.counter("kafka_produced_records_total", &[("topic", "payments")]),
            9,
            "{ctx}"
        );
        let unknown = [("topic", "unknown")];
        assert_eq!(t.counter("kafka_produced_records_total", &unknown), 0);
    }
    for version in 13..=18 {
        let (mut vm1, mut vm2) = two_workers();
        learn_ids(&mut vm1);
        let (ex, bytes) = fetch_exchange(version);
        let t = run(&ex, usize::MAX, &mut vm2);
        let o = [("topic", "orders")];
        assert_eq!(
            t.counter("kafka_fetched_records_total", &o),
            6,
            "v{version}"
        );
        assert_eq!(
            t.counter("kafka_fetched_bytes_total", &o),
            bytes,
            "v{version}"
        );
        let unknown = [("topic", "unknown")];
        assert_eq!(t.counter("kafka_fetched_records_total", &unknown), 0);
    }
}

/// A Produce whose id neither worker knew when the request passed is resolved when its
/// response arrives: records are counted at the acknowledgement, by name.
#[test]
fn an_id_unknown_at_the_request_is_resolved_at_the_response() {
    let (mut vm1, mut vm2) = two_workers();
    let ex = produce_exchange(13);
    let mut conn = vm2.open_connection();
    vm2.on_request_data(&mut conn, &ex.requests, 10);
    learn_ids(&mut vm1);
    vm2.on_response_data(&mut conn, &ex.responses, 11);
    vm2.close(&mut conn);
    let mut t = Totalizer::default();
    vm2.flush(&mut t);
    assert_eq!(
        t.counter("kafka_produced_records_total", &[("topic", "orders")]),
        8
    );
    assert_eq!(
        t.counter("kafka_produced_records_total", &[("topic", "unknown")]),
        0
    );

    // An id no Metadata response on any worker named stays unknown.
    let (_, mut lone) = two_workers();
    let t = run(&ex, usize::MAX, &mut lone);
    assert_eq!(
        t.counter("kafka_produced_records_total", &[("topic", "unknown")]),
        17
    );
}

/// A fetch of one partition holding a committed plain batch (3 records), producer 7's
/// aborted transaction (5 records, then its marker) and producer 8's committed one (2
/// records, then its marker); `read_committed`: the response lists 7's transaction.
fn transactional_fetch(version: i16, read_committed: bool) -> Exchange {
    let records = concat(&[
        &batch(0, 3, Compression::None),
        &frames::transactional_batch(3, 5, 7, false),
        &frames::transactional_batch(8, 1, 7, true),
        &frames::transactional_batch(9, 2, 8, false),
        &frames::transactional_batch(11, 1, 8, true),
    ]);
    let name = TopicName(StrBytes::from_static_str("orders"));
    let mut req_topic = fetch_request::FetchTopic::default().with_partitions(vec![
        fetch_request::FetchPartition::default().with_fetch_offset(0),
    ]);
    let mut resp_topic = fetch_response::FetchableTopicResponse::default();
    if version >= 13 {
        req_topic = req_topic.with_topic_id(ORDERS);
        resp_topic = resp_topic.with_topic_id(ORDERS);
    } else {
        req_topic = req_topic.with_topic(name.clone());
        resp_topic = resp_topic.with_topic(name);
    }
    let aborted = read_committed.then(|| {
        vec![fetch_response::AbortedTransaction::default()
            .with_producer_id(ProducerId(7))
            .with_first_offset(3)]
    });
    let partition = fetch_response::PartitionData::default()
        .with_high_watermark(12)
        .with_last_stable_offset(12)
        .with_aborted_transactions(aborted)
        .with_records(Some(records));
    let req = FetchRequest::default()
        .with_isolation_level(i8::from(read_committed))
        .with_topics(vec![req_topic]);
    let resp =
        FetchResponse::default().with_responses(vec![resp_topic.with_partitions(vec![partition])]);
    Exchange {
        requests: request(1, version, 5, &req),
        responses: response(version, 5, &resp),
    }
}

/// A read_committed consumer is never delivered an aborted transaction's records (its
/// client drops them from the response): neither does the filter count them. A
/// read_uncommitted consumer is delivered them, and they count.
#[test]
fn aborted_transactions_are_not_fetched_records_of_read_committed_consumers() {
    for version in [4, 12, 13, 16, 18] {
        for (read_committed, want) in [(true, 5), (false, 10)] {
            let ex = transactional_fetch(version, read_committed);
            every_split(&ex, learn_ids, |t, how| {
                let ctx = format!("fetch v{version}, read_committed {read_committed}, {how}");
                assert_eq!(decode_errors(t), 0, "{ctx}");
                let o = [("topic", "orders")];
                assert_eq!(t.counter("kafka_fetched_records_total", &o), want, "{ctx}");
            });
        }
    }
}

/// A share consumer's exchanges (KIP-932, v1): a ShareFetch acknowledging records of
/// `orders` (offsets 0-9 accepted as one range, 10-12 accepted, released and rejected one
/// by one, 13-14 a gap) whose response hands it offsets 0-2 and 4 of a 5-record batch;
/// then a ShareAcknowledge releasing offsets 20-24 of `payments`.
fn share_exchange() -> (Exchange, u64) {
    use kafka_protocol::messages::share_acknowledge_request as ack_req;
    use kafka_protocol::messages::share_acknowledge_response as ack_resp;
    use kafka_protocol::messages::share_fetch_request as fetch_req;
    use kafka_protocol::messages::share_fetch_response as fetch_resp;
    let acks = |first: i64, last: i64, types: Vec<i8>| {
        fetch_req::AcknowledgementBatch::default()
            .with_first_offset(first)
            .with_last_offset(last)
            .with_acknowledge_types(types)
    };
    let fetch = ShareFetchRequest::default()
        .with_group_id(Some(GroupId(StrBytes::from_static_str("share-group"))))
        .with_member_id(Some(StrBytes::from_static_str("member-1")))
        .with_max_records(500)
        .with_topics(vec![fetch_req::FetchTopic::default()
            .with_topic_id(ORDERS)
            .with_partitions(vec![fetch_req::FetchPartition::default()
                .with_partition_index(0)
                .with_acknowledgement_batches(vec![
                    acks(0, 9, vec![1]),
                    acks(10, 12, vec![1, 2, 3]),
                    acks(13, 14, vec![0]),
                ])])]);
    let records = batch(0, 5, Compression::Lz4);
    let fetched = fetch_resp::ShareFetchResponse::default().with_responses(vec![
        fetch_resp::ShareFetchableTopicResponse::default()
            .with_topic_id(ORDERS)
            .with_partitions(vec![fetch_resp::PartitionData::default()
                .with_partition_index(0)
                .with_records(Some(records.clone()))
                .with_acquired_records(vec![
                    fetch_resp::AcquiredRecords::default()
                        .with_first_offset(0)
                        .with_last_offset(2)
                        .with_delivery_count(1),
                    fetch_resp::AcquiredRecords::default()
                        .with_first_offset(4)
                        .with_last_offset(4)
                        .with_delivery_count(2),
                ])]),
    ]);
    let acknowledge = ShareAcknowledgeRequest::default()
        .with_group_id(Some(GroupId(StrBytes::from_static_str("share-group"))))
        .with_topics(vec![ack_req::AcknowledgeTopic::default()
            .with_topic_id(PAYMENTS)
            .with_partitions(vec![ack_req::AcknowledgePartition::default()
                .with_partition_index(1)
                .with_acknowledgement_batches(vec![
                    ack_req::AcknowledgementBatch::default()
                        .with_first_offset(20)
                        .with_last_offset(24)
                        .with_acknowledge_types(vec![2]),
                ])])]);
    let acknowledged = ShareAcknowledgeResponse::default().with_responses(vec![
        ack_resp::ShareAcknowledgeTopicResponse::default()
            .with_topic_id(PAYMENTS)
            .with_partitions(vec![ack_resp::PartitionData::default()
                .with_partition_index(1)
                .with_error_code(0)]),
    ]);
    let ex = Exchange {
        requests: [request(78, 1, 3, &fetch), request(79, 1, 4, &acknowledge)].concat(),
        responses: [response(1, 3, &fetched), response(1, 4, &acknowledged)].concat(),
    };
    (ex, records.len() as u64)
}

#[test]
fn share_groups_acquired_and_acknowledged_records_per_topic() {
    let (ex, bytes) = share_exchange();
    every_split(&ex, learn_ids, |t, how| {
        assert_eq!(decode_errors(t), 0, "{how}: {:?}", t.counters);
        let acquired = |topic| t.counter("kafka_share_acquired_records_total", &[("topic", topic)]);
        assert_eq!(acquired("orders"), 4, "{how}");
        let acked = |topic, result| {
            t.counter(
                "kafka_share_acknowledged_records_total",
                &[("topic", topic), ("result", result)],
            )
        };
        let orders = ["accept", "release", "reject", "renew"].map(|r| acked("orders", r));
        assert_eq!(orders, [11, 1, 1, 0], "{how}");
        assert_eq!(acked("payments", "release"), 5, "{how}");
        // Share consumers are consumers: the topic -> consumer edge carries the batches.
        let edge = [
            ("source_workload", "orders"),
            ("destination_workload", "checkout"),
        ];
        assert_eq!(
            t.counter("istio_tcp_received_bytes_total", &edge),
            bytes,
            "{how}"
        );
        // Nothing of a share group is counted as an ordinary consumer's fetch.
        assert_eq!(t.counter("kafka_fetched_records_total", &[]), 0, "{how}");
        for api in ["share_fetch", "share_acknowledge"] {
            assert_eq!(
                t.counter("kafka_requests_total", &[("api", api)]),
                1,
                "{how}"
            );
        }
    });
}
