//! MongoDB authentication on the app's behalf for one connection, sans-IO.
//!
//! `MONGODB-X509`: the sidecar's TLS already presented the workload's certificate, but
//! mongod authenticates nothing from a certificate alone (DESIGN.md section 8). The
//! action puts one `{authenticate: 1, mechanism: "MONGODB-X509", $db: "$external"}`
//! OP_MSG before the app's first message and lets the app's bytes follow at once: mongod
//! reads a connection's messages one at a time, in order, so its reply to ours comes
//! first. That reply is removed from the response stream (checked by `responseTo`), the
//! app never sees it; if it is not `ok` the connection is closed and counted, with the
//! server's error as reason. The app's first message (drivers send their `hello`
//! handshake first) was answered without authentication, which mongod allows for the
//! handshake only. The message is encoded here by hand (one fixed layout on a cold path;
//! the `bson` crate checks it in the tests).

use super::action::{Action, Outcome, Step};
use crate::config::MongoDbAuthMechanism;
use crate::decode::mongodb::{error_name, Walker, OP_MSG};
use crate::wire::{mongodb::HEADER, Direction, Protocol};

/// Largest reply of ours accepted (an authenticate reply is under a hundred bytes).
pub const MAX_REPLY: usize = 16 << 10;
/// The requestID of our command ("kio\0"): drivers number theirs from 1 upward.
pub const AUTH_REQUEST_ID: i32 = 0x6b69_6f00;

#[derive(Debug)]
enum State {
    /// Before the app's first byte.
    Start,
    /// Our command is sent; its reply is being collected (`reply`).
    Awaiting,
    Done,
}

/// The filter's MongoDB authentication for one connection ([`Action`]).
#[derive(Debug)]
pub struct MongoDbAuth {
    mechanism: MongoDbAuthMechanism,
    state: State,
    /// Bytes of our reply collected so far (its header first).
    reply: Vec<u8>,
}

impl MongoDbAuth {
    pub fn new(mechanism: MongoDbAuthMechanism) -> Self {
        MongoDbAuth {
            mechanism,
            state: State::Start,
            reply: Vec::new(),
        }
    }

    fn outcome(&self, result: &'static str, reason: &'static str) -> Outcome {
        Outcome {
            protocol: Protocol::MongoDb,
            mechanism: self.mechanism.name(),
            result,
            reason,
        }
    }

    fn finish(&mut self, step: &mut Step, result: &'static str, reason: &'static str) {
        self.state = State::Done;
        self.reply = Vec::new();
        step.outcome = Some(self.outcome(result, reason));
        if result == "failure" {
            step.close = true;
        }
    }

    /// Our reply's whole length, once its header is in.
    fn reply_len(&self) -> Option<usize> {
        let bytes: [u8; 4] = self.reply.get(..4)?.try_into().ok()?;
        Some(i32::from_le_bytes(bytes).max(0) as usize)
    }

    /// A complete reply: ours, and ok?
    fn judge(&mut self, step: &mut Step) {
        let mut walker = Walker::new(false, (self.reply.len() - 4) as u32);
        let read = walker.feed(&self.reply[4..]);
        let summary = &walker.summary;
        let reason = match (read, summary.response_to, summary.ok) {
            (Err(_), ..) => "bad_reply",
            (_, to, _) if to != AUTH_REQUEST_ID => "unexpected_reply",
            (_, _, Some(true)) => return self.finish(step, "success", "ok"),
            (_, _, _) => summary
                .code
                .map_or("not_ok", |code| error_name(code).unwrap_or("error")),
        };
        self.finish(step, "failure", reason);
    }
}

