//! From decoded fields to observations.
//!
//! A [`Collector`] is the [`Visitor`] for one message: it sums what the message says per
//! topic while the walker streams through it. The summary is turned into
//! [`Observation`]s only once the whole message decoded cleanly, so a malformed message
//! is counted as a decode error and contributes nothing else. Summaries are capped
//! ([`MAX_ENTRIES`]) so that a message claiming millions of topics cannot grow memory.

use crate::kafka::schema::{api, Tag};
use crate::kafka::{BatchHeader, Codec, Visitor};
use crate::topics::{TopicId, TopicIdx, Topics, OVERFLOW, UNKNOWN};

/// Most topics (or partitions, for lag) kept per message; the rest is folded into the
/// overflow topic (or, for lag, dropped).
pub const MAX_ENTRIES: usize = 256;

/// A topic as a message names it: by name (interned) or by id (resolved at the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

/// Records seen for one topic in one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub batches: u32,
    pub records: u64,
    pub bytes: u64,
    /// Batches per codec, indexed like [`Codec::ALL`].
    pub codecs: [u32; 6],
}

impl Totals {
    fn add(&mut self, batch: &BatchHeader) {
        if batch.control {
            return;
        }
        self.batches += 1;
        self.records += u64::from(batch.records);
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

/// What the filter reports. Topics are resolved label indexes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    Request {
        api_key: i16,
    },
    /// A deep-decoded API at a version newer than the tables know: counted, not decoded.
    UnknownVersion {
        api_key: i16,
    },
    Response {
        api_key: i16,
        latency_ms: u64,
    },
    /// Requests a response skipped over: the broker never answered them.
    Unanswered {
        count: u64,
    },
    Produced {
        topic: TopicIdx,
        totals: Totals,
    },
    Fetched {
        topic: TopicIdx,
        totals: Totals,
    },
    Error {
        api_key: i16,
        topic: Option<TopicIdx>,
        code: i16,
    },
    Lag {
        topic: TopicIdx,
        partition: i32,
        lag: i64,
    },
    DecodeError {
        direction: Direction,
        reason: &'static str,
    },
    ConnectionOpened,
    ConnectionClosed,
    /// Decoding stopped for the rest of a connection (bytes still pass unchanged).
    GaveUp {
        direction: Direction,
        reason: &'static str,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    Request,
    Response,
}

impl Direction {
    pub const fn name(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
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
    /// Error code of the element being read, reported when the element ends (a Metadata
    /// topic's error precedes its name).
    error: i16,
    depth: u8,
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
            api::API_VERSIONS => Summary::ApiVersions { error: 0 },
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
            error: 0,
            depth: 0,
        }
    }

    /// Visit with access to the VM's topic table (names are interned as they stream by).
    pub fn visitor<'a>(&'a mut self, topics: &'a mut Topics) -> CollectorVisitor<'a> {
        CollectorVisitor {
            collector: self,
            topics,
        }
    }
}

pub struct CollectorVisitor<'a> {
    collector: &'a mut Collector,
    topics: &'a mut Topics,
}

/// Push, or, once the per-message cap is reached, fold into one last overflow entry.
fn push_totals(list: &mut Vec<(TopicRef, Totals)>, topic: TopicRef) {
    let overflow = TopicRef::Name(OVERFLOW);
    if list.len() + 1 < MAX_ENTRIES {
        list.push((topic, Totals::default()));
    } else if list.last().is_none_or(|last| last.0 != overflow) {
        list.push((overflow, Totals::default()));
    }
}

fn push_capped<T>(list: &mut Vec<T>, item: T) {
    if list.len() < MAX_ENTRIES {
        list.push(item);
    }
}

impl Visitor for CollectorVisitor<'_> {
    fn begin(&mut self, array: Tag) {
        let c = &mut *self.collector;
        c.depth += 1;
        match array {
            Tag::Topic => {
                c.topic = None;
                match &mut c.summary {
                    Summary::ProduceRequest { topics, .. }
                    | Summary::FetchResponse { topics, .. } => {
                        push_totals(topics, TopicRef::Name(UNKNOWN))
                    }
                    _ => {}
                }
            }
            Tag::Partition => {
                c.partition = -1;
                c.high_watermark = -1;
                c.next_offset = None;
            }
            _ => {}
        }
    }

    fn end(&mut self, array: Tag) {
        let c = &mut *self.collector;
        c.depth = c.depth.saturating_sub(1);
        let topic = c.topic.unwrap_or(TopicRef::Name(UNKNOWN));
        if matches!(array, Tag::Topic | Tag::Partition) && c.error != 0 {
            let code = std::mem::take(&mut c.error);
            match &mut c.summary {
                Summary::ProduceResponse { errors }
                | Summary::FetchResponse { errors, .. }
                | Summary::Metadata { errors } => push_capped(errors, (Some(topic), code)),
                _ => {}
            }
        }
        if let (Tag::Partition, Summary::FetchResponse { partitions, .. }) = (array, &mut c.summary)
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

    fn int(&mut self, tag: Tag, value: i64) {
        let c = &mut *self.collector;
        let topic = c.topic.unwrap_or(TopicRef::Name(UNKNOWN));
        match (tag, &mut c.summary) {
            (Tag::Acks, Summary::ProduceRequest { acks, .. }) => *acks = value as i16,
            (Tag::PartitionIndex, _) => c.partition = value as i32,
            (Tag::HighWatermark, _) => c.high_watermark = value,
            (Tag::FetchOffset, Summary::FetchRequest { positions }) => push_capped(
                positions,
                FetchPosition {
                    topic,
                    partition: c.partition,
                    offset: value,
                },
            ),
            (Tag::ErrorCode, _) if value != 0 => {
                let code = value as i16;
                match &mut c.summary {
                    Summary::ApiVersions { error } => *error = code,
                    // Inside a topic or partition: reported when the element ends.
                    _ if c.depth > 0 => c.error = code,
                    // Top-level codes concern no topic.
                    Summary::FetchResponse { errors, .. } | Summary::Metadata { errors } => {
                        push_capped(errors, (None, code))
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn str(&mut self, tag: Tag, value: Option<&[u8]>) {
        if let (Tag::TopicName, Some(name)) = (tag, value) {
            let topic = TopicRef::Name(self.topics.intern(name));
            self.set_topic(topic);
        }
    }

    fn uuid(&mut self, tag: Tag, id: [u8; 16]) {
        if tag != Tag::TopicId {
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
                    last.1.add(batch);
                }
            }
            Summary::FetchResponse { topics, .. } => {
                if let Some(last) = topics.last_mut() {
                    last.1.add(batch);
                }
                let next = batch.last_offset.saturating_add(1);
                c.next_offset = Some(c.next_offset.map_or(next, |n| n.max(next)));
            }
            _ => {}
        }
    }
}

impl CollectorVisitor<'_> {
    fn set_topic(&mut self, topic: TopicRef) {
        let c = &mut *self.collector;
        c.topic = Some(topic);
        if let Summary::ProduceRequest { topics, .. } | Summary::FetchResponse { topics, .. } =
            &mut c.summary
        {
            if let Some(last) = topics
                .last_mut()
                .filter(|l| l.0 != TopicRef::Name(OVERFLOW))
            {
                last.0 = topic;
            }
        }
    }
}
