//! What the Envoy benchmarks share: the two sidecars compared, Envoy's CPU time, the
//! summary statistics they print, librdkafka as a driver, and a connection's first steps as
//! an app takes them.
#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
};
use kafka_protocol::protocol::StrBytes;
use kiosk_harness::components::envoy::{Protocol, Route, Sidecar, SidecarSpec};
use kiosk_harness::components::kafka::{decode_response, read_frame, request_frame};
use kiosk_services::kafka::{client_config, producer_config, send_waiting};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{json, Value};

/// One Envoy pinned to one worker with one outbound Kafka listener to `upstream`: the
/// kiosk filter before `tcp_proxy` (`Protocol::Kafka`) or `tcp_proxy` alone
/// (`Protocol::Tcp`). `KIOSK_BENCH_PLUGIN_CONFIG` sets another pluginConfig, for
/// experiments.
pub fn sidecar(
    dir: &Path,
    name: &str,
    protocol: Protocol,
    listener: u16,
    upstream: u16,
) -> Sidecar {
    let plugin_config = std::env::var("KIOSK_BENCH_PLUGIN_CONFIG")
        .ok()
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_else(|| json!({}));
    sidecar_with(
        dir,
        name,
        protocol,
        listener,
        upstream,
        plugin_config,
        Vec::new(),
    )
}

/// The same Envoy with the filter configured by `plugin_config` and `env` in its
/// environment (the filter's VM reads the Kafka credential from there).
pub fn sidecar_with(
    dir: &Path,
    name: &str,
    protocol: Protocol,
    listener: u16,
    upstream: u16,
    plugin_config: Value,
    env: Vec<(String, String)>,
) -> Sidecar {
    let routes = vec![Route::outbound("kafka", listener, upstream, protocol)];
    let spec = SidecarSpec {
        env,
        plugin_config,
        concurrency: 1,
        ..SidecarSpec::standalone(name, "bench", routes).unwrap()
    };
    Sidecar::start(spec, dir).unwrap()
}

/// A process's CPU time so far, summed over its threads from
/// `/proc/<pid>/task/*/schedstat` (nanoseconds; `/proc/<pid>/stat` counts 10 ms ticks,
/// too coarse for short runs).
pub fn cpu_seconds(pid: u32) -> f64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    nanos as f64 / 1e9
}

pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// (min, max)
pub fn spread(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Per-run cost per GB (CPU seconds unless `unit` says otherwise) and MB/s of the
/// filter (index 0) and tcp_proxy (index 1).
pub struct Comparison {
    pub cpu_per_gb: [Vec<f64>; 2],
    pub mb_per_s: [Vec<f64>; 2],
    pub unit: &'static str,
}

impl Default for Comparison {
    fn default() -> Self {
        Comparison {
            cpu_per_gb: Default::default(),
            mb_per_s: Default::default(),
            unit: "CPU s/GB",
        }
    }
}

impl Comparison {
    pub fn add(&mut self, which: usize, cpu_seconds: f64, bytes: u64, seconds: f64) {
        self.cpu_per_gb[which].push(cpu_seconds / (bytes as f64 / 1e9));
        self.mb_per_s[which].push(bytes as f64 / 1e6 / seconds);
    }

    /// Prints one line and returns the figures as JSON.
    pub fn report(&self, case: &str) -> serde_json::Value {
        let ratios: Vec<f64> = self.cpu_per_gb[0]
            .iter()
            .zip(&self.cpu_per_gb[1])
            .map(|(a, b)| a / b)
            .collect();
        let (rlo, rhi) = spread(&ratios);
        let ratio = median(&ratios);
        let f_cpu = median(&self.cpu_per_gb[0]);
        let p_cpu = median(&self.cpu_per_gb[1]);
        let f_mb = median(&self.mb_per_s[0]);
        let p_mb = median(&self.mb_per_s[1]);
        println!(
            "  {case:<24} filter {f_cpu:6.3} {unit} {f_mb:7.0} MB/s | tcp_proxy {p_cpu:6.3} {unit} {p_mb:7.0} MB/s | ratio {ratio:.3} [{rlo:.3}-{rhi:.3}]",
            unit = self.unit,
        );
        json!({
            "case": case, "unit": self.unit, "filter_cpu_s_per_gb": f_cpu, "plain_cpu_s_per_gb": p_cpu,
            "filter_mb_s": f_mb, "plain_mb_s": p_mb, "ratio": ratio, "ratio_min": rlo, "ratio_max": rhi,
            "ratios": ratios,
        })
    }
}

/// `--json FILE` from the command line.
pub fn json_out() -> Option<String> {
    arg("--json")
}

/// The value after `flag` on the command line.
pub fn arg(flag: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != flag).nth(1)
}

