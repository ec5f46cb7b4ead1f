//! One Kafka connection, both directions, as an explicit state machine.
//!
//! Each direction is framed independently; each frame goes `Header -> Body | Skip`.
//! Request headers create in-flight entries, response headers consume them. Bodies of
//! the APIs the filter understands are walked by a [`Collector`]; everything else is
//! skipped by length. Nothing here keeps message bytes: memory per connection is this
//! struct, the in-flight queue, the received offsets and the per-message summaries, all
//! bounded.
//!
//! A malformed message is counted and skipped (framing is intact); an impossible frame
//! size means the stream is not Kafka: decoding stops for the connection ("gave up").
//! Observing never changes a byte; the connection's action, when one is configured, runs
//! first on each callback ([`crate::exchange::Connection`]); this decoder sees only the
//! app's bytes, as they pass.

use super::correlation::{Correlator, Detail, InFlight, Match};
use super::meaning::Meaning;
use super::received::ReceivedOffsets;
use crate::decode::kafka::schema::{self, Role, REQUEST_HEADER, RESPONSE_HEADER};
use crate::decode::kafka::{body_decoder, Collector, DecodeError, Visitor, Walker};
use crate::decode::topics::Topics;
use crate::exchange::framed::{FrameReader, Framed};
use crate::exchange::observation::{Observation, Observer, Origin};
use crate::wire::{kafka, Direction, FrameEvent, Framer};

/// What a connection may hold and read, fixed when it is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Largest frame decoded; a larger size prefix means the stream is not Kafka.
    pub max_frame_bytes: u32,
    /// Requests remembered while awaiting their responses (oldest evicted).
    pub max_in_flight: usize,
    /// Read produced record values' schema ids (`records_by_schema`).
    pub record_values: bool,
}

/// Request header fields.
#[derive(Debug, Default)]
struct Header {
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    client_id: Option<Box<[u8]>>,
}

impl Visitor for Header {
    fn int(&mut self, role: Role, value: i64) {
        match role {
            Role::ApiKey => self.api_key = value as i16,
            Role::ApiVersion => self.api_version = value as i16,
            Role::CorrelationId => self.correlation_id = value as i32,
            _ => {}
        }
    }

    fn str(&mut self, role: Role, value: Option<&[u8]>) {
        if role == Role::ClientId {
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
        /// Boxed like the walker: the largest state, held only inside a message.
        collector: Box<Collector>,
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
    received: ReceivedOffsets,
    origin: Origin,
    client_seen: bool,
    record_values: bool,
    gave_up: bool,
    open: bool,
}

impl Connection {
    /// A new connection, reported to `observer` as opened.
    pub fn open(settings: Settings, observer: &mut impl Observer) -> Self {
        observer.observe(Origin::default(), Observation::ConnectionOpened);
        let side = |direction| Side {
            framer: kafka::framer(direction, settings.max_frame_bytes),
            frame: FrameState::Idle,
        };
        Connection {
            requests: side(Direction::Request),
            responses: side(Direction::Response),
            correlator: Correlator::new(settings.max_in_flight),
            received: ReceivedOffsets::default(),
            origin: Origin::default(),
            client_seen: false,
            record_values: settings.record_values,
            gave_up: false,
            open: true,
        }
    }

    /// Labels of the connection's observations.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// Mark the sidecar's upstream leg as Istio mTLS (known from the first response data).
    pub fn set_secure(&mut self, secure: bool) {
        self.origin.secure = secure;
    }

    pub fn on_close(&mut self, observer: &mut impl Observer) {
        if std::mem::take(&mut self.open) {
            observer.observe(self.origin, Observation::ConnectionClosed);
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
                    + std::mem::size_of::<Collector>()
                    + collector.heap_bytes()
                    + request.as_ref().map_or(0, |r| r.detail.heap_bytes())
            }
            _ => 0,
        };
        std::mem::size_of::<Self>()
            + self.correlator.heap_bytes()
            + self.received.heap_bytes()
            + frame(&self.requests.frame)
            + frame(&self.responses.frame)
    }

    /// How many bytes of `direction` to read at once from here, when the walker has a
    /// size of its own ([`Walker::read_size`]).
    pub fn read_size(&self, direction: Direction) -> Option<usize> {
        let side = match direction {
            Direction::Request => &self.requests,
            Direction::Response => &self.responses,
        };
        match &side.frame {
            FrameState::Body { walker, .. } => walker.read_size().map(|n| n as usize),
            _ => None,
        }
    }
}

impl Framed for Connection {
    type Reader<'a, O: Observer + 'a> = Decoding<'a, O>;

