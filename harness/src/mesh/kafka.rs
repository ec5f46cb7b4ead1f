//! Kafka in the broker pods, configured as Strimzi configures it: Strimzi's CAs (TLS
//! clients), the User Operator's SASL passwords, and the operators' part run as a job from
//! its own pod.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};

use super::jobs::{job, step};
use super::names::OPERATOR;
use super::pods::Pods;
use super::secrets::write_secret;
use super::setup::Setup;
use super::supervisor::Mesh;
use crate::components::kafka::{
    random_password, Kafka, KafkaSpec, SaslListener, TlsListener, TLS_PORT,
};
use crate::components::mtls::MeshCa;
use crate::components::pod::Network;

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
                port: TLS_PORT,
                keystores,
                client_ca: Some(clients_ca.root_file()),
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
    step("the Topic Operator's part, from its own pod: every KafkaTopic as declared");
    operator_job(
        setup,
        &pods.net,
        "strimzi-operator",
        &setup.strimzi,
        &kafka.platform_bootstrap,
        setup.plan.brokers,
        &setup.args.kafka_auth,
    )
}

/// `kiosk operator` from the operators' pod (no sidecar) as job `name`: the KafkaTopics and
/// KafkaUsers of `strimzi` applied through `bootstrap` (a platform listener), with users
/// named as `kafka_auth` authenticates them.
pub fn operator_job(
    setup: &Setup,
    net: &Network,
    name: &str,
    strimzi: &Path,
    bootstrap: &str,
    brokers: usize,
    kafka_auth: &str,
) -> Result<()> {
    let operator = net.pod(OPERATOR)?.clone();
    let mut command = operator.command(&setup.kiosk, false);
    command
        .args(["operator", "--bootstrap", bootstrap])
        .args(["--brokers", &brokers.to_string()])
        .args(["--kafka-auth", kafka_auth])
        .arg("--strimzi")
        .arg(strimzi);
    if !job(name, command, &setup.run_dir)? {
        bail!(
            "the Strimzi operators' part (KafkaTopics, KafkaUsers of {}) failed; see {}",
            strimzi.display(),
            setup.run_dir.join(format!("{name}.log")).display()
        );
    }
    Ok(())
}
