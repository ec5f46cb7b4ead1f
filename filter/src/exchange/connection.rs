//! One Kafka connection, both directions, as an explicit state machine.
//!
//! Each direction is framed independently; each frame goes `Header -> Body | Skip`.
//! Request headers create in-flight entries, response headers consume them. Bodies of
//! the APIs the filter understands are walked by a [`Collector`]; everything else is
//! skipped by length. Nothing here keeps message bytes: memory per connection is this
//! struct, the in-flight queue and the per-message summaries, all bounded.
//!
//! A malformed message is counted and skipped (framing is intact); an impossible frame
//! size means the stream is not Kafka: decoding stops for the connection ("gave up").
//! The filter never changes a byte either way: it only reads.

use crate::correlation::{Correlator, Detail, InFlight, Match};
use crate::frame::{FrameEvent, Framer};
use crate::kafka::schema::{self, api, Tag, REQUEST_HEADER, RESPONSE_HEADER};
use crate::kafka::{DecodeError, Visitor, Walker};
use crate::metrics::{Peer, Recorder};
use crate::observe::{Collector, Direction, Observation, Summary, TopicRef};
use crate::topics::Topics;

/// Smallest request: api key, version, correlation id, client id length.
const MIN_REQUEST: u32 = 10;
/// Smallest response: correlation id.
const MIN_RESPONSE: u32 = 4;

/// Request header fields.
#[derive(Debug, Default)]
struct Header {
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    client_id: Option<Box<[u8]>>,
}

impl Visitor for Header {
    fn int(&mut self, tag: Tag, value: i64) {
        match tag {
            Tag::ApiKey => self.api_key = value as i16,
            Tag::ApiVersion => self.api_version = value as i16,
            Tag::CorrelationId => self.correlation_id = value as i32,
            _ => {}
        }
    }

    fn str(&mut self, tag: Tag, value: Option<&[u8]>) {
        if tag == Tag::ClientId {
            self.client_id = value.map(Box::from);
        }
    }
}

/// Where a frame's decoding stands.
enum FrameState {
    /// Between frames.
    Idle,
    Header {
        walker: Box<Walker>,
        header: Header,
    },
    Body {
        walker: Box<Walker>,
        collector: Collector,
        request: Option<InFlight>,
        correlation_id: i32,
    },
    /// The rest of the frame is not decoded.
    Skip,
}

struct Side {
    framer: Framer,
    frame: FrameState,
}

pub struct Connection {
    requests: Side,
    responses: Side,
    correlator: Correlator,
    peer: Peer,
    client_seen: bool,
    gave_up: bool,
    open: bool,
}

impl Connection {
    pub fn new(recorder: &mut Recorder) -> Self {
        recorder.observe(Peer::default(), Observation::ConnectionOpened);
        let max = recorder.config.max_frame_bytes;
        Connection {
            requests: Side {
                framer: Framer::new(MIN_REQUEST, max),
                frame: FrameState::Idle,
            },
            responses: Side {
                framer: Framer::new(MIN_RESPONSE, max),
                frame: FrameState::Idle,
            },
            correlator: Correlator::new(recorder.config.max_in_flight),
            peer: Peer::default(),
            client_seen: false,
            gave_up: false,
            open: true,
        }
    }

    /// Mark the connection as mTLS (known from the first data callback).
    pub fn set_secure(&mut self, secure: bool) {
        self.peer.secure = secure;
    }

    /// Whether decoding stopped for good on this connection.
    pub fn gave_up(&self) -> bool {
        self.gave_up
    }

    /// Bytes from the client to the broker.
    pub fn on_request_data(&mut self, data: &[u8], now_ms: u64, rec: &mut Recorder) {
        self.on_data(Direction::Request, data, now_ms, rec);
    }

    /// Bytes from the broker to the client.
    pub fn on_response_data(&mut self, data: &[u8], now_ms: u64, rec: &mut Recorder) {
        self.on_data(Direction::Response, data, now_ms, rec);
    }

