//! The Kubernetes bundle's own Strimzi resources (`strimzi/*.yaml`), read as Strimzi's
//! operators read them, so that the local mesh and the cluster have one source of truth:
//! topics from `KafkaTopic`s, the sink from the `KafkaConnector`, Connect's worker from the
//! `KafkaConnect`, the REST entry's producer settings from the `KafkaBridge`, broker
//! settings from the `Kafka`.
//!
//! Only the fields the mesh uses are read; each is checked, and an error names the file and
//! the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// The API version Strimzi 1.2.0 serves.
pub const API_VERSION: &str = "kafka.strimzi.io/v1";

/// Every resource the mesh reads, from one directory.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub kafka: Kafka,
    pub topics: Vec<KafkaTopic>,
    pub connect: KafkaConnect,
    pub connectors: Vec<KafkaConnector>,
    pub bridge: KafkaBridge,
    pub node_pool: KafkaNodePool,
    pub users: Vec<KafkaUser>,
}

#[derive(Clone, Debug, Deserialize)]
struct Resource<S> {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: S,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// The `Kafka` cluster: only its broker settings matter here.
#[derive(Clone, Debug)]
pub struct Kafka {
    pub name: String,
    pub namespace: String,
    /// `spec.kafka.version`: the Kafka the operator runs.
    pub version: Option<String>,
    pub config: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
struct KafkaSpec {
    kafka: KafkaBrokers,
}

#[derive(Clone, Debug, Deserialize)]
struct KafkaBrokers {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    config: BTreeMap<String, Value>,
}

/// A `KafkaTopic`: what the Topic Operator would create.
#[derive(Clone, Debug, PartialEq)]
pub struct KafkaTopic {
    /// `spec.topicName`, else `metadata.name`.
    pub name: String,
    pub partitions: i32,
    /// `None`: the cluster's `default.replication.factor` (Strimzi's default too).
    pub replicas: Option<i32>,
    pub config: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KafkaTopicSpec {
    #[serde(default)]
    topic_name: Option<String>,
    partitions: i32,
    #[serde(default)]
    replicas: Option<i32>,
    #[serde(default)]
    config: BTreeMap<String, Value>,
}

/// A `KafkaConnect` cluster: its worker settings.
#[derive(Clone, Debug)]
pub struct KafkaConnect {
    pub name: String,
    pub namespace: String,
    pub group_id: String,
    pub config_storage_topic: String,
    pub offset_storage_topic: String,
    pub status_storage_topic: String,
    pub config: BTreeMap<String, String>,
    /// `app` label of its pods: the workload name the mesh gives it.
    pub app: String,
    /// Maven artifacts of `spec.build.plugins`, as `group:artifact:version`.
    pub plugin_artifacts: Vec<String>,
    /// `spec.bootstrapServers`, as its pods dial them.
    pub bootstrap_servers: String,
    /// Its pods' annotations (`traffic.sidecar.istio.io/...`).
    pub pod_annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KafkaConnectSpec {
    bootstrap_servers: String,
    group_id: String,
    config_storage_topic: String,
    offset_storage_topic: String,
    status_storage_topic: String,
    #[serde(default)]
    config: BTreeMap<String, Value>,
    #[serde(default)]
    build: Option<ConnectBuild>,
    #[serde(default)]
    template: Option<Template>,
}

#[derive(Clone, Debug, Deserialize)]
struct ConnectBuild {
    #[serde(default)]
    plugins: Vec<ConnectPlugin>,
}

#[derive(Clone, Debug, Deserialize)]
struct ConnectPlugin {
    #[serde(default)]
    artifacts: Vec<Artifact>,
}

#[derive(Clone, Debug, Deserialize)]
struct Artifact {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    artifact: Option<String>,
    #[serde(default)]
    version: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Template {
    #[serde(default)]
    pod: Option<PodTemplate>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct PodTemplate {
    #[serde(default)]
    metadata: Option<PodMetadata>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct PodMetadata {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl Template {
    fn pod_annotations(template: &Option<Template>) -> BTreeMap<String, String> {
        template
            .as_ref()
            .and_then(|t| t.pod.as_ref())
            .and_then(|p| p.metadata.as_ref())
            .map(|m| m.annotations.clone())
            .unwrap_or_default()
    }

    fn app(template: &Option<Template>) -> Option<String> {
        template
            .as_ref()?
            .pod
            .as_ref()?
            .metadata
            .as_ref()?
            .labels
            .get("app")
            .cloned()
    }
}

/// A `KafkaUser`: its authentication type and ACLs, as the User Operator applies them.
#[derive(Clone, Debug, PartialEq)]
pub struct KafkaUser {
    pub name: String,
    /// `tls`, `tls-external` or `scram-sha-512`.
    pub authentication: String,
    pub acls: Vec<Acl>,
}

/// One ACL rule of a KafkaUser (`spec.authorization.acls[]`), allowing `operations`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Acl {
    pub resource: AclResource,
    pub operations: Vec<String>,
    #[serde(default)]
    pub host: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AclResource {
    /// `topic`, `group`, `cluster` or `transactionalId`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `literal` (default) or `prefix`.
    #[serde(default = "literal")]
    pub pattern_type: String,
}

fn literal() -> String {
    "literal".into()
}

#[derive(Clone, Debug, Deserialize)]
struct KafkaUserSpec {
    authentication: UserAuthentication,
    #[serde(default)]
    authorization: Option<UserAuthorization>,
}

#[derive(Clone, Debug, Deserialize)]
struct UserAuthentication {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Clone, Debug, Deserialize)]
struct UserAuthorization {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    acls: Vec<Acl>,
}

/// The operations Kafka's ACLs know (Strimzi's spelling).
const ACL_OPERATIONS: &[&str] = &[
    "Read",
    "Write",
    "Create",
    "Delete",
    "Alter",
    "Describe",
    "ClusterAction",
    "AlterConfigs",
    "DescribeConfigs",
    "IdempotentWrite",
    "All",
];

fn read_user(file: &Path, text: &str) -> Result<KafkaUser> {
    let (metadata, spec): (_, KafkaUserSpec) = parse(file, text, "KafkaUser")?;
    let authentication = spec.authentication.kind;
    if !["tls", "tls-external", "scram-sha-512"].contains(&authentication.as_str()) {
        bail!(
            "{}: KafkaUser `{}`: spec.authentication.type `{authentication}`: expected tls, tls-external or scram-sha-512",
            file.display(),
            metadata.name
        );
    }
    let acls = match spec.authorization {
        Some(a) if a.kind == "simple" => a.acls,
        Some(a) => bail!(
            "{}: KafkaUser `{}`: spec.authorization.type `{}`: the local mesh applies `simple` ACLs",
            file.display(),
            metadata.name,
            a.kind
        ),
        None => Vec::new(),
    };
    for acl in &acls {
        if !["topic", "group", "cluster", "transactionalId"].contains(&acl.resource.kind.as_str()) {
            bail!(
                "{}: KafkaUser `{}`: ACL resource type `{}`",
                file.display(),
                metadata.name,
                acl.resource.kind
            );
        }
        if !["literal", "prefix"].contains(&acl.resource.pattern_type.as_str()) {
            bail!(
                "{}: KafkaUser `{}`: ACL patternType `{}`",
                file.display(),
                metadata.name,
                acl.resource.pattern_type
            );
        }
        if let Some(op) = acl
            .operations
            .iter()
            .find(|o| !ACL_OPERATIONS.contains(&o.as_str()))
        {
            bail!(
                "{}: KafkaUser `{}`: ACL operation `{op}`",
                file.display(),
                metadata.name
            );
        }
    }
    Ok(KafkaUser {
        name: metadata.name,
        authentication,
        acls,
    })
}

/// A `KafkaNodePool`: the broker pods' name and annotations.
#[derive(Clone, Debug)]
pub struct KafkaNodePool {
    pub name: String,
    pub pod_annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
struct KafkaNodePoolSpec {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    template: Option<Template>,
}

/// A `KafkaConnector`: what the Cluster Operator posts to Connect's REST API.
#[derive(Clone, Debug)]
pub struct KafkaConnector {
    pub name: String,
    pub class: String,
    pub tasks_max: u32,
    /// `spec.config`, values as Connect takes them (strings).
    pub config: BTreeMap<String, String>,
    /// `spec.autoRestart.enabled`: the Cluster Operator restarts a failed connector or task.
    pub auto_restart: bool,
}

impl KafkaConnector {
    /// The body of `PUT /connectors/<name>/config`, as the Cluster Operator sends it.
    pub fn rest_config(&self) -> BTreeMap<String, String> {
        let mut config = self.config.clone();
        config.insert("connector.class".into(), self.class.clone());
        config.insert("tasks.max".into(), self.tasks_max.to_string());
        config.insert("name".into(), self.name.clone());
        config
    }

    /// The topics the connector reads (`topics`, comma-separated).
    pub fn topics(&self) -> Vec<String> {
        self.config
            .get("topics")
            .map(|t| t.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KafkaConnectorSpec {
    class: String,
    #[serde(default = "one")]
    tasks_max: u32,
    #[serde(default)]
    config: BTreeMap<String, Value>,
    #[serde(default)]
    auto_restart: Option<AutoRestart>,
}

#[derive(Clone, Debug, Deserialize)]
struct AutoRestart {
    #[serde(default)]
    enabled: bool,
}

fn one() -> u32 {
    1
}

/// A `KafkaBridge`: the REST entry's producer settings and its workload name.
#[derive(Clone, Debug)]
pub struct KafkaBridge {
    pub name: String,
    /// `spec.bootstrapServers`.
    pub bootstrap_servers: String,
    pub http_port: u16,
    pub producer_config: BTreeMap<String, String>,
    pub app: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KafkaBridgeSpec {
    bootstrap_servers: String,
    http: BridgeHttp,
    #[serde(default)]
    producer: Option<BridgeProducer>,
    #[serde(default)]
    template: Option<Template>,
}

#[derive(Clone, Debug, Deserialize)]
struct BridgeHttp {
    port: u16,
}

#[derive(Clone, Debug, Deserialize)]
struct BridgeProducer {
    #[serde(default)]
    config: BTreeMap<String, Value>,
}

/// The project's own bundle (`strimzi/` in the repository).
pub fn default_dir() -> PathBuf {
    crate::paths::root().join("strimzi")
}

impl Bundle {
    /// Read every Strimzi resource in `dir` (`*.yaml`; other kinds are skipped). Fails,
    /// naming the file and field, on a resource the operators would refuse.
    pub fn read(dir: &Path) -> Result<Bundle> {
        let found = Found::read(dir)?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
            kafka: only(found.kafka, "Kafka", dir)?,
            topics: found.topics,
            connect: only(found.connects, "KafkaConnect", dir)?,
            connectors: found.connectors,
            bridge: only(found.bridges, "KafkaBridge", dir)?,
            node_pool: only(found.pools, "KafkaNodePool", dir)?,
            users: found.users,
        })
    }

    pub fn topic(&self, name: &str) -> Result<&KafkaTopic> {
        self.topics
            .iter()
            .find(|t| t.name == name)
            .with_context(|| format!("no KafkaTopic for topic `{name}` in {}", self.dir.display()))
    }

    pub fn user(&self, name: &str) -> Result<&KafkaUser> {
        self.users
            .iter()
            .find(|u| u.name == name)
            .with_context(|| format!("no KafkaUser `{name}` in {}", self.dir.display()))
    }

    pub fn connector(&self, name: &str) -> Result<&KafkaConnector> {
        self.connectors
            .iter()
            .find(|c| c.name == name)
            .with_context(|| format!("no KafkaConnector `{name}` in {}", self.dir.display()))
    }
}

fn only<T>(mut found: Vec<T>, kind: &str, dir: &Path) -> Result<T> {
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!("no {kind} resource in {}", dir.display()),
        n => bail!(
            "{n} {kind} resources in {}; the local mesh runs one",
            dir.display()
        ),
    }
}

/// What a cluster's clients are given, for a Kafka Strimzi does not run (the standalone
/// Topic and User Operators' resources, `strimzi/external/`).
#[derive(Clone, Debug)]
pub struct ClusterClients {
    pub topics: Vec<KafkaTopic>,
    pub users: Vec<KafkaUser>,
}

impl ClusterClients {
    pub fn read(dir: &Path) -> Result<ClusterClients> {
        let found = Found::read(dir)?;
        Ok(ClusterClients {
            topics: found.topics,
            users: found.users,
        })
    }
}

/// Every Strimzi resource of a directory, by kind, each parsed and checked.
#[derive(Default)]
struct Found {
    kafka: Vec<Kafka>,
    topics: Vec<KafkaTopic>,
    connects: Vec<KafkaConnect>,
    connectors: Vec<KafkaConnector>,
    bridges: Vec<KafkaBridge>,
    pools: Vec<KafkaNodePool>,
    users: Vec<KafkaUser>,
}

impl Found {
    fn read(dir: &Path) -> Result<Found> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading the Strimzi resources in {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        let mut found = Found::default();
        for file in &files {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let head: Value = yaml_serde::from_str(&text)
                .with_context(|| format!("{}: not YAML", file.display()))?;
            let kind = head.get("kind").and_then(Value::as_str).unwrap_or_default();
            match kind {
                "Kafka" => found.kafka.push(read_kafka(file, &text)?),
                "KafkaTopic" => found.topics.push(read_topic(file, &text)?),
                "KafkaConnect" => found.connects.push(read_connect(file, &text)?),
                "KafkaConnector" => found.connectors.push(read_connector(file, &text)?),
                "KafkaBridge" => found.bridges.push(read_bridge(file, &text)?),
                "KafkaNodePool" => found.pools.push(read_node_pool(file, &text)?),
                "KafkaUser" => found.users.push(read_user(file, &text)?),
                _ => {}
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for t in &found.topics {
            if !names.insert(&t.name) {
                bail!("{}: two KafkaTopics name topic `{}`", dir.display(), t.name);
            }
        }
        Ok(found)
    }
}

/// Parse `text` as a resource of `kind` with spec `S`, errors naming the field's path.
fn parse<S: DeserializeOwned>(file: &Path, text: &str, kind: &str) -> Result<(Metadata, S)> {
    let de = yaml_serde::Deserializer::from_str(text);
    let resource: Resource<S> = serde_path_to_error::deserialize(de).map_err(|e| {
        anyhow::anyhow!(
            "{}: {kind} field `{}`: {}",
            file.display(),
            e.path(),
            e.inner()
        )
    })?;
    if resource.api_version != API_VERSION {
        bail!(
            "{}: apiVersion `{}`; Strimzi 1.2.0 serves only {API_VERSION}",
            file.display(),
            resource.api_version
        );
    }
    debug_assert_eq!(resource.kind, kind);
    check_name(file, &resource.metadata.name)?;
    Ok((resource.metadata, resource.spec))
}

/// A Kubernetes object name: lower-case letters, digits, `-` and `.`, at most 253.
fn check_name(file: &Path, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        bail!(
            "{}: metadata.name `{name}` is not a Kubernetes name",
            file.display()
        );
    }
    Ok(())
}

/// A config map as Kafka takes it: scalars as strings; anything else is refused.
fn strings(
    file: &Path,
    field: &str,
    config: BTreeMap<String, Value>,
) -> Result<BTreeMap<String, String>> {
    config
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(s) => s,
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                other => bail!(
                    "{}: {field}.{key}: expected a string, number or boolean, found {other}",
                    file.display()
                ),
            };
            Ok((key, text))
        })
        .collect()
}

fn read_kafka(file: &Path, text: &str) -> Result<Kafka> {
    let (metadata, spec): (_, KafkaSpec) = parse(file, text, "Kafka")?;
    Ok(Kafka {
        namespace: metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        name: metadata.name,
        version: spec.kafka.version,
        config: strings(file, "spec.kafka.config", spec.kafka.config)?,
    })
}

/// Kafka's topic name rule: 1-249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn check_topic_name(file: &Path, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-');
    if !ok {
        bail!(
            "{}: `{name}` is not a legal Kafka topic name",
            file.display()
        );
    }
    Ok(())
}

fn read_topic(file: &Path, text: &str) -> Result<KafkaTopic> {
    let (metadata, spec): (_, KafkaTopicSpec) = parse(file, text, "KafkaTopic")?;
    let name = spec.topic_name.unwrap_or(metadata.name);
    check_topic_name(file, &name)?;
    if spec.partitions < 1 {
        bail!(
            "{}: KafkaTopic `{name}`: spec.partitions must be at least 1, found {}",
            file.display(),
            spec.partitions
        );
    }
    if let Some(replicas) = spec.replicas.filter(|r| *r < 1) {
        bail!(
            "{}: KafkaTopic `{name}`: spec.replicas must be at least 1, found {replicas}",
            file.display(),
        );
    }
    Ok(KafkaTopic {
        name,
        partitions: spec.partitions,
        replicas: spec.replicas,
        config: strings(file, "spec.config", spec.config)?,
    })
}

fn read_connect(file: &Path, text: &str) -> Result<KafkaConnect> {
    let (metadata, spec): (_, KafkaConnectSpec) = parse(file, text, "KafkaConnect")?;
    let mut plugin_artifacts = Vec::new();
    for plugin in spec.build.iter().flat_map(|b| &b.plugins) {
        for a in &plugin.artifacts {
            if a.kind == "maven" {
                plugin_artifacts.push(format!(
                    "{}:{}:{}",
                    a.group.as_deref().unwrap_or_default(),
                    a.artifact.as_deref().unwrap_or_default(),
                    a.version.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    let app = Template::app(&spec.template).unwrap_or_else(|| format!("{}-connect", metadata.name));
    check_bootstrap(file, &spec.bootstrap_servers)?;
    Ok(KafkaConnect {
        namespace: metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        name: metadata.name,
        group_id: spec.group_id,
        config_storage_topic: spec.config_storage_topic,
        offset_storage_topic: spec.offset_storage_topic,
        status_storage_topic: spec.status_storage_topic,
        config: strings(file, "spec.config", spec.config)?,
        app,
        plugin_artifacts,
        bootstrap_servers: spec.bootstrap_servers,
        pod_annotations: Template::pod_annotations(&spec.template),
    })
}

fn read_connector(file: &Path, text: &str) -> Result<KafkaConnector> {
    let (metadata, spec): (_, KafkaConnectorSpec) = parse(file, text, "KafkaConnector")?;
    if spec.class.trim().is_empty() {
        bail!(
            "{}: KafkaConnector `{}`: spec.class is empty",
            file.display(),
            metadata.name
        );
    }
    if spec.tasks_max < 1 {
        bail!(
            "{}: KafkaConnector `{}`: spec.tasksMax must be at least 1",
            file.display(),
            metadata.name
        );
    }
    let config = strings(file, "spec.config", spec.config)?;
    for reserved in ["connector.class", "tasks.max", "name"] {
        if config.contains_key(reserved) {
            bail!(
                "{}: KafkaConnector `{}`: spec.config.{reserved} is set by Strimzi from the spec; remove it",
                file.display(),
                metadata.name
            );
        }
    }
    Ok(KafkaConnector {
        name: metadata.name,
        class: spec.class,
        tasks_max: spec.tasks_max,
        config,
        auto_restart: spec.auto_restart.is_some_and(|a| a.enabled),
    })
}

fn read_node_pool(file: &Path, text: &str) -> Result<KafkaNodePool> {
    let (metadata, spec): (_, KafkaNodePoolSpec) = parse(file, text, "KafkaNodePool")?;
    if !spec.roles.iter().any(|r| r == "broker") {
        bail!(
            "{}: KafkaNodePool `{}` has no broker role; the local mesh runs brokers from it",
            file.display(),
            metadata.name
        );
    }
    Ok(KafkaNodePool {
        name: metadata.name,
        pod_annotations: Template::pod_annotations(&spec.template),
    })
}

/// `host:port[,host:port...]`.
fn check_bootstrap(file: &Path, servers: &str) -> Result<()> {
    for server in servers.split(',') {
        let ok = server
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            bail!(
                "{}: bootstrapServers `{servers}`: expected host:port",
                file.display()
            );
        }
    }
    Ok(())
}

/// What the `PeerAuthentication`s of Istio's resources (`istio/`) ask for.
#[derive(Clone, Debug, Default)]
pub struct PeerAuthentications {
    /// Namespace -> mTLS mode of its namespace-wide policy (none: PERMISSIVE, Istio's
    /// default).
    pub namespaces: BTreeMap<String, String>,
    /// Port -> mode of `portLevelMtls` in policies selecting Strimzi's broker pods
    /// (`strimzi.io/kind: Kafka`).
    pub broker_ports: BTreeMap<u16, String>,
}

impl PeerAuthentications {
    pub fn strict(&self, namespace: &str) -> bool {
        self.namespaces
            .get(namespace)
            .is_some_and(|m| m == "STRICT")
    }
}

/// Read the `PeerAuthentication`s in `dir`.
pub fn peer_authentication(dir: &Path) -> Result<PeerAuthentications> {
    #[derive(Deserialize)]
    struct Policy {
        kind: String,
        metadata: Metadata,
        #[serde(default)]
        spec: PolicySpec,
    }
    #[derive(Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct PolicySpec {
        #[serde(default)]
        selector: Option<Selector>,
        #[serde(default)]
        mtls: Option<Mtls>,
        #[serde(default)]
        port_level_mtls: BTreeMap<u16, Mtls>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Selector {
        #[serde(default)]
        match_labels: BTreeMap<String, String>,
    }
    #[derive(Deserialize)]
    struct Mtls {
        mode: String,
    }
    let mut found = PeerAuthentications::default();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|x| x != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let Ok(policy) = yaml_serde::from_str::<Policy>(&text) else {
            continue;
        };
        if policy.kind != "PeerAuthentication" {
            continue;
        }
        match policy.spec.selector {
            None => {
                if let (Some(ns), Some(mtls)) = (policy.metadata.namespace, policy.spec.mtls) {
                    found.namespaces.insert(ns, mtls.mode);
                }
            }
            Some(selector) => {
                if selector
                    .match_labels
                    .get("strimzi.io/kind")
                    .map(String::as_str)
                    == Some("Kafka")
                {
                    for (port, mtls) in policy.spec.port_level_mtls {
                        found.broker_ports.insert(port, mtls.mode);
                    }
                }
            }
        }
    }
    Ok(found)
}

/// The `pluginConfig` of the `WasmPlugin` named `name` (in `namespace`, when given) in `dir`
/// (Istio's resources), as istiod hands it to the sidecars: the local mesh configures its
/// filters from it.
pub fn wasm_plugin_config(dir: &Path, namespace: Option<&str>, name: &str) -> Result<Value> {
    #[derive(Deserialize)]
    struct Plugin {
        kind: String,
        metadata: Metadata,
        spec: PluginSpec,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct PluginSpec {
        #[serde(default)]
        plugin_config: Value,
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|x| x != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let Ok(plugin) = yaml_serde::from_str::<Plugin>(&text) else {
            continue;
        };
        let in_namespace =
            namespace.is_none_or(|ns| plugin.metadata.namespace.as_deref() == Some(ns));
        if plugin.kind == "WasmPlugin" && plugin.metadata.name == name && in_namespace {
            return Ok(plugin.spec.plugin_config);
        }
    }
    match namespace {
        Some(ns) => bail!("no WasmPlugin {ns}/{name} in {}", dir.display()),
        None => bail!("no WasmPlugin named {name} in {}", dir.display()),
    }
}

/// The identity provider's realm: one file for the chart's Keycloak and the local mesh's.
pub fn default_realm_file() -> PathBuf {
    crate::paths::root().join("charts/test-kafka-istio-mongo/files/keycloak/realm-kiosk.json")
}

/// The project's Istio resources (`istio/`).
pub fn default_istio_dir() -> PathBuf {
    crate::paths::root().join("istio")
}

fn read_bridge(file: &Path, text: &str) -> Result<KafkaBridge> {
    let (metadata, spec): (_, KafkaBridgeSpec) = parse(file, text, "KafkaBridge")?;
    let app = Template::app(&spec.template).unwrap_or_else(|| format!("{}-bridge", metadata.name));
    check_bootstrap(file, &spec.bootstrap_servers)?;
    Ok(KafkaBridge {
        name: metadata.name,
        bootstrap_servers: spec.bootstrap_servers,
        http_port: spec.http.port,
        producer_config: strings(
            file,
            "spec.producer.config",
            spec.producer.map(|p| p.config).unwrap_or_default(),
        )?,
        app,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_with(file: &str, text: &str) -> Result<Bundle> {
        let dir = std::env::temp_dir().join(format!(
            "kiosk-bundle-{}-{}",
            std::process::id(),
            file.replace('.', "-")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        // The bundle's files; its subdirectories (`external/`) are other bundles.
        for entry in std::fs::read_dir(default_dir())? {
            let path = entry?.path();
            if path.is_file() {
                std::fs::copy(&path, dir.join(path.file_name().unwrap()))?;
            }
        }
        std::fs::write(dir.join(file), text)?;
        let read = Bundle::read(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        read
    }

    #[test]
    fn the_projects_bundle_reads() {
        let b = Bundle::read(&default_dir()).unwrap();
        let events = b.topic("events").unwrap();
        assert!(events.partitions >= 1);
        assert_eq!(b.topic("events.mirror").unwrap().name, "events.mirror");
        let sink = b.connector("mongodb-sink").unwrap();
        assert_eq!(sink.class, "com.mongodb.kafka.connect.MongoSinkConnector");
        assert_eq!(sink.topics(), vec!["events.mirror".to_string()]);
        assert_eq!(sink.rest_config()["tasks.max"], "1");
        assert!(
            sink.auto_restart,
            "the sink's task comes back after MongoDB restarts"
        );
        assert_eq!(b.connect.app, "kiosk-connect");
        assert_eq!(
            b.node_pool.pod_annotations["traffic.sidecar.istio.io/excludeInboundPorts"],
            "9090,9091,8443"
        );
        assert!(b.connect.bootstrap_servers.ends_with(":9092"));
        let policies = peer_authentication(&default_istio_dir()).unwrap();
        assert!(policies.strict("pipeline"));
        for topic in [
            &b.connect.config_storage_topic,
            &b.connect.offset_storage_topic,
            &b.connect.status_storage_topic,
        ] {
            b.topic(topic)
                .expect("Connect's internal topics are KafkaTopics");
        }
    }

    /// The local mesh runs what the cluster runs: the Kafka version of the `Kafka` resource
    /// and the connector version the `KafkaConnect` builds are the ones `java/pom.xml` pins,
    /// and the cache directory setup.sh fills is the one the harness reads.
    #[test]
    fn the_java_pins_match_the_bundle() {
        let pom = std::fs::read_to_string(crate::paths::root().join("java/pom.xml")).unwrap();
        let property = |name: &str| {
            let open = format!("<{name}>");
            let start = pom
                .find(&open)
                .unwrap_or_else(|| panic!("{name} in pom.xml"))
                + open.len();
            pom[start..].split('<').next().unwrap().to_string()
        };
        let bundle = Bundle::read(&default_dir()).unwrap();
        let kafka = property("kafka.version");
        assert_eq!(bundle.kafka.version.as_deref(), Some(kafka.as_str()));
        let connector = property("mongo.kafka.connect.version");
        assert_eq!(
            bundle.connect.plugin_artifacts,
            vec![format!("org.mongodb.kafka:mongo-kafka-connect:{connector}")]
        );
        let cache = crate::paths::JAVA_CACHE;
        assert!(
            cache.contains(&kafka) && cache.contains(&connector),
            "{cache}"
        );
        let setup = std::fs::read_to_string(crate::paths::root().join("scripts/setup.sh")).unwrap();
        assert!(
            setup.contains(cache),
            "scripts/setup.sh fills another directory than {cache}"
        );
    }

    #[test]
    fn a_topic_without_partitions_is_refused_naming_file_and_field() {
        let err = bundle_with(
            "kafka-topic-broken.yaml",
            "apiVersion: kafka.strimzi.io/v1\nkind: KafkaTopic\nmetadata:\n  name: broken\nspec:\n  replicas: 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("kafka-topic-broken.yaml"), "{err}");
        assert!(err.contains("partitions"), "{err}");
    }

    #[test]
    fn a_topic_with_zero_partitions_or_a_bad_name_is_refused() {
        let err = bundle_with(
            "kafka-topic-zero.yaml",
            "apiVersion: kafka.strimzi.io/v1\nkind: KafkaTopic\nmetadata:\n  name: zero\nspec:\n  partitions: 0\n  replicas: 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("at least 1"), "{err}");
        let err = bundle_with(
            "kafka-topic-name.yaml",
            "apiVersion: kafka.strimzi.io/v1\nkind: KafkaTopic\nmetadata:\n  name: fine\nspec:\n  topicName: no/slash\n  partitions: 1\n  replicas: 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a legal Kafka topic name"), "{err}");
    }

    #[test]
    fn a_connector_with_a_nested_config_value_or_an_old_api_is_refused() {
        let err = bundle_with(
            "kafka-connector-bad.yaml",
            "apiVersion: kafka.strimzi.io/v1\nkind: KafkaConnector\nmetadata:\n  name: bad\nspec:\n  class: x.Y\n  config:\n    topics: [a, b]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("spec.config.topics"), "{err}");
        let err = bundle_with(
            "kafka-connector-old.yaml",
            "apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaConnector\nmetadata:\n  name: old\nspec:\n  class: x.Y\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("v1beta2"), "{err}");
    }
}
