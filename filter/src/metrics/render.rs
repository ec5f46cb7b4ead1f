//! Stat names: a series' labels encoded Istio-style into its name (see [`crate::labels`]).
//! Every series carries the local workload's identity and, when enabled, the Kafka
//! client id; the edge series carry Kiali's and Istio's labels instead.

use super::series::{api_label, Metric, Series};
use crate::config::{Identity, Kiali};
use crate::decode::kafka::tables::error_name;
use crate::decode::kafka::SchemaTag;
use crate::decode::mongodb;
use crate::decode::topics::{TopicIdx, Topics};
use crate::labels::push;

/// What stat names are made of besides a series' own values.
pub struct StatNames {
    identity: Identity,
    /// Rendered identity labels, shared by every series.
    identity_labels: String,
    kiali: Kiali,
    /// Client-id label values; index 0 means no label.
    pub clients: Vec<String>,
}

impl StatNames {
    pub fn new(identity: Identity, kiali: Kiali) -> Self {
        let mut identity_labels = String::new();
        push(&mut identity_labels, "local_namespace", &identity.namespace);
        push(&mut identity_labels, "local_workload", &identity.workload);
        push(&mut identity_labels, "local_app", &identity.app);
        StatNames {
            identity,
            identity_labels,
            kiali,
            clients: vec![String::new()],
        }
    }

    /// The stat name of `series`.
    pub fn render(&self, series: Series, topics: &Topics) -> String {
        let mut s = String::with_capacity(160);
        let topic = |idx: TopicIdx| topics.name(idx);
        match series.metric {
            Metric::KialiProduced { topic: t } => {
                self.render_kiali(&mut s, topic(t), series.secure);
                s.push_str(series.metric.name());
                return s;
            }
            Metric::TopicToConsumer { topic: t } => {
                self.render_istio_tcp(&mut s, topic(t), series.secure);
                s.push_str(series.metric.name());
                return s;
            }
            Metric::Requests { api_key }
            | Metric::UnknownVersions { api_key }
            | Metric::RequestDuration { api_key } => push(&mut s, "api", api_label(api_key)),
            Metric::ProducedRecords { topic: t }
            | Metric::ProducedBytes { topic: t }
            | Metric::FetchedRecords { topic: t }
            | Metric::RefetchedRecords { topic: t }
            | Metric::FetchedBytes { topic: t }
            | Metric::ShareAcquiredRecords { topic: t } => push(&mut s, "topic", topic(t)),
            Metric::ShareAcknowledgedRecords { topic: t, result } => {
                push(&mut s, "topic", topic(t));
                push(&mut s, "result", result);
            }
            Metric::ProducedBatches { topic: t, codec } => {
                push(&mut s, "topic", topic(t));
                push(&mut s, "compression", codec.name());
            }
            Metric::ProducedRecordsBySchema { topic: t, schema } => {
                push(&mut s, "topic", topic(t));
                match schema {
                    SchemaTag::Id(id) => push(&mut s, "schema", &id.to_string()),
                    SchemaTag::None => push(&mut s, "schema", "none"),
                    SchemaTag::Compressed => push(&mut s, "schema", "compressed"),
                    SchemaTag::Other => push(&mut s, "schema", "other"),
                }
            }
            Metric::ResponseErrors {
                api_key,
                topic: t,
                code,
            } => {
                push(&mut s, "api", api_label(api_key));
                push(&mut s, "topic", t.map_or("", topic));
                push(
                    &mut s,
                    "error",
                    error_name(code).unwrap_or("UNKNOWN_ERROR_CODE"),
                );
            }
            Metric::ConsumerLag {
                topic: t,
                partition,
            } => {
                push(&mut s, "topic", topic(t));
                push(&mut s, "partition", &partition.to_string());
            }
            Metric::DecodeErrors { direction, reason }
            | Metric::ConnectionsUndecodable { direction, reason } => {
                push(&mut s, "direction", direction.name());
                push(&mut s, "reason", reason);
            }
            Metric::Auth {
                mechanism,
                result,
                reason,
                ..
            } => {
                push(&mut s, "mechanism", mechanism);
                push(&mut s, "result", result);
                push(&mut s, "reason", reason);
            }
            Metric::MongoCommands {
                command,
                collection,
            } => {
                push(&mut s, "command", command);
                push(&mut s, "collection", collection.map_or("", topic));
            }
            Metric::MongoDuration { command } => push(&mut s, "command", command),
            Metric::MongoErrors { command, code } => {
                push(&mut s, "command", command);
                match mongodb::error_name(code) {
                    Some(name) => push(&mut s, "error", name),
                    None => push(&mut s, "error", &code.to_string()),
                }
            }
            Metric::MongoDecodeErrors { direction, reason } => {
                push(&mut s, "direction", direction.name());
                push(&mut s, "reason", reason);
            }
            Metric::Unanswered
            | Metric::ConnectionsOpened
            | Metric::ConnectionsClosed
            | Metric::ConnectionsActive => {}
        }
        if series.client != 0 {
            let client = self
                .clients
                .get(usize::from(series.client))
                .map_or("", |c| c);
            push(&mut s, "client_id", client);
        }
        s.push_str(&self.identity_labels);
        s.push_str(series.metric.name());
        s
    }

    /// Kiali Extensions labels: the local workload is the root source, the topic a
    /// service-shaped destination in the Kafka namespace (kiali graph/telemetry/istio/
    /// appender/extensions.go groups by exactly these).
    fn render_kiali(&self, s: &mut String, topic: &str, secure: bool) {
        let kiali = &self.kiali;
        let id = &self.identity;
        push(s, "extension", &kiali.extension);
        push(s, "source_cluster", &id.cluster);
        push(s, "source_namespace", &id.namespace);
        push(s, "source_name", &id.workload);
        push(s, "source_is_root", "true");
        push(s, "dest_cluster", &id.cluster);
        push(s, "dest_namespace", &kiali.topic_namespace);
        push(s, "dest_name", topic);
        push(s, "secure", if secure { "true" } else { "false" });
    }

    /// Istio TCP labels for topic -> consumer: Kiali attaches an extension edge only to
    /// service nodes, so the consumer side is reported the way Istio reports TCP traffic
    /// received by a workload (docs/metrics.md, "Kiali edges"). Every label Kiali's TCP graph
    /// query groups by is present (a series missing one is skipped); the destination
    /// service is `unknown` so that Kiali draws topic -> workload without injecting a
    /// service node for a consumer that has none.
    fn render_istio_tcp(&self, s: &mut String, topic: &str, secure: bool) {
        let kiali = &self.kiali;
        let id = &self.identity;
        push(s, "reporter", "destination");
        push(s, "source_cluster", &id.cluster);
        push(s, "source_workload", topic);
        push(s, "source_workload_namespace", &kiali.topic_namespace);
        push(s, "source_canonical_service", topic);
        push(s, "source_canonical_revision", "latest");
        push(s, "source_app", topic);
        push(s, "destination_cluster", &id.cluster);
        push(s, "destination_workload", &id.workload);
        push(s, "destination_workload_namespace", &id.namespace);
        push(s, "destination_canonical_service", &id.app);
        push(s, "destination_canonical_revision", "latest");
        push(s, "destination_app", &id.app);
        push(s, "destination_service_namespace", &id.namespace);
        push(s, "destination_service", "unknown");
        push(s, "destination_service_name", "unknown");
        push(s, "request_protocol", "tcp");
        push(s, "response_flags", "-");
        let policy = if secure { "mutual_tls" } else { "none" };
        push(s, "connection_security_policy", policy);
    }
}
