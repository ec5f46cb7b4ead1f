//! The Envoy sidecars: what each gets (Istio's listeners, its SPIFFE certificate, the kiosk
//! filter's configuration and the credentials it holds, TLS origination, the
//! AuthorizationPolicies of the registry and the REST entry), started in its pod.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::external::ExternalKafka;
use super::jobs::step;
use super::kafka::KafkaCluster;
use super::mongodb::MongoDb;
use super::names::{
    broker_workload, mongo_subject_parts, MONGODB, MONGO_PORT, REGISTRY, REST_PORT,
};
use super::plan::{MONGO_HOST, NAMESPACE, REGISTRY_HOST, TOPIC_NAMESPACE};
use super::pods::Pods;
use super::setup::Setup;
use super::supervisor::Mesh;
use crate::components::decoy;
use crate::components::envoy::{
    OutboundPort, PodSidecar, Protocol, Sidecar, SidecarSpec, UpstreamTls, ISTIO_CONCURRENCY,
};
use crate::components::kafka::{PLAIN_PORT, TLS_PORT};
use crate::components::mongo::MongoUser;
use crate::components::mtls::MeshCa;
use crate::components::pod;
use crate::components::prometheus::Target;
use crate::components::registry;

/// A sidecar to start: its pod, the workload it serves, and its ports.
struct Planned {
    pod: String,
    workload: String,
    outbound: Vec<OutboundPort>,
    inbound: Vec<u16>,
}

/// What the kiosk filter gets in one sidecar: its WasmPlugins' configurations and the
/// credentials in the istio-proxy container's environment.
struct FilterConfig {
    kafka: Value,
    mongodb: Value,
    env: Vec<(String, String)>,
}

/// The servers the sidecars lead to, running: what their routes, TLS and credentials come
/// from.
pub struct Servers<'a> {
    pub mongodb: &'a MongoDb,
    pub kafka: &'a KafkaCluster,
    /// With `--external-kafka`.
    pub external: Option<&'a ExternalKafka>,
}

/// Start a sidecar in every pod of the mesh; the Prometheus targets of their stats.
pub fn start(
    setup: &Setup,
    mesh: &mut Mesh,
    pods: &Pods,
    ca: &MeshCa,
    servers: &Servers,
    collector: Option<SocketAddr>,
) -> Result<Vec<Target>> {
    let Servers {
        mongodb,
        kafka,
        external,
    } = *servers;
    step("Envoy sidecars: Istio's listeners, mTLS between them, the kiosk filter on Kafka and MongoDB");
    let mut plugin_config = json!({ "kiali": { "topic_namespace": TOPIC_NAMESPACE } });
    if setup.with_registry {
        // Records by their values' schema ids (off by default: it reads record values).
        plugin_config["records_by_schema"] = json!(true);
    }
    let sidecars = planned(setup, pods, mongodb, kafka, external)?;
    let registry_rbac = if setup.with_registry {
        registry_rbac()?
    } else {
        Vec::new()
    };
    let rest_rbac = rest_rbac(setup)?;
    let (plan, bundle) = (&setup.plan, &setup.bundle);
    let mut targets = Vec::new();
    for Planned {
        pod: pod_name,
        workload,
        outbound,
        inbound,
    } in sidecars
    {
        let pod = pods.net.pod(&pod_name)?.clone();
        // Its ServiceAccount's SPIFFE identity: the bundle's for the plan's workloads, and
        // Strimzi's `<cluster>-kafka` for every broker pod (the identity the Kafka
        // WasmPlugin's `kafka_auth.upstreams` names).
        let broker_account = format!("{}-kafka", bundle.kafka.name);
        let account = match plan.workload(&workload) {
            Some(w) => w.service_account.as_str(),
            None if pods.is_broker(&pod_name) => broker_account.as_str(),
            None => workload.as_str(),
        };
        let certs = ca.issue(&pod_name, &pod.namespace, account, Some(pod::SIDECAR_UID))?;
        let mut filter = filter_config(
            setup,
            &plugin_config,
            &setup.kafka_upstreams,
            &workload,
            kafka,
            mongodb,
        );
        // A tenant's client of the external Kafka: its namespace's WasmPlugin and its
        // KafkaUser's credential there.
        if let Some((config, env)) = external.and_then(|e| e.filter(&workload)) {
            filter.kafka = config;
            filter.env = env;
        }
        let spec = SidecarSpec {
            env: filter.env,
            mongodb_plugin_config: filter.mongodb,
            workload: workload.clone(),
            namespace: pod.namespace.clone(),
            app: workload.clone(),
            admin_port: 0,
            routes: Vec::new(),
            plugin_config: filter.kafka,
            wasm: setup.wasm.clone(),
            concurrency: ISTIO_CONCURRENCY,
            pod: Some(PodSidecar {
                tracing: collector,
                strict: setup.policies.strict(&pod.namespace),
                // The brokers' TLS listener (PeerAuthentication portLevelMtls DISABLE).
                inbound_passthrough: if setup.tls_clients && pods.is_broker(&pod_name) {
                    vec![TLS_PORT]
                } else if pod_name == MONGODB && mongodb.ca.is_some() {
                    vec![MONGO_PORT]
                } else {
                    vec![]
                },
                // HTTP ports as Istio treats them, each with its AuthorizationPolicy's RBAC
                // (the registry's; the REST entry's, which plays the KafkaBridge).
                inbound_http: if pod_name == REGISTRY {
                    vec![(registry::API_PORT, registry_rbac.clone())]
                } else if plan
                    .workload(&workload)
                    .is_some_and(|w| w.serves_http.is_some())
                {
                    vec![(REST_PORT, rest_rbac.clone())]
                } else {
                    vec![]
                },
                pod: pod.clone(),
                certs,
                outbound,
                inbound,
            }),
        };
        let sidecar = Sidecar::start(spec, &setup.run_dir)?;
        let (ip, port) = sidecar.stats_endpoint();
        targets.push(Target {
            address: format!("{ip}:{port}"),
            namespace: pod.namespace.clone(),
            workload,
        });
        mesh.add(sidecar)?;
    }
    Ok(targets)
}

