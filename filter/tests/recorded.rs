//! The recorded Kafka sessions (`tests/data/kafka-sessions/<dialect>`: librdkafka against
//! Apache Kafka 4.3.1, and against tansu 0.6.0; one pair of files per connection) through
//! the core: in each dialect every session decodes without an error and gives the exact
//! totals the recording produced; and, as a property, any input read through
//! [`Connection::on_buffer`] in any chunks and windows is read only inside each callback,
//! each byte once and in order (read or passed over), with the same metrics as the whole
//! input fed at once, and memory stays bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kiosk_filter::{Config, Connection, Direction, Identity, Totalizer, Vm};
use proptest::prelude::*;

/// The dialects recorded (one directory each), newest first.
const DIALECTS: &[&str] = &["apache-kafka-4.3.1", "tansu-0.6.0"];
/// The codecs the dialects cover between them (tansu's recording has no snappy topic).
const CODECS: &[&str] = &["none", "gzip", "snappy", "lz4", "zstd"];

/// Per-connection memory bound, from the core's own accounting.
const MEMORY_BOUND: usize = 64 * 1024;

struct Session {
    name: String,
    client: Vec<u8>,
    server: Vec<u8>,
}

/// A topic the recording's workload produced to and consumed (from its sessions.txt).
struct Topic {
    name: String,
    codec: String,
    records: u64,
}

/// One dialect's recording: its sessions and what its workload did.
struct Dialect {
    name: &'static str,
    sessions: Vec<Session>,
    topics: Vec<Topic>,
}

fn sessions_dir(dialect: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/kafka-sessions")
        .join(dialect)
}

fn load_sessions(dir: &Path) -> Vec<Session> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".client").map(str::to_string))
        .collect();
    names.sort();
    assert!(
        names.len() >= 5,
        "recorded sessions missing in {}",
        dir.display()
    );
    names
        .into_iter()
        .map(|name| Session {
            client: std::fs::read(dir.join(format!("{name}.client"))).unwrap(),
            server: std::fs::read(dir.join(format!("{name}.server"))).unwrap(),
            name,
        })
        .collect()
}

