//! kiosk-services: the pipeline services of the `test-kafka-istio-mongo` chart, what the
//! container image carries (and nothing of the local mesh):
//!
//! REST entry ([`rest`]) -> topic -> [`mirror`] -> topic -> Mongo sink ([`sink`]), plus the
//! [`producer`] and [`verify`] jobs (the producer an OAuth 2.0 client of the platform's
//! identity provider when the REST entry is behind the ingress gateway).
//! Shared parts: Kafka client settings ([`kafka`]), the at-least-once consume loop
//! ([`consume`]), the records the jobs send and check ([`record`]), the MongoDB collection
//! arguments ([`mongo`]), one trace across the hops ([`otel`]). [`Command`] is the command
//! line of all of them, used by the `kiosk-services` binary and flattened into `kiosk`.
#![forbid(unsafe_code)]

pub mod consume;
pub mod health;
pub mod kafka;
pub mod mirror;
pub mod mongo;
pub mod otel;
pub mod producer;
pub mod record;
pub mod registry;
pub mod rest;
pub mod schemas;
pub mod sink;
pub mod verify;

/// The services, one subcommand each.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// HTTP entry compatible with the Strimzi Kafka Bridge produce API.
    Rest(rest::Args),
    /// Copy each record of one topic to another (exactly once, in Kafka transactions).
    Mirror(mirror::Args),
    /// Write each record of a topic into MongoDB, idempotently.
    MongoSink(sink::Args),
    /// Post N records to the REST entry.
    Producer(producer::Args),
    /// Check the topics and the collection hold exactly what was sent.
    Verify(verify::Args),
    /// Register a subject's schema in the schema registry with its compatibility level,
    /// and check an allowed and a refused evolution.
    RegisterSchemas(schemas::Args),
    /// A readiness probe: whether a service's health file is fresh (it made progress).
    Health(health::Args),
}

impl Command {
    /// Run the service; `Ok(false)` when a job ran and found a failure (verify).
    pub async fn run(self) -> anyhow::Result<bool> {
        match self {
            Command::Rest(args) => rest::run(args).await.map(|()| true),
            Command::Mirror(args) => mirror::run(args).await.map(|()| true),
            Command::MongoSink(args) => sink::run(args).await.map(|()| true),
            Command::Producer(args) => producer::run(args).await.map(|()| true),
            Command::Verify(args) => verify::run(args).await,
            Command::RegisterSchemas(args) => schemas::run(args).await.map(|()| true),
            Command::Health(args) => health::run(args),
        }
    }
}

/// Log to stderr, filtered by `KIOSK_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KIOSK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
