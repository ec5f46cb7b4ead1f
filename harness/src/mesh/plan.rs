//! The local mesh, declared once as data: which workloads run, what each is a client of,
//! what it serves, and what the fault drill restarts. `kiosk up` derives everything else
//! from it: Kafka's client listeners, each sidecar's routes, the admin ports, Prometheus's
//! targets, the order of start.
//!
//! Adding a workload is one entry here (and, for a new kind of program, one module under
//! `components/`).

use crate::bundle::Bundle;

pub const NAMESPACE: &str = "pipeline";
pub const TOPIC_NAMESPACE: &str = "kafka";
pub const TOPIC_IN: &str = "events";
pub const TOPIC_OUT: &str = "events.mirror";
pub const KAFKA_HOST: &str = "kafka-bootstrap.kafka.svc.cluster.local";
pub const MONGO_HOST: &str = "mongodb.pipeline.svc.cluster.local";
/// The schema registry's Service host.
pub const REGISTRY_HOST: &str = "schema-registry.pipeline.svc.cluster.local";
/// The KafkaConnector the sink runs.
pub const SINK_CONNECTOR: &str = "mongodb-sink";

/// What runs in a workload's container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// A `kiosk-services` service, kept running; its arguments (after the subcommand's
    /// Kafka bootstrap, which the mesh adds).
    Service(Vec<String>),
    /// Kafka Connect running the bundle's KafkaConnectors.
    Connect,
    /// A job the mesh runs to its end: the producer, then verify.
    Job(Job),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    Producer,
    Verify,
}

/// A workload: its program behind its own sidecar.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The workload (and app) name, as Kiali shows it.
    pub name: String,
    pub program: Program,
    /// It speaks Kafka: its sidecar gets a Kafka listener (with the kiosk filter) per
    /// broker, and Kafka a client listener advertising them.
    pub kafka: bool,
    /// It reaches MongoDB through its sidecar.
    pub mongo: bool,
    /// It serves HTTP under this service host (an inbound route on its sidecar).
    pub serves_http: Option<String>,
    /// It calls this workload's HTTP service (an outbound route on its sidecar).
    pub calls: Option<String>,
    /// The KafkaUser it acts as (its identity where Kafka authenticates clients).
    pub kafka_user: Option<String>,
    /// Its Kubernetes ServiceAccount in the bundle: its mTLS identity
    /// (`spiffe://cluster.local/ns/<ns>/sa/<this>`), which AuthorizationPolicies name.
    pub service_account: String,
}

/// The whole mesh.
#[derive(Clone, Debug)]
pub struct Plan {
    pub workloads: Vec<Workload>,
    /// Kafka nodes (combined broker and controller).
    pub brokers: usize,
    /// Topics the platform creates from the bundle's KafkaTopics.
    pub topics: Vec<String>,
    /// The fault drill's faults, in order.
    pub fault_drill: Vec<Fault>,
}

/// One fault of the drill, on a component by name (`kafka`, `envoy-mirror`, `mirror`,
/// `mongodb`, Connect's app name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Stopped and started again (Kafka: every broker at once).
    Restart(String),
    /// One process at a time, each back before the next stops (Kafka's brokers in turn).
    RollingRestart(String),
    /// SIGKILL: the supervisor finds it exited and restarts it, as the kubelet would.
    Kill(String),
}

impl Fault {
    pub fn component(&self) -> &str {
        match self {
            Fault::Restart(name) | Fault::RollingRestart(name) | Fault::Kill(name) => name,
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Restart(name) => write!(f, "{name} stopped and started again"),
            Fault::RollingRestart(name) => write!(f, "{name} restarted one node at a time"),
            Fault::Kill(name) => write!(f, "{name} killed (SIGKILL), left to the supervisor"),
        }
    }
}