    fn reader<'a, O: Observer>(
        &'a mut self,
        direction: Direction,
        now_ms: u64,
        topics: &'a mut Topics,
        observer: &'a mut O,
    ) -> (&'a mut Framer, Decoding<'a, O>) {
        let Connection {
            requests,
            responses,
            correlator,
            received,
            origin,
            client_seen,
            record_values,
            ..
        } = self;
        let Side { framer, frame } = match direction {
            Direction::Request => requests,
            Direction::Response => responses,
        };
        let decoding = Decoding {
            direction,
            frame,
            correlator,
            received,
            origin,
            client_seen,
            record_values: *record_values,
            topics,
            observer,
            now_ms,
        };
        (framer, decoding)
    }

    fn framer(&self, direction: Direction) -> &Framer {
        match direction {
            Direction::Request => &self.requests.framer,
            Direction::Response => &self.responses.framer,
        }
    }

    #[inline]
    fn unseen_in_frame(&self, direction: Direction) -> Option<u64> {
        let side = match direction {
            Direction::Request => &self.requests,
            Direction::Response => &self.responses,
        };
        match &side.frame {
            FrameState::Idle | FrameState::Skip => None,
            FrameState::Header { walker, .. } | FrameState::Body { walker, .. } => {
                Some(walker.skippable())
            }
        }
    }

    fn gave_up(&self) -> bool {
        self.gave_up
    }

    fn give_up(&mut self, direction: Direction, observer: &mut impl Observer) {
        self.gave_up = true;
        let reason = "bad_frame_size";
        observer.observe(self.origin, Observation::GaveUp { direction, reason });
    }
}

/// The frame being decoded in one direction, with what it may touch.
pub struct Decoding<'a, O> {
    direction: Direction,
    frame: &'a mut FrameState,
    correlator: &'a mut Correlator,
    received: &'a mut ReceivedOffsets,
    origin: &'a mut Origin,
    client_seen: &'a mut bool,
    record_values: bool,
    topics: &'a mut Topics,
    observer: &'a mut O,
    now_ms: u64,
}

impl<O: Observer> FrameReader for Decoding<'_, O> {
    fn on(&mut self, event: FrameEvent) {
        match event {
            FrameEvent::Start { .. } => self.start(),
            FrameEvent::Body(bytes) => self.body(bytes),
            FrameEvent::Gap(n) => self.gap(n),
            FrameEvent::End => self.end(),
        }
    }
}

impl<O: Observer> Decoding<'_, O> {
    fn observe(&mut self, observation: Observation) {
        self.observer.observe(*self.origin, observation);
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
                } => walker.feed(bytes, &mut collector.visitor(self.topics, self.received)),
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
            } => walker.pass_over(n.into(), &mut collector.visitor(self.topics, self.received)),
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
                    let meaning = Meaning {
                        correlator: self.correlator,
                        received: self.received,
                        topics: self.topics,
                        observer: self.observer,
                        origin: *self.origin,
                    };
                    meaning.decoded(collector.summary, request, correlation_id);
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
        self.observe(Observation::DecodeError { direction, reason });
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
            self.origin.client = self
                .observer
                .client(header.client_id.as_deref().unwrap_or(b""));
        }
        let Header {
            api_key,
            api_version,
            correlation_id,
            ..
        } = header;
        self.observe(Observation::Request { api_key });
        let known = schema::request(api_key)
            .or(schema::response(api_key))
            .is_none_or(|m| m.knows(api_version));
        if !known {
            self.observe(Observation::UnknownVersion { api_key });
        }
        self.correlator.push(InFlight {
            correlation_id,
            api_key,
            api_version,
            sent_at_ms: self.now_ms,
            detail: Detail::None,
        });
        if let Some((walker, collector)) =
            body_decoder(Direction::Request, api_key, api_version, self.record_values)
        {
            *self.frame = FrameState::Body {
                walker,
                collector: Box::new(collector),
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
                    self.observe(Observation::Unanswered { count });
                }
                request
            }
            Match::Unknown => {
                let (direction, reason) = (self.direction, "unknown_correlation_id");
                self.observe(Observation::DecodeError { direction, reason });
                return;
            }
        };
        let (api_key, version) = (request.api_key, request.api_version);
        let latency_ms = self.now_ms.saturating_sub(request.sent_at_ms);
        self.observe(Observation::Response {
            api_key,
            latency_ms,
        });
        if let Some((walker, collector)) =
            body_decoder(Direction::Response, api_key, version, false)
        {
            *self.frame = FrameState::Body {
                walker,
                collector: Box::new(collector),
                request: Some(request),
                correlation_id,
            };
        }
    }
}
