//! The Kafka wire protocol, as far as the filter reads it: message tables, the streaming
//! walker that interprets them, record batch headers, and API/error names.

pub mod records;
pub mod schema;
pub mod tables;
pub mod walker;

pub use records::{BatchHeader, Codec};
pub use schema::Tag;
pub use walker::{DecodeError, Visitor, Walker};
