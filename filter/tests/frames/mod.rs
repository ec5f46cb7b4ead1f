//! Kafka frames encoded by the `kafka-protocol` crate, shared by the decoder tests and the
//! benchmarks (`#[path]`-included there), so both read the same bytes.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

pub fn framed(header: impl FnOnce(&mut BytesMut), body: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut buf = BytesMut::new();
    header(&mut buf);
    body(&mut buf);
    let mut out = (buf.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&buf);
    out
}

pub fn request<M: Encodable + HeaderVersion>(
    api: i16,
    version: i16,
    correlation: i32,
    msg: &M,
) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(api)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str("test-client")));
    framed(
        |b| header.encode(b, M::header_version(version)).unwrap(),
        |b| msg.encode(b, version).unwrap(),
    )
}

pub fn response<M: Encodable + HeaderVersion>(version: i16, correlation: i32, msg: &M) -> Vec<u8> {
    let header = ResponseHeader::default().with_correlation_id(correlation);
    framed(
        |b| header.encode(b, M::header_version(version)).unwrap(),
        |b| msg.encode(b, version).unwrap(),
    )
}

/// A v2 record batch of `n` records of 100 bytes starting at `base`.
pub fn batch(base: i64, n: usize, compression: Compression) -> Bytes {
    batch_of(base, n, 100, compression)
}

/// A v2 record batch of `n` records with `value_len`-byte values starting at `base`.
pub fn batch_of(base: i64, n: usize, value_len: usize, compression: Compression) -> Bytes {
    let values = vec![Some(Bytes::from(vec![b'v'; value_len])); n];
    batch_with_values(base, &values, compression)
}

/// A v2 record batch of these values (None: a null value) starting at `base`.
pub fn batch_with_values(base: i64, values: &[Option<Bytes>], compression: Compression) -> Bytes {
    batch_by(base, values, compression, None)
}

/// A transactional v2 batch of `n` records of producer `producer_id` starting at `base`;
/// `control`: a transaction marker (one record) instead.
pub fn transactional_batch(base: i64, n: usize, producer_id: i64, control: bool) -> Bytes {
    let values = vec![Some(Bytes::from(vec![b'v'; 100])); n];
    batch_by(
        base,
        &values,
        Compression::None,
        Some((producer_id, control)),
    )
}

fn batch_by(
    base: i64,
    values: &[Option<Bytes>],
    compression: Compression,
    transaction: Option<(i64, bool)>,
) -> Bytes {
    let (producer_id, control) = transaction.unwrap_or((-1, false));
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, value)| Record {
            transactional: transaction.is_some(),
            control,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: if transaction.is_some() { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: base + i as i64,
            // kafka-protocol starts a new batch when offset - sequence changes: keep it
            // constant so the records form one batch, as a producer sends them (the base
            // sequence stays -1, a non-idempotent producer's).
            sequence: i as i32 - 1,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.freeze()
}

pub fn concat(parts: &[&[u8]]) -> Bytes {
    Bytes::from(parts.concat())
}

fn bench_topic() -> TopicName {
    TopicName(StrBytes::from_static_str("bench.events"))
}

/// `count` produce exchanges (v9, acks=-1, one topic, one batch of `records` records of
/// `value_len` bytes per partition): (request frame, response frame), correlation ids
/// 0..count. The benchmarks' traffic.
pub fn produce_exchanges(
    value_len: usize,
    records: usize,
    partitions: i32,
    count: i32,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let batch = batch_of(0, records, value_len, Compression::None);
    (0..count)
        .map(|correlation| {
            let parts = (0..partitions)
                .map(|p| {
                    produce_request::PartitionProduceData::default()
                        .with_index(p)
                        .with_records(Some(batch.clone()))
                })
                .collect();
            let topic = produce_request::TopicProduceData::default()
                .with_name(bench_topic())
                .with_partition_data(parts);
            let req = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(1000)
                .with_topic_data(vec![topic]);
            let parts = (0..partitions)
                .map(|p| produce_response::PartitionProduceResponse::default().with_index(p))
                .collect();
            let topic = produce_response::TopicProduceResponse::default()
                .with_name(bench_topic())
                .with_partition_responses(parts);
            let resp = ProduceResponse::default().with_responses(vec![topic]);
            (
                request(0, 9, correlation, &req),
                response(9, correlation, &resp),
            )
        })
        .collect()
}

/// `count` fetch exchanges (v12, one batch of `records` records of `value_len` bytes per
/// partition in each response): (request frame, response frame). Like a consumer's, each
/// fetch asks for the offset after the records the previous one returned.
pub fn fetch_exchanges(
    value_len: usize,
    records: usize,
    partitions: i32,
    count: i32,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..count)
        .map(|correlation| {
            let offset = i64::from(correlation) * records as i64;
            let batch = batch_of(offset, records, value_len, Compression::None);
            let asked = (0..partitions)
                .map(|p| {
                    fetch_request::FetchPartition::default()
                        .with_partition(p)
                        .with_fetch_offset(offset)
                })
                .collect();
            let topic = fetch_request::FetchTopic::default()
                .with_topic(bench_topic())
                .with_partitions(asked);
            let req = FetchRequest::default()
                .with_max_wait_ms(500)
                .with_topics(vec![topic]);
            let parts = (0..partitions)
                .map(|p| {
                    fetch_response::PartitionData::default()
                        .with_partition_index(p)
                        .with_high_watermark(1_000_000)
                        .with_records(Some(batch.clone()))
                })
                .collect();
            let topic = fetch_response::FetchableTopicResponse::default()
                .with_topic(bench_topic())
                .with_partitions(parts);
            let resp = FetchResponse::default().with_responses(vec![topic]);
            (
                request(1, 12, correlation, &req),
                response(12, correlation, &resp),
            )
        })
        .collect()
}
