//! The external Kafka (`kiosk up --external-kafka`): a Kafka the mesh does not run, as a
//! managed Kafka looks from a cluster, and two tenants using it through their sidecars,
//! configured from the bundle's `strimzi/external/` and `istio/external-kafka/`.
//!
//! ```text
//! tenant-a-producer -> [sidecar: kiosk SASL SCRAM-SHA-512, TLS origination] -> kafka.external.example:9096
//! kafka.external.example:9096 -> [sidecar] tenant-a-consumer        (the same for tenant-b)
//! ```
//!
//! The broker (pod `kafka-external-0`, namespace `kafka-external`) has no sidecar and one
//! client listener, `SASL_SSL` with SCRAM-SHA-512 and its own CA, advertising the
//! ServiceEntry's host. The apps speak plain Kafka with no credential and no TLS setting;
//! the tenants' sidecars add SASL (the kiosk filter, with the workload's KafkaUser
//! credential, sent only to the ServiceEntry's cluster) and TLS (the DestinationRule's
//! SIMPLE origination with the external CA). Topics and ACLs come from the standalone
//! operators' KafkaTopics and KafkaUsers, applied by `kiosk operator` as for the internal
//! cluster: over the broker's platform listener (a super user), where the bundle's
//! standalone operators use SASL_SSL with the platform's admin credential.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::jobs::step;
use super::kafka::operator_job;
use super::secrets::write_secret;
use super::setup::Setup;
use super::supervisor::Mesh;
use super::tenancy::{Prepared, Tenant, POD};
use crate::components::envoy::{OutboundPort, Protocol, UpstreamTls};
use crate::components::kafka::{random_password, Kafka, KafkaSpec, SaslListener, TlsListener};
use crate::components::mtls::MeshCa;
use crate::components::pod::Network;
use crate::components::{java, kafka_perf};
use kiosk_filter::act::sasl::Mechanism;

/// The external cluster, running.
pub struct ExternalKafka {
    pub prepared: Prepared,
    /// Its CA, which the tenants' DestinationRules name (`credentialName`).
    pub ca: PathBuf,
    /// KafkaUser -> its SCRAM password (the User Operator's Secret).
    pub passwords: BTreeMap<String, String>,
}

impl ExternalKafka {
    /// A tenant workload's outbound port: plain Kafka from the app, the kiosk filter, then
    /// TLS originated to the broker with the external CA.
    pub fn outbound(&self, tenant: &Tenant) -> OutboundPort {
        OutboundPort {
            port: self.prepared.service.port,
            protocol: Protocol::Kafka,
            host: self.prepared.service.host.clone(),
            tls: UpstreamTls::Originate {
                client: None,
                ca: self.ca.clone(),
                server_name: tenant.sni.clone(),
            },
        }
    }

    /// The filter's configuration for a tenant workload's sidecar and the credential in
    /// its environment.
    pub fn filter(&self, workload: &str) -> Option<(Value, Vec<(String, String)>)> {
        let tenant = self.prepared.tenant_of(workload)?;
        let password = self.passwords.get(workload)?;
        let env = vec![
            ("KIOSK_KAFKA_USERNAME".to_string(), workload.to_string()),
            ("KIOSK_KAFKA_PASSWORD".to_string(), password.clone()),
        ];
        Some((tenant.plugin_config.clone(), env))
    }
}

/// Start the external broker with its CA and its users' SCRAM credentials, then apply the
/// standalone operators' KafkaTopics and KafkaUsers' ACLs.
pub fn start(
    prepared: &Prepared,
    setup: &Setup,
    mesh: &mut Mesh,
    net: &Network,
) -> Result<ExternalKafka> {
    let host = &prepared.service.host;
    step(&format!(
        "the external Kafka: {host}:{} (SASL_SSL, SCRAM-SHA-512, its own CA) in pod {POD}, no sidecar",
        prepared.service.port
    ));
    let dir = setup.run_dir.join("kafka-external");
    let ca = MeshCa::generate_named(&dir.join("certs/ca"), "kafka-external-ca")?;
    let keystore = ca
        .issue_server(POD, std::slice::from_ref(host))?
        .key
        .with_file_name("keystore.pem");
    let mut passwords = BTreeMap::new();
    for user in &prepared.clients.users {
        let password = random_password()?;
        let file = setup
            .run_dir
            .join(format!("secrets/kafka-external/{}.password", user.name));
        write_secret(&file, password.as_bytes())?;
        passwords.insert(user.name.clone(), password);
    }
    let pod = net.pod(POD)?.clone();
    let listener = TlsListener {
        port: prepared.service.port,
        keystores: vec![keystore],
        client_ca: None,
    };
    let mut spec = KafkaSpec::in_pods(&dir, vec![(pod, host.clone())], Some(listener))?;
    spec.name = "kafka-external".into();
    spec.sasl = Some(SaslListener {
        mechanisms: vec![Mechanism::ScramSha512],
        users: passwords.clone().into_iter().collect(),
        authorize: true,
    });
    let platform = spec.platform_bootstrap_by_name();
    mesh.add(Kafka::start(spec)?)?;
    println!(
        "  {} KafkaUser credential(s) (SCRAM-SHA-512), held by the tenants' sidecars only",
        passwords.len()
    );
    step("the standalone Topic and User Operators' part: the external cluster's KafkaTopics and ACLs");
    operator_job(
        setup,
        net,
        "strimzi-operator-external",
        &prepared.strimzi,
        &platform,
        1,
        "scram-sha-512",
    )?;
    Ok(ExternalKafka {
        prepared: prepared.clone(),
        ca: ca.root_file(),
        passwords,
    })
}

