//! The records the test pipeline carries, and how each stage reads them back.
//!
//! `producer` sends and `verify` expects the same deterministic set, derived from a run id
//! and a count, so verify can say exactly which record is missing or different.

use serde_json::{json, Value};

/// Header carrying the record's sequence number, kept by every stage.
pub const SEQ_HEADER: &str = "kiosk-seq";

const ITEMS: [&str; 5] = ["keyboard", "monitor", "cable", "headset", "dock"];

/// One record as the producer sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct Expected {
    pub seq: u64,
    pub key: String,
    pub value: Value,
}

/// Records 1..=n of run `run`.
pub fn expected(run: &str, n: u64) -> Vec<Expected> {
    (1..=n)
        .map(|seq| Expected {
            seq,
            key: format!("order-{seq:06}"),
            value: json!({
                "id": seq,
                "run": run,
                "item": ITEMS[(seq % ITEMS.len() as u64) as usize],
                "quantity": seq % 13 + 1,
                "note": format!("record {seq} of {n}"),
            }),
        })
        .collect()
}

/// A key as text: the Bridge's JSON format stores a JSON string (`"order-000001"` with
/// quotes), the binary format the raw bytes; both read back as `order-000001`.
pub fn key_text(key: &[u8]) -> String {
    match serde_json::from_slice::<Value>(key) {
        Ok(Value::String(s)) => s,
        _ => String::from_utf8_lossy(key).into_owned(),
    }
}

/// A value as JSON when it is JSON (or JSON in the schema registry's wire format), else
/// `None`.
pub fn value_json(value: &[u8]) -> Option<Value> {
    let json = unframe(value).map_or(value, |(_, json)| json);
    serde_json::from_slice(json).ok()
}

/// The Confluent wire format's magic byte: a value is `0`, a 4-byte big-endian schema id,
/// then the serialized value (here JSON).
pub const MAGIC: u8 = 0;

/// `json` framed with schema `id`.
pub fn frame(id: u32, json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + json.len());
    out.push(MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(json);
    out
}

/// The schema id and the value of a framed value (None: no magic byte and id).
pub fn unframe(value: &[u8]) -> Option<(u32, &[u8])> {
    match value {
        [MAGIC, a, b, c, d, rest @ ..] => Some((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        _ => None,
    }
}

/// A schema id no registry assigned (Apicurio's ids count from 1).
pub const UNKNOWN_SCHEMA_ID: u32 = 0x7fff_fff0;

/// Records the mirror must dead-letter, with the reason it gives: one whose schema id the
/// registry does not know, one whose value its schema refuses (`schema_id`: the id the
/// good records carry). Keys start with `bad-`.
pub fn dead_letters(run: &str, schema_id: u32) -> Vec<(String, Vec<u8>, &'static str)> {
    let valid = json!({ "id": 1, "run": run, "item": "dock", "quantity": 1, "note": "bad" });
    let invalid = json!({ "id": "not a number", "run": run, "item": "spoon", "quantity": 0 });
    vec![
        (
            format!("bad-{run}-unknown-schema"),
            frame(UNKNOWN_SCHEMA_ID, valid.to_string().as_bytes()),
            "unknown_schema_id",
        ),
        (
            format!("bad-{run}-invalid"),
            frame(schema_id, invalid.to_string().as_bytes()),
            "invalid",
        ),
    ]
}

/// Whether a key is one of [`dead_letters`].
pub fn is_dead_letter_key(key: &str) -> bool {
    key.starts_with("bad-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_the_same_from_both_bridge_formats() {
        assert_eq!(key_text(br#""order-000001""#), "order-000001");
        assert_eq!(key_text(b"order-000001"), "order-000001");
    }

    #[test]
    fn framed_values_read_back_as_their_json() {
        let json = br#"{"id":1}"#;
        let framed = frame(7, json);
        assert_eq!(unframe(&framed), Some((7, &json[..])));
        assert_eq!(value_json(&framed), value_json(json));
        assert_eq!(unframe(b"{}"), None);
        assert_eq!(unframe(&[0, 0, 0]), None);
        let bad = dead_letters("r1", 3);
        assert!(bad.iter().all(|(k, _, _)| is_dead_letter_key(k)));
        assert_eq!(unframe(&bad[1].1).map(|(id, _)| id), Some(3));
    }

    #[test]
    fn expected_records_are_deterministic_and_distinct() {
        let a = expected("r1", 1000);
        assert_eq!(a, expected("r1", 1000));
        let keys: std::collections::HashSet<_> = a.iter().map(|e| &e.key).collect();
        assert_eq!(keys.len(), 1000);
        assert_ne!(a[0].value, expected("r2", 1)[0].value);
    }
}
