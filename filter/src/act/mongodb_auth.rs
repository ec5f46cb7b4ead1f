//! MongoDB authentication on the app's behalf for one connection, sans-IO.
//!
//! `MONGODB-X509`: the sidecar's TLS already presented the workload's certificate, but
//! mongod authenticates nothing from a certificate alone (docs/envoy-host.md). The
//! action puts one `{authenticate: 1, mechanism: "MONGODB-X509", $db: "$external"}`
//! OP_MSG before the app's first message and lets the app's bytes follow at once: mongod
//! reads a connection's messages one at a time, in order, so its reply to ours comes
//! first. The app's first message (drivers send their `hello` handshake first) is answered
//! without authentication, which mongod allows for the handshake only.
//!
//! `SCRAM-SHA-256` (a password user, the secret from the sidecar's environment): two
//! round trips, `saslStart` then `saslContinue` (and an empty one if the server wants the
//! optional third step), on the same [`Client`] as Kafka's SCRAM. The app's bytes wait in
//! VM memory (bounded by [`MAX_PENDING`]) until the exchange is done, Envoy's request
//! buffer held as for Kafka's SASL, and are then released in order.
//!
//! Every reply of ours is removed from the response stream (checked by `responseTo`): the
//! app never sees one. A reply that is not `ok`, or a server whose SCRAM signature is
//! wrong, closes the connection, counted with the server's error as reason. Messages are
//! encoded here by hand (fixed layouts on a cold path; the `bson` crate checks them in the
//! tests).

use super::action::{Action, AuthResult, Outcome, Step};
use super::sasl::{Client, Credential, Mechanism, Next, SaltedPasswords};
use crate::config::MongoDbAuthMechanism;
use crate::decode::mongodb::{binary, elements, error_name, number, OP_MSG};
use crate::wire::{mongodb::HEADER, Direction, Protocol};

/// Largest reply of ours accepted (an authentication reply is a few hundred bytes).
pub const MAX_REPLY: usize = 16 << 10;
/// App bytes kept while a SCRAM exchange runs (a driver sends one `hello` and waits).
pub const MAX_PENDING: usize = 64 << 10;
/// The requestID of our first command ("kio\0"), then +1 per command: drivers number
/// theirs from 1 upward.
pub const AUTH_REQUEST_ID: i32 = 0x6b69_6f00;

#[derive(Debug)]
enum State {
    /// Before the app's first byte.
    Start,
    /// A command of ours is sent; its reply is being collected (`reply`).
    Awaiting,
    Done,
}

/// SCRAM's part of the exchange.
#[derive(Debug)]
struct Scram {
    credential: Option<Credential>,
    nonce: Option<String>,
    database: String,
    client: Option<Client>,
    /// The server's proof checked; an empty `saslContinue` was sent for it to finish.
    verified: bool,
    /// Salted passwords, shared with the VM's other connections.
    salted: SaltedPasswords,
}

/// The filter's MongoDB authentication for one connection ([`Action`]).
#[derive(Debug)]
pub struct MongoDbAuth {
    mechanism: MongoDbAuthMechanism,
    scram: Option<Scram>,
    state: State,
    /// The requestID of the command whose reply is awaited.
    expect: i32,
    /// Bytes of our reply collected so far (its header first).
    reply: Vec<u8>,
    /// SCRAM: app bytes held until the exchange is done.
    pending: Vec<u8>,
}

impl MongoDbAuth {
    /// MONGODB-X509: the identity is the sidecar's TLS client certificate.
    pub fn x509() -> Self {
        MongoDbAuth::with(MongoDbAuthMechanism::X509, None)
    }

    /// SCRAM-SHA-256 as `credential` (None: configured, but absent from the sidecar's
    /// environment), against `database` (the users' database, `authSource`). `nonce`:
    /// SCRAM's client nonce, drawn by the caller.
    pub fn scram_sha256(
        credential: Option<Credential>,
        nonce: Option<String>,
        database: &str,
        salted: SaltedPasswords,
    ) -> Self {
        let scram = Scram {
            credential,
            nonce,
            database: database.to_string(),
            client: None,
            verified: false,
            salted,
        };
        MongoDbAuth::with(MongoDbAuthMechanism::ScramSha256, Some(scram))
    }

    fn with(mechanism: MongoDbAuthMechanism, scram: Option<Scram>) -> Self {
        MongoDbAuth {
            mechanism,
            scram,
            state: State::Start,
            expect: AUTH_REQUEST_ID,
            reply: Vec::new(),
            pending: Vec::new(),
        }
    }