/// What a tenant's client saw, from Kafka's own performance tools.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Records acknowledged (producer) or consumed (consumer).
    Records(u64),
    /// Refused by the broker's ACLs: Kafka's error name.
    Refused(String),
}

/// Each tenant reaches for the other tenant's topic and group, which the ACLs refuse, then
/// produces and consumes `records` on its own topic through its sidecars (last, so that the
/// graph drawn next shows its rates). Fails unless every reach across is refused and every
/// tenant's own records all arrive.
pub fn run_tenants(
    external: &ExternalKafka,
    setup: &Setup,
    net: &Network,
    records: u64,
    rate: u64,
) -> Result<()> {
    let apps = Apps {
        net,
        dir: setup.run_dir.join("tenants"),
        bootstrap: external.prepared.bootstrap(),
        secrets: external.passwords.values().cloned().collect(),
    };
    std::fs::create_dir_all(&apps.dir)?;
    let tenants = &external.prepared.tenants;
    for (t, other) in tenants.iter().zip(tenants.iter().rev()) {
        if t.namespace == other.namespace {
            continue;
        }
        step(&format!(
            "{}: reaching for {}'s topic and group (the ACLs must refuse)",
            t.namespace, other.namespace
        ));
        let attempts = [
            (
                format!("{} produces to {}", t.producer, other.topic),
                apps.produce(&t.producer, &other.topic, 10, 10)?,
                "TOPIC_AUTHORIZATION_FAILED",
            ),
            (
                format!(
                    "{} consumes {} (group {})",
                    t.consumer,
                    other.topic,
                    t.group()
                ),
                apps.consume(&t.consumer, &other.topic, &t.group(), 10)?,
                "TOPIC_AUTHORIZATION_FAILED",
            ),
            (
                format!(
                    "{} consumes {} in group {}",
                    t.consumer,
                    t.topic,
                    other.group()
                ),
                apps.consume(&t.consumer, &t.topic, &other.group(), 10)?,
                "GROUP_AUTHORIZATION_FAILED",
            ),
        ];
        for (what, outcome, expected) in attempts {
            println!("  {what}: {outcome}");
            if outcome != Outcome::Refused(expected.to_string()) {
                bail!(
                    "{}: {what}: expected {expected}, got {outcome}; logs in {}",
                    t.namespace,
                    apps.dir.display()
                );
            }
        }
    }
    // Both tenants at once, each producer and consumer side by side as a tenant's apps
    // run, over at least FLOW_SECONDS: Prometheus (and Kiali) see a rate on an edge only
    // once its counter was scraped before and after it grew.
    let rate = (records / FLOW_SECONDS).clamp(1, rate);
    step(&format!(
        "tenants: each producer sends {records} records to its topic at {rate}/s while its consumer reads them (Kafka's perf tools, no credential, no TLS setting)"
    ));
    let flows: Vec<(Result<Outcome>, Result<Outcome>)> = std::thread::scope(|scope| {
        let running: Vec<_> = tenants
            .iter()
            .map(|t| {
                let apps = &apps;
                let consumer =
                    scope.spawn(move || apps.consume(&t.consumer, &t.topic, &t.group(), records));
                let producer =
                    scope.spawn(move || apps.produce(&t.producer, &t.topic, records, rate));
                (producer, consumer)
            })
            .collect();
        running
            .into_iter()
            .map(|(producer, consumer)| (joined(producer), joined(consumer)))
            .collect()
    });
    for (t, (produced, consumed)) in tenants.iter().zip(flows) {
        let (produced, consumed) = (produced?, consumed?);
        println!(
            "  {}: {produced} produced, {consumed} consumed; no password, SASL or TLS setting in either app's /proc/<pid>/cmdline or environ",
            t.namespace
        );
        if produced != Outcome::Records(records) || consumed != Outcome::Records(records) {
            bail!(
                "{}: {records} records expected on {} both ways; logs in {}",
                t.namespace,
                t.topic,
                apps.dir.display()
            );
        }
    }
    Ok(())
}

/// How long the tenants' flows last at least, in seconds.
const FLOW_SECONDS: u64 = 10;

