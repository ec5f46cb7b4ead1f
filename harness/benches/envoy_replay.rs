//! The filter's cost inside a real Envoy: one listener with the kiosk filter against the
//! same listener with only `tcp_proxy`, both Envoys pinned to one worker, interleaved in
//! one run. The client replays recorded Kafka request frames; the upstream is a sink that
//! answers each with the recorded response, so Envoy's cost is not mixed with a broker's.
//!
//! Prints, per case, Envoy CPU seconds per GB and MB/s for each listener and the ratio
//! filter / tcp_proxy; then the added latency per request at low load (p50, p99). With
//! `--json FILE` it also writes the figures for `scripts/bench.sh`. Not a test: nothing
//! here asserts a time.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiosk_harness::envoy::{Protocol, Route, Sidecar, SidecarSpec};
use kiosk_harness::{paths, ports};
use serde_json::json;

#[path = "../../filter/tests/frames/mod.rs"]
mod frames;

const PARTITIONS: i32 = 4;
/// Distinct recorded exchanges per case, replayed in a loop.
const EXCHANGES: i32 = 64;
const REPEATS: usize = 5;
const RUN: Duration = Duration::from_secs(3);
/// Requests in flight per connection, as a producer with linger would have.
const WINDOW: usize = 4;

/// Recorded client frames and the broker's answers, indexed by correlation id.
struct Session {
    name: &'static str,
    requests: Vec<Vec<u8>>,
    responses: Arc<Vec<Vec<u8>>>,
}

fn session(name: &'static str, exchanges: Vec<(Vec<u8>, Vec<u8>)>) -> Session {
    let (requests, responses) = exchanges.into_iter().unzip();
    Session {
        name,
        requests,
        responses: Arc::new(responses),
    }
}

/// Produce: `records` records of `value_len` bytes per partition batch.
fn produce(name: &'static str, value_len: usize, records: usize) -> Session {
    session(
        name,
        frames::produce_exchanges(value_len, records, PARTITIONS, EXCHANGES),
    )
}

/// Fetch: each response carries one batch per partition.
fn fetch(name: &'static str, value_len: usize, records: usize) -> Session {
    session(
        name,
        frames::fetch_exchanges(value_len, records, PARTITIONS, EXCHANGES),
    )
}

fn read_frame(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    buf.resize(i32::from_be_bytes(len) as usize, 0);
    stream.read_exact(buf)
}

