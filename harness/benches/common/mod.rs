//! What the Envoy benchmarks share: the two sidecars compared, Envoy's CPU time, and the
//! summary statistics they print.
#![allow(dead_code)]

use std::path::Path;

use kiosk_harness::components::envoy::{Protocol, Route, Sidecar, SidecarSpec};
use kiosk_harness::{paths, ports};
use serde_json::json;

/// One Envoy pinned to one worker with one outbound Kafka listener to `upstream`: the
/// kiosk filter before `tcp_proxy` (`Protocol::Kafka`) or `tcp_proxy` alone
/// (`Protocol::Tcp`). `KIOSK_BENCH_PLUGIN_CONFIG` sets another pluginConfig, for
/// experiments.
pub fn sidecar(
    dir: &Path,
    name: &str,
    protocol: Protocol,
    listener: u16,
    upstream: u16,
) -> Sidecar {
    let spec = SidecarSpec {
        env: Vec::new(),
        workload: name.into(),
        namespace: "bench".into(),
        app: name.into(),
        admin_port: ports::free().unwrap(),
        routes: vec![Route::outbound("kafka", listener, upstream, protocol)],
        plugin_config: std::env::var("KIOSK_BENCH_PLUGIN_CONFIG")
            .ok()
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_else(|| json!({})),
        wasm: paths::filter_wasm().unwrap(),
        concurrency: 1,
        pod: None,
    };
    Sidecar::start(spec, dir).unwrap()
}

/// A process's CPU time so far, summed over its threads from
/// `/proc/<pid>/task/*/schedstat` (nanoseconds; `/proc/<pid>/stat` counts 10 ms ticks,
/// too coarse for short runs).
pub fn cpu_seconds(pid: u32) -> f64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    nanos as f64 / 1e9
}

pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// (min, max)
pub fn spread(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Per-run cost per GB (CPU seconds unless `unit` says otherwise) and MB/s of the
/// filter (index 0) and tcp_proxy (index 1).
pub struct Comparison {
    pub cpu_per_gb: [Vec<f64>; 2],
    pub mb_per_s: [Vec<f64>; 2],
    pub unit: &'static str,
}

impl Default for Comparison {
    fn default() -> Self {
        Comparison {
            cpu_per_gb: Default::default(),
            mb_per_s: Default::default(),
            unit: "CPU s/GB",
        }
    }
}

impl Comparison {
    pub fn add(&mut self, which: usize, cpu_seconds: f64, bytes: u64, seconds: f64) {
        self.cpu_per_gb[which].push(cpu_seconds / (bytes as f64 / 1e9));
        self.mb_per_s[which].push(bytes as f64 / 1e6 / seconds);
    }

    /// Prints one line and returns the figures as JSON.
    pub fn report(&self, case: &str) -> serde_json::Value {
        let ratios: Vec<f64> = self.cpu_per_gb[0]
            .iter()
            .zip(&self.cpu_per_gb[1])
            .map(|(a, b)| a / b)
            .collect();
        let (rlo, rhi) = spread(&ratios);
        let ratio = median(&ratios);
        let f_cpu = median(&self.cpu_per_gb[0]);
        let p_cpu = median(&self.cpu_per_gb[1]);
        let f_mb = median(&self.mb_per_s[0]);
        let p_mb = median(&self.mb_per_s[1]);
        println!(
            "  {case:<24} filter {f_cpu:6.3} {unit} {f_mb:7.0} MB/s | tcp_proxy {p_cpu:6.3} {unit} {p_mb:7.0} MB/s | ratio {ratio:.3} [{rlo:.3}-{rhi:.3}]",
            unit = self.unit,
        );
        json!({
            "case": case, "unit": self.unit, "filter_cpu_s_per_gb": f_cpu, "plain_cpu_s_per_gb": p_cpu,
            "filter_mb_s": f_mb, "plain_mb_s": p_mb, "ratio": ratio, "ratio_min": rlo, "ratio_max": rhi,
            "ratios": ratios,
        })
    }
}

/// `--json FILE` from the command line.
pub fn json_out() -> Option<String> {
    std::env::args().skip_while(|a| a != "--json").nth(1)
}

/// KIOSK_BENCH_CASES: only the cases whose name contains one of these (comma-separated).
pub fn wanted(name: &str) -> bool {
    let only = std::env::var("KIOSK_BENCH_CASES").unwrap_or_default();
    only.is_empty() || only.split(',').any(|w| name.contains(w.trim()))
}

/// The figures mean something only if the filter decoded the traffic: the filter's Envoy
/// must have counted `metric` records and no decode error. Panics otherwise.
pub fn check_decoded(filter: &Sidecar, metric: &str) {
    // The filter flushes its counters every second.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let samples = filter.prometheus().unwrap();
    let total = |name: &str| -> f64 {
        samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .sum()
    };
    let records = total(metric);
    let errors = total("kafka_decode_errors_total");
    assert!(
        records > 0.0 && errors == 0.0,
        "the filter did not decode the traffic: {metric} {records}, decode errors {errors}"
    );
}
