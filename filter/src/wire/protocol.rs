//! Which protocol a filter instance reads.

/// The protocol a filter instance reads (pluginConfig `protocol`; in Istio one
/// WasmPlugin per protocol, matched on the server's port).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize, schemars::JsonSchema,
)]
pub enum Protocol {
    /// The Kafka protocol (a client's connections to brokers).
    #[default]
    #[serde(rename = "kafka")]
    Kafka,
    /// The MongoDB wire protocol (a client's connections to mongod).
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
