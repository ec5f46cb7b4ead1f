//! One MongoDB connection, both directions: messages framed, walked as they stream by
//! ([`crate::decode::mongodb`]), requests matched to replies by `responseTo`, and turned
//! into observations: commands by name and collection, replies' latency and errors.
//!
//! Memory per connection is this struct and the in-flight list, bounded like Kafka's; no
//! message byte is kept. A malformed message is counted and skipped (framing is intact);
//! an impossible length means the stream is not MongoDB: decoding stops ("gave up") and
//! the bytes keep flowing.

use std::collections::VecDeque;

use super::kafka::Settings;
use crate::decode::mongodb::{Summary, Walker};
use crate::decode::topics::Topics;
use crate::exchange::framed::{FrameReader, Framed};
use crate::exchange::observation::{Observation, Observer, Origin};
use crate::wire::{mongodb, Direction, FrameEvent, Framer};

/// OP_MSG flag: no reply will come (or, on a reply, more replies follow).
const MORE_TO_COME: u32 = 2;

#[derive(Clone, Copy, Debug)]
struct InFlight {
    request_id: i32,
    command: &'static str,
    sent_at_ms: u64,
}

struct Side {
    framer: Framer,
    /// The message being read (None between messages, or when its start was bad).
    walker: Option<Walker>,
}

pub struct Connection {
    requests: Side,
    responses: Side,
    in_flight: VecDeque<InFlight>,
    max_in_flight: usize,
    origin: Origin,
    gave_up: bool,
}

impl Connection {
    pub fn open(settings: Settings) -> Self {
        let side = || Side {
            framer: mongodb::framer(settings.max_frame_bytes),
            walker: None,
        };
        Connection {
            requests: side(),
            responses: side(),
            in_flight: VecDeque::new(),
            max_in_flight: settings.max_in_flight,
            origin: Origin::default(),
            gave_up: false,
        }
    }

    pub fn origin(&self) -> Origin {
        self.origin
    }

    pub fn set_secure(&mut self, secure: bool) {
        self.origin.secure = secure;
    }

    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.in_flight.capacity() * std::mem::size_of::<InFlight>()
    }
}

impl Framed for Connection {
    type Reader<'a, O: Observer + 'a> = Reading<'a, O>;

    fn reader<'a, O: Observer>(
        &'a mut self,
        direction: Direction,
        now_ms: u64,
        topics: &'a mut Topics,
        observer: &'a mut O,
    ) -> (&'a mut Framer, Reading<'a, O>) {
        let side = match direction {
            Direction::Request => &mut self.requests,
            Direction::Response => &mut self.responses,
        };
        let reading = Reading {
            direction,
            walker: &mut side.walker,
            in_flight: &mut self.in_flight,
            max_in_flight: self.max_in_flight,
            origin: self.origin,
            topics,
            observer,
            now_ms,
        };
        (&mut side.framer, reading)
    }

    fn framer(&self, direction: Direction) -> &Framer {
        match direction {
            Direction::Request => &self.requests.framer,
            Direction::Response => &self.responses.framer,
        }
    }

    fn unseen_in_frame(&self, direction: Direction) -> Option<u64> {
        let side = match direction {
            Direction::Request => &self.requests,
            Direction::Response => &self.responses,
        };
        side.walker.as_ref().map(|w| u64::from(w.skippable()))
    }

    fn gave_up(&self) -> bool {
        self.gave_up
    }

    fn give_up(&mut self, direction: Direction, observer: &mut impl Observer) {
        self.gave_up = true;
        let reason = "bad_frame_size";
        observer.observe(self.origin, Observation::MongoGaveUp { direction, reason });
    }
}

/// The message being read in one direction, with what it may touch.
pub struct Reading<'a, O> {
    direction: Direction,
    walker: &'a mut Option<Walker>,
    in_flight: &'a mut VecDeque<InFlight>,
    max_in_flight: usize,
    origin: Origin,
    topics: &'a mut Topics,
    observer: &'a mut O,
    now_ms: u64,
}

impl<O: Observer> FrameReader for Reading<'_, O> {
    fn on(&mut self, event: FrameEvent) {
        match event {
            FrameEvent::Start { size } => {
                *self.walker = Some(Walker::new(self.direction == Direction::Request, size))
            }
            FrameEvent::Body(bytes) => {
                if let Some(walker) = self.walker.as_mut().filter(|w| !w.failed()) {
                    if let Err(e) = walker.feed(bytes) {
                        self.failed(e.reason());
                    }
                }
            }
            FrameEvent::Gap(n) => {
                if let Some(walker) = self.walker.as_mut() {
                    if let Err(e) = walker.pass_over(n) {
                        self.failed(e.reason());
                    }
                }
            }
            FrameEvent::End => {
                if let Some(walker) = self.walker.take().filter(|w| w.is_done()) {
                    match self.direction {
                        Direction::Request => self.request(&walker.summary, walker.flags()),
                        Direction::Response => self.reply(&walker.summary, walker.flags()),
                    }
                }
            }
        }
    }
}

impl<O: Observer> Reading<'_, O> {
    fn failed(&mut self, reason: &'static str) {
        let direction = self.direction;
        let observation = Observation::MongoDecodeError { direction, reason };
        self.observer.observe(self.origin, observation);
    }

    fn request(&mut self, summary: &Summary, flags: u32) {
        let Some(command) = summary.command else {
            return;
        };
        let collection = if summary.collection.is_empty() {
            None
        } else if summary.database.is_empty() {
            Some(self.topics.intern(summary.collection.as_bytes()))
        } else {
            let mut namespace = Vec::with_capacity(
                summary.database.as_bytes().len() + 1 + summary.collection.as_bytes().len(),
            );
            namespace.extend_from_slice(summary.database.as_bytes());
            namespace.push(b'.');
            namespace.extend_from_slice(summary.collection.as_bytes());
            Some(self.topics.intern(&namespace))
        };
        let observation = Observation::MongoCommand {
            command,
            collection,
        };
        self.observer.observe(self.origin, observation);
        if flags & MORE_TO_COME != 0 {
            return;
        }
        if self.in_flight.len() >= self.max_in_flight {
            self.in_flight.pop_front();
        }
        self.in_flight.push_back(InFlight {
            request_id: summary.request_id,
            command,
            sent_at_ms: self.now_ms,
        });
    }

    fn reply(&mut self, summary: &Summary, flags: u32) {
        let Some(at) = self
            .in_flight
            .iter()
            .position(|r| r.request_id == summary.response_to)
        else {
            self.failed("unknown_response_to");
            return;
        };
        // An exhaust cursor's replies (moreToCome) answer the same request.
        let request = if flags & MORE_TO_COME != 0 {
            self.in_flight[at]
        } else {
            match self.in_flight.remove(at) {
                Some(request) => request,
                None => return,
            }
        };
        let error = match summary.ok {
            Some(false) => Some(summary.code.unwrap_or(0)),
            _ => None,
        };
        let observation = Observation::MongoReply {
            command: request.command,
            latency_ms: self.now_ms.saturating_sub(request.sent_at_ms),
            error,
        };
        self.observer.observe(self.origin, observation);
    }
}
