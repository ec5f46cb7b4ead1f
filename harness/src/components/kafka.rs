//! Apache Kafka 4.3.1 in KRaft mode (Maven Central, resolved by `scripts/setup.sh`), the
//! version Strimzi 1.2.0 runs: one combined broker+controller node by default, or several
//! (each a broker and a controller voter), formatted with `kafka.tools.StorageTool format`
//! and started with `kafka.Kafka`, as Strimzi's pods do.
//!
//! Listeners. `PLATFORM` is the platform's own access (Strimzi's operators, topic creation,
//! readiness) and the inter-broker listener; `CONTROLLER` carries KRaft. Then one listener
//! per client workload, each advertising that workload's sidecar listeners, one per node: a
//! Kafka client reconnects to the address Metadata advertises, and until workloads have
//! their own network addresses (in Istio iptables sends that connection through the pod's
//! sidecar) this is how each workload's traffic keeps going through its own sidecar.

use kiosk_filter::act::sasl::Mechanism;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

use crate::components::pod::Pod;
use crate::components::{java, Component};
use crate::ports::Allocator;
use crate::process::Service;

/// The listener every node serves to the platform, and brokers to each other.
pub const PLATFORM_LISTENER: &str = "PLATFORM";
const CONTROLLER_LISTENER: &str = "CONTROLLER";

/// One node: where it runs and its ports.
#[derive(Clone, Debug)]
pub struct NodePorts {
    pub platform: u16,
    pub controller: u16,
    /// Client listener name -> (the port the node listens on, the port it advertises).
    pub clients: BTreeMap<String, (u16, u16)>,
    /// The name it advertises (`127.0.0.1`, or its pod's DNS name).
    pub host: String,
    /// Its pod, or none for loopback.
    pub pod: Option<Pod>,
}

impl NodePorts {
    /// The address it listens on.
    fn bind(&self) -> &str {
        if self.pod.is_some() {
            "0.0.0.0"
        } else {
            "127.0.0.1"
        }
    }

    /// Its address as seen from the host (for readiness).
    fn address(&self) -> String {
        self.pod
            .as_ref()
            .map_or_else(|| "127.0.0.1".to_string(), |p| p.ip.to_string())
    }
}

/// The client listener of brokers in pods (Strimzi's `plain` listener).
pub const PLAIN_LISTENER: &str = "PLAIN";
/// Strimzi's ports: controller, replication (the platform's), plain.
pub const CONTROLLER_PORT: u16 = 9090;
pub const REPLICATION_PORT: u16 = 9091;
pub const PLAIN_PORT: u16 = 9092;

/// A TLS client listener. Strimzi's `tls` listener with `authentication: type: tls`:
/// client certificates required (signed by the clients CA), the principal `User:CN=<user>`,
/// and simple authorization (StandardAuthorizer) with the platform's listeners as super
/// user. Without a clients CA and with [`KafkaSpec::sasl`], a `SASL_SSL` listener, as a
/// managed Kafka offers (the external cluster).
#[derive(Clone, Debug)]
pub struct TlsListener {
    /// The port it listens on and advertises (Strimzi's 9093).
    pub port: u16,
    /// Per node, its PEM keystore (key and chain, signed by the cluster's CA).
    pub keystores: Vec<PathBuf>,
    /// The clients CA, as a PEM truststore: client certificates required.
    pub client_ca: Option<PathBuf>,
}

/// Client listeners that require SASL (`SASL_PLAINTEXT`): Strimzi's `scram-sha-512`
/// listener authentication, or PLAIN as brokers with a static user list have it.
#[derive(Clone, Debug)]
pub struct SaslListener {
    /// Mechanisms the listeners enable.
    pub mechanisms: Vec<Mechanism>,
    /// Users and passwords: SCRAM credentials are written into the cluster metadata at
    /// format time (`StorageTool format --add-scram`), PLAIN users into the listener's
    /// JAAS configuration.
    pub users: Vec<(String, String)>,
    /// Simple authorization (StandardAuthorizer), the platform's listeners super user.
    pub authorize: bool,
}

/// Strimzi's TLS listener's port.
pub const TLS_PORT: u16 = 9093;
const TLS_LISTENER: &str = "TLS";

