//! The pipeline's apps in their pods, configured as the chart configures them (cluster
//! names, no sidecar ports, no secret): the services, Kafka Connect with the sink's
//! KafkaConnector, the producer's and verify's pods, and the schemas registered by the
//! producer's identity.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use super::ingress;
use super::jobs::{job, step};
use super::names::{registry_url, CONNECT_REST_PORT, MONGO_PORT, REST_PORT, SCHEMA_SUBJECT};
use super::plan::{Job, Program, MONGO_HOST};
use super::pods::Pods;
use super::setup::Setup;
use super::supervisor::Mesh;
use crate::components::connect::{Connect, ConnectSpec};
use crate::components::mongo;
use crate::components::pipeline::{PipelineService, ServiceSpec};
use crate::components::pod::Pod;
use crate::paths;

/// The apps, running: where the producer and verify run, and what they are given.
pub struct Apps {
    /// The apps' MongoDB URI.
    pub mongo_uri: String,
    /// Where the producer posts: the REST entry, or the ingress gateway in front of it.
    pub rest_url: String,
    pub producer_pod: Pod,
    pub verify_pod: Pod,
}

pub fn start(
    setup: &Setup,
    mesh: &mut Mesh,
    pods: &Pods,
    ingress: Option<&ingress::Started>,
) -> Result<Apps> {
    let (plan, run_dir, connector) = (&setup.plan, &setup.run_dir, &setup.connector);
    // The apps, configured as the chart configures them: cluster names, no sidecar ports.
    // The same URI as without security: no user, no password, no TLS option.
    let mongo_uri = mongo::uri(MONGO_HOST, MONGO_PORT);
    println!("  MongoDB URI of the apps: {mongo_uri}");
    let mut rest_url = None;
    let mut producer_pod = None;
    let mut verify_pod = None;
    for w in &plan.workloads {
        let pod = pods.net.pod(&w.name)?.clone();
        match &w.program {
            Program::Service(service_args) => {
                step(&format!("{}: kiosk-services {}", w.name, service_args[0]));
                let mut args = service_args.clone();
                args.extend(["--bootstrap".to_string(), setup.kafka_bootstrap.clone()]);
                let mut ready_port = None;
                if w.serves_http.is_some() {
                    args.extend(["--listen".to_string(), format!("0.0.0.0:{REST_PORT}")]);
                    ready_port = Some(REST_PORT);
                }
                // The mirror resolves and validates each value's schema (the chart gives
                // it SCHEMA_REGISTRY_URL the same way).
                let mut env = match (setup.with_registry, service_args[0].as_str()) {
                    (true, "mirror") => vec![("SCHEMA_REGISTRY_URL".to_string(), registry_url())],
                    _ => Vec::new(),
                };
                setup.otlp_env(&mut env);
                let spec = ServiceSpec {
                    name: w.name.clone(),
                    program: setup.kiosk.clone(),
                    args,
                    env,
                    ready_port,
                    pod: Some(pod),
                };
                mesh.add(PipelineService::start(spec, run_dir)?)?;
            }
            Program::Connect => {
                step(&format!(
                    "{}: Kafka Connect 4.3.1 with KafkaConnector {} ({})",
                    w.name, connector.name, connector.class
                ));
                let secrets = connect_secrets(connector, &mongo_uri)?;
                let spec = ConnectSpec {
                    dir: run_dir.clone(),
                    connect: setup.bundle.connect.clone(),
                    connectors: vec![connector.clone()],
                    bootstrap: setup.kafka_bootstrap.clone(),
                    rest_port: CONNECT_REST_PORT,
                    secrets,
                    pod: Some(pod),
                };
                mesh.add(Connect::start(spec)?)?;
            }
            Program::Job(Job::Producer) => {
                let callee = w
                    .calls
                    .as_deref()
                    .context("the producer calls the REST entry")?;
                let host = plan
                    .workload(callee)
                    .and_then(|c| c.serves_http.clone())
                    .context("the REST entry serves HTTP")?;
                rest_url = Some(format!("http://{host}:{REST_PORT}"));
                producer_pod = Some(pod);
            }
            Program::Job(Job::Verify) => verify_pod = Some(pod),
        }
    }
    let mut rest_url = rest_url.context("the plan has no producer")?;
    if let Some(ingress) = ingress {
        rest_url = ingress.url.clone();
    }
    let producer_pod = producer_pod.context("the plan has no producer")?;
    if setup.with_registry {
        register_schemas(setup, &producer_pod)?;
    }
    let verify_pod = verify_pod.context("the plan has no verify job")?;
    Ok(Apps {
        mongo_uri,
        rest_url,
        producer_pod,
        verify_pod,
    })
}

/// The schemas, registered from the producer's pod (its identity).
fn register_schemas(setup: &Setup, producer_pod: &Pod) -> Result<()> {
    let run_dir = &setup.run_dir;
    step("schema registry: events-value registered by the producer's identity (BACKWARD), an allowed evolution judged compatible (not registered) and a refused one refused");
    let schemas = paths::root().join("schemas");
    let mut register = producer_pod.command(&setup.kiosk, false);
    register
        .args(["register-schemas", "--registry", &registry_url()])
        .args(["--subject", SCHEMA_SUBJECT, "--compatibility", "BACKWARD"])
        .arg("--schema")
        .arg(schemas.join("events-value.v1.schema.json"))
        .arg("--compatible")
        .arg(schemas.join("events-value.v2-compatible.schema.json"))
        .arg("--refused")
        .arg(schemas.join("events-value.v3-incompatible.schema.json"));
    if !job("register-schemas", register, run_dir)? {
        bail!(
            "registering the schemas failed; see {}",
            run_dir.join("register-schemas.log").display()
        );
    }
    Ok(())
}

/// The Secret files a connector's `${secrets:<namespace>/<secret>:<key>}` references name,
/// filled from what the mesh knows: the MongoDB URI (Secret `kiosk-mongodb`, key `uri`, as
/// the chart creates it). A reference to any other Secret fails, naming it.
fn connect_secrets(
    connector: &crate::bundle::KafkaConnector,
    mongo_uri: &str,
) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for (key, value) in &connector.config {
        let mut rest = value.as_str();
        while let Some(at) = rest.find("${secrets:") {
            let reference = &rest[at + "${secrets:".len()..];
            let Some(end) = reference.find('}') else {
                bail!(
                    "KafkaConnector `{}`: spec.config.{key}: unterminated ${{secrets:...}}",
                    connector.name
                );
            };
            let (path, secret_key) = reference[..end].rsplit_once(':').with_context(|| {
                format!("KafkaConnector `{}`: spec.config.{key}: expected ${{secrets:<namespace>/<secret>:<key>}}", connector.name)
            })?;
            match (path, secret_key) {
                (p, "uri") if p.ends_with("/kiosk-mongodb") => {
                    files.insert(format!("{p}/{secret_key}"), mongo_uri.to_string());
                }
                _ => bail!(
                    "KafkaConnector `{}`: spec.config.{key} references Secret `{path}` key `{secret_key}`, which the local mesh does not provide (it provides kiosk-mongodb/uri)",
                    connector.name
                ),
            }
            rest = &reference[end..];
        }
    }
    Ok(files)
}
