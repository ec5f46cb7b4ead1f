//! `kiosk producer`: post N records to the REST entry (the Bridge produce API), with
//! progress, checking that every record gets an offset. Records the REST entry could not
//! deliver (a broker restarting, the entry itself unreachable) are posted again until
//! `--retry-for` runs out: at least once, as a Kafka producer with retries would. A
//! refusal (4xx: unknown topic, bad records) is final.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use base64::Engine;
use serde_json::{json, Value};

use crate::record::{self, SEQ_HEADER};
use crate::rest::{BINARY_FORMAT, JSON_FORMAT};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The REST entry's base URL (in the mesh: this workload's sidecar).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    #[arg(long, default_value = "events")]
    pub topic: String,
    /// How many records to send.
    #[arg(long, short = 'n', default_value_t = 1000)]
    pub records: u64,
    /// Records per request.
    #[arg(long, default_value_t = 50)]
    pub batch: u64,
    /// Run id written into every record, so verify can tell runs apart.
    #[arg(long, default_value = "local")]
    pub run: String,
    /// The Bridge embedded format: json, or binary (base64 keys and values).
    #[arg(long, default_value = "json", value_parser = ["json", "binary"])]
    pub format: String,
    /// Records per second (0: as fast as the REST entry answers). A steady rate is what
    /// Kiali expects: a burst shorter than a scrape interval shows no rate at all.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// How long to keep posting records that could not be delivered, in seconds.
    #[arg(long, default_value_t = 120)]
    pub retry_for: u64,
}

/// Why a post did not deliver every record.
enum Undelivered {
    /// Records (indices into the batch) to post again.
    Retry(Vec<usize>, String),
    /// A refusal that posting again cannot change.
    Refused(String),
}

pub async fn run(args: Args) -> Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let url = format!("{}/topics/{}", args.url.trim_end_matches('/'), args.topic);
    let expected = record::expected(&args.run, args.records);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut last_report = Instant::now();
    for chunk in expected.chunks(args.batch as usize) {
        if args.rate > 0 {
            // Pace by schedule, not by sleeping a fixed time per request.
            let due = Duration::from_secs_f64(sent as f64 / args.rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        let mut pending: Vec<usize> = (0..chunk.len()).collect();
        let deadline = Instant::now() + Duration::from_secs(args.retry_for);
        while !pending.is_empty() {
            let batch: Vec<&record::Expected> = pending.iter().map(|&i| &chunk[i]).collect();
            match post(&client, &url, &batch, &args.format).await {
                Ok(()) => pending.clear(),
                Err(Undelivered::Refused(why)) => bail!("{why}"),
                Err(Undelivered::Retry(again, why)) => {
                    if Instant::now() > deadline {
                        bail!("{why} (still failing after {} s)", args.retry_for);
                    }
                    println!(
                        "producer: {} of {} records not delivered ({why}); posting them again",
                        again.len(),
                        batch.len()
                    );
                    pending = again.into_iter().map(|i| pending[i]).collect();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        sent += chunk.len() as u64;
        if last_report.elapsed() > Duration::from_secs(1) || sent == args.records {
            println!(
                "producer: {sent}/{} records acknowledged ({}%)",
                args.records,
                sent * 100 / args.records.max(1)
            );
            last_report = Instant::now();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "producer: sent {sent} records to {} in {secs:.1} s ({:.0} records/s)",
        args.topic,
        sent as f64 / secs.max(0.001)
    );
    Ok(())
}

/// Post `batch` once; says which records to post again, or that the entry refused them.
async fn post(
    client: &reqwest::Client,
    url: &str,
    batch: &[&record::Expected],
    format: &str,
) -> Result<(), Undelivered> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let records: Vec<Value> = batch
        .iter()
        .map(|r| {
            let header = json!([{ "key": SEQ_HEADER, "value": b64.encode(r.seq.to_string()) }]);
            if format == "binary" {
                let value = serde_json::to_vec(&r.value).unwrap_or_default();
                json!({ "key": b64.encode(&r.key), "value": b64.encode(value), "headers": header })
            } else {
                json!({ "key": r.key, "value": r.value, "headers": header })
            }
        })
        .collect();
    let content_type = if format == "binary" {
        BINARY_FORMAT
    } else {
        JSON_FORMAT
    };
    let all: Vec<usize> = (0..batch.len()).collect();
    let response = client
        .post(url)
        .header("content-type", content_type)
        .body(json!({ "records": records }).to_string())
        .send()
        .await
        .map_err(|e| Undelivered::Retry(all.clone(), format!("POST {url}: {e}")))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    // The answer names the error, never the records (they may carry payload).
    let error = |body: &Value| body["message"].as_str().unwrap_or("").to_string();
    if status.is_client_error() {
        return Err(Undelivered::Refused(format!(
            "POST {url}: {status}: {}",
            error(&body)
        )));
    }
    if !status.is_success() {
        return Err(Undelivered::Retry(
            all,
            format!("POST {url}: {status}: {}", error(&body)),
        ));
    }
    let offsets = body["offsets"].as_array().cloned().unwrap_or_default();
    if offsets.len() != batch.len() {
        return Err(Undelivered::Retry(
            all,
            format!(
                "POST {url}: {} offsets for {} records",
                offsets.len(),
                batch.len()
            ),
        ));
    }
    let failed: Vec<usize> = offsets
        .iter()
        .enumerate()
        .filter(|(_, o)| o.get("error_code").is_some())
        .map(|(i, _)| i)
        .collect();
    match failed.first() {
        None => Ok(()),
        Some(&i)
            if offsets[i]["error_code"]
                .as_u64()
                .is_some_and(|c| (400..500).contains(&c)) =>
        {
            Err(Undelivered::Refused(format!("POST {url}: {}", offsets[i])))
        }
        Some(&i) => Err(Undelivered::Retry(
            failed.clone(),
            format!("POST {url}: {}", offsets[i]["message"]),
        )),
    }
}
