//! The proxy-wasm host glue: the host calls around the host-free core.
//!
//! Per docs/envoy-host.md (each `get_buffer` hostcall costs): a data callback copies
//! into the VM only the bytes the core will read, a window at a time, and lets the core
//! pass over record bodies unseen; metric updates are batched in the core and flushed on
//! a timer and when a connection closes. Buffers are read and edited only through
//! [`buffer`], which never panics. Observing returns `Continue` and changes no byte; a
//! connection's action (SASL, when configured) returns a [`Step`], carried out here.

mod buffer;
mod stats;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, PeerType};

use crate::act::sasl::Credential;
use crate::act::{AuthResult, Step, Upstream};
use crate::config::MongoDbAuthMechanism;
use crate::decode::topics::{id_hex, SharedIds, TopicId};
use crate::{Config, Connection, Direction, Identity, Vm};
use stats::EnvoyStats;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

const SHARED_ID_PREFIX: &str = "kiosk.topic_id.";

/// The VM's state and Envoy's stats, shared by the root context and every connection.
struct Shared {
    vm: Vm,
    stats: EnvoyStats,
}

type SharedVm = Rc<RefCell<Option<Shared>>>;

#[derive(Default)]
struct Root {
    shared: SharedVm,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let json = self.get_plugin_configuration().unwrap_or_default();
        let config = match Config::from_json(&json) {
            Ok(config) => config,
            Err(e) => {
                log::error!("{e}; the filter is not loaded");
                return false;
            }
        };
        let identity = Identity::resolve(
            &config,
            node_metadata(&["NAMESPACE"]),
            node_metadata(&["WORKLOAD_NAME"]),
            node_metadata(&["LABELS", "app"]),
            node_metadata(&["CLUSTER_ID"]),
        );
        log::info!(
            "kiosk filter configured for {}/{} (app {}, cluster {})",
            identity.namespace,
            identity.workload,
            identity.app,
            identity.cluster
        );
        let interval = Duration::from_millis(config.flush_interval_ms);
        let kafka_auth = config.kafka_auth.clone();
        let mongodb_auth = config.mongodb_auth.clone();
        let mut vm = Vm::new(config, identity);
        if let (Some(auth), Some(mechanism)) = (kafka_auth, vm.kafka_auth_mechanism()) {
            let what = format!("Kafka SASL {}", mechanism.name());
            vm.set_kafka_credential(credential_from_env(
                &what,
                &auth.username_env,
                &auth.password_env,
            ));
        }
        if let Some(auth) =
            mongodb_auth.filter(|a| a.mechanism == MongoDbAuthMechanism::ScramSha256)
        {
            let what = format!("MongoDB {}", auth.mechanism.name());
            vm.set_mongodb_credential(credential_from_env(
                &what,
                &auth.username_env,
                &auth.password_env,
            ));
        }
        vm.topics_mut().share_with(Box::new(SharedData));
        *self.shared.borrow_mut() = Some(Shared {
            vm,
            stats: EnvoyStats::default(),
        });
        self.set_tick_period(interval);
        true
    }

    fn on_tick(&mut self) {
        if let Some(shared) = self.shared.borrow_mut().as_mut() {
            shared.flush();
        }
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        let connection = self
            .shared
            .borrow_mut()
            .as_mut()
            .map(|shared| shared.vm.open_connection());
        Some(Box::new(Stream {
            shared: self.shared.clone(),
            connection,
            upstream_checked: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }
}

/// Topic ids in proxy-wasm shared data: host-wide, seen by every worker's VM at once.
struct SharedData;

impl SharedIds for SharedData {
    fn publish(&self, id: &TopicId, name: &str) {
        let key = format!("{SHARED_ID_PREFIX}{}", id_hex(id));
        if let Err(e) = hostcalls::set_shared_data(&key, Some(name.as_bytes()), None) {
            log::debug!("sharing topic id {key}: {e:?}");
        }
    }

    fn lookup(&self, id: &TopicId) -> Option<String> {
        let key = format!("{SHARED_ID_PREFIX}{}", id_hex(id));
        let (value, _) = hostcalls::get_shared_data(&key).ok()?;
        String::from_utf8(value?).ok()
    }
}

impl Shared {
    fn flush(&mut self) {
        if self.vm.is_dirty() {
            self.vm.flush(&mut self.stats);
        }
    }
}

struct Stream {
    shared: SharedVm,
    connection: Option<Connection>,
    upstream_checked: bool,
}

impl Context for Stream {}

impl Stream {
    /// A data callback of `size` new bytes; whether Envoy should hold them.
    fn on_data(&mut self, size: usize, direction: Direction) -> bool {
        let Some(conn) = self
            .connection
            .as_mut()
            .filter(|c| !c.gave_up() || c.is_acting())
        else {
            return false;
        };
        if size == 0 {
            return false;
        }
        if !self.upstream_checked {
            // tcp_proxy reads nothing from the app until the upstream is connected (its
            // TLS handshake included): from the first data callback on, the upstream's
            // identity and cluster are known. (`connection.mtls` is the app -> sidecar
            // leg, always plaintext in an outbound sidecar.)
            self.upstream_checked = true;
            let upstream = Upstream {
                principal: property_string(&["upstream", "uri_san_peer_certificate"]),
                dns_name: property_string(&["upstream", "dns_san_peer_certificate"]),
                cluster: property_string(&["xds", "cluster_name"]),
            };
            if let Some(shared) = self.shared.borrow_mut().as_mut() {
                if !shared.vm.on_upstream(conn, &upstream) {
                    log::warn!(
                        "kiosk: no credential sent to upstream {} (cluster {}): not among the \
                         configured upstreams; the connection passes unauthenticated",
                        upstream
                            .principal
                            .as_deref()
                            .or(upstream.dns_name.as_deref())
                            .unwrap_or("without a TLS identity"),
                        upstream.cluster.as_deref().unwrap_or("unknown"),
                    );
                }
            }
        }
        let buffer = match direction {
            Direction::Request => BufferType::DownstreamData,
            Direction::Response => BufferType::UpstreamData,
        };
        let now_ms = hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64);
        let step = match self.shared.borrow_mut().as_mut() {
            Some(shared) => {
                let window = shared.vm.config().read_window_bytes;
                shared
                    .vm
                    .on_buffer(conn, direction, size, window, now_ms, |at, len| {
                        buffer::read(buffer, at, len).ok().flatten()
                    })
            }
            None => Step::default(),
        };
        carry_out(&step, direction)
    }

    fn close(&mut self) {
        let mut shared = self.shared.borrow_mut();
        if let (Some(mut conn), Some(shared)) = (self.connection.take(), shared.as_mut()) {
            shared.vm.close(&mut conn);
            shared.flush();
        }
    }
}

/// Carry out an action's step for a callback of `direction`; whether Envoy should hold
/// the downstream bytes. Bytes to send go before the first byte of the downstream buffer:
/// the current one in a downstream callback, the held one in an upstream callback (kept
/// reachable because every downstream callback held while the action ran). A refusal by
/// Envoy closes the connection: a half-made exchange must not go on.
fn carry_out(step: &Step, direction: Direction) -> bool {
    if step.is_empty() {
        return false;
    }
    let buffer = match direction {
        Direction::Request => BufferType::DownstreamData,
        Direction::Response => BufferType::UpstreamData,
    };
    let send = step.send();
    let mut done = Ok(());
    if step.take > 0 {
        done = buffer::drain(buffer, step.take);
    }
    if !send.is_empty() && done.is_ok() {
        done = buffer::prepend(BufferType::DownstreamData, &send);
    }
    // Held bytes flow on their own only once a callback continues: make them flow now.
    let flow = !send.is_empty() && (direction == Direction::Response || step.hold);
    if flow && done.is_ok() {
        done = buffer::continue_downstream();
    }
    if let Err(status) = done {
        log::warn!("kiosk: Envoy refused a buffer operation ({status:?}); closing the connection");
    }
    if step.close || done.is_err() {
        if let Some(outcome) = step.outcome.filter(|o| o.result == AuthResult::Failure) {
            log::warn!(
                "kiosk: {} {} authentication failed ({}); closing the app's connection",
                outcome.protocol.name(),
                outcome.mechanism,
                outcome.reason
            );
        }
        if let Err(status) = buffer::close_downstream() {
            log::warn!("kiosk: closing the connection refused: {status:?}");
        }
    }
    step.hold && direction == Direction::Request
}

impl StreamContext for Stream {
    fn on_downstream_data(&mut self, size: usize, _end_of_stream: bool) -> Action {
        match self.on_data(size, Direction::Request) {
            true => Action::Pause,
            false => Action::Continue,
        }
    }

    fn on_upstream_data(&mut self, size: usize, _end_of_stream: bool) -> Action {
        self.on_data(size, Direction::Response);
        Action::Continue
    }

    fn on_downstream_close(&mut self, _peer: PeerType) {
        self.close();
    }

    fn on_upstream_close(&mut self, _peer: PeerType) {
        self.close();
    }

    fn on_log(&mut self) {
        self.close();
    }
}

/// The credential `what` uses, from the VM's environment (Istio's vmConfig.env
/// `valueFrom: HOST` entries): logged by username, never by password.
fn credential_from_env(what: &str, username_env: &str, password_env: &str) -> Option<Credential> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var(username_env), var(password_env)) {
        (Some(username), Some(password)) => {
            log::info!("{what} on the app's behalf as {username}");
            Some(Credential { username, password })
        }
        _ => {
            log::warn!(
                "{what} is configured but {username_env} or {password_env} is not in the VM's \
                 environment: connections pass unauthenticated (counted as no_credential)"
            );
            None
        }
    }
}

/// A node metadata value Istio sets (NAMESPACE, WORKLOAD_NAME, LABELS.app, CLUSTER_ID).
fn node_metadata(path: &[&str]) -> Option<String> {
    [&["xds", "node", "metadata"][..], &["node", "metadata"][..]]
        .iter()
        .find_map(|root| property_string(&[root, path].concat()))
}

/// A host property as a non-empty string (None: absent, unreadable or not UTF-8).
fn property_string(path: &[&str]) -> Option<String> {
    let bytes = hostcalls::get_property(path.to_vec()).ok().flatten()?;
    String::from_utf8(bytes).ok().filter(|v| !v.is_empty())
}
