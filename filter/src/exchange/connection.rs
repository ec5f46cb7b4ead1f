//! A connection of either protocol with the action that may act on it: on each data
//! callback the action decides first (its [`Step`], carried out by the glue), then the
//! protocol's decoder reads the bytes that pass, at most a window at a time, never
//! asking for bytes it would step over unseen.

use super::kafka::{self, Settings};
use super::mongodb;
use crate::act::{Action, AuthResult, Step};
use crate::decode::topics::Topics;
use crate::exchange::framed::Framed;
use crate::exchange::observation::{Observation, Observer};
use crate::wire::{Direction, Protocol};

/// The protocol's decoder of a connection.
enum Decoder {
    Kafka(Box<kafka::Connection>),
    MongoDb(Box<mongodb::Connection>),
}

/// The same call on whichever decoder the connection has.
macro_rules! each {
    ($decoder:expr, $d:ident => $call:expr) => {
        match $decoder {
            Decoder::Kafka($d) => $call,
            Decoder::MongoDb($d) => $call,
        }
    };
}

pub struct Connection {
    decoder: Decoder,
    action: Option<Box<dyn Action>>,
}

impl Connection {
    /// A new connection of `protocol`, reported to `observer` as opened.
    pub fn open(protocol: Protocol, settings: Settings, observer: &mut impl Observer) -> Self {
        let decoder = match protocol {
            Protocol::Kafka => {
                Decoder::Kafka(Box::new(kafka::Connection::open(settings, observer)))
            }
            Protocol::MongoDb => Decoder::MongoDb(Box::new(mongodb::Connection::open(settings))),
        };
        Connection {
            decoder,
            action: None,
        }
    }

    /// Let `action` act on this connection's bytes before they are observed.
    pub fn set_action(&mut self, action: Box<dyn Action>) {
        self.action = Some(action);
    }

    /// Whether the connection's action still acts on its bytes.
    pub fn is_acting(&self) -> bool {
        self.action.as_ref().is_some_and(|a| !a.is_done())
    }

    /// Mark the sidecar's upstream leg as Istio mTLS (known from the first data callback).
    pub fn set_secure(&mut self, secure: bool) {
        each!(&mut self.decoder, d => d.set_secure(secure))
    }

    /// Drop the connection's action before it began: it must not act toward this
    /// connection's upstream. Its bytes pass untouched; the outcome (`skipped`,
    /// `reason`) is counted. Whether there was an action to drop.
    pub fn withhold_action(&mut self, reason: &'static str, observer: &mut impl Observer) -> bool {
        let Some(action) = self.action.take() else {
            return false;
        };
        let origin = each!(&self.decoder, d => d.origin());
        observer.observe(
            origin,
            Observation::Auth(action.outcome(AuthResult::Skipped, reason)),
        );
        true
    }

    /// Whether decoding stopped for good on this connection.
    pub fn gave_up(&self) -> bool {
        each!(&self.decoder, d => d.gave_up())
    }

    /// Heap and inline bytes this connection holds (the core's own memory accounting).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + each!(&self.decoder, d => d.memory_bytes())
            + self.action.as_ref().map_or(0, |a| a.memory_bytes())
    }

    /// Bytes of `direction` the decoder will step over without looking at them.
    pub fn skippable(&self, direction: Direction) -> usize {
        each!(&self.decoder, d => d.skippable(direction))
    }

    /// How many bytes of `direction` to read at once from here, when the decoder has a
    /// size of its own (`None`: the configured window).
    fn read_size(&self, direction: Direction) -> Option<usize> {
        match &self.decoder {
            Decoder::Kafka(d) => d.read_size(direction),
            Decoder::MongoDb(_) => None,
        }
    }

    pub fn on_close(&mut self, observer: &mut impl Observer) {
        if let Some(outcome) = self.action.as_mut().and_then(|a| a.on_close()) {
            let origin = each!(&self.decoder, d => d.origin());
            observer.observe(origin, Observation::Auth(outcome));
        }
        if let Decoder::Kafka(d) = &mut self.decoder {
            d.on_close(observer);
        }
    }

    /// Bytes of `direction` handed over whole, to the decoder.
    pub fn on_data(
        &mut self,
        direction: Direction,
        data: &[u8],
        now_ms: u64,
        topics: &mut Topics,
        observer: &mut impl Observer,
    ) {
        each!(&mut self.decoder, d => d.on_data(direction, data, now_ms, topics, observer))
    }

    /// One data callback of `size` bytes of `direction`, read through `read(offset,
    /// len)`, the host's buffer copy: the action decides first (its [`Step`], returned
    /// for the glue to carry out), then the decoder reads the bytes that pass, at most
    /// `window` bytes per read (inside a batch read record by record for
    /// `records_by_schema`, [`READ_SIZE`](crate::decode::kafka::schema_ids::READ_SIZE)),
    /// never asking for bytes it would step over unseen: of a
    /// Kafka produce or fetch, or a MongoDB insert, only the headers are copied.
    #[allow(clippy::too_many_arguments)]
    pub fn on_buffer<B: AsRef<[u8]>>(
        &mut self,
        direction: Direction,
        size: usize,
        window: usize,
        now_ms: u64,
        topics: &mut Topics,
        observer: &mut impl Observer,
        mut read: impl FnMut(usize, usize) -> Option<B>,
    ) -> Step {
        let step = match self.action.as_mut().filter(|a| !a.is_done()) {
            Some(action) => action.on_data(direction, size, &mut |at, len| {
                read(at, len).map(|b| b.as_ref().to_vec())
            }),
            None => Step::default(),
        };
        if let Some(outcome) = step.outcome {
            let origin = each!(&self.decoder, d => d.origin());
            observer.observe(origin, Observation::Auth(outcome));
        }
        if !step.release.is_empty() {
            self.on_data(Direction::Request, &step.release, now_ms, topics, observer);
        }
        if step.hold {
            return step;
        }
        let mut at = step.take.min(size);
        while at < size && !self.gave_up() {
            let unseen = self.skippable(direction).min(size - at);
            if unseen > 0 {
                each!(&mut self.decoder, d => d.pass_over(direction, unseen, now_ms, topics, observer));
                at += unseen;
                continue;
            }
            let len = self.read_size(direction).unwrap_or(window);
            let len = len.max(1).min(size - at);
            let Some(bytes) = read(at, len) else {
                break;
            };
            let bytes = bytes.as_ref();
            if bytes.is_empty() {
                break;
            }
            self.on_data(direction, bytes, now_ms, topics, observer);
            at += bytes.len();
        }
        step
    }
}
