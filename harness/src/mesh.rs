//! The local mesh in a box: the `test-kafka-istio-mongo` pipeline as local processes, each
//! workload behind its own real Envoy sidecar carrying the kiosk filter.
//!
//! ```text
//! producer -> [sidecar] -> [sidecar] rest -> [sidecar] -> tansu --- topic events
//! mirror  <- [sidecar] <- tansu: events -> events.mirror
//! mongo-sink <- [sidecar] <- tansu: events.mirror; mongo-sink -> [sidecar] -> SecantusDB
//! Prometheus scrapes every sidecar; `kiosk graph` asks it what Kiali would.
//! ```
//!
//! Everything listens on 127.0.0.1 on ports chosen at start. `<home>/mesh.json` records
//! what runs (pid and start time of each process) and doubles as the lock that makes a
//! second `kiosk up` refuse; `kiosk down` stops exactly those processes.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::envoy::{Protocol, Route, Sidecar, SidecarSpec};
use crate::graph;
use crate::mongo::{Credentials, MongoServer};
use crate::process::Service;
use crate::prometheus::{PromClient, PrometheusServer, Target};
use crate::tansu::Broker;
use crate::{paths, ports};

pub const NAMESPACE: &str = "pipeline";
pub const TOPIC_NAMESPACE: &str = "kafka";
pub const TOPIC_IN: &str = "events";
pub const TOPIC_OUT: &str = "events.mirror";
pub const PARTITIONS: i32 = 3;
const KAFKA_HOST: &str = "kafka-bootstrap.kafka.svc.cluster.local";
const MONGO_HOST: &str = "mongodb.pipeline.svc.cluster.local";
const REST_HOST: &str = "rest.pipeline.svc.cluster.local";

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
}

/// What the fault drill restarts, and how to start each again.
struct Restartable {
    kafka_data: PathBuf,
    /// (name, port, advertised port) of every broker.
    brokers: Vec<(String, u16, u16)>,
    mirror_sidecar: SidecarSpec,
    mongodb_port: u16,
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

/// The running mesh: every process, stopped in reverse order on drop.
struct Mesh {
    home: PathBuf,
    state: State,
    services: Vec<Service>,
}

impl Mesh {
    fn add(&mut self, service: Service) -> Result<()> {
        self.state
            .processes
            .push(Proc::of(&service.name, service.pid()));
        self.services.push(service);
        write_state(&self.home, &self.state)
    }

    /// Take service `name` out of the mesh (to stop and replace it).
    fn take(&mut self, name: &str) -> Option<Service> {
        let at = self.services.iter().position(|s| s.name == name)?;
        self.state.processes.retain(|p| p.name != name);
        Some(self.services.remove(at))
    }

    fn phase(&mut self, phase: &str) -> Result<()> {
        self.state.phase = phase.to_string();
        write_state(&self.home, &self.state)
    }

    /// The first service that has exited, with its log tail.
    fn check(&mut self) -> Result<()> {
        for s in &mut self.services {
            s.check_running()?;
        }
        Ok(())
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        while let Some(mut s) = self.services.pop() {
            s.terminate(Duration::from_secs(5));
        }
        if let Ok(Some(now)) = read_state(&self.home) {
            if now.supervisor == self.state.supervisor {
                let _ = std::fs::remove_file(state_path(&self.home));
            }
        }
    }
}

/// Ports of one run.
struct Ports {
    rest_app: u16,
    rest_inbound: u16,
    producer_to_rest: u16,
    mongodb: u16,
    prometheus: u16,
}

/// A workload's Kafka path: its sidecar listener and the broker behind it.
struct KafkaPath {
    listener: u16,
    broker: u16,
}

fn kafka_path(ports: &mut ports::Allocator) -> Result<KafkaPath> {
    Ok(KafkaPath {
        listener: ports.port()?,
        broker: ports.port()?,
    })
}

fn step(message: &str) {
    println!("==> {message}");
}

/// `kiosk up`. Returns whether verify passed.
pub async fn up(home: &Path, args: &UpArgs) -> Result<bool> {
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
        services: Vec::new(),
    };
    std::fs::create_dir_all(&run_dir)?;
    println!(
        "kiosk: run directory {} (every process logs there)",
        run_dir.display()
    );
    // Find every tool before starting anything.
    let wasm = paths::filter_wasm()?;
    paths::envoy()?;
    paths::tansu()?;
    paths::secantusd()?;
    paths::prometheus()?;
    let kiosk = std::env::current_exe()?;