impl Action for MongoDbAuth {
    fn on_data(
        &mut self,
        direction: Direction,
        size: usize,
        read: &mut dyn FnMut(usize, usize) -> Option<Vec<u8>>,
    ) -> Step {
        let mut step = Step::default();
        match (&self.state, direction) {
            (State::Start, Direction::Request) if size > 0 => {
                step.inject = authenticate(self.mechanism);
                self.state = State::Awaiting;
            }
            (State::Awaiting, Direction::Response) => {
                // Collect our reply off the front of the response stream: its header,
                // then the rest of its length. Bytes after it are the app's.
                let mut at = 0;
                while at < size && !self.is_done() {
                    let want = match self.reply_len() {
                        None => 4 - self.reply.len(),
                        Some(len) => len - self.reply.len(),
                    };
                    let Some(bytes) = read(at, want.min(size - at)).filter(|b| !b.is_empty())
                    else {
                        // Envoy would not hand the bytes over: nothing can be judged.
                        self.finish(&mut step, "failure", "buffer_unreadable");
                        break;
                    };
                    at += bytes.len();
                    self.reply.extend_from_slice(&bytes);
                    match self.reply_len() {
                        Some(len) if !(HEADER as usize..=MAX_REPLY).contains(&len) => {
                            self.finish(&mut step, "failure", "bad_reply");
                        }
                        Some(len) if self.reply.len() == len => self.judge(&mut step),
                        _ => {}
                    }
                }
                step.take = if step.close { size } else { at };
            }
            _ => {}
        }
        step
    }

    fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn on_close(&mut self) -> Option<Outcome> {
        match self.state {
            State::Awaiting => {
                self.state = State::Done;
                Some(self.outcome("failure", "closed_during_exchange"))
            }
            _ => None,
        }
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.reply.capacity()
    }
}

/// Our `authenticate` command, as an OP_MSG: `{authenticate: 1, mechanism: <name>,
/// $db: "$external"}`.
pub fn authenticate(mechanism: MongoDbAuthMechanism) -> Vec<u8> {
    let mut doc = Vec::with_capacity(80);
    doc.extend_from_slice(&[0; 4]);
    bson_int32(&mut doc, "authenticate", 1);
    bson_string(&mut doc, "mechanism", mechanism.name());
    bson_string(&mut doc, "$db", "$external");
    doc.push(0);
    let doc_len = doc.len() as i32;
    doc[..4].copy_from_slice(&doc_len.to_le_bytes());
    let mut message = Vec::with_capacity(HEADER as usize + 5 + doc.len());
    let total = HEADER as i32 + 5 + doc_len;
    message.extend_from_slice(&total.to_le_bytes());
    message.extend_from_slice(&AUTH_REQUEST_ID.to_le_bytes());
    message.extend_from_slice(&0i32.to_le_bytes());
    message.extend_from_slice(&OP_MSG.to_le_bytes());
    message.extend_from_slice(&0u32.to_le_bytes()); // flagBits
    message.push(0); // section kind 0: the command document
    message.extend_from_slice(&doc);
    message
}

fn bson_int32(doc: &mut Vec<u8>, name: &str, value: i32) {
    doc.push(0x10);
    doc.extend_from_slice(name.as_bytes());
    doc.push(0);
    doc.extend_from_slice(&value.to_le_bytes());
}

