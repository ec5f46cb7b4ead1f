//! Prometheus (Debian's `prometheus` package) scraping every sidecar, as a Kubernetes
//! service discovery would: one static target per sidecar with its namespace and workload.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};

use crate::components::Component;
use crate::process::Service;

/// A sidecar to scrape, with the target labels a Kubernetes service discovery would add.
#[derive(Clone, Debug)]
pub struct Target {
    /// `host:port` serving `/stats/prometheus`.
    pub address: String,
    pub namespace: String,
    pub workload: String,
}

pub struct PrometheusServer {
    pub port: u16,
    pub service: Service,
    dir: PathBuf,
    targets: Vec<Target>,
}

/// Scrape interval of the local mesh: short, so a run of a few seconds shows.
pub const SCRAPE_INTERVAL: &str = "1s";

impl PrometheusServer {
    pub fn start(dir: &Path, port: u16, targets: &[Target]) -> Result<PrometheusServer> {
        let config = dir.join("prometheus.yml");
        // JSON is YAML: one scrape job, one static target per sidecar.
        let static_configs: Vec<Value> = targets
            .iter()
            .map(|t| {
                json!({
                    "targets": [t.address],
                    "labels": { "namespace": t.namespace, "workload": t.workload, "app": t.workload }
                })
            })
            .collect();
        let body = json!({
            "global": { "scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL },
            "scrape_configs": [{
                "job_name": "envoy-sidecars",
                "metrics_path": "/stats/prometheus",
                "static_configs": static_configs
            }]
        });
        std::fs::write(&config, serde_json::to_vec_pretty(&body)?)?;
        let mut command = Command::new(crate::paths::prometheus()?);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=1d");
        let mut service = Service::start("prometheus", command, dir)?;
        service.wait_for_port(port, Duration::from_secs(60))?;
        Ok(PrometheusServer {
            port,
            service,
            dir: dir.to_path_buf(),
            targets: targets.to_vec(),
        })
    }
}

impl Component for PrometheusServer {
    fn name(&self) -> &str {
        "prometheus"
    }

    fn services(&self) -> Vec<&Service> {
        vec![&self.service]
    }

    fn services_mut(&mut self) -> Vec<&mut Service> {
        vec![&mut self.service]
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        crate::ports::wait_closed(self.port, Duration::from_secs(10))?;
        *self = PrometheusServer::start(&self.dir, self.port, &self.targets)?;
        Ok(())
    }
}
