//! The `kiosk` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::{graph, mesh, prometheus, record};

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
    /// The pipeline services (also the container image's `kiosk-services` binary).
    #[command(flatten)]
    Service(kiosk_services::Command),
    /// Do the Strimzi operators' part against a Kafka cluster: wait until Metadata lists
    /// every broker, then create every KafkaTopic of the bundle as declared.
    Operator(crate::operator::Args),
    /// Record a real Kafka session (librdkafka against Apache Kafka, through a recording tee)
    /// as test data: one pair of files per connection.
    Record(record::Args),
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
        Cmd::Service(service) => service.run().await,
        Cmd::Record(args) => record::run(args).await.map(|()| true),
        Cmd::Operator(args) => crate::operator::run(args).await.map(|()| true),
    }
}

async fn graph_command(home: &std::path::Path, args: GraphArgs) -> Result<()> {
    let state = mesh::read_state(home)?;
    let url = match (
        &args.prometheus,
        state.as_ref().and_then(|s| s.prometheus.clone()),
    ) {
        (Some(url), _) => url.clone(),
        (None, Some(url)) => url,
        (None, None) => anyhow::bail!(
            "no local mesh is running (no {}): start one with `kiosk up`, or pass --prometheus URL",
            mesh::state_path(home).display()
        ),
    };
    let prom = prometheus::PromClient::new(&url)?;
    let options = graph::Options {
        duration_secs: args.duration,
        ..graph::Options::default()
    };
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
