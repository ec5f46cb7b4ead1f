//! Configuration: the JSON an Istio `WasmPlugin`'s `pluginConfig` delivers.
//!
//! Every field has a default, so `{}` (or no configuration) is valid. Unknown fields and
//! out-of-range values are refused with an error naming the field: a typo must never be
//! silently ignored.
//!
//! The fields, their ranges and their docs are also the filter's published contract: the
//! JSON Schema in `filter/contract/` and in the kiosk-filter chart is generated from this
//! file (`crate::contract`), and a test fails when a committed copy differs.

use schemars::JsonSchema;
use serde::Deserialize;

pub use crate::wire::Protocol;

/// Inclusive ranges of the numeric fields: validated here, published in the schema.
pub mod range {
    pub const MAX_TOPICS: (u64, u64) = (1, 65_000);
    pub const MAX_LAG_SERIES: (u64, u64) = (0, 1_000_000);
    pub const MAX_FRAME_BYTES: (u64, u64) = (1024, i32::MAX as u64);
    pub const MAX_IN_FLIGHT: (u64, u64) = (1, 65_536);
    pub const FLUSH_INTERVAL_MS: (u64, u64) = (100, 3_600_000);
    pub const READ_WINDOW_BYTES: (u64, u64) = (64, 16 << 20);
}

/// The kiosk filter's configuration (a WasmPlugin's `pluginConfig`).
#[derive(Clone, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The protocol this filter reads: `kafka`, or `mongodb` for a WasmPlugin matched on
    /// MongoDB's port.
    pub protocol: Protocol,
    /// Distinct `topic` label values per Wasm VM; further topics are reported as
    /// `topic_overflow_label`. Envoy never deletes a stat, so this bounds its memory.
    #[schemars(range(min = range::MAX_TOPICS.0, max = range::MAX_TOPICS.1))]
    pub max_topics: usize,
    /// The label value for topics beyond `max_topics`.
    #[schemars(length(min = 1))]
    pub topic_overflow_label: String,
    /// Distinct (topic, partition[, client]) consumer-lag gauges per VM.
    #[schemars(range(min = range::MAX_LAG_SERIES.0, max = range::MAX_LAG_SERIES.1))]
    pub max_lag_series: usize,
    /// Add `client_id` to every series (at most 100 distinct ids).
    pub client_id_label: bool,
    /// A larger Kafka size prefix means the stream is not Kafka: decoding stops for the
    /// connection, bytes keep flowing.
    #[schemars(range(min = range::MAX_FRAME_BYTES.0, max = range::MAX_FRAME_BYTES.1))]
    pub max_frame_bytes: u32,
    /// Requests remembered per connection while awaiting responses (oldest evicted).
    #[schemars(range(min = range::MAX_IN_FLIGHT.0, max = range::MAX_IN_FLIGHT.1))]
    pub max_in_flight: usize,
    /// How often batched metric updates reach Envoy's stats.
    #[schemars(range(min = range::FLUSH_INTERVAL_MS.0, max = range::FLUSH_INTERVAL_MS.1))]
    pub flush_interval_ms: u64,
    /// Most bytes copied from Envoy's buffer into the VM per read; record bodies are
    /// passed over without being copied, so this only bounds how much of a batch is read
    /// with its header.
    #[schemars(range(min = range::READ_WINDOW_BYTES.0, max = range::READ_WINDOW_BYTES.1))]
    pub read_window_bytes: usize,
    /// Count produced records per topic by the schema id their value starts with (the
    /// Confluent wire format: magic byte 0, a 4-byte big-endian id):
    /// `kafka_produced_records_by_schema_total{topic,schema}`, `schema` the id, `none`
    /// (no such prefix), `compressed` (a compressed batch: never decompressed) or `other`
    /// (beyond 100 distinct ids). Off by default: it reads every uncompressed record's
    /// head and its value's first five bytes, an uncompressed batch's records in reads of
    /// 16 KiB (in place of `read_window_bytes`; fewer reads cost Envoy less).
    pub records_by_schema: bool,
    /// The graph edges for Kiali.
    pub kiali: Kiali,
    /// Overrides node metadata `WORKLOAD_NAME`.
    pub workload: Option<String>,
    /// Overrides node metadata `NAMESPACE`.
    pub namespace: Option<String>,
    /// Overrides node metadata `LABELS.app`.
    pub app: Option<String>,
    /// Overrides node metadata `CLUSTER_ID`.
    pub cluster: Option<String>,
    /// SASL performed by the filter on the app's behalf, for brokers that require it
    /// (absent: the filter only observes). The credential comes from the sidecar's
    /// environment, never from this configuration.
    pub kafka_auth: Option<KafkaAuth>,
    /// MongoDB authentication performed by the filter on the app's behalf (with
    /// `protocol: mongodb`; absent: the filter only observes).
    pub mongodb_auth: Option<MongoDbAuth>,
}

