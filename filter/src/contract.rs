//! The filter's contract with what deploys it, generated from this code: the JSON Schema
//! of its pluginConfig ([`plugin_config_schema`]) and every metric it emits with its type
//! and labels ([`metrics`]), whose union is [`crate::metrics::LABELS`], the labels a mesh
//! must extract (`extraStatTags`).
//!
//! `filter/tests/contract.rs` compares the committed copies (`filter/contract/`, the
//! kiosk-filter chart, Istio's mesh config, the README) with what this module prints, and
//! rewrites them when run with `KIOSK_BLESS=1`.

use serde_json::{json, Value};

use crate::config::{Config, Identity, Kiali};
use crate::decode::topics::Topics;
use crate::metrics::render::StatNames;
use crate::metrics::{Metric, Series, LABELS};

/// The JSON Schema (draft-07, self-contained) of the pluginConfig the filter accepts.
pub fn plugin_config_schema() -> Value {
    let generator = schemars::generate::SchemaSettings::draft07()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let schema = generator.into_root_schema_for::<Config>();
    schema.to_value()
}

/// A metric as a scrape shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricContract {
    pub name: &'static str,
    /// `counter`, `gauge` or `histogram`.
    pub kind: &'static str,
    /// Its labels, in the order the stat name carries them (`client_id` only with
    /// `client_id_label`).
    pub labels: Vec<String>,
}

/// Every metric the filter emits, with its labels as rendered.
pub fn metrics() -> Vec<MetricContract> {
    let identity = Identity::resolve(&Config::default(), None, None, None, None);
    let mut names = StatNames::new(identity, Kiali::default());
    names.clients.push("client".into());
    let mut topics = Topics::new(10, "_other");
    let topic = topics.intern(b"topic");
    debug_assert_eq!(topic, 2, "Metric::one_of_each names topic index 2");
    Metric::one_of_each()
        .into_iter()
        .map(|metric| {
            let series = Series {
                metric,
                client: u16::from(metric.per_client()),
                secure: false,
            };
            let name = names.render(series, &topics);
            let labels = name
                .split(";.;")
                .filter_map(|segment| segment.split_once("=.=").map(|(k, _)| k.to_string()))
                .collect();
            MetricContract {
                name: metric.name(),
                kind: metric.kind().name(),
                labels,
            }
        })
        .collect()
}

/// The labels and metrics as JSON (`filter/contract/metrics.json`).
pub fn metrics_json() -> Value {
    let metrics: Vec<Value> = metrics()
        .into_iter()
        .map(|m| json!({ "name": m.name, "type": m.kind, "labels": m.labels }))
        .collect();
    json!({ "labels": LABELS, "metrics": metrics })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn labels_are_exactly_what_rendering_emits() {
        let rendered: BTreeSet<String> = metrics().into_iter().flat_map(|m| m.labels).collect();
        let declared: BTreeSet<String> = LABELS.iter().map(|l| l.to_string()).collect();
        assert_eq!(rendered, declared);
        assert_eq!(declared.len(), LABELS.len(), "a label is listed twice");
    }

    #[test]
    fn every_metric_is_listed_once() {
        let names: BTreeSet<&str> = metrics().iter().map(|m| m.name).collect();
        assert_eq!(names.len(), Metric::one_of_each().len());
        assert!(names.contains("kafka_refetched_records_total"));
    }
}