/// The upstream: answers every request frame with the recorded response for its
/// correlation id.
fn sink(responses: Arc<Vec<Vec<u8>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let responses = Arc::clone(&responses);
            std::thread::spawn(move || {
                let mut stream = stream;
                let _ = stream.set_nodelay(true);
                let mut buf = Vec::new();
                while read_frame(&mut stream, &mut buf).is_ok() {
                    let correlation = i32::from_be_bytes(buf[4..8].try_into().unwrap());
                    let answer = &responses[correlation as usize % responses.len()];
                    if stream.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Drive `port` for `run` with `window` requests in flight; returns bytes both ways.
fn drive(port: u16, requests: &[Vec<u8>], window: usize, run: Duration) -> u64 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = stream.try_clone().unwrap();
    let mut buf = Vec::new();
    let (mut sent, mut bytes) = (0usize, 0u64);
    let start = Instant::now();
    for _ in 0..window {
        stream.write_all(&requests[sent % requests.len()]).unwrap();
        bytes += requests[sent % requests.len()].len() as u64;
        sent += 1;
    }
    let mut received = 0;
    while received < sent {
        read_frame(&mut reader, &mut buf).unwrap();
        bytes += 4 + buf.len() as u64;
        received += 1;
        if start.elapsed() < run {
            let r = &requests[sent % requests.len()];
            stream.write_all(r).unwrap();
            bytes += r.len() as u64;
            sent += 1;
        }
    }
    bytes
}

/// Envoy's CPU time so far (user + system), from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    ticks / per_second
}

fn sidecar(dir: &std::path::Path, name: &str, protocol: Protocol, upstream: u16) -> Sidecar {
    let spec = SidecarSpec {
        workload: name.into(),
        namespace: "bench".into(),
        app: name.into(),
        admin_port: ports::free().unwrap(),
        routes: vec![Route::outbound(
            "kafka",
            ports::free().unwrap(),
            upstream,
            protocol,
        )],
        // KIOSK_BENCH_PLUGIN_CONFIG: another pluginConfig, for experiments.
        plugin_config: std::env::var("KIOSK_BENCH_PLUGIN_CONFIG")
            .ok()
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_else(|| json!({})),
        wasm: paths::filter_wasm().unwrap(),
        concurrency: 1,
    };
    Sidecar::start(spec, dir).unwrap()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let json_out = std::env::args().skip_while(|a| a != "--json").nth(1);
    let dir = paths::root().join("target/bench-runs/envoy_replay");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sessions = [
        produce("produce 1 KiB records", 1024, 16),
        produce("produce 16 KiB records", 16 * 1024, 4),
        fetch("fetch 1 KiB records", 1024, 16),
        fetch("fetch 16 KiB records", 16 * 1024, 4),
    ];
    // KIOSK_BENCH_CASES: only the cases whose name contains one of these (comma-separated).
    let only = std::env::var("KIOSK_BENCH_CASES").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|w| name.contains(w.trim()));
    let mut results = Vec::new();
    println!("Envoy CPU per GB and throughput, kiosk filter vs tcp_proxy only ({REPEATS} interleaved runs of {RUN:?} each, median [min-max])");
    for s in sessions.iter().filter(|s| wanted(s.name)) {
        let upstream = sink(Arc::clone(&s.responses));
        let filter = sidecar(&dir, "with-filter", Protocol::Kafka, upstream);
        let plain = sidecar(&dir, "tcp-proxy", Protocol::Tcp, upstream);
        let mut cpu_gb = [Vec::new(), Vec::new()];
        let mut mbps = [Vec::new(), Vec::new()];
        // Warm up both (Wasm VM start, connection set-up).
        for sc in [&filter, &plain] {
            drive(
                sc.spec.routes[0].port,
                &s.requests,
                WINDOW,
                Duration::from_millis(300),
            );
        }
        for _ in 0..REPEATS {
            for (i, sc) in [&filter, &plain].into_iter().enumerate() {
                let pid = sc.service.pid();
                let cpu0 = cpu_seconds(pid);
                let t0 = Instant::now();
                let bytes = drive(sc.spec.routes[0].port, &s.requests, WINDOW, RUN);
                let secs = t0.elapsed().as_secs_f64();
                let cpu = cpu_seconds(pid) - cpu0;
                cpu_gb[i].push(cpu / (bytes as f64 / 1e9));
                mbps[i].push(bytes as f64 / 1e6 / secs);
            }
        }
        let ratios: Vec<f64> = cpu_gb[0]
            .iter()
            .zip(&cpu_gb[1])
            .map(|(a, b)| a / b)
            .collect();
        let spread = |v: &[f64]| {
            let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            (lo, hi)
        };
        let (rlo, rhi) = spread(&ratios);
        let ratio = median(&mut ratios.clone());
        let f_cpu = median(&mut cpu_gb[0].clone());
        let p_cpu = median(&mut cpu_gb[1].clone());
        let f_mb = median(&mut mbps[0].clone());
        let p_mb = median(&mut mbps[1].clone());
        println!(
            "  {:<24} filter {f_cpu:6.3} CPU s/GB {f_mb:7.0} MB/s | tcp_proxy {p_cpu:6.3} CPU s/GB {p_mb:7.0} MB/s | ratio {ratio:.3} [{rlo:.3}-{rhi:.3}]",
            s.name
        );
        results.push(json!({
            "case": s.name, "filter_cpu_s_per_gb": f_cpu, "plain_cpu_s_per_gb": p_cpu,
            "filter_mb_s": f_mb, "plain_mb_s": p_mb, "ratio": ratio, "ratio_min": rlo, "ratio_max": rhi,
            "ratios": ratios,
        }));
    }

    // Added latency at low load: one small produce request in flight at a time.
    let small = produce("latency", 1024, 1);
    let upstream = sink(Arc::clone(&small.responses));
    let filter = sidecar(&dir, "latency-filter", Protocol::Kafka, upstream);
    let plain = sidecar(&dir, "latency-plain", Protocol::Tcp, upstream);
    let mut rtt = [Vec::new(), Vec::new()];
    let mut conns: Vec<(TcpStream, TcpStream)> = [&filter, &plain]
        .iter()
        .map(|sc| {
            let s = TcpStream::connect(("127.0.0.1", sc.spec.routes[0].port)).unwrap();
            s.set_nodelay(true).unwrap();
            (s.try_clone().unwrap(), s)
        })
        .collect();
    let mut buf = Vec::new();
    for round in 0..4000 {
        let which = round % 2;
        let (w, r) = &mut conns[which];
        let req = &small.requests[round % small.requests.len()];
        let t0 = Instant::now();
        w.write_all(req).unwrap();
        read_frame(r, &mut buf).unwrap();
        if round >= 400 {
            rtt[which].push(t0.elapsed().as_secs_f64() * 1e6);
        }
    }
    for v in &mut rtt {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    let (f50, f99) = (percentile(&rtt[0], 0.5), percentile(&rtt[0], 0.99));
    let (p50, p99) = (percentile(&rtt[1], 0.5), percentile(&rtt[1], 0.99));
    println!(
        "Latency per request at low load (1 in flight, {} samples each)",
        rtt[0].len()
    );
    println!("  filter    p50 {f50:6.1} µs  p99 {f99:6.1} µs");
    println!("  tcp_proxy p50 {p50:6.1} µs  p99 {p99:6.1} µs");
    println!(
        "  added     p50 {:6.1} µs  p99 {:6.1} µs",
        f50 - p50,
        f99 - p99
    );
    let latency = json!({
        "filter_p50_us": f50, "filter_p99_us": f99, "plain_p50_us": p50, "plain_p99_us": p99,
        "added_p50_us": f50 - p50, "added_p99_us": f99 - p99,
    });
    if let Some(path) = json_out {
        let out = json!({ "throughput": results, "latency": latency });
        std::fs::write(&path, serde_json::to_vec_pretty(&out).unwrap()).unwrap();
        println!("figures written to {path}");
    }
}