fn joined(handle: std::thread::ScopedJoinHandle<'_, Result<Outcome>>) -> Result<Outcome> {
    handle
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("an app's thread panicked")))
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Records(n) => write!(f, "{n} records"),
            Outcome::Refused(error) => write!(f, "refused, {error}"),
        }
    }
}

/// The tenants' apps: Kafka's own performance tools (the Java client 4.3.1) run in a
/// workload's pod against the external cluster's bootstrap, as plain Kafka.
struct Apps<'a> {
    net: &'a Network,
    /// Their logs.
    dir: PathBuf,
    bootstrap: String,
    /// Every KafkaUser password of the external cluster: none may reach an app.
    secrets: Vec<String>,
}

impl Apps<'_> {
    /// `ProducerPerformance`: `records` records of 512 bytes, `rate` per second, acks=all;
    /// the records acknowledged.
    fn produce(&self, workload: &str, topic: &str, records: u64, rate: u64) -> Result<Outcome> {
        let mut command = java::command(&self.dir, Some(self.net.pod(workload)?))?;
        command
            .arg(kafka_perf::PRODUCER)
            .args(["--topic", topic])
            .args(["--num-records", &records.to_string()])
            .args(["--record-size", "512", "--throughput", &rate.to_string()])
            .arg("--command-property")
            .arg(format!("bootstrap.servers={}", self.bootstrap))
            .arg(format!("client.id={workload}"))
            .args(["acks=all", "max.block.ms=10000", "request.timeout.ms=10000"])
            .arg("delivery.timeout.ms=30000");
        let log = self.run(&format!("{workload}-produce-{topic}"), command)?;
        if let Some(refused) = refusal(&log) {
            return Ok(Outcome::Refused(refused));
        }
        let summary = kafka_perf::producer_summary(&log).with_context(|| tail(&log))?;
        Ok(Outcome::Records(summary.acknowledged))
    }

    /// `ConsumerPerformance` in `group`: until `records` records arrived; how many did.
    fn consume(&self, workload: &str, topic: &str, group: &str, records: u64) -> Result<Outcome> {
        let mut command = java::command(&self.dir, Some(self.net.pod(workload)?))?;
        command
            .arg(kafka_perf::CONSUMER)
            .args(["--bootstrap-server", &self.bootstrap])
            .args(["--topic", topic, "--group", group])
            .args(["--num-records", &records.to_string()])
            .args(["--timeout", "30000"])
            .args(["--command-property", &format!("client.id={workload}")]);
        let log = self.run(&format!("{workload}-consume-{topic}-{group}"), command)?;
        if let Some(refused) = refusal(&log) {
            return Ok(Outcome::Refused(refused));
        }
        let summary = kafka_perf::consumer_summary(&log).with_context(|| tail(&log))?;
        Ok(Outcome::Records(summary.records))
    }

    /// Run a tool to its end; its output (stdout and stderr), kept in `<dir>/<name>.log`.
    /// While it runs, its `/proc/<pid>/cmdline` and `environ` are read: the app must hold
    /// none of the external cluster's passwords and no SASL or TLS setting (its sidecar
    /// does both).
    fn run(&self, name: &str, mut command: std::process::Command) -> Result<String> {
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let held = app_settings(child.id());
        let out = child.wait_with_output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(self.dir.join(format!("{name}.log")), &text)?;
        let held = held.with_context(|| format!("{name}: reading its /proc"))?;
        if self.secrets.iter().any(|s| held.contains(s.as_str())) {
            bail!("{name}: the app's command line or environment holds a KafkaUser's password");
        }
        if let Some(setting) = ["sasl.", "ssl.", "security.protocol"]
            .iter()
            .find(|s| held.contains(*s))
        {
            bail!("{name}: the app's command line or environment has a `{setting}` setting");
        }
        Ok(text)
    }
}

/// `cmdline` and `environ` of process `pid` once it runs Java (`ip netns exec` execs it).
fn app_settings(pid: u32) -> Result<String> {
    let read = |what: &str| std::fs::read(format!("/proc/{pid}/{what}"));
    // `ip netns exec` execs Java at once; a loaded machine may take a moment to schedule it.
    for _ in 0..500 {
        let cmdline = read("cmdline")?;
        if cmdline
            .split(|b| *b == 0)
            .next()
            .is_some_and(|p| p.ends_with(b"java"))
        {
            let mut held = cmdline;
            held.extend(read("environ")?);
            return Ok(String::from_utf8_lossy(&held).replace('\0', " "));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    bail!("process {pid} did not start Java within 10 s")
}

/// The authorization error a Kafka client reported, by Kafka's error name.
fn refusal(log: &str) -> Option<String> {
    [
        ("TopicAuthorizationException", "TOPIC_AUTHORIZATION_FAILED"),
        ("GroupAuthorizationException", "GROUP_AUTHORIZATION_FAILED"),
    ]
    .iter()
    .find(|(exception, _)| log.contains(exception))
    .map(|(_, name)| name.to_string())
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
