//! The exactly-once mirror (`kiosk mirror`) through a two-worker sidecar against real
//! Apache Kafka 4.3.1, with a fault landing inside an open transaction: the mirror never
//! exits, and `events.mirror` read `read_committed` holds every record exactly once.
//!
//! Each case holds the mirror's transactions open for a while
//! (`KIOSK_FAULT_HOLD_TRANSACTION_MS`) and acts when the mirror says one is open:
//! - membership lost at commit (the failure that made the mirror exit before): the mirror
//!   is frozen (SIGSTOP) until the group has dropped it, then thawed; its open
//!   transaction's offsets are refused, it aborts and resumes from the committed offsets;
//! - the broker restarted during an open transaction: the broker keeps the transaction's
//!   state in its log, so the transaction may well commit once the broker is back, or be
//!   aborted and replayed; either way nothing is lost or doubled.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiosk_harness::components::Component;
use kiosk_harness::paths;
use kiosk_tests::{kafka_behind_sidecar, run_dir};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

const RECORDS: usize = 300;

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn mirror_survives_losing_its_group_membership_inside_a_transaction() {
    drill(
        "mirror-membership-lost",
        true,
        |mirror, _kafka, bootstrap| {
            signal(mirror, "STOP");
            // The group drops a member that stops heartbeating for session.timeout.ms (10 s).
            wait_for("the group to drop the frozen mirror", 60, || {
                group_members(bootstrap, "mirror") == Some(0)
            });
            signal(mirror, "CONT");
        },
    );
}

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn mirror_survives_a_broker_restart_inside_a_transaction() {
    drill(
        "mirror-broker-restart",
        false,
        |_mirror, kafka, _bootstrap| {
            kafka.restart().expect("restart Kafka");
        },
    );
}

/// Produce [`RECORDS`] to `events`, start the mirror, run `fault` while its first
/// transaction is open, then produce as many again: `events.mirror` must end with every
/// record once, the mirror still running (having aborted at least once, if
/// `must_abort`).
fn drill(
    test: &str,
    must_abort: bool,
    fault: impl FnOnce(&Child, &mut kiosk_harness::components::kafka::Kafka, &str),
) {
    let _one = kiosk_tests::one_cluster();
    let dir = run_dir(test).unwrap();
    let config = serde_json::json!({ "kiali": { "topic_namespace": "kafka" } });
    let (mut kafka, sidecar, bootstrap) =
        kafka_behind_sidecar(&dir, "mirror", 1, config).expect("start Kafka and Envoy");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(kiosk_services::kafka::create_topics(
        &bootstrap,
        &["events", "events.mirror", "events.dlq"],
        3,
    ))
    .expect("topics");
    rt.block_on(produce(&bootstrap, 0..RECORDS));

    let log = dir.join("mirror.log");
    let mut mirror = start_mirror(&bootstrap, &log);
    wait_for("the mirror's first open transaction", 60, || {
        read(&log).contains("transaction open")
    });
    fault(&mirror, &mut kafka, &bootstrap);
    rt.block_on(produce(&bootstrap, RECORDS..2 * RECORDS));

    let mut keys = BTreeMap::new();
    wait_for("every record in events.mirror", 180, || {
        keys = mirrored(&bootstrap);
        keys.len() >= 2 * RECORDS
    });
    let text = read(&log);
    let still_running = mirror.try_wait().unwrap().is_none();
    let _ = mirror.kill();
    let _ = mirror.wait();
    assert!(still_running, "the mirror exited:\n{text}");
    assert!(
        !must_abort || text.contains("transaction aborted; resuming from the committed offsets"),
        "the fault never broke a transaction (the drill did not test anything):\n{text}"
    );
    let duplicates: Vec<_> = keys.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "mirrored twice: {duplicates:?}");
    assert_eq!(keys.len(), 2 * RECORDS, "every record mirrored once");
    drop(sidecar);
}

fn start_mirror(bootstrap: &str, log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    Command::new(kiosk_bin())
        .args(["mirror", "--bootstrap", bootstrap, "--batch", "100"])
        .env("KIOSK_FAULT_HOLD_TRANSACTION_MS", "3000")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start kiosk mirror")
}

/// The `kiosk` binary the test command builds before the live tests.
fn kiosk_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| paths::root().join("target"));
    let bin = target.join("debug/kiosk");
    assert!(
        bin.exists(),
        "{} is missing: cargo build -p kiosk-harness --bin kiosk",
        bin.display()
    );
    bin
}

fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal}");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn wait_for(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "waited {seconds} s for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

async fn produce(bootstrap: &str, range: std::ops::Range<usize>) {
    let producer: FutureProducer = kiosk_services::kafka::producer_config(bootstrap, "drill")
        .unwrap()
        .create()
        .unwrap();
    let sends = range.map(|i| {
        let key = format!("order-{i:06}");
        let value = format!(r#"{{"order":{i}}}"#);
        let producer = producer.clone();
        async move {
            let record = FutureRecord::to("events").key(&key).payload(&value);
            producer
                .send(record, Duration::from_secs(60))
                .await
                .map_err(|(e, _)| e)
        }
    });
    for result in in_turn(sends).await {
        result.expect("produced");
    }
}

/// Await every future in turn (the test needs no concurrency library).
async fn in_turn<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let pending: Vec<F> = futures.collect();
    let mut out = Vec::with_capacity(pending.len());
    for f in pending {
        out.push(f.await);
    }
    out
}

/// Members of `group` as the coordinator sees them (None: not known right now).
fn group_members(bootstrap: &str, group: &str) -> Option<usize> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .create()
        .ok()?;
    let list = consumer
        .fetch_group_list(Some(group), Duration::from_secs(5))
        .ok()?;
    list.groups()
        .iter()
        .find(|g| g.name() == group)
        .map(|g| g.members().len())
}

/// `events.mirror` read `read_committed` from the beginning to its end: how many times
/// each key is there.
fn mirrored(bootstrap: &str) -> BTreeMap<String, usize> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("group.id", "drill-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..3 {
        list.add_partition_offset("events.mirror", p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut keys = BTreeMap::new();
    let mut ended = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while ended < 3 && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).to_string();
                *keys.entry(key).or_insert(0) += 1;
            }
            Some(Err(KafkaError::PartitionEOF(_))) => ended += 1,
            _ => {}
        }
    }
    keys
}
