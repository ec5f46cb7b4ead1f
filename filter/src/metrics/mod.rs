//! The metric model: observations accumulate per series in memory and are flushed to a
//! [`MetricSink`] in batches (one hostcall per changed series per flush instead of one
//! per frame, DESIGN.md section 3).
//!
//! Series names carry their labels Istio-style (see [`crate::labels`]); every series also
//! carries the local workload's identity and, when enabled, the Kafka client id.

use std::collections::{HashMap, HashSet};

use crate::config::{Config, Identity};
use crate::kafka::tables::api_name;
use crate::kafka::Codec;
use crate::labels::{push, sanitize};
use crate::observe::{Direction, Observation, Totals};
use crate::topics::{TopicIdx, Topics};

/// Every label the filter can put on a series: the `extraStatTags` a mesh needs.
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
    "direction",
    "reason",
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

/// A series, before labels are rendered.
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
    FetchedRecords {
        topic: TopicIdx,
    },
    FetchedBytes {
        topic: TopicIdx,
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
    /// Kiali Extensions edge: this workload -> topic (produced bytes).
    KialiProduced {
        topic: TopicIdx,
    },
    /// Istio-shaped TCP edge: topic -> this workload (fetched bytes).
    TopicToConsumer {
        topic: TopicIdx,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
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
            Metric::FetchedRecords { .. } => "kafka_fetched_records_total",
            Metric::FetchedBytes { .. } => "kafka_fetched_bytes_total",
            Metric::ResponseErrors { .. } => "kafka_response_errors_total",
            Metric::ConsumerLag { .. } => "kafka_consumer_lag",
            Metric::DecodeErrors { .. } => "kafka_decode_errors_total",
            Metric::ConnectionsOpened => "kafka_connections_opened_total",
            Metric::ConnectionsClosed => "kafka_connections_closed_total",
            Metric::ConnectionsUndecodable { .. } => "kafka_connections_undecodable_total",
            Metric::ConnectionsActive => "kafka_connections_active",
            Metric::KialiProduced { .. } => "kiali_ext_tcp_sent_total",
            Metric::TopicToConsumer { .. } => "istio_tcp_received_bytes_total",
        }
    }

    pub const fn kind(self) -> Kind {
        match self {
            Metric::RequestDuration { .. } => Kind::Histogram,
            Metric::ConsumerLag { .. } | Metric::ConnectionsActive => Kind::Gauge,
            _ => Kind::Counter,
        }
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

/// Connection-level facts that become labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    pub client: u16,
    pub secure: bool,
}

/// Where flushed values go: Envoy's stats in the glue, a map in tests.
pub trait MetricSink {
    fn counter(&mut self, name: &str, delta: u64);
    fn gauge(&mut self, name: &str, value: i64);
    fn histogram(&mut self, name: &str, value: u64);
}

/// Longest list of distinct client ids given their own label value.
const MAX_CLIENT_LABELS: usize = 100;

/// VM-wide state: topic table, pending metric updates and rendered names.
pub struct Recorder {
    pub topics: Topics,
    pub config: Config,
    identity: Identity,
    /// Rendered identity labels, shared by every series.
    identity_labels: String,
    clients: Vec<String>,
    counters: HashMap<Series, u64>,
    gauges: HashMap<Series, i64>,
    samples: Vec<(Series, u64)>,
    lag_series: HashSet<(TopicIdx, i32, u16)>,
    names: HashMap<Series, Box<str>>,
    active: i64,
}

impl Recorder {
    pub fn new(config: Config, identity: Identity) -> Self {
        let mut identity_labels = String::new();
        push(&mut identity_labels, "local_namespace", &identity.namespace);
        push(&mut identity_labels, "local_workload", &identity.workload);
        push(&mut identity_labels, "local_app", &identity.app);
        Recorder {
            topics: Topics::new(config.max_topics, &config.topic_overflow_label),
            config,
            identity,
            identity_labels,
            clients: vec![String::new()],
            counters: HashMap::new(),
            gauges: HashMap::new(),
            samples: Vec::new(),
            lag_series: HashSet::new(),
            names: HashMap::new(),
            active: 0,
        }
    }

