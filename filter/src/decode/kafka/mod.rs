//! The Kafka protocol, as far as the filter reads it: message layouts ([`schema`]), the
//! streaming walker that interprets them ([`walker`]), record batch headers
//! ([`records`]), API and error names ([`tables`]), and the [`summary`] of a message
//! built while it streams by.

pub mod big_endian;
pub mod error;
pub mod records;
pub mod schema;
pub mod schema_ids;
pub mod summary;
pub mod tables;
pub mod walker;

pub use error::DecodeError;
pub use records::{BatchHeader, Codec};
pub use schema::Role;
pub use schema_ids::{SchemaCounts, SchemaTag};
pub use summary::{Collector, Received, Summary, TopicRef, Totals};
pub use walker::{Visitor, Walker};

use crate::wire::Direction;

/// The walker and the collector for the body of a message of `api_key` at `version`
/// going `direction`, if the filter decodes that API deeply and knows that version: the
/// one place a body's decoding is set up (the connection, and the fuzz targets, use it).
/// The walker starts with the header's tagged fields when the header is flexible. With
/// `record_values`, a Produce request's record values are read for their schema ids.
pub fn body_decoder(
    direction: Direction,
    api_key: i16,
    version: i16,
    record_values: bool,
) -> Option<(Box<Walker>, Collector)> {
    let (layout, collector, header_tags) = match direction {
        Direction::Request => (
            schema::request(api_key),
            Collector::request(api_key),
            schema::request_header_is_flexible(api_key, version),
        ),
        Direction::Response => (
            schema::response(api_key),
            Collector::response(api_key),
            schema::response_header_is_flexible(api_key, version),
        ),
    };
    let layout = layout.filter(|m| m.knows(version))?;
    let mut walker = Walker::for_layout(layout, version, header_tags);
    if record_values && direction == Direction::Request && api_key == schema::api::PRODUCE {
        walker = walker.reading_record_values();
    }
    Some((Box::new(walker), collector?))
}
