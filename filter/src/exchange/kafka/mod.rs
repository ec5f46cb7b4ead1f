//! A Kafka connection: framing and decoding per direction ([`connection`]), requests
//! matched to responses ([`correlation`]), what a decoded pair means ([`meaning`]), and
//! the offsets each partition already delivered to this connection ([`received`]).

pub mod connection;
pub mod correlation;
pub mod meaning;
pub mod received;

pub use connection::{Connection, Settings};
