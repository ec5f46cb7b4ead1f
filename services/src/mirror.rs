//! `kiosk mirror`: copy every record of one topic to another, key and headers kept.
//!
//! Exactly once: each batch is one Kafka transaction (KIP-98, KIP-447): its mirrored
//! records, its dead letters and its consumed offsets commit together or not at all, under
//! a `transactional.id` of this instance. Anything that breaks a transaction (a broker
//! restarting, the group membership lost while the broker was away, this producer fenced
//! by a newer incarnation) aborts it, and the mirror resumes from the offsets the group
//! committed: it never exits on such a fault, and a `read_committed` reader downstream
//! never sees a record twice. A fatal producer error makes a new producer with the same
//! id (its initialisation completes or aborts whatever the old one left open).
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
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
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
    /// This instance's `transactional.id` (stable across its restarts, distinct from
    /// every other instance's; in Kubernetes the pod's name): default `<group>-<host>`.
    #[arg(long, env = "KIOSK_TRANSACTIONAL_ID")]
    pub transactional_id: Option<String>,
    /// Fault drills only: hold each transaction open this long after its records are
    /// sent, before its offsets and commit, so that a fault (a broker restart, a lost
    /// membership) lands inside it. Logged when set.
    #[arg(long, env = "KIOSK_FAULT_HOLD_TRANSACTION_MS", hide = true)]
    pub hold_transaction_ms: Option<u64>,
    #[command(flatten)]
    pub health: crate::health::FileArgs,
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
    let transactional_id = args.transactional_id.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "0".into());
        format!("{}-{host}", args.group)
    });
    let progress = args.health.progress();
    // Not ready until transactions are initialised (the probe's file is not touched).
    let mut producer = Transactional::start(&args, &transactional_id).await?;
    progress.committed();
    tracing::info!(from = %args.from, to = %args.to, bootstrap = %args.bootstrap, registry = ?args.schema_registry, transactional_id, "mirror: running");
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
    let (mut mirrored, mut dead, mut aborted) = (0u64, 0u64, 0u64);
    loop {
        let batch = consume::next_batch(&consumer, args.batch, Duration::from_millis(50)).await?;
        progress.holding();
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
        let records: Vec<_> = batch
            .iter()
            .zip(&routes)
            .zip(&spans)
            .map(|((m, route), (_, trace))| outgoing(&args, m, route, trace))
            .collect();
        let hold = args.hold_transaction_ms.map(Duration::from_millis);
        let outcome = producer.transact(&consumer, records, &batch, hold).await;
        for (cx, _) in &spans {
            tracing.end(cx);
        }
        match outcome {
            Ok(()) => {
                progress.committed();
                for (m, route) in batch.iter().zip(&routes) {
                    if let Route::DeadLetter(reason) = route {
                        tracing::warn!(
                            reason,
                            partition = m.partition(),
                            offset = m.offset(),
                            "mirror: dead-lettered"
                        );
                        dead += 1;
                    }
                }
                mirrored += batch.len() as u64;
                tracing::info!(
                    batch = batch.len(),
                    total = mirrored,
                    dead_lettered = dead,
                    aborted,
                    "mirror: batch committed in one transaction"
                );
            }
            Err(e) => {
                aborted += 1;
                tracing::warn!(
                    error = %format!("{e:#}"),
                    aborted,
                    "mirror: transaction aborted; resuming from the committed offsets"
                );
                producer.recover(&e).await;
                consume::rewind(&consumer, &batch).await;
            }
        }
    }
}

/// A record to send: the target (or dead-letter) topic, key, value and headers.
struct Outgoing {
    topic: String,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: OwnedHeaders,
}

