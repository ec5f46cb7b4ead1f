//! The local mesh in a box: the `test-kafka-istio-mongo` pipeline as local processes, each
//! workload behind its own real Envoy sidecar carrying the kiosk filter, declared once in
//! [`plan`] and configured from the bundle's own Strimzi resources ([`crate::bundle`]).
//!
//! ```text
//! producer -> [sidecar] -> [sidecar] rest -> [sidecar] -> Kafka: events
//! Kafka: events -> [sidecar] mirror -> [sidecar] -> Kafka: events.mirror
//! Kafka: events.mirror -> [sidecar] kiosk-connect (MongoDB sink) -> [sidecar] -> MongoDB
//! Prometheus scrapes every sidecar; `kiosk graph` asks it what Kiali would.
//! ```
//!
//! Everything listens on 127.0.0.1 on ports chosen at start. `<home>/mesh.json` records
//! what runs (pid and start time of each process) and doubles as the lock that makes a
//! second `kiosk up` refuse; `kiosk down` stops exactly those processes.

pub mod plan;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::bundle::Bundle;
use crate::components::connect::{Connect, ConnectSpec};
use crate::components::envoy::{Protocol, Route, Sidecar, SidecarSpec};
use crate::components::kafka::{Kafka, KafkaSpec};
use crate::components::mongo::{Credentials, MongoServer};
use crate::components::pipeline::{PipelineService, ServiceSpec};
use crate::components::prometheus::{PrometheusServer, Target};
use crate::components::Component;
use crate::graph;
use crate::prometheus::PromClient;
use crate::{paths, ports};
use plan::{
    Job, Plan, Program, KAFKA_HOST, MONGO_HOST, NAMESPACE, TOPIC_IN, TOPIC_NAMESPACE, TOPIC_OUT,
};

#[derive(clap::Args, Debug, Clone)]
pub struct UpArgs {
    /// Records the producer sends.
    #[arg(long, short = 'n', default_value_t = 1000)]
    pub records: u64,
    /// Stop everything after printing verify's result and the graph, exiting with
    /// verify's status (for scripts and CI). Without it the mesh stays up until Ctrl-C or
    /// `kiosk down`.
    #[arg(long)]
    pub once: bool,
    /// The Bridge format the producer uses: json or binary.
    #[arg(long, default_value = "json", value_parser = ["json", "binary"])]
    pub format: String,
    /// Records per second the producer sends: a steady flow over several scrape
    /// intervals, so that Prometheus and Kiali see rates.
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    /// The fault drill: while the producer runs, stop every Kafka broker for a few
    /// seconds, restart the mirror's sidecar, then restart MongoDB. The pipeline must
    /// resume by itself and verify must still find exactly N records.
    #[arg(long)]
    pub faults: bool,
    /// Kafka nodes (each a broker and a KRaft controller voter). Each advertises its own
    /// address, so clients open one connection per broker, each through their sidecar.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=5))]
    pub brokers: u16,
    /// The Strimzi resources the mesh reads (KafkaTopics, KafkaConnect, KafkaConnector,
    /// KafkaBridge, Kafka), as Strimzi's operators would: by default the bundle's own.
    #[arg(long, value_name = "DIR")]
    pub strimzi: Option<PathBuf>,
}

/// What `mesh.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub supervisor: Proc,
    pub run_dir: PathBuf,
    pub phase: String,
    pub prometheus: Option<String>,
    pub mongodb_port: Option<u16>,
    pub rest_url: Option<String>,
    pub records: u64,
    pub processes: Vec<Proc>,
}

/// A process we started, identified by pid and kernel start time (a recycled pid is
/// never mistaken for ours).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Proc {
    pub name: String,
    pub pid: u32,
    pub start: u64,
}

