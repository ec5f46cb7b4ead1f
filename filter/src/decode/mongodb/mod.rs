//! MongoDB messages as they stream by: the header, the command a request names (its
//! first element), the database and collection it addresses, and whether a reply says
//! `ok` and with which error code.
//!
//! Hand-written rather than a BSON crate because it runs on every message of the hot
//! path and must never buffer one: only the top-level elements of a message's command
//! document are walked, every value the filter does not need is stepped over by its
//! length, and those bytes are reported ([`Walker::skippable`]) so that the caller passes
//! over them without copying them (an insert's documents, a find's batch). Any input is
//! safe: a malformed message is a [`DecodeError`], never a panic.
//!
//! The message [`walker`] and its [`Summary`]; the opcodes, command names and error names
//! ([`tables`]); whole small documents held in memory ([`documents`]).

pub mod documents;
pub mod error;
pub mod tables;
#[cfg(test)]
pub(crate) mod test_messages;
pub mod walker;

pub use documents::{binary, elements, number};
pub use error::DecodeError;
pub use tables::{
    error_name, COMMANDS, COMPRESSED, OP_COMPRESSED, OP_MSG, OP_QUERY, OP_REPLY, OTHER,
    UNKNOWN_OPCODE,
};
pub use walker::{Capture, Summary, Walker, NAMESPACE_BYTES};