/// MongoDB authentication on the app's behalf: the filter authenticates each connection
/// before the app's first message reaches the server and removes the replies; a refused
/// connection is closed and counted.
#[derive(Clone, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MongoDbAuth {
    /// The mechanism. `MONGODB-X509`: the identity is the client certificate the
    /// sidecar's TLS presents (a DestinationRule `MUTUAL`); no secret reaches the filter.
    /// `SCRAM-SHA-256`: a password user, the credential from the sidecar's environment.
    pub mechanism: MongoDbAuthMechanism,
    /// SCRAM: the environment variable holding the username (a WasmPlugin `vmConfig.env`
    /// entry with `valueFrom: HOST`).
    #[serde(default = "default_mongodb_username_env")]
    #[schemars(length(min = 1))]
    pub username_env: String,
    /// SCRAM: the environment variable holding the password.
    #[serde(default = "default_mongodb_password_env")]
    #[schemars(length(min = 1))]
    pub password_env: String,
    /// SCRAM: the database the user is defined in (the driver's `authSource`).
    #[serde(default = "default_auth_database")]
    #[schemars(length(min = 1))]
    pub auth_database: String,
    /// The MongoDB servers the filter authenticates toward; a connection to any other
    /// upstream passes untouched (counted as `skipped`, `upstream_not_allowed`).
    /// Required with `SCRAM-SHA-256`, whose proof must go only to the real server; with
    /// `MONGODB-X509` the filter sends no secret (the certificate is the DestinationRule's,
    /// for its host only), and the list, if given, is checked all the same.
    #[serde(default)]
    pub upstreams: Upstreams,
}

/// The MongoDB mechanisms the filter performs.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum MongoDbAuthMechanism {
    #[serde(rename = "MONGODB-X509")]
    X509,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
}

impl MongoDbAuthMechanism {
    pub const fn name(self) -> &'static str {
        match self {
            MongoDbAuthMechanism::X509 => "MONGODB-X509",
            MongoDbAuthMechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }
}

fn default_mongodb_username_env() -> String {
    "KIOSK_MONGODB_USERNAME".into()
}

fn default_mongodb_password_env() -> String {
    "KIOSK_MONGODB_PASSWORD".into()
}

fn default_auth_database() -> String {
    "admin".into()
}

/// SASL on the app's behalf: the filter authenticates each connection before the app's
/// first request (other than ApiVersions) reaches the broker; an app that does its own
/// SASL passes untouched.
#[derive(Clone, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KafkaAuth {
    /// The SASL mechanism.
    pub mechanism: KafkaAuthMechanism,
    /// The environment variable holding the username (in Istio, a WasmPlugin
    /// `vmConfig.env` entry with `valueFrom: HOST`).
    #[serde(default = "default_username_env")]
    #[schemars(length(min = 1))]
    pub username_env: String,
    /// The environment variable holding the password (same path as the username).
    #[serde(default = "default_password_env")]
    #[schemars(length(min = 1))]
    pub password_env: String,
    /// The brokers the credential may go to. A WasmPlugin matches ports by number only,
    /// so an app selected by it may dial any service on those ports: the filter sends
    /// the credential only to these upstreams, and a connection to any other passes
    /// untouched (counted as `skipped`, `upstream_not_allowed`). Required.
    #[serde(default)]
    pub upstreams: Upstreams,
}

