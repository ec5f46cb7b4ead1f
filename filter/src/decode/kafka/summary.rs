//! From decoded fields to a message's summary.
//!
//! A [`Collector`] is the [`Visitor`] for one message: it sums what the message says per
//! topic while the walker streams through it. The exchange layer turns the summary into
//! observations only once the whole message decoded cleanly, so a malformed message is
//! counted as a decode error and contributes nothing else. Summaries are capped
//! ([`MAX_ENTRIES`]) so that a message claiming millions of topics cannot grow memory.

use super::records::{BatchHeader, Codec};
use super::schema::{api, Role};
use super::schema_ids::{SchemaCounts, SchemaTag};
use super::walker::Visitor;
use crate::decode::topics::{TopicId, TopicIdx, Topics, OVERFLOW, UNKNOWN};
use crate::heap::heap_bytes;

/// Most topics (or partitions, for lag) kept per message; the rest is folded into the
/// overflow topic (or, for lag, dropped).
pub const MAX_ENTRIES: usize = 256;

/// A topic as a message names it: by name (interned) or by id (resolved at the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TopicRef {
    Name(TopicIdx),
    Id(TopicId),
}

impl TopicRef {
    pub fn resolve(self, topics: &mut Topics) -> TopicIdx {
        match self {
            TopicRef::Name(idx) => idx,
            TopicRef::Id(id) => topics.resolve_id(&id),
        }
    }

    /// Whether the reference names one topic (not the overflow or unknown label, which
    /// stand for many).
    pub fn is_one_topic(self) -> bool {
        !matches!(self, TopicRef::Name(OVERFLOW | UNKNOWN))
    }
}

/// Where a connection's earlier fetch responses ended, per partition: a fetched record
/// below that offset reached the connection before. Kept by the exchange layer; the
/// collector only reads it.
pub trait Received {
    /// One past the highest offset this connection already received for the partition,
    /// if it is known.
    fn next_offset(&self, topic: TopicRef, partition: i32) -> Option<i64>;
}

/// Nothing received before (a message decoded on its own).
impl Received for () {
    fn next_offset(&self, _topic: TopicRef, _partition: i32) -> Option<i64> {
        None
    }
}

/// Records seen for one topic in one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub batches: u32,
    /// Records reaching the connection for the first time.
    pub records: u64,
    /// Records the connection had already received (a fetch that asked again for offsets
    /// an earlier response carried).
    pub repeated: u64,
    pub bytes: u64,
    /// Batches per codec, indexed like [`Codec::ALL`].
    pub codecs: [u32; 6],
    /// Records by their values' schema ids (produce requests read with
    /// `records_by_schema`).
    pub schemas: SchemaCounts,
}

impl Totals {
    /// Add a batch; `received`: one past the offsets the connection already has for the
    /// batch's partition.
    #[inline]
    fn add(&mut self, batch: &BatchHeader, received: Option<i64>) {
        if batch.control {
            return;
        }
        let records = u64::from(batch.records);
        let repeated = match received {
            Some(next) if batch.last_offset < next => records,
            // A batch that straddles: records are counted as dense offsets from its base.
            Some(next) if batch.base_offset < next => {
                let below = next.saturating_sub(batch.base_offset);
                u64::try_from(below).unwrap_or(0).min(records)
            }
            _ => 0,
        };
        self.batches += 1;
        self.records += records - repeated;
        self.repeated += repeated;
        self.bytes += batch.size;
        if let Some(i) = Codec::ALL.iter().position(|c| *c == batch.codec) {
            self.codecs[i] += 1;
        }
    }
}

/// An offset a consumer asked for, remembered until its Fetch response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchPosition {
    pub topic: TopicRef,
    pub partition: i32,
    pub offset: i64,
}

/// A partition of a Fetch response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchedPartition {
    pub topic: TopicRef,
    pub partition: i32,
    pub high_watermark: i64,
    /// One past the last offset returned, if records were returned.
    pub next_offset: Option<i64>,
}

