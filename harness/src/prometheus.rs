//! Prometheus (Debian's `prometheus` package) scraping every sidecar, and a client for its
//! HTTP query API.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::process::Service;

/// A sidecar to scrape, with the target labels a Kubernetes service discovery would add.
#[derive(Clone, Debug)]
pub struct Target {
    pub admin_port: u16,
    pub namespace: String,
    pub workload: String,
}

pub struct PrometheusServer {
    pub port: u16,
    pub service: Service,
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
                    "targets": [format!("127.0.0.1:{}", t.admin_port)],
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
        Ok(PrometheusServer { port, service })
    }
}

/// One sample of an instant vector.
#[derive(Clone, Debug)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// The HTTP API of a Prometheus server.
#[derive(Clone)]
pub struct PromClient {
    pub base: String,
    http: reqwest::Client,
}

impl PromClient {
    pub fn new(base: &str) -> Result<PromClient> {
        Ok(PromClient {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    /// Evaluate an instant query.
    pub async fn query(&self, promql: &str) -> Result<Vec<Sample>> {
        let url = format!("{}/api/v1/query", self.base);
        let response = self
            .http
            .get(&url)
            .query(&[("query", promql)])
            .send()
            .await
            .with_context(|| format!("querying Prometheus at {}", self.base))?;
        let body: Value = response.json().await.context("Prometheus answer")?;
        if body["status"] != "success" {
            bail!("Prometheus refused {promql}: {}", body["error"]);
        }
        let mut samples = Vec::new();
        for r in body["data"]["result"].as_array().into_iter().flatten() {
            let labels = r["metric"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            let value = r["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            samples.push(Sample { labels, value });
        }
        Ok(samples)
    }

    /// The sum of an instant query's samples (0 when empty).
    pub async fn sum(&self, promql: &str) -> Result<f64> {
        Ok(self.query(promql).await?.iter().map(|s| s.value).sum())
    }
}
