//! `kiosk verify`: every topic holds the N records sent, and the collection holds exactly
//! N documents equal to them. On a mismatch it prints what differs and fails.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::Value;

use crate::kafka;
use crate::record::{self, Expected, SEQ_HEADER};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Topics that must each hold the records, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "events,events.mirror")]
    pub topics: Vec<String>,
    /// Kafka bootstrap servers (in the mesh: this workload's sidecar).
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap: String,
    #[command(flatten)]
    pub mongo: crate::mongo::CollectionArgs,
    /// How many records were sent.
    #[arg(long, short = 'n', default_value_t = 1000)]
    pub records: u64,
    /// The producer's run id.
    #[arg(long, default_value = "local")]
    pub run: String,
    /// How long to wait for the pipeline to deliver everything before comparing.
    #[arg(long, default_value_t = 180)]
    pub wait_secs: u64,
    /// Whether the collection's documents carry the record headers (`headers.kiosk-seq`):
    /// `kiosk mongo-sink` writes them; the MongoDB Kafka connector writes key and value
    /// only, so with `false` documents are compared by `_id` and `value` alone.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub collection_headers: bool,
    /// Records sent to be refused by the mirror (`producer --dead-letters`): the first
    /// topic must hold them, the dead-letter topic exactly them with their reasons, no
    /// other topic and not the collection.
    #[arg(long, default_value_t = 0)]
    pub dead_letters: usize,
    #[arg(long, default_value = "events.dlq")]
    pub dead_letter_topic: String,
    /// Print the trace of the record with this key in the last topic (its `traceparent`
    /// header), as Jaeger's query API at `--jaeger` holds it; fail if it has none.
    #[arg(long, requires = "jaeger")]
    pub trace_of: Option<String>,
    /// Jaeger's query API, e.g. `http://tracing.istio-system:16686`.
    #[arg(long)]
    pub jaeger: Option<String>,
}

/// What one place (a topic or the collection) holds, by key.
#[derive(Default)]
struct Seen {
    /// key -> (value, seq header), the last copy read.
    records: BTreeMap<String, (Option<Value>, Option<String>)>,
    total: u64,
    /// key -> the mirror's dead-letter reason header, where there is one.
    reasons: BTreeMap<String, String>,
    /// key -> the record's `traceparent` header, where there is one.
    traces: BTreeMap<String, String>,
}

impl Seen {
    /// Take this run's dead-letter records out (they are checked apart): their keys.
    fn take_dead_letters(&mut self, run: &str) -> BTreeSet<String> {
        let prefix = format!("bad-{run}-");
        let keys: BTreeSet<String> = self
            .records
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        for key in &keys {
            self.records.remove(key);
            self.total -= 1;
        }
        keys
    }
}

/// Differences between what was sent and what one place holds.
#[derive(Default)]
pub struct Diff {
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
    pub different: Vec<String>,
    pub duplicates: u64,
}

impl Diff {
    fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.different.is_empty()
    }
}

pub async fn run(args: Args) -> Result<bool> {
    let expected = record::expected(&args.run, args.records);
    let collection = args.mongo.open().await?;

    // Wait for delivery: the sink is the last stage.
    let start = Instant::now();
    let mut last = u64::MAX;
    loop {
        let count = collection.count_documents(doc! {}).await.unwrap_or(0);
        if count != last {
            println!(
                "verify: {count}/{} documents in {}.{}",
                args.records, args.mongo.database, args.mongo.collection
            );
            last = count;
        }
        if count >= args.records || start.elapsed() > Duration::from_secs(args.wait_secs) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A last moment for a duplicate write in flight to land (it would replace, not add).
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut ok = true;
    let bad: BTreeMap<String, &str> = match args.dead_letters {
        0 => BTreeMap::new(),
        _ => record::dead_letters(&args.run, 0)
            .into_iter()
            .map(|(key, _, reason)| (key, reason))
            .collect(),
    };
    let mut last_topic = Seen::default();
    for (i, topic) in args.topics.iter().enumerate() {
        let mut seen = read_topic(&args, topic).await?;
        let dead = seen.take_dead_letters(&args.run);
        // A topic after the first is the previous one copied once (the mirror's
        // transactions): as many records as it read, redelivered copies included.
        if i > 0 && seen.total != last_topic.total {
            println!(
                "verify: FAIL topic {topic}: {} records for {} in {}: copied other than once",
                seen.total,
                last_topic.total,
                args.topics[i - 1]
            );
            ok = false;
        }
        let diff = compare(&expected, &seen, true);
        ok &= report(&format!("topic {topic}"), &expected, &seen, &diff);
        // The input topic carries the records sent to be refused; nothing after it does.
        let want: BTreeSet<String> = match i {
            0 => bad.keys().cloned().collect(),
            _ => BTreeSet::new(),
        };
        if dead != want {
            println!("verify: FAIL topic {topic}: dead-letter records {dead:?}, expected {want:?}");
            ok = false;
        }
        last_topic = seen;
    }
    if !bad.is_empty() {
        let mut seen = read_topic(&args, &args.dead_letter_topic).await?;
        let dead = seen.take_dead_letters(&args.run);
        let reasons: BTreeMap<String, &str> = dead
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    seen.reasons.get(k).map_or("none", String::as_str),
                )
            })
            .collect();
        let exact = reasons == bad && seen.records.is_empty();
        println!(
            "verify: {} dead-letter topic {}: {} of {} refused records, reasons {}",
            if exact { "ok  " } else { "FAIL" },
            args.dead_letter_topic,
            dead.len(),
            bad.len(),
            reasons.values().copied().collect::<Vec<_>>().join(", ")
        );
        if !exact {
            println!(
                "verify:   expected {bad:?}; other records: {}",
                seen.records.len()
            );
        }
        ok &= exact;
    }
    let seen = read_collection(&collection).await?;
    let diff = compare(&expected, &seen, args.collection_headers);
    let exact = seen.total == args.records;
    ok &= report(
        &format!(
            "collection {}.{}",
            args.mongo.database, args.mongo.collection
        ),
        &expected,
        &seen,
        &diff,
    ) && exact;
    if !exact {
        println!(
            "verify: FAIL collection holds {} documents, expected exactly {}",
            seen.total, args.records
        );
    }
    if let (Some(key), Some(jaeger)) = (&args.trace_of, &args.jaeger) {
        ok &= print_trace(key, &last_topic, jaeger).await;
    }
    println!(
        "verify: {} ({} records, run {})",
        if ok { "PASS" } else { "FAIL" },
        args.records,
        args.run
    );
    Ok(ok)
}

