//! One Wasm VM's state: its configuration, the topic table its connections share, and
//! the metrics they feed. The glue keeps one [`Vm`] per Envoy worker; tests and benches
//! drive it the same way.

use crate::act::sasl::{random_nonce, Credential, Mechanism, SaltedPasswords};
use crate::act::{KafkaAuth, MongoDbAuth, Step, Upstream};
use crate::config::{Config, Identity, KafkaAuthMechanism, MongoDbAuthMechanism, Protocol};
use crate::decode::topics::Topics;
use crate::exchange::{Connection, Settings};
use crate::metrics::{MetricSink, Metrics};
use crate::wire::Direction;

pub struct Vm {
    config: Config,
    settings: Settings,
    topics: Topics,
    metrics: Metrics,
    /// The credential for `config.kafka_auth` (None: absent from the environment).
    kafka_credential: Option<Credential>,
    /// The credential for a SCRAM `config.mongodb_auth` (None: absent).
    mongodb_credential: Option<Credential>,
    /// SCRAM's salted passwords of the VM's credential, shared by its connections.
    salted: SaltedPasswords,
}

impl Vm {
    pub fn new(config: Config, identity: Identity) -> Self {
        Vm {
            settings: Settings {
                max_frame_bytes: config.max_frame_bytes,
                max_in_flight: config.max_in_flight,
                record_values: config.records_by_schema,
            },
            topics: Topics::new(config.max_topics, &config.topic_overflow_label),
            metrics: Metrics::new(&config, identity),
            config,
            kafka_credential: None,
            mongodb_credential: None,
            salted: SaltedPasswords::default(),
        }
    }

    /// The credential SASL uses (`config.kafka_auth`), read by the host from the
    /// sidecar's environment.
    pub fn set_kafka_credential(&mut self, credential: Option<Credential>) {
        self.kafka_credential = credential;
        self.salted = SaltedPasswords::default();
    }

