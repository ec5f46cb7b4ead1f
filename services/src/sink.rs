//! `kiosk mongo-sink`: write every record of a topic into a MongoDB collection.
//!
//! Idempotent: a document's `_id` is the record key, written with an upsert, so a
//! redelivered record (or one the mirror duplicated) replaces itself and never adds a
//! document. Offsets are committed only after the batch's writes are acknowledged.

use std::time::Duration;

use anyhow::Result;
use mongodb::bson::{doc, Bson, Document};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::Message;

use crate::{consume, record};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The topic to read.
    #[arg(long, default_value = "events.mirror")]
    pub topic: String,
    /// Kafka bootstrap servers (in the mesh: this workload's sidecar).
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap: String,
    #[command(flatten)]
    pub mongo: crate::mongo::CollectionArgs,
    /// The consumer group.
    #[arg(long, default_value = "mongo-sink")]
    pub group: String,
    /// The Kafka client id.
    #[arg(long, default_value = "mongo-sink")]
    pub client_id: String,
    /// Records per batch (one commit per batch).
    #[arg(long, default_value_t = 200)]
    pub batch: usize,
    #[command(flatten)]
    pub health: crate::health::FileArgs,
}

pub async fn run(args: Args) -> Result<()> {
    let consumer = consume::subscribe(&args.bootstrap, &args.client_id, &args.group, &args.topic)?;
    let progress = args.health.progress();
    let collection = args.mongo.open().await?;
    progress.committed();
    tracing::info!(topic = %args.topic, collection = %args.mongo.collection, "mongo-sink: running");
    let mut written = 0u64;
    loop {
        let batch = consume::next_batch(&consumer, args.batch, Duration::from_millis(50)).await?;
        if batch.is_empty() {
            progress.committed();
            continue;
        }
        progress.holding();
        for message in &batch {
            let document = to_document(message);
            let id = document.get("_id").cloned().unwrap_or(Bson::Null);
            // Retry until acknowledged: the offset waits for it.
            loop {
                let write = collection
                    .replace_one(doc! { "_id": id.clone() }, document.clone())
                    .upsert(true)
                    .await;
                match write {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "mongo-sink: write failed, will retry");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
        if !consume::commit(&consumer, &batch).await? {
            // Written but not committed: the batch comes again and its upserts change
            // nothing.
            continue;
        }
        progress.committed();
        written += batch.len() as u64;
        tracing::info!(
            batch = batch.len(),
            total = written,
            "mongo-sink: batch written and committed"
        );
    }
}

/// The document for one record: `_id` is the key (or topic/partition/offset for a record
/// without one), `value` the JSON value (or the raw bytes), headers as text.
pub fn to_document(message: &OwnedMessage) -> Document {
    let origin = doc! {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
    };
    let id = match message.key() {
        Some(key) => Bson::String(record::key_text(key)),
        None => Bson::String(format!(
            "{}-{}-{}",
            message.topic(),
            message.partition(),
            message.offset()
        )),
    };
    let payload = message.payload().unwrap_or_default();
    let value = match record::value_json(payload).and_then(|v| Bson::try_from(v).ok()) {
        Some(v) => v,
        None => Bson::Binary(mongodb::bson::Binary {
            subtype: mongodb::bson::spec::BinarySubtype::Generic,
            bytes: payload.to_vec(),
        }),
    };
    let mut headers = Document::new();
    if let Some(hs) = message.headers() {
        for h in hs.iter() {
            let text = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
            headers.insert(h.key, text.map_or(Bson::Null, Bson::String));
        }
    }
    doc! { "_id": id, "value": value, "headers": headers, "kafka": origin }
}
