//! `kiosk producer`: post N records to the REST entry (the Bridge produce API), with
//! progress, checking that every record gets an offset. Records the REST entry could not
//! deliver (a broker restarting, the entry itself unreachable) are posted again until
//! `--retry-for` runs out: at least once, as a Kafka producer with retries would. A
//! refusal (4xx: unknown topic, bad records) is final.
//!
//! Behind an ingress gateway that requires a JWT, `--token-url` makes it obtain an access
//! token as an OAuth 2.0 client (the client credentials grant, its secret read from a file,
//! as a mounted Secret) and send it as `Authorization: Bearer` on every request, renewed
//! before it expires and once after a 401. The token is never printed.
//!
//! Each request starts a trace (W3C `traceparent`), its span sent to
//! `OTEL_EXPORTER_OTLP_ENDPOINT` when set (see [`crate::otel`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use base64::Engine;
use serde_json::{json, Value};

use crate::otel::{self, Tracing};
use crate::record::{self, SEQ_HEADER};
use crate::rest::{BINARY_FORMAT, JSON_FORMAT};
use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue};

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
    /// An OAuth 2.0 token endpoint: get an access token there (client credentials grant)
    /// and send it with every request.
    #[arg(long, value_name = "URL", requires = "client_secret_file")]
    pub token_url: Option<String>,
    /// The OAuth 2.0 client id.
    #[arg(long, default_value = "producer")]
    pub client_id: String,
    /// A file holding the client's secret (a mounted Secret).
    #[arg(long, value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// The schema registry's Confluent-compatible API: every value is sent in its wire
    /// format (magic byte 0, the 4-byte id of `--subject`'s latest version, the JSON), in
    /// the Bridge's binary format.
    #[arg(long, env = "SCHEMA_REGISTRY_URL")]
    pub schema_registry: Option<String>,
    #[arg(long, default_value = "events-value")]
    pub subject: String,
    /// After the records, send the two the mirror must dead-letter (an unknown schema id,
    /// a value its schema refuses; `record::dead_letters`). Needs `--schema-registry`.
    #[arg(long, requires = "schema_registry")]
    pub dead_letters: bool,
}

/// Access tokens from an OAuth 2.0 token endpoint, kept until shortly before they expire.
struct Tokens {
    url: String,
    client_id: String,
    secret_file: PathBuf,
    current: Option<(String, Instant)>,
}

impl Tokens {
    /// A valid token: the one held, or a new one when it expires within 30 s.
    async fn bearer(&mut self, client: &reqwest::Client) -> Result<String> {
        if let Some((token, until)) = &self.current {
            if Instant::now() + Duration::from_secs(30) < *until {
                return Ok(token.clone());
            }
        }
        // Read at each renewal: a mounted Secret may have been rotated.
        let secret = std::fs::read_to_string(&self.secret_file).map_err(|e| {
            anyhow::anyhow!(
                "reading the client secret {}: {e}",
                self.secret_file.display()
            )
        })?;
        let response = client
            .post(&self.url)
            .basic_auth(&self.client_id, Some(secret.trim()))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("token endpoint {}: {e}", self.url))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            // RFC 6749 §5.2: an error code and description, never a token.
            bail!(
                "token endpoint {}: {status}: {} {}",
                self.url,
                body["error"].as_str().unwrap_or(""),
                body["error_description"].as_str().unwrap_or("")
            );
        }
        let (Some(token), Some("Bearer" | "bearer")) =
            (body["access_token"].as_str(), body["token_type"].as_str())
        else {
            bail!(
                "token endpoint {}: no Bearer access_token in the answer",
                self.url
            );
        };
        let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(60));
        println!(
            "producer: access token for client {} from {} (expires in {} s)",
            self.client_id,
            self.url,
            lifetime.as_secs()
        );
        self.current = Some((token.to_string(), Instant::now() + lifetime));
        Ok(token.to_string())
    }

    fn forget(&mut self) {
        self.current = None;
    }
}

/// Why a post did not deliver every record.
enum Undelivered {
    /// Records (indices into the batch) to post again.
    Retry(Vec<usize>, String),
    /// A refusal that posting again cannot change.
    Refused(String),
    /// 401: the credentials were refused (a token that expired on the way: renew it once).
    Unauthorized(String),
}

