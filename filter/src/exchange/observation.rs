//! What the filter reports about a connection, and who receives it.
//!
//! An exchange turns decoded messages into [`Observation`]s: facts with their topics
//! resolved to label indexes. It hands them to an [`Observer`] (the VM's metrics, or a
//! test's), never to Envoy directly.

use crate::act::Outcome;
use crate::decode::kafka::summary::{AckCounts, Acquired};
use crate::decode::kafka::Totals;
use crate::decode::topics::TopicIdx;
use crate::wire::Direction;

/// What the filter reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    Request {
        api_key: i16,
    },
    /// A deep-decoded API at a version newer than the tables know: counted, not decoded.
    UnknownVersion {
        api_key: i16,
    },
    Response {
        api_key: i16,
        latency_ms: u64,
    },
    /// Requests a response skipped over: the broker never answered them.
    Unanswered {
        count: u64,
    },
    Produced {
        topic: TopicIdx,
        totals: Totals,
    },
    /// Records a fetch response carried: `totals.records` reached the connection for the
    /// first time, `totals.repeated` it had received before.
    Fetched {
        topic: TopicIdx,
        totals: Totals,
    },
    /// Records a share group handed a share consumer (ShareFetch, KIP-932).
    ShareAcquired {
        topic: TopicIdx,
        acquired: Acquired,
    },
    /// Records a share consumer acknowledged, per result.
    ShareAcknowledged {
        topic: TopicIdx,
        counts: AckCounts,
    },
    Error {
        api_key: i16,
        topic: Option<TopicIdx>,
        code: i16,
    },
    Lag {
        topic: TopicIdx,
        partition: i32,
        lag: i64,
    },
    DecodeError {
        direction: Direction,
        reason: &'static str,
    },
    ConnectionOpened,
    ConnectionClosed,
    /// The connection's authentication on the app's behalf ended.
    Auth(Outcome),
    /// Decoding stopped for the rest of a connection (bytes still pass unchanged).
    GaveUp {
        direction: Direction,
        reason: &'static str,
    },
    /// A MongoDB command sent, with the `<database>.<collection>` it names, if any.
    MongoCommand {
        command: &'static str,
        collection: Option<TopicIdx>,
    },
    /// A MongoDB reply to `command`: its latency, and its error code when not `ok`.
    MongoReply {
        command: &'static str,
        latency_ms: u64,
        error: Option<i32>,
    },
    MongoDecodeError {
        direction: Direction,
        reason: &'static str,
    },
    /// Decoding stopped for the rest of a MongoDB connection.
    MongoGaveUp {
        direction: Direction,
        reason: &'static str,
    },
}

/// The connection an observation comes from, as far as labels tell connections apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The observer's index for the connection's Kafka client id (0: not told apart).
    pub client: u16,
    /// Whether the sidecar's upstream leg is Istio mTLS.
    pub secure: bool,
}

/// Receives a connection's observations.
pub trait Observer {
    /// The index standing for a Kafka client id in [`Origin::client`].
    fn client(&mut self, client_id: &[u8]) -> u16;
    fn observe(&mut self, origin: Origin, observation: Observation);
}
