//! kiosk-filter: a proxy-wasm network filter that reads the Kafka protocol passing
//! through an Envoy sidecar and turns it into per-topic metrics and Kiali graph edges.
//!
//! Data flows one way: bytes -> [`frame`]s -> decoded messages ([`kafka`]) ->
//! [`observe`]d facts -> [`metrics`] -> a metric sink. Everything but `glue` is
//! host-free (no `proxy_wasm` import), so it is unit-tested and fuzzed natively; the
//! glue, compiled only for wasm32, is a page of host calls.
//!
//! The filter only reads: it never changes, holds back or injects a byte.
#![forbid(unsafe_code)]

pub mod config;
pub mod connection;
pub mod correlation;
pub mod frame;
pub mod kafka;
pub mod labels;
pub mod metrics;
pub mod observe;
pub mod topics;

#[cfg(target_arch = "wasm32")]
mod glue;

pub use config::{Config, ConfigError, Identity};
pub use connection::Connection;
pub use metrics::{MetricSink, Recorder, Totalizer};
