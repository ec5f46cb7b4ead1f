//! The offsets a connection has already received, per partition.
//!
//! A consumer that pipelines Fetch requests asks for a partition again before it has
//! processed the previous response, and receives some records twice. A fetched record
//! counts once per connection: the first time it arrives. Later copies are repeats
//! (`kafka_refetched_records_total`), a transfer no broker metric shows.
//!
//! Bounded: at most [`MAX_PARTITIONS`] partitions per connection; records of others are
//! counted as fetched each time they arrive, as if never seen.

use std::cell::Cell;

use crate::decode::kafka::summary::{FetchedPartition, Received, TopicRef};
use crate::heap::heap_bytes;

/// Partitions whose received offsets one connection remembers (16 KiB at most).
pub const MAX_PARTITIONS: usize = 512;

/// Per partition, one past the highest offset received; sorted by partition index, then
/// topic (the index tells most entries apart at the cost of one integer comparison).
#[derive(Debug, Default)]
pub struct ReceivedOffsets {
    next: Vec<((i32, TopicRef), i64)>,
    /// Where the next partition is likely to be: responses list a consumer's partitions
    /// in the same order every time, so this saves most searches.
    hint: Cell<usize>,
}

impl ReceivedOffsets {
    /// Remember what a fetch response delivered (only once it decoded cleanly).
    pub fn record(&mut self, partition: &FetchedPartition) {
        let Some(next) = partition.next_offset else {
            return;
        };
        if !partition.topic.is_one_topic() {
            return;
        }
        match self.find((partition.partition, partition.topic)) {
            Ok(i) => self.next[i].1 = self.next[i].1.max(next),
            Err(i) if self.next.len() < MAX_PARTITIONS => {
                let key = (partition.partition, partition.topic);
                self.next.insert(i, (key, next));
            }
            Err(_) => {}
        }
    }

    /// The index of `key`, or where it would go.
    #[inline]
    fn find(&self, key: (i32, TopicRef)) -> Result<usize, usize> {
        let hint = self.hint.get();
        let found = match self.next.get(hint) {
            Some((k, _)) if *k == key => Ok(hint),
            _ => self.next.binary_search_by(|(k, _)| k.cmp(&key)),
        };
        if let Ok(i) = found {
            self.hint.set(i + 1);
        }
        found
    }

    /// Heap bytes held, for the per-connection memory accounting.
    pub fn heap_bytes(&self) -> usize {
        heap_bytes(&self.next)
    }
}

impl Received for ReceivedOffsets {
    #[inline]
    fn next_offset(&self, topic: TopicRef, partition: i32) -> Option<i64> {
        let i = self.find((partition, topic)).ok()?;
        Some(self.next[i].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::topics::{OVERFLOW, UNKNOWN};

    fn delivered(topic: TopicRef, partition: i32, next: i64) -> FetchedPartition {
        FetchedPartition {
            topic,
            partition,
            high_watermark: next,
            next_offset: Some(next),
        }
    }

    #[test]
    fn remembers_the_highest_offset_per_partition_within_its_bound() {
        let mut received = ReceivedOffsets::default();
        let orders = TopicRef::Name(7);
        received.record(&delivered(orders, 1, 40));
        received.record(&delivered(orders, 1, 20));
        assert_eq!(received.next_offset(orders, 1), Some(40));
        assert_eq!(received.next_offset(orders, 2), None);
        // The overflow and unknown labels stand for many topics: never remembered.
        received.record(&delivered(TopicRef::Name(OVERFLOW), 1, 9));
        received.record(&delivered(TopicRef::Name(UNKNOWN), 1, 9));
        assert_eq!(received.next_offset(TopicRef::Name(OVERFLOW), 1), None);
        for p in 0..2 * MAX_PARTITIONS as i32 {
            received.record(&delivered(TopicRef::Id([1; 16]), p, 5));
        }
        assert_eq!(received.next.len(), MAX_PARTITIONS);
        assert!(
            received.heap_bytes() <= 16 << 10,
            "{}",
            received.heap_bytes()
        );
    }
}
