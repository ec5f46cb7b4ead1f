//! The run itself: the producer (with the fault drill beside it), verify, and the graph
//! from Prometheus.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::apps::Apps;
use super::ingress;
use super::jobs::{job, step};
use super::names::{registry_url, JAEGER_HOST, SCHEMA_SUBJECT};
use super::plan::{Fault, Plan, TOPIC_IN, TOPIC_OUT};
use super::scraping::Scraping;
use super::setup::Setup;
use super::supervisor::Mesh;
use crate::components::jaeger;
use crate::graph;
use crate::prometheus::PromClient;

/// The producer sends `--records` to the REST entry, the fault drill running meanwhile
/// with `--faults`, the mesh supervised throughout.
pub async fn produce(
    setup: &Setup,
    mesh: &mut Mesh,
    apps: &Apps,
    ingress: Option<&ingress::Started>,
) -> Result<()> {
    let (args, run_dir, rest_url) = (&setup.args, &setup.run_dir, &apps.rest_url);
    step(&format!(
        "{}: {} records to {rest_url}",
        apps.producer_pod.name, args.records
    ));
    let mut producer = apps.producer_pod.command(&setup.kiosk, false);
    producer
        .args(["producer", "--url", rest_url, "--topic", TOPIC_IN])
        .args([
            "--records",
            &args.records.to_string(),
            "--run",
            &setup.run_id,
            "--format",
            &args.format,
        ])
        .args(["--rate", &args.rate.to_string(), "--batch", "20"])
        .args(ingress.iter().flat_map(|i| i.producer_args.iter()));
    let mut producer_env = Vec::new();
    setup.otlp_env(&mut producer_env);
    producer.envs(producer_env);
    if setup.with_registry {
        // Values in the registry's wire format, and the two records the mirror must refuse.
        producer.env("SCHEMA_REGISTRY_URL", registry_url()).args([
            "--subject",
            SCHEMA_SUBJECT,
            "--dead-letters",
        ]);
    }
    let producer = {
        let run_dir = run_dir.clone();
        std::thread::spawn(move || job("producer", producer, &run_dir))
    };
    if args.faults {
        let sending = Duration::from_secs_f64(args.records as f64 / args.rate.max(1) as f64);
        fault_drill(mesh, &setup.plan, sending).await?;
    }
    let produced = mesh.supervise_until(producer).await?;
    if !produced {
        bail!(
            "the producer failed; see {}",
            run_dir.join("producer.log").display()
        );
    }
    Ok(())
}

/// Verify finds every record once in both topics and the collection; whether it passed.
pub async fn verify(setup: &Setup, mesh: &mut Mesh, apps: &Apps) -> Result<bool> {
    let (args, run_id) = (&setup.args, &setup.run_id);
    step("verify: topics and collection");
    let mut verify = apps.verify_pod.command(&setup.kiosk, false);
    verify
        .args(["verify", "--topics", &format!("{TOPIC_IN},{TOPIC_OUT}")])
        .args(["--bootstrap", &setup.kafka_bootstrap])
        .args(["--records", &args.records.to_string(), "--run", run_id])
        // The MongoDB connector writes key and value only, not the record headers.
        .args(["--collection-headers", "false"])
        .args([
            "--dead-letters",
            if setup.with_registry { "2" } else { "0" },
        ]);
    if setup.with_tracing {
        // The last record's trace, from the mirrored record's header, as Jaeger holds it.
        let last = kiosk_services::record::expected(run_id, args.records)
            .pop()
            .map(|r| r.key)
            .unwrap_or_default();
        let query = format!("http://{JAEGER_HOST}:{}", jaeger::QUERY_PORT);
        verify.args(["--trace-of", &last, "--jaeger", &query]);
    }
    verify.env("MONGODB_URI", &apps.mongo_uri);
    let verified = {
        let run_dir = setup.run_dir.clone();
        mesh.supervise_until(std::thread::spawn(move || job("verify", verify, &run_dir)))
            .await?
    };
    if let Some(summary) = mesh.restart_summary() {
        println!("  {summary}");
    }
    mesh.phase(if verified {
        "verified"
    } else {
        "verify-failed"
    })?;
    Ok(verified)
}