/// The `topic NAME: CODEC compression, P partitions, N records` lines of sessions.txt.
fn load_topics(dir: &Path) -> Vec<Topic> {
    let path = dir.join("sessions.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let topics: Vec<Topic> = text
        .lines()
        .filter_map(|line| line.strip_prefix("topic "))
        .map(|line| {
            let parsed = line.split_once(": ").and_then(|(name, rest)| {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let [codec, "compression,", _, "partitions,", records, "records"] = words[..]
                else {
                    return None;
                };
                Some(Topic {
                    name: name.to_string(),
                    codec: codec.to_string(),
                    records: records.parse().ok()?,
                })
            });
            parsed.unwrap_or_else(|| panic!("{}: bad topic line {line:?}", path.display()))
        })
        .collect();
    assert!(!topics.is_empty(), "no topic lines in {}", path.display());
    topics
}

fn dialects() -> Vec<Dialect> {
    DIALECTS
        .iter()
        .map(|&name| {
            let dir = sessions_dir(name);
            Dialect {
                name,
                sessions: load_sessions(&dir),
                topics: load_topics(&dir),
            }
        })
        .collect()
}

fn new_vm() -> Vm {
    let config = Config::default();
    let id = Identity::resolve(
        &config,
        Some("shop".into()),
        Some("recorded".into()),
        None,
        None,
    );
    Vm::new(config, id)
}

fn flush(vm: &mut Vm) -> Totalizer {
    let mut sink = Totalizer::default();
    vm.flush(&mut sink);
    sink
}

/// The `topic` label values of the counters named `metric`.
fn topic_labels(t: &Totalizer, metric: &str) -> BTreeSet<String> {
    t.counters
        .keys()
        .filter(|name| name.ends_with(&format!(";.;{metric}")))
        .filter_map(|name| {
            name.split(";.;")
                .find_map(|part| part.strip_prefix("topic=.="))
                .map(str::to_string)
        })
        .collect()
}

/// API keys of the complete request frames of a client stream, counted independently of
/// the core.
fn request_keys(stream: &[u8]) -> BTreeMap<i16, u64> {
    let mut keys = BTreeMap::new();
    let mut at = 0;
    while at + 6 <= stream.len() {
        let size = i32::from_be_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
        *keys
            .entry(i16::from_be_bytes([stream[at + 4], stream[at + 5]]))
            .or_default() += 1;
        at += 4 + size;
    }
    keys
}

#[test]
fn the_dialects_cover_every_codec() {
    let dialects = dialects();
    let codecs: BTreeSet<&str> = dialects
        .iter()
        .flat_map(|d| d.topics.iter().map(|t| t.codec.as_str()))
        .collect();
    assert_eq!(codecs, CODECS.iter().copied().collect());
    // Real Kafka serves every codec; this dialect is the one that must keep them all.
    let kafka: BTreeSet<&str> = dialects[0]
        .topics
        .iter()
        .map(|t| t.codec.as_str())
        .collect();
    assert_eq!(kafka, codecs, "{}", dialects[0].name);
}

#[test]
fn every_recorded_session_decodes_exactly() {
    for dialect in dialects() {
        decodes_exactly(&dialect);
    }
}

fn decodes_exactly(dialect: &Dialect) {
    let d = dialect.name;
    let mut vm = new_vm();
    let mut keys = BTreeMap::new();
    for s in &dialect.sessions {
        let mut conn = vm.open_connection();
        // As on the wire: each request before its response; callbacks of odd sizes.
        vm.on_request_data(&mut conn, &s.client, 1);
        for chunk in s.server.chunks(1000) {
            vm.on_response_data(&mut conn, chunk, 3);
        }
        assert!(!conn.gave_up(), "{d}: {} gave up", s.name);
        vm.close(&mut conn);
        for (k, n) in request_keys(&s.client) {
            *keys.entry(k).or_insert(0) += n;
        }
    }
    let t = flush(&mut vm);
    let errors: Vec<_> = t
        .counters
        .iter()
        .filter(|(k, _)| k.contains("kafka_decode_errors_total"))
        .collect();
    assert!(errors.is_empty(), "{d}: decode errors: {errors:?}");
    assert_eq!(t.counter("kafka_requests_unanswered_total", &[]), 0, "{d}");
    assert_eq!(
        t.counter("kafka_requests_unknown_version_total", &[]),
        0,
        "{d}"
    );
    for topic in &dialect.topics {
        let (name, codec) = (topic.name.as_str(), topic.codec.as_str());
        let t_ = [("topic", name)];
        assert_eq!(
            t.counter("kafka_produced_records_total", &t_),
            topic.records,
            "{d}: produced to {name}"
        );
        assert_eq!(
            t.counter("kafka_fetched_records_total", &t_),
            topic.records,
            "{d}: fetched from {name}"
        );
        let batches = t.counter(
            "kafka_produced_batches_total",
            &[("topic", name), ("compression", codec)],
        );
        assert!(batches >= 1, "{d}: no {codec} batches for {name}");
    }
    // Records under no other topic: every topic id a Fetch names was resolved.
    let recorded: BTreeSet<String> = dialect.topics.iter().map(|t| t.name.clone()).collect();
    for metric in [
        "kafka_produced_records_total",
        "kafka_produced_batches_total",
        "kafka_fetched_records_total",
    ] {
        assert_eq!(topic_labels(&t, metric), recorded, "{d}: {metric}");
    }
    // Every request counted under its API, as the frames say.
    for (key, n) in &keys {
        let api = kiosk_filter::metrics::api_label(*key);
        assert_eq!(
            t.counter("kafka_requests_total", &[("api", api)]),
            *n,
            "{d}: {api}"
        );
    }
    for api in [
        "api_versions",
        "metadata",
        "create_topics",
        "produce",
        "fetch",
        "list_offsets",
        "find_coordinator",
        "join_group",
        "sync_group",
        "heartbeat",
        "offset_commit",
        "offset_fetch",
        "leave_group",
    ] {
        assert!(
            t.counter("kafka_requests_total", &[("api", api)]) > 0,
            "{d}: no {api} in the recording"
        );
    }
}

/// Feed `data` of `direction` as callbacks cut at `cuts`, each read through `on_buffer`
/// `window` bytes at a time; check every read of every callback, and memory after each.
/// `shadow` is given each callback's bytes whole: after each callback both must stand at
/// the same place of the stream (what on_buffer did not read, it passed over).
#[allow(clippy::too_many_arguments)]
fn read_in_callbacks(
    conn: &mut Connection,
    vm: &mut Vm,
    shadow: &mut (Connection, Vm),
    direction: Direction,
    data: &[u8],
    cuts: &[usize],
    window: usize,
    now_ms: u64,
) -> Result<(), TestCaseError> {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    bounds.extend([0, data.len()]);
    bounds.sort_unstable();
    for pair in bounds.windows(2) {
        let part = &data[pair[0]..pair[1]];
        let mut reads: Vec<(usize, usize)> = Vec::new();
        vm.on_buffer(conn, direction, part.len(), window, now_ms, |at, len| {
            reads.push((at, len));
            part.get(at..at + len)
        });
        // Only inside the callback's buffer, never empty, at most a window, in order and
        // never twice: what is not read is passed over, once.
        let mut end = 0;
        for &(at, len) in &reads {
            prop_assert!(len >= 1 && len <= window, "read of {len}, window {window}");
            prop_assert!(at + len <= part.len(), "read {at}+{len} of {}", part.len());
            prop_assert!(
                at >= end,
                "read at {at} before {end}: out of order or twice"
            );
            end = at + len;
        }
        prop_assert!(
            conn.memory_bytes() <= MEMORY_BOUND,
            "{} bytes held",
            conn.memory_bytes()
        );
        let (shadow, shadow_vm) = (&mut shadow.0, &mut shadow.1);
        match direction {
            Direction::Request => shadow_vm.on_request_data(shadow, part, now_ms),
            Direction::Response => shadow_vm.on_response_data(shadow, part, now_ms),
        }
        prop_assert_eq!(conn.gave_up(), shadow.gave_up());
        prop_assert_eq!(conn.skippable(direction), shadow.skippable(direction));
    }
    Ok(())
}

/// An input: a recorded session of either dialect, damaged at a few places (or random
/// bytes).
#[derive(Debug, Clone)]
struct Input {
    client: Vec<u8>,
    server: Vec<u8>,
}

fn inputs() -> impl Strategy<Value = Input> {
    let recorded: Vec<(Vec<u8>, Vec<u8>)> = dialects()
        .into_iter()
        .flat_map(|d| d.sessions)
        .map(|s| (s.client, s.server))
        .collect();
    let n = recorded.len();
    let damaged = (
        0..n,
        prop::collection::vec((any::<bool>(), any::<usize>(), any::<u8>()), 0..4),
    )
        .prop_map(move |(i, flips)| {
            let (mut client, mut server) = recorded[i].clone();
            for (in_client, at, byte) in flips {
                let stream = if in_client { &mut client } else { &mut server };
                if !stream.is_empty() {
                    let at = at % stream.len();
                    stream[at] = byte;
                }
            }
            Input { client, server }
        });
    let random = (
        prop::collection::vec(any::<u8>(), 0..600),
        prop::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(client, server)| Input { client, server });
    prop_oneof![4 => damaged, 1 => random]
}

/// The property: `input` read through `on_buffer` in callbacks cut at the cuts, `window`
/// bytes at a time, gives the same metrics as the whole input fed at once.
fn on_buffer_matches_whole_input(
    input: &Input,
    request_cuts: &[usize],
    response_cuts: &[usize],
    window: usize,
) -> Result<(), TestCaseError> {
    let mut vm = new_vm();
    let mut conn = vm.open_connection();
    let mut shadow_vm = new_vm();
    let mut shadow = (shadow_vm.open_connection(), shadow_vm);
    read_in_callbacks(
        &mut conn,
        &mut vm,
        &mut shadow,
        Direction::Request,
        &input.client,
        request_cuts,
        window,
        10,
    )?;
    read_in_callbacks(
        &mut conn,
        &mut vm,
        &mut shadow,
        Direction::Response,
        &input.server,
        response_cuts,
        window,
        17,
    )?;
    vm.close(&mut conn);
    let chunked = flush(&mut vm);

    let mut whole_vm = new_vm();
    let mut whole = whole_vm.open_connection();
    whole_vm.on_request_data(&mut whole, &input.client, 10);
    whole_vm.on_response_data(&mut whole, &input.server, 17);
    whole_vm.close(&mut whole);
    let at_once = flush(&mut whole_vm);

    prop_assert_eq!(chunked.counters, at_once.counters);
    prop_assert_eq!(chunked.gauges, at_once.gauges);
    prop_assert_eq!(chunked.histograms, at_once.histograms);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn on_buffer_reads_each_byte_once_in_any_chunks(
        input in inputs(),
        request_cuts in prop::collection::vec(any::<usize>(), 0..12),
        response_cuts in prop::collection::vec(any::<usize>(), 0..12),
        window in prop_oneof![1usize..16, 16usize..512, 512usize..8192],
    ) {
        on_buffer_matches_whole_input(&input, &request_cuts, &response_cuts, window)?;
    }
}

/// The shrunk cases of recorded.proptest-regressions, replayed as they are written there.
/// proptest re-runs a saved case from its seed, which regenerates it only while the
/// strategy draws the same way (a random-bytes input does whatever the recorded sessions
/// are); this test does not depend on that.
#[test]
fn the_saved_regressions_still_pass() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/recorded.proptest-regressions");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut replayed = 0;
    for line in text.lines().filter(|l| l.starts_with("cc ")) {
        let (_, case) = line.split_once("# shrinks to ").expect("a shrunk case");
        // input = Input { client: [..], server: [..] }, request_cuts = [..],
        // response_cuts = [..], window = N
        let lists: Vec<Vec<u64>> = case
            .split('[')
            .skip(1)
            .map(|part| {
                let inside = &part[..part.find(']').expect("a closed list")];
                inside
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(|n| n.parse().expect("a number"))
                    .collect()
            })
            .collect();
        let [client, server, request_cuts, response_cuts] = &lists[..] else {
            panic!("unexpected case: {case}");
        };
        let window: usize = case
            .rsplit_once("window = ")
            .and_then(|(_, n)| n.trim().parse().ok())
            .expect("a window");
        let bytes = |v: &[u64]| v.iter().map(|&b| u8::try_from(b).unwrap()).collect();
        let cuts = |v: &[u64]| v.iter().map(|&c| c as usize).collect::<Vec<_>>();
        let input = Input {
            client: bytes(client),
            server: bytes(server),
        };
        on_buffer_matches_whole_input(&input, &cuts(request_cuts), &cuts(response_cuts), window)
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        replayed += 1;
    }
    assert!(replayed >= 1, "no saved case in {}", path.display());
}
