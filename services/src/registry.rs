//! A client of a Confluent-compatible schema registry (Apicurio Registry's
//! `/apis/ccompat/v7`): the calls the producer, the mirror and the registration job make.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// The registry's content type.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

#[derive(Clone)]
pub struct Registry {
    http: reqwest::Client,
    base: String,
}

impl Registry {
    /// A client of the API at `base` (`http://host:8080/apis/ccompat/v7`).
    pub fn new(base: &str) -> Result<Registry> {
        Ok(Registry {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    /// `method path` with a JSON body: the status and the answer (JSON, or its text).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request
                .header("Content-Type", CONTENT_TYPE)
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// Register the JSON Schema `schema` as `subject`'s next version: the status and the
    /// answer (`{"id": ..}` when accepted, 409 when the compatibility level refuses it).
    pub async fn register(&self, subject: &str, schema: &str) -> Result<(u16, Value)> {
        let body = json!({ "schemaType": "JSON", "schema": schema });
        let path = format!("/subjects/{subject}/versions");
        self.call(reqwest::Method::POST, &path, Some(body)).await
    }

    /// The id of `subject`'s latest version.
    pub async fn latest_id(&self, subject: &str) -> Result<u32> {
        let path = format!("/subjects/{subject}/versions/latest");
        let (status, answer) = self.call(reqwest::Method::GET, &path, None).await?;
        match answer["id"].as_u64().and_then(|id| u32::try_from(id).ok()) {
            Some(id) if status == 200 => Ok(id),
            _ => bail!("the latest version of {subject}: {status} {answer}"),
        }
    }

    /// The schema of `id` (None: the registry knows no such id). Any other failure is an
    /// error: the caller must not take an unreachable registry for an unknown id.
    pub async fn schema(&self, id: u32) -> Result<Option<Value>> {
        let path = format!("/schemas/ids/{id}");
        let (status, answer) = self.call(reqwest::Method::GET, &path, None).await?;
        match status {
            200 => {
                let text = answer["schema"]
                    .as_str()
                    .with_context(|| format!("schema {id}: no `schema` in {answer}"))?;
                Ok(Some(
                    serde_json::from_str(text)
                        .with_context(|| format!("schema {id} is not JSON"))?,
                ))
            }
            404 => Ok(None),
            _ => bail!("schema {id}: {status} {answer}"),
        }
    }
}