    pub fn on_close(&mut self, rec: &mut Recorder) {
        if std::mem::take(&mut self.open) {
            rec.observe(self.peer, Observation::ConnectionClosed);
        }
    }

    /// Heap and inline bytes this connection holds (the core's own memory accounting).
    pub fn memory_bytes(&self) -> usize {
        let frame = |f: &FrameState| match f {
            FrameState::Header { .. } => std::mem::size_of::<Walker>(),
            FrameState::Body {
                collector, request, ..
            } => {
                std::mem::size_of::<Walker>()
                    + summary_bytes(&collector.summary)
                    + request.as_ref().map_or(0, |r| r.detail.heap_bytes())
            }
            _ => 0,
        };
        std::mem::size_of::<Self>()
            + self.correlator.heap_bytes()
            + frame(&self.requests.frame)
            + frame(&self.responses.frame)
    }

    /// Reads the `size` new bytes of one data callback through `read(offset, len)`, the
    /// host's buffer copy, at most `window` bytes per read, and never asks for bytes the
    /// decoder would step over unseen: of a produce or a fetch, only the headers are
    /// copied into the VM, not the records.
    pub fn on_buffer<B: AsRef<[u8]>>(
        &mut self,
        direction: Direction,
        size: usize,
        window: usize,
        now_ms: u64,
        rec: &mut Recorder,
        mut read: impl FnMut(usize, usize) -> Option<B>,
    ) {
        let mut at = 0;
        while at < size && !self.gave_up {
            let unseen = self.skippable(direction).min(size - at);
            if unseen > 0 {
                self.pass_over(direction, unseen, now_ms, rec);
                at += unseen;
                continue;
            }
            let Some(bytes) = read(at, window.max(1).min(size - at)) else {
                return;
            };
            let bytes = bytes.as_ref();
            if bytes.is_empty() {
                return;
            }
            self.on_data(direction, bytes, now_ms, rec);
            at += bytes.len();
        }
    }

    /// Bytes of `direction`, from where its stream stands, that the decoder will step
    /// over without looking at them (all of them once decoding gave up).
    pub fn skippable(&self, direction: Direction) -> usize {
        if self.gave_up {
            return usize::MAX;
        }
        let side = match direction {
            Direction::Request => &self.requests,
            Direction::Response => &self.responses,
        };
        let left = u64::from(side.framer.body_left());
        let unseen = match &side.frame {
            FrameState::Idle | FrameState::Skip => left,
            FrameState::Header { walker, .. } | FrameState::Body { walker, .. } => {
                walker.skippable().min(left)
            }
        };
        usize::try_from(unseen).unwrap_or(usize::MAX)
    }

    /// Step over `n` bytes of `direction`, at most [`skippable`](Self::skippable),
    /// without being given them.
    pub fn pass_over(&mut self, direction: Direction, n: usize, now_ms: u64, rec: &mut Recorder) {
        let n = n.min(self.skippable(direction));
        if self.gave_up || n == 0 {
            return;
        }
        let (framer, mut message) = self.message(direction, now_ms, rec);
        framer.pass_over(n as u32, |event| message.on(event));
    }

    fn on_data(&mut self, direction: Direction, data: &[u8], now_ms: u64, rec: &mut Recorder) {
        if self.gave_up {
            return;
        }
        let (framer, mut message) = self.message(direction, now_ms, rec);
        if framer.feed(data, |event| message.on(event)).is_err() {
            self.gave_up = true;
            let reason = "bad_frame_size";
            rec.observe(self.peer, Observation::GaveUp { direction, reason });
        }
    }

