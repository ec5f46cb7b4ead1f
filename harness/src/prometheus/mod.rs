//! Prometheus as the harness reads it: what a scrape of a sidecar's `/stats/prometheus`
//! says ([`scrape`]: Envoy's text exposition, parsed), and the query API of the Prometheus
//! server the local mesh runs ([`api`]: PromQL instant and range queries). The server
//! itself is a component ([`crate::components::prometheus`]).

pub mod api;
pub mod scrape;

pub use api::{InstantSample, PromClient};
