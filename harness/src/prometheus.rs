//! A client for Prometheus's HTTP query API (PromQL instant queries).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

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
