//! A malformed MongoDB message.

/// A malformed message: the rest of its frame is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A length that is negative, below its minimum or beyond the message.
    BadLength,
    /// A BSON element type that does not exist.
    BadType,
    /// An OP_MSG section kind that does not exist.
    BadSection,
    /// The message ended inside a field.
    Truncated,
}

impl DecodeError {
    pub const fn reason(self) -> &'static str {
        match self {
            DecodeError::BadLength => "bad_length",
            DecodeError::BadType => "bad_bson_type",
            DecodeError::BadSection => "bad_section",
            DecodeError::Truncated => "truncated",
        }
    }
}
