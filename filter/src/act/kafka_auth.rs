//! SASL on the app's behalf for one Kafka connection: an explicit state machine over the
//! bytes of both directions, sans-IO.
//!
//! What Kafka's `SaslServerAuthenticator` allows (docs/envoy-host.md): ApiVersions
//! before SaslHandshake, then only SaslAuthenticate until done, one request at a time;
//! bytes after wait and are then served. So:
//!
//! - `Undecided`: the app's ApiVersions requests pass (and their responses, counted so
//!   that ours never interleave with them). The first other request decides: a
//!   SaslHandshake or SaslAuthenticate means the app does its own SASL and everything
//!   passes untouched from then on; anything else starts our exchange.
//! - `Exchanging`: SaslHandshake and the first SaslAuthenticate go to the broker
//!   (pipelined); each SaslAuthenticate response is answered by the mechanism until it is
//!   done. The app's bytes wait in VM memory (bounded by [`MAX_PENDING`]) and every
//!   response is ours, removed before the app or the observer could see it.
//! - `Done`: on success the app's bytes are released, in order, and the action is inert;
//!   on failure the connection is closed and nothing of the app's reached the broker.
//!
//! While the action is not done, every request byte is taken into its memory and
//! re-emitted ([`Step::release`]) when it may pass, and Envoy's request buffer is held:
//! that keeps it reachable from a response callback, which is where our next SASL
//! message is written. The request messages are encoded here by hand (three fixed
//! layouts on a cold path; `kafka-protocol` checks them in the tests).

use super::action::{Action, AuthResult, Outcome, Step};
use super::sasl::{Client, Credential, Mechanism, Next, SaltedPasswords};
use crate::decode::kafka::tables::error_name;
use crate::wire::{Direction, Protocol};

/// App bytes kept while the exchange runs; a client that sends more before it has any
/// answer is not a Kafka client we can serve (the connection is closed and counted).
///
/// A Kafka client takes the connection as ready once ApiVersions is answered, and the
/// exchange starts only at its next request: whatever it pipelines during our round trips
/// waits here. The Java producer pipelines up to `max.in.flight.requests.per.connection`
/// (5) requests of up to `max.request.size` (1 MiB): 5 MiB. 64 KiB was too little: a Java
/// producer at 200 records/s of 512 bytes, its first batches queued while its JVM warmed
/// up, sent more than that before a SCRAM exchange through TLS ended (measured in the local
/// mesh's external Kafka, `kafka_auth_total{reason="client_sent_too_much"}`; the client
/// reconnected, a burstier one would fail every time). The memory is held only during the
/// exchange, once per connection.
pub const MAX_PENDING: usize = 8 << 20;
/// Largest response of ours accepted (a SaslAuthenticate response carries a few hundred
/// bytes).
pub const MAX_RESPONSE: usize = 64 << 10;

const API_SASL_HANDSHAKE: i16 = 17;
const API_API_VERSIONS: i16 = 18;
const API_SASL_AUTHENTICATE: i16 = 36;
/// Correlation ids of our requests: the app's responses never interleave with ours, the
/// ids only let us check that a response is the one we wait for.
const HANDSHAKE_ID: i32 = 0x6b69_6f00; // "kio\0"
const CLIENT_ID: &[u8] = b"kiosk";

enum State {
    Undecided,
    Exchanging {
        client: Client,
        expect: Expect,
        /// Correlation id of the next SaslAuthenticate request.
        next_id: i32,
    },
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Handshake,
    Authenticate(i32),
}

/// The filter's SASL for one connection ([`Action`]).
pub struct KafkaAuth {
    mechanism: Mechanism,
    /// None: configured, but the sidecar has no credential (counted once per connection).
    credential: Option<Credential>,
    nonce: Option<String>,
    state: State,
    /// App request bytes taken and not yet released.
    pending: Vec<u8>,
    /// App requests passed while undecided whose responses are still to come.
    outstanding: usize,
    /// Response bytes of the current frame already passed (undecided) or collected (ours).
    response: Vec<u8>,
    /// Undecided: body bytes of the current app response still to pass.
    response_left: usize,
    /// SCRAM's salted passwords, shared with the VM's other connections.
    salted: SaltedPasswords,
}