/// The upstreams an authentication may go to: the filter checks the connection's
/// upstream, as Envoy connected it, before it sends anything of a credential. An
/// upstream is allowed when its identity matches one of `principals`, its certificate's
/// DNS name one of `dns_names`, or its Envoy cluster one of `clusters`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Upstreams {
    /// Identities the upstream proved in the sidecar's mTLS handshake, in the form of
    /// Istio's AuthorizationPolicy `principals`: the URI SAN of the upstream's
    /// certificate without `spiffe://`, e.g. `cluster.local/ns/kafka/sa/kiosk-kafka`
    /// (Strimzi's broker pods run as `<cluster>-kafka`). `x*` matches a prefix, `*x` a
    /// suffix, `*` any proven identity.
    pub principals: Vec<String>,
    /// DNS names the upstream proved in the TLS the sidecar originates (a DestinationRule
    /// `SIMPLE` or `MUTUAL` to a server outside the mesh, e.g. an external Kafka): the
    /// first DNS SAN of the certificate it presented, which the sidecar verified against
    /// its CA. `*.example.com` matches any name ending in `.example.com`. A connection
    /// without upstream TLS has no DNS name: for servers outside the mesh, prefer this to
    /// `clusters`, which a missing DestinationRule would still match in plaintext.
    pub dns_names: Vec<String>,
    /// Envoy cluster names of the upstream (Istio's
    /// `outbound|9092||kiosk-kafka-bootstrap.kafka.svc.cluster.local`), with the same
    /// wildcards: for upstreams without mTLS. The cluster is Envoy's routing decision,
    /// not a proof of who answers: prefer `principals` where the mesh has mTLS.
    pub clusters: Vec<String>,
}

impl Upstreams {
    pub fn is_empty(&self) -> bool {
        self.principals.is_empty() && self.dns_names.is_empty() && self.clusters.is_empty()
    }

    /// Whether an upstream with this proven `principal` (its URI SAN, `spiffe://`
    /// included), proven `dns_name` (its first DNS SAN) and Envoy `cluster` may receive
    /// the credential.
    pub fn allows(
        &self,
        principal: Option<&str>,
        dns_name: Option<&str>,
        cluster: Option<&str>,
    ) -> bool {
        let principal = principal.and_then(|p| p.strip_prefix("spiffe://"));
        let matches = |patterns: &[String], value: Option<&str>| {
            value.is_some_and(|v| patterns.iter().any(|p| wildcard_match(p, v)))
        };
        matches(&self.principals, principal)
            || matches(&self.dns_names, dns_name)
            || matches(&self.clusters, cluster)
    }

    fn validate(&self, field: &str, required: bool) -> Result<(), ConfigError> {
        if required && self.is_empty() {
            return Err(ConfigError(format!(
                "field `{field}`: name the upstreams the credential may go to (`principals`, \
                 `dns_names`, `clusters`): a WasmPlugin matches ports by number, so any \
                 service on them would receive it"
            )));
        }
        for (list, patterns) in [
            ("principals", &self.principals),
            ("dns_names", &self.dns_names),
            ("clusters", &self.clusters),
        ] {
            for pattern in patterns {
                let bad = if pattern.is_empty() {
                    Some("must not be empty")
                } else if pattern.len() > 1 && pattern[1..pattern.len() - 1].contains('*') {
                    Some("`*` only at the start or the end")
                } else if list == "principals" && pattern.starts_with("spiffe://") {
                    Some("a principal is written without `spiffe://`, as in AuthorizationPolicy")
                } else {
                    None
                };
                if let Some(why) = bad {
                    return Err(ConfigError(format!(
                        "field `{field}.{list}`: `{pattern}`: {why}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Istio's string match: exact, `x*` a prefix, `*x` a suffix, `*` anything.
fn wildcard_match(pattern: &str, value: &str) -> bool {
    if pattern == "*" {
        true
    } else if let Some(prefix) = pattern.strip_suffix('*') {
        value.starts_with(prefix)
    } else if let Some(suffix) = pattern.strip_prefix('*') {
        value.ends_with(suffix)
    } else {
        pattern == value
    }
}

/// The SASL mechanisms the filter performs.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum KafkaAuthMechanism {
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "PLAIN")]
    Plain,
}

fn default_username_env() -> String {
    "KIOSK_KAFKA_USERNAME".into()
}

fn default_password_env() -> String {
    "KIOSK_KAFKA_PASSWORD".into()
}

/// The graph-edge series for Kiali.
#[derive(Clone, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Kiali {
    /// Emit the graph-edge series (Kiali Extensions and Istio-shaped TCP).
    pub enabled: bool,
    /// The Kiali CR's `spec.extensions[].name`.
    #[schemars(length(min = 1))]
    pub extension: String,
    /// The namespace shown for topic nodes (your Kafka cluster's).
    #[schemars(length(min = 1))]
    pub topic_namespace: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            protocol: Protocol::Kafka,
            max_topics: 500,
            topic_overflow_label: "_other".into(),
            max_lag_series: 5000,
            client_id_label: false,
            max_frame_bytes: 128 << 20,
            max_in_flight: 256,
            flush_interval_ms: 1000,
            read_window_bytes: 1024,
            records_by_schema: false,
            kiali: Kiali::default(),
            workload: None,
            namespace: None,
            app: None,
            cluster: None,
            kafka_auth: None,
            mongodb_auth: None,
        }
    }
}

impl Default for Kiali {
    fn default() -> Self {
        Kiali {
            enabled: true,
            extension: "kafka".into(),
            topic_namespace: "kafka".into(),
        }
    }
}

/// A configuration that cannot be used; the message names the field.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid kiosk configuration: {}", self.0)
    }
}

