//! The proxy-wasm host glue: a page of host calls around the host-free core.
//!
//! Per DESIGN.md section 3 (each `get_buffer` hostcall costs): a data callback copies
//! into the VM only the bytes the core will read, a window at a time, and lets the core
//! pass over record bodies unseen; metric updates are batched in the
//! core and flushed on a timer and when a connection closes; metric ids are cached by
//! name because `define_metric` returns a new id on every call. Every callback returns
//! `Continue`: the filter never holds back or changes a byte.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MetricType, PeerType};

use crate::observe::Direction;
use crate::topics::id_hex;
use crate::{Config, Connection, Identity, MetricSink, Recorder};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

const SHARED_ID_PREFIX: &str = "kiosk.topic_id.";

/// The VM's state, shared by the root context and every connection of the VM.
struct Vm {
    recorder: Recorder,
    sink: EnvoyStats,
}

type SharedVm = Rc<RefCell<Option<Vm>>>;

#[derive(Default)]
struct Root {
    vm: SharedVm,
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
        let mut recorder = Recorder::new(config, identity);
        recorder.topics.set_fallback(Box::new(|id| {
            let key = format!("{SHARED_ID_PREFIX}{}", id_hex(id));
            let (value, _) = hostcalls::get_shared_data(&key).ok()?;
            String::from_utf8(value?).ok()
        }));
        *self.vm.borrow_mut() = Some(Vm {
            recorder,
            sink: EnvoyStats::default(),
        });
        self.set_tick_period(interval);
        true
    }

    fn on_tick(&mut self) {
        if let Some(vm) = self.vm.borrow_mut().as_mut() {
            vm.flush();
        }
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        let connection = self
            .vm
            .borrow_mut()
            .as_mut()
            .map(|vm| Connection::new(&mut vm.recorder));
        Some(Box::new(Stream {
            vm: self.vm.clone(),
            connection,
            peer_checked: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }
}

impl Vm {
    fn flush(&mut self) {
        if self.recorder.topics.has_learned() {
            for (id, name) in self.recorder.topics.take_learned() {
                let key = format!("{SHARED_ID_PREFIX}{}", id_hex(&id));
                if let Err(e) = hostcalls::set_shared_data(&key, Some(name.as_bytes()), None) {
                    log::debug!("sharing topic id {key}: {e:?}");
                }
            }
        }
        if self.recorder.is_dirty() {
            self.recorder.flush(&mut self.sink);
        }
    }
}

struct Stream {
    vm: SharedVm,
    connection: Option<Connection>,
    peer_checked: bool,
}

impl Context for Stream {}

impl Stream {
    fn on_data(&mut self, size: usize, request: bool) {
        let Some(conn) = self.connection.as_mut().filter(|c| !c.gave_up()) else {
            return;
        };
        if size == 0 {
            return;
        }
        if !self.peer_checked && !request {
            // The edge is secure when the sidecar's upstream leg is Istio mTLS: a TLS
            // connection whose peer presented a SPIFFE identity. (`connection.mtls` is the
            // app -> sidecar leg, always plaintext in an outbound sidecar.) The upstream is
            // connected and its handshake done once its first bytes arrive, and Kafka's
            // first response (ApiVersions) comes before any record is counted.
            self.peer_checked = true;
            let peer = hostcalls::get_property(vec!["upstream", "uri_san_peer_certificate"])
                .ok()
                .flatten();
            conn.set_secure(peer.is_some_and(|san| san.starts_with(b"spiffe://")));
        }
        let (direction, buffer) = if request {
            (Direction::Request, BufferType::DownstreamData)
        } else {
            (Direction::Response, BufferType::UpstreamData)
        };
        let now_ms = hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64);
        if let Some(vm) = self.vm.borrow_mut().as_mut() {
            let window = vm.recorder.config.read_window_bytes;
            conn.on_buffer(
                direction,
                size,
                window,
                now_ms,
                &mut vm.recorder,
                |at, len| hostcalls::get_buffer(buffer, at, len).ok().flatten(),
            );
        }
    }

    fn close(&mut self) {
        if let (Some(mut conn), Some(vm)) = (self.connection.take(), self.vm.borrow_mut().as_mut())
        {
            conn.on_close(&mut vm.recorder);
            vm.flush();
        }
    }
}

impl StreamContext for Stream {
    fn on_downstream_data(&mut self, size: usize, _end_of_stream: bool) -> Action {
        self.on_data(size, true);
        Action::Continue
    }

    fn on_upstream_data(&mut self, size: usize, _end_of_stream: bool) -> Action {
        self.on_data(size, false);
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

/// Envoy's stats, with metric ids cached by name.
#[derive(Default)]
struct EnvoyStats {
    ids: HashMap<String, u32>,
}

impl EnvoyStats {
    fn id(&mut self, name: &str, kind: MetricType) -> Option<u32> {
        if let Some(&id) = self.ids.get(name) {
            return Some(id);
        }
        let id = hostcalls::define_metric(kind, name).ok()?;
        self.ids.insert(name.to_string(), id);
        Some(id)
    }
}

impl MetricSink for EnvoyStats {
    fn counter(&mut self, name: &str, delta: u64) {
        if let Some(id) = self.id(name, MetricType::Counter) {
            let _ = hostcalls::increment_metric(id, delta as i64);
        }
    }

    fn gauge(&mut self, name: &str, value: i64) {
        if let Some(id) = self.id(name, MetricType::Gauge) {
            let _ = hostcalls::record_metric(id, value.max(0) as u64);
        }
    }

    fn histogram(&mut self, name: &str, value: u64) {
        if let Some(id) = self.id(name, MetricType::Histogram) {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}

/// A node metadata value Istio sets (NAMESPACE, WORKLOAD_NAME, LABELS.app, CLUSTER_ID).
fn node_metadata(path: &[&str]) -> Option<String> {
    for root in [&["xds", "node", "metadata"][..], &["node", "metadata"][..]] {
        let full: Vec<&str> = root.iter().chain(path).copied().collect();
        if let Ok(Some(bytes)) = hostcalls::get_property(full) {
            if let Ok(value) = String::from_utf8(bytes) {
                if !value.is_empty() {
                    return Some(value);
                }
            }
        }
    }
    None
}
