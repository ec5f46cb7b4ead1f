//! `kiosk record`: a real Kafka session recorded as test data.
//!
//! librdkafka (through `rdkafka`) talks to an Apache Kafka 4.3.1 broker (KRaft, one node)
//! through a recording [`Tee`]; the broker's client listener advertises the tee, so every
//! connection the clients open (bootstrap, broker, group coordinator) passes through it
//! and becomes one pair of files. The session mixes what a Kafka-aware filter must read:
//! ApiVersions, Metadata, CreateTopics, Produce with each codec (none, gzip, snappy, lz4,
//! zstd), Fetch (by topic id), FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//! OffsetCommit, OffsetFetch, ListOffsets and LeaveGroup. Record values are recognisable
//! text, and no credentials are involved. The older recording against tansu 0.6.0
//! (`tests/data/kafka-sessions/tansu-0.6.0`) was made by the same workload without the
//! snappy topic; tansu is no longer installed, so it cannot be re-recorded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::Message;

use crate::components::kafka::{Kafka, KafkaSpec};
use crate::tee::{Recording, Tee};
use crate::{paths, ports};
use kiosk_services::kafka;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to write session-NN.client, session-NN.server and sessions.txt (previous
    /// session files there are removed first).
    #[arg(long, default_value = "tests/data/kafka-sessions/apache-kafka-4.3.1")]
    pub out: PathBuf,
    /// Records produced per topic (one topic per codec).
    #[arg(long, default_value_t = 24)]
    pub records: usize,
}

/// The client id every recorded client sends (it appears in each request header).
pub const CLIENT_ID: &str = "kiosk-recorder";

/// One topic per codec: name, codec, partitions.
pub const TOPICS: &[(&str, &str, i32)] = &[
    ("orders", "none", 2),
    ("payments.v1", "gzip", 1),
    ("clicks.snappy", "snappy", 1),
    ("audit-log", "lz4", 1),
    ("metrics_zstd", "zstd", 1),
];

/// The recorded dialects under `tests/data/kafka-sessions`, one directory each: the
/// recording this module makes, and the frozen one made against tansu 0.6.0.
pub const DIALECTS: &[&str] = &["apache-kafka-4.3.1", "tansu-0.6.0"];

/// A topic of a recording, as its sessions.txt states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedTopic {
    pub name: String,
    pub codec: String,
    pub partitions: i32,
    /// Records produced to it, and consumed from it.
    pub records: u64,
}

/// The topics a summary (sessions.txt) states, from its
/// `topic NAME: CODEC compression, P partitions, N records` lines.
pub fn recorded_topics(summary: &str) -> Result<Vec<RecordedTopic>> {
    let mut topics = Vec::new();
    for line in summary.lines() {
        let Some(line) = line.strip_prefix("topic ") else {
            continue;
        };
        let parsed = line.split_once(": ").and_then(|(name, rest)| {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let [codec, "compression,", partitions, "partitions,", records, "records"] = words[..]
            else {
                return None;
            };
            Some(RecordedTopic {
                name: name.to_string(),
                codec: codec.to_string(),
                partitions: partitions.parse().ok()?,
                records: records.parse().ok()?,
            })
        });
        topics.push(parsed.with_context(|| format!("bad topic line {line:?}"))?);
    }
    if topics.is_empty() {
        bail!("no topic lines in the summary");
    }
    Ok(topics)
}

/// The value of record `i` of `topic`: readable in a hex dump, compressible.
pub fn value(topic: &str, codec: &str, i: usize) -> String {
    format!(
        "kiosk recorded session: record {i} of topic {topic}, {codec} compression, test payload"
    )
}

pub async fn run(args: Args) -> Result<()> {
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        std::env::current_dir()?.join(&args.out)
    };
    let work = paths::root().join("target/record");
    let records = args.records;
    let manifest = tokio::task::spawn_blocking(move || record(&out, &work, records))
        .await
        .context("the recording panicked")??;
    print!("{manifest}");
    Ok(())
}

/// Record the session into `out` (replacing the session files there), Kafka keeping its
/// configuration, data and log in `work` (emptied first); returns the summary written to
/// sessions.txt.
pub fn record(out: &Path, work: &Path, records: usize) -> Result<String> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work)?;
    clear_sessions(out)?;
    let mut ports = ports::Allocator::default();
    // One client listener, advertising the tee: every connection the clients open passes
    // through it.
    let spec = KafkaSpec::new(work, 1, &["recorder"], &mut ports)?;
    let (broker_port, tee_port) = spec.client_ports("recorder")[0];
    eprintln!(
        "record: Apache Kafka on 127.0.0.1:{broker_port} (data and log in {})",
        work.display()
    );
    let broker = Kafka::start(spec).context("starting Kafka")?;
    let tee = Tee::start(tee_port, broker_port, out)?;
    let bootstrap = format!("127.0.0.1:{tee_port}");
    eprintln!(
        "record: tee on {bootstrap}, recording into {}",
        out.display()
    );
    let session = workload(&bootstrap, records);
    // Every client is dropped by now: its connections close, and the tee's with them.
    let recordings = tee.stop();
    drop(broker);
    session?;
    let recordings = drop_empty(recordings)?;
    let manifest = summarize(&recordings, records)?;
    std::fs::write(out.join("sessions.txt"), &manifest)?;
    Ok(manifest)
}

