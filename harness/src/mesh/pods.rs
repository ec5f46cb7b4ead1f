//! The pods: a network namespace per workload, broker and database, with Istio's traffic
//! capture, and the cluster's names in each pod's `/etc/hosts`.

use anyhow::Result;

use super::jobs::step;
use super::names::{ClusterNames, JAEGER, JAEGER_HOST, MONGODB, OPERATOR, REGISTRY};
use super::plan::{Plan, Program, MONGO_HOST, NAMESPACE, REGISTRY_HOST};
use super::setup::Setup;
use super::supervisor::Mesh;
use crate::components::decoy;
use crate::components::pod::{self, Capture, Network};
use crate::components::registry;

/// A Kafka node's pod.
pub struct BrokerPod {
    pub pod: String,
    /// Its DNS name (`<pod>.<cluster>-kafka-brokers.<namespace>.svc`).
    pub host: String,
}

/// The pods, created.
pub struct Pods {
    pub net: Network,
    pub brokers: Vec<BrokerPod>,
}

impl Pods {
    pub fn is_broker(&self, pod: &str) -> bool {
        self.brokers.iter().any(|b| b.pod == pod)
    }
}

/// Create every pod the run needs, recorded in `mesh.json` before anything runs in them.
pub fn create(setup: &Setup, mesh: &mut Mesh) -> Result<Pods> {
    let (args, bundle, plan) = (&setup.args, &setup.bundle, &setup.plan);
    step("pods: a network namespace per workload, broker and database, Istio's traffic capture");
    let mut net = pod::free_network()?;
    let broker_capture = Capture::from_annotations(&bundle.node_pool.pod_annotations)?;
    let brokers: Vec<BrokerPod> = (0..plan.brokers)
        .map(|i| {
            let pod = format!("{}-{}-{i}", bundle.kafka.name, bundle.node_pool.name);
            let host = format!(
                "{pod}.{}-kafka-brokers.{}.svc",
                bundle.kafka.name, bundle.kafka.namespace
            );
            net.add_pod(&pod, &bundle.kafka.namespace, Some(broker_capture.clone()));
            BrokerPod { pod, host }
        })
        .collect();
    net.add_pod(MONGODB, NAMESPACE, Some(Capture::default()));
    if args.kafka_port_decoy {
        net.add_pod(decoy::POD, NAMESPACE, Some(Capture::default()));
    }
    if setup.with_tracing {
        net.add_pod(JAEGER, "istio-system", None);
    }
    if setup.with_registry {
        // Its management port (health) is probed from outside the mesh, as a kubelet's
        // probes are: excluded from capture.
        let capture = Capture {
            exclude_inbound: vec![registry::MANAGEMENT_PORT],
            ..Capture::default()
        };
        net.add_pod(REGISTRY, NAMESPACE, Some(capture));
    }
    for w in &plan.workloads {
        let capture = if w.program == Program::Connect {
            Capture::from_annotations(&bundle.connect.pod_annotations)?
        } else {
            Capture::default()
        };
        net.add_pod(&w.name, NAMESPACE, Some(capture));
    }
    if let Some(ingress) = &setup.ingress {
        ingress.add_pods(&mut net);
    }
    if let Some(external) = &setup.external {
        external.add_pods(&mut net);
    }
    // Strimzi's operators run without a sidecar.
    net.add_pod(OPERATOR, &bundle.kafka.namespace, None);
    let mut hosts = hosts_file(&net, &setup.names, &brokers, plan)?;
    if let Some(ingress) = &setup.ingress {
        hosts.push_str(&ingress.hosts(&net)?);
    }
    if let Some(external) = &setup.external {
        hosts.push_str(&external.hosts(&net)?);
    }
    net.create(&hosts)?;
    mesh.set_network(net.clone())?;
    println!(
        "  {} pods on {} ({}.0/24), cluster names in /etc/netns/<pod>/hosts",
        net.pods.len(),
        net.bridge,
        net.subnet
    );
    Ok(Pods { net, brokers })
}

/// Every pod's `/etc/hosts`: the cluster's names (service and pod DNS names) to pod
/// addresses, as cluster DNS would answer.
fn hosts_file(
    net: &Network,
    names: &ClusterNames,
    brokers: &[BrokerPod],
    plan: &Plan,
) -> Result<String> {
    let mut lines = vec![
        "# Written by kiosk up: the cluster's names in the local mesh.".to_string(),
        "127.0.0.1 localhost".to_string(),
    ];
    for (i, BrokerPod { pod, host }) in brokers.iter().enumerate() {
        let ip = net.pod(pod)?.ip;
        let mut line = format!("{ip} {host} {host}.cluster.local");
        if i == 0 {
            // A Service of all brokers; here its first (clients re-bootstrap from Metadata).
            let short = names.bootstrap_host.trim_end_matches(".cluster.local");
            line.push_str(&format!(" {} {short}", names.bootstrap_host));
        }
        lines.push(line);
    }
    lines.push(format!("{} {MONGO_HOST}", net.pod(MONGODB)?.ip));
    if let Ok(registry) = net.pod(REGISTRY) {
        lines.push(format!("{} {REGISTRY_HOST}", registry.ip));
    }
    if let Ok(jaeger) = net.pod(JAEGER) {
        lines.push(format!("{} {JAEGER_HOST}", jaeger.ip));
    }
    for w in &plan.workloads {
        if let Some(host) = &w.serves_http {
            lines.push(format!("{} {host}", net.pod(&w.name)?.ip));
        }
    }
    for pod in &net.pods {
        lines.push(format!("{} {}.{}.pod", pod.ip, pod.name, pod.namespace));
    }
    Ok(lines.join("\n") + "\n")
}
