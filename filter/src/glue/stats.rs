//! Envoy's stats as a [`MetricSink`], with metric ids cached by name
//! (`define_metric` returns a new id on every call).

use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::metrics::MetricSink;

#[derive(Default)]
pub struct EnvoyStats {
    ids: HashMap<String, u32>,
}

impl EnvoyStats {
    fn id(&mut self, name: &str, kind: MetricType) -> Option<u32> {
        if let Some(&id) = self.ids.get(name) {
            return Some(id);
        }
        let id = hostcalls::define_metric(kind, name).ok()?;
        self.ids.insert(name.to_string(), id);
        Some(id)
    }
}

impl MetricSink for EnvoyStats {
    fn counter(&mut self, name: &str, delta: u64) {
        if let Some(id) = self.id(name, MetricType::Counter) {
            let _ = hostcalls::increment_metric(id, delta as i64);
        }
    }

    fn gauge(&mut self, name: &str, value: i64) {
        if let Some(id) = self.id(name, MetricType::Gauge) {
            let _ = hostcalls::record_metric(id, value.max(0) as u64);
        }
    }

    fn histogram(&mut self, name: &str, value: u64) {
        if let Some(id) = self.id(name, MetricType::Histogram) {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}
