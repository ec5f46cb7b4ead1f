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

pub mod ingress;
pub mod plan;
pub mod restarts;

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
use crate::components::decoy::{self, Decoy};
use crate::components::envoy::{
    OutboundPort, PodSidecar, Protocol, Sidecar, SidecarSpec, UpstreamTls, ISTIO_CONCURRENCY,
};
use crate::components::jaeger::{self, Jaeger};
use crate::components::kafka::{
    random_password, Kafka, KafkaSpec, SaslListener, TlsListener, PLAIN_PORT, TLS_PORT,
};
use crate::components::mongo::{self, MongoServer, MongoUser, ServerTls};
use crate::components::mtls::{DnType, MeshCa};
use crate::components::pipeline::{PipelineService, ServiceSpec};
use crate::components::pod::{self, Capture, Network};
use crate::components::prometheus::{PrometheusServer, Target};
use crate::components::registry::{self, SchemaRegistry};
use crate::components::Component;
use crate::graph;
use crate::prometheus::PromClient;
use crate::{paths, ports};
use kiosk_filter::act::sasl::Mechanism;
use plan::{
    Fault, Job, Plan, Program, MONGO_HOST, NAMESPACE, REGISTRY_HOST, TOPIC_IN, TOPIC_NAMESPACE,
    TOPIC_OUT,
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
    /// A service on Kafka's port that is not a broker (pod `kafka-decoy`, its own
    /// identity): the test that the filter sends no credential to it.
    #[arg(long, hide = true)]
    pub kafka_port_decoy: bool,
    /// Kafka nodes (each a broker and a KRaft controller voter). Each advertises its own
    /// address, so clients open one connection per broker, each through their sidecar.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=5))]
    pub brokers: u16,
    /// How Kafka authenticates clients, the apps holding no secret in every case:
    /// `scram-sha-512` (the bundle's: Strimzi's plain listener requires SASL, and the kiosk
    /// filter in each sidecar authenticates as the workload's KafkaUser, the password in
    /// the sidecar's environment as the User Operator's Secret puts it there), `plain`
    /// (the same with SASL PLAIN), `tls` (Strimzi's TLS listener requiring client
    /// certificates; each sidecar originates TLS with its workload's user certificate),
    /// or `none` (no authentication). ACLs from the KafkaUsers but with `none`.
    #[arg(long, default_value = "scram-sha-512", value_parser = ["scram-sha-512", "plain", "tls", "none"])]
    pub kafka_auth: String,
    /// How MongoDB authenticates clients, the apps' URIs holding no secret in every case:
    /// `x509` (the bundle's: MongoDB requires TLS, client certificates and authentication;
    /// each client's sidecar originates TLS with its workload's certificate and the kiosk
    /// filter sends MONGODB-X509's `authenticate`), `scram-sha-256` (password users, the
    /// kiosk filter authenticating with the password in the sidecar's environment; Istio
    /// mTLS to MongoDB's sidecar), or `none` (no users).
    #[arg(long, default_value = "x509", value_parser = ["x509", "scram-sha-256", "none"])]
    pub mongodb_auth: String,
    /// The schema registry: `apicurio` (Apicurio Registry in its own pod, its sidecar
    /// enforcing the bundle's AuthorizationPolicy; the mock schema registered at start by
    /// the producer's identity) or `none`.
    #[arg(long, default_value = "apicurio", value_parser = ["apicurio", "none"])]
    pub schema_registry: String,
    /// Tracing: `jaeger` (Jaeger v2 in its own pod; every sidecar and the gateway trace
    /// HTTP requests as a Telemetry resource makes istiod configure them, and the producer,
    /// the REST entry and the mirror carry one trace per request into the records) or
    /// `none`.
    #[arg(long, default_value = "jaeger", value_parser = ["jaeger", "none"])]
    pub tracing: String,
    /// The Strimzi resources the mesh reads (KafkaTopics, KafkaConnect, KafkaConnector,
    /// KafkaBridge, Kafka), as Strimzi's operators would: by default the bundle's own.
    #[arg(long, value_name = "DIR")]
    pub strimzi: Option<PathBuf>,
    /// The REST entry's ingress: `jwt` (an ingress gateway pod configured from the bundle's
    /// Gateway, VirtualService, RequestAuthentication and AuthorizationPolicy; the producer
    /// gets a token from the issuer they name) or `none` (the producer calls the REST entry
    /// directly).
    #[arg(long, default_value = "jwt", value_parser = ["jwt", "none"])]
    pub ingress: String,
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
    /// The pods' network, removed by `kiosk down` even if this supervisor was killed.
    #[serde(default)]
    pub network: Option<Network>,
    /// Components restarted after their process exited (`restartPolicy: Always`).
    #[serde(default)]
    pub restarts: BTreeMap<String, restarts::Restarts>,
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

/// The process start time from /proc/<pid>/stat (field 22), in clock ticks; none for a
/// process that has exited (a zombie: once its supervisor is gone, nobody may reap it).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces: count from the closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
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
                    stop_processes(&other.processes, LEFTOVER_GRACE);
                    if let Some(net) = &other.network {
                        net.remove();
                    }
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

/// How long `kiosk down` lets `kiosk up` stop its components (Kafka, Connect and MongoDB
/// shut down gracefully, up to 20 s each) before killing it.
const SUPERVISOR_GRACE: Duration = Duration::from_secs(120);
/// How long processes left by a dead supervisor get after SIGTERM.
const LEFTOVER_GRACE: Duration = Duration::from_secs(10);

/// SIGTERM, then SIGKILL after a grace period, to each process that is still ours.
fn stop_processes(procs: &[Proc], grace: Duration) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    for p in procs.iter().filter(|p| p.is_alive()) {
        let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while procs.iter().any(Proc::is_alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in procs.iter().filter(|p| p.is_alive()) {
        let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while procs.iter().any(Proc::is_alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
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
        // It stops the JVMs and databases gracefully, one by one: give it time.
        stop_processes(std::slice::from_ref(&state.supervisor), SUPERVISOR_GRACE);
    }
    // Whatever it could not stop (it was killed, say), stop here.
    let left: Vec<Proc> = state
        .processes
        .iter()
        .filter(|p| p.is_alive())
        .cloned()
        .collect();
    if !left.is_empty() {
        stop_processes(&left, LEFTOVER_GRACE);
    }
    // The pods' network: a killed supervisor leaves it behind.
    if let Some(net) = &state.network {
        net.remove();
        let remaining = net.leftovers();
        if !remaining.is_empty() {
            bail!("could not remove: {}", remaining.join(", "));
        }
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
    /// Each restarted component's back-off.
    backoff: BTreeMap<String, restarts::Backoff>,
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

    /// Restart component `name` one process at a time.
    fn rolling_restart(&mut self, name: &str) -> Result<()> {
        let result = self.component(name)?.rolling_restart();
        self.sync()?;
        result.with_context(|| format!("rolling {name}"))
    }

    fn phase(&mut self, phase: &str) -> Result<()> {
        self.state.phase = phase.to_string();
        write_state(&self.home, &self.state)
    }

    /// SIGKILL every process of component `name`, as the kernel's OOM killer or a crash
    /// would end it: nothing is told, the supervisor finds it exited.
    fn kill(&mut self, name: &str) -> Result<()> {
        let pids: Vec<u32> = self
            .component(name)?
            .services()
            .iter()
            .map(|s| s.pid())
            .collect();
        for pid in pids {
            let status = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .context("running kill")?;
            anyhow::ensure!(status.success(), "kill -KILL {pid} ({name}) failed");
        }
        Ok(())
    }

    /// `restartPolicy: Always`: restart every component whose process exited, at once the
    /// first time and then after the kubelet's back-off ([`restarts`]); each restart
    /// printed and counted in `mesh.json`.
    fn supervise(&mut self) -> Result<()> {
        let now = Instant::now();
        for i in 0..self.components.len() {
            let Err(exit) = self.components[i].check() else {
                continue;
            };
            let name = self.components[i].name().to_string();
            // `<name> exited (<status>); last lines of <log>:` -> `<status>`.
            let text = format!("{exit:#}");
            let first = text.lines().next().unwrap_or_default();
            let reason = first
                .split_once(" exited (")
                .and_then(|(_, rest)| rest.split_once("); last lines"))
                .map_or(first, |(status, _)| status)
                .to_string();
            let backoff = self
                .backoff
                .entry(name.clone())
                .or_insert_with(|| restarts::Backoff::new(now));
            let (due, new) = backoff.exited(now);
            if due > now {
                if new {
                    let wait = due.saturating_duration_since(now).as_secs();
                    println!("kiosk: {name} exited ({reason}); back-off: restarting in {wait} s");
                }
                continue;
            }
            let record = self.state.restarts.entry(name.clone()).or_default();
            record.count += 1;
            record.last_reason = reason.clone();
            record.last_at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let count = record.count;
            println!("kiosk: {name} exited ({reason}); restarting it (restart {count})");
            let result = self.components[i].restart();
            if let Some(b) = self.backoff.get_mut(&name) {
                b.restarted(Instant::now());
            }
            match result {
                Ok(()) => println!("  {name} is back (restart {count})"),
                Err(e) => {
                    println!("  restarting {name} failed: {e:#}; trying again after its back-off")
                }
            }
            self.sync()?;
        }
        Ok(())
    }

    /// Supervise while `work` runs on its own thread; its result.
    async fn supervise_until<T: Send + 'static>(
        &mut self,
        work: std::thread::JoinHandle<Result<T>>,
    ) -> Result<T> {
        while !work.is_finished() {
            self.supervise()?;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        work.join()
            .map_err(|_| anyhow::anyhow!("a job's thread panicked"))?
    }

    /// Supervise for `how_long`.
    async fn supervise_for(&mut self, how_long: Duration) -> Result<()> {
        let until = Instant::now() + how_long;
        while Instant::now() < until {
            self.supervise()?;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(())
    }

    /// What `kiosk up` prints of the restarts, if there were any.
    fn restart_summary(&self) -> Option<String> {
        if self.state.restarts.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .state
            .restarts
            .iter()
            .map(|(name, r)| format!("{name} {} ({})", r.count, r.last_reason))
            .collect();
        Some(format!(
            "restarts (restartPolicy Always): {}",
            parts.join("; ")
        ))
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        while let Some(mut c) = self.components.pop() {
            c.stop();
        }
        if let Some(net) = &self.state.network {
            net.remove();
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

/// `kiosk up`. Returns whether verify passed.
pub async fn up(home: &Path, args: &UpArgs) -> Result<bool> {
    let started = Instant::now();
    // Everything that can be checked is checked before anything starts: the bundle, the
    // plan, the tools, the rights pods need.
    pod::preflight()?;
    let strimzi = args
        .strimzi
        .clone()
        .unwrap_or_else(crate::bundle::default_dir);
    let bundle = Bundle::read(&strimzi)?;
    let policies = crate::bundle::peer_authentication(&crate::bundle::default_istio_dir())?;
    let plan = Plan::pipeline(&bundle, usize::from(args.brokers));
    plan.check()?;
    let connector = bundle.connector(plan::SINK_CONNECTOR)?.clone();
    let ingress = match args.ingress.as_str() {
        "jwt" => Some(ingress::prepare(&crate::bundle::default_istio_dir())?),
        _ => None,
    };
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
        network: None,
        restarts: BTreeMap::new(),
    };
    lock(home, &state)?;
    let mut mesh = Mesh {
        home: home.to_path_buf(),
        state,
        components: Vec::new(),
        backoff: BTreeMap::new(),
    };
    std::fs::create_dir_all(&run_dir)?;
    println!(
        "kiosk: run directory {} (every process logs there); Strimzi resources from {}",
        run_dir.display(),
        strimzi.display()
    );

    // Names as the cluster has them.
    let names = ClusterNames::of(&bundle)?;
    let tls_clients = args.kafka_auth == "tls";
    let sasl = match args.kafka_auth.as_str() {
        "scram-sha-512" => Some(Mechanism::ScramSha512),
        "plain" => Some(Mechanism::Plain),
        _ => None,
    };
    if tls_clients || sasl.is_some() {
        for w in plan.workloads.iter().filter(|w| w.kafka) {
            bundle.user(w.kafka_user.as_deref().unwrap_or_default())?;
        }
        if policies.broker_ports.get(&TLS_PORT).map(String::as_str) != Some("DISABLE") {
            bail!("--kafka-auth tls: the brokers' TLS listener ends at Kafka, so istio/ needs a PeerAuthentication with portLevelMtls {TLS_PORT}: DISABLE for the broker pods");
        }
    }
    // The port clients dial: Strimzi's plain listener, or its TLS listener.
    let client_port = if tls_clients { TLS_PORT } else { PLAIN_PORT };
    let kafka_bootstrap = format!("{}:{client_port}", names.bootstrap_host);

    step("pods: a network namespace per workload, broker and database, Istio's traffic capture");
    let mut net = pod::free_network()?;
    let broker_capture = Capture::from_annotations(&bundle.node_pool.pod_annotations)?;
    let brokers: Vec<(String, String)> = (0..plan.brokers)
        .map(|i| {
            let pod = format!("{}-{}-{i}", bundle.kafka.name, bundle.node_pool.name);
            let host = format!(
                "{pod}.{}-kafka-brokers.{}.svc",
                bundle.kafka.name, bundle.kafka.namespace
            );
            net.add_pod(&pod, &bundle.kafka.namespace, Some(broker_capture.clone()));
            (pod, host)
        })
        .collect();
    net.add_pod(MONGODB, NAMESPACE, Some(Capture::default()));
    if args.kafka_port_decoy {
        net.add_pod(decoy::POD, NAMESPACE, Some(Capture::default()));
    }
    let with_registry = args.schema_registry == "apicurio";
    let with_tracing = args.tracing == "jaeger";
    if with_tracing {
        net.add_pod(JAEGER, "istio-system", None);
    }
    if with_registry {
        // Its management port (health) is probed from outside the mesh, as a kubelet's
        // probes are: excluded from capture.
        let capture = Capture {
            exclude_inbound: vec![registry::MANAGEMENT_PORT],
            ..Capture::default()
        };
        net.add_pod(REGISTRY, NAMESPACE, Some(capture));
    }
    for w in &plan.workloads {
        let capture = if w.program == Program::Connect {
            Capture::from_annotations(&bundle.connect.pod_annotations)?
        } else {
            Capture::default()
        };
        net.add_pod(&w.name, NAMESPACE, Some(capture));
    }
    if let Some(ingress) = &ingress {
        ingress.add_pods(&mut net);
    }
    // Strimzi's operators run without a sidecar.
    net.add_pod(OPERATOR, &bundle.kafka.namespace, None);
    let mut hosts = hosts_file(&net, &names, &brokers, &plan)?;
    if let Some(ingress) = &ingress {
        hosts.push_str(&ingress.hosts(&net)?);
    }
    net.create(&hosts)?;
    mesh.state.network = Some(net.clone());
    write_state(&mesh.home, &mesh.state)?;
    println!(
        "  {} pods on {} ({}.0/24), cluster names in /etc/netns/<pod>/hosts",
        net.pods.len(),
        net.bridge,
        net.subnet
    );

    step("mesh CA and a SPIFFE certificate per sidecar");
    let ca = MeshCa::generate(&run_dir.join("certs"))?;

    // The MongoDB CA (the bundle's mongodb-ca Secret): the server's certificate, and one
    // per client workload whose subject DN is its MongoDB user.
    let mongo_ca = if args.mongodb_auth == "x509" {
        Some(MeshCa::generate_named(
            &run_dir.join("certs/mongodb-ca"),
            "mongodb-ca",
        )?)
    } else {
        None
    };
    let mongo_clients: Vec<&plan::Workload> = plan.workloads.iter().filter(|w| w.mongo).collect();
    step(match args.mongodb_auth.as_str() {
        "x509" => "MongoDB (SecantusDB): TLS, client certificates and authentication required; X.509 users",
        "scram-sha-256" => "MongoDB (SecantusDB): authentication required; SCRAM-SHA-256 users",
        _ => "MongoDB (SecantusDB): no authentication (--mongodb-auth none)",
    });
    let mongo_tls = match &mongo_ca {
        Some(ca) => {
            let names = [MONGO_HOST.to_string(), format!("{MONGODB}.{NAMESPACE}.svc")];
            let server = ca.issue_server("mongodb-server", &names)?;
            Some(ServerTls {
                cert: server.chain,
                key: server.key,
                client_ca: ca.root_file(),
            })
        }
        None => None,
    };
    // A user per client workload: its certificate's subject, or a name with a random
    // password (in its Secret, here a file only root reads; in its sidecar's environment).
    let scram = args.mongodb_auth == "scram-sha-256";
    let mut users = Vec::new();
    for w in mongo_clients.iter().filter(|_| args.mongodb_auth != "none") {
        let (name, password) = if scram {
            let password = random_password()?;
            let name = format!("{}-mongodb", w.name);
            write_secret(
                &run_dir.join(format!("secrets/{name}.password")),
                password.as_bytes(),
            )?;
            (name, Some(password))
        } else {
            (mongo_subject(&w.name), None)
        };
        users.push(MongoUser {
            name,
            database: MONGO_DATABASE.into(),
            password,
        });
    }
    let mongo_pod = net.pod(MONGODB)?.clone();
    let mongo = MongoServer::start(
        &run_dir,
        MONGO_PORT,
        &users,
        mongo_tls.clone(),
        Some(mongo_pod),
    )
    .await?;
    mesh.add(mongo)?;
    mesh.state.mongodb_port = Some(MONGO_PORT);
    if !users.is_empty() {
        println!(
            "  MongoDB users: {}; the apps hold none of their credentials",
            users
                .iter()
                .map(|u| u.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    if with_registry {
        step("schema registry: Apicurio Registry 3.3.3, the Confluent-compatible API");
        let started = Instant::now();
        mesh.add(SchemaRegistry::start(&run_dir, net.pod(REGISTRY)?.clone())?)?;
        println!(
            "  ready in {:.1} s: http://{REGISTRY_HOST}:{}{}",
            started.elapsed().as_secs_f64(),
            registry::API_PORT,
            registry::CCOMPAT_PATH
        );
    }

    if args.kafka_port_decoy {
        step("a service on Kafka's port that is not a broker (kafka-decoy)");
        mesh.add(Decoy::start(
            &run_dir,
            net.pod(decoy::POD)?.clone(),
            PLAIN_PORT,
        )?)?;
    }

    // Where the spans go (the sidecars: OTLP gRPC; the services: OTLP HTTP).
    let collector = match with_tracing {
        true => {
            step("Jaeger v2: spans from the sidecars, the gateway and the services");
            let pod = net.pod(JAEGER)?.clone();
            let ip = pod.ip;
            mesh.add(Jaeger::start(&run_dir, pod)?)?;
            println!("  query API: http://{ip}:{}/api/traces", jaeger::QUERY_PORT);
            Some(std::net::SocketAddr::from((ip, jaeger::OTLP_GRPC_PORT)))
        }
        false => None,
    };
    let otlp_env = |env: &mut Vec<(String, String)>| {
        if with_tracing {
            let endpoint = format!("http://{JAEGER_HOST}:{}", jaeger::OTLP_HTTP_PORT);
            env.push((kiosk_services::otel::ENDPOINT_ENV.to_string(), endpoint));
        }
    };

    step(&format!(
        "Kafka 4.3.1 (KRaft, {} node{}) in pods {}",
        plan.brokers,
        if plan.brokers == 1 { "" } else { "s" },
        brokers
            .iter()
            .map(|(p, _)| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let nodes = brokers
        .iter()
        .map(|(pod, host)| Ok((net.pod(pod)?.clone(), host.clone())))
        .collect::<Result<Vec<_>>>()?;
    // Strimzi's CAs: the cluster CA signs the brokers, the clients CA the users.
    let tls = if tls_clients {
        let cluster_ca = MeshCa::generate_named(&run_dir.join("certs/cluster-ca"), "cluster-ca")?;
        let keystores = brokers
            .iter()
            .map(|(pod, host)| {
                let names = vec![
                    names.bootstrap_host.clone(),
                    host.clone(),
                    format!("{host}.cluster.local"),
                ];
                Ok(cluster_ca
                    .issue_server(pod, &names)?
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
            cluster_ca,
            clients_ca,
        ))
    } else {
        None
    };
    let mut kafka_spec =
        KafkaSpec::in_pods(&run_dir, nodes, tls.as_ref().map(|(l, _, _)| l.clone()))?;
    kafka_spec.config = bundle.kafka.config.clone();
    // The User Operator's part for SASL users: a password per KafkaUser, in its Secret
    // (here a file only root reads), the credential on the brokers.
    let mut passwords = BTreeMap::new();
    if let Some(mechanism) = sasl {
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
    let platform = kafka_spec.platform_bootstrap_by_name();
    mesh.add(Kafka::start(kafka_spec)?)?;

    step("the Topic Operator's part, from its own pod: every KafkaTopic as declared");
    let operator = net.pod(OPERATOR)?.clone();
    let mut topics = operator.command(&kiosk, false);
    topics
        .args(["operator", "--bootstrap", &platform])
        .args(["--brokers", &plan.brokers.to_string()])
        .args(["--kafka-auth", &args.kafka_auth])
        .arg("--strimzi")
        .arg(&strimzi);
    if !job("strimzi-operator", topics, &run_dir)? {
        bail!(
            "the Strimzi operators' part (KafkaTopics, KafkaUsers) failed; see {}",
            run_dir.join("strimzi-operator.log").display()
        );
    }

    step("Envoy sidecars: Istio's listeners, mTLS between them, the kiosk filter on Kafka and MongoDB");
    let mut plugin_config = json!({ "kiali": { "topic_namespace": TOPIC_NAMESPACE } });
    // Where the Kafka credential may go: the bundle's WasmPlugin says (the brokers' identity).
    let kafka_upstreams = {
        let istio = crate::bundle::default_istio_dir();
        let config = crate::bundle::wasm_plugin_config(&istio, "kiosk")?;
        let upstreams = config["kafka_auth"]["upstreams"].clone();
        if sasl.is_some() && upstreams.is_null() {
            bail!("{}: the WasmPlugin kiosk has no pluginConfig.kafka_auth.upstreams: the filter would send the credential nowhere", istio.display());
        }
        upstreams
    };
    if with_registry {
        // Records by their values' schema ids (off by default: it reads record values).
        plugin_config["records_by_schema"] = json!(true);
    }
    let mut targets = Vec::new();
    let mut sidecars = Vec::new();
    for (pod_name, _) in &brokers {
        sidecars.push((
            pod_name.clone(),
            broker_workload(&bundle),
            vec![],
            vec![PLAIN_PORT],
        ));
    }
    // With TLS, MongoDB's port ends at mongod (the bundle's excludeInboundPorts and
    // PeerAuthentication portLevelMtls DISABLE): the sidecar passes it through.
    let mongo_inbound = if mongo_ca.is_some() {
        vec![]
    } else {
        vec![MONGO_PORT]
    };
    sidecars.push((
        MONGODB.to_string(),
        MONGODB.to_string(),
        vec![],
        mongo_inbound,
    ));
    if args.kafka_port_decoy {
        let decoy = decoy::POD.to_string();
        sidecars.push((decoy.clone(), decoy, vec![], vec![PLAIN_PORT]));
    }
    if with_registry {
        sidecars.push((
            REGISTRY.to_string(),
            REGISTRY.to_string(),
            vec![],
            vec![registry::API_PORT],
        ));
    }
    for w in &plan.workloads {
        let mut outbound = Vec::new();
        if w.kafka {
            // Plain: Istio mTLS to the broker's sidecar. TLS: the sidecar originates TLS to
            // Kafka's own listener with the workload's KafkaUser certificate (a
            // DestinationRule MUTUAL); the kiosk filter still reads plaintext before it.
            let tls = match (&tls, &w.kafka_user) {
                (Some((_, cluster_ca, clients_ca)), Some(user)) => UpstreamTls::Originate {
                    client: clients_ca.issue_user(
                        &format!("{}-kafka-user", w.name),
                        user,
                        Some(pod::SIDECAR_UID),
                    )?,
                    ca: cluster_ca.root_file(),
                    server_name: names.bootstrap_host.clone(),
                },
                _ => UpstreamTls::IstioMutual,
            };
            outbound.push(OutboundPort {
                port: client_port,
                protocol: Protocol::Kafka,
                host: names.bootstrap_host.clone(),
                tls,
            });
        }
        if w.mongo {
            // X.509: the sidecar originates TLS to mongod with the workload's certificate
            // (a DestinationRule MUTUAL with credentialName), and the kiosk filter, reading
            // the plaintext before it, authenticates as that certificate's subject.
            let tls = match &mongo_ca {
                Some(ca) => UpstreamTls::Originate {
                    client: ca.issue_client(
                        &format!("{}-mongodb-client", w.name),
                        &mongo_subject_parts(&w.name),
                        Some(pod::SIDECAR_UID),
                    )?,
                    ca: ca.root_file(),
                    server_name: MONGO_HOST.into(),
                },
                None => UpstreamTls::IstioMutual,
            };
            outbound.push(OutboundPort {
                port: MONGO_PORT,
                protocol: Protocol::MongoDb,
                host: MONGO_HOST.into(),
                tls,
            });
        }
        if let (Some(ingress), Some(_)) = (&ingress, &w.calls) {
            // Through the ingress gateway, with a token from the issuer.
            outbound.extend(ingress.client_ports());
        }
        // The REST entry's Service, which istiod gives every sidecar (as every Service): its
        // caller's without a gateway, and anyone's (its AuthorizationPolicy refuses them).
        if w.serves_http.is_none() {
            let host = plan
                .workloads
                .iter()
                .find_map(|c| c.serves_http.clone())
                .unwrap_or_default();
            outbound.push(OutboundPort {
                port: REST_PORT,
                protocol: Protocol::Http,
                host,
                tls: UpstreamTls::IstioMutual,
            });
        }
        if with_registry {
            outbound.push(OutboundPort {
                port: registry::API_PORT,
                protocol: Protocol::Http,
                host: REGISTRY_HOST.into(),
                tls: UpstreamTls::IstioMutual,
            });
        }
        let inbound = if w.serves_http.is_some() {
            vec![REST_PORT]
        } else {
            vec![]
        };
        sidecars.push((w.name.clone(), w.name.clone(), outbound, inbound));
    }
    // The registry's sidecar enforces the bundle's AuthorizationPolicy for it.
    let registry_rbac = if with_registry {
        // Its pod's labels as the chart renders them (release `kiosk`).
        let labels = std::collections::BTreeMap::from([
            ("app".to_string(), REGISTRY.to_string()),
            (
                "app.kubernetes.io/name".to_string(),
                "test-kafka-istio-mongo".to_string(),
            ),
            (
                "app.kubernetes.io/instance".to_string(),
                "kiosk".to_string(),
            ),
            (
                "app.kubernetes.io/component".to_string(),
                REGISTRY.to_string(),
            ),
        ]);
        let istio = crate::bundle::default_istio_dir();
        let policies = crate::ingress::workload_policies(&istio, NAMESPACE, &labels)?;
        if policies.is_empty() {
            bail!("no AuthorizationPolicy in {} selects the schema registry ({REGISTRY} in {NAMESPACE})", istio.display());
        }
        crate::ingress::rbac_filters(&policies)?
    } else {
        Vec::new()
    };
    // The REST entry's sidecar enforces the bundle's AuthorizationPolicy for the KafkaBridge's
    // pods (issue 28): only the ingress gateway's identity may post. Without the gateway
    // (`--ingress none`) the chart names the producer too (rest.gateway.enabled false), and so
    // does the box.
    let rest_rbac = {
        // The labels Strimzi gives the KafkaBridge's pods.
        let labels = std::collections::BTreeMap::from([
            ("strimzi.io/cluster".to_string(), bundle.bridge.name.clone()),
            ("strimzi.io/kind".to_string(), "KafkaBridge".to_string()),
            (
                "strimzi.io/name".to_string(),
                format!("{}-bridge", bundle.bridge.name),
            ),
        ]);
        let istio = crate::bundle::default_istio_dir();
        let mut policies = crate::ingress::workload_policies(&istio, NAMESPACE, &labels)?;
        if policies.is_empty() {
            bail!(
                "no AuthorizationPolicy in {} selects the REST entry (KafkaBridge {} in {NAMESPACE})",
                istio.display(),
                bundle.bridge.name
            );
        }
        if ingress.is_none() {
            let producer = plan
                .workloads
                .iter()
                .find(|w| w.calls.is_some())
                .map(|w| format!("cluster.local/ns/{NAMESPACE}/sa/{}", w.service_account))
                .context("the plan has no producer")?;
            for p in policies.iter_mut().filter(|p| p.action == "ALLOW") {
                for rule in &mut p.rules {
                    for from in rule["from"].as_array_mut().into_iter().flatten() {
                        if let Some(ps) = from["source"]["principals"].as_array_mut() {
                            ps.push(json!(producer));
                        }
                    }
                }
            }
        }
        crate::ingress::rbac_filters(&policies)?
    };
    for (pod_name, workload, outbound, inbound) in sidecars {
        let pod = net.pod(&pod_name)?.clone();
        // Its ServiceAccount's SPIFFE identity: the bundle's for the plan's workloads, and
        // Strimzi's `<cluster>-kafka` for every broker pod (the identity the Kafka
        // WasmPlugin's `kafka_auth.upstreams` names).
        let broker_account = format!("{}-kafka", bundle.kafka.name);
        let account = match plan.workload(&workload) {
            Some(w) => w.service_account.as_str(),
            None if brokers.iter().any(|(p, _)| *p == pod_name) => broker_account.as_str(),
            None => workload.as_str(),
        };
        let certs = ca.issue(&pod_name, &pod.namespace, account, Some(pod::SIDECAR_UID))?;
        // SASL by the filter: the WasmPlugin's kafka_auth, and the workload's KafkaUser
        // credential in the istio-proxy container's environment (vmConfig.env HOST).
        let user = plan.workload(&workload).and_then(|w| w.kafka_user.clone());
        let (plugin_config, env) = match (sasl, user.and_then(|u| passwords.get_key_value(&u))) {
            (Some(mechanism), Some((user, password))) => {
                let mut config = plugin_config.clone();
                config["kafka_auth"] = json!({
                    "mechanism": mechanism.name(),
                    "upstreams": kafka_upstreams,
                });
                let env = vec![
                    ("KIOSK_KAFKA_USERNAME".to_string(), user.clone()),
                    ("KIOSK_KAFKA_PASSWORD".to_string(), password.clone()),
                ];
                (config, env)
            }
            _ => (plugin_config.clone(), Vec::new()),
        };
        // MongoDB: the WasmPlugin for its port, and a SCRAM user's credential in the
        // sidecar's environment as for Kafka.
        let mut env = env;
        let mut mongodb_plugin_config = json!({ "protocol": "mongodb" });
        let mongo_user = users
            .iter()
            .find(|u| u.name == format!("{workload}-mongodb"));
        if mongo_ca.is_some() {
            mongodb_plugin_config["mongodb_auth"] = json!({ "mechanism": "MONGODB-X509" });
        } else if let Some(MongoUser {
            name,
            password: Some(password),
            ..
        }) = mongo_user
        {
            // The box's MongoDB pod runs as ServiceAccount `mongodb`.
            mongodb_plugin_config["mongodb_auth"] = json!({
                "mechanism": "SCRAM-SHA-256",
                "upstreams": { "principals": [format!("cluster.local/ns/{NAMESPACE}/sa/{MONGODB}")] },
            });
            env.push(("KIOSK_MONGODB_USERNAME".to_string(), name.clone()));
            env.push(("KIOSK_MONGODB_PASSWORD".to_string(), password.clone()));
        }
        let spec = SidecarSpec {
            env,
            mongodb_plugin_config,
            workload: workload.clone(),
            namespace: pod.namespace.clone(),
            app: workload.clone(),
            admin_port: 0,
            routes: Vec::new(),
            plugin_config,
            wasm: wasm.clone(),
            concurrency: ISTIO_CONCURRENCY,
            pod: Some(PodSidecar {
                tracing: collector,
                strict: policies.strict(&pod.namespace),
                // The brokers' TLS listener (PeerAuthentication portLevelMtls DISABLE).
                inbound_passthrough: if tls_clients && brokers.iter().any(|(p, _)| *p == pod_name) {
                    vec![TLS_PORT]
                } else if pod_name == MONGODB && mongo_ca.is_some() {
                    vec![MONGO_PORT]
                } else {
                    vec![]
                },
                // HTTP ports as Istio treats them, each with its AuthorizationPolicy's RBAC
                // (the registry's; the REST entry's, which plays the KafkaBridge).
                inbound_http: if pod_name == REGISTRY {
                    vec![(registry::API_PORT, registry_rbac.clone())]
                } else if plan
                    .workload(&workload)
                    .is_some_and(|w| w.serves_http.is_some())
                {
                    vec![(REST_PORT, rest_rbac.clone())]
                } else {
                    vec![]
                },
                pod: pod.clone(),
                certs,
                outbound,
                inbound,
            }),
        };
        let sidecar = Sidecar::start(spec, &run_dir)?;
        let (ip, port) = sidecar.stats_endpoint();
        targets.push(Target {
            address: format!("{ip}:{port}"),
            namespace: pod.namespace.clone(),
            workload,
        });
        mesh.add(sidecar)?;
    }
    let ingress = match &ingress {
        Some(prepared) => {
            let started = ingress::start(
                prepared, &mut mesh, &net, &ca, &plan, &kiosk, &wasm, collector,
            )?;
            targets.push(started.target.clone());
            Some(started)
        }
        None => None,
    };

    step("Prometheus scraping every sidecar");
    let prometheus_port = ports::free()?;
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

    // The apps, configured as the chart configures them: cluster names, no sidecar ports.
    // The same URI as without security: no user, no password, no TLS option.
    let mongo_uri = mongo::uri(MONGO_HOST, MONGO_PORT);
    println!("  MongoDB URI of the apps: {mongo_uri}");
    let mut rest_url = None;
    let mut producer_pod = None;
    let mut verify_pod = None;
    for w in &plan.workloads {
        let pod = net.pod(&w.name)?.clone();
        match &w.program {
            Program::Service(service_args) => {
                step(&format!("{}: kiosk-services {}", w.name, service_args[0]));
                let mut args = service_args.clone();
                args.extend(["--bootstrap".to_string(), kafka_bootstrap.clone()]);
                let mut ready_port = None;
                if w.serves_http.is_some() {
                    args.extend(["--listen".to_string(), format!("0.0.0.0:{REST_PORT}")]);
                    ready_port = Some(REST_PORT);
                }
                // The mirror resolves and validates each value's schema (the chart gives
                // it SCHEMA_REGISTRY_URL the same way).
                let mut env = match (with_registry, service_args[0].as_str()) {
                    (true, "mirror") => vec![("SCHEMA_REGISTRY_URL".to_string(), registry_url())],
                    _ => Vec::new(),
                };
                otlp_env(&mut env);
                let spec = ServiceSpec {
                    name: w.name.clone(),
                    program: kiosk.clone(),
                    args,
                    env,
                    ready_port,
                    pod: Some(pod),
                };
                mesh.add(PipelineService::start(spec, &run_dir)?)?;
            }
            Program::Connect => {
                step(&format!(
                    "{}: Kafka Connect 4.3.1 with KafkaConnector {} ({})",
                    w.name, connector.name, connector.class
                ));
                let secrets = connect_secrets(&connector, &mongo_uri)?;
                let spec = ConnectSpec {
                    dir: run_dir.clone(),
                    connect: bundle.connect.clone(),
                    connectors: vec![connector.clone()],
                    bootstrap: kafka_bootstrap.clone(),
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
    if let Some(ingress) = &ingress {
        rest_url = ingress.url.clone();
    }
    let producer_pod = producer_pod.context("the plan has no producer")?;
    if with_registry {
        step("schema registry: events-value registered by the producer's identity (BACKWARD), an allowed and a refused evolution checked");
        let schemas = paths::root().join("schemas");
        let mut register = producer_pod.command(&kiosk, false);
        register
            .args(["register-schemas", "--registry", &registry_url()])
            .args(["--subject", SCHEMA_SUBJECT, "--compatibility", "BACKWARD"])
            .arg("--schema")
            .arg(schemas.join("events-value.v1.schema.json"))
            .arg("--evolve")
            .arg(schemas.join("events-value.v2-compatible.schema.json"))
            .arg("--refused")
            .arg(schemas.join("events-value.v3-incompatible.schema.json"));
        if !job("register-schemas", register, &run_dir)? {
            bail!(
                "registering the schemas failed; see {}",
                run_dir.join("register-schemas.log").display()
            );
        }
    }
    let verify_pod = verify_pod.context("the plan has no verify job")?;
    mesh.state.rest_url = Some(rest_url.clone());
    mesh.phase("running")?;
    println!(
        "kiosk: the mesh started in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let run_id = format!("run-{now}");
    step(&format!(
        "{}: {} records to {rest_url}",
        producer_pod.name, args.records
    ));
    let mut producer = producer_pod.command(&kiosk, false);
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
        .args(["--rate", &args.rate.to_string(), "--batch", "20"])
        .args(ingress.iter().flat_map(|i| i.producer_args.iter()));
    let mut producer_env = Vec::new();
    otlp_env(&mut producer_env);
    producer.envs(producer_env);
    if with_registry {
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
        fault_drill(&mut mesh, &plan, sending).await?;
    }
    let produced = mesh.supervise_until(producer).await?;
    if !produced {
        bail!(
            "the producer failed; see {}",
            run_dir.join("producer.log").display()
        );
    }

    step("verify: topics and collection");
    let mut verify = verify_pod.command(&kiosk, false);
    verify
        .args(["verify", "--topics", &format!("{TOPIC_IN},{TOPIC_OUT}")])
        .args(["--bootstrap", &kafka_bootstrap])
        .args(["--records", &args.records.to_string(), "--run", &run_id])
        // The MongoDB connector writes key and value only, not the record headers.
        .args(["--collection-headers", "false"])
        .args(["--dead-letters", if with_registry { "2" } else { "0" }]);
    if with_tracing {
        // The last record's trace, from the mirrored record's header, as Jaeger holds it.
        let last = kiosk_services::record::expected(&run_id, args.records)
            .pop()
            .map(|r| r.key)
            .unwrap_or_default();
        let query = format!("http://{JAEGER_HOST}:{}", jaeger::QUERY_PORT);
        verify.args(["--trace-of", &last, "--jaeger", &query]);
    }
    verify.env("MONGODB_URI", &mongo_uri);
    let verified = {
        let run_dir = run_dir.clone();
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
    let options = graph::Options {
        kafka_hosts: vec![names.bootstrap_host.clone()],
        ..graph::Options::default()
    };
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
        "\nkiosk: the mesh is up. Prometheus {prom_url}, REST entry {rest_url} (from the pods), logs in {}.\n\
         kiosk: `kiosk graph` redraws the graph; Ctrl-C or `kiosk down` stops everything.",
        run_dir.display()
    );
    wait_for_stop(&mut mesh).await?;
    Ok(verified)
}

/// The pod running Strimzi's operators' part (creating the KafkaTopics), without a sidecar.
const OPERATOR: &str = "strimzi-operator";
/// MongoDB's pod and workload.
const MONGODB: &str = "mongodb";
/// The schema registry's pod and workload.
const REGISTRY: &str = "schema-registry";
/// Jaeger's pod, and the collector's Service as Istio's samples/addons/jaeger.yaml names it.
const JAEGER: &str = "jaeger";
const JAEGER_HOST: &str = "jaeger-collector.istio-system.svc.cluster.local";
/// The subject of the `events` topic's values.
const SCHEMA_SUBJECT: &str = "events-value";

/// The registry's Confluent-compatible API as the apps reach it (`SCHEMA_REGISTRY_URL`).
pub fn registry_url() -> String {
    format!(
        "http://{REGISTRY_HOST}:{}{}",
        registry::API_PORT,
        registry::CCOMPAT_PATH
    )
}
const MONGO_PORT: u16 = 27017;
/// The database the pipeline writes (the KafkaConnector's `database`, verify's default).
const MONGO_DATABASE: &str = "pipeline";

/// A MongoDB client workload's X.509 identity as the bundle's issuer writes it
/// (`CN=<workload>,OU=<namespace>,O=kiosk`): its certificate's subject, most specific
/// first.
fn mongo_subject_parts(workload: &str) -> [(DnType, &str); 3] {
    [
        (DnType::CommonName, workload),
        (DnType::OrganizationalUnitName, NAMESPACE),
        (DnType::OrganizationName, "kiosk"),
    ]
}

/// That identity as RFC 4514 prints it: the workload's MongoDB user on `$external`.
pub fn mongo_subject(workload: &str) -> String {
    format!("CN={workload},OU={NAMESPACE},O=kiosk")
}
/// The REST entry's port (the Bridge's 8080).
const REST_PORT: u16 = 8080;
/// Kafka Connect's REST API (excluded from capture by the bundle's annotations).
const CONNECT_REST_PORT: u16 = 8083;

/// The cluster's service names, from the bundle.
struct ClusterNames {
    /// The host of the KafkaConnect's `spec.bootstrapServers`: what the apps dial.
    bootstrap_host: String,
}

impl ClusterNames {
    fn of(bundle: &Bundle) -> Result<ClusterNames> {
        let bootstrap = bundle.connect.bootstrap_servers.clone();
        let (host, port) = bootstrap
            .split(',')
            .next()
            .and_then(|s| s.rsplit_once(':'))
            .context("KafkaConnect spec.bootstrapServers")?;
        if port != PLAIN_PORT.to_string() {
            bail!("the local mesh serves Kafka's plain listener on {PLAIN_PORT}; the KafkaConnect dials {bootstrap}");
        }
        if bundle.bridge.bootstrap_servers != bootstrap {
            bail!(
                "the KafkaBridge dials {} and the KafkaConnect {bootstrap}: the local mesh needs one bootstrap address",
                bundle.bridge.bootstrap_servers
            );
        }
        Ok(ClusterNames {
            bootstrap_host: host.to_string(),
        })
    }
}

/// The workload name of the broker pods (their StrimziPodSet).
fn broker_workload(bundle: &Bundle) -> String {
    format!("{}-{}", bundle.kafka.name, bundle.node_pool.name)
}

/// Every pod's `/etc/hosts`: the cluster's names (service and pod DNS names) to pod
/// addresses, as cluster DNS would answer.
fn hosts_file(
    net: &Network,
    names: &ClusterNames,
    brokers: &[(String, String)],
    plan: &Plan,
) -> Result<String> {
    let mut lines = vec![
        "# Written by kiosk up: the cluster's names in the local mesh.".to_string(),
        "127.0.0.1 localhost".to_string(),
    ];
    for (i, (pod, host)) in brokers.iter().enumerate() {
        let ip = net.pod(pod)?.ip;
        let mut line = format!("{ip} {host} {host}.cluster.local");
        if i == 0 {
            // A Service of all brokers; here its first (clients re-bootstrap from Metadata).
            let short = names.bootstrap_host.trim_end_matches(".cluster.local");
            line.push_str(&format!(" {} {short}", names.bootstrap_host));
        }
        lines.push(line);
    }
    lines.push(format!("{} {MONGO_HOST}", net.pod(MONGODB)?.ip));
    if let Ok(registry) = net.pod(REGISTRY) {
        lines.push(format!("{} {REGISTRY_HOST}", registry.ip));
    }
    if let Ok(jaeger) = net.pod(JAEGER) {
        lines.push(format!("{} {JAEGER_HOST}", jaeger.ip));
    }
    for w in &plan.workloads {
        if let Some(host) = &w.serves_http {
            lines.push(format!("{} {host}", net.pod(&w.name)?.ip));
        }
    }
    for pod in &net.pods {
        lines.push(format!("{} {}.{}.pod", pod.ip, pod.name, pod.namespace));
    }
    Ok(lines.join("\n") + "\n")
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

/// Wait for Ctrl-C, SIGTERM (`kiosk down`) or a service dying.
async fn wait_for_stop(mesh: &mut Mesh) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = term.recv() => { println!("kiosk: stopping (SIGTERM)"); return Ok(()); }
            _ = interrupt.recv() => { println!("kiosk: stopping (Ctrl-C)"); return Ok(()); }
            _ = tokio::time::sleep(Duration::from_secs(1)) => mesh.supervise()?,
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
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
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
