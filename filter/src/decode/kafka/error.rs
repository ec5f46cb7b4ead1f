//! Why a Kafka message could not be decoded: the walker's and the record reader's errors.

/// Why a message could not be decoded. The names are the `reason` label values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The message ended before its last field.
    Truncated,
    /// Bytes left over after the last field.
    TrailingBytes,
    /// A negative length other than -1 (null).
    BadLength,
    /// A varint longer than 5 bytes.
    BadVarint,
    /// Arrays nested deeper than any known layout.
    TooDeep,
    /// A record batch whose length is below its header size.
    BadRecordBatch,
}

impl DecodeError {
    pub const fn reason(self) -> &'static str {
        match self {
            DecodeError::Truncated => "truncated",
            DecodeError::TrailingBytes => "trailing_bytes",
            DecodeError::BadLength => "bad_length",
            DecodeError::BadVarint => "bad_varint",
            DecodeError::TooDeep => "too_deep",
            DecodeError::BadRecordBatch => "bad_record_batch",
        }
    }
}
