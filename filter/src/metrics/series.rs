//! The series the filter emits: each metric, its kind, and the labels it can carry.

use crate::decode::kafka::tables::api_name;
use crate::decode::kafka::{Codec, SchemaTag};
use crate::decode::topics::TopicIdx;
use crate::wire::{Direction, Protocol};

/// Every label the filter can put on a series: the `extraStatTags` a mesh needs (a test
/// renders every metric and checks this list against what rendering emits).
///
/// Istio's tag regexes are unanchored, so `(namespace=\.=(.*?);\.;)` would also match
/// inside `source_namespace=.=...`: no label name may end another (see the test below).
pub const LABELS: &[&str] = &[
    "local_namespace",
    "local_workload",
    "local_app",
    "client_id",
    "api",
    "topic",
    "partition",
    "error",
    "compression",
    "schema",
    "direction",
    "reason",
    "mechanism",
    "result",
    // MongoDB.
    "command",
    "collection",
    // Kiali Extensions (producer -> topic edges).
    "extension",
    "source_cluster",
    "source_namespace",
    "source_name",
    "source_is_root",
    "dest_cluster",
    "dest_namespace",
    "dest_name",
    "secure",
    // Istio-shaped TCP series (topic -> consumer edges).
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_canonical_service",
    "source_canonical_revision",
    "source_app",
    "destination_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_app",
    "destination_service_namespace",
    "destination_service",
    "destination_service_name",
    "request_protocol",
    "response_flags",
    "connection_security_policy",
];

