//! What the Envoy benchmarks share: the two sidecars compared, Envoy's CPU time, and the
//! summary statistics they print.
#![allow(dead_code)]

use std::path::Path;

use kiosk_harness::components::envoy::{Protocol, Route, Sidecar, SidecarSpec};

use serde_json::{json, Value};

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
    let plugin_config = std::env::var("KIOSK_BENCH_PLUGIN_CONFIG")
        .ok()
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_else(|| json!({}));
    sidecar_with(
        dir,
        name,
        protocol,
        listener,
        upstream,
        plugin_config,
        Vec::new(),
    )
}

/// The same Envoy with the filter configured by `plugin_config` and `env` in its
/// environment (the filter's VM reads the Kafka credential from there).
pub fn sidecar_with(
    dir: &Path,
    name: &str,
    protocol: Protocol,
    listener: u16,
    upstream: u16,
    plugin_config: Value,
    env: Vec<(String, String)>,
) -> Sidecar {
    let routes = vec![Route::outbound("kafka", listener, upstream, protocol)];
    let spec = SidecarSpec {
        env,
        plugin_config,
        concurrency: 1,
        ..SidecarSpec::standalone(name, "bench", routes).unwrap()
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
    arg("--json")
}

/// The value after `flag` on the command line.
pub fn arg(flag: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != flag).nth(1)
}

/// Today's date and the machine, for a results file: "2026-11-29 on 2 × AMD EPYC, Linux
/// 6.18.44" (as `scripts/bench-report.py` writes them into `latest.md`).
pub fn run_on() -> String {
    let date = std::process::Command::new("date")
        .arg("+%F")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("?", |(_, v)| v.trim());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{date} on {cores} × {cpu}, Linux {}", kernel.trim())
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