impl Proc {
    pub fn of(name: &str, pid: u32) -> Proc {
        Proc {
            name: name.to_string(),
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// The process start time from /proc/<pid>/stat (field 22), in clock ticks.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces: count from the closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

pub fn state_path(home: &Path) -> PathBuf {
    home.join("mesh.json")
}

pub fn read_state(home: &Path) -> Result<Option<State>> {
    match std::fs::read(state_path(home)) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
            format!("{} is not a kiosk state file", state_path(home).display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Take the lock: create the state file, refusing if a live mesh holds it.
fn lock(home: &Path, state: &State) -> Result<()> {
    std::fs::create_dir_all(home)?;
    let path = state_path(home);
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(&serde_json::to_vec_pretty(state)?)?;
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if let Some(other) = read_state(home)? {
                    if other.supervisor.is_alive() {
                        bail!(
                            "a local mesh is already running (kiosk up, pid {}, run directory {}); \
                             use it, or stop it with `kiosk down`",
                            other.supervisor.pid,
                            other.run_dir.display()
                        );
                    }
                    // Its supervisor died: stop what it left behind, then take over.
                    eprintln!("kiosk: stopping the leftovers of a mesh whose `kiosk up` is gone");
                    stop_processes(&other.processes);
                }
                std::fs::remove_file(&path)?;
            }
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
    bail!("could not take the lock {}", path.display())
}

fn write_state(home: &Path, state: &State) -> Result<()> {
    let tmp = home.join("mesh.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state)?)?;
    std::fs::rename(&tmp, state_path(home))?;
    Ok(())
}

/// SIGTERM, then SIGKILL after a grace period, to each process that is still ours.
fn stop_processes(procs: &[Proc]) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    for p in procs.iter().filter(|p| p.is_alive()) {
        let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while procs.iter().any(Proc::is_alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in procs.iter().filter(|p| p.is_alive()) {
        let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
    }
}

/// `kiosk down`: ask the running `kiosk up` to stop everything, and wait for it.
pub fn down(home: &Path) -> Result<()> {
    let Some(state) = read_state(home)? else {
        println!(
            "kiosk: no local mesh is running (no {})",
            state_path(home).display()
        );
        return Ok(());
    };
    if state.supervisor.is_alive() {
        println!(
            "kiosk: stopping the mesh of `kiosk up` pid {}",
            state.supervisor.pid
        );
        stop_processes(std::slice::from_ref(&state.supervisor));
    }
    // Whatever it could not stop (it was killed, say), stop here.
    let left: Vec<Proc> = state
        .processes
        .iter()
        .filter(|p| p.is_alive())
        .cloned()
        .collect();
    if !left.is_empty() {
        stop_processes(&left);
    }
    if let Ok(Some(now)) = read_state(home) {
        if now.supervisor == state.supervisor {
            std::fs::remove_file(state_path(home))?;
        }
    }
    println!(
        "kiosk: stopped ({} processes); logs stay in {}",
        state.processes.len() + 1,
        state.run_dir.display()
    );
    Ok(())
}

/// The running mesh: every component, stopped in reverse order on drop.
struct Mesh {
    home: PathBuf,
    state: State,
    components: Vec<Box<dyn Component>>,
}

impl Mesh {
    fn add(&mut self, component: impl Component + 'static) -> Result<()> {
        self.components.push(Box::new(component));
        self.sync()
    }

    /// Record every running process in `mesh.json`.
    fn sync(&mut self) -> Result<()> {
        self.state.processes = self
            .components
            .iter()
            .flat_map(|c| c.services())
            .map(|s| Proc::of(&s.name, s.pid()))
            .collect();
        write_state(&self.home, &self.state)
    }

    fn component(&mut self, name: &str) -> Result<&mut Box<dyn Component>> {
        self.components
            .iter_mut()
            .find(|c| c.name() == name)
            .with_context(|| format!("no component `{name}` in the mesh"))
    }

    /// Restart component `name` with its configuration and data.
    fn restart(&mut self, name: &str) -> Result<()> {
        let result = self.component(name)?.restart();
        self.sync()?;
        result.with_context(|| format!("restarting {name}"))
    }

    fn phase(&mut self, phase: &str) -> Result<()> {
        self.state.phase = phase.to_string();
        write_state(&self.home, &self.state)
    }

    /// The first component with a process that has exited, with its log tail.
    fn check(&mut self) -> Result<()> {
        for c in &mut self.components {
            c.check()?;
        }
        Ok(())
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        while let Some(mut c) = self.components.pop() {
            c.stop();
        }
        if let Ok(Some(now)) = read_state(&self.home) {
            if now.supervisor == self.state.supervisor {
                let _ = std::fs::remove_file(state_path(&self.home));
            }
        }
    }
}

fn step(message: &str) {
    println!("==> {message}");
}

/// The ports of one workload's sidecar, derived from the plan.
struct WorkloadPorts {
    admin: u16,
    /// Per broker, (the broker's listener for this workload, the sidecar listener it
    /// advertises).
    kafka: Vec<(u16, u16)>,
    mongo: Option<u16>,
    /// (inbound listener, the app's own port) when the workload serves HTTP.
    http_inbound: Option<(u16, u16)>,
    /// The outbound listener to the workload it calls.
    http_outbound: Option<u16>,
}

/// `kiosk up`. Returns whether verify passed.
pub async fn up(home: &Path, args: &UpArgs) -> Result<bool> {
    // Everything that can be checked is checked before anything starts: the bundle, the
    // plan, the tools.
    let strimzi = args
        .strimzi
        .clone()
        .unwrap_or_else(crate::bundle::default_dir);
    let bundle = Bundle::read(&strimzi)?;
    let plan = Plan::pipeline(&bundle, usize::from(args.brokers));
    plan.check()?;
    let connector = bundle.connector(plan::SINK_CONNECTOR)?.clone();
    let wasm = paths::filter_wasm()?;
    paths::envoy()?;
    paths::java()?;
    paths::kafka_libs()?;
    paths::connect_plugins()?;
    paths::secantusd()?;
    paths::prometheus()?;
    let kiosk = std::env::current_exe()?;

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let run_dir = home.join("runs").join(format!("{now}"));
    let state = State {
        supervisor: Proc::of("kiosk-up", std::process::id()),
        run_dir: run_dir.clone(),
        phase: "starting".into(),
        prometheus: None,
        mongodb_port: None,
        rest_url: None,
        records: args.records,
        processes: Vec::new(),
    };
    lock(home, &state)?;
    let mut mesh = Mesh {
        home: home.to_path_buf(),
        state,
        components: Vec::new(),
    };
    std::fs::create_dir_all(&run_dir)?;
    println!(
        "kiosk: run directory {} (every process logs there); Strimzi resources from {}",
        run_dir.display(),
        strimzi.display()
    );

    // Ports, all derived from the plan.
    let mut free = ports::Allocator::default();
    let mongodb_port = free.port()?;
    let prometheus_port = free.port()?;
    let mut kafka_spec = KafkaSpec::new(&run_dir, plan.brokers, &plan.kafka_clients(), &mut free)?;
    kafka_spec.config = bundle.kafka.config.clone();
    let mut wp: BTreeMap<String, WorkloadPorts> = BTreeMap::new();
    for w in &plan.workloads {
        let kafka = if w.kafka {
            kafka_spec.client_ports(&w.name)
        } else {
            Vec::new()
        };
        wp.insert(
            w.name.clone(),
            WorkloadPorts {
                admin: free.port()?,
                kafka,
                mongo: if w.mongo { Some(free.port()?) } else { None },
                http_inbound: match w.serves_http {
                    Some(_) => Some((free.port()?, free.port()?)),
                    None => None,
                },
                http_outbound: match w.calls {
                    Some(_) => Some(free.port()?),
                    None => None,
                },
            },
        );
    }
    let bootstrap = |workload: &str| -> String {
        wp[workload]
            .kafka
            .iter()
            .map(|(_, advertised)| format!("127.0.0.1:{advertised}"))
            .collect::<Vec<_>>()
            .join(",")
    };

    step("MongoDB (SecantusDB) with a SCRAM-SHA-256 user");
    let credentials = Credentials::generate("pipeline-writer")?;
    let secret = run_dir.join("mongodb-credentials.json");
    write_secret(&secret, &serde_json::to_vec_pretty(&credentials)?)?;
    let mongo = MongoServer::start(&run_dir, mongodb_port, &credentials).await?;
    mesh.add(mongo)?;
    mesh.state.mongodb_port = Some(mongodb_port);

    step(&format!(
        "Kafka 4.3.1 (KRaft, {} node{}), one client listener per Kafka workload",
        plan.brokers,
        if plan.brokers == 1 { "" } else { "s" }
    ));
    let kafka = Kafka::start(kafka_spec)?;
    let platform = kafka.spec.platform_bootstrap();
    mesh.add(kafka)?;
    // The Topic Operator's part: every KafkaTopic of the bundle, as declared.
    let topics: Vec<_> = bundle
        .topics
        .iter()
        .filter(|t| plan.topics.contains(&t.name))
        .cloned()
        .collect();
    crate::components::kafka::create_topics(&platform, &topics)
        .await
        .context("creating the KafkaTopics")?;
    println!(
        "  topics from the KafkaTopics: {}",
        topics
            .iter()
            .map(|t| format!("{} ({}p)", t.name, t.partitions))
            .collect::<Vec<_>>()
            .join(", ")
    );

    step("Envoy sidecars with the kiosk filter");
    let plugin_config = json!({ "kiali": { "topic_namespace": TOPIC_NAMESPACE } });
    let mut targets = Vec::new();
    for w in &plan.workloads {
        let p = &wp[&w.name];
        let mut routes = Vec::new();
        if let Some((inbound, app)) = p.http_inbound {
            routes.push(Route::inbound(inbound, app, Protocol::Http));
        }
        if let (Some(callee), Some(port)) = (&w.calls, p.http_outbound) {
            let host = plan
                .workload(callee)
                .and_then(|c| c.serves_http.clone())
                .unwrap_or_default();
            let (inbound, _) = wp[callee].http_inbound.context("the callee serves HTTP")?;
            routes.push(Route::outbound(&host, port, inbound, Protocol::Http));
        }
        // One Kafka listener per broker: the address Kafka advertises to this workload.
        for &(listen, advertised) in &p.kafka {
            routes.push(Route::outbound(
                KAFKA_HOST,
                advertised,
                listen,
                Protocol::Kafka,
            ));
        }
        if let Some(port) = p.mongo {
            routes.push(Route::outbound(
                MONGO_HOST,
                port,
                mongodb_port,
                Protocol::Tcp,
            ));
        }
        let spec = SidecarSpec {
            workload: w.name.clone(),
            namespace: NAMESPACE.into(),
            app: w.name.clone(),
            admin_port: p.admin,
            routes,
            plugin_config: plugin_config.clone(),
            wasm: wasm.clone(),
            concurrency: 1,
        };
        targets.push(Target {
            admin_port: p.admin,
            namespace: NAMESPACE.into(),
            workload: w.name.clone(),
        });
        mesh.add(Sidecar::start(spec, &run_dir)?)?;
    }

    step("Prometheus scraping every sidecar");
    mesh.add(PrometheusServer::start(
        &run_dir,
        prometheus_port,
        &targets,
    )?)?;
    let prom_url = format!("http://127.0.0.1:{prometheus_port}");
    mesh.state.prometheus = Some(prom_url.clone());
    // Prometheus scrapes a new target only after a start-up delay: wait until every
    // sidecar has been scraped, or the first seconds of traffic would be missing.
    let prom = PromClient::new(&prom_url)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while prom
        .sum(r#"count(up{job="envoy-sidecars"} == 1)"#)
        .await
        .unwrap_or(0.0)
        < targets.len() as f64
    {
        if Instant::now() > deadline {
            bail!(
                "Prometheus did not scrape every sidecar within 60 s; see {}",
                run_dir.join("prometheus.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let mut rest_url = None;
    let mut producer_workload = None;
    let mut verify_workload = None;
    for w in &plan.workloads {
        let p = &wp[&w.name];
        match &w.program {
            Program::Service(service_args) => {
                step(&format!("{}: kiosk-services {}", w.name, service_args[0]));
                let mut args = service_args.clone();
                args.extend(["--bootstrap".to_string(), bootstrap(&w.name)]);
                let mut ready_port = None;
                if let Some((_, app)) = p.http_inbound {
                    args.extend(["--listen".to_string(), format!("127.0.0.1:{app}")]);
                    ready_port = Some(app);
                }
                let spec = ServiceSpec {
                    name: w.name.clone(),
                    program: kiosk.clone(),
                    args,
                    env: Vec::new(),
                    ready_port,
                };
                mesh.add(PipelineService::start(spec, &run_dir)?)?;
            }
            Program::Connect => {
                step(&format!(
                    "{}: Kafka Connect 4.3.1 with KafkaConnector {} ({})",
                    w.name, connector.name, connector.class
                ));
                let mongo_uri = credentials.uri(p.mongo.context("Connect reaches MongoDB")?);
                let secrets = connect_secrets(&connector, &mongo_uri)?;
                let spec = ConnectSpec {
                    dir: run_dir.clone(),
                    connect: bundle.connect.clone(),
                    connectors: vec![connector.clone()],
                    bootstrap: bootstrap(&w.name),
                    rest_port: free.port()?,
                    secrets,
                };
                mesh.add(Connect::start(spec)?)?;
            }
            Program::Job(Job::Producer) => {
                let port = p
                    .http_outbound
                    .context("the producer calls the REST entry")?;
                rest_url = Some(format!("http://127.0.0.1:{port}"));
                producer_workload = Some(w.name.clone());
            }
            Program::Job(Job::Verify) => verify_workload = Some(w.name.clone()),
        }
    }
    let rest_url = rest_url.context("the plan has no producer")?;
    let verify_workload = verify_workload.context("the plan has no verify job")?;
    mesh.state.rest_url = Some(rest_url.clone());
    mesh.phase("running")?;

    let run_id = format!("run-{now}");
    step(&format!(
        "{}: {} records through its sidecar to the REST entry",
        producer_workload.unwrap_or_default(),
        args.records
    ));
    let mut producer = Command::new(&kiosk);
    producer
        .args(["producer", "--url", &rest_url, "--topic", TOPIC_IN])
        .args([
            "--records",
            &args.records.to_string(),
            "--run",
            &run_id,
            "--format",
            &args.format,
        ])
        .args(["--rate", &args.rate.to_string(), "--batch", "20"]);
    let producer = {
        let run_dir = run_dir.clone();
        std::thread::spawn(move || job("producer", producer, &run_dir))
    };
    if args.faults {
        let sending = Duration::from_secs_f64(args.records as f64 / args.rate.max(1) as f64);
        fault_drill(&mut mesh, &plan, sending).await?;
    }
    let produced = producer
        .join()
        .map_err(|_| anyhow::anyhow!("the producer's thread panicked"))??;
    mesh.check()?;
    if !produced {
        bail!(
            "the producer failed; see {}",
            run_dir.join("producer.log").display()
        );
    }

    step("verify: topics and collection");
    let verify_mongo = wp[&verify_workload]
        .mongo
        .context("verify reaches MongoDB")?;
    let mut verify = Command::new(&kiosk);
    verify
        .args(["verify", "--topics", &format!("{TOPIC_IN},{TOPIC_OUT}")])
        .args(["--bootstrap", &bootstrap(&verify_workload)])
        .args(["--records", &args.records.to_string(), "--run", &run_id])
        // The MongoDB connector writes key and value only, not the record headers.
        .args(["--collection-headers", "false"])
        .env("MONGODB_URI", credentials.uri(verify_mongo));
    let verified = job("verify", verify, &run_dir)?;
    mesh.phase(if verified {
        "verified"
    } else {
        "verify-failed"
    })?;

    step("graph: waiting for Prometheus to scrape the final counters");
    if args.faults {
        // A restarted sidecar starts its counters again: totals no longer add up to N.
        println!(
            "  (fault drill: not waiting for the counters to reach {})",
            args.records
        );
    } else {
        wait_for_counters(&prom, args.records, &bundle.connect.app).await;
    }
    let options = graph::Options::default();
    let g = graph::build(&prom, &options).await?;
    println!(
        "kiosk graph (Prometheus {prom_url}, rates over the last {} s):",
        options.duration_secs
    );
    print!("{}", g.to_text());
    let files = write_graph(&run_dir, &g, &prom_url)?;
    println!("graph picture: {}", files.display());

    if args.once {
        return Ok(verified);
    }
    println!(
        "\nkiosk: the mesh is up. Prometheus {prom_url}, REST entry {rest_url}, logs in {}.\n\
         kiosk: `kiosk graph` redraws the graph; Ctrl-C or `kiosk down` stops everything.",
        run_dir.display()
    );
    wait_for_stop(&mut mesh).await?;
    Ok(verified)
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

/// The fault drill (`--faults`), spread over the producer's `sending` time: each component
/// the plan names restarted in turn (Kafka: every broker stopped, then started again).
async fn fault_drill(mesh: &mut Mesh, plan: &Plan, sending: Duration) -> Result<()> {
    let pause = (sending / (plan.fault_drill.len() as u32 + 1)).max(Duration::from_secs(2));
    for name in &plan.fault_drill {
        tokio::time::sleep(pause).await;
        step(&format!("fault: {name} stopped and started again"));
        mesh.restart(name)?;
        println!("  {name} is back");
    }
    Ok(())
}

/// Wait for Ctrl-C, SIGTERM (`kiosk down`) or a service dying.
async fn wait_for_stop(mesh: &mut Mesh) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = term.recv() => { println!("kiosk: stopping (SIGTERM)"); return Ok(()); }
            _ = interrupt.recv() => { println!("kiosk: stopping (Ctrl-C)"); return Ok(()); }
            _ = tokio::time::sleep(Duration::from_secs(1)) => mesh.check()?,
        }
    }
}

/// Wait (up to 30 s) until Prometheus shows every record produced to and fetched from
/// both topics, so the graph reflects the whole run.
async fn wait_for_counters(prom: &PromClient, records: u64, sink: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let queries = [
        format!(r#"sum(kafka_produced_records_total{{topic="{TOPIC_IN}"}})"#),
        format!(r#"sum(kafka_fetched_records_total{{topic="{TOPIC_IN}",workload="mirror"}})"#),
        format!(r#"sum(kafka_produced_records_total{{topic="{TOPIC_OUT}"}})"#),
        format!(r#"sum(kafka_fetched_records_total{{topic="{TOPIC_OUT}",workload="{sink}"}})"#),
    ];
    while Instant::now() < deadline {
        let mut all = true;
        for q in &queries {
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

/// Run a job to completion, its output shown with a prefix and kept in `<name>.log`.
fn job(name: &str, mut command: Command, dir: &Path) -> Result<bool> {
    let log_path = dir.join(format!("{name}.log"));
    let mut log = std::fs::File::create(&log_path)?;
    let mut child = command
        .env(crate::process::RUN_DIR_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let stderr = child.stderr.take();
    let err_log = log.try_clone()?;
    let err_thread = std::thread::spawn(move || {
        let mut err_log = err_log;
        for line in stderr
            .into_iter()
            .flat_map(|s| BufReader::new(s).lines().map_while(Result::ok))
        {
            let _ = writeln!(err_log, "{line}");
        }
    });
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("  {line}");
            let _ = writeln!(log, "{line}");
        }
    }
    let status = child.wait()?;
    let _ = err_thread.join();
    if !status.success() {
        println!(
            "  {name} exited with {status}; last lines of {}:",
            log_path.display()
        );
        for line in crate::process::tail(&log_path, 15).lines() {
            println!("    {line}");
        }
    }
    Ok(status.success())
}

/// A file only its owner can read.
fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    Ok(())
}

/// The default home of the local mesh: `$KIOSK_HOME`, else `.kiosk` in the repository.
pub fn default_home() -> PathBuf {
    std::env::var_os("KIOSK_HOME").map_or_else(|| paths::root().join(".kiosk"), PathBuf::from)
}
