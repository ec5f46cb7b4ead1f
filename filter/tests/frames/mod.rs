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
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: base + i as i64,
            // kafka-protocol starts a new batch when offset - sequence changes: keep it
            // constant so the records form one batch, as a producer sends them (the base
            // sequence stays -1, a non-idempotent producer's).
            sequence: i as i32 - 1,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'v'; value_len])),
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
