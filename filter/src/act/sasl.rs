//! SASL client mechanisms, sans-IO: PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802,
//! RFC 7677), as Kafka's brokers speak them inside SaslAuthenticate.
//!
//! A [`Client`] produces the first message, then takes each server message and answers
//! with the next one, until it is done or has failed. Nothing here knows Kafka framing
//! ([`super::kafka_auth`] does) or where the secret came from.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};
use std::cell::RefCell;
use std::rc::Rc;

/// Kafka's bounds on SCRAM iterations (`ScramMechanism`): a server asking for more is
/// refused rather than followed (each iteration is an HMAC in the sidecar).
pub const SCRAM_ITERATIONS: (u32, u32) = (4096, 16384);

/// A SASL mechanism the filter performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    pub const ALL: [Mechanism; 3] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
    ];

    /// The IANA name, as in SaslHandshake and Kafka's `sasl.enabled.mechanisms`.
    pub const fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// A user and password. `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why an exchange failed, as the `reason` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslError {
    /// The server's message is not what the mechanism expects.
    Malformed,
    /// SCRAM: the server's nonce does not extend ours.
    NonceMismatch,
    /// SCRAM: iterations outside [`SCRAM_ITERATIONS`].
    Iterations,
    /// SCRAM: the server sent `e=...` in its final message.
    ServerError,
    /// SCRAM: the server's signature is wrong: it does not know the password.
    ServerSignature,
    /// The server sent a message after the exchange was complete.
    Unexpected,
}

impl SaslError {
    pub const fn reason(self) -> &'static str {
        match self {
            SaslError::Malformed => "malformed_server_message",
            SaslError::NonceMismatch => "nonce_mismatch",
            SaslError::Iterations => "iterations_out_of_range",
            SaslError::ServerError => "server_error",
            SaslError::ServerSignature => "bad_server_signature",
            SaslError::Unexpected => "unexpected_server_message",
        }
    }
}

/// What the client does after a server message.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Send this message.
    Send(Vec<u8>),
    /// Authenticated.
    Done,
}

enum State {
    /// PLAIN: one message, then any server answer (empty) completes it.
    PlainSent,
    /// SCRAM: client-first sent.
    ScramFirst {
        client_nonce: String,
        client_first_bare: String,
    },
    /// SCRAM: client-final sent; the server's final message must carry this signature.
    ScramFinal {
        server_signature: Vec<u8>,
    },
    Done,
}

/// Salted passwords already derived, shared by the connections of one VM (one
/// credential): SCRAM's PBKDF2 (4096+ HMAC rounds, the bulk of a SCRAM set-up's cost) runs
/// once per (mechanism, salt, iterations) instead of once per connection. The salted
/// password is as sensitive as the password it comes from, which the VM holds anyway.
#[derive(Clone, Default)]
pub struct SaltedPasswords(Rc<RefCell<SaltedEntries>>);

#[derive(Default)]
struct SaltedEntries {
    entries: Vec<(Mechanism, Vec<u8>, u32, Vec<u8>)>,
    derived: u64,
}

/// Distinct (mechanism, salt, iterations) kept: a broker keeps one salt per user.
const SALTED_ENTRIES: usize = 4;

impl SaltedPasswords {
    /// The salted password for `salt` and `rounds`, derived from `password` if not known.
    fn get(&self, mechanism: Mechanism, password: &str, salt: &[u8], rounds: u32) -> Vec<u8> {
        let mut cache = self.0.borrow_mut();
        let known = cache
            .entries
            .iter()
            .find(|(m, s, r, _)| *m == mechanism && s == salt && *r == rounds);
        if let Some((_, _, _, salted)) = known {
            return salted.clone();
        }
        let salted = salted_password(mechanism, password, salt, rounds);
        cache.derived += 1;
        if cache.entries.len() >= SALTED_ENTRIES {
            cache.entries.remove(0);
        }
        cache
            .entries
            .push((mechanism, salt.to_vec(), rounds, salted.clone()));
        salted
    }