    /// The label index for a client id (0 when client-id labels are off).
    pub fn client_label(&mut self, client_id: &[u8]) -> u16 {
        if !self.config.client_id_label {
            return 0;
        }
        let value = sanitize(client_id);
        if let Some(i) = self.clients.iter().position(|c| *c == value) {
            return i as u16;
        }
        if self.clients.len() > MAX_CLIENT_LABELS {
            return 0;
        }
        self.clients.push(value);
        (self.clients.len() - 1) as u16
    }

    fn add(&mut self, peer: Peer, metric: Metric, delta: u64) {
        let series = Series {
            metric,
            client: peer.client,
            secure: false,
        };
        *self.counters.entry(series).or_default() += delta;
    }

    fn add_edge(&mut self, peer: Peer, metric: Metric, delta: u64) {
        let series = Series {
            metric,
            client: 0,
            secure: peer.secure,
        };
        *self.counters.entry(series).or_default() += delta;
    }

    pub fn observe(&mut self, peer: Peer, observation: Observation) {
        match observation {
            Observation::Request { api_key } => self.add(peer, Metric::Requests { api_key }, 1),
            Observation::UnknownVersion { api_key } => {
                self.add(peer, Metric::UnknownVersions { api_key }, 1)
            }
            Observation::Response {
                api_key,
                latency_ms,
            } => {
                let series = Series {
                    metric: Metric::RequestDuration { api_key },
                    client: peer.client,
                    secure: false,
                };
                self.samples.push((series, latency_ms));
            }
            Observation::Unanswered { count } => self.add(peer, Metric::Unanswered, count),
            Observation::Produced { topic, totals } => {
                self.add(peer, Metric::ProducedRecords { topic }, totals.records);
                self.add(peer, Metric::ProducedBytes { topic }, totals.bytes);
                self.batches(peer, topic, &totals);
                if self.config.kiali.enabled {
                    self.add_edge(peer, Metric::KialiProduced { topic }, totals.bytes);
                }
            }
            Observation::Fetched { topic, totals } => {
                self.add(peer, Metric::FetchedRecords { topic }, totals.records);
                self.add(peer, Metric::FetchedBytes { topic }, totals.bytes);
                if self.config.kiali.enabled {
                    self.add_edge(peer, Metric::TopicToConsumer { topic }, totals.bytes);
                }
            }
            Observation::Error {
                api_key,
                topic,
                code,
            } => self.add(
                peer,
                Metric::ResponseErrors {
                    api_key,
                    topic,
                    code,
                },
                1,
            ),
            Observation::Lag {
                topic,
                partition,
                lag,
            } => {
                let key = (topic, partition, peer.client);
                if !self.lag_series.contains(&key) {
                    if self.lag_series.len() >= self.config.max_lag_series {
                        return;
                    }
                    self.lag_series.insert(key);
                }
                let series = Series {
                    metric: Metric::ConsumerLag { topic, partition },
                    client: peer.client,
                    secure: false,
                };
                self.gauges.insert(series, lag.max(0));
            }
            Observation::DecodeError { direction, reason } => {
                self.add(peer, Metric::DecodeErrors { direction, reason }, 1)
            }
            Observation::GaveUp { direction, reason } => {
                self.add(peer, Metric::DecodeErrors { direction, reason }, 1);
                self.add(
                    peer,
                    Metric::ConnectionsUndecodable { direction, reason },
                    1,
                );
            }
            Observation::ConnectionOpened => {
                self.add(Peer::default(), Metric::ConnectionsOpened, 1);
                self.active += 1;
                self.set_active();
            }
            Observation::ConnectionClosed => {
                self.add(Peer::default(), Metric::ConnectionsClosed, 1);
                self.active -= 1;
                self.set_active();
            }
        }
    }