impl Config {
    /// Parse and validate. Empty input means all defaults.
    pub fn from_json(json: &[u8]) -> Result<Config, ConfigError> {
        if json.iter().all(u8::is_ascii_whitespace) {
            return Ok(Config::default());
        }
        // serde would also read a struct from a JSON array, positionally: refuse it.
        if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ConfigError("expected a JSON object".into()));
        }
        let de = &mut serde_json::Deserializer::from_slice(json);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                ConfigError(e.inner().to_string())
            } else {
                ConfigError(format!("field `{path}`: {}", e.inner()))
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let within = |field: &str, value: u64, (min, max): (u64, u64)| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError(format!(
                    "field `{field}`: {value} is outside {min}..={max}"
                )))
            }
        };
        within("max_topics", self.max_topics as u64, range::MAX_TOPICS)?;
        let lag_series = self.max_lag_series as u64;
        within("max_lag_series", lag_series, range::MAX_LAG_SERIES)?;
        let frame = u64::from(self.max_frame_bytes);
        within("max_frame_bytes", frame, range::MAX_FRAME_BYTES)?;
        let in_flight = self.max_in_flight as u64;
        within("max_in_flight", in_flight, range::MAX_IN_FLIGHT)?;
        let flush = self.flush_interval_ms;
        within("flush_interval_ms", flush, range::FLUSH_INTERVAL_MS)?;
        let window = self.read_window_bytes as u64;
        within("read_window_bytes", window, range::READ_WINDOW_BYTES)?;
        let wrong_protocol = match self.protocol {
            Protocol::Kafka if self.mongodb_auth.is_some() => Some("mongodb_auth"),
            Protocol::MongoDb if self.kafka_auth.is_some() => Some("kafka_auth"),
            Protocol::MongoDb if self.records_by_schema => Some("records_by_schema"),
            _ => None,
        };
        if let Some(field) = wrong_protocol {
            return Err(ConfigError(format!(
                "field `{field}`: not for `protocol: {}`",
                self.protocol.name()
            )));
        }
        let auth = self.kafka_auth.as_ref();
        let (user_env, password_env) = (
            auth.map_or("-", |a| a.username_env.as_str()),
            auth.map_or("-", |a| a.password_env.as_str()),
        );
        let mongo = self.mongodb_auth.as_ref();
        let (mongo_user_env, mongo_password_env, auth_database) = (
            mongo.map_or("-", |a| a.username_env.as_str()),
            mongo.map_or("-", |a| a.password_env.as_str()),
            mongo.map_or("-", |a| a.auth_database.as_str()),
        );
        for (field, value) in [
            ("topic_overflow_label", self.topic_overflow_label.as_str()),
            ("kiali.extension", &self.kiali.extension),
            ("kiali.topic_namespace", &self.kiali.topic_namespace),
            ("kafka_auth.username_env", user_env),
            ("kafka_auth.password_env", password_env),
            ("mongodb_auth.username_env", mongo_user_env),
            ("mongodb_auth.password_env", mongo_password_env),
            ("mongodb_auth.auth_database", auth_database),
        ] {
            if value.is_empty() {
                return Err(ConfigError(format!("field `{field}`: must not be empty")));
            }
        }
        if let Some(auth) = auth {
            auth.upstreams.validate("kafka_auth.upstreams", true)?;
        }
        if let Some(auth) = mongo {
            let scram = auth.mechanism == MongoDbAuthMechanism::ScramSha256;
            auth.upstreams.validate("mongodb_auth.upstreams", scram)?;
        }
        Ok(())
    }
}

