//! The external Kafka and its tenants as the bundle declares them (`--external-kafka`), read
//! and checked before anything starts: the ServiceEntry's host and port, the standalone
//! operators' KafkaTopics and KafkaUsers (`strimzi/external/`), and per tenant its users,
//! topic, WasmPlugin and DestinationRule (`istio/external-kafka/`). What runs is
//! [`super::external`].

use std::path::PathBuf;

use anyhow::{bail, Result};
use serde_json::Value;

use crate::bundle::ClusterClients;
use crate::components::pod::{Capture, Network};
use crate::istiod::ExternalService;

/// The external broker's pod.
pub const POD: &str = "kafka-external-0";
/// The tenants, each a namespace of the bundle with a producer and a consumer.
const TENANTS: [&str; 2] = ["tenant-a", "tenant-b"];
/// The bundle's ServiceEntry and WasmPlugins for it.
const SERVICE_ENTRY: &str = "kafka-external";
const WASM_PLUGIN: &str = "kiosk-external";

/// One tenant: its namespace, its two workloads (each named as its KafkaUser), the topic
/// they use, and what its namespace's Istio resources give their sidecars.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub namespace: String,
    pub producer: String,
    pub consumer: String,
    pub topic: String,
    /// The `kiosk-external` WasmPlugin's pluginConfig in this namespace.
    pub plugin_config: Value,
    /// The DestinationRule's SNI for the external host.
    pub sni: String,
}

impl Tenant {
    /// The consumer group its consumer uses (the KafkaUser's ACLs allow `<tenant>.` groups).
    pub fn group(&self) -> String {
        format!("{}.readers", self.namespace)
    }
}

/// What `--external-kafka` runs, read and checked before anything starts.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The ServiceEntry: the external host and port.
    pub service: ExternalService,
    /// The standalone operators' resources (`strimzi/external/`).
    pub strimzi: PathBuf,
    pub clients: ClusterClients,
    pub tenants: Vec<Tenant>,
}

/// Read the bundle's external Kafka: every tenant's users, topic, WasmPlugin and
/// DestinationRule must be there.
pub fn prepare(strimzi: PathBuf, istio: PathBuf) -> Result<Prepared> {
    let service = crate::istiod::external_service(&istio, SERVICE_ENTRY)?;
    let clients = ClusterClients::read(&strimzi)?;
    let tenants = TENANTS
        .iter()
        .map(|namespace| {
            let tenant = Tenant {
                namespace: namespace.to_string(),
                producer: format!("{namespace}-producer"),
                consumer: format!("{namespace}-consumer"),
                topic: format!("{namespace}.orders"),
                plugin_config: crate::bundle::wasm_plugin_config(
                    &istio,
                    Some(namespace),
                    WASM_PLUGIN,
                )?,
                sni: crate::istiod::simple_tls_sni(
                    &istio,
                    namespace,
                    &service.host,
                    service.port,
                )?,
            };
            for user in [&tenant.producer, &tenant.consumer] {
                if !clients.users.iter().any(|u| &u.name == user) {
                    bail!("no KafkaUser {user} in {}", strimzi.display());
                }
            }
            if !clients.topics.iter().any(|t| t.name == tenant.topic) {
                bail!("no KafkaTopic {} in {}", tenant.topic, strimzi.display());
            }
            if tenant.plugin_config["kafka_auth"]["mechanism"] != "SCRAM-SHA-512" {
                bail!("{}: WasmPlugin {namespace}/{WASM_PLUGIN}: kafka_auth.mechanism must be SCRAM-SHA-512 (the external cluster's users)", istio.display());
            }
            Ok(tenant)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Prepared {
        service,
        strimzi,
        clients,
        tenants,
    })
}

impl Prepared {
    /// The broker's pod (no sidecar: outside the mesh) and each tenant's two pods.
    pub fn add_pods(&self, net: &mut Network) {
        net.add_pod(POD, &self.service.namespace, None);
        for t in &self.tenants {
            for pod in [&t.producer, &t.consumer] {
                net.add_pod(pod, &t.namespace, Some(Capture::default()));
            }
        }
    }

    /// The external host in every pod's `/etc/hosts`, as public DNS would answer it.
    pub fn hosts(&self, net: &Network) -> Result<String> {
        Ok(format!("{} {}\n", net.pod(POD)?.ip, self.service.host))
    }

    /// The tenant a workload belongs to.
    pub fn tenant_of(&self, workload: &str) -> Option<&Tenant> {
        self.tenants
            .iter()
            .find(|t| t.producer == workload || t.consumer == workload)
    }

    /// What the tenants' apps dial: the ServiceEntry's host and port.
    pub fn bootstrap(&self) -> String {
        format!("{}:{}", self.service.host, self.service.port)
    }
}