fn bson_string(doc: &mut Vec<u8>, name: &str, value: &str) {
    doc.push(0x02);
    doc.extend_from_slice(name.as_bytes());
    doc.push(0);
    doc.extend_from_slice(&(value.len() as i32 + 1).to_le_bytes());
    doc.extend_from_slice(value.as_bytes());
    doc.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::mongodb::test_messages::op_msg;
    use bson::doc;

    const X509: MongoDbAuthMechanism = MongoDbAuthMechanism::X509;

    fn feed(auth: &mut MongoDbAuth, direction: Direction, bytes: &[u8]) -> Step {
        auth.on_data(direction, bytes.len(), &mut |at, len| {
            bytes.get(at..at + len).map(<[u8]>::to_vec)
        })
    }

    #[test]
    fn our_command_is_the_documented_one() {
        let message = authenticate(X509);
        let doc = bson::Document::from_reader(&message[21..]).unwrap();
        assert_eq!(
            doc,
            doc! { "authenticate": 1, "mechanism": "MONGODB-X509", "$db": "$external" }
        );
        let mut walker = Walker::new(true, message.len() as u32 - 4);
        walker.feed(&message[4..]).unwrap();
        assert!(walker.is_done());
        assert_eq!(walker.summary.command, Some("authenticate"));
        assert_eq!(walker.summary.request_id, AUTH_REQUEST_ID);
    }

    #[test]
    fn prepends_then_removes_an_ok_reply_at_every_cut() {
        let ours = op_msg(
            9,
            AUTH_REQUEST_ID,
            &doc! { "user": "CN=a", "ok": 1.0 },
            None,
            false,
        );
        let app = op_msg(
            10,
            1,
            &doc! { "isWritablePrimary": true, "ok": 1.0 },
            None,
            false,
        );
        let stream = [ours.clone(), app.clone()].concat();
        for cut in 0..stream.len() {
            let mut auth = MongoDbAuth::new(X509);
            let hello = b"the app's first message";
            let step = feed(&mut auth, Direction::Request, hello);
            assert_eq!(step.inject, authenticate(X509));
            assert_eq!((step.take, step.hold, step.close), (0, false, false));
            let mut passed = Vec::new();
            let mut outcome = None;
            for chunk in [&stream[..cut], &stream[cut..]] {
                let step = feed(&mut auth, Direction::Response, chunk);
                assert!(!step.close && step.inject.is_empty());
                passed.extend_from_slice(&chunk[step.take.min(chunk.len())..]);
                outcome = outcome.or(step.outcome);
                if auth.is_done() {
                    assert_eq!(auth.memory_bytes(), std::mem::size_of::<MongoDbAuth>());
                }
            }
            assert_eq!(passed, app, "cut {cut}");
            assert_eq!(outcome.map(|o| o.result), Some("success"));
            assert!(auth.is_done());
        }
    }

    #[test]
    fn a_refusal_closes_the_connection_and_says_why() {
        let refused = doc! {
            "ok": 0.0, "errmsg": "no user", "code": 18, "codeName": "AuthenticationFailed",
        };
        let reply = op_msg(9, AUTH_REQUEST_ID, &refused, None, false);
        let mut auth = MongoDbAuth::new(X509);
        feed(&mut auth, Direction::Request, b"hello");
        let stream = [reply, op_msg(10, 1, &doc! { "ok": 1 }, None, false)].concat();
        let step = feed(&mut auth, Direction::Response, &stream);
        assert!(step.close);
        assert_eq!(step.take, stream.len(), "nothing reaches the app");
        let o = step.outcome.unwrap();
        assert_eq!(
            (o.result, o.reason, o.mechanism),
            ("failure", "AuthenticationFailed", "MONGODB-X509")
        );
        assert_eq!(o.protocol, Protocol::MongoDb);
    }

    #[test]
    fn replies_that_are_not_ours_or_not_mongodb_fail() {
        let cases: [(&[u8], &str); 3] = [
            (
                &op_msg(9, 77, &doc! { "ok": 1.0 }, None, false),
                "unexpected_reply",
            ),
            (&[0xff, 0xff, 0xff, 0x7f, 1, 2, 3], "bad_reply"),
            (&[3, 0, 0, 0], "bad_reply"),
        ];
        for (bytes, reason) in cases {
            let mut auth = MongoDbAuth::new(X509);
            feed(&mut auth, Direction::Request, b"hello");
            let step = feed(&mut auth, Direction::Response, bytes);
            assert!(step.close, "{reason}");
            assert_eq!(step.outcome.map(|o| o.reason), Some(reason));
        }
        let mut auth = MongoDbAuth::new(X509);
        feed(&mut auth, Direction::Request, b"hello");
        feed(&mut auth, Direction::Response, &[30, 0]);
        let o = auth.on_close().unwrap();
        assert_eq!((o.result, o.reason), ("failure", "closed_during_exchange"));
        assert!(auth.on_close().is_none());
    }
}
