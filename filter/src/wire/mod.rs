//! Bytes as they cross the sidecar: the two directions of a connection, and frames cut
//! from each without buffering them.
//!
//! Nothing here knows what a frame means. A protocol states its framing (an INT32 size
//! before each message: [`kafka`], [`mongodb`]); the next layer, `decode`, reads inside
//! frames.

pub mod frame;
pub mod kafka;
pub mod mongodb;
mod protocol;

pub use frame::{FrameError, FrameEvent, Framer, SizePrefix};
pub use protocol::Protocol;

/// Which way bytes travel on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client (the app) to the server (the broker, the database).
    Request,
    /// From the server back to the client.
    Response,
}

impl Direction {
    /// The `direction` label value.
    pub const fn name(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
    }
}