impl KafkaAuth {
    /// An action for one connection. `nonce`: SCRAM's client nonce, drawn by the caller
    /// (None: no random source, which fails a SCRAM exchange).
    pub fn new(
        mechanism: Mechanism,
        credential: Option<Credential>,
        nonce: Option<String>,
    ) -> Self {
        KafkaAuth {
            mechanism,
            credential,
            nonce,
            state: State::Undecided,
            pending: Vec::new(),
            outstanding: 0,
            response: Vec::new(),
            response_left: 0,
            salted: SaltedPasswords::default(),
        }
    }

    /// Share SCRAM's salted passwords with the VM's other connections.
    pub fn with_salted(mut self, salted: SaltedPasswords) -> Self {
        self.salted = salted;
        self
    }

    /// Ends the exchange in failure: nothing pending is sent, the connection closes.
    fn fail(&mut self, step: &mut Step, reason: &'static str) {
        self.state = State::Done;
        self.pending = Vec::new();
        self.response = Vec::new();
        step.close = true;
        step.outcome = Some(self.outcome(AuthResult::Failure, reason));
    }

    /// Ends the action letting everything pending pass; it keeps no memory after.
    fn pass_all(&mut self, step: &mut Step) {
        self.state = State::Done;
        step.release.extend(std::mem::take(&mut self.pending));
        if self.response.is_empty() {
            self.response = Vec::new();
        }
    }

    /// Undecided: release the app's leading ApiVersions requests, then decide on the next.
    fn decide(&mut self, step: &mut Step) {
        loop {
            let Some((size, api_key)) = request_head(&self.pending) else {
                return;
            };
            match api_key {
                API_SASL_HANDSHAKE | API_SASL_AUTHENTICATE => {
                    step.outcome = Some(self.outcome(AuthResult::Skipped, "client_sasl"));
                    return self.pass_all(step);
                }
                API_API_VERSIONS if self.pending.len() >= size => {
                    step.release.extend(self.pending.drain(..size));
                    self.outstanding += 1;
                }
                // An ApiVersions request still arriving.
                API_API_VERSIONS => return,
                // Our exchange waits until the app's earlier requests are answered.
                _ if self.outstanding > 0 => return,
                _ => return self.start(step),
            }
        }
    }

    fn start(&mut self, step: &mut Step) {
        let Some(credential) = self.credential.clone() else {
            step.outcome = Some(self.outcome(AuthResult::Skipped, "no_credential"));
            return self.pass_all(step);
        };
        let nonce = match (self.mechanism, &self.nonce) {
            (Mechanism::Plain, _) => String::new(),
            (_, Some(nonce)) => nonce.clone(),
            (_, None) => return self.fail(step, "no_random_source"),
        };
        let (client, first) = Client::start(self.mechanism, credential, &nonce);
        let client = client.with_salted(self.salted.clone());
        step.inject
            .extend(handshake_request(HANDSHAKE_ID, self.mechanism.name()));
        step.inject
            .extend(authenticate_request(HANDSHAKE_ID + 1, &first));
        self.state = State::Exchanging {
            client,
            expect: Expect::Handshake,
            next_id: HANDSHAKE_ID + 2,
        };
    }