/// Print the trace of record `key` (its `traceparent` header in `seen`) from Jaeger's
/// query API at `jaeger`: each span's service, operation and start relative to the first.
/// Spans arrive in batches (every few seconds, from each hop): the trace is asked for
/// again until it holds the hop that wrote the header and every span's parent, for at most
/// 30 s; an incomplete trace is printed as it is and fails.
async fn print_trace(key: &str, seen: &Seen, jaeger: &str) -> bool {
    let Some(traceparent) = seen.traces.get(key) else {
        println!("verify: FAIL record {key} carries no traceparent header");
        return false;
    };
    let tracing = crate::otel::Tracing::disabled();
    let cx = tracing.extract([("traceparent", traceparent.as_bytes())]);
    let Some(trace_id) = crate::otel::trace_id(&cx) else {
        println!("verify: FAIL record {key}: malformed traceparent {traceparent:?}");
        return false;
    };
    let url = format!("{}/api/traces/{trace_id}", jaeger.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let mut spans = Vec::new();
    // The header names the span of the hop that wrote the record.
    let wrote = traceparent.split('-').nth(2).unwrap_or_default();
    let mut complete = false;
    for _ in 0..30 {
        let answer = match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
            _ => None,
        };
        spans = answer
            .map(|a| crate::otel::jaeger_trace_spans(&a))
            .unwrap_or_default();
        let has = |id: &str| spans.iter().any(|s| s.span_id == id);
        complete = has(wrote) && spans.iter().all(|s| s.parent.as_deref().is_none_or(has));
        if complete {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if spans.is_empty() {
        println!("verify: FAIL trace {trace_id} of record {key}: not in Jaeger ({url})");
        return false;
    }
    let t0 = spans[0].start_us;
    println!(
        "verify: trace {trace_id} of record {key}: {} spans",
        spans.len()
    );
    for s in &spans {
        println!(
            "verify:   +{:>8.3} ms  {:<40} {}",
            s.start_us.saturating_sub(t0) as f64 / 1000.0,
            s.service,
            s.operation
        );
    }
    if !complete {
        println!(
            "verify: FAIL trace {trace_id}: spans of some hops never arrived (parents missing)"
        );
    }
    complete
}

fn report(place: &str, expected: &[Expected], seen: &Seen, diff: &Diff) -> bool {
    let clean = diff.is_clean();
    println!(
        "verify: {} {place}: {} of {} records present, {} read{}",
        if clean { "ok  " } else { "FAIL" },
        expected.len() - diff.missing.len(),
        expected.len(),
        seen.total,
        if diff.duplicates > 0 {
            format!(", {} redelivered copies (at least once)", diff.duplicates)
        } else {
            String::new()
        }
    );
    let show = |what: &str, list: &[String]| {
        for line in list.iter().take(20) {
            println!("verify:   {what} {line}");
        }
        if list.len() > 20 {
            println!("verify:   ... and {} more {what}", list.len() - 20);
        }
    };
    show("- missing", &diff.missing);
    show("+ unexpected", &diff.unexpected);
    show("~ different", &diff.different);
    clean
}

/// Compare what was sent with what a place holds, by key.
fn compare(expected: &[Expected], seen: &Seen, check_seq: bool) -> Diff {
    let mut diff = Diff {
        duplicates: seen.total.saturating_sub(seen.records.len() as u64),
        ..Diff::default()
    };
    let keys: BTreeSet<&str> = expected.iter().map(|e| e.key.as_str()).collect();
    for e in expected {
        match seen.records.get(&e.key) {
            None => diff.missing.push(e.key.clone()),
            Some((value, seq)) => {
                let seq_ok = !check_seq || seq.as_deref() == Some(e.seq.to_string().as_str());
                if value.as_ref() != Some(&e.value) || !seq_ok {
                    diff.different.push(format!(
                        "{}: expected {} ({SEQ_HEADER}={}), found {} ({SEQ_HEADER}={})",
                        e.key,
                        e.value,
                        e.seq,
                        value
                            .as_ref()
                            .map_or("(not JSON)".into(), |v| v.to_string()),
                        seq.as_deref().unwrap_or("none")
                    ));
                }
            }
        }
    }
    for key in seen.records.keys() {
        if !keys.contains(key.as_str()) {
            diff.unexpected.push(key.clone());
        }
    }
    diff
}

/// The reader's client context: end-of-partition events are how it knows a partition is
/// read (librdkafka also reports each as a global error, which the default context logs at
/// ERROR); every other error is logged as the default context logs it.
struct EndOfPartitionExpected;

impl ClientContext for EndOfPartitionExpected {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::debug!("librdkafka: {reason}");
        } else {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for EndOfPartitionExpected {}

/// Read every partition of `topic` from the beginning to its high watermark.
async fn read_topic(args: &Args, topic: &str) -> Result<Seen> {
    let mut config = kafka::consumer_config(&args.bootstrap, "verify", "verify")?;
    // read_committed: a partition's end is its last stable offset, and its last entries
    // may be transaction markers that are never delivered: the end is known from the
    // end-of-partition event, not from the last record's offset.
    config.set("enable.partition.eof", "true");
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || -> Result<Seen> {
        let consumer: BaseConsumer<EndOfPartitionExpected> = config
            .create_with_context(EndOfPartitionExpected)
            .context("creating the Kafka consumer")?;
        let timeout = Duration::from_secs(15);
        let metadata = consumer
            .fetch_metadata(Some(&topic), timeout)
            .with_context(|| format!("metadata for {topic}"))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        anyhow::ensure!(
            !partitions.is_empty(),
            "topic {topic} has no partitions (does it exist?)"
        );
        let mut remaining = BTreeMap::new();
        let mut list = TopicPartitionList::new();
        for p in &partitions {
            let (low, high) = consumer.fetch_watermarks(&topic, *p, timeout)?;
            if high > low {
                remaining.insert(*p, high);
                list.add_partition_offset(&topic, *p, Offset::Beginning)?;
            }
        }
        consumer.assign(&list)?;
        let mut seen = Seen::default();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !remaining.is_empty() && Instant::now() < deadline {
            let Some(message) = consumer.poll(Duration::from_millis(500)) else {
                continue;
            };
            let m = match message {
                Err(KafkaError::PartitionEOF(partition)) => {
                    remaining.remove(&partition);
                    continue;
                }
                other => other.with_context(|| format!("reading {topic}"))?,
            };
            if let Some(high) = remaining.get(&m.partition()) {
                if m.offset() + 1 >= *high {
                    remaining.remove(&m.partition());
                }
            }
            let key = m.key().map(record::key_text).unwrap_or_default();
            let value = m.payload().and_then(record::value_json);
            let seq = header_text(&m, SEQ_HEADER);
            let reason = header_text(&m, crate::mirror::DEAD_LETTER_HEADER);
            if let Some(reason) = reason {
                seen.reasons.insert(key.clone(), reason);
            }
            if let Some(traceparent) = header_text(&m, "traceparent") {
                seen.traces.insert(key.clone(), traceparent);
            }
            seen.records.insert(key, (value, seq));
            seen.total += 1;
        }
        anyhow::ensure!(
            remaining.is_empty(),
            "reading {topic}: partitions {remaining:?} not read to their end in 120 s"
        );
        Ok(seen)
    })
    .await?
}

/// A record header's value as text, if the record has that header.
fn header_text(m: &impl Message, name: &str) -> Option<String> {
    let header = m.headers()?.iter().find(|h| h.key == name)?;
    header
        .value
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

async fn read_collection(collection: &mongodb::Collection<Document>) -> Result<Seen> {
    let mut cursor = collection
        .find(doc! {})
        .await
        .context("reading the collection")?;
    let mut seen = Seen::default();
    while let Some(document) = cursor.try_next().await.context("reading the collection")? {
        let key = match document.get("_id") {
            Some(Bson::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let value = document
            .get("value")
            .and_then(|v| serde_json::to_value(v.clone().into_relaxed_extjson()).ok());
        let seq = document
            .get_document("headers")
            .ok()
            .and_then(|h| h.get_str(SEQ_HEADER).ok().map(str::to_string));
        seen.records.insert(key, (value, seq));
        seen.total += 1;
    }
    Ok(seen)
}
