//! The names and ports of the local mesh's pods and Services, as the cluster has them.

use anyhow::{bail, Context, Result};

use super::plan::{NAMESPACE, REGISTRY_HOST};
use crate::bundle::Bundle;
use crate::components::kafka::PLAIN_PORT;
use crate::components::mtls::DnType;
use crate::components::registry;

/// The pod running Strimzi's operators' part (creating the KafkaTopics), without a sidecar.
pub const OPERATOR: &str = "strimzi-operator";
/// MongoDB's pod and workload.
pub const MONGODB: &str = "mongodb";
/// The schema registry's pod and workload.
pub const REGISTRY: &str = "schema-registry";
/// Jaeger's pod, and the collector's Service as Istio's samples/addons/jaeger.yaml names it.
pub const JAEGER: &str = "jaeger";
pub const JAEGER_HOST: &str = "jaeger-collector.istio-system.svc.cluster.local";
/// The subject of the `events` topic's values.
pub const SCHEMA_SUBJECT: &str = "events-value";

/// The registry's Confluent-compatible API as the apps reach it (`SCHEMA_REGISTRY_URL`).
pub fn registry_url() -> String {
    format!(
        "http://{REGISTRY_HOST}:{}{}",
        registry::API_PORT,
        registry::CCOMPAT_PATH
    )
}
pub const MONGO_PORT: u16 = 27017;
/// The database the pipeline writes (the KafkaConnector's `database`, verify's default).
pub const MONGO_DATABASE: &str = "pipeline";

/// A MongoDB client workload's X.509 identity as the bundle's issuer writes it
/// (`CN=<workload>,OU=<namespace>,O=kiosk`): its certificate's subject, most specific
/// first.
pub fn mongo_subject_parts(workload: &str) -> [(DnType, &str); 3] {
    [
        (DnType::CommonName, workload),
        (DnType::OrganizationalUnitName, NAMESPACE),
        (DnType::OrganizationName, "kiosk"),
    ]
}

/// That identity as RFC 4514 prints it: the workload's MongoDB user on `$external`.
pub fn mongo_subject(workload: &str) -> String {
    format!("CN={workload},OU={NAMESPACE},O=kiosk")
}
/// The REST entry's port (the Bridge's 8080).
pub const REST_PORT: u16 = 8080;
/// Kafka Connect's REST API (excluded from capture by the bundle's annotations).
pub const CONNECT_REST_PORT: u16 = 8083;

/// The cluster's service names, from the bundle.
pub struct ClusterNames {
    /// The host of the KafkaConnect's `spec.bootstrapServers`: what the apps dial.
    pub bootstrap_host: String,
}

impl ClusterNames {
    pub fn of(bundle: &Bundle) -> Result<ClusterNames> {
        let bootstrap = bundle.connect.bootstrap_servers.clone();
        let (host, port) = bootstrap
            .split(',')
            .next()
            .and_then(|s| s.rsplit_once(':'))
            .context("KafkaConnect spec.bootstrapServers")?;
        if port != PLAIN_PORT.to_string() {
            bail!("the local mesh serves Kafka's plain listener on {PLAIN_PORT}; the KafkaConnect dials {bootstrap}");
        }
        if bundle.bridge.bootstrap_servers != bootstrap {
            bail!(
                "the KafkaBridge dials {} and the KafkaConnect {bootstrap}: the local mesh needs one bootstrap address",
                bundle.bridge.bootstrap_servers
            );
        }
        Ok(ClusterNames {
            bootstrap_host: host.to_string(),
        })
    }
}

/// The workload name of the broker pods (their StrimziPodSet).
pub fn broker_workload(bundle: &Bundle) -> String {
    format!("{}-{}", bundle.kafka.name, bundle.node_pool.name)
}
