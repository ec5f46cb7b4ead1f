//! Features that act on a connection: authenticating it on the app's behalf (Kafka SASL,
//! [`kafka_auth`]; MongoDB, [`mongodb_auth`]).
//!
//! The observing path only reads. An [`Action`] is the other path, and runs first: each
//! data callback it may take bytes off the front of Envoy's buffer (its own responses,
//! or app bytes it keeps until they may pass), send bytes of its own toward the server,
//! hand app bytes back, hold the request buffer, or close the connection ([`Step`]). The
//! observer then sees exactly the app's bytes, in order, as they pass: never the
//! action's. What Envoy allows (docs/envoy-host.md): prepend at 0, drain a prefix, hold
//! the downstream bytes (the upstream direction cannot be held: an action drains those
//! into its own memory).

mod action;
pub mod kafka_auth;
pub mod mongodb_auth;
pub mod sasl;

pub use action::{Action, AuthResult, Outcome, Step, Upstream};
pub use kafka_auth::KafkaAuth;
pub use mongodb_auth::MongoDbAuth;