    fn finish(&mut self, step: &mut Step, result: AuthResult, reason: &'static str) {
        self.state = State::Done;
        self.reply = Vec::new();
        self.scram = None;
        step.outcome = Some(self.outcome(result, reason));
        if result == AuthResult::Failure {
            self.pending = Vec::new();
            step.close = true;
        } else {
            step.release.extend(std::mem::take(&mut self.pending));
        }
    }

    /// The app's first bytes: our first command goes before them.
    fn start(&mut self, step: &mut Step) {
        let Some(scram) = self.scram.as_mut() else {
            step.inject = authenticate(self.expect);
            self.state = State::Awaiting;
            return;
        };
        let Some(credential) = scram.credential.clone() else {
            return self.finish(step, AuthResult::Skipped, "no_credential");
        };
        let Some(nonce) = scram.nonce.clone() else {
            return self.finish(step, AuthResult::Failure, "no_random_source");
        };
        let (client, first) = Client::start(Mechanism::ScramSha256, credential, &nonce);
        scram.client = Some(client.with_salted(scram.salted.clone()));
        step.inject = sasl_start(self.expect, &first, &scram.database);
        self.state = State::Awaiting;
    }

    /// Our reply's whole length, once its header is in.
    fn reply_len(&self) -> Option<usize> {
        let bytes: [u8; 4] = self.reply.get(..4)?.try_into().ok()?;
        Some(i32::from_le_bytes(bytes).max(0) as usize)
    }

    /// A complete reply of ours: the exchange's next step.
    fn judge(&mut self, step: &mut Step) {
        let reply = std::mem::take(&mut self.reply);
        let Some(fields) = Reply::read(&reply) else {
            return self.finish(step, AuthResult::Failure, "bad_reply");
        };
        if fields.response_to != self.expect {
            return self.finish(step, AuthResult::Failure, "unexpected_reply");
        }
        if !fields.ok {
            let reason = fields
                .code
                .map_or("not_ok", |code| error_name(code).unwrap_or("error"));
            return self.finish(step, AuthResult::Failure, reason);
        }
        let Some(scram) = self.scram.as_mut() else {
            return self.finish(step, AuthResult::Success, "ok");
        };
        if scram.verified {
            return match fields.done {
                true => self.finish(step, AuthResult::Success, "ok"),
                false => self.finish(step, AuthResult::Failure, "exchange_too_long"),
            };
        }
        let next = match scram.client.as_mut() {
            Some(client) => client.on_server(fields.payload),
            None => return self.finish(step, AuthResult::Failure, "unexpected_reply"),
        };
        let answer = match (next, fields.done) {
            (Err(e), _) => return self.finish(step, AuthResult::Failure, e.reason()),
            (Ok(Next::Done), true) => return self.finish(step, AuthResult::Success, "ok"),
            // The server's proof is checked; it wants the optional empty step.
            (Ok(Next::Done), false) => {
                scram.verified = true;
                Vec::new()
            }
            (Ok(Next::Send(message)), _) => message,
        };
        self.expect += 1;
        let conversation = fields.conversation_id.unwrap_or(1);
        step.inject = sasl_continue(self.expect, conversation, &answer, &scram.database);
    }
}

/// The fields of a reply of ours.
struct Reply<'a> {
    response_to: i32,
    ok: bool,
    code: Option<i32>,
    done: bool,
    conversation_id: Option<i32>,
    payload: &'a [u8],
}

impl<'a> Reply<'a> {
    /// An OP_MSG whose first section is the reply document.
    fn read(message: &'a [u8]) -> Option<Reply<'a>> {
        let int = |at: usize| -> Option<i32> {
            Some(i32::from_le_bytes(
                message.get(at..at + 4)?.try_into().ok()?,
            ))
        };
        if int(12)? != OP_MSG || *message.get(20)? != 0 {
            return None;
        }
        let mut reply = Reply {
            response_to: int(8)?,
            ok: false,
            code: None,
            done: false,
            conversation_id: None,
            payload: &[],
        };
        for (name, kind, value) in elements(message.get(21..)?) {
            match name {
                b"ok" => reply.ok = number(kind, value).is_some_and(|v| v != 0.0),
                b"code" => reply.code = number(kind, value).map(|v| v as i32),
                b"done" => reply.done = number(kind, value).is_some_and(|v| v != 0.0),
                b"conversationId" => reply.conversation_id = number(kind, value).map(|v| v as i32),
                b"payload" => reply.payload = binary(kind, value).unwrap_or(&[]),
                _ => {}
            }
        }
        Some(reply)
    }
}

impl Action for MongoDbAuth {
    fn outcome(&self, result: AuthResult, reason: &'static str) -> Outcome {
        Outcome {
            protocol: Protocol::MongoDb,
            mechanism: self.mechanism.name(),
            result,
            reason,
        }
    }

