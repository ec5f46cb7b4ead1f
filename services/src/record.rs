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

/// A value as JSON when it is JSON, else `None`.
pub fn value_json(value: &[u8]) -> Option<Value> {
    serde_json::from_slice(value).ok()
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
    fn expected_records_are_deterministic_and_distinct() {
        let a = expected("r1", 1000);
        assert_eq!(a, expected("r1", 1000));
        let keys: std::collections::HashSet<_> = a.iter().map(|e| &e.key).collect();
        assert_eq!(keys.len(), 1000);
        assert_ne!(a[0].value, expected("r2", 1)[0].value);
    }
}