fn clear_sessions(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)?;
    for entry in std::fs::read_dir(out)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("session-") || name == "sessions.txt" {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Remove the files of connections that carried nothing and number the others 1, 2, ...
fn drop_empty(recordings: Vec<Recording>) -> Result<Vec<Recording>> {
    let mut kept = Vec::new();
    for r in recordings {
        let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        if len(&r.client) == 0 && len(&r.server) == 0 {
            std::fs::remove_file(&r.client)?;
            std::fs::remove_file(&r.server)?;
            continue;
        }
        let session = kept.len() + 1;
        let dir = r.client.parent().map(Path::to_path_buf).unwrap_or_default();
        let renamed = Recording {
            session,
            client: dir.join(format!("session-{session:02}.client")),
            server: dir.join(format!("session-{session:02}.server")),
        };
        std::fs::rename(&r.client, &renamed.client)?;
        std::fs::rename(&r.server, &renamed.server)?;
        kept.push(renamed);
    }
    Ok(kept)
}

/// The clients' part, blocking: create the topics, produce with each codec, consume them
/// all in a group, commit, ask for the watermarks, heartbeat a while, leave.
fn workload(bootstrap: &str, records: usize) -> Result<()> {
    create_topics(bootstrap)?;
    for (topic, codec, partitions) in TOPICS {
        produce(bootstrap, topic, codec, *partitions, records)?;
        eprintln!("record: produced {records} records to {topic} ({codec})");
    }
    consume(bootstrap, records * TOPICS.len())
}

fn create_topics(bootstrap: &str) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        kafka::client_config(bootstrap, CLIENT_ID)?.create()?;
    let topics: Vec<NewTopic> = TOPICS
        .iter()
        .map(|(name, _, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for result in runtime.block_on(admin.create_topics(&topics, &options))? {
        if let Err((topic, code)) = result {
            bail!("creating topic {topic}: {code}");
        }
    }
    Ok(())
}

fn produce(
    bootstrap: &str,
    topic: &str,
    codec: &str,
    partitions: i32,
    records: usize,
) -> Result<()> {
    let producer: BaseProducer = kafka::producer_config(bootstrap, CLIENT_ID)?
        .set("compression.codec", codec)
        .set("batch.num.messages", "8")
        .set("linger.ms", "20")
        .create()?;
    for i in 0..records {
        let key = format!("key-{i}");
        let value = value(topic, codec, i);
        let record = BaseRecord::to(topic)
            .key(&key)
            .payload(&value)
            .partition(i as i32 % partitions);
        kafka::send_waiting(&producer, record).with_context(|| format!("producing to {topic}"))?;
    }
    producer
        .flush(Duration::from_secs(30))
        .with_context(|| format!("producing to {topic}"))?;
    Ok(())
}

fn consume(bootstrap: &str, want: usize) -> Result<()> {
    let consumer: BaseConsumer =
        kafka::consumer_config(bootstrap, CLIENT_ID, "kiosk-recorder-group")?
            .set("heartbeat.interval.ms", "500")
            .set("fetch.wait.max.ms", "200")
            .create()?;
    let topics: Vec<&str> = TOPICS.iter().map(|t| t.0).collect();
    consumer.subscribe(&topics)?;
    let (mut got, start) = (0, Instant::now());
    while got < want {
        if start.elapsed() > Duration::from_secs(90) {
            bail!("consumed {got} of {want} records in 90 s");
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            let (topic, payload) = (message.topic(), message.payload().unwrap_or_default());
            if !String::from_utf8_lossy(payload).starts_with("kiosk recorded session: ") {
                bail!("unexpected record in {topic}: {payload:?}");
            }
            consumer.store_offset_from_message(&message)?;
            got += 1;
        }
    }
    eprintln!("record: consumed {got} records");
    consumer.commit_consumer_state(CommitMode::Sync)?;
    for (topic, _, partitions) in TOPICS {
        for partition in 0..*partitions {
            let (low, high) =
                consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
            eprintln!("record: {topic}/{partition} watermarks {low}..{high}");
        }
    }
    // Stay in the group a little: heartbeats, and fetches that find nothing new.
    let idle = Instant::now();
    while idle.elapsed() < Duration::from_secs(2) {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message?;
        }
    }
    consumer.unsubscribe();
    Ok(())
}

/// The complete Kafka frames of a byte stream, size prefixes stripped.
pub fn frames(stream: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(prefix) = stream.get(at..at + 4) {
        let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let Some(frame) = usize::try_from(size)
            .ok()
            .and_then(|s| stream.get(at + 4..at + 4 + s))
        else {
            break;
        };
        out.push(frame);
        at += 4 + frame.len();
    }
    out
}

/// One line per topic (what the workload produced and consumed, which the tests read as
/// the expected totals), one per session (bytes each way and requests per API), a total.
fn summarize(recordings: &[Recording], records: usize) -> Result<String> {
    let mut text = String::new();
    for (topic, codec, partitions) in TOPICS {
        writeln!(
            text,
            "topic {topic}: {codec} compression, {partitions} partitions, {records} records"
        )?;
    }
    let mut total = 0;
    for r in recordings {
        let client = std::fs::read(&r.client).with_context(|| r.client.display().to_string())?;
        let server = std::fs::read(&r.server)?;
        total += client.len() + server.len();
        let mut apis: BTreeMap<&str, usize> = BTreeMap::new();
        for frame in frames(&client) {
            let key = i16::from_be_bytes([frame[0], frame[1]]);
            let name = kiosk_filter::decode::kafka::tables::api_name(key).unwrap_or("unknown");
            *apis.entry(name).or_default() += 1;
        }
        let apis: Vec<String> = apis.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(
            text,
            "session-{:02}: {} bytes from the client, {} from the server; requests: {}",
            r.session,
            client.len(),
            server.len(),
            apis.join(", ")
        )?;
    }
    writeln!(
        text,
        "total: {total} bytes in {} sessions",
        recordings.len()
    )?;
    Ok(text)
}
