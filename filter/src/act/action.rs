//! The contract between a connection and the feature that acts on it.

use crate::wire::{Direction, Protocol};

/// What one data callback does to Envoy's buffers, as an action decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Bytes removed from the front of this callback's buffer (the action keeps or
    /// consumes them); the observer sees only the rest.
    pub take: usize,
    /// The action's own bytes, sent toward the server first.
    pub inject: Vec<u8>,
    /// App request bytes handed back, sent after `inject` and observed as they pass.
    pub release: Vec<u8>,
    /// Keep Envoy's request buffer (request callbacks): the bytes sent now flow, the
    /// buffer stays reachable so that a response callback can send more.
    pub hold: bool,
    /// Close the connection.
    pub close: bool,
    /// What happened, to be counted.
    pub outcome: Option<Outcome>,
}

impl Step {
    /// Bytes to put before the request buffer's first byte: `inject`, then `release`.
    pub fn send(&self) -> Vec<u8> {
        [&self.inject[..], &self.release[..]].concat()
    }

    /// Whether the step leaves the buffers as they are.
    pub fn is_empty(&self) -> bool {
        *self == Step::default()
    }
}

/// An action's result, as the `kafka_auth_total` and `mongodb_auth_total` labels say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Outcome {
    pub protocol: Protocol,
    pub mechanism: &'static str,
    pub result: AuthResult,
    pub reason: &'static str,
}

/// How an authentication on the app's behalf ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthResult {
    /// The server accepted the credential: the app's bytes flow.
    Success,
    /// Refused or cut short: the connection is closed, nothing of the app's was sent.
    Failure,
    /// Not performed (the app does its own, no credential, an upstream not allowed): the
    /// app's bytes pass untouched.
    Skipped,
}

impl AuthResult {
    /// The `result` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthResult::Success => "success",
            AuthResult::Failure => "failure",
            AuthResult::Skipped => "skipped",
        }
    }
}

/// A feature that acts on one connection.
pub trait Action {
    /// One data callback of `direction`: `size` bytes in Envoy's buffer, read through
    /// `read(offset, len)`.
    fn on_data(
        &mut self,
        direction: Direction,
        size: usize,
        read: &mut dyn FnMut(usize, usize) -> Option<Vec<u8>>,
    ) -> Step;

    /// Whether the action has finished: later callbacks pass it by.
    fn is_done(&self) -> bool;

    /// The connection closed; an outcome if that cut the action short.
    fn on_close(&mut self) -> Option<Outcome>;

    /// Heap and inline bytes the action holds.
    fn memory_bytes(&self) -> usize;

    /// An outcome of this action, to be counted.
    fn outcome(&self, result: AuthResult, reason: &'static str) -> Outcome;
}

/// The upstream Envoy connected a connection to, as the host tells it once bytes flow
/// (the upstream is connected, its TLS handshake done, before the app's first byte is
/// read): what an action checks before anything of a credential leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Upstream {
    /// The URI SAN of the certificate the upstream presented (`spiffe://...` for Istio
    /// mTLS); None without upstream TLS.
    pub principal: Option<String>,
    /// The first DNS SAN of the certificate the upstream presented (a server outside the
    /// mesh to which the sidecar originates TLS); None without upstream TLS.
    pub dns_name: Option<String>,
    /// Envoy's cluster for the upstream (Istio: `outbound|<port>||<host>`).
    pub cluster: Option<String>,
}

impl Upstream {
    /// Whether the sidecar's upstream leg is Istio mTLS: a peer with a SPIFFE identity.
    pub fn is_mesh_mtls(&self) -> bool {
        self.principal
            .as_deref()
            .is_some_and(|p| p.starts_with("spiffe://"))
    }
}
