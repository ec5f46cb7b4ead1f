//! Which protocol a filter instance reads.

/// The protocol a filter instance reads (pluginConfig `protocol`; in Istio one
/// WasmPlugin per protocol, matched on the server's port): Kafka (a client's connections
/// to brokers) or the MongoDB wire protocol (a client's connections to mongod).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub enum Protocol {
    #[default]
    #[serde(rename = "kafka")]
    Kafka,
    #[serde(rename = "mongodb")]
    MongoDb,
}

impl Protocol {
    /// The metric name prefix.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Kafka => "kafka",
            Protocol::MongoDb => "mongodb",
        }
    }
}
