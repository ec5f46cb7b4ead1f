//! `kiosk mirror`: copy every record of one topic to another, key and headers kept.
//!
//! At least once: a batch's offsets are committed only after every record of it is
//! acknowledged by the broker, so a crash replays (and may duplicate) but never loses.

use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;

use crate::consume;
use crate::kafka;

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
}

pub async fn run(args: Args) -> Result<()> {
    let consumer = consume::subscribe(&args.bootstrap, &args.client_id, &args.group, &args.from)?;
    let producer: FutureProducer = kafka::producer_config(&args.bootstrap, &args.client_id)?
        .create()
        .context("creating the Kafka producer")?;
    tracing::info!(from = %args.from, to = %args.to, bootstrap = %args.bootstrap, "mirror: running");
    let mut mirrored = 0u64;
    loop {
        let batch = consume::next_batch(&consumer, args.batch, Duration::from_millis(50)).await?;
        // Resend what failed until all is acknowledged: the offsets wait for it.
        let mut pending: Vec<&OwnedMessage> = batch.iter().collect();
        while !pending.is_empty() {
            let sends = pending.iter().map(|m| {
                let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&args.to);
                if let Some(key) = m.key() {
                    record = record.key(key);
                }
                if let Some(payload) = m.payload() {
                    record = record.payload(payload);
                }
                if let Some(headers) = m.headers() {
                    record = record.headers(headers.clone());
                }
                producer.send(record, Duration::from_secs(30))
            });
            let results = futures::future::join_all(sends).await;
            let mut failed = Vec::new();
            for (m, result) in pending.iter().zip(results) {
                if let Err((e, _)) = result {
                    tracing::warn!(to = %args.to, error = %e, "mirror: produce failed, will retry");
                    failed.push(*m);
                }
            }
            if !failed.is_empty() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            pending = failed;
        }
        consume::commit(&consumer, &batch).await?;
        mirrored += batch.len() as u64;
        tracing::info!(
            batch = batch.len(),
            total = mirrored,
            "mirror: batch acknowledged and committed"
        );
    }
}
