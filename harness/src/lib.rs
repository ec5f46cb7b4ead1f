//! kiosk-harness: what the tests and the local mesh use to run the real thing on one
//! machine: Envoy sidecars configured the way Istio configures them, the tansu Kafka
//! broker, supervised child processes, and Envoy's Prometheus output parsed.
#![forbid(unsafe_code)]

pub mod envoy;
pub mod paths;
pub mod ports;
pub mod process;
pub mod prom;
pub mod tansu;

pub use envoy::{Sidecar, SidecarSpec};
pub use process::Service;
