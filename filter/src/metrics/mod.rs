//! The metric model: observations accumulate per series in memory and are flushed to a
//! [`MetricSink`] in batches (one hostcall per changed series per flush instead of one
//! per frame, docs/envoy-host.md).
//!
//! [`series`] says what is emitted, [`render`] how a series becomes a stat name, [`sink`]
//! where flushed values go.

pub mod render;
pub mod series;
pub mod sink;

use std::collections::{HashMap, HashSet};

pub use series::{api_label, Kind, Metric, Series, LABELS};
pub use sink::{MetricSink, Totalizer};

use crate::config::{Config, Identity};
use crate::decode::kafka::summary::ACK_RESULTS;
use crate::decode::kafka::{Codec, SchemaTag, Totals};
use crate::decode::topics::{TopicIdx, Topics};
use crate::exchange::observation::{Observation, Observer, Origin};
use crate::labels::sanitize;
use render::StatNames;

/// Longest list of distinct client ids given their own label value.
const MAX_CLIENT_LABELS: usize = 100;
/// Distinct schema ids given their own label value; further ids are `other`.
const MAX_SCHEMA_LABELS: usize = 100;

/// Pending metric updates and rendered names, for one VM.
pub struct Metrics {
    stat_names: StatNames,
    client_id_label: bool,
    kiali_enabled: bool,
    max_lag_series: usize,
    counters: HashMap<Series, u64>,
    gauges: HashMap<Series, i64>,
    samples: Vec<(Series, u64)>,
    lag_series: HashSet<(TopicIdx, i32, u16)>,
    schema_ids: HashSet<u32>,
    names: HashMap<Series, Box<str>>,
    active: i64,
}

impl Metrics {
    pub fn new(config: &Config, identity: Identity) -> Self {
        Metrics {
            stat_names: StatNames::new(identity, config.kiali.clone()),
            client_id_label: config.client_id_label,
            kiali_enabled: config.kiali.enabled,
            max_lag_series: config.max_lag_series,
            counters: HashMap::new(),
            gauges: HashMap::new(),
            samples: Vec::new(),
            lag_series: HashSet::new(),
            schema_ids: HashSet::new(),
            names: HashMap::new(),
            active: 0,
        }
    }

    fn add(&mut self, origin: Origin, metric: Metric, delta: u64) {
        let series = Series {
            metric,
            client: origin.client,
            secure: false,
        };
        *self.counters.entry(series).or_default() += delta;
    }

    fn add_edge(&mut self, origin: Origin, metric: Metric, delta: u64) {
        let series = Series {
            metric,
            client: 0,
            secure: origin.secure,
        };
        *self.counters.entry(series).or_default() += delta;
    }

    fn batches(&mut self, origin: Origin, topic: TopicIdx, totals: &Totals) {
        for (codec, &n) in Codec::ALL.iter().zip(&totals.codecs) {
            if n > 0 {
                let codec = *codec;
                let metric = Metric::ProducedBatches { topic, codec };
                self.add(origin, metric, u64::from(n));
            }
        }
    }

