//! `kiosk mirror`: copy every record of one topic to another, key and headers kept.
//!
//! At least once: a batch's offsets are committed only after every record of it is
//! acknowledged by the broker, so a crash replays (and may duplicate) but never loses.
//!
//! With a schema registry (`--schema-registry`), each value must be in the registry's
//! wire format (magic byte 0, a 4-byte schema id, then JSON) and valid under the JSON
//! Schema of its id: it is mirrored as that JSON, its schema id in header
//! `kiosk-schema-id` (Kafka Connect's own JsonConverter reads it; see
//! docs/schema-registry.md). A value without the format, with an id the registry does not
//! know, or invalid under its schema goes to the dead-letter topic as it came, with the
//! reason in header `kiosk-dead-letter-reason`. An unreachable registry is retried, never
//! taken for an unknown id.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;

use crate::consume;
use crate::kafka;
use crate::otel::Tracing;
use opentelemetry::trace::SpanKind;
use opentelemetry::KeyValue;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The topic to read.
    #[arg(long, default_value = "events")]
    pub from: String,
    /// The topic to write.
    #[arg(long, default_value = "events.mirror")]
    pub to: String,
    /// Kafka bootstrap servers (in the mesh: this workload's sidecar).
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap: String,
    /// The consumer group.
    #[arg(long, default_value = "mirror")]
    pub group: String,
    /// The Kafka client id.
    #[arg(long, default_value = "mirror")]
    pub client_id: String,
    /// Records per batch (one commit per batch).
    #[arg(long, default_value_t = 200)]
    pub batch: usize,
    /// The schema registry's Confluent-compatible API: resolve and validate every value.
    #[arg(long, env = "SCHEMA_REGISTRY_URL")]
    pub schema_registry: Option<String>,
    /// Where values that fail that go.
    #[arg(long, default_value = "events.dlq")]
    pub dead_letter_topic: String,
}

/// The header naming a mirrored value's schema id.
pub const SCHEMA_ID_HEADER: &str = "kiosk-schema-id";
/// The header saying why a record was dead-lettered.
pub const DEAD_LETTER_HEADER: &str = "kiosk-dead-letter-reason";