/// A cluster, before it starts: what each node listens on and advertises.
#[derive(Clone, Debug)]
pub struct KafkaSpec {
    /// What the mesh calls the cluster (`kafka`; its nodes `<name>-<id>` when several).
    pub name: String,
    /// Configurations, data and logs live here (`kafka-<id>/`, `<name>[-<id>].log`).
    pub dir: PathBuf,
    pub cluster_id: String,
    pub nodes: Vec<NodePorts>,
    /// Broker settings from the bundle's `Kafka` resource (`spec.kafka.config`).
    pub config: BTreeMap<String, String>,
    /// Clients on the TLS listener instead of the plain one (pods only).
    pub tls: Option<TlsListener>,
    /// SASL on the plain client listeners.
    pub sasl: Option<SaslListener>,
}

impl KafkaSpec {
    /// `nodes` nodes with a listener per client in `clients`; each client listener
    /// advertises a port of its own per node (the client's sidecar listener for that node).
    pub fn new(dir: &Path, nodes: usize, clients: &[&str], ports: &mut Allocator) -> Result<Self> {
        if nodes == 0 {
            bail!("a Kafka cluster needs at least one node");
        }
        let mut all = Vec::with_capacity(nodes);
        for _ in 0..nodes {
            let mut listeners = BTreeMap::new();
            for client in clients {
                listeners.insert(listener_name(client), (ports.port()?, ports.port()?));
            }
            all.push(NodePorts {
                platform: ports.port()?,
                controller: ports.port()?,
                clients: listeners,
                host: "127.0.0.1".into(),
                pod: None,
            });
        }
        Ok(KafkaSpec {
            name: "kafka".into(),
            dir: dir.to_path_buf(),
            cluster_id: random_cluster_id()?,
            nodes: all,
            config: BTreeMap::new(),
            tls: None,
            sasl: None,
        })
    }

    /// Nodes in pods, as Strimzi runs them: each `(pod, advertised host)` listening on
    /// Strimzi's ports (controller 9090, replication 9091, and for clients plain 9092, or
    /// TLS 9093 with client certificates and ACLs when `tls` is given) on every address.
    pub fn in_pods(
        dir: &Path,
        nodes: Vec<(Pod, String)>,
        tls: Option<TlsListener>,
    ) -> Result<Self> {
        if tls
            .as_ref()
            .is_some_and(|t| t.keystores.len() != nodes.len())
        {
            bail!("one TLS keystore per node");
        }
        let client = match &tls {
            Some(tls) => (TLS_LISTENER, tls.port),
            None => (PLAIN_LISTENER, PLAIN_PORT),
        };
        if nodes.is_empty() {
            bail!("a Kafka cluster needs at least one node");
        }
        let nodes = nodes
            .into_iter()
            .map(|(pod, host)| NodePorts {
                platform: REPLICATION_PORT,
                controller: CONTROLLER_PORT,
                clients: BTreeMap::from([(client.0.to_string(), (client.1, client.1))]),
                host,
                pod: Some(pod),
            })
            .collect();
        Ok(KafkaSpec {
            name: "kafka".into(),
            dir: dir.to_path_buf(),
            cluster_id: random_cluster_id()?,
            nodes,
            config: BTreeMap::new(),
            tls,
            sasl: None,
        })
    }

    /// The platform's bootstrap list (every node's platform listener by address), for
    /// admin clients outside the mesh.
    pub fn platform_bootstrap(&self) -> String {
        let all: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{}:{}", n.address(), n.platform))
            .collect();
        all.join(",")
    }

    /// The platform's bootstrap list by advertised name (for a client in a pod).
    pub fn platform_bootstrap_by_name(&self) -> String {
        let all: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{}:{}", n.host, n.platform))
            .collect();
        all.join(",")
    }

    /// Per node, the (listen, advertised) ports of `client`'s listener.
    pub fn client_ports(&self, client: &str) -> Vec<(u16, u16)> {
        let name = listener_name(client);
        self.nodes
            .iter()
            .filter_map(|n| n.clients.get(&name).copied())
            .collect()
    }

