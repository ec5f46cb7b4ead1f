//! A client for Prometheus's HTTP query API (PromQL instant and range queries).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// One sample of an instant vector.
#[derive(Clone, Debug)]
pub struct InstantSample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl InstantSample {
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
    pub async fn query(&self, promql: &str) -> Result<Vec<InstantSample>> {
        let result = self
            .get("query", promql, &[("query", promql.to_string())])
            .await?;
        Ok(result
            .iter()
            .map(|r| InstantSample {
                labels: labels(r),
                value: r["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN),
            })
            .collect())
    }

    /// Evaluate a range query from `start` to `end` (Unix seconds) every `step` seconds:
    /// each series with its labels and its `(time, value)` points.
    pub async fn query_range(
        &self,
        promql: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Vec<(BTreeMap<String, String>, Vec<(f64, f64)>)>> {
        let params = [
            ("query", promql.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{step}")),
        ];
        let result = self.get("query_range", promql, &params).await?;
        Ok(result
            .iter()
            .map(|r| {
                let points = r["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        let t = p[0].as_f64()?;
                        let v: f64 = p[1].as_str()?.parse().ok()?;
                        v.is_finite().then_some((t, v))
                    })
                    .collect();
                (labels(r), points)
            })
            .collect())
    }

    /// `GET /api/v1/<endpoint>` with `params`: the `data.result` array of a successful answer.
    async fn get(
        &self,
        endpoint: &str,
        promql: &str,
        params: &[(&str, String)],
    ) -> Result<Vec<Value>> {
        let url = format!("{}/api/v1/{endpoint}", self.base);
        let response = self
            .http
            .get(&url)
            .query(params)
            .send()
            .await
            .with_context(|| format!("querying Prometheus at {}", self.base))?;
        let body: Value = response.json().await.context("Prometheus answer")?;
        if body["status"] != "success" {
            bail!("Prometheus refused {promql}: {}", body["error"]);
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// The sum of an instant query's samples (0 when empty).
    pub async fn sum(&self, promql: &str) -> Result<f64> {
        Ok(self.query(promql).await?.iter().map(|s| s.value).sum())
    }
}

/// A result's series labels (`metric`).
fn labels(result: &Value) -> BTreeMap<String, String> {
    result["metric"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}
