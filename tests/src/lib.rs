//! The test bed: a run directory, and Envoy sidecars carrying the built filter.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Result;
use kiosk_harness::envoy::{Protocol, Route, Sidecar, SidecarSpec};
use kiosk_harness::{paths, ports};
use serde_json::Value;

/// A fresh directory for one test's configs and logs, under `target/test-runs/`
/// (kept after the run for inspection).
pub fn run_dir(test: &str) -> Result<PathBuf> {
    let dir = paths::root().join("target/test-runs").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A sidecar for workload `workload` in namespace `shop` with one Kafka listener in front
/// of `upstream`, the filter configured with `plugin_config`.
pub fn kafka_sidecar(
    dir: &std::path::Path,
    workload: &str,
    listener: u16,
    upstream: u16,
    plugin_config: Value,
) -> Result<Sidecar> {
    let spec = SidecarSpec {
        workload: workload.into(),
        namespace: "shop".into(),
        app: workload.into(),
        admin_port: ports::free()?,
        routes: vec![Route::outbound(
            "kafka",
            listener,
            upstream,
            Protocol::Kafka,
        )],
        plugin_config,
        wasm: paths::filter_wasm()?,
        concurrency: 2,
    };
    Sidecar::start(spec, dir)
}

/// Wait until a flush has happened (the filter flushes every `flush_interval_ms`).
pub fn wait_flush() {
    std::thread::sleep(std::time::Duration::from_millis(1500));
}
