//! The Strimzi operators' part, done against a running Kafka: the Topic Operator creates
//! every KafkaTopic as declared, the User Operator applies every KafkaUser's ACLs. `kiosk
//! operator` runs it from a pod of its own, without a sidecar, over the brokers' replication
//! listener (the platform's access, a super user as Strimzi's operators are).
//!
//! ACLs go through Kafka's CreateAcls API, encoded with the `kafka-protocol` crate (a cold
//! path: librdkafka's ACL API is not exposed by the `rdkafka` crate).

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

use crate::bundle::{Acl, KafkaUser};
use crate::components::kafka::{decode_response, read_frame, request_frame};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The cluster's platform listener(s), `host:port[,host:port]`.
    #[arg(long)]
    pub bootstrap: String,
    /// Brokers Metadata must list before anything is applied.
    #[arg(long, default_value_t = 1)]
    pub brokers: usize,
    /// The Strimzi resources (default: the bundle's own `strimzi/`).
    #[arg(long)]
    pub strimzi: Option<std::path::PathBuf>,
    /// How the clients authenticate (`none`: no KafkaUser is applied; `tls`: each user's
    /// ACLs name `User:CN=<user>`; `scram-sha-512` and `plain`: `User:<user>`).
    #[arg(long, default_value = "none", value_parser = ["none", "tls", "scram-sha-512", "plain"])]
    pub kafka_auth: String,
    /// How long to wait for the brokers, in seconds.
    #[arg(long, default_value_t = 120)]
    pub wait_secs: u64,
}

/// `kiosk operator`: wait for the brokers, create the KafkaTopics, apply the KafkaUsers.
pub async fn run(args: Args) -> Result<()> {
    let dir = args.strimzi.unwrap_or_else(crate::bundle::default_dir);
    let bundle = crate::bundle::ClusterClients::read(&dir)?;
    let wait = Duration::from_secs(args.wait_secs);
    let bootstrap = args.bootstrap.clone();
    let want = args.brokers;
    let listed = tokio::task::spawn_blocking(move || {
        crate::components::kafka::wait_for_brokers(&bootstrap, want, wait)
    })
    .await??;
    println!("operator: Metadata lists {listed} broker(s)");
    crate::components::kafka::create_topics(&args.bootstrap, &bundle.topics).await?;
    for t in &bundle.topics {
        let replicas = t
            .replicas
            .map_or("the cluster's default".to_string(), |r| r.to_string());
        println!(
            "operator: KafkaTopic {} ({} partitions, {replicas} replicas)",
            t.name, t.partitions
        );
    }
    if args.kafka_auth != "none" {
        let bootstrap = args.bootstrap.clone();
        let users = bundle.users.clone();
        let auth = args.kafka_auth.clone();
        let applied =
            tokio::task::spawn_blocking(move || apply_acls(&bootstrap, &users, &auth)).await??;
        for u in &bundle.users {
            println!(
                "operator: KafkaUser {} ({}): {} ACL rule(s)",
                u.name,
                principal(u, &args.kafka_auth),
                u.acls.len()
            );
        }
        println!("operator: {applied} ACL binding(s) created");
    }
    Ok(())
}

/// The principal of a KafkaUser on a listener of `authentication` type, as Strimzi's ACLs
/// name it: `User:CN=<user>` for TLS client certificates, `User:<user>` for SCRAM.
pub fn principal(user: &KafkaUser, authentication: &str) -> String {
    if authentication.starts_with("tls") {
        format!("User:CN={}", user.name)
    } else {
        format!("User:{}", user.name)
    }
}

/// Kafka's codes for an ACL binding (`AclBinding`'s enums).
fn acl_codes(acl: &Acl) -> Result<(i8, String, i8)> {
    let resource_type = match acl.resource.kind.as_str() {
        "topic" => 2,
        "group" => 3,
        "cluster" => 4,
        "transactionalId" => 5,
        other => bail!("ACL resource type `{other}`"),
    };
    let name = match acl.resource.kind.as_str() {
        "cluster" => "kafka-cluster".to_string(),
        _ => acl
            .resource
            .name
            .clone()
            .context("an ACL on a topic, group or transactional id names it")?,
    };
    let pattern = if acl.resource.pattern_type == "prefix" {
        4
    } else {
        3
    };
    Ok((resource_type, name, pattern))
}

