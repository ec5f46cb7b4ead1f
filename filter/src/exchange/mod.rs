//! What requests and responses mean: a connection's two framed directions matched request
//! to response, their summaries turned into [`Observation`]s for an [`Observer`].
//!
//! Everything a connection keeps is bounded and counted ([`Connection::memory_bytes`]).
//! The observing path only reads: features that act on a connection go through
//! [`crate::act`].

pub mod kafka;
pub mod observation;

pub use kafka::{Connection, Limits};
pub use observation::{Observation, Observer, Origin};
