//! `kiosk record` still records what the committed session
//! (tests/data/kafka-sessions/apache-kafka-4.3.1) is: librdkafka against a real Apache
//! Kafka 4.3.1 through the recording tee, every connection in its own pair of files, and a
//! summary stating the topics, which the filter core then decodes without an error and
//! with the exact totals the workload produced and consumed, every codec included.

use kiosk_filter::{Config, Identity, Totalizer, Vm};
use kiosk_harness::recording::{self, TOPICS};
use kiosk_tests::run_dir;

const RECORDS: usize = 5;

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn a_fresh_recording_decodes_exactly() {
    let dir = run_dir("record").unwrap();
    let out = dir.join("sessions");
    let start = std::time::Instant::now();
    let manifest = recording::record(&out, &dir.join("kafka"), RECORDS).expect("recording");
    eprintln!(
        "recorded in {:.1} s:\n{manifest}",
        start.elapsed().as_secs_f64()
    );
    // The summary states what the workload did, as the tests of the committed recordings
    // read it.
    let stated: Vec<(String, String, i32, u64)> = recording::recorded_topics(&manifest)
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.codec, t.partitions, t.records))
        .collect();
    let workload: Vec<(String, String, i32, u64)> = TOPICS
        .iter()
        .map(|&(name, codec, partitions)| (name.into(), codec.into(), partitions, RECORDS as u64))
        .collect();
    assert_eq!(stated, workload);
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".client").map(str::to_string))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{} sessions:\n{manifest}", names.len());
    assert_eq!(
        manifest
            .lines()
            .filter(|l| l.starts_with("session-"))
            .count(),
        names.len()
    );

    let config = Config::default();
    let id = Identity::resolve(&config, Some("t".into()), Some("w".into()), None, None);
    let mut rec = Vm::new(config, id);
    for name in &names {
        let client = std::fs::read(out.join(format!("{name}.client"))).unwrap();
        let server = std::fs::read(out.join(format!("{name}.server"))).unwrap();
        assert!(!client.is_empty(), "{name}: nothing from the client");
        let mut conn = rec.open_connection();
        rec.on_request_data(&mut conn, &client, 0);
        rec.on_response_data(&mut conn, &server, 1);
        assert!(!conn.gave_up(), "{name}: not Kafka");
        rec.close(&mut conn);
    }
    let mut t = Totalizer::default();
    rec.flush(&mut t);
    assert_eq!(
        t.counter("kafka_decode_errors_total", &[]),
        0,
        "{:?}",
        t.counters
    );
    for (topic, codec, _) in TOPICS {
        let labels = [("topic", *topic)];
        let records = RECORDS as u64;
        assert_eq!(
            t.counter("kafka_produced_records_total", &labels),
            records,
            "{topic}"
        );
        assert_eq!(
            t.counter("kafka_fetched_records_total", &labels),
            records,
            "{topic}"
        );
        let batches = [("topic", *topic), ("compression", *codec)];
        assert!(
            t.counter("kafka_produced_batches_total", &batches) >= 1,
            "no {codec} batches of {topic}"
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
            "no {api} recorded:\n{manifest}"
        );
        assert!(manifest.contains(api), "{api} missing from the summary");
    }
}
