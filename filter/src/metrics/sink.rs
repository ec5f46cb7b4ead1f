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
