//! One Wasm VM's state: its configuration, the topic table its connections share, and
//! the metrics they feed. The glue keeps one [`Vm`] per Envoy worker; tests and benches
//! drive it the same way.

use crate::act::sasl::{random_nonce, Credential, Mechanism};
use crate::act::{KafkaAuth, Step};
use crate::config::{Config, Identity, KafkaAuthMechanism};
use crate::decode::topics::Topics;
use crate::exchange::{Connection, Limits};
use crate::metrics::{MetricSink, Metrics};
use crate::wire::Direction;

pub struct Vm {
    config: Config,
    limits: Limits,
    topics: Topics,
    metrics: Metrics,
    /// The credential for `config.kafka_auth` (None: absent from the environment).
    kafka_credential: Option<Credential>,
}

impl Vm {
    pub fn new(config: Config, identity: Identity) -> Self {
        Vm {
            limits: Limits {
                max_frame_bytes: config.max_frame_bytes,
                max_in_flight: config.max_in_flight,
            },
            topics: Topics::new(config.max_topics, &config.topic_overflow_label),
            metrics: Metrics::new(&config, identity),
            config,
            kafka_credential: None,
        }
    }

    /// The credential SASL uses (`config.kafka_auth`), read by the host from the
    /// sidecar's environment.
    pub fn set_kafka_credential(&mut self, credential: Option<Credential>) {
        self.kafka_credential = credential;
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// The topic table, to share topic ids with other VMs (the glue) or to inspect it.
    pub fn topics_mut(&mut self) -> &mut Topics {
        &mut self.topics
    }

    /// A new connection with this VM's limits.
    /// The SASL mechanism the filter performs (`kafka_auth`), if any.
    pub fn kafka_auth_mechanism(&self) -> Option<Mechanism> {
        self.config
            .kafka_auth
            .as_ref()
            .map(|auth| match auth.mechanism {
                KafkaAuthMechanism::ScramSha512 => Mechanism::ScramSha512,
                KafkaAuthMechanism::ScramSha256 => Mechanism::ScramSha256,
                KafkaAuthMechanism::Plain => Mechanism::Plain,
            })
    }

    pub fn open_connection(&mut self) -> Connection {
        let mut conn = Connection::open(self.limits, &mut self.metrics);
        if let Some(mechanism) = self.kafka_auth_mechanism() {
            let nonce = match mechanism {
                Mechanism::Plain => None,
                _ => random_nonce(),
            };
            let credential = self.kafka_credential.clone();
            conn.set_action(Box::new(KafkaAuth::new(mechanism, credential, nonce)));
        }
        conn
    }

    /// Bytes of `direction` handed over whole.
    pub fn on_data(
        &mut self,
        conn: &mut Connection,
        direction: Direction,
        data: &[u8],
        now_ms: u64,
    ) {
        conn.on_data(direction, data, now_ms, &mut self.topics, &mut self.metrics);
    }

    /// Bytes from the client to the broker.
    pub fn on_request_data(&mut self, conn: &mut Connection, data: &[u8], now_ms: u64) {
        self.on_data(conn, Direction::Request, data, now_ms);
    }

    /// Bytes from the broker to the client.
    pub fn on_response_data(&mut self, conn: &mut Connection, data: &[u8], now_ms: u64) {
        self.on_data(conn, Direction::Response, data, now_ms);
    }

    /// One data callback of `size` bytes, read through `read(offset, len)` at most
    /// `window` bytes at a time; what the connection's action asks of the buffers
    /// ([`Connection::on_buffer`]).
    pub fn on_buffer<B: AsRef<[u8]>>(
        &mut self,
        conn: &mut Connection,
        direction: Direction,
        size: usize,
        window: usize,
        now_ms: u64,
        read: impl FnMut(usize, usize) -> Option<B>,
    ) -> Step {
        let (topics, metrics) = (&mut self.topics, &mut self.metrics);
        conn.on_buffer(direction, size, window, now_ms, topics, metrics, read)
    }

    pub fn close(&mut self, conn: &mut Connection) {
        conn.on_close(&mut self.metrics);
    }

    /// Whether metric updates wait to be flushed.
    pub fn is_dirty(&self) -> bool {
        self.metrics.is_dirty()
    }

    /// Hand every pending metric update to `sink`.
    pub fn flush(&mut self, sink: &mut impl MetricSink) {
        self.metrics.flush(&self.topics, sink);
    }

    /// Distinct series rendered so far.
    pub fn series_count(&self) -> usize {
        self.metrics.series_count()
    }
}
