//! Kafka's fixed-width integers are big-endian.

/// Big-endian signed integer of 1, 2, 4 or 8 bytes (0 for any other width).
pub fn be_int(b: &[u8]) -> i64 {
    match *b {
        [a] => i64::from(a as i8),
        [a, b] => i64::from(i16::from_be_bytes([a, b])),
        [a, b, c, d] => i64::from(i32::from_be_bytes([a, b, c, d])),
        [a, b, c, d, e, f, g, h] => i64::from_be_bytes([a, b, c, d, e, f, g, h]),
        _ => 0,
    }
}