fn operation_code(operation: &str) -> Result<i8> {
    Ok(match operation {
        "All" => 2,
        "Read" => 3,
        "Write" => 4,
        "Create" => 5,
        "Delete" => 6,
        "Alter" => 7,
        "Describe" => 8,
        "ClusterAction" => 9,
        "DescribeConfigs" => 10,
        "AlterConfigs" => 11,
        "IdempotentWrite" => 12,
        other => bail!("ACL operation `{other}`"),
    })
}

/// The CreateAcls entries for `user` (one per operation, ALLOW).
pub fn acl_creations(user: &KafkaUser, principal: &str) -> Result<Vec<AclCreation>> {
    let mut out = Vec::new();
    for acl in &user.acls {
        let (resource_type, name, pattern) = acl_codes(acl)?;
        for op in &acl.operations {
            out.push(
                AclCreation::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(StrBytes::from_string(name.clone()))
                    .with_resource_pattern_type(pattern)
                    .with_principal(StrBytes::from_string(principal.to_string()))
                    .with_host(StrBytes::from_string(
                        acl.host.clone().unwrap_or_else(|| "*".into()),
                    ))
                    .with_operation(operation_code(op)?)
                    .with_permission_type(3),
            );
        }
    }
    Ok(out)
}

/// Apply `users`' ACLs through `bootstrap` (a platform listener, `host:port`), each user
/// named as `authentication` names it.
pub fn apply_acls(bootstrap: &str, users: &[KafkaUser], authentication: &str) -> Result<usize> {
    let mut creations = Vec::new();
    for user in users {
        creations.extend(acl_creations(user, &principal(user, authentication))?);
    }
    if creations.is_empty() {
        return Ok(0);
    }
    let count = creations.len();
    let request = CreateAclsRequest::default().with_creations(creations);
    let response: CreateAclsResponse = exchange(bootstrap, 30, 3, &request)?;
    for (i, result) in response.results.iter().enumerate() {
        if result.error_code != 0 {
            bail!(
                "CreateAcls refused ACL {i}: error {} {}",
                result.error_code,
                result.error_message.as_deref().unwrap_or_default()
            );
        }
    }
    Ok(count)
}

/// One request/response exchange with the first reachable broker of `bootstrap`.
fn exchange<Q, R>(bootstrap: &str, api_key: i16, version: i16, request: &Q) -> Result<R>
where
    Q: Encodable + HeaderVersion,
    R: Decodable + HeaderVersion,
{
    let address = bootstrap.split(',').next().unwrap_or(bootstrap);
    let mut stream =
        TcpStream::connect(address).with_context(|| format!("connecting to {address}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let frame = request_frame(api_key, version, 1, "strimzi-user-operator", request)?;
    stream.write_all(&frame)?;
    let (correlation_id, decoded) = decode_response(read_frame(&mut stream)?, version)?;
    if correlation_id != 1 {
        bail!("a response to another request ({correlation_id})");
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundles_users_become_allow_acls_named_as_strimzi_names_them() {
        let bundle = crate::bundle::Bundle::read(&crate::bundle::default_dir()).unwrap();
        let mirror = bundle.user("kiosk-mirror").unwrap();
        assert_eq!(principal(mirror, "tls"), "User:CN=kiosk-mirror");
        assert_eq!(principal(mirror, "scram-sha-512"), "User:kiosk-mirror");
        let acls = acl_creations(mirror, "User:CN=kiosk-mirror").unwrap();
        // events: Read, Describe; group mirror: Read; events.mirror and events.dlq: Write,
        // Describe; its transactional ids (prefix `mirror-`): Write, Describe.
        assert_eq!(acls.len(), 9);
        let transactional = acls
            .iter()
            .filter(|a| a.resource_type == 5 && a.resource_pattern_type == 4)
            .count();
        assert_eq!(transactional, 2, "Write and Describe on the prefix mirror-");
        assert!(acls
            .iter()
            .all(|a| a.permission_type == 3 && a.host.as_str() == "*"));
        let connect = bundle.user("kiosk-connect").unwrap();
        let prefixed = acl_creations(connect, "User:CN=kiosk-connect")
            .unwrap()
            .into_iter()
            .filter(|a| a.resource_pattern_type == 4)
            .count();
        assert!(prefixed > 0, "Connect's topics are a prefix");
    }
}