impl Plan {
    /// The `test-kafka-istio-mongo` pipeline: producer -> REST entry -> events -> mirror ->
    /// events.mirror -> Kafka Connect's MongoDB sink -> MongoDB, and verify.
    pub fn pipeline(bundle: &Bundle, brokers: usize) -> Plan {
        let connect = bundle.connect.app.clone();
        let rest = "rest".to_string();
        let workload = |name: &str, user: &str, program: Program| Workload {
            name: name.to_string(),
            program,
            kafka: true,
            mongo: false,
            serves_http: None,
            calls: None,
            kafka_user: Some(user.to_string()),
            service_account: name.to_string(),
        };
        // ServiceAccounts as the bundle names them: Strimzi's `<name>-connect` and
        // `<name>-bridge`, the chart's `<release>-<component>` (release `kiosk`).
        let connect_sa = format!("{}-connect", bundle.connect.name);
        let bridge_sa = format!("{}-bridge", bundle.bridge.name);
        let rest_args = {
            // The KafkaBridge's producer settings, as the Bridge would apply them.
            let mut args = vec!["rest".to_string(), "--client-id".into(), rest.clone()];
            for (key, value) in &bundle.bridge.producer_config {
                args.push("--producer-config".into());
                args.push(format!("{key}={value}"));
            }
            args
        };
        let workloads = vec![
            Workload {
                kafka: false,
                calls: Some(rest.clone()),
                kafka_user: None,
                service_account: "kiosk-test-producer".into(),
                ..workload("producer", "", Program::Job(Job::Producer))
            },
            // The REST entry stands in for the KafkaBridge: it acts as the Bridge's user.
            Workload {
                serves_http: Some(format!("{rest}.{NAMESPACE}.svc.cluster.local")),
                service_account: bridge_sa,
                ..workload(&rest, "kiosk-bridge", Program::Service(rest_args))
            },
            Workload {
                service_account: "kiosk-mirror".into(),
                ..workload(
                    "mirror",
                    "kiosk-mirror",
                    Program::Service(
                        ["mirror", "--from", TOPIC_IN, "--to", TOPIC_OUT]
                            .map(String::from)
                            .to_vec(),
                    ),
                )
            },
            Workload {
                mongo: true,
                service_account: connect_sa,
                ..workload(&connect, "kiosk-connect", Program::Connect)
            },
            Workload {
                mongo: true,
                service_account: "kiosk-test-verify".into(),
                ..workload("verify", "kiosk-verify", Program::Job(Job::Verify))
            },
        ];
        let mut topics: Vec<String> = bundle.topics.iter().map(|t| t.name.clone()).collect();
        topics.sort();
        Plan {
            workloads,
            brokers,
            topics,
            fault_drill: vec![
                // Several brokers are rolled as Strimzi rolls them; one is just restarted.
                if brokers > 1 {
                    Fault::RollingRestart("kafka".into())
                } else {
                    Fault::Restart("kafka".into())
                },
                Fault::Restart("envoy-mirror".into()),
                Fault::Kill("mirror".into()),
                Fault::Kill(connect.clone()),
                Fault::Restart("mongodb".into()),
            ],
        }
    }

    /// The workloads that speak Kafka (each gets a client listener on every broker).
    pub fn kafka_clients(&self) -> Vec<&str> {
        self.workloads
            .iter()
            .filter(|w| w.kafka)
            .map(|w| w.name.as_str())
            .collect()
    }

    pub fn workload(&self, name: &str) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.name == name)
    }

    /// The plan's own consistency: names unique, every call names an HTTP-serving
    /// workload, every drill entry names a component the plan starts.
    pub fn check(&self) -> anyhow::Result<()> {
        let mut names = std::collections::BTreeSet::new();
        for w in &self.workloads {
            anyhow::ensure!(names.insert(&w.name), "two workloads named {}", w.name);
            if let Some(callee) = &w.calls {
                let serves = self.workload(callee).and_then(|c| c.serves_http.as_ref());
                anyhow::ensure!(
                    serves.is_some(),
                    "{} calls {callee}, which serves no HTTP",
                    w.name
                );
            }
        }
        for fault in &self.fault_drill {
            let c = fault.component();
            let known = c == "kafka"
                || c == "mongodb"
                || self.workload(c).is_some()
                || c.strip_prefix("envoy-")
                    .is_some_and(|w| self.workload(w).is_some());
            anyhow::ensure!(
                known,
                "the fault drill names `{c}`, which the plan does not start"
            );
        }
        anyhow::ensure!(self.brokers >= 1, "the plan needs at least one broker");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipeline_plan_is_consistent_and_follows_the_bundle() {
        let bundle = Bundle::read(&crate::bundle::default_dir()).unwrap();
        let plan = Plan::pipeline(&bundle, 1);
        plan.check().unwrap();
        assert_eq!(
            plan.kafka_clients(),
            vec!["rest", "mirror", "kiosk-connect", "verify"]
        );
        // The sink is the bundle's Connect, reading what its KafkaConnector names.
        let sink = bundle.connector(SINK_CONNECTOR).unwrap();
        assert_eq!(sink.topics(), vec![TOPIC_OUT.to_string()]);
        assert!(plan.topics.contains(&TOPIC_IN.to_string()));
        assert!(plan.topics.contains(&bundle.connect.offset_storage_topic));
        // Every Kafka client acts as one of the bundle's KafkaUsers.
        for w in plan.workloads.iter().filter(|w| w.kafka) {
            bundle.user(w.kafka_user.as_deref().unwrap()).unwrap();
        }
    }

    #[test]
    fn a_drill_of_something_not_started_is_refused() {
        let bundle = Bundle::read(&crate::bundle::default_dir()).unwrap();
        let mut plan = Plan::pipeline(&bundle, 1);
        plan.fault_drill.push(Fault::Restart("envoy-nobody".into()));
        assert!(plan.check().is_err());
    }
}