/// Acknowledgement results a share consumer sends, in this order ([`AckCounts`]); type 0
/// (a gap: offsets holding no record) acknowledges nothing and is not counted.
pub const ACK_RESULTS: [&str; 4] = ["accept", "release", "reject", "renew"];

/// Records acknowledged per result, indexed like [`ACK_RESULTS`].
pub type AckCounts = [u64; 4];

/// Records a ShareFetch response hands a share consumer, for one topic: the acquired
/// offsets (what the consumer may process; a batch may carry more, which it drops) and
/// the record batches' bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acquired {
    pub records: u64,
    pub bytes: u64,
}

/// The acknowledgement batch being read.
#[derive(Clone, Copy, Debug, Default)]
struct AckBatch {
    first: i64,
    last: i64,
    /// Types read so far, and the last one: one type stands for the whole range.
    types: u32,
    last_type: i64,
    /// Per-offset types, counted as they come (used when there is more than one).
    per_offset: AckCounts,
}

impl AckBatch {
    fn result_index(ack_type: i64) -> Option<usize> {
        usize::try_from(ack_type - 1)
            .ok()
            .filter(|&i| i < ACK_RESULTS.len())
    }

    fn counts(&self) -> AckCounts {
        if self.types != 1 {
            return self.per_offset;
        }
        let mut counts = AckCounts::default();
        if let Some(i) = Self::result_index(self.last_type) {
            let span = self.last.saturating_sub(self.first).saturating_add(1);
            counts[i] = u64::try_from(span).unwrap_or(0);
        }
        counts
    }
}

/// Per-message summaries, one variant per decoded message.
#[derive(Debug)]
pub enum Summary {
    ProduceRequest {
        acks: i16,
        topics: Vec<(TopicRef, Totals)>,
    },
    FetchRequest {
        positions: Vec<FetchPosition>,
    },
    ProduceResponse {
        errors: Vec<(Option<TopicRef>, i16)>,
    },
    FetchResponse {
        errors: Vec<(Option<TopicRef>, i16)>,
        topics: Vec<(TopicRef, Totals)>,
        partitions: Vec<FetchedPartition>,
    },
    Metadata {
        errors: Vec<(Option<TopicRef>, i16)>,
    },
    ApiVersions {
        error: i16,
    },
    /// A share consumer's acknowledgements (a ShareFetch or ShareAcknowledge request).
    ShareAcknowledgements {
        acks: Vec<(TopicRef, AckCounts)>,
    },
    ShareFetchResponse {
        errors: Vec<(Option<TopicRef>, i16)>,
        topics: Vec<(TopicRef, Acquired)>,
    },
    ShareAcknowledgeResponse {
        errors: Vec<(Option<TopicRef>, i16)>,
    },
    /// FindCoordinator: errors of no topic (a group refused, no coordinator yet).
    FindCoordinator {
        errors: Vec<(Option<TopicRef>, i16)>,
    },
}

impl Summary {
    /// Heap bytes held, for the per-connection memory accounting.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Summary::ProduceRequest { topics, .. } => heap_bytes(topics),
            Summary::FetchRequest { positions } => heap_bytes(positions),
            Summary::ProduceResponse { errors }
            | Summary::Metadata { errors }
            | Summary::ShareAcknowledgeResponse { errors }
            | Summary::FindCoordinator { errors } => heap_bytes(errors),
            Summary::ShareAcknowledgements { acks } => heap_bytes(acks),
            Summary::ShareFetchResponse { errors, topics } => {
                heap_bytes(errors) + heap_bytes(topics)
            }
            Summary::FetchResponse {
                errors,
                topics,
                partitions,
            } => heap_bytes(errors) + heap_bytes(topics) + heap_bytes(partitions),
            Summary::ApiVersions { .. } => 0,
        }
    }
}

