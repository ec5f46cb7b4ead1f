//! At-least-once consumption shared by `mirror` and `mongo-sink`: take a batch, let the
//! caller make its output durable, and only then commit the batch's offsets.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::kafka;
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

/// A consumer of `topic` in `group`, committing only when told to.
pub fn subscribe(
    bootstrap: &str,
    client_id: &str,
    group: &str,
    topic: &str,
) -> Result<StreamConsumer> {
    let consumer: StreamConsumer = kafka::consumer_config(bootstrap, client_id, group)?
        .create()
        .context("creating the Kafka consumer")?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

/// Up to `max` messages: waits as long as it takes for the first, then takes what
/// arrives within `linger` of the previous one. Errors librdkafka recovers from by itself
/// (every broker down or restarting, a connection reset) are logged and waited out; only
/// a fatal one ends consumption.
pub async fn next_batch(
    consumer: &StreamConsumer,
    max: usize,
    linger: Duration,
) -> Result<Vec<OwnedMessage>> {
    let first = loop {
        match consumer.recv().await {
            Ok(message) => break message.detach(),
            Err(e) if recoverable(&e) => {
                tracing::warn!(error = %e, "consuming: waiting for the brokers");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).context("consuming"),
        }
    };
    let mut batch = vec![first];
    while batch.len() < max {
        match tokio::time::timeout(linger, consumer.recv()).await {
            Ok(Ok(message)) => batch.push(message.detach()),
            Ok(Err(e)) if recoverable(&e) => {
                tracing::warn!(error = %e, "consuming: batch cut short");
                break;
            }
            Ok(Err(e)) => return Err(e).context("consuming"),
            Err(_) => break,
        }
    }
    Ok(batch)
}

/// librdkafka reports most errors to keep the application informed while it reconnects;
/// only a fatal error means the client cannot go on.
fn recoverable(e: &KafkaError) -> bool {
    e.rdkafka_error_code() != Some(RDKafkaErrorCode::Fatal)
}

/// Commit, per partition, the offset after the last message of `batch`.
pub async fn commit(consumer: &StreamConsumer, batch: &[OwnedMessage]) -> Result<()> {
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for m in batch {
        let e = next
            .entry((m.topic().to_string(), m.partition()))
            .or_default();
        *e = (*e).max(m.offset() + 1);
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        list.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
    }
    // A commit refused by a busy broker is tried again: giving up would replay the batch.
    let mut attempt = 1;
    loop {
        match consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 20 => {
                tracing::warn!(attempt, error = %e, "commit failed, trying again");
                tokio::time::sleep(Duration::from_millis(250)).await;
                attempt += 1;
            }
            Err(e) => return Err(e).context("committing offsets"),
        }
    }
}
