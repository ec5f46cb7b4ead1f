//! `kiosk up`'s flags.

use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct UpArgs {
    /// Records the producer sends.
    #[arg(long, short = 'n', default_value_t = 1000)]
    pub records: u64,
    /// Stop everything after printing verify's result and the graph, exiting with
    /// verify's status (for scripts and CI). Without it the mesh stays up until Ctrl-C or
    /// `kiosk down`.
    #[arg(long)]
    pub once: bool,
    /// The Bridge format the producer uses: json or binary.
    #[arg(long, default_value = "json", value_parser = ["json", "binary"])]
    pub format: String,
    /// Records per second the producer sends: a steady flow over several scrape
    /// intervals, so that Prometheus and Kiali see rates.
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    /// The fault drill: while the producer runs, stop every Kafka broker for a few
    /// seconds, restart the mirror's sidecar, then restart MongoDB. The pipeline must
    /// resume by itself and verify must still find exactly N records.
    #[arg(long)]
    pub faults: bool,
    /// A service on Kafka's port that is not a broker (pod `kafka-decoy`, its own
    /// identity): the test that the filter sends no credential to it.
    #[arg(long, hide = true)]
    pub kafka_port_decoy: bool,
    /// Kafka nodes (each a broker and a KRaft controller voter). Each advertises its own
    /// address, so clients open one connection per broker, each through their sidecar.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=5))]
    pub brokers: u16,
    /// How Kafka authenticates clients, the apps holding no secret in every case:
    /// `scram-sha-512` (the bundle's: Strimzi's plain listener requires SASL, and the kiosk
    /// filter in each sidecar authenticates as the workload's KafkaUser, the password in
    /// the sidecar's environment as the User Operator's Secret puts it there), `plain`
    /// (the same with SASL PLAIN), `tls` (Strimzi's TLS listener requiring client
    /// certificates; each sidecar originates TLS with its workload's user certificate),
    /// or `none` (no authentication). ACLs from the KafkaUsers but with `none`.
    #[arg(long, default_value = "scram-sha-512", value_parser = ["scram-sha-512", "plain", "tls", "none"])]
    pub kafka_auth: String,
    /// How MongoDB authenticates clients, the apps' URIs holding no secret in every case:
    /// `x509` (the bundle's: MongoDB requires TLS, client certificates and authentication;
    /// each client's sidecar originates TLS with its workload's certificate and the kiosk
    /// filter sends MONGODB-X509's `authenticate`), `scram-sha-256` (password users, the
    /// kiosk filter authenticating with the password in the sidecar's environment; Istio
    /// mTLS to MongoDB's sidecar), or `none` (no users).
    #[arg(long, default_value = "x509", value_parser = ["x509", "scram-sha-256", "none"])]
    pub mongodb_auth: String,
    /// The schema registry: `apicurio` (Apicurio Registry in its own pod, its sidecar
    /// enforcing the bundle's AuthorizationPolicy; the mock schema registered at start by
    /// the producer's identity) or `none`.
    #[arg(long, default_value = "apicurio", value_parser = ["apicurio", "none"])]
    pub schema_registry: String,
    /// Tracing: `jaeger` (Jaeger v2 in its own pod; every sidecar and the gateway trace
    /// HTTP requests as a Telemetry resource makes istiod configure them, and the producer,
    /// the REST entry and the mirror carry one trace per request into the records), `none`,
    /// or `auto` (the default: `jaeger` when `scripts/setup.sh` has built it, which
    /// `scripts/setup.sh --demo` leaves out for a short first set-up; otherwise `none`, and
    /// `kiosk up` says so).
    #[arg(long, default_value = "auto", value_parser = ["auto", "jaeger", "none"])]
    pub tracing: String,
    /// The Strimzi resources the mesh reads (KafkaTopics, KafkaConnect, KafkaConnector,
    /// KafkaBridge, Kafka), as Strimzi's operators would: by default the bundle's own.
    #[arg(long, value_name = "DIR")]
    pub strimzi: Option<PathBuf>,
    /// An external Kafka beside the pipeline's: a cluster the mesh does not run (pod
    /// `kafka-external-0`, no sidecar, `SASL_SSL` with SCRAM-SHA-512 and its own CA, at the
    /// bundle's ServiceEntry host), its topics and users from `strimzi/external/`, and two
    /// tenants (`tenant-a`, `tenant-b`) each producing and consuming its own topic through
    /// its sidecars, then reaching for the other's, which the ACLs refuse.
    #[arg(long)]
    pub external_kafka: bool,
    /// The REST entry's ingress: `jwt` (an ingress gateway pod configured from the bundle's
    /// Gateway, VirtualService, RequestAuthentication and AuthorizationPolicy; the producer
    /// gets a token from the identity provider they name, Keycloak with the bundle's realm)
    /// or `none` (the producer calls the REST entry directly).
    #[arg(long, default_value = "jwt", value_parser = ["jwt", "none"])]
    pub ingress: String,
    /// Seconds between two fetches of the identity provider's JWKS for the gateway, as
    /// istiod's PILOT_JWT_PUB_KEY_REFRESH_INTERVAL (20 minutes by default); after a key
    /// rotation, tokens signed by the new key pass once it was fetched.
    #[arg(long, default_value_t = 1200, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub jwks_refresh: u64,
}
