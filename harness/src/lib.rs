//! kiosk-harness: the `kiosk` CLI and what it runs.
//!
//! - the real programs, supervised: Envoy sidecars configured the way Istio configures them
//!   ([`envoy`]), the tansu Kafka broker ([`tansu`]), SecantusDB ([`mongo`]), Prometheus
//!   ([`prometheus`]), child processes with logs ([`process`]);
//! - the pipeline services of the `test-kafka-istio-mongo` chart ([`pipeline`]);
//! - the local mesh in a box ([`mesh`]) and the Kiali-style graph ([`graph`]);
//! - a recording TCP [`tee`] and the recorded Kafka session used as test data ([`record`]).
#![forbid(unsafe_code)]

pub mod cli;
pub mod envoy;
pub mod graph;
pub mod kafka;
pub mod mesh;
pub mod mongo;
pub mod paths;
pub mod pipeline;
pub mod ports;
pub mod process;
pub mod prom;
pub mod prometheus;
pub mod record;
pub mod tansu;
pub mod tee;

pub use envoy::{Sidecar, SidecarSpec};
pub use process::Service;