    /// The framer of `direction` and the frame being decoded, with what it may touch.
    fn message<'a>(
        &'a mut self,
        direction: Direction,
        now_ms: u64,
        rec: &'a mut Recorder,
    ) -> (&'a mut Framer, Message<'a>) {
        let Connection {
            requests,
            responses,
            correlator,
            peer,
            client_seen,
            ..
        } = self;
        let Side { framer, frame } = match direction {
            Direction::Request => requests,
            Direction::Response => responses,
        };
        let message = Message {
            direction,
            frame,
            correlator,
            peer,
            client_seen,
            rec,
            now_ms,
        };
        (framer, message)
    }
}

/// The walker and the collector for the body of a message of `api_key` at `version`
/// going `direction`, if the filter decodes that API deeply and knows that version: the
/// one place a body's decoding is set up (the connection, and the fuzz targets, use it).
/// The walker starts with the header's tagged fields when the header is flexible.
pub fn body_decoder(
    direction: Direction,
    api_key: i16,
    version: i16,
) -> Option<(Box<Walker>, Collector)> {
    let (layout, collector, header_tags) = match direction {
        Direction::Request => (
            schema::request(api_key),
            Collector::request(api_key),
            schema::request_header_is_flexible(api_key, version),
        ),
        Direction::Response => (
            schema::response(api_key),
            Collector::response(api_key),
            schema::response_header_is_flexible(api_key, version),
        ),
    };
    let layout = layout.filter(|m| (0..=m.max_version).contains(&version))?;
    let walker = Walker::for_message(layout, version, header_tags);
    Some((Box::new(walker), collector?))
}

fn summary_bytes(summary: &Summary) -> usize {
    match summary {
        Summary::ProduceRequest { topics, .. } => heap_bytes(topics),
        Summary::FetchRequest { positions } => heap_bytes(positions),
        Summary::ProduceResponse { errors } | Summary::Metadata { errors } => heap_bytes(errors),
        Summary::FetchResponse {
            errors,
            topics,
            partitions,
        } => heap_bytes(errors) + heap_bytes(topics) + heap_bytes(partitions),
        Summary::ApiVersions { .. } => 0,
    }
}

/// The heap a vector of plain elements holds: its capacity, not its length, is what is
/// allocated.
pub(crate) fn heap_bytes<T>(v: &Vec<T>) -> usize {
    v.capacity() * std::mem::size_of::<T>()
}

/// The frame being decoded in one direction, with what it may touch.
struct Message<'a> {
    direction: Direction,
    frame: &'a mut FrameState,
    correlator: &'a mut Correlator,
    peer: &'a mut Peer,
    client_seen: &'a mut bool,
    rec: &'a mut Recorder,
    now_ms: u64,
}