/// A metric with its label values, before they are rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    Requests {
        api_key: i16,
    },
    UnknownVersions {
        api_key: i16,
    },
    RequestDuration {
        api_key: i16,
    },
    Unanswered,
    ProducedRecords {
        topic: TopicIdx,
    },
    ProducedBytes {
        topic: TopicIdx,
    },
    ProducedBatches {
        topic: TopicIdx,
        codec: Codec,
    },
    /// Produced records by their values' schema ids (`records_by_schema`).
    ProducedRecordsBySchema {
        topic: TopicIdx,
        schema: SchemaTag,
    },
    FetchedRecords {
        topic: TopicIdx,
    },
    /// Records a connection had already received, fetched again.
    RefetchedRecords {
        topic: TopicIdx,
    },
    FetchedBytes {
        topic: TopicIdx,
    },
    /// Records a share group handed a share consumer (KIP-932): a series of their own,
    /// since a share group's records are not read in order per partition, may come again
    /// (released, or a lock timed out) and have no lag.
    ShareAcquiredRecords {
        topic: TopicIdx,
    },
    /// Records a share consumer acknowledged, by result (`accept`, `release`, `reject`,
    /// `renew`).
    ShareAcknowledgedRecords {
        topic: TopicIdx,
        result: &'static str,
    },
    ResponseErrors {
        api_key: i16,
        topic: Option<TopicIdx>,
        code: i16,
    },
    ConsumerLag {
        topic: TopicIdx,
        partition: i32,
    },
    DecodeErrors {
        direction: Direction,
        reason: &'static str,
    },
    ConnectionsOpened,
    ConnectionsClosed,
    ConnectionsUndecodable {
        direction: Direction,
        reason: &'static str,
    },
    ConnectionsActive,
    /// A connection the filter authenticated on the app's behalf, or tried to.
    Auth {
        protocol: Protocol,
        mechanism: &'static str,
        result: &'static str,
        reason: &'static str,
    },
    /// Kiali Extensions edge: this workload -> topic (produced bytes).
    KialiProduced {
        topic: TopicIdx,
    },
    /// Istio-shaped TCP edge: topic -> this workload (fetched bytes).
    TopicToConsumer {
        topic: TopicIdx,
    },
    /// MongoDB commands by name and `<database>.<collection>` (capped like topics).
    MongoCommands {
        command: &'static str,
        collection: Option<TopicIdx>,
    },
    MongoDuration {
        command: &'static str,
    },
    MongoErrors {
        command: &'static str,
        code: i32,
    },
    MongoDecodeErrors {
        direction: Direction,
        reason: &'static str,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    /// The Prometheus type name.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

impl Metric {
    pub const fn name(self) -> &'static str {
        match self {
            Metric::Requests { .. } => "kafka_requests_total",
            Metric::UnknownVersions { .. } => "kafka_requests_unknown_version_total",
            Metric::RequestDuration { .. } => "kafka_request_duration_milliseconds",
            Metric::Unanswered => "kafka_requests_unanswered_total",
            Metric::ProducedRecords { .. } => "kafka_produced_records_total",
            Metric::ProducedBytes { .. } => "kafka_produced_bytes_total",
            Metric::ProducedBatches { .. } => "kafka_produced_batches_total",
            Metric::ProducedRecordsBySchema { .. } => "kafka_produced_records_by_schema_total",
            Metric::FetchedRecords { .. } => "kafka_fetched_records_total",
            Metric::RefetchedRecords { .. } => "kafka_refetched_records_total",
            Metric::FetchedBytes { .. } => "kafka_fetched_bytes_total",
            Metric::ShareAcquiredRecords { .. } => "kafka_share_acquired_records_total",
            Metric::ShareAcknowledgedRecords { .. } => "kafka_share_acknowledged_records_total",
            Metric::ResponseErrors { .. } => "kafka_response_errors_total",
            Metric::ConsumerLag { .. } => "kafka_consumer_lag",
            Metric::DecodeErrors { .. } => "kafka_decode_errors_total",
            Metric::ConnectionsOpened => "kafka_connections_opened_total",
            Metric::ConnectionsClosed => "kafka_connections_closed_total",
            Metric::ConnectionsUndecodable { .. } => "kafka_connections_undecodable_total",
            Metric::ConnectionsActive => "kafka_connections_active",
            Metric::Auth {
                protocol: Protocol::Kafka,
                ..
            } => "kafka_auth_total",
            Metric::Auth {
                protocol: Protocol::MongoDb,
                ..
            } => "mongodb_auth_total",
            Metric::MongoCommands { .. } => "mongodb_commands_total",
            Metric::MongoDuration { .. } => "mongodb_command_duration_milliseconds",
            Metric::MongoErrors { .. } => "mongodb_command_errors_total",
            Metric::MongoDecodeErrors { .. } => "mongodb_decode_errors_total",
            Metric::KialiProduced { .. } => "kiali_ext_tcp_sent_total",
            Metric::TopicToConsumer { .. } => "istio_tcp_received_bytes_total",
        }
    }

    pub const fn kind(self) -> Kind {
        match self {
            Metric::RequestDuration { .. } | Metric::MongoDuration { .. } => Kind::Histogram,
            Metric::ConsumerLag { .. } | Metric::ConnectionsActive => Kind::Gauge,
            _ => Kind::Counter,
        }
    }

    /// Whether the metric is labelled per Kafka client when `client_id_label` is on
    /// (connection counts and the edge series are not).
    pub const fn per_client(self) -> bool {
        !matches!(
            self,
            Metric::ConnectionsOpened
                | Metric::ConnectionsClosed
                | Metric::ConnectionsActive
                | Metric::Auth { .. }
                | Metric::KialiProduced { .. }
                | Metric::TopicToConsumer { .. }
                | Metric::MongoCommands { .. }
                | Metric::MongoDuration { .. }
                | Metric::MongoErrors { .. }
                | Metric::MongoDecodeErrors { .. }
        )
    }

    /// One metric of each variant, for the contract (the match makes a new variant a
    /// compile error here until it is listed).
    pub fn one_of_each() -> Vec<Metric> {
        let (topic, api_key, direction, reason) = (2, 0, Direction::Request, "truncated");
        let all = vec![
            Metric::Requests { api_key },
            Metric::UnknownVersions { api_key },
            Metric::RequestDuration { api_key },
            Metric::Unanswered,
            Metric::ProducedRecords { topic },
            Metric::ProducedBytes { topic },
            Metric::ProducedBatches {
                topic,
                codec: Codec::None,
            },
            Metric::ProducedRecordsBySchema {
                topic,
                schema: SchemaTag::Id(7),
            },
            Metric::FetchedRecords { topic },
            Metric::RefetchedRecords { topic },
            Metric::FetchedBytes { topic },
            Metric::ShareAcquiredRecords { topic },
            Metric::ShareAcknowledgedRecords {
                topic,
                result: "accept",
            },
            Metric::ResponseErrors {
                api_key,
                topic: Some(topic),
                code: 3,
            },
            Metric::ConsumerLag {
                topic,
                partition: 0,
            },
            Metric::DecodeErrors { direction, reason },
            Metric::ConnectionsOpened,
            Metric::ConnectionsClosed,
            Metric::ConnectionsUndecodable { direction, reason },
            Metric::ConnectionsActive,
            Metric::Auth {
                protocol: Protocol::Kafka,
                mechanism: "SCRAM-SHA-512",
                result: "success",
                reason: "ok",
            },
            Metric::Auth {
                protocol: Protocol::MongoDb,
                mechanism: "MONGODB-X509",
                result: "success",
                reason: "ok",
            },
            Metric::KialiProduced { topic },
            Metric::TopicToConsumer { topic },
            Metric::MongoCommands {
                command: "insert",
                collection: Some(topic),
            },
            Metric::MongoDuration { command: "insert" },
            Metric::MongoErrors {
                command: "insert",
                code: 11000,
            },
            Metric::MongoDecodeErrors { direction, reason },
        ];
        for metric in &all {
            match metric {
                Metric::Requests { .. }
                | Metric::UnknownVersions { .. }
                | Metric::RequestDuration { .. }
                | Metric::Unanswered
                | Metric::ProducedRecords { .. }
                | Metric::ProducedBytes { .. }
                | Metric::ProducedBatches { .. }
                | Metric::ProducedRecordsBySchema { .. }
                | Metric::FetchedRecords { .. }
                | Metric::RefetchedRecords { .. }
                | Metric::FetchedBytes { .. }
                | Metric::ShareAcquiredRecords { .. }
                | Metric::ShareAcknowledgedRecords { .. }
                | Metric::ResponseErrors { .. }
                | Metric::ConsumerLag { .. }
                | Metric::DecodeErrors { .. }
                | Metric::ConnectionsOpened
                | Metric::ConnectionsClosed
                | Metric::ConnectionsUndecodable { .. }
                | Metric::ConnectionsActive
                | Metric::Auth { .. }
                | Metric::KialiProduced { .. }
                | Metric::TopicToConsumer { .. }
                | Metric::MongoCommands { .. }
                | Metric::MongoDuration { .. }
                | Metric::MongoErrors { .. }
                | Metric::MongoDecodeErrors { .. } => {}
            }
        }
        all
    }
}

/// A series: the metric plus the connection-level labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Series {
    pub metric: Metric,
    /// Index into the client-id labels (0: no label).
    pub client: u16,
    /// Whether the connection is mTLS (edge series only).
    pub secure: bool,
}

/// The `api` label: the snake_case API name, or `unknown` for keys no table names.
pub fn api_label(api_key: i16) -> &'static str {
    api_name(api_key).unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::LABELS;

    #[test]
    fn no_label_name_ends_another() {
        for a in LABELS {
            for b in LABELS {
                let (ta, tb) = (format!("{a}=.="), format!("{b}=.="));
                assert!(
                    a == b || !tb.ends_with(&ta),
                    "`{a}` would be extracted from inside `{b}`"
                );
            }
        }
    }
}