/// Every sidecar of the mesh, in the order they start: the brokers', MongoDB's, the
/// decoy's and the registry's, then the plan's workloads' with their outbound ports (and,
/// where the sidecar originates TLS, the workload's client certificate).
fn planned(
    setup: &Setup,
    pods: &Pods,
    mongodb: &MongoDb,
    kafka: &KafkaCluster,
    external: Option<&ExternalKafka>,
) -> Result<Vec<Planned>> {
    let (args, plan, names) = (&setup.args, &setup.plan, &setup.names);
    let mut sidecars = Vec::new();
    for broker in &pods.brokers {
        sidecars.push(Planned {
            pod: broker.pod.clone(),
            workload: broker_workload(&setup.bundle),
            outbound: vec![],
            inbound: vec![PLAIN_PORT],
        });
    }
    // With TLS, MongoDB's port ends at mongod (the bundle's excludeInboundPorts and
    // PeerAuthentication portLevelMtls DISABLE): the sidecar passes it through.
    let mongo_inbound = if mongodb.ca.is_some() {
        vec![]
    } else {
        vec![MONGO_PORT]
    };
    sidecars.push(Planned {
        pod: MONGODB.to_string(),
        workload: MONGODB.to_string(),
        outbound: vec![],
        inbound: mongo_inbound,
    });
    if args.kafka_port_decoy {
        sidecars.push(Planned {
            pod: decoy::POD.to_string(),
            workload: decoy::POD.to_string(),
            outbound: vec![],
            inbound: vec![PLAIN_PORT],
        });
    }
    if setup.with_registry {
        sidecars.push(Planned {
            pod: REGISTRY.to_string(),
            workload: REGISTRY.to_string(),
            outbound: vec![],
            inbound: vec![registry::API_PORT],
        });
    }
    for w in &plan.workloads {
        let mut outbound = Vec::new();
        if w.kafka {
            // Plain: Istio mTLS to the broker's sidecar. TLS: the sidecar originates TLS to
            // Kafka's own listener with the workload's KafkaUser certificate (a
            // DestinationRule MUTUAL); the kiosk filter still reads plaintext before it.
            let tls = match (&kafka.cas, &w.kafka_user) {
                (Some(cas), Some(user)) => UpstreamTls::Originate {
                    client: Some(cas.clients.issue_user(
                        &format!("{}-kafka-user", w.name),
                        user,
                        Some(pod::SIDECAR_UID),
                    )?),
                    ca: cas.cluster.root_file(),
                    server_name: names.bootstrap_host.clone(),
                },
                _ => UpstreamTls::IstioMutual,
            };
            outbound.push(OutboundPort {
                port: setup.client_port,
                protocol: Protocol::Kafka,
                host: names.bootstrap_host.clone(),
                tls,
            });
        }
        if w.mongo {
            // X.509: the sidecar originates TLS to mongod with the workload's certificate
            // (a DestinationRule MUTUAL with credentialName), and the kiosk filter, reading
            // the plaintext before it, authenticates as that certificate's subject.
            let tls = match &mongodb.ca {
                Some(ca) => UpstreamTls::Originate {
                    client: Some(ca.issue_client(
                        &format!("{}-mongodb-client", w.name),
                        &mongo_subject_parts(&w.name),
                        Some(pod::SIDECAR_UID),
                    )?),
                    ca: ca.root_file(),
                    server_name: MONGO_HOST.into(),
                },
                None => UpstreamTls::IstioMutual,
            };
            outbound.push(OutboundPort {
                port: MONGO_PORT,
                protocol: Protocol::MongoDb,
                host: MONGO_HOST.into(),
                tls,
            });
        }
        if let (Some(ingress), Some(_)) = (&setup.ingress, &w.calls) {
            // Through the ingress gateway, with a token from the issuer.
            outbound.extend(ingress.client_ports());
        }
        // The REST entry's Service, which istiod gives every sidecar (as every Service): its
        // caller's without a gateway, and anyone's (its AuthorizationPolicy refuses them).
        if w.serves_http.is_none() {
            let host = plan
                .workloads
                .iter()
                .find_map(|c| c.serves_http.clone())
                .unwrap_or_default();
            outbound.push(OutboundPort {
                port: REST_PORT,
                protocol: Protocol::Http,
                host,
                tls: UpstreamTls::IstioMutual,
            });
        }
        if setup.with_registry {
            outbound.push(OutboundPort {
                port: registry::API_PORT,
                protocol: Protocol::Http,
                host: REGISTRY_HOST.into(),
                tls: UpstreamTls::IstioMutual,
            });
        }
        let inbound = if w.serves_http.is_some() {
            vec![REST_PORT]
        } else {
            vec![]
        };
        sidecars.push(Planned {
            pod: w.name.clone(),
            workload: w.name.clone(),
            outbound,
            inbound,
        });
    }
    if let Some(external) = external {
        for tenant in &external.prepared.tenants {
            for workload in [&tenant.producer, &tenant.consumer] {
                sidecars.push(Planned {
                    pod: workload.clone(),
                    workload: workload.clone(),
                    outbound: vec![external.outbound(tenant)],
                    inbound: vec![],
                });
            }
        }
    }
    Ok(sidecars)
}

