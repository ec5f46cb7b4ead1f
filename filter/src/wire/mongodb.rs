//! MongoDB's framing: every message starts with its INT32 length, little-endian,
//! counting the whole message (the 16-byte standard header included).

use super::{Framer, SizePrefix};

/// The standard message header: length, requestID, responseTo, opCode.
pub const HEADER: u32 = 16;

/// The framer of one direction of a MongoDB connection; a length below the header or
/// above `max_frame_bytes` means the stream is not MongoDB.
pub fn framer(max_frame_bytes: u32) -> Framer {
    Framer::with_prefix(SizePrefix::LittleEndianWhole, HEADER, max_frame_bytes)
}