pub async fn run(args: Args) -> Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let url = format!("{}/topics/{}", args.url.trim_end_matches('/'), args.topic);
    let mut tokens = match (&args.token_url, &args.client_secret_file) {
        (Some(url), Some(file)) => Some(Tokens {
            url: url.clone(),
            client_id: args.client_id.clone(),
            secret_file: file.clone(),
            current: None,
        }),
        _ => None,
    };
    let expected = record::expected(&args.run, args.records);
    let schema_id = match &args.schema_registry {
        Some(url) => {
            let id = crate::registry::Registry::new(url)?
                .latest_id(&args.subject)
                .await?;
            println!(
                "producer: values framed with schema {id} ({} latest)",
                args.subject
            );
            Some(id)
        }
        None => None,
    };
    // A framed value is not JSON: it travels in the Bridge's binary format.
    let format = match schema_id {
        Some(_) => "binary",
        None => args.format.as_str(),
    };
    // Each request starts a trace (W3C `traceparent`), which the gateway, the sidecars,
    // the REST entry and the mirror continue.
    let tracing = Tracing::start_for("producer").await?;
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
        let attributes = vec![
            KeyValue::new("messaging.destination.name", args.topic.clone()),
            KeyValue::new("messaging.batch.message_count", chunk.len() as i64),
        ];
        let span_name = format!("POST /topics/{}", args.topic);
        let cx = tracing.start(&span_name, SpanKind::Client, &Context::new(), attributes);
        let trace = tracing.inject(&cx);
        let mut pending: Vec<usize> = (0..chunk.len()).collect();
        let deadline = Instant::now() + Duration::from_secs(args.retry_for);
        let mut renewed = false;
        while !pending.is_empty() {
            let batch: Vec<Value> = pending
                .iter()
                .map(|&i| bridge_record(&chunk[i], format, schema_id))
                .collect();
            let bearer = match tokens.as_mut() {
                Some(t) => Some(t.bearer(&client).await?),
                None => None,
            };
            match post(&client, &url, &batch, format, bearer.as_deref(), &trace).await {
                Ok(()) => pending.clear(),
                Err(Undelivered::Refused(why)) => bail!("{why}"),
                Err(Undelivered::Unauthorized(why)) => match tokens.as_mut() {
                    Some(t) if !renewed => {
                        println!("producer: {why}; renewing the access token");
                        t.forget();
                        renewed = true;
                    }
                    _ => bail!("{why}"),
                },
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
        tracing.end(&cx);
        if let (0, Some(id)) = (sent, otel::trace_id(&cx)) {
            println!("producer: the first request's trace is {id}");
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
    if let (true, Some(id)) = (args.dead_letters, schema_id) {
        let b64 = base64::engine::general_purpose::STANDARD;
        let bad: Vec<Value> = record::dead_letters(&args.run, id)
            .into_iter()
            .map(|(key, value, _)| json!({ "key": b64.encode(key), "value": b64.encode(value) }))
            .collect();
        let bearer = match tokens.as_mut() {
            Some(t) => Some(t.bearer(&client).await?),
            None => None,
        };
        match post(&client, &url, &bad, "binary", bearer.as_deref(), &[]).await {
            Ok(()) => println!(
                "producer: sent {} records the mirror must dead-letter (unknown schema id, invalid value)",
                bad.len()
            ),
            Err(Undelivered::Refused(why) | Undelivered::Unauthorized(why))
            | Err(Undelivered::Retry(_, why)) => bail!("{why}"),
        }
    }
    tracing.close().await;
    Ok(())
}

/// One record as the Bridge takes it in `format`, its value framed with `schema_id`.
fn bridge_record(r: &record::Expected, format: &str, schema_id: Option<u32>) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let header = json!([{ "key": SEQ_HEADER, "value": b64.encode(r.seq.to_string()) }]);
    if format == "binary" {
        let json = serde_json::to_vec(&r.value).unwrap_or_default();
        let value = match schema_id {
            Some(id) => record::frame(id, &json),
            None => json,
        };
        // The key as the JSON format stores it (a JSON string), so that a JsonConverter
        // downstream (the MongoDB sink's) reads keys of both formats.
        let key = Value::String(r.key.clone()).to_string();
        json!({ "key": b64.encode(key), "value": b64.encode(value), "headers": header })
    } else {
        json!({ "key": r.key, "value": r.value, "headers": header })
    }
}

/// Post `batch` (records as the Bridge takes them in `format`) once; says which records
/// to post again, or that the entry refused them.
async fn post(
    client: &reqwest::Client,
    url: &str,
    batch: &[Value],
    format: &str,
    bearer: Option<&str>,
    trace: &[(String, String)],
) -> Result<(), Undelivered> {
    let records = batch;
    let content_type = if format == "binary" {
        BINARY_FORMAT
    } else {
        JSON_FORMAT
    };
    let all: Vec<usize> = (0..batch.len()).collect();
    let mut request = client
        .post(url)
        .header("content-type", content_type)
        .body(json!({ "records": records }).to_string());
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    for (name, value) in trace {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| Undelivered::Retry(all.clone(), format!("POST {url}: {e}")))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    // The answer names the error, never the records (they may carry payload). A gateway's
    // refusal is plain text ("Jwt is expired", "RBAC: access denied").
    let error = |body: &Value| {
        body["message"].as_str().map_or_else(
            || text.chars().take(120).collect::<String>(),
            str::to_string,
        )
    };
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(Undelivered::Unauthorized(format!(
            "POST {url}: {status}: {}",
            error(&body)
        )));
    }
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
