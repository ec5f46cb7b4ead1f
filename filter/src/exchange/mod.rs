//! What requests and responses mean: a connection's two framed directions matched request
//! to response, their summaries turned into [`Observation`]s for an [`Observer`]: Kafka's
//! ([`kafka`]) and MongoDB's ([`mongodb`]), each driven by the same [`framed`] driver,
//! behind one [`Connection`] with its action.
//!
//! Everything a connection keeps is bounded and counted ([`Connection::memory_bytes`]).
//! The observing path only reads: features that act on a connection go through
//! [`crate::act`].

pub mod connection;
pub mod framed;
pub mod kafka;
pub mod mongodb;
pub mod observation;

pub use connection::Connection;
pub use kafka::Settings;
pub use observation::{Observation, Observer, Origin};
