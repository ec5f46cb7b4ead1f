//! Kafka client settings shared by the pipeline services (librdkafka through `rdkafka`).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;

/// A client of `bootstrap` (the workload's sidecar listener in the local mesh) named
/// `client_id` (it becomes the filter's `client_id` label).
pub fn client_config(bootstrap: &str, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", client_id)
        .set("broker.address.family", "v4")
        // Topics are created by the platform (KafkaTopic resources, `kiosk up`), never
        // by a client that mistypes a name.
        .set("allow.auto.create.topics", "false");
    config
}

/// Consumer settings for at-least-once processing: offsets are committed by the service
/// after its output is acknowledged, never automatically.
pub fn consumer_config(bootstrap: &str, client_id: &str, group: &str) -> ClientConfig {
    let mut config = client_config(bootstrap, client_id);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000");
    config
}

/// Producer settings: every record acknowledged by the broker before it counts as sent.
pub fn producer_config(bootstrap: &str, client_id: &str) -> ClientConfig {
    let mut config = client_config(bootstrap, client_id);
    config
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000");
    config
}

/// Create `topics` with `partitions` each; a topic that exists already is fine.
pub async fn create_topics(bootstrap: &str, topics: &[&str], partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap, "kiosk-admin")
        .create()
        .context("creating the Kafka admin client")?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let results = admin
        .create_topics(&new, &options)
        .await
        .context("creating topics")?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => bail!("creating topic {topic}: {code}"),
        }
    }
    Ok(())
}