impl Message<'_> {
    fn on(&mut self, event: FrameEvent) {
        match event {
            FrameEvent::Start { .. } => self.start(),
            FrameEvent::Body(bytes) => self.body(bytes),
            FrameEvent::Gap(n) => self.gap(n),
            FrameEvent::End => self.end(),
        }
    }

    fn start(&mut self) {
        let fields = match self.direction {
            Direction::Request => REQUEST_HEADER,
            Direction::Response => RESPONSE_HEADER,
        };
        *self.frame = FrameState::Header {
            walker: Box::new(Walker::new(fields, 0, false, false)),
            header: Header::default(),
        };
    }

    fn body(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let step = match self.frame {
                FrameState::Header { walker, header } => walker.feed(bytes, header),
                FrameState::Body {
                    walker, collector, ..
                } => {
                    let topics: &mut Topics = &mut self.rec.topics;
                    walker.feed(bytes, &mut collector.visitor(topics))
                }
                FrameState::Idle | FrameState::Skip => return,
            };
            let used = match step {
                Ok(used) => used,
                Err(e) => return self.failed(e),
            };
            bytes = &bytes[used..];
            match self.frame {
                FrameState::Header { walker, .. } if walker.is_done() => self.header_done(),
                // A complete body with bytes left in the frame.
                FrameState::Body { walker, .. } if walker.is_done() && !bytes.is_empty() => {
                    return self.failed(DecodeError::TrailingBytes)
                }
                _ => {}
            }
        }
    }

    /// Body bytes the walker said it would step over, passed over unseen.
    fn gap(&mut self, n: u32) {
        let passed = match self.frame {
            FrameState::Header { walker, header } => walker.pass_over(n.into(), header),
            FrameState::Body {
                walker, collector, ..
            } => walker.pass_over(n.into(), &mut collector.visitor(&mut self.rec.topics)),
            FrameState::Idle | FrameState::Skip => return,
        };
        match (passed, &self.frame) {
            (Err(e), _) => self.failed(e),
            (Ok(_), FrameState::Header { walker, .. }) if walker.is_done() => self.header_done(),
            _ => {}
        }
    }

    fn end(&mut self) {
        match std::mem::replace(self.frame, FrameState::Idle) {
            FrameState::Header { .. } => self.failed(DecodeError::Truncated),
            FrameState::Body {
                walker,
                collector,
                request,
                correlation_id,
            } => {
                if walker.is_done() {
                    self.commit(collector.summary, request, correlation_id);
                } else {
                    self.failed(DecodeError::Truncated);
                }
            }
            FrameState::Idle | FrameState::Skip => {}
        }
        *self.frame = FrameState::Idle;
    }

    fn failed(&mut self, error: DecodeError) {
        *self.frame = FrameState::Skip;
        let (direction, reason) = (self.direction, error.reason());
        self.rec
            .observe(*self.peer, Observation::DecodeError { direction, reason });
    }

    fn header_done(&mut self) {
        let FrameState::Header { header, .. } = std::mem::replace(self.frame, FrameState::Skip)
        else {
            return;
        };
        match self.direction {
            Direction::Request => self.request_header(header),
            Direction::Response => self.response_header(header.correlation_id),
        }
    }

    fn request_header(&mut self, header: Header) {
        if !*self.client_seen {
            *self.client_seen = true;
            self.peer.client = self
                .rec
                .client_label(header.client_id.as_deref().unwrap_or(b""));
        }
        let Header {
            api_key,
            api_version,
            correlation_id,
            ..
        } = header;
        self.rec
            .observe(*self.peer, Observation::Request { api_key });
        let known = schema::request(api_key)
            .or(schema::response(api_key))
            .is_none_or(|m| api_version <= m.max_version && api_version >= 0);
        if !known {
            self.rec
                .observe(*self.peer, Observation::UnknownVersion { api_key });
        }
        self.correlator.push(InFlight {
            correlation_id,
            api_key,
            api_version,
            sent_at_ms: self.now_ms,
            detail: Detail::None,
        });
        if let Some((walker, collector)) = body_decoder(Direction::Request, api_key, api_version) {
            *self.frame = FrameState::Body {
                walker,
                collector,
                request: None,
                correlation_id,
            };
        }
    }

    fn response_header(&mut self, correlation_id: i32) {
        let request = match self.correlator.take(correlation_id) {
            Match::Found { request, skipped } => {
                if skipped > 0 {
                    let count = skipped as u64;
                    self.rec
                        .observe(*self.peer, Observation::Unanswered { count });
                }
                request
            }
            Match::Unknown => {
                let (direction, reason) = (self.direction, "unknown_correlation_id");
                self.rec
                    .observe(*self.peer, Observation::DecodeError { direction, reason });
                return;
            }
        };
        let (api_key, version) = (request.api_key, request.api_version);
        let latency_ms = self.now_ms.saturating_sub(request.sent_at_ms);
        self.rec.observe(
            *self.peer,
            Observation::Response {
                api_key,
                latency_ms,
            },
        );
        if let Some((walker, collector)) = body_decoder(Direction::Response, api_key, version) {
            *self.frame = FrameState::Body {
                walker,
                collector,
                request: Some(request),
                correlation_id,
            };
        }
    }

    /// A message decoded cleanly: report what it said.
    fn commit(&mut self, summary: Summary, request: Option<InFlight>, correlation_id: i32) {
        let peer = *self.peer;
        let rec = &mut *self.rec;
        match summary {
            Summary::ProduceRequest { acks, topics } => {
                // Records count as produced once acknowledged; with acks=0 nothing will
                // be, and a request whose details cannot be kept is counted as sent.
                let unacknowledged = if acks == 0 {
                    self.correlator.cancel(correlation_id);
                    topics
                } else {
                    match self
                        .correlator
                        .attach(correlation_id, Detail::Produced(topics))
                    {
                        None => return,
                        Some(detail) => detail.into_produced(),
                    }
                };
                for (topic, totals) in unacknowledged {
                    let topic = topic.resolve(&mut rec.topics);
                    rec.observe(peer, Observation::Produced { topic, totals });
                }
            }
            Summary::FetchRequest { positions } => {
                // Without them (over budget), lag comes from the response alone.
                self.correlator
                    .attach(correlation_id, Detail::Positions(positions));
            }
            Summary::ProduceResponse { errors } => {
                // A topic with an error in the response has its records of that request
                // counted as refused (errors are per partition, totals per topic).
                for (topic, totals) in request
                    .map(|r| r.detail.into_produced())
                    .unwrap_or_default()
                {
                    let refused = errors.iter().any(|(t, code)| {
                        *code != 0 && t.is_some_and(|t| same_topic(t, topic, &mut rec.topics))
                    });
                    let topic = topic.resolve(&mut rec.topics);
                    if !refused {
                        rec.observe(peer, Observation::Produced { topic, totals });
                    }
                }
                report_errors(rec, peer, api::PRODUCE, errors);
            }
            Summary::FetchResponse {
                errors,
                topics,
                partitions,
            } => {
                report_errors(rec, peer, api::FETCH, errors);
                for (topic, totals) in topics {
                    let topic = topic.resolve(&mut rec.topics);
                    if totals.batches > 0 {
                        rec.observe(peer, Observation::Fetched { topic, totals });
                    }
                }
                let asked = request
                    .map(|r| r.detail.into_positions())
                    .unwrap_or_default();
                for p in partitions {
                    let topic = p.topic.resolve(&mut rec.topics);
                    let asked_offset = asked
                        .iter()
                        .find(|a| {
                            a.partition == p.partition
                                && same_topic(a.topic, p.topic, &mut rec.topics)
                        })
                        .map(|a| a.offset);
                    let next = match (p.next_offset, asked_offset) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                    if let (Some(next), true) = (next, p.high_watermark >= 0) {
                        // Offsets come off the wire: an absurd one must not overflow.
                        let lag = p.high_watermark.saturating_sub(next);
                        let partition = p.partition;
                        rec.observe(
                            peer,
                            Observation::Lag {
                                topic,
                                partition,
                                lag,
                            },
                        );
                    }
                }
            }
            Summary::Metadata { errors } => {
                report_errors(rec, peer, api::METADATA, errors);
            }
            Summary::ApiVersions { error } => {
                let errors = if error != 0 {
                    vec![(None, error)]
                } else {
                    Vec::new()
                };
                report_errors(rec, peer, api::API_VERSIONS, errors);
            }
        }
    }
}

/// Report the non-zero error codes of a response, topic-level or not.
fn report_errors(
    rec: &mut Recorder,
    peer: Peer,
    api_key: i16,
    errors: Vec<(Option<TopicRef>, i16)>,
) {
    for (topic, code) in errors {
        let topic = topic.map(|t| t.resolve(&mut rec.topics));
        rec.observe(
            peer,
            Observation::Error {
                api_key,
                topic,
                code,
            },
        );
    }
}

fn same_topic(a: TopicRef, b: TopicRef, topics: &mut Topics) -> bool {
    a == b || a.resolve(topics) == b.resolve(topics)
}