/// The visitor state for one message.
#[derive(Debug)]
pub struct Collector {
    pub summary: Summary,
    /// The topic of the element being read.
    topic: Option<TopicRef>,
    /// Fields of the partition being read: index, high watermark, next offset.
    partition: i32,
    high_watermark: i64,
    next_offset: Option<i64>,
    /// One past what the connection already received of this partition (fetch responses).
    received: Option<i64>,
    /// Error code of the element being read, reported when the element ends (a Metadata
    /// topic's error precedes its name).
    error: i16,
    depth: u8,
    /// The partition's aborted transactions (a read_committed fetch response).
    aborted: AbortedTransactions,
    /// The acknowledgement batch being read (share group requests).
    ack: AckBatch,
    /// The first offset of the acquired range being read (ShareFetch responses).
    acquired_first: i64,
}

/// Aborted transactions of one fetched partition, to leave their records out as a
/// `read_committed` consumer does (Kafka's `CompletedFetch`): a transaction of producer P
/// listed at first offset F is open from the first batch reaching F until P's next control
/// batch (its abort marker); P's transactional batches in between were never delivered to
/// the app. Bounded: past [`MAX_ENTRIES`] listed transactions, the rest are not tracked.
#[derive(Debug, Default)]
pub struct AbortedTransactions {
    /// Listed, not yet reached: (producer id, first offset).
    listed: Vec<(i64, i64)>,
    /// Producers whose aborted transaction is open at the current batch.
    open: Vec<i64>,
    /// A producer id read, waiting for its first offset.
    producer: Option<i64>,
}

impl AbortedTransactions {
    fn clear(&mut self) {
        self.listed.clear();
        self.open.clear();
        self.producer = None;
    }

    fn list(&mut self, first_offset: i64) {
        if let Some(producer) = self.producer.take() {
            push_capped(&mut self.listed, (producer, first_offset));
        }
    }

    /// Whether `batch` belongs to an aborted transaction (its records left out).
    fn is_aborted(&mut self, batch: &BatchHeader) -> bool {
        if self.listed.is_empty() && self.open.is_empty() {
            return false;
        }
        let open = &mut self.open;
        self.listed.retain(|&(producer, first)| {
            let reached = first <= batch.last_offset;
            if reached && !open.contains(&producer) {
                push_capped(open, producer);
            }
            !reached
        });
        let at = self.open.iter().position(|&p| p == batch.producer_id);
        match at {
            Some(at) if batch.control => {
                self.open.swap_remove(at);
                false
            }
            Some(_) => batch.transactional,
            None => false,
        }
    }

    fn heap_bytes(&self) -> usize {
        heap_bytes(&self.listed) + heap_bytes(&self.open)
    }
}

impl Collector {
    /// The collector for a request body, if the filter decodes this API's requests.
    pub fn request(api_key: i16) -> Option<Self> {
        let summary = match api_key {
            api::PRODUCE => Summary::ProduceRequest {
                acks: -1,
                topics: Vec::new(),
            },
            api::FETCH => Summary::FetchRequest {
                positions: Vec::new(),
            },
            api::SHARE_FETCH | api::SHARE_ACKNOWLEDGE => {
                Summary::ShareAcknowledgements { acks: Vec::new() }
            }
            _ => return None,
        };
        Some(Self::with(summary))
    }

    /// The collector for a response body, if the filter decodes this API's responses.
    pub fn response(api_key: i16) -> Option<Self> {
        let summary = match api_key {
            api::PRODUCE => Summary::ProduceResponse { errors: Vec::new() },
            api::FETCH => Summary::FetchResponse {
                errors: Vec::new(),
                topics: Vec::new(),
                partitions: Vec::new(),
            },
            api::METADATA => Summary::Metadata { errors: Vec::new() },
            api::FIND_COORDINATOR => Summary::FindCoordinator { errors: Vec::new() },
            api::API_VERSIONS => Summary::ApiVersions { error: 0 },
            api::SHARE_FETCH => Summary::ShareFetchResponse {
                errors: Vec::new(),
                topics: Vec::new(),
            },
            api::SHARE_ACKNOWLEDGE => Summary::ShareAcknowledgeResponse { errors: Vec::new() },
            _ => return None,
        };
        Some(Self::with(summary))
    }

    fn with(summary: Summary) -> Self {
        Collector {
            summary,
            topic: None,
            partition: -1,
            high_watermark: -1,
            next_offset: None,
            received: None,
            error: 0,
            depth: 0,
            aborted: AbortedTransactions::default(),
            ack: AckBatch::default(),
            acquired_first: 0,
        }
    }

