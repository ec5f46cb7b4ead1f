//! Memory per connection, from the core's own accounting (`Connection::memory_bytes`),
//! while 1 MiB produce requests and 50 MiB fetch responses stream through in 64 KiB
//! callbacks, read the way the Envoy glue reads them; and with the correlator full of
//! requests that never get an answer. Prints figures; asserts only that the frames were
//! decoded (a figure over frames the core skipped would mean nothing).

use kiosk_filter::{Config, Connection, Direction, Identity, Totalizer, Vm};

#[path = "../tests/frames/mod.rs"]
mod frames;

/// What Envoy hands a filter per read, at most.
const CALLBACK: usize = 64 * 1024;

fn new_vm() -> Vm {
    let config = Config::default();
    let id = Identity::resolve(&config, Some("bench".into()), None, None, None);
    Vm::new(config, id)
}

/// Streams `bytes` of `direction` in callbacks; returns the peak of the core's accounting.
fn stream(conn: &mut Connection, direction: Direction, bytes: &[u8], vm: &mut Vm) -> usize {
    let window = vm.config().read_window_bytes;
    let mut peak = conn.memory_bytes();
    for chunk in bytes.chunks(CALLBACK) {
        vm.on_buffer(conn, direction, chunk.len(), window, 0, |at, len| {
            chunk.get(at..at + len)
        });
        peak = peak.max(conn.memory_bytes());
    }
    peak
}

fn records(vm: &mut Vm, metric: &str) -> u64 {
    let mut totals = Totalizer::default();
    vm.flush(&mut totals);
    totals
        .counters
        .iter()
        .filter(|(k, _)| k.ends_with(metric))
        .map(|(_, v)| v)
        .sum()
}

/// `exchanges`, requests then responses, each direction streamed as one byte stream.
fn session(
    name: &str,
    exchanges: &[(Vec<u8>, Vec<u8>)],
    metric: &str,
    expected: u64,
) -> (String, usize, usize) {
    let mut vm = new_vm();
    let mut conn = vm.open_connection();
    let requests: Vec<u8> = exchanges.iter().flat_map(|(q, _)| q.clone()).collect();
    let responses: Vec<u8> = exchanges.iter().flat_map(|(_, r)| r.clone()).collect();
    let peak = stream(&mut conn, Direction::Request, &requests, &mut vm).max(stream(
        &mut conn,
        Direction::Response,
        &responses,
        &mut vm,
    ));
    assert_eq!(
        records(&mut vm, metric),
        expected,
        "{name}: records decoded"
    );
    let largest = exchanges
        .iter()
        .map(|(q, r)| q.len().max(r.len()))
        .max()
        .unwrap_or(0);
    (name.to_string(), largest, peak)
}

fn main() {
    let mut rows = Vec::new();
    // 1 MiB produce requests: 4 partitions x 16 records x 16 KiB, 8 of them in flight.
    let produce = frames::produce_exchanges(16 * 1024, 16, 4, 8);
    rows.push(session(
        "produce, 1 MiB requests, 8 in flight",
        &produce,
        "kafka_produced_records_total",
        8 * 4 * 16,
    ));
    // 50 MiB fetch responses: 4 partitions x 200 records x 64 KiB.
    let fetch = frames::fetch_exchanges(64 * 1024, 200, 4, 2);
    rows.push(session(
        "fetch, 50 MiB responses",
        &fetch,
        "kafka_fetched_records_total",
        2 * 4 * 200,
    ));
    // A flood of fetch requests that are never answered: the correlator keeps at most
    // `max_in_flight` of them, each with its partition positions.
    let mut vm = new_vm();
    let requests = frames::fetch_exchanges(16, 1, 64, 4 * vm.config().max_in_flight as i32);
    let largest = requests.iter().map(|(q, _)| q.len()).max().unwrap_or(0);
    let flood: Vec<u8> = requests.into_iter().flat_map(|(q, _)| q).collect();
    let mut conn = vm.open_connection();
    let peak = stream(&mut conn, Direction::Request, &flood, &mut vm);
    let name = format!(
        "{} unanswered fetch requests of 64 partitions",
        4 * vm.config().max_in_flight
    );
    rows.push((name, largest, peak));

    println!("Memory per connection (core accounting, peak while streaming in 64 KiB callbacks)");
    for (name, largest, peak) in &rows {
        println!(
            "  {name:<48} largest message {:>9} bytes  peak {:>6} bytes ({:.1} KiB)",
            largest,
            peak,
            *peak as f64 / 1024.0
        );
    }
    let worst = rows.iter().map(|r| r.2).max().unwrap_or(0);
    println!(
        "  worst case: {:.1} KiB per connection",
        worst as f64 / 1024.0
    );
}