    fn on_data(
        &mut self,
        direction: Direction,
        size: usize,
        read: &mut dyn FnMut(usize, usize) -> Option<Vec<u8>>,
    ) -> Step {
        let mut step = Step::default();
        if size == 0 || matches!(self.state, State::Done) {
            return step;
        }
        if direction == Direction::Request {
            if matches!(self.state, State::Start) {
                self.start(&mut step);
            }
            // SCRAM holds the app's bytes until the exchange is done.
            if self.scram.is_some() && matches!(self.state, State::Awaiting) {
                step.take = size;
                step.hold = true;
                match read(0, size) {
                    Some(bytes) if self.pending.len() + bytes.len() <= MAX_PENDING => {
                        self.pending.extend_from_slice(&bytes)
                    }
                    Some(_) => self.finish(&mut step, AuthResult::Failure, "client_sent_too_much"),
                    None => self.finish(&mut step, AuthResult::Failure, "buffer_unreadable"),
                }
            }
            return step;
        }
        if !matches!(self.state, State::Awaiting) {
            return step;
        }
        // Collect our reply off the front of the response stream: its header, then the
        // rest of its length. Bytes after it are the app's.
        let mut at = 0;
        while at < size && matches!(self.state, State::Awaiting) && step.inject.is_empty() {
            let want = match self.reply_len() {
                None => 4 - self.reply.len(),
                Some(len) => len - self.reply.len(),
            };
            let Some(bytes) = read(at, want.min(size - at)).filter(|b| !b.is_empty()) else {
                // Envoy would not hand the bytes over: nothing can be judged.
                self.finish(&mut step, AuthResult::Failure, "buffer_unreadable");
                break;
            };
            at += bytes.len();
            self.reply.extend_from_slice(&bytes);
            match self.reply_len() {
                Some(len) if !(HEADER as usize..=MAX_REPLY).contains(&len) => {
                    self.finish(&mut step, AuthResult::Failure, "bad_reply");
                }
                Some(len) if self.reply.len() == len => self.judge(&mut step),
                _ => {}
            }
        }
        if matches!(self.state, State::Awaiting) && at < size && !step.inject.is_empty() {
            // A server speaking before our next command: not an exchange we know.
            self.finish(&mut step, AuthResult::Failure, "unexpected_reply");
        }
        step.take = if step.close { size } else { at };
        step
    }

    fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn on_close(&mut self) -> Option<Outcome> {
        match self.state {
            State::Awaiting => {
                self.state = State::Done;
                Some(self.outcome(AuthResult::Failure, "closed_during_exchange"))
            }
            _ => None,
        }
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.reply.capacity() + self.pending.capacity()
    }
}

/// A BSON value of the few kinds our commands carry.
enum Bson<'a> {
    Int32(i32),
    Str(&'a str),
    Binary(&'a [u8]),
    Bool(bool),
    Document(&'a [(&'a str, Bson<'a>)]),
}

fn write_document(out: &mut Vec<u8>, elements: &[(&str, Bson)]) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    for (name, value) in elements {
        let kind = match value {
            Bson::Int32(_) => 0x10,
            Bson::Str(_) => 0x02,
            Bson::Binary(_) => 0x05,
            Bson::Bool(_) => 0x08,
            Bson::Document(_) => 0x03,
        };
        out.push(kind);
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        match value {
            Bson::Int32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Bson::Str(v) => {
                out.extend_from_slice(&(v.len() as i32 + 1).to_le_bytes());
                out.extend_from_slice(v.as_bytes());
                out.push(0);
            }
            Bson::Binary(v) => {
                out.extend_from_slice(&(v.len() as i32).to_le_bytes());
                out.push(0); // generic subtype
                out.extend_from_slice(v);
            }
            Bson::Bool(v) => out.push(u8::from(*v)),
            Bson::Document(v) => write_document(out, v),
        }
    }
    out.push(0);
    let len = (out.len() - start) as i32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// An OP_MSG with `request_id` whose one section is the command `elements`.
fn command(request_id: i32, elements: &[(&str, Bson)]) -> Vec<u8> {
    let mut message = Vec::with_capacity(128);
    message.extend_from_slice(&[0; 4]);
    message.extend_from_slice(&request_id.to_le_bytes());
    message.extend_from_slice(&0i32.to_le_bytes());
    message.extend_from_slice(&OP_MSG.to_le_bytes());
    message.extend_from_slice(&0u32.to_le_bytes()); // flagBits
    message.push(0); // section kind 0: the command document
    write_document(&mut message, elements);
    let len = message.len() as i32;
    message[..4].copy_from_slice(&len.to_le_bytes());
    message
}

/// `{authenticate: 1, mechanism: "MONGODB-X509", $db: "$external"}`.
pub fn authenticate(request_id: i32) -> Vec<u8> {
    command(
        request_id,
        &[
            ("authenticate", Bson::Int32(1)),
            ("mechanism", Bson::Str(MongoDbAuthMechanism::X509.name())),
            ("$db", Bson::Str("$external")),
        ],
    )
}

/// SCRAM-SHA-256's first message in `saslStart`, asking to skip the empty last step.
pub fn sasl_start(request_id: i32, payload: &[u8], database: &str) -> Vec<u8> {
    let options = [("skipEmptyExchange", Bson::Bool(true))];
    command(
        request_id,
        &[
            ("saslStart", Bson::Int32(1)),
            (
                "mechanism",
                Bson::Str(MongoDbAuthMechanism::ScramSha256.name()),
            ),
            ("payload", Bson::Binary(payload)),
            ("autoAuthorize", Bson::Int32(1)),
            ("options", Bson::Document(&options)),
            ("$db", Bson::Str(database)),
        ],
    )
}

/// The next SCRAM message of `conversation` in `saslContinue`.
pub fn sasl_continue(
    request_id: i32,
    conversation: i32,
    payload: &[u8],
    database: &str,
) -> Vec<u8> {
    command(
        request_id,
        &[
            ("saslContinue", Bson::Int32(1)),
            ("conversationId", Bson::Int32(conversation)),
            ("payload", Bson::Binary(payload)),
            ("$db", Bson::Str(database)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::mongodb::test_messages::op_msg;
    use bson::doc;

    use crate::act::sasl::Credential;
    use crate::decode::mongodb::Walker;

    fn feed(auth: &mut MongoDbAuth, direction: Direction, bytes: &[u8]) -> Step {
        auth.on_data(direction, bytes.len(), &mut |at, len| {
            bytes.get(at..at + len).map(<[u8]>::to_vec)
        })
    }

    #[test]
    fn our_command_is_the_documented_one() {
        let message = authenticate(AUTH_REQUEST_ID);
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
            let mut auth = MongoDbAuth::x509();
            let hello = b"the app's first message";
            let step = feed(&mut auth, Direction::Request, hello);
            assert_eq!(step.inject, authenticate(AUTH_REQUEST_ID));
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
            assert_eq!(outcome.map(|o| o.result), Some(AuthResult::Success));
            assert!(auth.is_done());
        }
    }

    #[test]
    fn a_refusal_closes_the_connection_and_says_why() {
        let refused = doc! {
            "ok": 0.0, "errmsg": "no user", "code": 18, "codeName": "AuthenticationFailed",
        };
        let reply = op_msg(9, AUTH_REQUEST_ID, &refused, None, false);
        let mut auth = MongoDbAuth::x509();
        feed(&mut auth, Direction::Request, b"hello");
        let stream = [reply, op_msg(10, 1, &doc! { "ok": 1 }, None, false)].concat();
        let step = feed(&mut auth, Direction::Response, &stream);
        assert!(step.close);
        assert_eq!(step.take, stream.len(), "nothing reaches the app");
        let o = step.outcome.unwrap();
        assert_eq!(
            (o.result, o.reason, o.mechanism),
            (AuthResult::Failure, "AuthenticationFailed", "MONGODB-X509")
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
            let mut auth = MongoDbAuth::x509();
            feed(&mut auth, Direction::Request, b"hello");
            let step = feed(&mut auth, Direction::Response, bytes);
            assert!(step.close, "{reason}");
            assert_eq!(step.outcome.map(|o| o.reason), Some(reason));
        }
        let mut auth = MongoDbAuth::x509();
        feed(&mut auth, Direction::Request, b"hello");
        feed(&mut auth, Direction::Response, &[30, 0]);
        let o = auth.on_close().unwrap();
        assert_eq!(
            (o.result, o.reason),
            (AuthResult::Failure, "closed_during_exchange")
        );
        assert!(auth.on_close().is_none());
    }

    // RFC 7677's example exchange (user "user", password "pencil").
    const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn scram() -> MongoDbAuth {
        let credential = Credential {
            username: "user".into(),
            password: "pencil".into(),
        };
        MongoDbAuth::scram_sha256(
            Some(credential),
            Some(NONCE.into()),
            "admin",
            Default::default(),
        )
    }

    fn server(to: i32, done: bool, payload: &str) -> Vec<u8> {
        let payload = bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic,
            bytes: payload.as_bytes().to_vec(),
        };
        let reply = doc! { "conversationId": 1, "done": done, "payload": payload, "ok": 1.0 };
        op_msg(7, to, &reply, None, false)
    }

    fn command_doc(message: &[u8]) -> bson::Document {
        bson::Document::from_reader(&message[21..]).unwrap()
    }

    #[test]
    fn scram_sha256_holds_the_app_until_the_server_proved_itself() {
        for optional_step in [false, true] {
            let mut auth = scram();
            let hello = b"the app's hello";
            let step = feed(&mut auth, Direction::Request, hello);
            assert_eq!((step.take, step.hold), (hello.len(), true));
            let start = command_doc(&step.inject);
            assert_eq!(start.get_i32("saslStart").unwrap(), 1);
            assert_eq!(start.get_str("mechanism").unwrap(), "SCRAM-SHA-256");
            assert_eq!(start.get_str("$db").unwrap(), "admin");
            let first = start.get_binary_generic("payload").unwrap();
            assert_eq!(first, format!("n,,n=user,r={NONCE}").as_bytes());
            assert!(start
                .get_document("options")
                .unwrap()
                .get_bool("skipEmptyExchange")
                .unwrap());
            // More app bytes wait too.
            let step = feed(&mut auth, Direction::Request, b" and more");
            assert!(step.hold && step.inject.is_empty() && step.release.is_empty());

            let step = feed(
                &mut auth,
                Direction::Response,
                &server(AUTH_REQUEST_ID, false, SERVER_FIRST),
            );
            let next = command_doc(&step.inject);
            assert_eq!(next.get_i32("conversationId").unwrap(), 1);
            assert_eq!(
                next.get_binary_generic("payload").unwrap(),
                CLIENT_FINAL.as_bytes()
            );
            assert!(step.release.is_empty() && !step.close);

            let step = feed(
                &mut auth,
                Direction::Response,
                &server(AUTH_REQUEST_ID + 1, !optional_step, SERVER_FINAL),
            );
            let step = if optional_step {
                let empty = command_doc(&step.inject);
                assert!(empty.get_binary_generic("payload").unwrap().is_empty());
                feed(
                    &mut auth,
                    Direction::Response,
                    &server(AUTH_REQUEST_ID + 2, true, ""),
                )
            } else {
                step
            };
            assert_eq!(step.release, b"the app's hello and more");
            assert_eq!(
                step.outcome.map(|o| (o.result, o.mechanism)),
                Some((AuthResult::Success, "SCRAM-SHA-256"))
            );
            assert!(auth.is_done());
        }
    }

    #[test]
    fn scram_sha256_refusals_close_and_say_why() {
        let wrong_signature = "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let refused = op_msg(
            7,
            AUTH_REQUEST_ID,
            &doc! { "ok": 0.0, "code": 18 },
            None,
            false,
        );
        for (replies, reason) in [
            (vec![refused], "AuthenticationFailed"),
            (
                vec![
                    server(AUTH_REQUEST_ID, false, SERVER_FIRST),
                    server(AUTH_REQUEST_ID + 1, true, wrong_signature),
                ],
                "bad_server_signature",
            ),
            (
                vec![server(
                    AUTH_REQUEST_ID,
                    false,
                    "r=someone-else,s=c2FsdA==,i=4096",
                )],
                "nonce_mismatch",
            ),
        ] {
            let mut auth = scram();
            feed(&mut auth, Direction::Request, b"hello");
            let mut last = Step::default();
            for reply in &replies {
                last = feed(&mut auth, Direction::Response, reply);
            }
            assert!(last.close, "{reason}");
            assert!(
                last.release.is_empty(),
                "{reason}: no app byte reaches the server"
            );
            assert_eq!(last.outcome.map(|o| o.reason), Some(reason));
        }
        let mut nobody =
            MongoDbAuth::scram_sha256(None, Some(NONCE.into()), "admin", Default::default());
        let step = feed(&mut nobody, Direction::Request, b"hello");
        assert_eq!(
            step.outcome.map(|o| (o.result, o.reason)),
            Some((AuthResult::Skipped, "no_credential"))
        );
        assert!(!step.hold && step.take == 0 && nobody.is_done());
        let mut flood = scram();
        let step = feed(&mut flood, Direction::Request, &vec![0; MAX_PENDING + 1]);
        assert!(step.close);
    }
}
