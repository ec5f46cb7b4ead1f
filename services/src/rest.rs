//! `kiosk rest`: an HTTP entry compatible with the Strimzi Kafka Bridge produce API.
//!
//! `POST /topics/{topic}` with `application/vnd.kafka.json.v2+json` (keys and values are
//! JSON) or `application/vnd.kafka.binary.v2+json` (keys and values are base64), answered
//! with `{"offsets":[{"partition":..,"offset":..}]}` once every record is acknowledged.
//! `application/vnd.kafka.text.v2+json` (string keys and values) is accepted too.
//!
//! Errors use the Bridge's status codes and body, `{"error_code":<status>,"message":".."}`
//! (read from strimzi-kafka-bridge's `HttpBridge` and `HttpSourceBridgeEndpoint`):
//! - a missing or other Content-Type: 400, "Validation error on: The format of the request
//!   body is not supported";
//! - a body that is not JSON: 400, "Validation error on: The request body can't be decoded";
//! - a record of the wrong shape (no `value`, an unknown field): 400, "Validation error on:
//!   Schema validation error" with `validation_errors`;
//! - no `records`, an empty list, or a key or value the format cannot carry: 422.
//!
//! One deliberate difference: for a topic that does not exist the Bridge's OpenAPI
//! documents a 404 for the request, while its code answers 200 with a 404 entry per record
//! after the producer's metadata timeout. kiosk answers the documented 404 at once.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::kafka;
use crate::otel::Tracing;
use opentelemetry::trace::SpanKind;
use opentelemetry::KeyValue;

pub const JSON_FORMAT: &str = "application/vnd.kafka.json.v2+json";
pub const BINARY_FORMAT: &str = "application/vnd.kafka.binary.v2+json";
pub const TEXT_FORMAT: &str = "application/vnd.kafka.text.v2+json";
/// The content type of every Bridge answer.
pub const BRIDGE_RESPONSE: &str = "application/vnd.kafka.v2+json";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to serve HTTP on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Kafka bootstrap servers (in the mesh: this workload's sidecar).
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap: String,
    /// The Kafka client id.
    #[arg(long, default_value = "rest")]
    pub client_id: String,
    /// A producer property, `key=value`, applied after kiosk's own (as the KafkaBridge's
    /// `spec.producer.config`); repeatable.
    #[arg(long = "producer-config", value_name = "KEY=VALUE", value_parser = parse_property)]
    pub producer_config: Vec<(String, String)>,
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(format!("expected key=value, found `{text}`")),
    }
}

struct Rest {
    producer: FutureProducer,
    /// The request's trace continues into the records' headers, as the Bridge's
    /// OpenTelemetry instrumentation does.
    tracing: Tracing,
    /// Topics seen to exist (a topic is not deleted under a running pipeline).
    known: Mutex<HashSet<String>>,
}

pub async fn run(args: Args) -> Result<()> {
    let mut config = kafka::producer_config(&args.bootstrap, &args.client_id)?;
    for (key, value) in &args.producer_config {
        config.set(key, value);
    }
    let producer: FutureProducer = config.create().context("creating the Kafka producer")?;
    let state = Arc::new(Rest {
        producer,
        tracing: Tracing::start_for("rest").await?,
        known: Mutex::new(HashSet::new()),
    });
    let app = Router::new()
        .route("/topics/{topic}", post(send))
        .route("/healthy", get(|| async { StatusCode::NO_CONTENT }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(listen = %args.listen, bootstrap = %args.bootstrap, "rest: serving the Bridge produce API");
    axum::serve(listener, app).await?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Records {
    records: Vec<InRecord>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InRecord {
    #[serde(default)]
    key: Option<Value>,
    value: Value,
    #[serde(default)]
    partition: Option<i32>,
    #[serde(default)]
    headers: Vec<InHeader>,
    #[serde(default)]
    timestamp: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InHeader {
    key: String,
    /// Base64, as in the Bridge.
    value: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Json,
    Binary,
    Text,
}

/// A record decoded into Kafka bytes.
struct OutRecord {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    partition: Option<i32>,
    headers: Vec<(String, Vec<u8>)>,
    timestamp: Option<i64>,
}

/// A request the Bridge refuses: its status, message and, for schema errors, the list of
/// what failed.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    message: String,
    validation_errors: Vec<String>,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
            validation_errors: Vec::new(),
        }
    }

    fn unprocessable(message: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut body = json!({ "error_code": self.status.as_u16(), "message": self.message });
        if !self.validation_errors.is_empty() {
            body["validation_errors"] = json!(self.validation_errors);
        }
        let content_type = [(header::CONTENT_TYPE, BRIDGE_RESPONSE)];
        (self.status, content_type, body.to_string()).into_response()
    }
}

async fn send(
    State(rest): State<Arc<Rest>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let format = match content_type.as_deref() {
        Some(JSON_FORMAT) => Format::Json,
        Some(BINARY_FORMAT) => Format::Binary,
        Some(TEXT_FORMAT) => Format::Text,
        _ => {
            let message = "Validation error on: The format of the request body is not supported";
            return Refusal::new(StatusCode::BAD_REQUEST, message).into_response();
        }
    };
    let records = match decode(format, &body) {
        Ok(records) => records,
        Err(refusal) => return refusal.into_response(),
    };
    match rest.topic_exists(&topic).await {
        Ok(true) => {}
        Ok(false) => {
            let message = format!("The specified topic was not found: {topic}");
            return Refusal::new(StatusCode::NOT_FOUND, message).into_response();
        }
        Err(e) => {
            let message = format!("Kafka is not reachable: {e:#}");
            return Refusal::new(StatusCode::SERVICE_UNAVAILABLE, message).into_response();
        }
    }
    // A span per request, child of the caller's; its context goes into every record.
    let incoming = headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes()));
    let parent = rest.tracing.extract(incoming);
    let attributes = vec![
        KeyValue::new("messaging.destination.name", topic.clone()),
        KeyValue::new("messaging.batch.message_count", records.len() as i64),
    ];
    let name = format!("{topic} publish");
    let cx = rest
        .tracing
        .start(&name, SpanKind::Producer, &parent, attributes);
    let trace = rest.tracing.inject(&cx);
    let records = records
        .into_iter()
        .map(|mut r| {
            r.headers
                .retain(|(k, _)| !trace.iter().any(|(t, _)| t == k));
            r.headers.extend(
                trace
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_bytes().to_vec())),
            );
            r
        })
        .collect();
    let offsets = rest.produce(&topic, records).await;
    rest.tracing.end(&cx);
    let body = json!({ "offsets": offsets });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, BRIDGE_RESPONSE)],
        body.to_string(),
    )
        .into_response()
}