    /// `server.properties` of node `index` (node ids from 0, as Strimzi's node pools).
    pub fn properties(&self, index: usize) -> String {
        let node = &self.nodes[index];
        let id = index;
        let voters: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{i}@{}:{}", n.host, n.controller))
            .collect();
        let bind = node.bind();
        let host = &node.host;
        let mut listeners = vec![
            format!("{PLATFORM_LISTENER}://{bind}:{}", node.platform),
            format!("{CONTROLLER_LISTENER}://{bind}:{}", node.controller),
        ];
        let mut advertised = vec![format!("{PLATFORM_LISTENER}://{host}:{}", node.platform)];
        let mut protocols = vec![
            format!("{PLATFORM_LISTENER}:PLAINTEXT"),
            format!("{CONTROLLER_LISTENER}:PLAINTEXT"),
        ];
        for (name, (port, advertised_port)) in &node.clients {
            listeners.push(format!("{name}://{bind}:{port}"));
            advertised.push(format!("{name}://{host}:{advertised_port}"));
            let protocol = match (name == TLS_LISTENER, &self.sasl) {
                (true, Some(_)) => "SASL_SSL",
                (true, None) => "SSL",
                (false, Some(_)) => "SASL_PLAINTEXT",
                (false, None) => "PLAINTEXT",
            };
            protocols.push(format!("{name}:{protocol}"));
        }
        let replication = self.nodes.len().min(3).to_string();
        let mut props: BTreeMap<String, String> = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            props.insert(k.to_string(), v);
        };
        set("process.roles", "broker,controller".into());
        set("node.id", id.to_string());
        set("controller.quorum.voters", voters.join(","));
        set("controller.listener.names", CONTROLLER_LISTENER.into());
        set("inter.broker.listener.name", PLATFORM_LISTENER.into());
        set("listeners", listeners.join(","));
        set("advertised.listeners", advertised.join(","));
        set("listener.security.protocol.map", protocols.join(","));
        set("log.dirs", self.data_dir(index).display().to_string());
        set("auto.create.topics.enable", "false".into());
        set("offsets.topic.replication.factor", replication.clone());
        set(
            "transaction.state.log.replication.factor",
            replication.clone(),
        );
        set("transaction.state.log.min.isr", "1".into());
        // Share groups (KIP-932, on by default in 4.3) keep their state in a topic of
        // their own, replicated 3 times unless told otherwise.
        set(
            "share.coordinator.state.topic.replication.factor",
            replication,
        );
        set("share.coordinator.state.topic.min.isr", "1".into());
        // A consumer group starts at once instead of waiting 3 s for more members.
        set("group.initial.rebalance.delay.ms", "0".into());
        if let Some(sasl) = &self.sasl {
            for name in node.clients.keys() {
                let prefix = format!("listener.name.{}.", name.to_lowercase());
                let names: Vec<&str> = sasl.mechanisms.iter().map(|m| m.name()).collect();
                props.insert(format!("{prefix}sasl.enabled.mechanisms"), names.join(","));
                for mechanism in &sasl.mechanisms {
                    let module = match mechanism {
                        Mechanism::Plain => {
                            let users: String = sasl
                                .users
                                .iter()
                                .map(|(u, p)| format!(" user_{u}=\"{p}\""))
                                .collect();
                            format!("org.apache.kafka.common.security.plain.PlainLoginModule required{users};")
                        }
                        _ => "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                            .to_string(),
                    };
                    let key = format!(
                        "{prefix}{}.sasl.jaas.config",
                        mechanism.name().to_lowercase()
                    );
                    props.insert(key, module);
                }
            }
        }
        if self.sasl.as_ref().is_some_and(|s| s.authorize) {
            props.insert(
                "authorizer.class.name".into(),
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
            );
            props.insert("super.users".into(), "User:ANONYMOUS".into());
        }
        if let Some(tls) = &self.tls {
            let prefix = format!("listener.name.{}.", TLS_LISTENER.to_lowercase());
            let mut tls_set = |k: &str, v: String| {
                props.insert(format!("{prefix}{k}"), v);
            };
            tls_set("ssl.keystore.type", "PEM".into());
            tls_set(
                "ssl.keystore.location",
                tls.keystores[index].display().to_string(),
            );
            if let Some(client_ca) = &tls.client_ca {
                tls_set("ssl.client.auth", "required".into());
                tls_set("ssl.truststore.type", "PEM".into());
                tls_set("ssl.truststore.location", client_ca.display().to_string());
            }
            // Strimzi's `authorization: type: simple`; the platform's listeners (controller,
            // replication: the operators and other brokers) are the super user.
            props.insert(
                "authorizer.class.name".into(),
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
            );
            props.insert("super.users".into(), "User:ANONYMOUS".into());
        }
        // The bundle's broker settings win, except the listeners and identity above,
        // which belong to the local topology.
        for (key, value) in &self.config {
            if !LOCAL_KEYS.contains(&key.as_str()) {
                props.insert(key.clone(), value.clone());
            }
        }
        let mut text = format!("# Written by kiosk for node {id}; regenerated at every start.\n");
        for (key, value) in props {
            text.push_str(&format!("{key}={value}\n"));
        }
        text
    }

    fn data_dir(&self, index: usize) -> PathBuf {
        self.dir.join(format!("kafka-{index}")).join("data")
    }

    fn properties_path(&self, index: usize) -> PathBuf {
        self.dir
            .join(format!("kafka-{index}"))
            .join("server.properties")
    }
}

