//! Kafka's framing: every request and response is an INT32 size followed by that many
//! bytes.

use super::{Direction, Framer};

/// Smallest request: api key, version, correlation id, client id length.
pub const MIN_REQUEST: u32 = 10;
/// Smallest response: correlation id.
pub const MIN_RESPONSE: u32 = 4;

/// The framer of one direction of a Kafka connection; a size above `max_frame_bytes`
/// means the stream is not Kafka.
pub fn framer(direction: Direction, max_frame_bytes: u32) -> Framer {
    let min = match direction {
        Direction::Request => MIN_REQUEST,
        Direction::Response => MIN_RESPONSE,
    };
    Framer::new(min, max_frame_bytes)
}
