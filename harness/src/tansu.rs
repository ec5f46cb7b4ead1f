//! The tansu Kafka-protocol broker (crates.io `tansu` 0.6.0, sqlite storage engine).
//!
//! The sqlite engine is the one that keeps every record: tansu's memory engine loses
//! messages on mid-batch fetches and misreports latest offsets (DESIGN.md section 7).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::process::Service;

pub struct Broker {
    pub port: u16,
    pub service: Service,
}

impl Broker {
    /// Start a broker listening on `port` with its data under `dir`, advertising
    /// `advertised_port` in Metadata (a sidecar's listener, so that clients reconnect
    /// through it).
    pub fn start(dir: &Path, port: u16, advertised_port: u16) -> Result<Broker> {
        Broker::start_named("tansu", &dir.join("tansu-data"), dir, port, advertised_port)
    }

    /// Start broker `name` on the sqlite database in `data`, logging into `log_dir`.
    ///
    /// tansu brokers keep no state of their own: several on one database are one cluster.
    /// The local mesh runs one per client workload because Kafka clients reconnect to the
    /// advertised address, and each workload must reach the cluster through its own
    /// sidecar (Istio does it with iptables; here each broker advertises that sidecar).
    pub fn start_named(
        name: &str,
        data: &Path,
        log_dir: &Path,
        port: u16,
        advertised_port: u16,
    ) -> Result<Broker> {
        std::fs::create_dir_all(data)?;
        let mut command = Command::new(crate::paths::tansu()?);
        command
            .current_dir(data)
            .arg("broker")
            .args(["--listener-url", &format!("tcp://127.0.0.1:{port}")])
            .args([
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{advertised_port}"),
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .args(["--cluster-id", "kiosk"])
            // tansu also reads these from the environment: keep a caller's out of it.
            .env_remove("CLUSTER_ID")
            .env_remove("STORAGE_ENGINE")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env(
                "RUST_LOG",
                std::env::var("KIOSK_TANSU_LOG").unwrap_or_else(|_| "warn".into()),
            );
        let mut service = Service::start(name, command, log_dir)?;
        service.wait_for_port(port, Duration::from_secs(60))?;
        Ok(Broker { port, service })
    }
}