/// Where one record goes.
enum Route {
    /// To the target topic: this value, with its schema id when it had one.
    Mirror(Vec<u8>, Option<u32>),
    /// To the dead-letter topic, for this reason.
    DeadLetter(&'static str),
}

/// Validators by schema id (None: the registry knows no such id), fetched once.
struct Schemas {
    registry: crate::registry::Registry,
    known: HashMap<u32, Option<Arc<jsonschema::Validator>>>,
}

impl Schemas {
    /// Where `value` goes; an error when the registry could not be asked.
    async fn route(&mut self, value: &[u8]) -> Result<Route> {
        let Some((id, json)) = crate::record::unframe(value) else {
            return Ok(Route::DeadLetter("no_schema_id"));
        };
        if !self.known.contains_key(&id) {
            let validator = match self.registry.schema(id).await? {
                Some(schema) => Some(Arc::new(
                    jsonschema::validator_for(&schema)
                        .map_err(|e| anyhow::anyhow!("schema {id} does not compile: {e}"))?,
                )),
                None => None,
            };
            self.known.insert(id, validator);
        }
        let Some(Some(validator)) = self.known.get(&id) else {
            return Ok(Route::DeadLetter("unknown_schema_id"));
        };
        match serde_json::from_slice::<serde_json::Value>(json) {
            Ok(instance) if validator.is_valid(&instance) => {
                Ok(Route::Mirror(json.to_vec(), Some(id)))
            }
            _ => Ok(Route::DeadLetter("invalid")),
        }
    }
}

pub async fn run(args: Args) -> Result<()> {
    let consumer = consume::subscribe(&args.bootstrap, &args.client_id, &args.group, &args.from)?;
    let producer: FutureProducer = kafka::producer_config(&args.bootstrap, &args.client_id)?
        .create()
        .context("creating the Kafka producer")?;
    tracing::info!(from = %args.from, to = %args.to, bootstrap = %args.bootstrap, registry = ?args.schema_registry, "mirror: running");
    let mut schemas = match &args.schema_registry {
        Some(url) => Some(Schemas {
            registry: crate::registry::Registry::new(url)?,
            known: HashMap::new(),
        }),
        None => None,
    };
    // Each record's trace (its `traceparent` header) continues with a span here, and
    // the mirrored or dead-lettered record carries the new context on.
    let tracing = Tracing::start_for("mirror").await?;
    let (mut mirrored, mut dead) = (0u64, 0u64);
    loop {
        let batch = consume::next_batch(&consumer, args.batch, Duration::from_millis(50)).await?;
        // Each record's route; the registry retried until it answers.
        let mut routes = Vec::with_capacity(batch.len());
        for m in &batch {
            let payload = m.payload().unwrap_or_default();
            let route = loop {
                match schemas.as_mut() {
                    None => break Route::Mirror(payload.to_vec(), None),
                    Some(s) => match s.route(payload).await {
                        Ok(route) => break route,
                        Err(e) => {
                            tracing::warn!(error = %e, "mirror: schema registry unavailable, retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    },
                }
            };
            if let Route::DeadLetter(reason) = &route {
                tracing::warn!(
                    reason,
                    partition = m.partition(),
                    offset = m.offset(),
                    "mirror: dead-lettered"
                );
                dead += 1;
            }
            routes.push(route);
        }
        let spans: Vec<_> = batch
            .iter()
            .map(|m| {
                let headers = m.headers().map(|h| {
                    h.iter()
                        .map(|h| (h.key, h.value.unwrap_or_default()))
                        .collect::<Vec<_>>()
                });
                let parent = tracing.extract(headers.unwrap_or_default());
                let attributes = vec![
                    KeyValue::new("messaging.source.name", args.from.clone()),
                    KeyValue::new("messaging.kafka.offset", m.offset()),
                ];
                let name = format!("{} process", args.from);
                let cx = tracing.start(&name, SpanKind::Consumer, &parent, attributes);
                let trace = tracing.inject(&cx);
                (cx, trace)
            })
            .collect();
        // Resend what failed until all is acknowledged: the offsets wait for it.
        let mut pending: Vec<_> = batch
            .iter()
            .zip(&routes)
            .zip(&spans)
            .map(|((m, route), (_, trace))| (m, route, trace.as_slice()))
            .collect();
        while !pending.is_empty() {
            let sends = pending.iter().map(|(m, route, trace)| {
                let (topic, value, header) = match route {
                    Route::Mirror(value, id) => (
                        &args.to,
                        &value[..],
                        id.map(|id| (SCHEMA_ID_HEADER, id.to_string())),
                    ),
                    Route::DeadLetter(reason) => (
                        &args.dead_letter_topic,
                        m.payload().unwrap_or_default(),
                        Some((DEAD_LETTER_HEADER, reason.to_string())),
                    ),
                };
                let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
                if let Some(key) = m.key() {
                    record = record.key(key);
                }
                if m.payload().is_some() {
                    record = record.payload(value);
                }
                // The record's headers, its trace context replaced by the mirror's span.
                let mut headers = OwnedHeaders::new();
                for h in m.headers().iter().flat_map(|h| h.iter()) {
                    if !trace.iter().any(|(t, _)| t == h.key) {
                        headers = headers.insert(h);
                    }
                }
                for (name, text) in trace.iter() {
                    headers = headers.insert(Header {
                        key: name,
                        value: Some(text.as_bytes()),
                    });
                }
                if let Some((name, text)) = &header {
                    headers = headers.insert(Header {
                        key: name,
                        value: Some(text.as_bytes()),
                    });
                }
                record = record.headers(headers);
                producer.send(record, Duration::from_secs(30))
            });
            let results = futures::future::join_all(sends).await;
            let mut failed = Vec::new();
            for (pair, result) in pending.iter().zip(results) {
                if let Err((e, _)) = result {
                    tracing::warn!(to = %args.to, error = %e, "mirror: produce failed, will retry");
                    failed.push(*pair);
                }
            }
            if !failed.is_empty() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            pending = failed;
        }
        for (cx, _) in &spans {
            tracing.end(cx);
        }
        consume::commit(&consumer, &batch).await?;
        mirrored += batch.len() as u64;
        tracing::info!(
            batch = batch.len(),
            total = mirrored,
            dead_lettered = dead,
            "mirror: batch acknowledged and committed"
        );
    }
}
