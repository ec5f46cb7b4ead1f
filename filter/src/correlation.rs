//! Request/response correlation: the one place that remembers what was asked.
//!
//! A Kafka broker answers the requests of a connection in order, so in-flight requests
//! form a FIFO queue. Requests that get no answer (Produce with acks=0) are never queued;
//! a response matches the oldest entry with its correlation id, and entries before it
//! were answered by nobody (counted, then dropped). The queue is capped so that a client
//! that floods requests without reading responses cannot grow memory.

use std::collections::VecDeque;

use crate::observe::{FetchPosition, TopicRef, Totals};

#[derive(Debug)]
pub struct InFlight {
    pub correlation_id: i32,
    pub api_key: i16,
    pub api_version: i16,
    pub sent_at_ms: u64,
    /// Fetch requests: the offsets asked for, to compute consumer lag from the response.
    pub positions: Vec<FetchPosition>,
    /// Produce requests: records per topic, counted as produced when the response
    /// acknowledges them.
    pub produced: Vec<(TopicRef, Totals)>,
}

#[derive(Debug, Default)]
pub struct Correlator {
    queue: VecDeque<InFlight>,
    limit: usize,
}

/// What matching a response found.
#[derive(Debug)]
pub enum Match {
    /// The request, and how many older requests were skipped without a response.
    Found { request: InFlight, skipped: usize },
    /// No in-flight request has this correlation id (the queue is left as it was).
    Unknown,
}

impl Correlator {
    pub fn new(limit: usize) -> Self {
        Correlator {
            queue: VecDeque::new(),
            limit,
        }
    }

    /// Remember a request; returns true if the oldest entry had to be evicted.
    pub fn push(&mut self, request: InFlight) -> bool {
        let evicted = self.queue.len() >= self.limit;
        if evicted {
            self.queue.pop_front();
        }
        self.queue.push_back(request);
        evicted
    }

    /// The most recent request, to attach what its body reveals (fetch positions).
    pub fn last_mut(&mut self, correlation_id: i32) -> Option<&mut InFlight> {
        self.queue
            .back_mut()
            .filter(|r| r.correlation_id == correlation_id)
    }

    /// Forget the most recent request (Produce with acks=0 expects no response).
    pub fn cancel(&mut self, correlation_id: i32) {
        if self
            .queue
            .back()
            .is_some_and(|r| r.correlation_id == correlation_id)
        {
            self.queue.pop_back();
        }
    }

    pub fn take(&mut self, correlation_id: i32) -> Match {
        let Some(index) = self
            .queue
            .iter()
            .position(|r| r.correlation_id == correlation_id)
        else {
            return Match::Unknown;
        };
        self.queue.drain(..index);
        match self.queue.pop_front() {
            Some(request) => Match::Found {
                request,
                skipped: index,
            },
            None => Match::Unknown,
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes held, for the per-connection memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.queue.capacity() * std::mem::size_of::<InFlight>()
            + self
                .queue
                .iter()
                .map(|r| {
                    crate::connection::heap_bytes(&r.positions)
                        + crate::connection::heap_bytes(&r.produced)
                })
                .sum::<usize>()
    }
}
