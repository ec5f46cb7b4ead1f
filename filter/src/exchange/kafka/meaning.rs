//! What a cleanly decoded Kafka message means, with the request it answers: records
//! produced once acknowledged, refused topics left out, records fetched (first copies
//! apart from repeats), consumer lag, errors.

use super::correlation::{Correlator, Detail, InFlight};
use super::received::ReceivedOffsets;
use crate::decode::kafka::schema::api;
use crate::decode::kafka::summary::{Summary, TopicRef};
use crate::decode::topics::Topics;
use crate::exchange::observation::{Observation, Observer, Origin};

/// What reporting a decoded message touches.
pub struct Meaning<'a, O> {
    pub correlator: &'a mut Correlator,
    pub received: &'a mut ReceivedOffsets,
    pub topics: &'a mut Topics,
    pub observer: &'a mut O,
    pub origin: Origin,
}

impl<O: Observer> Meaning<'_, O> {
    fn observe(&mut self, observation: Observation) {
        self.observer.observe(self.origin, observation);
    }

    /// A message decoded cleanly: report what it said. `request` is the request a
    /// response answers (none for a request).
    pub fn decoded(mut self, summary: Summary, request: Option<InFlight>, correlation_id: i32) {
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
                    let topic = topic.resolve(self.topics);
                    self.observe(Observation::Produced { topic, totals });
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
                        *code != 0 && t.is_some_and(|t| same_topic(t, topic, self.topics))
                    });
                    let topic = topic.resolve(self.topics);
                    if !refused {
                        self.observe(Observation::Produced { topic, totals });
                    }
                }
                self.errors(api::PRODUCE, errors);
            }
            Summary::FetchResponse {
                errors,
                topics,
                partitions,
            } => {
                self.errors(api::FETCH, errors);
                for (topic, totals) in topics {
                    let topic = topic.resolve(self.topics);
                    if totals.batches > 0 {
                        self.observe(Observation::Fetched { topic, totals });
                    }
                }
                let asked = request
                    .map(|r| r.detail.into_positions())
                    .unwrap_or_default();
                for p in partitions {
                    self.received.record(&p);
                    let topic = p.topic.resolve(self.topics);
                    let asked_offset = asked
                        .iter()
                        .find(|a| {
                            a.partition == p.partition && same_topic(a.topic, p.topic, self.topics)
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
                        self.observe(Observation::Lag {
                            topic,
                            partition,
                            lag,
                        });
                    }
                }
            }
            Summary::Metadata { errors } => self.errors(api::METADATA, errors),
            Summary::FindCoordinator { errors } => self.errors(api::FIND_COORDINATOR, errors),
            // Counted as sent: a refused acknowledgement shows in the response's errors.
            Summary::ShareAcknowledgements { acks } => {
                for (topic, counts) in acks {
                    let topic = topic.resolve(self.topics);
                    self.observe(Observation::ShareAcknowledged { topic, counts });
                }
            }
            Summary::ShareFetchResponse { errors, topics } => {
                self.errors(api::SHARE_FETCH, errors);
                for (topic, acquired) in topics {
                    let topic = topic.resolve(self.topics);
                    if acquired.records > 0 || acquired.bytes > 0 {
                        self.observe(Observation::ShareAcquired { topic, acquired });
                    }
                }
            }
            Summary::ShareAcknowledgeResponse { errors } => {
                self.errors(api::SHARE_ACKNOWLEDGE, errors)
            }
            Summary::ApiVersions { error } => {
                let errors = if error != 0 {
                    vec![(None, error)]
                } else {
                    Vec::new()
                };
                self.errors(api::API_VERSIONS, errors);
            }
        }
    }

    /// Report the non-zero error codes of a response, topic-level or not.
    fn errors(&mut self, api_key: i16, errors: Vec<(Option<TopicRef>, i16)>) {
        for (topic, code) in errors {
            let topic = topic.map(|t| t.resolve(self.topics));
            self.observe(Observation::Error {
                api_key,
                topic,
                code,
            });
        }
    }
}

fn same_topic(a: TopicRef, b: TopicRef, topics: &mut Topics) -> bool {
    a == b || a.resolve(topics) == b.resolve(topics)
}