    let mut free = ports::Allocator::default();
    let p = Ports {
        rest_app: free.port()?,
        rest_inbound: free.port()?,
        producer_to_rest: free.port()?,
        mongodb: free.port()?,
        prometheus: free.port()?,
    };
    let kafka_clients = ["rest", "mirror", "mongo-sink", "verify"];
    let mut kafka = std::collections::BTreeMap::new();
    for w in kafka_clients {
        kafka.insert(w, kafka_path(&mut free)?);
    }
    let sink_mongo = free.port()?;
    let verify_mongo = free.port()?;
    let platform = free.port()?;
    let admin_ports: Vec<u16> = (0..5).map(|_| free.port()).collect::<Result<_>>()?;

    step("MongoDB (SecantusDB) with a SCRAM-SHA-256 user");
    let credentials = Credentials::generate("pipeline-writer")?;
    let secret = run_dir.join("mongodb-credentials.json");
    write_secret(&secret, &serde_json::to_vec_pretty(&credentials)?)?;
    let mongo = MongoServer::start(&run_dir, p.mongodb, &credentials).await?;
    mesh.add(mongo.service)?;
    mesh.state.mongodb_port = Some(p.mongodb);

    step("Kafka: tansu brokers on one sqlite store, one per client workload");
    let data = run_dir.join("tansu-data");
    // The platform's own access (Strimzi's operators reach Kafka without a sidecar): it
    // advertises itself, and creates the topics as KafkaTopic resources would.
    let mut brokers = vec![("kafka-platform".to_string(), platform, platform)];
    let broker = Broker::start_named("kafka-platform", &data, &run_dir, platform, platform)?;
    mesh.add(broker.service)?;
    crate::kafka::create_topics(
        &format!("127.0.0.1:{platform}"),
        &[TOPIC_IN, TOPIC_OUT],
        PARTITIONS,
    )
    .await
    .context("creating the pipeline's topics")?;
    for w in kafka_clients {
        let k = &kafka[w];
        let name = format!("kafka-{w}");
        let broker = Broker::start_named(&name, &data, &run_dir, k.broker, k.listener)?;
        mesh.add(broker.service)?;
        brokers.push((name, k.broker, k.listener));
    }

    step("Envoy sidecars with the kiosk filter");
    let plugin_config = json!({ "kiali": { "topic_namespace": TOPIC_NAMESPACE } });
    let kafka_route = |w: &str| {
        Route::outbound(
            KAFKA_HOST,
            kafka[w].listener,
            kafka[w].broker,
            Protocol::Kafka,
        )
    };
    let sidecars: Vec<(&str, Vec<Route>)> = vec![
        (
            "producer",
            vec![Route::outbound(
                REST_HOST,
                p.producer_to_rest,
                p.rest_inbound,
                Protocol::Http,
            )],
        ),
        (
            "rest",
            vec![
                Route::inbound(p.rest_inbound, p.rest_app, Protocol::Http),
                kafka_route("rest"),
            ],
        ),
        ("mirror", vec![kafka_route("mirror")]),
        (
            "mongo-sink",
            vec![
                kafka_route("mongo-sink"),
                Route::outbound(MONGO_HOST, sink_mongo, p.mongodb, Protocol::Tcp),
            ],
        ),
        (
            "verify",
            vec![
                kafka_route("verify"),
                Route::outbound(MONGO_HOST, verify_mongo, p.mongodb, Protocol::Tcp),
            ],
        ),
    ];
    let mut targets = Vec::new();
    let mut mirror_sidecar = None;
    for ((workload, routes), admin_port) in sidecars.into_iter().zip(admin_ports) {
        let spec = SidecarSpec {
            workload: workload.into(),
            namespace: NAMESPACE.into(),
            app: workload.into(),
            admin_port,
            routes,
            plugin_config: plugin_config.clone(),
            wasm: wasm.clone(),
            concurrency: 1,
        };
        targets.push(Target {
            admin_port: spec.admin_port,
            namespace: NAMESPACE.into(),
            workload: workload.into(),
        });
        if workload == "mirror" {
            mirror_sidecar = Some(spec.clone());
        }
        let sidecar = Sidecar::start(spec, &run_dir)?;
        mesh.add(sidecar.service)?;
    }
    let restartable = Restartable {
        kafka_data: data.clone(),
        brokers,
        mirror_sidecar: mirror_sidecar.context("the mirror's sidecar")?,
        mongodb_port: p.mongodb,
    };