    fn schemas(&mut self, origin: Origin, topic: TopicIdx, totals: &Totals) {
        for (tag, n) in totals.schemas.iter() {
            let schema = match tag {
                SchemaTag::Id(id) if !self.schema_ids.contains(&id) => {
                    if self.schema_ids.len() < MAX_SCHEMA_LABELS {
                        self.schema_ids.insert(id);
                        tag
                    } else {
                        SchemaTag::Other
                    }
                }
                _ => tag,
            };
            let metric = Metric::ProducedRecordsBySchema { topic, schema };
            self.add(origin, metric, u64::from(n));
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

    /// Hand every pending update to `sink`; topic labels come from `topics`.
    pub fn flush(&mut self, topics: &Topics, sink: &mut impl MetricSink) {
        let counters = std::mem::take(&mut self.counters);
        for (series, delta) in counters {
            sink.counter(self.name(series, topics), delta);
        }
        let gauges = std::mem::take(&mut self.gauges);
        for (series, value) in gauges {
            sink.gauge(self.name(series, topics), value);
        }
        let samples = std::mem::take(&mut self.samples);
        for (series, value) in &samples {
            sink.histogram(self.name(*series, topics), *value);
        }
        // Keep the allocation for the next interval.
        self.samples = samples;
        self.samples.clear();
    }

    /// The stat name of a series, rendered once and cached.
    pub fn name(&mut self, series: Series, topics: &Topics) -> &str {
        if !self.names.contains_key(&series) {
            let name = self.stat_names.render(series, topics);
            self.names.insert(series, name.into());
        }
        self.names.get(&series).map_or("", |n| n)
    }

    /// Distinct series rendered so far (bounded by the topic and lag caps).
    pub fn series_count(&self) -> usize {
        self.names.len()
    }
}

impl Observer for Metrics {
    /// The label index for a client id (0 when client-id labels are off).
    fn client(&mut self, client_id: &[u8]) -> u16 {
        if !self.client_id_label {
            return 0;
        }
        let clients = &mut self.stat_names.clients;
        let value = sanitize(client_id);
        if let Some(i) = clients.iter().position(|c| *c == value) {
            return i as u16;
        }
        if clients.len() > MAX_CLIENT_LABELS {
            return 0;
        }
        clients.push(value);
        (clients.len() - 1) as u16
    }

    fn observe(&mut self, origin: Origin, observation: Observation) {
        match observation {
            Observation::Request { api_key } => self.add(origin, Metric::Requests { api_key }, 1),
            Observation::UnknownVersion { api_key } => {
                self.add(origin, Metric::UnknownVersions { api_key }, 1)
            }
            Observation::Response {
                api_key,
                latency_ms,
            } => {
                let series = Series {
                    metric: Metric::RequestDuration { api_key },
                    client: origin.client,
                    secure: false,
                };
                self.samples.push((series, latency_ms));
            }
            Observation::Unanswered { count } => self.add(origin, Metric::Unanswered, count),
            Observation::Produced { topic, totals } => {
                self.add(origin, Metric::ProducedRecords { topic }, totals.records);
                self.add(origin, Metric::ProducedBytes { topic }, totals.bytes);
                self.batches(origin, topic, &totals);
                self.schemas(origin, topic, &totals);
                if self.kiali_enabled {
                    self.add_edge(origin, Metric::KialiProduced { topic }, totals.bytes);
                }
            }
            Observation::Fetched { topic, totals } => {
                self.add(origin, Metric::FetchedRecords { topic }, totals.records);
                if totals.repeated > 0 {
                    let metric = Metric::RefetchedRecords { topic };
                    self.add(origin, metric, totals.repeated);
                }
                self.add(origin, Metric::FetchedBytes { topic }, totals.bytes);
                if self.kiali_enabled {
                    self.add_edge(origin, Metric::TopicToConsumer { topic }, totals.bytes);
                }
            }
            Observation::ShareAcquired { topic, acquired } => {
                let metric = Metric::ShareAcquiredRecords { topic };
                self.add(origin, metric, acquired.records);
                if self.kiali_enabled {
                    self.add_edge(origin, Metric::TopicToConsumer { topic }, acquired.bytes);
                }
            }
            Observation::ShareAcknowledged { topic, counts } => {
                for (result, n) in ACK_RESULTS.into_iter().zip(counts) {
                    if n > 0 {
                        let metric = Metric::ShareAcknowledgedRecords { topic, result };
                        self.add(origin, metric, n);
                    }
                }
            }
            Observation::Error {
                api_key,
                topic,
                code,
            } => {
                let metric = Metric::ResponseErrors {
                    api_key,
                    topic,
                    code,
                };
                self.add(origin, metric, 1)
            }
            Observation::Lag {
                topic,
                partition,
                lag,
            } => {
                let key = (topic, partition, origin.client);
                if !self.lag_series.contains(&key) {
                    if self.lag_series.len() >= self.max_lag_series {
                        return;
                    }
                    self.lag_series.insert(key);
                }
                let series = Series {
                    metric: Metric::ConsumerLag { topic, partition },
                    client: origin.client,
                    secure: false,
                };
                self.gauges.insert(series, lag.max(0));
            }
            Observation::DecodeError { direction, reason } => {
                self.add(origin, Metric::DecodeErrors { direction, reason }, 1)
            }
            Observation::GaveUp { direction, reason } => {
                self.add(origin, Metric::DecodeErrors { direction, reason }, 1);
                let metric = Metric::ConnectionsUndecodable { direction, reason };
                self.add(origin, metric, 1);
            }
            Observation::Auth(outcome) => {
                let metric = Metric::Auth {
                    protocol: outcome.protocol,
                    mechanism: outcome.mechanism,
                    result: outcome.result.as_str(),
                    reason: outcome.reason,
                };
                self.add(Origin::default(), metric, 1);
            }
            Observation::MongoCommand {
                command,
                collection,
            } => {
                let metric = Metric::MongoCommands {
                    command,
                    collection,
                };
                self.add(origin, metric, 1)
            }
            Observation::MongoReply {
                command,
                latency_ms,
                error,
            } => {
                let series = Series {
                    metric: Metric::MongoDuration { command },
                    client: 0,
                    secure: false,
                };
                self.samples.push((series, latency_ms));
                if let Some(code) = error {
                    self.add(origin, Metric::MongoErrors { command, code }, 1);
                }
            }
            Observation::MongoDecodeError { direction, reason }
            | Observation::MongoGaveUp { direction, reason } => {
                self.add(origin, Metric::MongoDecodeErrors { direction, reason }, 1)
            }
            Observation::ConnectionOpened => {
                self.add(Origin::default(), Metric::ConnectionsOpened, 1);
                self.active += 1;
                self.set_active();
            }
            Observation::ConnectionClosed => {
                self.add(Origin::default(), Metric::ConnectionsClosed, 1);
                self.active -= 1;
                self.set_active();
            }
        }
    }
}