    /// Heap bytes held while decoding, besides the summary's.
    pub fn heap_bytes(&self) -> usize {
        self.summary.heap_bytes() + self.aborted.heap_bytes()
    }

    /// Visit with access to the VM's topic table (names are interned as they stream by)
    /// and to what the connection already received (to tell repeated records apart).
    pub fn visitor<'a, R: Received + ?Sized>(
        &'a mut self,
        topics: &'a mut Topics,
        received: &'a R,
    ) -> CollectorVisitor<'a, R> {
        CollectorVisitor {
            collector: self,
            topics,
            received,
        }
    }
}

pub struct CollectorVisitor<'a, R: ?Sized> {
    collector: &'a mut Collector,
    topics: &'a mut Topics,
    received: &'a R,
}

/// Push, or, once the per-message cap is reached, fold into one last overflow entry.
fn push_entry<T: Default>(list: &mut Vec<(TopicRef, T)>, topic: TopicRef) {
    let overflow = TopicRef::Name(OVERFLOW);
    if list.len() + 1 < MAX_ENTRIES {
        list.push((topic, T::default()));
    } else if list.last().is_none_or(|last| last.0 != overflow) {
        list.push((overflow, T::default()));
    }
}

/// The entry of the topic being read (the overflow entry past the cap).
fn current<T>(list: &mut [(TopicRef, T)]) -> Option<&mut (TopicRef, T)> {
    list.last_mut()
}

fn push_capped<T>(list: &mut Vec<T>, item: T) {
    if list.len() < MAX_ENTRIES {
        list.push(item);
    }
}

