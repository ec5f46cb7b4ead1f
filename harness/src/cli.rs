//! The `kiosk` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::{dashboard, graph, mesh, prometheus, recording};

/// kiosk: Kafka-in-Istio Observability and Security Kit.
///
/// `kiosk up` runs the test pipeline (REST -> topic -> mirror -> topic -> MongoDB) on this
/// machine, each workload behind a real Envoy sidecar with the kiosk filter, verifies the
/// data and prints the traffic graph Kiali would draw.
#[derive(Parser, Debug)]
#[command(name = "kiosk", version, about, long_about)]
struct Cli {
    /// Where the local mesh keeps its state and run directories.
    #[arg(long, env = "KIOSK_HOME", global = true)]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Bring the local mesh up, run the pipeline, verify, print the graph.
    Up(mesh::UpArgs),
    /// Stop the local mesh started by `kiosk up` (and nothing else).
    Down,
    /// Print the traffic graph from Prometheus and write it as SVG and HTML.
    Graph(GraphArgs),
    /// Draw the bundle's Grafana dashboard (the filter's per-topic metrics, the ingress
    /// gateway's JWT results) from Prometheus as a self-contained HTML page.
    Dashboard(DashboardArgs),
    /// The pipeline services (also the container image's `kiosk-services` binary).
    #[command(flatten)]
    Service(kiosk_services::Command),
    /// Do the Strimzi operators' part against a Kafka cluster: wait until Metadata lists
    /// every broker, then create every KafkaTopic of the bundle as declared.
    Operator(crate::operator::Args),
    /// Record a real Kafka session (librdkafka against Apache Kafka, through a recording tee)
    /// as test data: one pair of files per connection.
    Record(recording::Args),
}

#[derive(clap::Args, Debug)]
struct GraphArgs {
    /// Prometheus base URL (default: the running local mesh's).
    #[arg(long)]
    prometheus: Option<String>,
    /// Rate window in seconds (Kiali's graph duration).
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Print the graph as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Where to write graph.svg and graph.html (default: the run directory).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct DashboardArgs {
    /// Prometheus base URL (default: the running local mesh's).
    #[arg(long)]
    prometheus: Option<String>,
    /// The time range drawn, in seconds up to now.
    #[arg(long, default_value_t = 300)]
    window: u64,
    /// Prometheus's scrape interval in seconds (the local mesh scrapes every second).
    #[arg(long, default_value_t = 1)]
    scrape_interval: u64,
    /// Where to write dashboard.html (default: the run directory).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    kiosk_services::init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kiosk: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("kiosk: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<bool> {
    let home = cli.home.unwrap_or_else(mesh::default_home);
    match cli.command {
        Cmd::Up(args) => mesh::up(&home, &args).await,
        Cmd::Down => mesh::down(&home).map(|()| true),
        Cmd::Graph(args) => graph_command(&home, args).await.map(|()| true),
        Cmd::Dashboard(args) => dashboard_command(&home, args).await.map(|()| true),
        Cmd::Service(service) => service.run().await,
        Cmd::Record(args) => recording::run(args).await.map(|()| true),
        Cmd::Operator(args) => crate::operator::run(args).await.map(|()| true),
    }
}

/// `--prometheus`, else the running local mesh's.
fn prometheus_url(
    home: &std::path::Path,
    given: Option<&String>,
) -> Result<(String, Option<mesh::State>)> {
    let state = mesh::read_state(home)?;
    let url = match (given, state.as_ref().and_then(|s| s.prometheus.clone())) {
        (Some(url), _) => url.clone(),
        (None, Some(url)) => url,
        (None, None) => anyhow::bail!(
            "no local mesh is running (no {}): start one with `kiosk up`, or pass --prometheus URL",
            mesh::state_path(home).display()
        ),
    };
    Ok((url, state))
}

async fn dashboard_command(home: &std::path::Path, args: DashboardArgs) -> Result<()> {
    let (url, state) = prometheus_url(home, args.prometheus.as_ref())?;
    let prom = prometheus::PromClient::new(&url)?;
    let window = dashboard::Window {
        end: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs_f64(),
        seconds: args.window as f64,
        scrape: args.scrape_interval.max(1) as f64,
    };
    let drawn = dashboard::query(&prom, window).await?;
    println!(
        "kiosk dashboard (Prometheus {url}, the last {} s):",
        args.window
    );
    for d in drawn.iter().filter(|d| d.panel.kind != "row") {
        let points: usize = d.series.iter().map(|s| s.points.len()).sum();
        println!(
            "  {:<28} {:>3} series, {:>5} points",
            d.panel.title,
            d.series.len(),
            points
        );
    }
    let dir = args
        .out
        .or_else(|| state.map(|s| s.run_dir))
        .context("no run directory: pass --out DIR")?;
    std::fs::create_dir_all(&dir)?;
    let page = dir.join("dashboard.html");
    std::fs::write(&page, dashboard::to_html(&drawn, &url, window))?;
    eprintln!("dashboard page: {}", page.display());
    Ok(())
}

async fn graph_command(home: &std::path::Path, args: GraphArgs) -> Result<()> {
    let (url, state) = prometheus_url(home, args.prometheus.as_ref())?;
    let prom = prometheus::PromClient::new(&url)?;
    // The Kafka bootstrap Service the apps dial (the KafkaConnect's bootstrapServers): its
    // opaque TCP edges are the Kafka edges, drawn from the filter's series instead.
    let mut options = graph::Options {
        duration_secs: args.duration,
        ..graph::Options::default()
    };
    // Every namespace the running mesh has pods in (the tenants' with `--external-kafka`).
    for pod in state
        .iter()
        .flat_map(|s| s.network.iter())
        .flat_map(|n| &n.pods)
    {
        if !options.namespaces.contains(&pod.namespace) {
            options.namespaces.push(pod.namespace.clone());
        }
    }
    if let Ok(bundle) = crate::bundle::Bundle::read(&crate::bundle::default_dir()) {
        let first = bundle.connect.bootstrap_servers.split(',').next();
        if let Some((host, _)) = first.and_then(|s| s.rsplit_once(':')) {
            options.kafka_hosts.push(host.to_string());
        }
    }
    let g = graph::build(&prom, &options).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&g)?);
    } else {
        println!(
            "kiosk graph (Prometheus {url}, rates over the last {} s):",
            args.duration
        );
        print!("{}", g.to_text());
    }
    let out = args.out.or_else(|| state.map(|s| s.run_dir));
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("graph.svg"), g.to_svg())?;
        std::fs::write(dir.join("graph.html"), g.to_html(&url))?;
        eprintln!("graph picture: {}", dir.join("graph.html").display());
    }
    Ok(())
}