    /// Undecided: the app's responses pass; count the ones that complete.
    fn count_responses(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.response_left > 0 {
                let n = self.response_left.min(rest.len());
                self.response_left -= n;
                rest = &rest[n..];
                if self.response_left == 0 {
                    self.outstanding = self.outstanding.saturating_sub(1);
                }
                continue;
            }
            let need = 4 - self.response.len();
            let n = need.min(rest.len());
            self.response.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.response.len() == 4 {
                let size = i32::from_be_bytes([
                    self.response[0],
                    self.response[1],
                    self.response[2],
                    self.response[3],
                ]);
                self.response.clear();
                self.response_left = usize::try_from(size).unwrap_or(0);
                if self.response_left == 0 {
                    self.outstanding = self.outstanding.saturating_sub(1);
                }
            }
        }
    }

    /// Exchanging: our responses, collected whole and answered in order.
    fn on_ours(&mut self, bytes: &[u8], step: &mut Step) {
        self.response.extend_from_slice(bytes);
        loop {
            if !matches!(self.state, State::Exchanging { .. }) {
                if !std::mem::take(&mut self.response).is_empty() {
                    // Bytes after our last response, before the app's bytes were sent.
                    step.release.clear();
                    return self.fail(step, "unexpected_response");
                }
                return;
            }
            if self.response.len() > MAX_RESPONSE + 4 {
                return self.fail(step, "response_too_large");
            }
            let Some(size) = frame_size(&self.response) else {
                return;
            };
            if size > MAX_RESPONSE {
                return self.fail(step, "response_too_large");
            }
            if self.response.len() < 4 + size {
                return;
            }
            let frame: Vec<u8> = self.response.drain(..4 + size).skip(4).collect();
            self.on_response(&frame, step);
        }
    }

    fn on_response(&mut self, frame: &[u8], step: &mut Step) {
        let State::Exchanging {
            client,
            expect,
            next_id,
        } = &mut self.state
        else {
            return;
        };
        let mut r = Reader(frame);
        let expected_id = match *expect {
            Expect::Handshake => HANDSHAKE_ID,
            Expect::Authenticate(id) => id,
        };
        if r.i32() != Some(expected_id) {
            return self.fail(step, "unexpected_response");
        }
        match *expect {
            Expect::Handshake => match r.i16() {
                Some(0) => *expect = Expect::Authenticate(HANDSHAKE_ID + 1),
                Some(code) => self.fail(step, error_reason(code)),
                None => self.fail(step, "malformed_response"),
            },
            Expect::Authenticate(_) => {
                let (Some(code), Some(_message), Some(bytes)) = (r.i16(), r.string(), r.bytes())
                else {
                    return self.fail(step, "malformed_response");
                };
                if code != 0 {
                    return self.fail(step, error_reason(code));
                }
                match client.on_server(bytes) {
                    Ok(Next::Send(message)) => {
                        step.inject.extend(authenticate_request(*next_id, &message));
                        *expect = Expect::Authenticate(*next_id);
                        *next_id = next_id.wrapping_add(1);
                    }
                    Ok(Next::Done) => {
                        step.outcome = Some(self.outcome(AuthResult::Success, "ok"));
                        self.pass_all(step);
                    }
                    Err(e) => self.fail(step, e.reason()),
                }
            }
        }
    }
}

impl Action for KafkaAuth {
    fn outcome(&self, result: AuthResult, reason: &'static str) -> Outcome {
        Outcome {
            protocol: Protocol::Kafka,
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
        if matches!(self.state, State::Done) || size == 0 {
            return step;
        }
        let bytes = match read(0, size) {
            Some(bytes) if bytes.len() == size => bytes,
            // The host refused the read: act on nothing rather than on a part.
            _ => {
                self.fail(&mut step, "buffer_unreadable");
                return step;
            }
        };
        match direction {
            Direction::Request => {
                // Every request byte is taken; what may pass comes back as `release`.
                step.take = size;
                step.hold = true;
                if self.pending.len() + bytes.len() > MAX_PENDING {
                    self.fail(&mut step, "client_sent_too_much");
                    return step;
                }
                self.pending.extend_from_slice(&bytes);
                if matches!(self.state, State::Undecided) {
                    self.decide(&mut step);
                }
            }
            Direction::Response => match self.state {
                State::Undecided => {
                    self.count_responses(&bytes);
                    self.decide(&mut step);
                }
                State::Exchanging { .. } => {
                    step.take = size;
                    self.on_ours(&bytes, &mut step);
                }
                State::Done => {}
            },
        }
        if matches!(self.state, State::Done) {
            step.hold = false;
        }
        step
    }

    fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn on_close(&mut self) -> Option<Outcome> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Exchanging { .. } => {
                Some(self.outcome(AuthResult::Failure, "closed_during_exchange"))
            }
            _ => None,
        }
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.pending.capacity() + self.response.capacity()
    }
}

/// The `reason` for a Kafka error code in one of our responses.
fn error_reason(code: i16) -> &'static str {
    error_name(code).unwrap_or("unknown_error")
}

/// The size and api key of the request at the front of `bytes`, once both are there.
fn request_head(bytes: &[u8]) -> Option<(usize, i16)> {
    let size = frame_size(bytes)?;
    let key = bytes.get(4..6)?;
    Some((4 + size, i16::from_be_bytes([key[0], key[1]])))
}

