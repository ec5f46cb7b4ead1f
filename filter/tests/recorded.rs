//! The recorded Kafka session (`tests/data/kafka-sessions`: librdkafka against tansu, one
//! pair of files per connection) through the core: every session decodes without an
//! error and gives the exact totals the recording produced; and, as a property, any input
//! read through [`Connection::on_buffer`] in any chunks and windows is read only inside
//! each callback, each byte once and in order (read or passed over), with the same
//! metrics as the whole input fed at once, and memory stays bounded.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiosk_filter::observe::Direction;
use kiosk_filter::{Config, Connection, Identity, Recorder, Totalizer};
use proptest::prelude::*;

/// What the recording produced (harness/src/record.rs): records per topic, each codec.
const TOPICS: &[(&str, &str)] = &[
    ("orders", "none"),
    ("payments.v1", "gzip"),
    ("audit-log", "lz4"),
    ("metrics_zstd", "zstd"),
];
const RECORDS_PER_TOPIC: u64 = 24;

/// Per-connection memory bound, from the core's own accounting.
const MEMORY_BOUND: usize = 64 * 1024;

struct Session {
    name: String,
    client: Vec<u8>,
    server: Vec<u8>,
}

fn sessions() -> Vec<Session> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/kafka-sessions");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
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

fn recorder() -> Recorder {
    let config = Config::default();
    let id = Identity::resolve(
        &config,
        Some("shop".into()),
        Some("recorded".into()),
        None,
        None,
    );
    Recorder::new(config, id)
}

fn flush(rec: &mut Recorder) -> Totalizer {
    let mut sink = Totalizer::default();
    rec.flush(&mut sink);
    sink
}

fn counter(t: &Totalizer, metric: &str, labels: &[(&str, &str)]) -> u64 {
    t.counters
        .iter()
        .filter(|(name, _)| {
            name.ends_with(&format!(";.;{metric}"))
                && labels
                    .iter()
                    .all(|(k, v)| name.contains(&format!("{k}=.={v};.;")))
        })
        .map(|(_, v)| *v)
        .sum()
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
fn every_recorded_session_decodes_exactly() {
    let sessions = sessions();
    let mut rec = recorder();
    let mut keys = BTreeMap::new();
    for s in &sessions {
        let mut conn = Connection::new(&mut rec);
        // As on the wire: each request before its response; callbacks of odd sizes.
        conn.on_request_data(&s.client, 1, &mut rec);
        for chunk in s.server.chunks(1000) {
            conn.on_response_data(chunk, 3, &mut rec);
        }
        assert!(!conn.gave_up(), "{} gave up", s.name);
        conn.on_close(&mut rec);
        for (k, n) in request_keys(&s.client) {
            *keys.entry(k).or_insert(0) += n;
        }
    }
    let t = flush(&mut rec);
    let errors: Vec<_> = t
        .counters
        .iter()
        .filter(|(k, _)| k.contains("kafka_decode_errors_total"))
        .collect();
    assert!(errors.is_empty(), "decode errors: {errors:?}");
    assert_eq!(counter(&t, "kafka_requests_unanswered_total", &[]), 0);
    for (topic, codec) in TOPICS {
        let t_ = [("topic", *topic)];
        assert_eq!(
            counter(&t, "kafka_produced_records_total", &t_),
            RECORDS_PER_TOPIC,
            "produced to {topic}"
        );
        assert_eq!(
            counter(&t, "kafka_fetched_records_total", &t_),
            RECORDS_PER_TOPIC,
            "fetched from {topic}"
        );
        let batches = counter(
            &t,
            "kafka_produced_batches_total",
            &[("topic", topic), ("compression", codec)],
        );
        assert!(batches >= 1, "no {codec} batches for {topic}");
    }
    // Every request counted under its API, as the frames say.
    for (key, n) in &keys {
        let api = kiosk_filter::metrics::api_label(*key);
        assert_eq!(
            counter(&t, "kafka_requests_total", &[("api", api)]),
            *n,
            "{api}"
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
    ] {
        assert!(
            counter(&t, "kafka_requests_total", &[("api", api)]) > 0,
            "no {api} in the recording"
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
    rec: &mut Recorder,
    shadow: &mut (Connection, Recorder),
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
        conn.on_buffer(direction, part.len(), window, now_ms, rec, |at, len| {
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
        let (shadow, shadow_rec) = (&mut shadow.0, &mut shadow.1);
        match direction {
            Direction::Request => shadow.on_request_data(part, now_ms, shadow_rec),
            Direction::Response => shadow.on_response_data(part, now_ms, shadow_rec),
        }
        prop_assert_eq!(conn.gave_up(), shadow.gave_up());
        prop_assert_eq!(conn.skippable(direction), shadow.skippable(direction));
    }
    Ok(())
}

/// An input: a recorded session (or random bytes), damaged at a few places.
#[derive(Debug, Clone)]
struct Input {
    client: Vec<u8>,
    server: Vec<u8>,
}

fn inputs() -> impl Strategy<Value = Input> {
    let recorded: Vec<(Vec<u8>, Vec<u8>)> = sessions()
        .into_iter()
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn on_buffer_reads_each_byte_once_in_any_chunks(
        input in inputs(),
        request_cuts in prop::collection::vec(any::<usize>(), 0..12),
        response_cuts in prop::collection::vec(any::<usize>(), 0..12),
        window in prop_oneof![1usize..16, 16usize..512, 512usize..8192],
    ) {
        let mut rec = recorder();
        let mut conn = Connection::new(&mut rec);
        let mut shadow_rec = recorder();
        let mut shadow = (Connection::new(&mut shadow_rec), shadow_rec);
        read_in_callbacks(&mut conn, &mut rec, &mut shadow, Direction::Request, &input.client, &request_cuts, window, 10)?;
        read_in_callbacks(&mut conn, &mut rec, &mut shadow, Direction::Response, &input.server, &response_cuts, window, 17)?;
        conn.on_close(&mut rec);
        let chunked = flush(&mut rec);

        let mut whole_rec = recorder();
        let mut whole = Connection::new(&mut whole_rec);
        whole.on_request_data(&input.client, 10, &mut whole_rec);
        whole.on_response_data(&input.server, 17, &mut whole_rec);
        whole.on_close(&mut whole_rec);
        let at_once = flush(&mut whole_rec);

        prop_assert_eq!(chunked.counters, at_once.counters);
        prop_assert_eq!(chunked.gauges, at_once.gauges);
        prop_assert_eq!(chunked.histograms, at_once.histograms);
    }
}
