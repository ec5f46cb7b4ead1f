//! kiosk-filter: a proxy-wasm network filter that reads the Kafka protocol passing
//! through an Envoy sidecar and turns it into per-topic metrics and Kiali graph edges,
//! and MongoDB's into per-command and per-collection metrics.
//!
//! Data flows one way, and the modules follow it:
//!
//! - [`wire`]: bytes of each direction cut into frames (a protocol's framing);
//! - [`decode`]: inside frames, message layouts walked as they stream by into a
//!   summary per message; the VM's topic table;
//! - [`exchange`]: requests matched to responses, and what a pair means, as
//!   observations for an observer;
//! - [`metrics`]: observations summed per series and flushed to a metric sink.
//!
//! [`Vm`] owns a VM's configuration, topic table and metrics, and opens connections.
//! [`act`] is the one thing that acts on a connection, when configured: authentication
//! on the app's behalf (Kafka SASL, MongoDB X.509 or SCRAM); it runs before the observer, which
//! only reads. A protocol has a place in each layer (`wire::kafka`, `decode::kafka`,
//! `exchange::kafka`, and MongoDB's beside them); a VM reads one (`protocol`). [`config`] is the pluginConfig,
//! [`contract`] the filter's published contract (JSON Schema, labels, metrics) generated
//! from this code. Lower layers never import higher ones (a test checks the graph).
//!
//! Everything but `glue` is host-free (no `proxy_wasm` import), so it is unit-tested and
//! fuzzed natively; the glue, compiled only for wasm32, is the host calls.
#![deny(unsafe_code)]

pub mod act;
pub mod config;
pub mod contract;
pub mod decode;
pub mod exchange;
pub mod heap;
pub mod labels;
pub mod metrics;
pub mod vm;
pub mod wire;

#[cfg(target_arch = "wasm32")]
mod glue;

pub use config::{Config, ConfigError, Identity, KafkaAuthMechanism, Protocol};
pub use exchange::Connection;
pub use metrics::{MetricSink, Totalizer};
pub use vm::Vm;
pub use wire::Direction;