    /// The credential of a SCRAM `mongodb_auth`, read by the host from the sidecar's
    /// environment.
    pub fn set_mongodb_credential(&mut self, credential: Option<Credential>) {
        self.mongodb_credential = credential;
        self.salted = SaltedPasswords::default();
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

    /// A new connection with this VM's protocol, settings and action.
    pub fn open_connection(&mut self) -> Connection {
        let protocol = self.config.protocol;
        let mut conn = Connection::open(protocol, self.settings, &mut self.metrics);
        if let Some(auth) = self.config.mongodb_auth.as_ref() {
            let action = match auth.mechanism {
                MongoDbAuthMechanism::X509 => MongoDbAuth::x509(),
                MongoDbAuthMechanism::ScramSha256 => {
                    let credential = self.mongodb_credential.clone();
                    let salted = self.salted.clone();
                    MongoDbAuth::scram_sha256(
                        credential,
                        random_nonce(),
                        &auth.auth_database,
                        salted,
                    )
                }
            };
            conn.set_action(Box::new(action));
        }
        if let Some(mechanism) = self
            .kafka_auth_mechanism()
            .filter(|_| protocol == Protocol::Kafka)
        {
            let nonce = match mechanism {
                Mechanism::Plain => None,
                _ => random_nonce(),
            };
            let credential = self.kafka_credential.clone();
            let auth =
                KafkaAuth::new(mechanism, credential, nonce).with_salted(self.salted.clone());
            conn.set_action(Box::new(auth));
        }
        conn
    }

    /// The upstream of `conn`, as the host tells it before the first bytes are read:
    /// whether the upstream leg is mesh mTLS, and whether the configured authentication
    /// may go to it. If not, the connection's action is dropped before it sent
    /// anything (counted as `skipped`, `upstream_not_allowed`); returns false then.
    pub fn on_upstream(&mut self, conn: &mut Connection, upstream: &Upstream) -> bool {
        conn.set_secure(upstream.is_mesh_mtls());
        // Configuration requires the list wherever a secret is sent (Kafka SASL, MongoDB
        // SCRAM); MongoDB X.509 sends none and checks the list only if given.
        let allowed = match self.config.protocol {
            Protocol::Kafka => self.config.kafka_auth.as_ref().map(|a| &a.upstreams),
            Protocol::MongoDb => self.config.mongodb_auth.as_ref().map(|a| &a.upstreams),
        };
        let principal = upstream.principal.as_deref();
        match allowed.filter(|u| !u.is_empty()) {
            Some(upstreams)
                if !upstreams.allows(
                    principal,
                    upstream.dns_name.as_deref(),
                    upstream.cluster.as_deref(),
                ) =>
            {
                !conn.withhold_action("upstream_not_allowed", &mut self.metrics)
            }
            _ => true,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::mongodb_auth::{authenticate, AUTH_REQUEST_ID};
    use crate::decode::mongodb::test_messages::{op_msg, op_query, op_reply};
    use crate::metrics::Totalizer;
    use bson::{doc, Document};

    fn vm(json: &str) -> Vm {
        let config = Config::from_json(json.as_bytes()).unwrap();
        let id = Identity::resolve(
            &config,
            Some("pipeline".into()),
            Some("verify".into()),
            None,
            None,
        );
        Vm::new(config, id)
    }

    /// A driver's session: the legacy handshake, an insert of 50 documents in a document
    /// sequence, a find whose reply carries them, a failed insert, an unacknowledged
    /// write (no reply), and an exhaust-style getMore answered twice.
    fn session() -> (Vec<u8>, Vec<u8>) {
        let docs: Vec<Document> = (0..50)
            .map(|i| doc! { "_id": i, "v": "x".repeat(200) })
            .collect();
        let requests = [
            op_query(
                1,
                "admin.$cmd",
                &doc! { "isMaster": 1, "client": { "app": "verify" } },
            ),
            op_msg(
                2,
                0,
                &doc! { "insert": "events", "ordered": true, "$db": "pipeline" },
                Some(("documents", &docs)),
                false,
            ),
            op_msg(
                3,
                0,
                &doc! { "find": "events", "filter": {}, "$db": "pipeline" },
                None,
                true,
            ),
            op_msg(
                4,
                0,
                &doc! { "insert": "events", "$db": "pipeline" },
                Some(("documents", &docs[..1])),
                false,
            ),
            {
                let mut m = op_msg(
                    5,
                    0,
                    &doc! { "delete": "old", "$db": "pipeline" },
                    None,
                    false,
                );
                m[16] = 2; // moreToCome: no reply
                m
            },
            op_msg(
                6,
                0,
                &doc! { "getMore": 9i64, "collection": "events", "$db": "pipeline" },
                None,
                false,
            ),
        ]
        .concat();
        let mut exhaust = op_msg(
            15,
            6,
            &doc! { "cursor": { "nextBatch": [] }, "ok": 1.0 },
            None,
            false,
        );
        exhaust[16] = 2;
        let responses = [
            op_reply(11, 1, &doc! { "ismaster": true, "ok": 1.0 }),
            op_msg(12, 2, &doc! { "n": 50, "ok": 1.0 }, None, false),
            op_msg(
                13,
                3,
                &doc! { "cursor": { "firstBatch": docs.clone(), "id": 0i64 }, "ok": 1.0 },
                None,
                false,
            ),
            op_msg(
                14,
                4,
                &doc! { "ok": 0.0, "errmsg": "dup", "code": 11000 },
                None,
                false,
            ),
            exhaust,
            op_msg(
                16,
                6,
                &doc! { "cursor": { "nextBatch": [] }, "ok": 1.0 },
                None,
                false,
            ),
        ]
        .concat();
        (requests, responses)
    }

    /// Feed both directions split at `cut`, `window` bytes a read; the bytes that reach
    /// each side, and the metrics.
    fn run(
        vm: &mut Vm,
        requests: &[u8],
        responses: &[u8],
        cut: usize,
        window: usize,
    ) -> (Vec<u8>, Vec<u8>, Totalizer, usize) {
        let mut conn = vm.open_connection();
        let (mut to_server, mut to_app, mut read) = (Vec::new(), Vec::new(), 0);
        for (direction, bytes) in [
            (Direction::Request, requests),
            (Direction::Response, responses),
        ] {
            let (a, b) = bytes.split_at(cut.min(bytes.len()));
            for part in [a, b] {
                let step = vm.on_buffer(&mut conn, direction, part.len(), window, 7, |at, len| {
                    read += len;
                    part.get(at..at + len)
                });
                let passed = &part[step.take.min(part.len())..];
                match direction {
                    Direction::Request => to_server.extend([&step.send()[..], passed].concat()),
                    Direction::Response => to_app.extend_from_slice(passed),
                }
            }
        }
        vm.close(&mut conn);
        let mut sink = Totalizer::default();
        vm.flush(&mut sink);
        (to_server, to_app, sink, read)
    }

    #[test]
    fn a_mongodb_session_is_counted_by_command_collection_and_error() {
        let (requests, responses) = session();
        for cut in (0..requests.len().max(responses.len())).step_by(37) {
            let mut vm = vm(r#"{"protocol": "mongodb"}"#);
            let (to_server, to_app, t, read) = run(&mut vm, &requests, &responses, cut, 64);
            assert_eq!(
                (to_server, to_app),
                (requests.clone(), responses.clone()),
                "observing changes nothing"
            );
            let commands = |c: &str, coll: &str| {
                t.counter(
                    "mongodb_commands_total",
                    &[("command", c), ("collection", coll)],
                )
            };
            assert_eq!(commands("isMaster", ""), 1, "cut {cut}");
            assert_eq!(commands("insert", "pipeline.events"), 2);
            assert_eq!(commands("find", "pipeline.events"), 1);
            assert_eq!(commands("delete", "pipeline.old"), 1);
            assert_eq!(commands("getMore", "pipeline.events"), 1);
            let errors = t.counter(
                "mongodb_command_errors_total",
                &[("command", "insert"), ("error", "DuplicateKey")],
            );
            assert_eq!(errors, 1);
            assert_eq!(t.counter("mongodb_command_errors_total", &[]), 1);
            assert_eq!(
                t.counter("mongodb_decode_errors_total", &[]),
                0,
                "{:?}",
                t.counters
            );
            let replies: usize = t
                .histograms
                .iter()
                .filter(|(n, _)| n.ends_with("mongodb_command_duration_milliseconds"))
                .map(|(_, v)| v.len())
                .sum();
            assert_eq!(
                replies, 6,
                "one latency per reply, the exhaust reply's included"
            );
            assert!(t.counter("kafka_requests_total", &[]) == 0);
            assert!(
                read < (requests.len() + responses.len()) / 4,
                "documents are passed over unread: {read}"
            );
        }
    }

    #[test]
    fn x509_on_the_apps_behalf_is_invisible_to_the_observer() {
        let (requests, responses) = session();
        let ours = op_msg(
            99,
            AUTH_REQUEST_ID,
            &doc! { "dbname": "$external", "user": "CN=verify", "ok": 1.0 },
            None,
            false,
        );
        let with_reply = [ours, responses.clone()].concat();
        let json = r#"{"protocol": "mongodb", "mongodb_auth": {"mechanism": "MONGODB-X509",
            "upstreams": {"principals": ["cluster.local/ns/pipeline/sa/mongodb"]}}}"#;
        for cut in (0..with_reply.len()).step_by(53) {
            let mut plain = vm(r#"{"protocol": "mongodb"}"#);
            let (_, _, expected, _) = run(&mut plain, &requests, &responses, cut, 64);
            let mut acting = vm(json);
            let (to_server, to_app, t, _) = run(&mut acting, &requests, &with_reply, cut, 64);
            assert_eq!(
                to_server,
                [authenticate(AUTH_REQUEST_ID), requests.clone()].concat()
            );
            assert_eq!(to_app, responses, "our reply is removed, cut {cut}");
            let mut observed = t.counters.clone();
            let auth = observed
                .keys()
                .find(|k| k.ends_with(";.;mongodb_auth_total"))
                .cloned()
                .unwrap();
            assert!(auth.contains("result=.=success;.;"), "{auth}");
            observed.remove(&auth);
            assert_eq!(observed, expected.counters);
        }
    }

    #[test]
    fn a_refused_x509_closes_before_the_app_sees_a_reply() {
        let (requests, responses) = session();
        let refused = op_msg(
            99,
            AUTH_REQUEST_ID,
            &doc! { "ok": 0.0, "code": 18, "errmsg": "no such user" },
            None,
            false,
        );
        let json = r#"{"protocol": "mongodb", "mongodb_auth": {"mechanism": "MONGODB-X509",
            "upstreams": {"principals": ["cluster.local/ns/pipeline/sa/mongodb"]}}}"#;
        let mut vm = vm(json);
        let mut conn = vm.open_connection();
        let hello = &requests[..40];
        vm.on_buffer(
            &mut conn,
            Direction::Request,
            hello.len(),
            64,
            0,
            |at, len| hello.get(at..at + len),
        );
        let back = [refused, responses].concat();
        let step = vm.on_buffer(
            &mut conn,
            Direction::Response,
            back.len(),
            64,
            0,
            |at, len| back.get(at..at + len),
        );
        assert!(step.close);
        assert_eq!(step.take, back.len());
        vm.close(&mut conn);
        let mut t = Totalizer::default();
        vm.flush(&mut t);
        let refused = [
            ("mechanism", "MONGODB-X509"),
            ("result", "failure"),
            ("reason", "AuthenticationFailed"),
        ];
        assert_eq!(t.counter("mongodb_auth_total", &refused), 1);
        assert!(t.histograms.is_empty(), "no reply reached the observer");
    }
}
