//! `kiosk producer`: post N records to the REST entry (the Bridge produce API), with
//! progress, checking that every record gets an offset.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};

use crate::pipeline::record::{self, SEQ_HEADER};
use crate::pipeline::rest::{BINARY_FORMAT, JSON_FORMAT};

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
}

pub async fn run(args: Args) -> Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let url = format!("{}/topics/{}", args.url.trim_end_matches('/'), args.topic);
    let expected = record::expected(&args.run, args.records);
    let b64 = base64::engine::general_purpose::STANDARD;
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
        let records: Vec<Value> = chunk
            .iter()
            .map(|r| {
                let header = json!([{ "key": SEQ_HEADER, "value": b64.encode(r.seq.to_string()) }]);
                if args.format == "binary" {
                    let value = serde_json::to_vec(&r.value).unwrap_or_default();
                    json!({ "key": b64.encode(&r.key), "value": b64.encode(value), "headers": header })
                } else {
                    json!({ "key": r.key, "value": r.value, "headers": header })
                }
            })
            .collect();
        let content_type = if args.format == "binary" {
            BINARY_FORMAT
        } else {
            JSON_FORMAT
        };
        let response = client
            .post(&url)
            .header("content-type", content_type)
            .body(json!({ "records": records }).to_string())
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {url}: {status}: {body}");
        }
        let offsets = body["offsets"].as_array().cloned().unwrap_or_default();
        let failed: Vec<&Value> = offsets
            .iter()
            .filter(|o| o.get("error_code").is_some())
            .collect();
        if offsets.len() != chunk.len() || !failed.is_empty() {
            bail!("POST {url}: {} records sent, answer: {body}", chunk.len());
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
