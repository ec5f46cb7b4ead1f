//! `kiosk register-schemas`: register a subject's schema in a Confluent-compatible schema
//! registry (Apicurio Registry's `/apis/ccompat/v7`) with a compatibility level, then prove
//! the level is enforced: each `--evolve` schema must be accepted as the next version and
//! each `--refused` one rejected (409). Run at the start of the pipeline by the producer's
//! identity, the only one the registry's AuthorizationPolicy lets write.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::registry::Registry;

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

/// A schema file's text, checked to be JSON.
fn read_schema(file: &std::path::Path) -> Result<String> {
    let schema = std::fs::read_to_string(file)
        .with_context(|| format!("reading the schema {}", file.display()))?;
    serde_json::from_str::<Value>(&schema)
        .with_context(|| format!("{}: not JSON", file.display()))?;
    Ok(schema)
}

pub async fn run(args: Args) -> Result<()> {
    let registry = Registry::new(&args.registry)?;
    let subject = &args.subject;
    let level = json!({ "compatibility": args.compatibility });
    let (status, answer) = registry
        .call(
            reqwest::Method::PUT,
            &format!("/config/{subject}"),
            Some(level),
        )
        .await?;
    if status != 200 {
        bail!(
            "setting {subject}'s compatibility to {}: {status} {answer}",
            args.compatibility
        );
    }
    let (status, answer) = registry
        .register(subject, &read_schema(&args.schema)?)
        .await?;
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
        let (status, answer) = registry.register(subject, &read_schema(file)?).await?;
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
        let (status, answer) = registry.register(subject, &read_schema(file)?).await?;
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