fn frame_size(bytes: &[u8]) -> Option<usize> {
    let size = bytes.get(..4)?;
    usize::try_from(i32::from_be_bytes([size[0], size[1], size[2], size[3]])).ok()
}

/// A request frame: size, header v1 (api key, version, correlation id, client id), body.
fn request(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut header = Vec::with_capacity(10 + CLIENT_ID.len() + body.len());
    header.extend_from_slice(&api_key.to_be_bytes());
    header.extend_from_slice(&version.to_be_bytes());
    header.extend_from_slice(&correlation_id.to_be_bytes());
    header.extend_from_slice(&(CLIENT_ID.len() as i16).to_be_bytes());
    header.extend_from_slice(CLIENT_ID);
    header.extend_from_slice(body);
    let mut frame = Vec::with_capacity(4 + header.len());
    frame.extend_from_slice(&(header.len() as i32).to_be_bytes());
    frame.extend_from_slice(&header);
    frame
}

/// SaslHandshake v1: the mechanism (STRING).
fn handshake_request(correlation_id: i32, mechanism: &str) -> Vec<u8> {
    let mut body = (mechanism.len() as i16).to_be_bytes().to_vec();
    body.extend_from_slice(mechanism.as_bytes());
    request(API_SASL_HANDSHAKE, 1, correlation_id, &body)
}

/// SaslAuthenticate v1: the auth bytes (BYTES).
fn authenticate_request(correlation_id: i32, auth: &[u8]) -> Vec<u8> {
    let mut body = (auth.len() as i32).to_be_bytes().to_vec();
    body.extend_from_slice(auth);
    request(API_SASL_AUTHENTICATE, 1, correlation_id, &body)
}

