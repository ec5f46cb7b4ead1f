//! Native decoder throughput: produce requests and fetch responses with 1 KiB and 16 KiB
//! records, through `Connection` in 64 KiB callbacks read as the glue reads them, every
//! request answered so the correlator works as in production. The `+schemas` cases are the
//! same produce sessions with `records_by_schema` on (each record's first bytes read).
//!
//! `KIOSK_DECODE_ITERATIONS=N [KIOSK_DECODE_CASE=fetch_16KiB]` skips criterion and feeds
//! each case's session N times: for instruction counts under
//! `valgrind --tool=callgrind` (run N and 0, subtract), which a busy machine does not
//! disturb.

use criterion::{criterion_group, Criterion, Throughput};
use kiosk_filter::{Config, Direction, Identity, Totalizer, Vm};

#[path = "../tests/frames/mod.rs"]
mod frames;

const PARTITIONS: i32 = 4;
/// Exchanges per iteration: fewer than the correlator's default `max_in_flight`, so every
/// response finds its request although all requests are fed first.
const EXCHANGES: i32 = 32;

/// Records per batch so that a batch is about 128 KiB.
fn records_per_batch(value_len: usize) -> usize {
    (128 * 1024 / value_len).max(1)
}

/// Client bytes and broker bytes of a session of exchanges.
fn session(exchanges: Vec<(Vec<u8>, Vec<u8>)>) -> (Vec<u8>, Vec<u8>) {
    exchanges
        .into_iter()
        .fold((Vec::new(), Vec::new()), |(mut q, mut r), (a, b)| {
            q.extend(a);
            r.extend(b);
            (q, r)
        })
}

fn produce_session(value_len: usize) -> (Vec<u8>, Vec<u8>) {
    session(frames::produce_exchanges(
        value_len,
        records_per_batch(value_len),
        PARTITIONS,
        EXCHANGES,
    ))
}

fn fetch_session(value_len: usize) -> (Vec<u8>, Vec<u8>) {
    session(frames::fetch_exchanges(
        value_len,
        records_per_batch(value_len),
        PARTITIONS,
        EXCHANGES,
    ))
}

fn new_vm(records_by_schema: bool) -> Vm {
    let config = Config {
        records_by_schema,
        ..Config::default()
    };
    let id = Identity::resolve(
        &config,
        Some("bench".into()),
        Some("bench".into()),
        None,
        None,
    );
    Vm::new(config, id)
}

/// Both directions in 64 KiB callbacks, read as the Envoy glue reads them
/// (`Connection::on_buffer`: record bodies are passed over, not copied).
fn feed(requests: &[u8], responses: &[u8], vm: &mut Vm) {
    let mut conn = vm.open_connection();
    let window = vm.config().read_window_bytes;
    for (direction, bytes, now) in [
        (Direction::Request, requests, 0),
        (Direction::Response, responses, 1),
    ] {
        for chunk in bytes.chunks(64 * 1024) {
            vm.on_buffer(&mut conn, direction, chunk.len(), window, now, |at, len| {
                chunk.get(at..at + len)
            });
        }
    }
    vm.close(&mut conn);
}

/// The figures mean something only if the frames were decoded: check the record count.
fn check(case: &Case) {
    let (name, value_len, schemas, (requests, responses)) = case;
    let mut vm = new_vm(*schemas);
    feed(requests, responses, &mut vm);
    let mut totals = Totalizer::default();
    vm.flush(&mut totals);
    let metric = if name.starts_with("produce") {
        "kafka_produced_records_total"
    } else {
        "kafka_fetched_records_total"
    };
    let counted: u64 = totals
        .counters
        .iter()
        .filter(|(k, _)| k.ends_with(metric))
        .map(|(_, v)| v)
        .sum();
    let expected = (EXCHANGES * PARTITIONS) as u64 * records_per_batch(*value_len) as u64;
    assert_eq!(counted, expected, "{name}: records decoded");
    let by_schema = totals.counter("kafka_produced_records_by_schema_total", &[]);
    assert_eq!(by_schema, if *schemas { expected } else { 0 }, "{name}");
}

/// Name, value size, `records_by_schema`, (client bytes, broker bytes).
type Case = (&'static str, usize, bool, (Vec<u8>, Vec<u8>));

fn cases() -> Vec<Case> {
    vec![
        ("produce_1KiB", 1024, false, produce_session(1024)),
        ("produce_1KiB+schemas", 1024, true, produce_session(1024)),
        (
            "produce_16KiB",
            16 * 1024,
            false,
            produce_session(16 * 1024),
        ),
        (
            "produce_16KiB+schemas",
            16 * 1024,
            true,
            produce_session(16 * 1024),
        ),
        ("fetch_1KiB", 1024, false, fetch_session(1024)),
        ("fetch_16KiB", 16 * 1024, false, fetch_session(16 * 1024)),
    ]
}

/// A fixed amount of work per case, for instruction counts (see the module docs).
fn fixed_iterations(iterations: usize) {
    let only = std::env::var("KIOSK_DECODE_CASE").ok();
    for (name, _, schemas, (requests, responses)) in cases() {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut vm = new_vm(schemas);
        for _ in 0..iterations {
            feed(&requests, &responses, &mut vm);
        }
        println!("{name}: fed {iterations} times");
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.sample_size(20);
    for case in cases() {
        check(&case);
        let (name, _, schemas, (requests, responses)) = case;
        group.throughput(Throughput::Bytes((requests.len() + responses.len()) as u64));
        let mut vm = new_vm(schemas);
        group.bench_function(name, |b| b.iter(|| feed(&requests, &responses, &mut vm)));
    }
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    if let Some(n) = std::env::var("KIOSK_DECODE_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        return fixed_iterations(n);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