    /// How many times PBKDF2 ran.
    pub fn derivations(&self) -> u64 {
        self.0.borrow().derived
    }
}

impl std::fmt::Debug for SaltedPasswords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaltedPasswords")
            .field("derived", &self.derivations())
            .finish_non_exhaustive()
    }
}

/// One SASL exchange on the client side.
pub struct Client {
    mechanism: Mechanism,
    credential: Credential,
    state: State,
    salted: SaltedPasswords,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client and its first message. `nonce` is SCRAM's client nonce (printable, no
    /// comma: the caller draws it from a random source; tests pass a fixed one).
    pub fn start(mechanism: Mechanism, credential: Credential, nonce: &str) -> (Self, Vec<u8>) {
        let (state, first) = match mechanism {
            Mechanism::Plain => {
                // authzid NUL authcid NUL passwd, authzid empty (the user acts as itself).
                let mut first =
                    Vec::with_capacity(2 + credential.username.len() + credential.password.len());
                first.push(0);
                first.extend_from_slice(credential.username.as_bytes());
                first.push(0);
                first.extend_from_slice(credential.password.as_bytes());
                (State::PlainSent, first)
            }
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                let bare = format!("n={},r={nonce}", sasl_name(&credential.username));
                let first = format!("n,,{bare}").into_bytes();
                let state = State::ScramFirst {
                    client_nonce: nonce.to_string(),
                    client_first_bare: bare,
                };
                (state, first)
            }
        };
        let client = Client {
            mechanism,
            credential,
            state,
            salted: SaltedPasswords::default(),
        };
        (client, first)
    }

    /// Take salted passwords from (and add them to) `salted`, shared with other clients
    /// of the same credential.
    pub fn with_salted(mut self, salted: SaltedPasswords) -> Self {
        self.salted = salted;
        self
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The server's next message; the client's answer.
    pub fn on_server(&mut self, message: &[u8]) -> Result<Next, SaslError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::PlainSent => Ok(Next::Done),
            State::ScramFirst {
                client_nonce,
                client_first_bare,
            } => {
                let server_first =
                    std::str::from_utf8(message).map_err(|_| SaslError::Malformed)?;
                let (mechanism, password) = (self.mechanism, &self.credential.password);
                let salt = |salt: &[u8], rounds| self.salted.get(mechanism, password, salt, rounds);
                let (final_message, server_signature) = match self.mechanism {
                    Mechanism::ScramSha512 => scram_final::<Sha512>(
                        salt,
                        &client_nonce,
                        &client_first_bare,
                        server_first,
                    )?,
                    _ => scram_final::<Sha256>(
                        salt,
                        &client_nonce,
                        &client_first_bare,
                        server_first,
                    )?,
                };
                self.state = State::ScramFinal { server_signature };
                Ok(Next::Send(final_message.into_bytes()))
            }
            State::ScramFinal { server_signature } => {
                let text = std::str::from_utf8(message).map_err(|_| SaslError::Malformed)?;
                if text.starts_with("e=") {
                    return Err(SaslError::ServerError);
                }
                let sent = attribute(text, 'v').ok_or(SaslError::Malformed)?;
                let sent = B64.decode(sent).map_err(|_| SaslError::Malformed)?;
                // Not secret-dependent timing that matters here: the signature is the
                // server's proof to us, and a mismatch ends the connection either way.
                if sent != server_signature {
                    return Err(SaslError::ServerSignature);
                }
                Ok(Next::Done)
            }
            State::Done => Err(SaslError::Unexpected),
        }
    }
}

/// RFC 5802 `saslname`: `=` and `,` escaped.
fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// The value of attribute `key` (`k=value`) in a comma-separated SCRAM message.
fn attribute(message: &str, key: char) -> Option<&str> {
    message.split(',').find_map(|part| {
        let mut chars = part.chars();
        (chars.next() == Some(key) && chars.next() == Some('=')).then(|| &part[2..])
    })
}

type HmacOf<D> = Hmac<D>;