/// Parse and decode a request body; a refusal says what is wrong and where.
fn decode(format: Format, body: &[u8]) -> Result<Vec<OutRecord>, Refusal> {
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        let message = "Validation error on: The request body can't be decoded";
        Refusal::new(StatusCode::BAD_REQUEST, message)
    })?;
    if value.get("records").is_none() {
        return Err(Refusal::unprocessable("the request body has no records"));
    }
    let records: Records = serde_path_to_error::deserialize(value).map_err(|e| {
        let mut refusal = Refusal::new(
            StatusCode::BAD_REQUEST,
            "Validation error on: Schema validation error",
        );
        refusal.validation_errors = vec![format!("{}: {}", e.path(), e.inner())];
        refusal
    })?;
    if records.records.is_empty() {
        return Err(Refusal::unprocessable("records must not be empty"));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = |what: &str, i: usize, v: &Value| -> Result<Vec<u8>, Refusal> {
        match (format, v) {
            (Format::Json, v) => Ok(serde_json::to_vec(v).unwrap_or_default()),
            (Format::Binary, Value::String(s)) => b64.decode(s).map_err(|e| {
                Refusal::unprocessable(format!("records[{i}].{what} is not base64: {e}"))
            }),
            (Format::Text, Value::String(s)) => Ok(s.clone().into_bytes()),
            (Format::Binary, _) => Err(Refusal::unprocessable(format!(
                "records[{i}].{what} must be a base64 string in {BINARY_FORMAT}"
            ))),
            (Format::Text, _) => Err(Refusal::unprocessable(format!(
                "Because the embedded format is 'text', records[{i}].{what} must be a string"
            ))),
        }
    };
    let mut out = Vec::with_capacity(records.records.len());
    for (i, r) in records.records.iter().enumerate() {
        let key = match &r.key {
            None | Some(Value::Null) => None,
            Some(k) => Some(bytes("key", i, k)?),
        };
        let mut headers = Vec::with_capacity(r.headers.len());
        for (j, h) in r.headers.iter().enumerate() {
            let value = b64.decode(&h.value).map_err(|e| {
                Refusal::unprocessable(format!(
                    "records[{i}].headers[{j}].value is not base64: {e}"
                ))
            })?;
            headers.push((h.key.clone(), value));
        }
        out.push(OutRecord {
            key,
            value: bytes("value", i, &r.value)?,
            partition: r.partition,
            headers,
            timestamp: r.timestamp,
        });
    }
    Ok(out)
}

impl Rest {
    async fn topic_exists(self: &Arc<Self>, topic: &str) -> Result<bool> {
        if self.known.lock().expect("lock").contains(topic) {
            return Ok(true);
        }
        let this = Arc::clone(self);
        let name = topic.to_string();
        let exists = tokio::task::spawn_blocking(move || -> Result<bool> {
            let metadata = this
                .producer
                .client()
                .fetch_metadata(Some(&name), Duration::from_secs(10))
                .context("Kafka metadata request failed")?;
            Ok(metadata
                .topics()
                .iter()
                .any(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty()))
        })
        .await??;
        if exists {
            self.known.lock().expect("lock").insert(topic.to_string());
        }
        Ok(exists)
    }