/// The Kiali-style graph from Prometheus, printed and drawn in the run directory.
pub async fn graph(setup: &Setup, scraping: &Scraping) -> Result<()> {
    let (args, prom, prom_url) = (&setup.args, &scraping.client, &scraping.url);
    step("graph: waiting for Prometheus to scrape the final counters");
    if args.faults {
        // A restarted sidecar starts its counters again: totals no longer add up to N.
        println!(
            "  (fault drill: not waiting for the counters to reach {})",
            args.records
        );
    } else {
        wait_for_counters(prom, args.records, &counted(setup)).await;
    }
    let mut options = graph::Options {
        kafka_hosts: vec![setup.names.bootstrap_host.clone()],
        ..graph::Options::default()
    };
    // The tenants' namespaces and the external cluster's, as a Kiali user selects them.
    if let Some(external) = &setup.external {
        let tenants = external.tenants.iter().map(|t| t.namespace.clone());
        options.namespaces.extend(tenants);
        options.namespaces.push(external.service.namespace.clone());
        options.kafka_hosts.push(external.service.host.clone());
    }
    let g = graph::build(prom, &options).await?;
    println!(
        "kiosk graph (Prometheus {prom_url}, rates over the last {} s):",
        options.duration_secs
    );
    print!("{}", g.to_text());
    let files = write_graph(&setup.run_dir, &g, prom_url)?;
    println!("graph picture: {}", files.display());
    Ok(())
}

/// The fault drill (`--faults`), spread over the producer's `sending` time: each fault
/// the plan names in turn (a component stopped and started again, Kafka's every broker
/// at once; or a process killed, left to the supervisor to restart), the mesh supervised
/// throughout.
async fn fault_drill(mesh: &mut Mesh, plan: &Plan, sending: Duration) -> Result<()> {
    let pause = (sending / (plan.fault_drill.len() as u32 + 1)).max(Duration::from_secs(2));
    for fault in &plan.fault_drill {
        mesh.supervise_for(pause).await?;
        step(&format!("fault: {fault}"));
        match fault {
            Fault::Restart(name) => {
                mesh.restart(name)?;
                println!("  {name} is back");
            }
            Fault::RollingRestart(name) => {
                mesh.rolling_restart(name)?;
                println!("  {name} is back, every node");
            }
            Fault::Kill(name) => mesh.kill(name)?,
        }
    }
    Ok(())
}

/// Wait (up to 30 s) until Prometheus shows every record produced to and fetched from
/// both topics, so the graph reflects the whole run.
/// The counters that reach N once every record went through: the pipeline's topics on
/// both sides, and each tenant's topic with `--external-kafka`.
fn counted(setup: &Setup) -> Vec<String> {
    let sink = &setup.bundle.connect.app;
    let mut queries = vec![
        format!(r#"sum(kafka_produced_records_total{{topic="{TOPIC_IN}"}})"#),
        format!(r#"sum(kafka_fetched_records_total{{topic="{TOPIC_IN}",workload="mirror"}})"#),
        format!(r#"sum(kafka_produced_records_total{{topic="{TOPIC_OUT}"}})"#),
        format!(r#"sum(kafka_fetched_records_total{{topic="{TOPIC_OUT}",workload="{sink}"}})"#),
    ];
    for t in setup.external.iter().flat_map(|e| &e.tenants) {
        let topic = &t.topic;
        queries.extend([
            format!(
                r#"sum(kafka_produced_records_total{{topic="{topic}",workload="{}"}})"#,
                t.producer
            ),
            format!(
                r#"sum(kafka_fetched_records_total{{topic="{topic}",workload="{}"}})"#,
                t.consumer
            ),
        ]);
    }
    queries
}

async fn wait_for_counters(prom: &PromClient, records: u64, queries: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let mut all = true;
        for q in queries {
            all &= prom.sum(q).await.unwrap_or(0.0) >= records as f64;
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("kiosk: Prometheus does not show all {records} records yet; the graph may be partial");
}

fn write_graph(run_dir: &Path, g: &graph::Graph, prom_url: &str) -> Result<PathBuf> {
    std::fs::write(run_dir.join("graph.svg"), g.to_svg())?;
    std::fs::write(run_dir.join("graph.json"), serde_json::to_vec_pretty(g)?)?;
    let html = run_dir.join("graph.html");
    std::fs::write(&html, g.to_html(prom_url))?;
    Ok(html)
}