fn hmac<D>(key: &[u8], data: &[u8]) -> Vec<u8>
where
    D: hmac::EagerHash,
    Hmac<D>: KeyInit + Mac,
{
    // HMAC takes keys of any length: `new_from_slice` cannot fail.
    let Ok(mut mac) = <HmacOf<D> as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// PBKDF2 with HMAC over `D`: SCRAM's SaltedPassword (also what a broker stores, given
/// to AlterUserScramCredentials as `salted_password`).
pub fn salted_password(mechanism: Mechanism, password: &str, salt: &[u8], rounds: u32) -> Vec<u8> {
    match mechanism {
        Mechanism::ScramSha512 => salted::<Sha512>(password, salt, rounds),
        _ => salted::<Sha256>(password, salt, rounds),
    }
}

fn salted<D: hmac::EagerHash + Digest>(password: &str, salt: &[u8], rounds: u32) -> Vec<u8>
where
    Hmac<D>: KeyInit + Mac,
{
    let mut out = vec![0u8; <D as Digest>::output_size()];
    pbkdf2::pbkdf2_hmac::<D>(password.as_bytes(), salt, rounds, &mut out);
    out
}

/// client-final and the server signature to expect, from server-first; `salted` gives
/// the salted password for a salt and an iteration count.
fn scram_final<D: hmac::EagerHash + Digest>(
    salted: impl FnOnce(&[u8], u32) -> Vec<u8>,
    client_nonce: &str,
    client_first_bare: &str,
    server_first: &str,
) -> Result<(String, Vec<u8>), SaslError>
where
    Hmac<D>: KeyInit + Mac,
{
    if server_first.starts_with("m=") {
        // A mandatory extension we do not know (RFC 5802 section 5.1).
        return Err(SaslError::Malformed);
    }
    let nonce = attribute(server_first, 'r').ok_or(SaslError::Malformed)?;
    let salt = attribute(server_first, 's').ok_or(SaslError::Malformed)?;
    let iterations = attribute(server_first, 'i').ok_or(SaslError::Malformed)?;
    if !nonce.starts_with(client_nonce) || nonce.len() == client_nonce.len() {
        return Err(SaslError::NonceMismatch);
    }
    let salt = B64.decode(salt).map_err(|_| SaslError::Malformed)?;
    let iterations: u32 = iterations.parse().map_err(|_| SaslError::Malformed)?;
    if !(SCRAM_ITERATIONS.0..=SCRAM_ITERATIONS.1).contains(&iterations) {
        return Err(SaslError::Iterations);
    }
    let salted = salted(&salt, iterations);
    let client_key = hmac::<D>(&salted, b"Client Key");
    let stored_key = D::digest(&client_key);
    // c=biws: base64 of the GS2 header "n,,".
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hmac::<D>(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let server_key = hmac::<D>(&salted, b"Server Key");
    let server_signature = hmac::<D>(&server_key, auth_message.as_bytes());
    let message = format!("{without_proof},p={}", B64.encode(proof));
    Ok((message, server_signature))
}

/// A SCRAM client nonce: 24 random bytes, base64 (no comma in the alphabet).
pub fn random_nonce() -> Option<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).ok()?;
    Some(B64.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(username: &str, password: &str) -> Credential {
        Credential {
            username: username.into(),
            password: password.into(),
        }
    }

    /// Clients sharing salted passwords derive each once; the exchange is the same.
    #[test]
    fn salted_passwords_are_derived_once_per_salt() {
        let salted = SaltedPasswords::default();
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let mut finals = Vec::new();
        for _ in 0..3 {
            let (client, _) = Client::start(
                Mechanism::ScramSha256,
                user("user", "pencil"),
                "rOprNGfwEbeRWgbNEkqO",
            );
            let mut client = client.with_salted(salted.clone());
            finals.push(client.on_server(server_first).unwrap());
        }
        assert_eq!(salted.derivations(), 1);
        assert!(finals.windows(2).all(|w| w[0] == w[1]));
        let other_salt = b"r=rOprNGfwEbeRWgbNEkqOx,s=c2FsdA==,i=4096";
        let (client, _) = Client::start(
            Mechanism::ScramSha256,
            user("user", "pencil"),
            "rOprNGfwEbeRWgbNEkqO",
        );
        client
            .with_salted(salted.clone())
            .on_server(other_salt)
            .unwrap();
        assert_eq!(salted.derivations(), 2);
    }

    /// RFC 7677 section 3, the SCRAM-SHA-256 example exchange, byte for byte.
    #[test]
    fn scram_sha_256_matches_rfc_7677() {
        let (mut client, first) = Client::start(
            Mechanism::ScramSha256,
            user("user", "pencil"),
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let Next::Send(last) = client.on_server(server_first).unwrap() else {
            panic!("client-final expected");
        };
        assert_eq!(
            String::from_utf8(last).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let server_final = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
        assert_eq!(client.on_server(server_final), Ok(Next::Done));
        assert_eq!(client.on_server(b""), Err(SaslError::Unexpected));
    }

    /// A server that does not know the password cannot produce our expected signature.
    #[test]
    fn scram_refuses_a_wrong_server_signature_and_server_errors() {
        let start = || {
            let (mut c, _) = Client::start(Mechanism::ScramSha512, user("u", "p"), "abc");
            c.on_server(b"r=abcdef,s=c2FsdA==,i=4096").unwrap();
            c
        };
        assert_eq!(
            start().on_server(b"v=AAAA"),
            Err(SaslError::ServerSignature)
        );
        assert_eq!(
            start().on_server(b"e=invalid-proof"),
            Err(SaslError::ServerError)
        );
        assert_eq!(start().on_server(b"x"), Err(SaslError::Malformed));
    }

    #[test]
    fn scram_checks_the_servers_first_message() {
        let first = |msg: &[u8]| {
            let (mut c, _) = Client::start(Mechanism::ScramSha256, user("u", "p"), "abc");
            c.on_server(msg)
        };
        assert_eq!(
            first(b"r=xyz,s=c2FsdA==,i=4096"),
            Err(SaslError::NonceMismatch)
        );
        assert_eq!(
            first(b"r=abc,s=c2FsdA==,i=4096"),
            Err(SaslError::NonceMismatch)
        );
        assert_eq!(
            first(b"r=abcd,s=c2FsdA==,i=100"),
            Err(SaslError::Iterations)
        );
        assert_eq!(
            first(b"r=abcd,s=c2FsdA==,i=99999999"),
            Err(SaslError::Iterations)
        );
        assert_eq!(first(b"r=abcd,s=!!,i=4096"), Err(SaslError::Malformed));
        assert_eq!(
            first(b"m=ext,r=abcd,s=c2FsdA==,i=4096"),
            Err(SaslError::Malformed)
        );
        assert_eq!(first(&[0xff, 0xfe]), Err(SaslError::Malformed));
        assert!(matches!(
            first(b"r=abcd,s=c2FsdA==,i=4096"),
            Ok(Next::Send(_))
        ));
    }

    #[test]
    fn plain_is_one_message_and_names_escape() {
        let (mut c, first) = Client::start(Mechanism::Plain, user("al", "pw"), "");
        assert_eq!(first, b"\0al\0pw");
        assert_eq!(c.on_server(b""), Ok(Next::Done));
        let (_, first) = Client::start(Mechanism::ScramSha256, user("a=b,c", "p"), "n");
        assert_eq!(first, b"n,,n=a=3Db=2Cc,r=n");
        assert!(!format!("{:?}", user("u", "hunter2")).contains("hunter2"));
    }

    #[test]
    fn mechanisms_round_trip_their_names() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
        }
        assert_eq!(Mechanism::from_name("GSSAPI"), None);
    }

    #[test]
    fn nonces_are_random_and_comma_free() {
        let (a, b) = (random_nonce().unwrap(), random_nonce().unwrap());
        assert_ne!(a, b);
        assert!(!a.contains(','));
    }
}