    fn batches(&mut self, peer: Peer, topic: TopicIdx, totals: &Totals) {
        for (codec, &n) in Codec::ALL.iter().zip(&totals.codecs) {
            if n > 0 {
                self.add(
                    peer,
                    Metric::ProducedBatches {
                        topic,
                        codec: *codec,
                    },
                    u64::from(n),
                );
            }
        }
    }

    fn set_active(&mut self) {
        let series = Series {
            metric: Metric::ConnectionsActive,
            client: 0,
            secure: false,
        };
        self.gauges.insert(series, self.active);
    }

    /// Whether anything waits to be flushed.
    pub fn is_dirty(&self) -> bool {
        !(self.counters.is_empty() && self.gauges.is_empty() && self.samples.is_empty())
    }

    /// Hand every pending update to `sink`.
    pub fn flush(&mut self, sink: &mut impl MetricSink) {
        let counters = std::mem::take(&mut self.counters);
        for (series, delta) in counters {
            sink.counter(self.name(series), delta);
        }
        let gauges = std::mem::take(&mut self.gauges);
        for (series, value) in gauges {
            sink.gauge(self.name(series), value);
        }
        let samples = std::mem::take(&mut self.samples);
        for (series, value) in &samples {
            sink.histogram(self.name(*series), *value);
        }
        // Keep the allocation for the next interval.
        self.samples = samples;
        self.samples.clear();
    }

    /// The stat name of a series, rendered once and cached.
    pub fn name(&mut self, series: Series) -> &str {
        if !self.names.contains_key(&series) {
            let name = self.render(series);
            self.names.insert(series, name.into());
        }
        self.names.get(&series).map_or("", |n| n)
    }

    fn render(&self, series: Series) -> String {
        let mut s = String::with_capacity(160);
        let topic = |idx: TopicIdx| self.topics.name(idx);
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
            | Metric::FetchedBytes { topic: t } => push(&mut s, "topic", topic(t)),
            Metric::ProducedBatches { topic: t, codec } => {
                push(&mut s, "topic", topic(t));
                push(&mut s, "compression", codec.name());
            }
            Metric::ResponseErrors {
                api_key,
                topic: t,
                code,
            } => {
                push(&mut s, "api", api_label(api_key));
                push(&mut s, "topic", t.map_or("", topic));
                let name = crate::kafka::tables::error_name(code);
                push(&mut s, "error", name.unwrap_or("UNKNOWN_ERROR_CODE"));
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
        let kiali = &self.config.kiali;
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
    /// received by a workload (see README, "Kiali edges"). Every label Kiali's TCP graph
    /// query groups by is present (a series missing one is skipped); the destination
    /// service is `unknown` so that Kiali draws topic -> workload without injecting a
    /// service node for a consumer that has none.
    fn render_istio_tcp(&self, s: &mut String, topic: &str, secure: bool) {
        let kiali = &self.config.kiali;
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

    /// Distinct series rendered so far (bounded by the topic and lag caps).
    pub fn series_count(&self) -> usize {
        self.names.len()
    }
}

/// The `api` label: the snake_case API name, or `unknown` for keys no table names.
pub fn api_label(api_key: i16) -> &'static str {
    api_name(api_key).unwrap_or("unknown")
}

/// A sink that sums everything, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct Totalizer {
    pub counters: HashMap<String, u64>,
    pub gauges: HashMap<String, i64>,
    pub histograms: HashMap<String, Vec<u64>>,
}

impl MetricSink for Totalizer {
    fn counter(&mut self, name: &str, delta: u64) {
        *self.counters.entry(name.to_string()).or_default() += delta;
    }
    fn gauge(&mut self, name: &str, value: i64) {
        self.gauges.insert(name.to_string(), value);
    }
    fn histogram(&mut self, name: &str, value: u64) {
        self.histograms
            .entry(name.to_string())
            .or_default()
            .push(value);
    }
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
