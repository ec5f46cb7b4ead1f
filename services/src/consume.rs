//! Consumption shared by `mirror` (offsets committed in its transactions) and
//! `mongo-sink` (at least once: offsets committed after the batch's writes): take a
//! batch, let the caller make its output durable, commit the batch's offsets, and, when
//! that fails, go back to the offsets the group has committed. A consumer never exits on
//! a fault the cluster recovers from (a broker restart, a lost group membership, a
//! rebalance).

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

/// Per partition of `batch`, the offset after its last message: what to commit.
pub fn next_offsets(batch: &[OwnedMessage]) -> Result<TopicPartitionList> {
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
    Ok(list)
}

/// Commit the offsets after `batch`. A commit refused by a busy broker is tried again;
/// one the group refuses (this member lost its membership while a broker was away, a
/// rebalance) is not: the consumer goes back to the committed offsets and the batch comes
/// again (the caller's writes are idempotent). Returns whether the commit was made.
pub async fn commit(consumer: &StreamConsumer, batch: &[OwnedMessage]) -> Result<bool> {
    let list = next_offsets(batch)?;
    for attempt in 1..=20 {
        match consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => return Ok(true),
            Err(e) if membership_lost(&e) => {
                tracing::warn!(error = %e, "commit refused by the group; replaying from the committed offsets");
                break;
            }
            Err(e) => {
                tracing::warn!(attempt, error = %e, "commit failed, trying again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    rewind(consumer, batch).await;
    Ok(false)
}

/// Whether a commit failed because the group no longer counts this member in.
fn membership_lost(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::FencedInstanceId
                | RDKafkaErrorCode::StaleMemberEpoch
        )
    )
}

/// Go back, for each partition of `batch` this consumer still holds, to the offset its
/// group committed (the beginning when none was): what was read after it comes again.
/// A partition no longer assigned is left alone (its next owner starts at the committed
/// offset anyway).
pub async fn rewind(consumer: &StreamConsumer, batch: &[OwnedMessage]) {
    let Ok(list) = next_offsets(batch) else {
        return;
    };
    let committed = loop {
        match consumer.committed_offsets(list.clone(), Duration::from_secs(10)) {
            Ok(committed) => break committed,
            Err(e) => {
                tracing::warn!(error = %e, "reading the committed offsets; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    for e in committed.elements() {
        let offset = match e.offset() {
            Offset::Offset(o) => Offset::Offset(o),
            _ => Offset::Beginning,
        };
        match consumer.seek(e.topic(), e.partition(), offset, Duration::from_secs(10)) {
            Ok(()) => tracing::info!(
                topic = e.topic(),
                partition = e.partition(),
                ?offset,
                "rewound"
            ),
            Err(err) => {
                tracing::info!(topic = e.topic(), partition = e.partition(), error = %err, "not rewound (no longer assigned)")
            }
        }
    }
}