/// Today's date and the machine, for a results file: "2026-11-29 on 2 × AMD EPYC, Linux
/// 6.18.44" (as `scripts/bench-report.py` writes them into `latest.md`).
pub fn run_on() -> String {
    let date = std::process::Command::new("date")
        .arg("+%F")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("?", |(_, v)| v.trim());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{date} on {cores} × {cpu}, Linux {}", kernel.trim())
}

/// KIOSK_BENCH_CASES: only the cases whose name contains one of these (comma-separated).
pub fn wanted(name: &str) -> bool {
    let only = std::env::var("KIOSK_BENCH_CASES").unwrap_or_default();
    only.is_empty() || only.split(',').any(|w| name.contains(w.trim()))
}

/// The figures mean something only if the filter decoded the traffic: the filter's Envoy
/// must have counted `metric` records and no decode error. Panics otherwise.
pub fn check_decoded(filter: &Sidecar, metric: &str) {
    // The filter flushes its counters every second.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let samples = filter.prometheus().unwrap();
    let total = |name: &str| -> f64 {
        samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .sum()
    };
    let records = total(metric);
    let errors = total("kafka_decode_errors_total");
    assert!(
        records > 0.0 && errors == 0.0,
        "the filter did not decode the traffic: {metric} {records}, decode errors {errors}"
    );
}

/// librdkafka: produce `records` values of `value_len` bytes to `topic` through
/// `bootstrap`, all acknowledged (batches up to 1 MB).
pub fn rdkafka_produce(bootstrap: &str, topic: &str, value_len: usize, records: usize) {
    let producer: BaseProducer = producer_config(bootstrap, "bench")
        .expect("client settings")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.kbytes", "65536")
        .create()
        .expect("producer");
    let value = vec![b'k'; value_len];
    for i in 0..records {
        let key = i.to_string();
        send_waiting(&producer, BaseRecord::to(topic).key(&key).payload(&value)).expect("queued");
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("every record acknowledged");
}

/// librdkafka: fetch the first `records` records of `topic` (its `partitions` assigned,
/// from the beginning) through `bootstrap`.
pub fn rdkafka_fetch(bootstrap: &str, topic: &str, partitions: i32, records: usize) {
    let consumer: BaseConsumer = client_config(bootstrap, "bench")
        .expect("client settings")
        .set("group.id", "bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).expect("assign");
    let (mut read, deadline) = (0, Instant::now() + Duration::from_secs(300));
    while read < records {
        assert!(
            Instant::now() < deadline,
            "{topic}: read {read} of {records}"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) if m.payload().is_some() => read += 1,
            Some(Err(e)) => panic!("fetching {topic}: {e}"),
            _ => {}
        }
    }
}

/// An app's first two requests on a new connection (ApiVersions v3, Metadata v12), encoded
/// once.
pub struct FirstSteps {
    api_versions: Vec<u8>,
    metadata: Vec<u8>,
}

impl FirstSteps {
    pub fn encoded() -> FirstSteps {
        let api_versions = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("kiosk-bench"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        FirstSteps {
            api_versions: request_frame(18, 3, 1, "bench-app", &api_versions).unwrap(),
            metadata: request_frame(3, 12, 2, "bench-app", &MetadataRequest::default()).unwrap(),
        }
    }

    /// Connect to `address` and take the first steps: the connection, open, and the time
    /// from connect to the whole Metadata response. The responses are checked after the
    /// clock stops.
    pub fn connect(&self, address: SocketAddr) -> (TcpStream, Duration) {
        self.try_connect(address)
            .unwrap_or_else(|e| panic!("first steps through {address}: {e:#}"))
    }

    /// The same, failing instead of panicking (for readiness checks).
    pub fn try_connect(&self, address: SocketAddr) -> anyhow::Result<(TcpStream, Duration)> {
        let start = Instant::now();
        let mut stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(&self.api_versions)?;
        let versions = read_frame(&mut stream)?;
        stream.write_all(&self.metadata)?;
        let metadata = read_frame(&mut stream)?;
        let elapsed = start.elapsed();
        let (id, versions): (i32, ApiVersionsResponse) = decode_response(versions, 3)?;
        anyhow::ensure!(
            (id, versions.error_code) == (1, 0),
            "ApiVersions: correlation id {id}, error {}",
            versions.error_code
        );
        let (id, metadata): (i32, MetadataResponse) = decode_response(metadata, 12)?;
        anyhow::ensure!(
            id == 2 && !metadata.brokers.is_empty(),
            "Metadata: correlation id {id}, {} brokers",
            metadata.brokers.len()
        );
        Ok((stream, elapsed))
    }

    /// The first steps on a connection closed on return: how long they took.
    pub fn time(&self, address: SocketAddr) -> Duration {
        self.connect(address).1
    }
}
