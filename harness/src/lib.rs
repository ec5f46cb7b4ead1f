//! kiosk-harness: the `kiosk` CLI and the local mesh in a box.
//!
//! - [`components`]: the real programs, one module each and one shape (Kafka, Kafka
//!   Connect, Envoy sidecars configured the way Istio configures them, SecantusDB,
//!   Prometheus, the pipeline services), supervised as child processes with logs
//!   ([`process`]);
//! - [`bundle`]: the bundle's Strimzi resources, read as Strimzi's operators read them;
//! - [`mesh`]: the local mesh, declared once as a plan ([`mesh::plan`]), `kiosk up`/`down`;
//! - [`istiod`]: the bundle's Istio resources rendered as istiod renders them: the ingress
//!   gateway's listener (Gateway, VirtualService, RequestAuthentication) and the RBAC filters
//!   of AuthorizationPolicies, for the gateway and the sidecars;
//! - [`operator`]: the Strimzi operators' part against a running Kafka (topics, users' ACLs);
//! - [`dashboard`]: the bundle's Grafana dashboard drawn as a self-contained page;
//! - [`graph`]: the Kiali-style graph from Prometheus ([`prometheus`]: its query API, and
//!   Envoy's text exposition as a scrape reads it);
//! - a recording TCP [`tee`] and the recorded Kafka session used as test data ([`recording`]).
//!
//! The pipeline services themselves live in `kiosk-services` (what the image carries).
#![forbid(unsafe_code)]

pub mod bundle;
pub mod cli;
pub mod components;
pub mod dashboard;
pub mod graph;
pub mod http;
pub mod istiod;
pub mod mesh;
pub mod operator;
pub mod paths;
pub mod ports;
pub mod process;
pub mod prometheus;
pub mod recording;
pub mod tee;

pub use components::envoy::{Sidecar, SidecarSpec};
pub use process::Service;
