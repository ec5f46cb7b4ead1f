//! Where a pipeline service reads or writes its documents.

use anyhow::{Context, Result};

/// Where a service reads or writes documents (`--mongodb-uri`, `--database`, `--collection`).
#[derive(clap::Args, Debug, Clone)]
pub struct CollectionArgs {
    /// MongoDB connection string, credentials included; read from the environment so that
    /// the password stays out of process listings.
    #[arg(long, env = "MONGODB_URI", hide_env_values = true)]
    pub mongodb_uri: String,
    /// The database of the pipeline's documents.
    #[arg(long, default_value = "pipeline")]
    pub database: String,
    /// The collection of the pipeline's documents.
    #[arg(long, default_value = "events")]
    pub collection: String,
}

impl CollectionArgs {
    pub async fn open(&self) -> Result<mongodb::Collection<mongodb::bson::Document>> {
        let client = mongodb::Client::with_uri_str(&self.mongodb_uri)
            .await
            .context("parsing the MongoDB connection string")?;
        Ok(client.database(&self.database).collection(&self.collection))
    }
}
