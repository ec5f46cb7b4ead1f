//! `kiosk register-schemas`: register a subject's schema in a Confluent-compatible schema
//! registry (Apicurio Registry's `/apis/ccompat/v7`) with a compatibility level, then prove
//! the level is enforced: each `--evolve` schema must be accepted as the next version and
//! each `--refused` one rejected (409). Run at the start of the pipeline by the producer's
//! identity, the only one the registry's AuthorizationPolicy lets write.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// The registry's content type.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The registry's Confluent-compatible API base URL.
    #[arg(long, env = "SCHEMA_REGISTRY_URL")]
    pub registry: String,
    #[arg(long, default_value = "events-value")]
    pub subject: String,
    /// The schema to register (JSON Schema).
    #[arg(long, value_name = "FILE")]
    pub schema: PathBuf,
    /// The subject's compatibility level.
    #[arg(long, default_value = "BACKWARD")]
    pub compatibility: String,
    /// Schemas that the level must accept as later versions (registered in order).
    #[arg(long, value_name = "FILE")]
    pub evolve: Vec<PathBuf>,
    /// Schemas that the level must refuse (each registration must answer 409).
    #[arg(long, value_name = "FILE")]
    pub refused: Vec<PathBuf>,
}

/// A registry client for one subject.
struct Registry {
    http: reqwest::Client,
    base: String,
    subject: String,
}

impl Registry {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        let response = self
            .http
            .request(method.clone(), &url)
            .header("Content-Type", CONTENT_TYPE)
            .body(body.to_string())
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// Register `file` as the subject's next version: the status and the answer.
    async fn register(&self, file: &std::path::Path) -> Result<(u16, Value)> {
        let schema = std::fs::read_to_string(file)
            .with_context(|| format!("reading the schema {}", file.display()))?;
        serde_json::from_str::<Value>(&schema)
            .with_context(|| format!("{}: not JSON", file.display()))?;
        let body = json!({ "schemaType": "JSON", "schema": schema });
        let path = format!("/subjects/{}/versions", self.subject);
        self.call(reqwest::Method::POST, &path, body).await
    }
}

pub async fn run(args: Args) -> Result<()> {
    let registry = Registry {
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?,
        base: args.registry.clone(),
        subject: args.subject.clone(),
    };
    let subject = &args.subject;
    let level = json!({ "compatibility": args.compatibility });
    let (status, answer) = registry
        .call(reqwest::Method::PUT, &format!("/config/{subject}"), level)
        .await?;
    if status != 200 {
        bail!(
            "setting {subject}'s compatibility to {}: {status} {answer}",
            args.compatibility
        );
    }
    let (status, answer) = registry.register(&args.schema).await?;
    let Some(id) = answer["id"].as_i64().filter(|_| status == 200) else {
        bail!(
            "registering {} as {subject}: {status} {answer}",
            args.schema.display()
        );
    };
    println!(
        "schema {subject}: {} registered, id {id}, compatibility {}",
        args.schema.display(),
        args.compatibility
    );
    for file in &args.evolve {
        let (status, answer) = registry.register(file).await?;
        match answer["id"].as_i64() {
            Some(id) if status == 200 => {
                println!("schema {subject}: {} accepted as a later version, id {id}", file.display())
            }
            _ => bail!(
                "{} should be an allowed evolution of {subject} under {}, but the registry answered {status} {answer}",
                file.display(),
                args.compatibility
            ),
        }
    }
    for file in &args.refused {
        let (status, answer) = registry.register(file).await?;
        if status != 409 {
            bail!(
                "{} should be refused under {}, but the registry answered {status} {answer}",
                file.display(),
                args.compatibility
            );
        }
        let why = answer["message"].as_str().unwrap_or_default();
        let why: String = why.chars().take(160).collect();
        println!("schema {subject}: {} refused (409): {why}", file.display());
    }
    Ok(())
}
