//! The pods beside the pipeline: the schema registry, a decoy on Kafka's port, Jaeger.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Result;

use super::jobs::step;
use super::names::{JAEGER, REGISTRY};
use super::plan::REGISTRY_HOST;
use super::pods::Pods;
use super::setup::Setup;
use super::supervisor::Mesh;
use crate::components::decoy::{self, Decoy};
use crate::components::jaeger::{self, Jaeger};
use crate::components::kafka::PLAIN_PORT;
use crate::components::registry::{self, SchemaRegistry};

/// The schema registry (Apicurio Registry) in its pod.
pub fn start_registry(setup: &Setup, mesh: &mut Mesh, pods: &Pods) -> Result<()> {
    step("schema registry: Apicurio Registry 3.3.3, the Confluent-compatible API");
    let started = Instant::now();
    mesh.add(SchemaRegistry::start(
        &setup.run_dir,
        pods.net.pod(REGISTRY)?.clone(),
    )?)?;
    println!(
        "  ready in {:.1} s: http://{REGISTRY_HOST}:{}{}",
        started.elapsed().as_secs_f64(),
        registry::API_PORT,
        registry::CCOMPAT_PATH
    );
    Ok(())
}

/// A service on Kafka's port that is not a broker, in its own pod.
pub fn start_decoy(setup: &Setup, mesh: &mut Mesh, pods: &Pods) -> Result<()> {
    step("a service on Kafka's port that is not a broker (kafka-decoy)");
    mesh.add(Decoy::start(
        &setup.run_dir,
        pods.net.pod(decoy::POD)?.clone(),
        PLAIN_PORT,
    )?)
}

/// Jaeger v2 in its pod; where the sidecars send their spans (OTLP gRPC).
pub fn start_jaeger(setup: &Setup, mesh: &mut Mesh, pods: &Pods) -> Result<SocketAddr> {
    step("Jaeger v2: spans from the sidecars, the gateway and the services");
    let pod = pods.net.pod(JAEGER)?.clone();
    let ip = pod.ip;
    mesh.add(Jaeger::start(&setup.run_dir, pod)?)?;
    println!("  query API: http://{ip}:{}/api/traces", jaeger::QUERY_PORT);
    Ok(SocketAddr::from((ip, jaeger::OTLP_GRPC_PORT)))
}
