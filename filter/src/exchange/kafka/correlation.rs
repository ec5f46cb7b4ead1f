//! Request/response correlation: the one place that remembers what was asked.
//!
//! A Kafka broker answers the requests of a connection in order, so in-flight requests
//! form a FIFO queue. Requests that get no answer (Produce with acks=0) are never queued;
//! a response matches the oldest entry with its correlation id, and entries before it
//! were answered by nobody (counted, then dropped). The queue is capped, and so are the
//! details kept for requests (fetch positions, produced totals), so that a client that
//! floods requests without reading responses cannot grow memory.

use std::collections::VecDeque;

use crate::decode::kafka::summary::{FetchPosition, TopicRef, Totals};
use crate::heap::heap_bytes;

/// Bytes of request details (fetch positions, produced totals) one connection keeps.
/// A request whose details do not fit is still correlated, without them.
pub const DETAIL_BUDGET: usize = 16 * 1024;

#[derive(Debug)]
pub struct InFlight {
    pub correlation_id: i32,
    pub api_key: i16,
    pub api_version: i16,
    pub sent_at_ms: u64,
    pub detail: Detail,
}

/// What a request's body revealed that its response needs.
#[derive(Debug, Default)]
pub enum Detail {
    #[default]
    None,
    /// Fetch: the offsets asked for, to compute consumer lag from the response.
    Positions(Vec<FetchPosition>),
    /// Produce: records per topic, counted as produced when the response acknowledges
    /// them.
    Produced(Vec<(TopicRef, Totals)>),
}

impl Detail {
    pub fn heap_bytes(&self) -> usize {
        match self {
            Detail::None => 0,
            Detail::Positions(v) => heap_bytes(v),
            Detail::Produced(v) => heap_bytes(v),
        }
    }

    pub fn into_positions(self) -> Vec<FetchPosition> {
        match self {
            Detail::Positions(v) => v,
            _ => Vec::new(),
        }
    }

    pub fn into_produced(self) -> Vec<(TopicRef, Totals)> {
        match self {
            Detail::Produced(v) => v,
            _ => Vec::new(),
        }
    }

    fn shrink(&mut self) {
        match self {
            Detail::None => {}
            Detail::Positions(v) => v.shrink_to_fit(),
            Detail::Produced(v) => v.shrink_to_fit(),
        }
    }
}

#[derive(Debug, Default)]
pub struct Correlator {
    queue: VecDeque<InFlight>,
    limit: usize,
    /// Bytes of details held by the queued requests.
    details: usize,
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
            details: 0,
        }
    }

    /// Remember a request; returns true if the oldest entry had to be evicted.
    pub fn push(&mut self, request: InFlight) -> bool {
        let evicted = self.queue.len() >= self.limit;
        if evicted {
            self.pop_front();
        }
        self.details += request.detail.heap_bytes();
        self.queue.push_back(request);
        evicted
    }

    /// Attach `detail` to the most recent request if it is `correlation_id` and the
    /// detail fits the budget; otherwise hand it back.
    pub fn attach(&mut self, correlation_id: i32, mut detail: Detail) -> Option<Detail> {
        detail.shrink();
        let bytes = detail.heap_bytes();
        let fits = self.details + bytes <= DETAIL_BUDGET;
        match self.queue.back_mut() {
            Some(last) if fits && last.correlation_id == correlation_id => {
                self.details -= last.detail.heap_bytes();
                self.details += bytes;
                last.detail = detail;
                None
            }
            _ => Some(detail),
        }
    }

    /// Forget the most recent request (Produce with acks=0 expects no response).
    pub fn cancel(&mut self, correlation_id: i32) {
        if self
            .queue
            .back()
            .is_some_and(|r| r.correlation_id == correlation_id)
        {
            if let Some(request) = self.queue.pop_back() {
                self.details -= request.detail.heap_bytes();
            }
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
        for _ in 0..index {
            self.pop_front();
        }
        match self.pop_front() {
            Some(request) => Match::Found {
                request,
                skipped: index,
            },
            None => Match::Unknown,
        }
    }

    fn pop_front(&mut self) -> Option<InFlight> {
        let request = self.queue.pop_front()?;
        self.details -= request.detail.heap_bytes();
        Some(request)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes held, for the per-connection memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.queue.capacity() * std::mem::size_of::<InFlight>() + self.details
    }
}