/// The registry's sidecar enforces the bundle's AuthorizationPolicy for it.
fn registry_rbac() -> Result<Vec<Value>> {
    // Its pod's labels as the chart renders them (release `kiosk`).
    let labels = BTreeMap::from([
        ("app".to_string(), REGISTRY.to_string()),
        (
            "app.kubernetes.io/name".to_string(),
            "test-kafka-istio-mongo".to_string(),
        ),
        (
            "app.kubernetes.io/instance".to_string(),
            "kiosk".to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            REGISTRY.to_string(),
        ),
    ]);
    let istio = crate::bundle::default_istio_dir();
    let policies = crate::istiod::workload_policies(&istio, NAMESPACE, &labels)?;
    if policies.is_empty() {
        bail!(
            "no AuthorizationPolicy in {} selects the schema registry ({REGISTRY} in {NAMESPACE})",
            istio.display()
        );
    }
    crate::istiod::rbac_filters(&policies)
}

/// The REST entry's sidecar enforces the bundle's AuthorizationPolicy for the KafkaBridge's
/// pods (issue 28): only the ingress gateway's identity may post. Without the gateway
/// (`--ingress none`) the chart names the producer too (rest.gateway.enabled false), and so
/// does the box.
fn rest_rbac(setup: &Setup) -> Result<Vec<Value>> {
    let bridge = &setup.bundle.bridge;
    // The labels Strimzi gives the KafkaBridge's pods.
    let labels = BTreeMap::from([
        ("strimzi.io/cluster".to_string(), bridge.name.clone()),
        ("strimzi.io/kind".to_string(), "KafkaBridge".to_string()),
        (
            "strimzi.io/name".to_string(),
            format!("{}-bridge", bridge.name),
        ),
    ]);
    let istio = crate::bundle::default_istio_dir();
    let mut policies = crate::istiod::workload_policies(&istio, NAMESPACE, &labels)?;
    if policies.is_empty() {
        bail!(
            "no AuthorizationPolicy in {} selects the REST entry (KafkaBridge {} in {NAMESPACE})",
            istio.display(),
            bridge.name
        );
    }
    if setup.ingress.is_none() {
        let producer = setup
            .plan
            .workloads
            .iter()
            .find(|w| w.calls.is_some())
            .map(|w| format!("cluster.local/ns/{NAMESPACE}/sa/{}", w.service_account))
            .context("the plan has no producer")?;
        for p in policies.iter_mut().filter(|p| p.action == "ALLOW") {
            for rule in &mut p.rules {
                for from in rule["from"].as_array_mut().into_iter().flatten() {
                    if let Some(ps) = from["source"]["principals"].as_array_mut() {
                        ps.push(json!(producer));
                    }
                }
            }
        }
    }
    crate::istiod::rbac_filters(&policies)
}