/// Who this sidecar is: Istio's node metadata NAMESPACE, WORKLOAD_NAME, LABELS.app and
/// CLUSTER_ID, sanitized for labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub namespace: String,
    pub workload: String,
    pub app: String,
    pub cluster: String,
}

impl Identity {
    /// From node metadata values (`None` when absent), with configuration overrides.
    /// Istio's own defaults apply to what is missing: `unknown`, and cluster `Kubernetes`.
    pub fn resolve(
        config: &Config,
        namespace: Option<String>,
        workload: Option<String>,
        app: Option<String>,
        cluster: Option<String>,
    ) -> Identity {
        let pick = |over: &Option<String>, meta: Option<String>, default: &str| {
            let raw = over.clone().or(meta).filter(|v| !v.is_empty());
            crate::labels::sanitize(raw.as_deref().unwrap_or(default).as_bytes())
        };
        let workload = pick(&config.workload, workload, "unknown");
        Identity {
            namespace: pick(&config.namespace, namespace, "unknown"),
            app: pick(&config.app, app, &workload),
            workload,
            cluster: pick(&config.cluster, cluster, "Kubernetes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_defaults() {
        assert_eq!(Config::from_json(b"").unwrap(), Config::default());
        assert_eq!(Config::from_json(b"{}").unwrap(), Config::default());
        let c =
            Config::from_json(br#"{"max_topics": 5, "kiali": {"topic_namespace": "kafka-prod"}}"#)
                .unwrap();
        assert_eq!(c.max_topics, 5);
        assert_eq!(c.kiali.topic_namespace, "kafka-prod");
        assert!(c.kiali.enabled);
    }

    #[test]
    fn errors_name_the_field() {
        let err = |json: &str| Config::from_json(json.as_bytes()).unwrap_err().0;
        assert!(err(r#"{"max_topic": 5}"#).contains("unknown field `max_topic`"));
        assert!(err(r#"{"max_topics": "many"}"#).contains("field `max_topics`"));
        assert!(err(r#"{"max_topics": 0}"#).contains("field `max_topics`"));
        let nested = err(r#"{"kiali": {"enable": true}}"#);
        assert!(
            nested.contains("kiali") && nested.contains("unknown field `enable`"),
            "{nested}"
        );
        assert!(err(r#"{"kiali": {"extension": ""}}"#).contains("field `kiali.extension`"));
        assert!(err(r#"{"flush_interval_ms": 1}"#).contains("flush_interval_ms"));
        assert!(err("[1]").contains("expected a JSON object"));
        let wrong = err(
            r#"{"mongodb_auth": {"mechanism": "MONGODB-X509", "upstreams": {"clusters": ["*"]}}}"#,
        );
        assert!(
            wrong.contains("`mongodb_auth`: not for `protocol: kafka`"),
            "{wrong}"
        );
        assert!(err(r#"{"protocol": "mysql"}"#).contains("field `protocol`"));
        let schemas = err(r#"{"protocol": "mongodb", "records_by_schema": true}"#);
        assert!(schemas.contains("`records_by_schema`: not for `protocol: mongodb`"));
        let mongo = r#"{"protocol": "mongodb", "mongodb_auth": {"mechanism": "MONGODB-X509",
            "upstreams": {"principals": ["cluster.local/ns/pipeline/sa/mongodb"]}}}"#;
        let c = Config::from_json(mongo.as_bytes()).unwrap();
        assert_eq!(c.protocol, Protocol::MongoDb);
        assert!(err("{").contains("EOF"));
    }

    #[test]
    fn a_credential_names_the_upstreams_it_may_go_to() {
        let err = |json: &str| Config::from_json(json.as_bytes()).unwrap_err().0;
        for json in [
            r#"{"kafka_auth": {"mechanism": "PLAIN"}}"#,
            r#"{"kafka_auth": {"mechanism": "PLAIN", "upstreams": {}}}"#,
            r#"{"protocol": "mongodb", "mongodb_auth": {"mechanism": "SCRAM-SHA-256"}}"#,
        ] {
            let missing = err(json);
            assert!(
                missing.contains("auth.upstreams`: name the upstreams"),
                "{missing}"
            );
        }
        let spiffe = r#"{"kafka_auth": {"mechanism": "PLAIN",
            "upstreams": {"principals": ["spiffe://cluster.local/ns/kafka/sa/kiosk-kafka"]}}}"#;
        assert!(err(spiffe).contains("without `spiffe://`"));
        let middle = r#"{"kafka_auth": {"mechanism": "PLAIN",
            "upstreams": {"clusters": ["outbound|9092||*.kafka.svc"]}}}"#;
        assert!(err(middle).contains("`*` only at the start or the end"));
        // X.509 sends no secret: the list is optional.
        let x509 = r#"{"protocol": "mongodb", "mongodb_auth": {"mechanism": "MONGODB-X509"}}"#;
        assert!(Config::from_json(x509.as_bytes()).is_ok());
    }

    #[test]
    fn upstreams_match_as_istio_matches_principals() {
        let upstreams = Upstreams {
            principals: vec![
                "cluster.local/ns/kafka/sa/kiosk-kafka".into(),
                "cluster.local/ns/tenant-a/*".into(),
            ],
            dns_names: vec![],
            clusters: vec!["*|9092||kafka.external.example".into()],
        };
        let allows = |p: Option<&str>, c: Option<&str>| upstreams.allows(p, None, c);
        assert!(allows(
            Some("spiffe://cluster.local/ns/kafka/sa/kiosk-kafka"),
            None
        ));
        assert!(allows(
            Some("spiffe://cluster.local/ns/tenant-a/sa/anything"),
            None
        ));
        assert!(allows(None, Some("outbound|9092||kafka.external.example")));
        // Another identity, the right name without `spiffe://` (not a proof), a prefix
        // of the identity, no identity at all.
        assert!(!allows(
            Some("spiffe://cluster.local/ns/pipeline/sa/decoy"),
            Some("outbound|9092||decoy.pipeline.svc.cluster.local")
        ));
        assert!(!allows(Some("cluster.local/ns/kafka/sa/kiosk-kafka"), None));
        assert!(!allows(
            Some("spiffe://cluster.local/ns/kafka/sa/kiosk-kafka-extra"),
            None
        ));
        assert!(!allows(None, None));
        let any = Upstreams {
            principals: vec!["*".into()],
            ..Upstreams::default()
        };
        assert!(any.allows(Some("spiffe://x/ns/y/sa/z"), None, None));
        assert!(!any.allows(None, None, Some("PassthroughCluster")));
    }

    #[test]
    fn dns_names_match_the_certificate_the_upstream_proved() {
        let external = Upstreams {
            dns_names: vec!["kafka.external.example".into(), "*.brokers.example".into()],
            ..Upstreams::default()
        };
        let cluster = Some("outbound|9096||kafka.external.example");
        assert!(external.allows(None, Some("kafka.external.example"), cluster));
        assert!(external.allows(None, Some("b-1.brokers.example"), None));
        // A certificate with a wildcard name, as some managed Kafkas present.
        assert!(external.allows(None, Some("*.brokers.example"), None));
        // Plaintext (no DestinationRule: no TLS, no DNS name) through the right cluster,
        // another name, a longer name that merely starts alike, a SPIFFE identity.
        assert!(!external.allows(None, None, cluster));
        assert!(!external.allows(None, Some("kafka.external.example.evil"), cluster));
        assert!(!external.allows(None, Some("brokers.example"), None));
        assert!(!external.allows(Some("spiffe://cluster.local/ns/x/sa/y"), None, cluster));
        let config = r#"{"kafka_auth": {"mechanism": "SCRAM-SHA-512",
            "upstreams": {"dns_names": ["kafka.external.example"]}}}"#;
        assert!(Config::from_json(config.as_bytes()).is_ok());
        let empty = r#"{"kafka_auth": {"mechanism": "SCRAM-SHA-512",
            "upstreams": {"dns_names": [""]}}}"#;
        assert!(Config::from_json(empty.as_bytes()).is_err());
    }

    #[test]
    fn identity_prefers_overrides_then_metadata_then_defaults() {
        let mut c = Config::default();
        let id = Identity::resolve(&c, Some("shop".into()), Some("mirror".into()), None, None);
        assert_eq!(
            (id.namespace.as_str(), id.workload.as_str(), id.app.as_str()),
            ("shop", "mirror", "mirror")
        );
        assert_eq!(id.cluster, "Kubernetes");
        c.workload = Some("w".into());
        assert_eq!(
            Identity::resolve(&c, None, Some("x".into()), None, None).workload,
            "w"
        );
    }
}