    step("Prometheus scraping every sidecar");
    let prometheus = PrometheusServer::start(&run_dir, p.prometheus, &targets)?;
    mesh.add(prometheus.service)?;
    let prom_url = format!("http://127.0.0.1:{}", p.prometheus);
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
    let rest_url = format!("http://127.0.0.1:{}", p.producer_to_rest);
    mesh.state.rest_url = Some(rest_url.clone());

    step("pipeline services: rest, mirror, mongo-sink");
    let bootstrap = |w: &str| format!("127.0.0.1:{}", kafka[w].listener);
    let mut rest = Command::new(&kiosk);
    rest.args(["rest", "--listen", &format!("127.0.0.1:{}", p.rest_app)])
        .args(["--bootstrap", &bootstrap("rest")]);
    let mut rest = Service::start("rest", rest, &run_dir)?;
    rest.wait_for_port(p.rest_app, Duration::from_secs(30))?;
    mesh.add(rest)?;
    let mut mirror = Command::new(&kiosk);
    mirror
        .args(["mirror", "--from", TOPIC_IN, "--to", TOPIC_OUT])
        .args(["--bootstrap", &bootstrap("mirror")]);
    mesh.add(Service::start("mirror", mirror, &run_dir)?)?;
    let mut sink = Command::new(&kiosk);
    sink.args(["mongo-sink", "--topic", TOPIC_OUT])
        .args(["--bootstrap", &bootstrap("mongo-sink")])
        .env("MONGODB_URI", credentials.uri(sink_mongo));
    mesh.add(Service::start("mongo-sink", sink, &run_dir)?)?;
    mesh.phase("running")?;

    let run_id = format!("run-{now}");
    step(&format!(
        "producer: {} records through rest's sidecar",
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
        fault_drill(&mut mesh, &restartable, sending).await?;
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
    let mut verify = Command::new(&kiosk);
    verify
        .args(["verify", "--topics", &format!("{TOPIC_IN},{TOPIC_OUT}")])
        .args(["--bootstrap", &bootstrap("verify")])
        .args(["--records", &args.records.to_string(), "--run", &run_id])
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
        wait_for_counters(&prom, args.records).await;
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

/// The fault drill (`--faults`), spread over the producer's `sending` time: every Kafka
/// broker down for 3 s, then the mirror's sidecar, then MongoDB, each restarted.
async fn fault_drill(mesh: &mut Mesh, r: &Restartable, sending: Duration) -> Result<()> {
    let pause = (sending / 4).max(Duration::from_secs(2));
    let run_dir = mesh.state.run_dir.clone();
    tokio::time::sleep(pause).await;
    step("fault: every Kafka broker stopped for 3 s");
    for (name, _, _) in &r.brokers {
        if let Some(mut broker) = mesh.take(name) {
            broker.stop();
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (name, port, advertised) in &r.brokers {
        let broker = Broker::start_named(name, &r.kafka_data, &run_dir, *port, *advertised)?;
        mesh.add(broker.service)?;
    }
    println!("  brokers started again");

    tokio::time::sleep(pause).await;
    step("fault: the mirror's sidecar restarted");
    let name = format!("envoy-{}", r.mirror_sidecar.workload);
    if let Some(mut sidecar) = mesh.take(&name) {
        sidecar.stop();
    }
    let spec = r.mirror_sidecar.clone();
    for port in spec.routes.iter().map(|r| r.port).chain([spec.admin_port]) {
        ports::wait_closed(port, Duration::from_secs(10))?;
    }
    let sidecar = Sidecar::start(spec, &run_dir)?;
    mesh.add(sidecar.service)?;
    println!("  sidecar started again");

    tokio::time::sleep(pause).await;
    step("fault: MongoDB restarted");
    if let Some(mut mongo) = mesh.take("mongodb") {
        // Gracefully: SecantusDB writes its data out on shutdown.
        mongo.terminate(Duration::from_secs(15));
    }
    ports::wait_closed(r.mongodb_port, Duration::from_secs(10))?;
    let mongo = MongoServer::restart(&run_dir, r.mongodb_port)?;
    mesh.add(mongo.service)?;
    println!("  MongoDB started again");
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
async fn wait_for_counters(prom: &PromClient, records: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let queries = [
        format!(r#"sum(kafka_produced_records_total{{topic="{TOPIC_IN}"}})"#),
        format!(r#"sum(kafka_fetched_records_total{{topic="{TOPIC_IN}",workload="mirror"}})"#),
        format!(r#"sum(kafka_produced_records_total{{topic="{TOPIC_OUT}"}})"#),
        format!(r#"sum(kafka_fetched_records_total{{topic="{TOPIC_OUT}",workload="mongo-sink"}})"#),
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