/// The filter's configurations for `workload`'s sidecar, from the bundle's WasmPlugins,
/// and the credentials it authenticates with.
fn filter_config(
    setup: &Setup,
    plugin_config: &Value,
    kafka_upstreams: &Value,
    workload: &str,
    kafka: &KafkaCluster,
    mongodb: &MongoDb,
) -> FilterConfig {
    // SASL by the filter: the WasmPlugin's kafka_auth, and the workload's KafkaUser
    // credential in the istio-proxy container's environment (vmConfig.env HOST).
    let user = setup
        .plan
        .workload(workload)
        .and_then(|w| w.kafka_user.clone());
    let (plugin_config, env) = match (
        setup.sasl,
        user.and_then(|u| kafka.passwords.get_key_value(&u)),
    ) {
        (Some(mechanism), Some((user, password))) => {
            let mut config = plugin_config.clone();
            config["kafka_auth"] = json!({
                "mechanism": mechanism.name(),
                "upstreams": kafka_upstreams,
            });
            let env = vec![
                ("KIOSK_KAFKA_USERNAME".to_string(), user.clone()),
                ("KIOSK_KAFKA_PASSWORD".to_string(), password.clone()),
            ];
            (config, env)
        }
        _ => (plugin_config.clone(), Vec::new()),
    };
    // MongoDB: the WasmPlugin for its port, and a SCRAM user's credential in the
    // sidecar's environment as for Kafka.
    let mut env = env;
    let mut mongodb_plugin_config = json!({ "protocol": "mongodb" });
    let mongo_user = mongodb
        .users
        .iter()
        .find(|u| u.name == format!("{workload}-mongodb"));
    if mongodb.ca.is_some() {
        mongodb_plugin_config["mongodb_auth"] = json!({ "mechanism": "MONGODB-X509" });
    } else if let Some(MongoUser {
        name,
        password: Some(password),
        ..
    }) = mongo_user
    {
        // The box's MongoDB pod runs as ServiceAccount `mongodb`.
        mongodb_plugin_config["mongodb_auth"] = json!({
            "mechanism": "SCRAM-SHA-256",
            "upstreams": { "principals": [format!("cluster.local/ns/{NAMESPACE}/sa/{MONGODB}")] },
        });
        env.push(("KIOSK_MONGODB_USERNAME".to_string(), name.clone()));
        env.push(("KIOSK_MONGODB_PASSWORD".to_string(), password.clone()));
    }
    FilterConfig {
        kafka: plugin_config,
        mongodb: mongodb_plugin_config,
        env,
    }
}
