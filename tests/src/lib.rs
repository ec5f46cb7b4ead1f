//! The test bed: a run directory, Envoy sidecars carrying the built filter, and real
//! Apache Kafka behind them.
#![forbid(unsafe_code)]

use anyhow::Result;
pub use kiosk_harness::components::envoy::ISTIO_CONCURRENCY;
use kiosk_harness::components::envoy::{Protocol, Route, Sidecar, SidecarSpec};
use kiosk_harness::components::kafka::{Kafka, KafkaSpec};
use kiosk_harness::ports;
use serde_json::Value;

pub use kiosk_harness::paths::run_dir;

/// A sidecar for workload `workload` in namespace `shop` with one Kafka listener in front
/// of `upstream`, the filter configured with `plugin_config`.
pub fn kafka_sidecar(
    dir: &std::path::Path,
    workload: &str,
    listener: u16,
    upstream: u16,
    plugin_config: Value,
) -> Result<Sidecar> {
    kafka_sidecar_to(
        dir,
        workload,
        &[(upstream, listener)],
        plugin_config,
        Vec::new(),
    )
}

/// Real Apache Kafka with `brokers` nodes, each advertising its own listener of one
/// sidecar for `workload` (with the filter configured by `plugin_config`), as a workload
/// in a mesh reaches every broker through its sidecar. Returns the cluster, the sidecar
/// and the client's bootstrap address.
pub fn kafka_behind_sidecar(
    dir: &std::path::Path,
    workload: &str,
    brokers: usize,
    plugin_config: Value,
) -> Result<(Kafka, Sidecar, String)> {
    kafka_behind_sidecar_with(dir, workload, brokers, plugin_config, ISTIO_CONCURRENCY)
}

/// [`kafka_behind_sidecar`] with `concurrency` Envoy worker threads (each its own VM).
pub fn kafka_behind_sidecar_with(
    dir: &std::path::Path,
    workload: &str,
    brokers: usize,
    plugin_config: Value,
    concurrency: u32,
) -> Result<(Kafka, Sidecar, String)> {
    let mut free = ports::Allocator::default();
    let spec = KafkaSpec::new(dir, brokers, &[workload], &mut free)?;
    let routes = spec.client_ports(workload);
    let kafka = Kafka::start(spec)?;
    let sidecar = sidecar(
        dir,
        workload,
        &routes,
        plugin_config,
        Vec::new(),
        concurrency,
    )?;
    let bootstrap = format!("127.0.0.1:{}", routes[0].1);
    Ok((kafka, sidecar, bootstrap))
}

/// A sidecar with one Kafka listener per (upstream, listener) pair, started with `env`
/// in its environment (the filter's VM reads those variables).
pub fn kafka_sidecar_to(
    dir: &std::path::Path,
    workload: &str,
    routes: &[(u16, u16)],
    plugin_config: Value,
    env: Vec<(String, String)>,
) -> Result<Sidecar> {
    sidecar(dir, workload, routes, plugin_config, env, ISTIO_CONCURRENCY)
}

fn sidecar(
    dir: &std::path::Path,
    workload: &str,
    routes: &[(u16, u16)],
    plugin_config: Value,
    env: Vec<(String, String)>,
    concurrency: u32,
) -> Result<Sidecar> {
    let routes = routes
        .iter()
        .map(|&(upstream, listener)| Route::outbound("kafka", listener, upstream, Protocol::Kafka))
        .collect();
    let spec = SidecarSpec {
        plugin_config,
        concurrency,
        env,
        ..SidecarSpec::standalone(workload, "shop", routes)?
    };
    Sidecar::start(spec, dir)
}

/// Wait until a flush has happened (the filter flushes every `flush_interval_ms`).
pub fn wait_flush() {
    std::thread::sleep(std::time::Duration::from_millis(1500));
}

/// One real Kafka cluster at a time in a test binary: two on two cores would time each
/// other out. Hold the guard for the test's length.
pub fn one_cluster() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The sidecar's stats once every produce is counted: the filter flushes on its tick and
/// Envoy merges the workers' histograms on its stats flush, so wait (at most 15 s) until
/// every produce request has its latency sample. Kept in `<dir>/stats.prom`.
pub fn stats_settled(
    sidecar: &Sidecar,
    dir: &std::path::Path,
) -> Vec<kiosk_harness::prometheus::scrape::Sample> {
    use kiosk_harness::prometheus::scrape;
    use std::time::{Duration, Instant};
    wait_flush();
    let start = Instant::now();
    let mut text = sidecar.prometheus_text().unwrap_or_default();
    while start.elapsed() < Duration::from_secs(15) {
        let s = scrape::parse(&text);
        let requests = scrape::sum(&s, "kafka_requests_total", &[("api", "produce")]);
        let timed = scrape::sum(
            &s,
            "kafka_request_duration_milliseconds_count",
            &[("api", "produce")],
        );
        if requests > 0.0 && requests == timed {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        text = sidecar.prometheus_text().unwrap_or_default();
    }
    let _ = std::fs::write(dir.join("stats.prom"), &text);
    scrape::parse(&text)
}

/// The lines a client program of the live tests prints for the test to check the filter
/// against: `<what> <topic> <n>` (`acked orders 300`, `consumed orders 300`); other lines
/// are ignored.
pub fn client_lines(stdout: &str) -> Vec<(String, String, usize)> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (word, topic, n) = (words.next()?, words.next()?, words.next()?);
            Some((word.to_string(), topic.to_string(), n.parse().ok()?))
        })
        .collect()
}

/// Run a client program of the live tests (`what` names it in a failure), keep its output
/// in `log`, require success, and return its [`client_lines`].
pub fn run_client(
    what: &str,
    mut command: std::process::Command,
    log: &std::path::Path,
) -> Vec<(String, String, usize)> {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    std::fs::write(log, format!("{stdout}\n--- stderr\n{stderr}")).unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    client_lines(&stdout)
}