/// Where `m` goes, with its headers: its trace context replaced by the mirror's span,
/// plus the schema id or the dead-letter reason.
fn outgoing(args: &Args, m: &OwnedMessage, route: &Route, trace: &[(String, String)]) -> Outgoing {
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
    let mut headers = OwnedHeaders::new();
    for h in m.headers().iter().flat_map(|h| h.iter()) {
        if !trace.iter().any(|(t, _)| t == h.key) {
            headers = headers.insert(h);
        }
    }
    for (name, text) in trace {
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
    Outgoing {
        topic: topic.clone(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(|_| value.to_vec()),
        headers,
    }
}

/// How long a transactional call may take before it counts as failed.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// The mirror's transactional producer.
struct Transactional {
    producer: FutureProducer,
    config: rdkafka::ClientConfig,
    id: String,
}

impl Transactional {
    /// A producer with `transactional_id`, initialised (waiting for the brokers as long
    /// as it takes). Settings that do not parse (`KAFKA_PROPERTIES`) are an error: no
    /// wait mends them.
    async fn start(args: &Args, transactional_id: &str) -> Result<Self> {
        let mut config = kafka::producer_config(&args.bootstrap, &args.client_id)
            .context("the mirror's producer settings")?;
        config.set("transactional.id", transactional_id);
        let producer = Self::initialised(&config, transactional_id).await;
        Ok(Transactional {
            producer,
            config,
            id: transactional_id.to_string(),
        })
    }

    async fn initialised(config: &rdkafka::ClientConfig, id: &str) -> FutureProducer {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let made: Result<FutureProducer> = config
                .create()
                .context("creating the Kafka producer")
                .and_then(|p: FutureProducer| {
                    blocking(|| p.init_transactions(TXN_TIMEOUT))
                        .context("initialising transactions")?;
                    Ok(p)
                });
            match made {
                Ok(p) => {
                    tracing::info!(
                        transactional_id = id,
                        attempt,
                        "mirror: transactions initialised"
                    );
                    return p;
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), attempt, "mirror: waiting for the brokers");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Send `records` and the consumed offsets of `batch` in one transaction, and commit.
    async fn transact(
        &self,
        consumer: &StreamConsumer,
        records: Vec<Outgoing>,
        batch: &[OwnedMessage],
        hold: Option<Duration>,
    ) -> Result<()> {
        let p = &self.producer;
        blocking(|| p.begin_transaction()).context("beginning a transaction")?;
        let sends = records.iter().map(|r| {
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&r.topic).headers(r.headers.clone());
            if let Some(key) = &r.key {
                record = record.key(key);
            }
            if let Some(value) = &r.value {
                record = record.payload(value);
            }
            p.send(record, TXN_TIMEOUT)
        });
        for result in futures::future::join_all(sends).await {
            if let Err((e, _)) = result {
                return Err(e).context("sending a record");
            }
        }
        if let Some(hold) = hold {
            tracing::warn!(
                records = records.len(),
                ?hold,
                "mirror: transaction open, held for a fault drill"
            );
            tokio::time::sleep(hold).await;
        }
        let offsets = consume::next_offsets(batch)?;
        let group = consumer
            .group_metadata()
            .context("the consumer has no group metadata yet")?;
        blocking(|| p.send_offsets_to_transaction(&offsets, &group, TXN_TIMEOUT))
            .context("sending the consumed offsets")?;
        blocking(|| p.commit_transaction(TXN_TIMEOUT)).context("committing")?;
        Ok(())
    }

    /// After a failed transaction: abort it, or, when the producer cannot go on (fenced,
    /// fatal, or the abort itself failed), make a new one with the same id.
    async fn recover(&mut self, error: &anyhow::Error) {
        let fatal = error
            .chain()
            .filter_map(|e| e.downcast_ref::<KafkaError>())
            .any(|e| matches!(e, KafkaError::Transaction(t) if t.is_fatal()));
        if !fatal {
            let p = &self.producer;
            match blocking(|| p.abort_transaction(TXN_TIMEOUT)) {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e, "mirror: abort failed; a new producer"),
            }
        }
        self.producer = Self::initialised(&self.config, &self.id).await;
    }
}

/// Run a blocking librdkafka call without holding up the runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}
