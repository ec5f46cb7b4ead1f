//! Configuration: the JSON an Istio `WasmPlugin`'s `pluginConfig` delivers.
//!
//! Every field has a default, so `{}` (or no configuration) is valid. Unknown fields and
//! out-of-range values are refused with an error naming the field: a typo must never be
//! silently ignored.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Distinct topic label values per Wasm VM; further topics are reported as
    /// `topic_overflow_label`. Envoy never deletes a stat, so this bounds memory.
    pub max_topics: usize,
    /// The label value for topics beyond `max_topics`.
    pub topic_overflow_label: String,
    /// Distinct (topic, partition) consumer-lag gauges per VM.
    pub max_lag_series: usize,
    /// Label every series with the Kafka client id (at most 100 distinct ids).
    pub client_id_label: bool,
    /// Largest Kafka frame decoded; a larger size prefix means the stream is not Kafka
    /// (or is corrupt) and decoding stops for that connection. Bytes still pass.
    pub max_frame_bytes: u32,
    /// Requests remembered per connection while waiting for responses.
    pub max_in_flight: usize,
    /// How often metric updates are flushed to Envoy's stats.
    pub flush_interval_ms: u64,
    /// Most bytes copied from Envoy's buffer into the VM per read. Record bodies are never
    /// copied; this bounds how much of one is read along with the header before it.
    pub read_window_bytes: usize,
    pub kiali: Kiali,
    /// Overrides of the identity read from Envoy's node metadata.
    pub workload: Option<String>,
    pub namespace: Option<String>,
    pub app: Option<String>,
    pub cluster: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Kiali {
    /// Emit the graph-edge series (Kiali Extensions and Istio-shaped TCP).
    pub enabled: bool,
    /// The Kiali CR's `spec.extensions[].name`.
    pub extension: String,
    /// Namespace shown for topic nodes (the Kafka cluster's namespace).
    pub topic_namespace: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_topics: 500,
            topic_overflow_label: "_other".into(),
            max_lag_series: 5000,
            client_id_label: false,
            max_frame_bytes: 128 << 20,
            max_in_flight: 256,
            flush_interval_ms: 1000,
            read_window_bytes: 1024,
            kiali: Kiali::default(),
            workload: None,
            namespace: None,
            app: None,
            cluster: None,
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
        let range = |field: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError(format!(
                    "field `{field}`: {value} is outside {min}..={max}"
                )))
            }
        };
        range("max_topics", self.max_topics as u64, 1, 65_000)?;
        range("max_lag_series", self.max_lag_series as u64, 0, 1_000_000)?;
        range(
            "max_frame_bytes",
            u64::from(self.max_frame_bytes),
            1024,
            i32::MAX as u64,
        )?;
        range("max_in_flight", self.max_in_flight as u64, 1, 65_536)?;
        range("flush_interval_ms", self.flush_interval_ms, 100, 3_600_000)?;
        range(
            "read_window_bytes",
            self.read_window_bytes as u64,
            64,
            16 << 20,
        )?;
        for (field, value) in [
            ("topic_overflow_label", &self.topic_overflow_label),
            ("kiali.extension", &self.kiali.extension),
            ("kiali.topic_namespace", &self.kiali.topic_namespace),
        ] {
            if value.is_empty() {
                return Err(ConfigError(format!("field `{field}`: must not be empty")));
            }
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
        assert!(err("{").contains("EOF"));
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