/// Big-endian fields of a response body, never panicking.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A NULLABLE_STRING (None only when malformed; null is an empty slice).
    fn string(&mut self) -> Option<&'a [u8]> {
        match self.i16()? {
            -1 => Some(&[]),
            n => self.take(usize::try_from(n).ok()?),
        }
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.i32()?;
        self.take(usize::try_from(n).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(mechanism: Mechanism) -> KafkaAuth {
        let credential = Credential {
            username: "kiosk-mirror".into(),
            password: "s3cret".into(),
        };
        KafkaAuth::new(
            mechanism,
            Some(credential),
            Some("fyko+d2lbbFgONRv9qkxdawL".into()),
        )
    }

    fn feed(a: &mut KafkaAuth, direction: Direction, bytes: &[u8]) -> Step {
        a.on_data(direction, bytes.len(), &mut |at, len| {
            bytes.get(at..at + len).map(<[u8]>::to_vec)
        })
    }

    fn app_request(api_key: i16, correlation_id: i32) -> Vec<u8> {
        request(api_key, 3, correlation_id, &[0, 0, 0, 0])
    }

    fn response(correlation_id: i32, body: &[u8]) -> Vec<u8> {
        let mut frame = ((4 + body.len()) as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&correlation_id.to_be_bytes());
        frame.extend_from_slice(body);
        frame
    }

    fn handshake_ok() -> Vec<u8> {
        let mut body = vec![0, 0, 0, 0, 0, 1];
        body.extend_from_slice(&5i16.to_be_bytes());
        body.extend_from_slice(b"PLAIN");
        response(HANDSHAKE_ID, &body)
    }

    fn authenticate_response(id: i32, code: i16, auth: &[u8]) -> Vec<u8> {
        let mut body = code.to_be_bytes().to_vec();
        body.extend_from_slice(&(-1i16).to_be_bytes());
        body.extend_from_slice(&(auth.len() as i32).to_be_bytes());
        body.extend_from_slice(auth);
        body.extend_from_slice(&0i64.to_be_bytes());
        response(id, &body)
    }

    #[test]
    fn plain_holds_the_app_until_authenticated_then_releases_it_in_order() {
        let mut a = auth(Mechanism::Plain);
        let versions = app_request(API_API_VERSIONS, 1);
        let step = feed(&mut a, Direction::Request, &versions);
        assert_eq!((step.take, step.hold), (versions.len(), true));
        assert_eq!(step.release, versions, "ApiVersions passes");
        assert!(step.inject.is_empty());
        // Its response passes untouched.
        let step = feed(&mut a, Direction::Response, &response(1, &[0; 10]));
        assert_eq!(step, Step::default());
        let metadata = app_request(3, 2);
        let step = feed(&mut a, Direction::Request, &metadata);
        assert!(step.release.is_empty() && step.hold);
        let mut expected = handshake_request(HANDSHAKE_ID, "PLAIN");
        expected.extend(authenticate_request(
            HANDSHAKE_ID + 1,
            b"\0kiosk-mirror\0s3cret",
        ));
        assert_eq!(step.inject, expected);
        // Responses split anywhere are collected and removed.
        let mut ours = handshake_ok();
        ours.extend(authenticate_response(HANDSHAKE_ID + 1, 0, b""));
        let (one, two) = ours.split_at(7);
        let step = feed(&mut a, Direction::Response, one);
        assert_eq!((step.take, step.outcome), (7, None));
        let step = feed(&mut a, Direction::Response, two);
        assert_eq!(step.take, two.len());
        assert_eq!(step.release, metadata);
        assert!(!step.hold && !step.close);
        assert_eq!(step.outcome.unwrap().result, AuthResult::Success);
        assert!(a.is_done());
        assert_eq!(
            a.memory_bytes(),
            std::mem::size_of::<KafkaAuth>(),
            "nothing kept"
        );
        // Inert afterwards.
        assert_eq!(feed(&mut a, Direction::Request, &metadata), Step::default());
    }

    /// The Java producer's worst case: five requests of 1 MiB pipelined while our exchange
    /// runs, held and released in order after it.
    #[test]
    fn a_producer_pipelining_five_full_requests_waits_for_the_exchange() {
        let mut a = auth(Mechanism::Plain);
        let first = app_request(3, 2);
        feed(&mut a, Direction::Request, &first);
        let mut sent = first;
        for correlation_id in 3..8 {
            let mut produce = app_request(0, correlation_id);
            produce.resize(1 << 20, 7);
            let step = feed(&mut a, Direction::Request, &produce);
            assert!(step.hold && !step.close, "request {correlation_id}");
            sent.extend(produce);
        }
        let mut ours = handshake_ok();
        ours.extend(authenticate_response(HANDSHAKE_ID + 1, 0, b""));
        let step = feed(&mut a, Direction::Response, &ours);
        assert_eq!(step.outcome.unwrap().result, AuthResult::Success);
        assert!(step.release == sent, "every byte released, in order");
    }

    #[test]
    fn an_app_doing_its_own_sasl_passes_untouched() {
        let mut a = auth(Mechanism::ScramSha512);
        let mut bytes = app_request(API_API_VERSIONS, 1);
        bytes.extend(app_request(API_SASL_HANDSHAKE, 2));
        let step = feed(&mut a, Direction::Request, &bytes);
        assert_eq!(step.release, bytes);
        assert!(step.inject.is_empty() && !step.hold);
        assert_eq!(step.outcome.unwrap().reason, "client_sasl");
        assert!(a.is_done());
    }

    #[test]
    fn our_exchange_waits_for_the_apps_apiversions_response() {
        let mut a = auth(Mechanism::Plain);
        let mut bytes = app_request(API_API_VERSIONS, 1);
        let metadata = app_request(3, 2);
        bytes.extend(&metadata);
        let step = feed(&mut a, Direction::Request, &bytes[..bytes.len() - 3]);
        assert_eq!(step.release.len(), bytes.len() - metadata.len());
        assert!(step.inject.is_empty());
        let step = feed(&mut a, Direction::Request, &bytes[bytes.len() - 3..]);
        assert!(
            step.inject.is_empty() && step.release.is_empty(),
            "answer outstanding"
        );
        let resp = response(1, &[0; 20]);
        let step = feed(&mut a, Direction::Response, &resp[..9]);
        assert!(step.inject.is_empty());
        let step = feed(&mut a, Direction::Response, &resp[9..]);
        assert_eq!(step.take, 0, "the app's response passes");
        assert!(step
            .inject
            .starts_with(&handshake_request(HANDSHAKE_ID, "PLAIN")));
    }

    #[test]
    fn scram_answers_server_first_from_a_response_callback() {
        let mut a = auth(Mechanism::ScramSha256);
        let step = feed(&mut a, Direction::Request, &app_request(3, 7));
        let first = b"n,,n=kiosk-mirror,r=fyko+d2lbbFgONRv9qkxdawL";
        assert!(step.inject.ends_with(first));
        let step = feed(&mut a, Direction::Response, &handshake_ok());
        assert!(step.inject.is_empty() && step.outcome.is_none());
        let server_first = b"r=fyko+d2lbbFgONRv9qkxdawLserver,s=QSXCR+Q6sek8bf92,i=4096";
        let step = feed(
            &mut a,
            Direction::Response,
            &authenticate_response(HANDSHAKE_ID + 1, 0, server_first),
        );
        assert!(step.release.is_empty());
        let mut r = Reader(&step.inject[4..]);
        assert_eq!(r.i16(), Some(API_SASL_AUTHENTICATE));
        // A wrong server signature fails the connection; nothing is released.
        let step = feed(
            &mut a,
            Direction::Response,
            &authenticate_response(HANDSHAKE_ID + 2, 0, b"v=AAAA"),
        );
        assert!(step.close && step.release.is_empty());
        assert_eq!(step.outcome.unwrap().reason, "bad_server_signature");
    }

    #[test]
    fn broker_refusals_close_with_the_error_name() {
        let mut a = auth(Mechanism::Plain);
        feed(&mut a, Direction::Request, &app_request(3, 7));
        feed(&mut a, Direction::Response, &handshake_ok());
        let step = feed(
            &mut a,
            Direction::Response,
            &authenticate_response(HANDSHAKE_ID + 1, 58, b""),
        );
        assert!(step.close);
        assert_eq!(step.outcome.unwrap().reason, "SASL_AUTHENTICATION_FAILED");
        let mut a = auth(Mechanism::Plain);
        feed(&mut a, Direction::Request, &app_request(3, 7));
        let refused = response(HANDSHAKE_ID, &[0, 33, 0, 0, 0, 0]);
        let step = feed(&mut a, Direction::Response, &refused);
        assert_eq!(step.outcome.unwrap().reason, "UNSUPPORTED_SASL_MECHANISM");
        let mut a = auth(Mechanism::Plain);
        feed(&mut a, Direction::Request, &app_request(3, 7));
        let step = feed(&mut a, Direction::Response, &response(99, &[0, 0]));
        assert_eq!(step.outcome.unwrap().reason, "unexpected_response");
    }

    #[test]
    fn no_credential_passes_and_is_counted_and_limits_hold() {
        let mut a = KafkaAuth::new(Mechanism::Plain, None, None);
        let step = feed(&mut a, Direction::Request, &app_request(3, 7));
        assert_eq!(step.outcome.unwrap().reason, "no_credential");
        assert!(!step.close && !step.hold && a.is_done());
        let mut a = auth(Mechanism::Plain);
        feed(&mut a, Direction::Request, &app_request(3, 7));
        let step = feed(&mut a, Direction::Request, &vec![0; MAX_PENDING]);
        assert!(step.close);
        let mut a = auth(Mechanism::Plain);
        feed(&mut a, Direction::Request, &app_request(3, 7));
        assert_eq!(a.on_close().unwrap().reason, "closed_during_exchange");
    }

    /// Our requests decode with kafka-protocol as the broker decodes them.
    #[test]
    fn our_requests_are_what_kafka_protocol_decodes() {
        use bytes::Bytes;
        use kafka_protocol::messages::{
            RequestHeader, SaslAuthenticateRequest, SaslHandshakeRequest,
        };
        use kafka_protocol::protocol::Decodable;
        let mut frame = Bytes::from(handshake_request(5, "SCRAM-SHA-512").split_off(4));
        let header = RequestHeader::decode(&mut frame, 1).unwrap();
        assert_eq!((header.request_api_key, header.correlation_id), (17, 5));
        let body = SaslHandshakeRequest::decode(&mut frame, 1).unwrap();
        assert_eq!(body.mechanism.as_str(), "SCRAM-SHA-512");
        let mut frame = Bytes::from(authenticate_request(6, b"abc").split_off(4));
        let header = RequestHeader::decode(&mut frame, 1).unwrap();
        assert_eq!(header.client_id.unwrap().as_str(), "kiosk");
        let body = SaslAuthenticateRequest::decode(&mut frame, 1).unwrap();
        assert_eq!(&body.auth_bytes[..], b"abc");
    }
}