    /// Send every record and wait for each acknowledgement; a record refused with a
    /// transient broker error is sent again (a few times) before its error is answered.
    async fn produce(&self, topic: &str, records: Vec<OutRecord>) -> Vec<Value> {
        const ATTEMPTS: usize = 5;
        let mut answers: Vec<Option<Value>> = vec![None; records.len()];
        let mut pending: Vec<usize> = (0..records.len()).collect();
        for attempt in 1..=ATTEMPTS {
            let sends = pending.iter().map(|&i| self.send_one(topic, &records[i]));
            let results = futures::future::join_all(sends).await;
            let mut again = Vec::new();
            for (&i, result) in pending.iter().zip(results) {
                match result {
                    Ok((partition, offset)) => {
                        answers[i] = Some(json!({ "partition": partition, "offset": offset }));
                    }
                    Err(e) => {
                        let status = match &e {
                            KafkaError::MessageProduction(
                                RDKafkaErrorCode::UnknownTopicOrPartition
                                | RDKafkaErrorCode::UnknownPartition,
                            ) => StatusCode::NOT_FOUND,
                            _ => StatusCode::INTERNAL_SERVER_ERROR,
                        };
                        if status == StatusCode::INTERNAL_SERVER_ERROR && attempt < ATTEMPTS {
                            tracing::warn!(topic, attempt, error = %e, "rest: produce failed, sending again");
                            again.push(i);
                        }
                        answers[i] = Some(
                            json!({ "error_code": status.as_u16(), "message": e.to_string() }),
                        );
                    }
                }
            }
            if again.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
            pending = again;
        }
        answers.into_iter().map(Option::unwrap_or_default).collect()
    }

    async fn send_one(&self, topic: &str, r: &OutRecord) -> Result<(i32, i64), KafkaError> {
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
            .payload(r.value.as_slice())
            .headers(headers);
        if let Some(key) = &r.key {
            record = record.key(key.as_slice());
        }
        if let Some(p) = r.partition {
            record = record.partition(p);
        }
        if let Some(t) = r.timestamp {
            record = record.timestamp(t);
        }
        match self.producer.send(record, Duration::from_secs(30)).await {
            Ok(d) => Ok((d.partition, d.offset)),
            Err((e, _)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(format: Format, body: &str) -> Refusal {
        match decode(format, body.as_bytes()) {
            Ok(_) => panic!("{body} was accepted"),
            Err(r) => r,
        }
    }

    #[test]
    fn bodies_the_bridge_refuses_get_its_status_and_message() {
        let r = refused(Format::Json, "{not json");
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            r.message,
            "Validation error on: The request body can't be decoded"
        );

        let r = refused(Format::Json, r#"{"records":[{"key":"k"}]}"#);
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.message, "Validation error on: Schema validation error");
        assert!(
            r.validation_errors[0].contains("value"),
            "{:?}",
            r.validation_errors
        );

        let r = refused(Format::Json, r#"{"records":[{"value":1,"colour":"red"}]}"#);
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(
            r.validation_errors[0].contains("colour"),
            "{:?}",
            r.validation_errors
        );

        assert_eq!(
            refused(Format::Json, "{}").status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            refused(Format::Json, r#"{"records":[]}"#).status,
            StatusCode::UNPROCESSABLE_ENTITY
        );

        let r = refused(Format::Binary, r#"{"records":[{"value":"***"}]}"#);
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            r.message.contains("records[0].value is not base64"),
            "{}",
            r.message
        );
        let r = refused(Format::Text, r#"{"records":[{"value":{"a":1}}]}"#);
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn formats_decode_to_the_bytes_the_bridge_would_send() {
        let body = r#"{"records":[{"key":"order-1","value":{"b":2,"a":1},"partition":2,
            "headers":[{"key":"kiosk-seq","value":"MQ=="}],"timestamp":1700000000000}]}"#;
        let r = &decode(Format::Json, body.as_bytes()).unwrap()[0];
        assert_eq!(r.key.as_deref(), Some(&br#""order-1""#[..]));
        assert_eq!(
            r.value, br#"{"b":2,"a":1}"#,
            "JSON as sent, field order kept"
        );
        assert_eq!(r.partition, Some(2));
        assert_eq!(r.headers, vec![("kiosk-seq".to_string(), b"1".to_vec())]);
        assert_eq!(r.timestamp, Some(1_700_000_000_000));

        let body = r#"{"records":[{"key":"b3JkZXItMQ==","value":"aGVsbG8="}]}"#;
        let r = &decode(Format::Binary, body.as_bytes()).unwrap()[0];
        assert_eq!(r.key.as_deref(), Some(&b"order-1"[..]));
        assert_eq!(r.value, b"hello");

        let r = &decode(Format::Text, br#"{"records":[{"value":"plain"}]}"#).unwrap()[0];
        assert_eq!(
            (r.key.as_deref(), r.value.as_slice()),
            (None, &b"plain"[..])
        );
    }
}
