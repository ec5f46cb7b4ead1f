//! A client of a Confluent-compatible schema registry (Apicurio Registry's
//! `/apis/ccompat/v7`): the calls the producer, the mirror and the registration job make.
//!
//! A [`Registry`] may wait for the registry ([`Registry::waiting`]): until its deadline, each
//! call is retried every [`RETRY_EVERY`] while the registry is unreachable or not ready (the
//! mesh answers 502/503/504 while the registry's pod pulls its image and starts its JVM).
//! Without a deadline a call is made once, and the caller sees what came back.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// The registry's content type.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// What a call accepts.
const ACCEPT: &str = "application/vnd.schemaregistry.v1+json, application/json";
/// How often a waiting call retries.
pub const RETRY_EVERY: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Registry {
    http: reqwest::Client,
    base: String,
    /// Until when calls retry while the registry is not ready (None: no retry).
    deadline: Option<Instant>,
}

/// Whether an answer means the registry is not ready yet: no answer at all (`None`), or the
/// mesh's 502, 503, 504.
pub fn not_ready(status: Option<u16>) -> bool {
    matches!(status, None | Some(502..=504))
}

/// When a call that failed at `now` tries again under `deadline` (None: it gives up).
fn next_try(now: Instant, deadline: Option<Instant>) -> Option<Instant> {
    let deadline = deadline?;
    if now >= deadline {
        return None;
    }
    Some((now + RETRY_EVERY).min(deadline))
}

/// An answer's text as JSON, or as a JSON string when it is not JSON.
fn answer_value(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// At most `n` characters of `text`.
pub fn clip(text: &str, n: usize) -> String {
    let mut out: String = text.chars().take(n).collect();
    if out.len() < text.len() {
        out.push_str("...");
    }
    out
}

impl Registry {
    /// A client of the API at `base` (`http://host:8080/apis/ccompat/v7`); its calls are made
    /// once (see [`Registry::waiting`]).
    pub fn new(base: &str) -> Result<Registry> {
        Ok(Registry {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            base: base.trim_end_matches('/').to_string(),
            deadline: None,
        })
    }

    /// The same client (the same HTTP client), its calls retried while the registry is
    /// unreachable or not ready, for up to `wait` from now.
    pub fn waiting(self, wait: Duration) -> Registry {
        Registry {
            deadline: Some(Instant::now() + wait),
            ..self
        }
    }

    /// The API's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `method path` with a JSON body: the status and the answer (JSON, or its text). A
    /// waiting registry retries while not ready, and fails once its deadline has passed.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let body = body.map(|b| b.to_string());
        loop {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header("Accept", ACCEPT);
            if let Some(body) = &body {
                request = request
                    .header("Content-Type", CONTENT_TYPE)
                    .body(body.clone());
            }
            let last = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    if !not_ready(Some(status)) || self.deadline.is_none() {
                        return Ok((status, answer_value(text)));
                    }
                    format!("{status}: {}", clip(&text, 200))
                }
                Err(e) if self.deadline.is_none() => {
                    return Err(e).with_context(|| format!("{method} {url}"));
                }
                Err(e) => format!("no answer: {e:#}"),
            };
            let Some(at) = next_try(Instant::now(), self.deadline) else {
                bail!("{method} {url}: the registry did not answer in time (last: {last})");
            };
            tracing::debug!(%method, %url, %last, "schema registry not ready; retrying");
            tokio::time::sleep_until(at.into()).await;
        }
    }

    /// Register the JSON Schema `schema` as `subject`'s next version: the status and the
    /// answer (`{"id": ..}` when accepted, 409 when the compatibility level refuses it).
    pub async fn register(&self, subject: &str, schema: &str) -> Result<(u16, Value)> {
        let path = format!("/subjects/{subject}/versions");
        self.call(reqwest::Method::POST, &path, Some(schema_body(schema)))
            .await
    }

    /// Whether the JSON Schema `schema` is compatible with `subject`'s latest version under the
    /// subject's level, without registering it: the status and the answer
    /// (`{"is_compatible": bool}`).
    pub async fn check_compatibility(&self, subject: &str, schema: &str) -> Result<(u16, Value)> {
        let path = format!("/compatibility/subjects/{subject}/versions/latest");
        self.call(reqwest::Method::POST, &path, Some(schema_body(schema)))
            .await
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
            200 => Ok(Some(
                schema_of(&answer).with_context(|| format!("schema {id}"))?,
            )),
            404 => Ok(None),
            _ => bail!("schema {id}: {status} {answer}"),
        }
    }
}

/// The body registering or checking a JSON Schema.
fn schema_body(schema: &str) -> Value {
    json!({ "schemaType": "JSON", "schema": schema })
}

/// The schema in an answer of `GET /schemas/ids/<id>` (`{"schema": "<JSON as a string>"}`).
pub fn schema_of(answer: &Value) -> Result<Value> {
    let text = answer["schema"]
        .as_str()
        .with_context(|| format!("no `schema` in {answer}"))?;
    serde_json::from_str(text).context("the schema is not JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_answer_and_the_mesh_gateway_errors_are_not_ready() {
        for status in [None, Some(502), Some(503), Some(504)] {
            assert!(not_ready(status), "{status:?}");
        }
        for status in [200, 400, 403, 404, 409, 422, 500] {
            assert!(!not_ready(Some(status)), "{status}");
        }
    }

    #[test]
    fn retries_every_two_seconds_until_the_deadline() {
        let now = Instant::now();
        assert_eq!(next_try(now, None), None, "no deadline: no retry");
        assert_eq!(next_try(now, Some(now)), None, "the deadline passed");
        assert_eq!(
            next_try(now, Some(now - Duration::from_secs(1))),
            None,
            "long past"
        );
        assert_eq!(
            next_try(now, Some(now + Duration::from_secs(300))),
            Some(now + RETRY_EVERY)
        );
        let close = now + Duration::from_millis(500);
        assert_eq!(
            next_try(now, Some(close)),
            Some(close),
            "the last try at the deadline"
        );
    }

    #[test]
    fn answers_are_json_or_their_text() {
        assert_eq!(answer_value(r#"{"id":1}"#.into()), json!({"id": 1}));
        assert_eq!(
            answer_value("no healthy upstream".into()),
            json!("no healthy upstream")
        );
        assert_eq!(answer_value(String::new()), json!(""));
    }

    #[test]
    fn a_schema_by_id_is_the_json_of_its_string() {
        let answer = json!({ "schema": "{\"type\": \"object\"}" });
        assert_eq!(schema_of(&answer).unwrap(), json!({"type": "object"}));
        assert!(schema_of(&json!({ "schema": "{" })).is_err());
        assert!(schema_of(&json!({ "id": 1 })).is_err());
    }

    #[test]
    fn clip_keeps_the_start() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("abcdef", 3), "abc...");
        assert_eq!(clip("ééé", 2), "éé...");
    }

    #[test]
    fn waiting_keeps_the_base_and_sets_a_deadline() {
        let registry = Registry::new("http://registry:8080/apis/ccompat/v7/").unwrap();
        assert!(registry.deadline.is_none());
        let registry = registry.waiting(Duration::from_secs(300));
        assert_eq!(registry.base(), "http://registry:8080/apis/ccompat/v7");
        assert!(registry.deadline.unwrap() > Instant::now() + Duration::from_secs(290));
    }
}
