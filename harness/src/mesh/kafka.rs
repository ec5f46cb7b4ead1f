//! Kafka in the broker pods, configured as Strimzi configures it: Strimzi's CAs (TLS
//! clients), the User Operator's SASL passwords, and the operators' part run as a job from
//! its own pod.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use super::jobs::{job, step};
use super::names::OPERATOR;
use super::pods::Pods;
use super::secrets::write_secret;
use super::setup::Setup;
use super::supervisor::Mesh;
use crate::components::kafka::{random_password, Kafka, KafkaSpec, SaslListener, TlsListener};
use crate::components::mtls::MeshCa;

/// Strimzi's CAs: the cluster CA signs the brokers, the clients CA the users.
pub struct StrimziCas {
    pub cluster: MeshCa,
    pub clients: MeshCa,
}

/// Kafka, running: what the sidecars and the operator need of it.
pub struct KafkaCluster {
    /// With `--kafka-auth tls`.
    pub cas: Option<StrimziCas>,
    /// KafkaUser -> its SASL password.
    pub passwords: BTreeMap<String, String>,
    /// The bootstrap address from outside the mesh (the operators' pod).
    pub platform_bootstrap: String,
}

pub fn start(setup: &Setup, mesh: &mut Mesh, pods: &Pods) -> Result<KafkaCluster> {
    let (plan, run_dir, names) = (&setup.plan, &setup.run_dir, &setup.names);
    step(&format!(
        "Kafka 4.3.1 (KRaft, {} node{}) in pods {}",
        plan.brokers,
        if plan.brokers == 1 { "" } else { "s" },
        pods.brokers
            .iter()
            .map(|b| b.pod.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let nodes = pods
        .brokers
        .iter()
        .map(|b| Ok((pods.net.pod(&b.pod)?.clone(), b.host.clone())))
        .collect::<Result<Vec<_>>>()?;
    // Strimzi's CAs: the cluster CA signs the brokers, the clients CA the users.
    let tls = if setup.tls_clients {
        let cluster_ca = MeshCa::generate_named(&run_dir.join("certs/cluster-ca"), "cluster-ca")?;
        let keystores = pods
            .brokers
            .iter()
            .map(|b| {
                let names = vec![
                    names.bootstrap_host.clone(),
                    b.host.clone(),
                    format!("{}.cluster.local", b.host),
                ];
                Ok(cluster_ca
                    .issue_server(&b.pod, &names)?
                    .key
                    .with_file_name("keystore.pem"))
            })
            .collect::<Result<Vec<_>>>()?;
        let clients_ca = MeshCa::generate_named(&run_dir.join("certs/clients-ca"), "clients-ca")?;
        Some((
            TlsListener {
                keystores,
                truststore: clients_ca.root_file(),
            },
            StrimziCas {
                cluster: cluster_ca,
                clients: clients_ca,
            },
        ))
    } else {
        None
    };
    let mut kafka_spec = KafkaSpec::in_pods(run_dir, nodes, tls.as_ref().map(|(l, _)| l.clone()))?;
    kafka_spec.config = setup.bundle.kafka.config.clone();
    // The User Operator's part for SASL users: a password per KafkaUser, in its Secret
    // (here a file only root reads), the credential on the brokers.
    let mut passwords = BTreeMap::new();
    if let Some(mechanism) = setup.sasl {
        for w in plan.workloads.iter().filter(|w| w.kafka) {
            let user = w.kafka_user.clone().unwrap_or_default();
            if let std::collections::btree_map::Entry::Vacant(entry) = passwords.entry(user) {
                let password = random_password()?;
                let file = run_dir.join(format!("secrets/{}.password", entry.key()));
                write_secret(&file, password.as_bytes())?;
                entry.insert(password);
            }
        }
        kafka_spec.sasl = Some(SaslListener {
            mechanisms: vec![mechanism],
            users: passwords.clone().into_iter().collect(),
            authorize: true,
        });
        println!(
            "  {} on the plain listener; {} KafkaUser credential(s), held by the sidecars only",
            mechanism.name(),
            passwords.len()
        );
    }
    let platform_bootstrap = kafka_spec.platform_bootstrap_by_name();
    mesh.add(Kafka::start(kafka_spec)?)?;
    Ok(KafkaCluster {
        cas: tls.map(|(_, cas)| cas),
        passwords,
        platform_bootstrap,
    })
}

/// The Strimzi operators' part, from their own pod: every KafkaTopic as declared, and the
/// KafkaUsers' ACLs.
pub fn run_operator(setup: &Setup, pods: &Pods, kafka: &KafkaCluster) -> Result<()> {
    let (args, run_dir) = (&setup.args, &setup.run_dir);
    step("the Topic Operator's part, from its own pod: every KafkaTopic as declared");
    let operator = pods.net.pod(OPERATOR)?.clone();
    let mut topics = operator.command(&setup.kiosk, false);
    topics
        .args(["operator", "--bootstrap", &kafka.platform_bootstrap])
        .args(["--brokers", &setup.plan.brokers.to_string()])
        .args(["--kafka-auth", &args.kafka_auth])
        .arg("--strimzi")
        .arg(&setup.strimzi);
    if !job("strimzi-operator", topics, run_dir)? {
        bail!(
            "the Strimzi operators' part (KafkaTopics, KafkaUsers) failed; see {}",
            run_dir.join("strimzi-operator.log").display()
        );
    }
    Ok(())
}