impl<R: Received + ?Sized> Visitor for CollectorVisitor<'_, R> {
    fn begin(&mut self, array: Role) {
        let c = &mut *self.collector;
        c.depth += 1;
        match array {
            Role::Topic => {
                c.topic = None;
                let unknown = TopicRef::Name(UNKNOWN);
                match &mut c.summary {
                    Summary::ProduceRequest { topics, .. }
                    | Summary::FetchResponse { topics, .. } => push_entry(topics, unknown),
                    Summary::ShareAcknowledgements { acks } => push_entry(acks, unknown),
                    Summary::ShareFetchResponse { topics, .. } => push_entry(topics, unknown),
                    _ => {}
                }
            }
            Role::AckBatch => c.ack = AckBatch::default(),
            Role::Partition => {
                c.partition = -1;
                c.high_watermark = -1;
                c.next_offset = None;
                c.received = None;
                c.aborted.clear();
            }
            _ => {}
        }
    }

    fn end(&mut self, array: Role) {
        let c = &mut *self.collector;
        c.depth = c.depth.saturating_sub(1);
        let topic = c.topic.unwrap_or(TopicRef::Name(UNKNOWN));
        if let (Role::Coordinator, Summary::FindCoordinator { errors }) = (array, &mut c.summary) {
            if c.error != 0 {
                push_capped(errors, (None, std::mem::take(&mut c.error)));
            }
        }
        if matches!(array, Role::Topic | Role::Partition) && c.error != 0 {
            let code = std::mem::take(&mut c.error);
            match &mut c.summary {
                Summary::ProduceResponse { errors }
                | Summary::FetchResponse { errors, .. }
                | Summary::Metadata { errors }
                | Summary::ShareFetchResponse { errors, .. }
                | Summary::ShareAcknowledgeResponse { errors } => {
                    push_capped(errors, (Some(topic), code))
                }
                _ => {}
            }
        }
        if let (Role::AckBatch, Summary::ShareAcknowledgements { acks }) = (array, &mut c.summary) {
            if let Some(entry) = current(acks) {
                for (sum, n) in entry.1.iter_mut().zip(c.ack.counts()) {
                    *sum = sum.saturating_add(n);
                }
            }
        }
        if let (Role::Partition, Summary::FetchResponse { partitions, .. }) =
            (array, &mut c.summary)
        {
            push_capped(
                partitions,
                FetchedPartition {
                    topic,
                    partition: c.partition,
                    high_watermark: c.high_watermark,
                    next_offset: c.next_offset,
                },
            );
        }
    }

    fn int(&mut self, role: Role, value: i64) {
        let c = &mut *self.collector;
        let topic = c.topic.unwrap_or(TopicRef::Name(UNKNOWN));
        match (role, &mut c.summary) {
            (Role::Acks, Summary::ProduceRequest { acks, .. }) => *acks = value as i16,
            (Role::PartitionIndex, Summary::FetchResponse { .. }) => {
                c.partition = value as i32;
                c.received = self.received.next_offset(topic, c.partition);
            }
            (Role::PartitionIndex, _) => c.partition = value as i32,
            (Role::HighWatermark, _) => c.high_watermark = value,
            (Role::AbortedProducerId, Summary::FetchResponse { .. }) => {
                c.aborted.producer = Some(value)
            }
            (Role::AbortedFirstOffset, Summary::FetchResponse { .. }) => c.aborted.list(value),
            (Role::FetchOffset, Summary::FetchRequest { positions }) => push_capped(
                positions,
                FetchPosition {
                    topic,
                    partition: c.partition,
                    offset: value,
                },
            ),
            (Role::ErrorCode, _) if value != 0 => {
                let code = value as i16;
                match &mut c.summary {
                    Summary::ApiVersions { error } => *error = code,
                    // Inside a topic or partition: reported when the element ends.
                    _ if c.depth > 0 => c.error = code,
                    // Top-level codes concern no topic.
                    Summary::FetchResponse { errors, .. }
                    | Summary::Metadata { errors }
                    | Summary::ShareFetchResponse { errors, .. }
                    | Summary::ShareAcknowledgeResponse { errors }
                    | Summary::FindCoordinator { errors } => push_capped(errors, (None, code)),
                    _ => {}
                }
            }
            (Role::AckFirstOffset, _) => c.ack.first = value,
            (Role::AckLastOffset, _) => c.ack.last = value,
            (Role::AckType, _) => {
                c.ack.types = c.ack.types.saturating_add(1);
                c.ack.last_type = value;
                if let Some(i) = AckBatch::result_index(value) {
                    c.ack.per_offset[i] += 1;
                }
            }
            (Role::AcquiredFirstOffset, _) => c.acquired_first = value,
            (Role::AcquiredLastOffset, Summary::ShareFetchResponse { topics, .. }) => {
                let span = value.saturating_sub(c.acquired_first).saturating_add(1);
                if let Some(entry) = current(topics) {
                    entry.1.records = entry
                        .1
                        .records
                        .saturating_add(u64::try_from(span).unwrap_or(0));
                }
            }
            _ => {}
        }
    }

    fn str(&mut self, role: Role, value: Option<&[u8]>) {
        if let (Role::TopicName, Some(name)) = (role, value) {
            let topic = TopicRef::Name(self.topics.intern(name));
            self.set_topic(topic);
        }
    }

    fn uuid(&mut self, role: Role, id: [u8; 16]) {
        if role != Role::TopicId {
            return;
        }
        let c = &mut *self.collector;
        match (&c.summary, c.topic) {
            // Metadata names the id: learn it for the whole VM.
            (Summary::Metadata { .. }, Some(TopicRef::Name(idx))) => self.topics.learn_id(id, idx),
            (Summary::Metadata { .. }, _) => {}
            _ => self.set_topic(TopicRef::Id(id)),
        }
    }

    fn batch(&mut self, batch: &BatchHeader) {
        let c = &mut *self.collector;
        match &mut c.summary {
            Summary::ProduceRequest { topics, .. } => {
                if let Some(last) = topics.last_mut() {
                    last.1.add(batch, None);
                }
            }
            Summary::FetchResponse { topics, .. } => {
                let aborted = c.aborted.is_aborted(batch);
                if let Some(last) = topics.last_mut().filter(|_| !aborted) {
                    last.1.add(batch, c.received);
                }
                let next = batch.last_offset.saturating_add(1);
                c.next_offset = Some(c.next_offset.map_or(next, |n| n.max(next)));
            }
            Summary::ShareFetchResponse { topics, .. } if !batch.control => {
                if let Some(entry) = current(topics) {
                    entry.1.bytes += batch.size;
                }
            }
            _ => {}
        }
    }

    fn schema(&mut self, tag: SchemaTag, records: u32) {
        if let Summary::ProduceRequest { topics, .. } = &mut self.collector.summary {
            if let Some(last) = topics.last_mut() {
                last.1.schemas.add(tag, records);
            }
        }
    }
}