/// Settings the local topology owns (a bundle value for them is ignored).
const LOCAL_KEYS: &[&str] = &[
    "process.roles",
    "node.id",
    "controller.quorum.voters",
    "controller.listener.names",
    "inter.broker.listener.name",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "log.dirs",
];

/// `mirror` -> `CLIENT_MIRROR`: listener names are upper case letters, digits and `_`.
pub fn listener_name(client: &str) -> String {
    let cleaned: String = client
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("CLIENT_{cleaned}")
}

/// A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (Kafka's `Uuid`).
fn random_cluster_id() -> Result<String> {
    use base64::Engine;
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A running (or stopped) cluster.
pub struct Kafka {
    pub spec: KafkaSpec,
    nodes: Vec<Option<Service>>,
}

impl Kafka {
    /// Format every node's storage and start them; returns once Metadata on the platform
    /// listener lists every broker.
    pub fn start(spec: KafkaSpec) -> Result<Kafka> {
        let mut kafka = Kafka {
            nodes: spec.nodes.iter().map(|_| None).collect(),
            spec,
        };
        for index in 0..kafka.spec.nodes.len() {
            kafka.format(index)?;
        }
        kafka.start_all()?;
        Ok(kafka)
    }

    fn format(&self, index: usize) -> Result<()> {
        let props = self.spec.properties_path(index);
        std::fs::create_dir_all(self.spec.data_dir(index))?;
        std::fs::write(&props, self.spec.properties(index))?;
        let name = format!("kafka-{index}-format");
        let mut command = java::command(&self.spec.dir, None)?;
        command
            .arg("kafka.tools.StorageTool")
            .args(["format", "--ignore-formatted"])
            // `=`: an id may start with `-`, which the tool would take for an option.
            .arg(format!("--cluster-id={}", self.spec.cluster_id))
            .arg("-c")
            .arg(&props);
        // SCRAM credentials, as the User Operator's AlterUserScramCredentials leaves them.
        let sasl = self.spec.sasl.iter();
        for (sasl, mechanism) in sasl.flat_map(|s| s.mechanisms.iter().map(move |m| (s, m))) {
            if *mechanism == Mechanism::Plain {
                continue;
            }
            for (user, password) in &sasl.users {
                command.arg(format!(
                    "--add-scram={}=[name={user},password={password}]",
                    mechanism.name()
                ));
            }
        }
        java::run_to_end(&name, command, &self.spec.dir)
    }

    fn start_all(&mut self) -> Result<()> {
        for index in 0..self.nodes.len() {
            self.start_node(index)?;
        }
        self.wait_ready(Duration::from_secs(90))
    }

    /// Start node `index` (its storage already formatted) without waiting.
    fn start_node(&mut self, index: usize) -> Result<()> {
        let props = self.spec.properties_path(index);
        std::fs::write(&props, self.spec.properties(index))?;
        let pod = self.spec.nodes[index].pod.as_ref();
        let mut command = java::command(&self.spec.dir, pod)?;
        command
            .args(java::heap("512m"))
            .arg("kafka.Kafka")
            .arg(&props);
        let service = Service::start(&self.node_name(index), command, &self.spec.dir)?;
        self.nodes[index] = Some(service);
        Ok(())
    }

    fn node_name(&self, index: usize) -> String {
        if self.nodes.len() == 1 {
            self.spec.name.clone()
        } else {
            format!("{}-{index}", self.spec.name)
        }
    }

    /// Wait until Metadata through the platform listener lists every broker, failing with
    /// the log tail of a node that exited.
    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let want = self.nodes.len();
        let bootstrap = self.spec.platform_bootstrap();
        let start = std::time::Instant::now();
        loop {
            self.check()?;
            match brokers_in_metadata(&bootstrap) {
                Ok(n) if n >= want => return Ok(()),
                _ => {}
            }
            if start.elapsed() > timeout {
                let tails: Vec<String> = self
                    .nodes
                    .iter()
                    .flatten()
                    .map(|s| format!("{}:\n{}", s.log.display(), s.log_tail(20)))
                    .collect();
                bail!(
                    "Kafka did not list {want} broker(s) in Metadata within {timeout:?}; last lines:\n{}",
                    tails.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Stop node `index` (SIGTERM: a controlled shutdown), keeping its data.
    pub fn stop_node(&mut self, index: usize) {
        if let Some(mut service) = self.nodes.get_mut(index).and_then(Option::take) {
            service.terminate(Duration::from_secs(20));
        }
    }
}

/// Wait until Metadata through `bootstrap` lists at least `want` brokers; returns how many.
pub fn wait_for_brokers(bootstrap: &str, want: usize, timeout: Duration) -> Result<usize> {
    let start = std::time::Instant::now();
    loop {
        let last = brokers_in_metadata(bootstrap);
        match &last {
            Ok(n) if *n >= want => return Ok(*n),
            _ if start.elapsed() > timeout => {
                bail!("Metadata through {bootstrap} did not list {want} broker(s) within {timeout:?} (last: {last:?})")
            }
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// One request frame as a Kafka client sends it (size, header, message), encoded with the
/// `kafka-protocol` crate: for the cold paths and tests that speak to a broker without a
/// client library.
pub fn request_frame<M: Encodable + HeaderVersion>(
    api_key: i16,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    message: &M,
) -> Result<Vec<u8>> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let mut body = BytesMut::new();
    header.encode(&mut body, M::header_version(version))?;
    message.encode(&mut body, version)?;
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// One whole frame read from `stream`, without its size.
pub fn read_frame(stream: &mut impl std::io::Read) -> Result<Bytes> {
    let mut size = [0u8; 4];
    stream
        .read_exact(&mut size)
        .context("reading a frame size")?;
    let mut frame = vec![0u8; u32::from_be_bytes(size) as usize];
    stream.read_exact(&mut frame).context("reading a frame")?;
    Ok(Bytes::from(frame))
}

/// A response frame (from [`read_frame`]) decoded as `R` at `version`: its correlation id
/// and the message, which must fill the frame.
pub fn decode_response<R: Decodable + HeaderVersion>(
    mut frame: Bytes,
    version: i16,
) -> Result<(i32, R)> {
    let header = ResponseHeader::decode(&mut frame, R::header_version(version))?;
    let message = R::decode(&mut frame, version)?;
    if frame.has_remaining() {
        bail!("{} bytes left after the response", frame.remaining());
    }
    Ok((header.correlation_id, message))
}

/// How many brokers Metadata lists (librdkafka through the platform listener).
fn brokers_in_metadata(bootstrap: &str) -> Result<usize> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let client: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("log_level", "0")
        .create()
        .context("creating a metadata client")?;
    let metadata = client.fetch_metadata(None, Duration::from_secs(2))?;
    Ok(metadata.brokers().len())
}

impl Component for Kafka {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn services(&self) -> Vec<&Service> {
        self.nodes.iter().flatten().collect()
    }

    fn services_mut(&mut self) -> Vec<&mut Service> {
        self.nodes.iter_mut().flatten().collect()
    }

    fn stop(&mut self) {
        // All at once: a controlled shutdown of the last voters waits for a quorum that
        // the others, stopped one by one, would no longer give.
        for service in self.nodes.iter_mut().flatten() {
            service.signal_terminate();
        }
        for index in 0..self.nodes.len() {
            self.stop_node(index);
        }
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        self.start_all()
    }

    /// One node at a time, as Strimzi rolls a cluster: stopped (a controlled shutdown),
    /// started, and listed in Metadata again before the next one stops.
    fn rolling_restart(&mut self) -> Result<()> {
        for index in 0..self.nodes.len() {
            self.stop_node(index);
            self.start_node(index)?;
            self.wait_ready(Duration::from_secs(90))?;
        }
        Ok(())
    }
}

/// Create `topics` as the Topic Operator would from KafkaTopics: partitions, replicas and
/// config as declared. A topic that exists already is left as it is.
pub async fn create_topics(bootstrap: &str, topics: &[crate::bundle::KafkaTopic]) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("client.id", "strimzi-topic-operator")
        .create()
        .context("creating the Kafka admin client")?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| {
            // -1: the broker's default.replication.factor.
            let replication = TopicReplication::Fixed(t.replicas.unwrap_or(-1));
            let mut topic = NewTopic::new(&t.name, t.partitions, replication);
            for (key, value) in &t.config {
                topic = topic.set(key, value);
            }
            topic
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => bail!("creating topic {topic}: {code}"),
        }
    }
    Ok(())
}

/// A random password as an operator generates one: 16 bytes of /dev/urandom, hex (safe in
/// a URI, a JAAS value and a StorageTool SCRAM argument alike).
pub fn random_password() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
