//! Kafka client settings shared by the pipeline services (librdkafka through `rdkafka`).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord};

/// Extra librdkafka properties for every client, one `key=value` per line (blank lines and
/// `#` comments ignored), applied after kiosk's own settings. In Kubernetes this carries the
/// SCRAM-SHA-512 credentials of the service's KafkaUser (`security.protocol`,
/// `sasl.mechanism`, `sasl.username`, `sasl.password`), the password coming from the
/// Secret the User Operator writes, never from a command line.
pub const PROPERTIES_ENV: &str = "KAFKA_PROPERTIES";

/// Parse `key=value` lines (see [`PROPERTIES_ENV`]).
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>> {
    let mut properties = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!(
                "{PROPERTIES_ENV} line {}: expected key=value, found `{}`",
                n + 1,
                line.split(':').next().unwrap_or_default()
            );
        };
        let key = key.trim();
        if key.is_empty() {
            bail!("{PROPERTIES_ENV} line {}: empty property name", n + 1);
        }
        properties.push((key.to_string(), value.trim().to_string()));
    }
    Ok(properties)
}

/// A client of `bootstrap` (the workload's sidecar listener in the local mesh) named
/// `client_id` (it becomes the filter's `client_id` label), with the properties of
/// `KAFKA_PROPERTIES` applied last.
pub fn client_config(bootstrap: &str, client_id: &str) -> Result<ClientConfig> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", client_id)
        .set("broker.address.family", "v4")
        // Topics are created by the platform (KafkaTopic resources, `kiosk up`), never
        // by a client that mistypes a name.
        .set("allow.auto.create.topics", "false");
    if let Ok(text) = std::env::var(PROPERTIES_ENV) {
        for (key, value) in parse_properties(&text)? {
            config.set(key, value);
        }
    }
    Ok(config)
}

/// Consumer settings: offsets are committed by the service after its output is durable
/// (or within the mirror's transactions), never automatically; only committed records
/// are read (`read_committed`: an aborted transaction's records never reach a service).
pub fn consumer_config(bootstrap: &str, client_id: &str, group: &str) -> Result<ClientConfig> {
    let mut config = client_config(bootstrap, client_id)?;
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("session.timeout.ms", "10000");
    Ok(config)
}

/// Producer settings: every record acknowledged by the broker before it counts as sent;
/// idempotent, so a retry across a broker restart never writes a record twice.
pub fn producer_config(bootstrap: &str, client_id: &str) -> Result<ClientConfig> {
    let mut config = client_config(bootstrap, client_id)?;
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000");
    Ok(config)
}

/// Queue `record` on `producer`, serving delivery callbacks while librdkafka's queue is
/// full; any other refusal is returned.
pub fn send_waiting<K, P>(
    producer: &BaseProducer,
    mut record: BaseRecord<'_, K, P>,
) -> rdkafka::error::KafkaResult<()>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => break,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                producer.poll(Duration::from_millis(10));
                record = back;
            }
            Err((e, _)) => return Err(e),
        }
    }
    producer.poll(Duration::ZERO);
    Ok(())
}

/// Create `topics` with `partitions` each; a topic that exists already is fine.
pub async fn create_topics(bootstrap: &str, topics: &[&str], partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap, "kiosk-admin")?
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

#[cfg(test)]
mod tests {
    use super::parse_properties;

    #[test]
    fn properties_are_key_value_lines() {
        let text = "# SCRAM through the mesh\nsecurity.protocol=SASL_PLAINTEXT\n\n  sasl.mechanism = SCRAM-SHA-512\nsasl.password=a=b\n";
        let parsed = parse_properties(text).unwrap();
        assert_eq!(
            parsed,
            vec![
                ("security.protocol".into(), "SASL_PLAINTEXT".into()),
                ("sasl.mechanism".into(), "SCRAM-SHA-512".into()),
                ("sasl.password".into(), "a=b".into()),
            ]
        );
    }

    #[test]
    fn a_line_without_equals_is_refused_without_echoing_a_secret() {
        let err = parse_properties("sasl.username=x\nsasl.password: hunter2\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 2"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }
}