impl<R: ?Sized> CollectorVisitor<'_, R> {
    fn set_topic(&mut self, topic: TopicRef) {
        let c = &mut *self.collector;
        c.topic = Some(topic);
        fn name<T>(list: &mut [(TopicRef, T)], topic: TopicRef) {
            if let Some(last) = list.last_mut().filter(|l| l.0 != TopicRef::Name(OVERFLOW)) {
                last.0 = topic;
            }
        }
        match &mut c.summary {
            Summary::ProduceRequest { topics, .. } | Summary::FetchResponse { topics, .. } => {
                name(topics, topic)
            }
            Summary::ShareAcknowledgements { acks } => name(acks, topic),
            Summary::ShareFetchResponse { topics, .. } => name(topics, topic),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(base_offset: i64, records: u32) -> BatchHeader {
        BatchHeader {
            base_offset,
            last_offset: base_offset.saturating_add(i64::from(records) - 1),
            records,
            size: 100,
            codec: Codec::None,
            control: false,
            transactional: false,
            producer_id: -1,
            magic: 2,
        }
    }

    fn txn(base_offset: i64, records: u32, producer_id: i64, control: bool) -> BatchHeader {
        BatchHeader {
            transactional: true,
            producer_id,
            control,
            ..batch(base_offset, records)
        }
    }

    #[test]
    fn aborted_transactions_are_left_out_until_their_marker() {
        // Producer 7 aborted a transaction from offset 10; producer 8 committed around it.
        let mut a = AbortedTransactions {
            producer: Some(7),
            ..Default::default()
        };
        a.list(10);
        assert!(
            !a.is_aborted(&txn(0, 10, 7, false)),
            "before its first offset"
        );
        assert!(
            !a.is_aborted(&txn(10, 1, 8, true)),
            "another producer's marker"
        );
        assert!(a.is_aborted(&txn(11, 5, 7, false)));
        assert!(!a.is_aborted(&batch(16, 3)), "not transactional");
        assert!(!a.is_aborted(&txn(19, 2, 8, false)), "another producer");
        assert!(a.is_aborted(&txn(21, 5, 7, false)));
        assert!(
            !a.is_aborted(&txn(26, 1, 7, true)),
            "the abort marker ends it"
        );
        assert!(
            !a.is_aborted(&txn(27, 5, 7, false)),
            "a later transaction of 7"
        );
        // A first offset inside a batch (a batch cut at the fetch offset) reaches it.
        a.clear();
        a.producer = Some(9);
        a.list(33);
        assert!(a.is_aborted(&txn(30, 5, 9, false)));
    }

    #[test]
    fn records_below_what_the_connection_received_are_repeats() {
        let mut t = Totals::default();
        t.add(&batch(0, 5), None);
        assert_eq!((t.records, t.repeated), (5, 0));
        t.add(&batch(0, 5), Some(5));
        assert_eq!((t.records, t.repeated), (5, 5));
        // A batch straddling the received offset: its records below it are repeats.
        t.add(&batch(3, 5), Some(5));
        assert_eq!((t.records, t.repeated), (8, 7));
        t.add(&batch(5, 5), Some(5));
        assert_eq!((t.records, t.repeated), (13, 7));
        assert_eq!((t.batches, t.bytes), (4, 400));
        // Offsets off the wire may be absurd: no overflow, no panic.
        t.add(&batch(i64::MIN, 2), Some(i64::MAX));
        t.add(&batch(i64::MAX, 2), Some(i64::MIN));
        assert_eq!(t.records + t.repeated, 24);
    }
}
