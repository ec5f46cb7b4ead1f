//! Where flushed metric values go: Envoy's stats in the glue, a [`Totalizer`] in tests.

use std::collections::HashMap;

pub trait MetricSink {
    fn counter(&mut self, name: &str, delta: u64);
    fn gauge(&mut self, name: &str, value: i64);
    fn histogram(&mut self, name: &str, value: u64);
}

/// A sink that sums everything, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct Totalizer {
    pub counters: HashMap<String, u64>,
    pub gauges: HashMap<String, i64>,
    pub histograms: HashMap<String, Vec<u64>>,
}

impl Totalizer {
    /// Sum of the counters named `metric` carrying all `labels` (stat names as rendered:
    /// `label=.=value;.;` segments, then the metric name).
    pub fn counter(&self, metric: &str, labels: &[(&str, &str)]) -> u64 {
        self.counters
            .iter()
            .filter(|(name, _)| has(name, metric, labels))
            .map(|(_, v)| *v)
            .sum()
    }

    /// The gauge named `metric` carrying all `labels`, if set.
    pub fn gauge(&self, metric: &str, labels: &[(&str, &str)]) -> Option<i64> {
        self.gauges
            .iter()
            .find(|(name, _)| has(name, metric, labels))
            .map(|(_, v)| *v)
    }
}

/// Whether stat `name` is `metric` with all `labels`.
fn has(name: &str, metric: &str, labels: &[(&str, &str)]) -> bool {
    name.ends_with(&format!(";.;{metric}"))
        && labels
            .iter()
            .all(|(k, v)| name.contains(&format!("{k}=.={v};.;")))
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
