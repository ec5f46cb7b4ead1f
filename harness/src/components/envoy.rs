//! Envoy sidecars configured the way Istio configures them, run for real.
//!
//! The bootstrap mirrors what istiod and pilot-agent generate for a sidecar, so what is
//! proven here holds in a mesh: node metadata under the keys Istio sets (NAMESPACE,
//! WORKLOAD_NAME, LABELS, CLUSTER_ID, MESH_ID), `stats_config.stats_tags` built from an
//! `extraStatTags` list with Istio's regex, and the filter loaded as
//! `envoy.filters.network.wasm` with the same `pluginConfig` JSON a `WasmPlugin` delivers,
//! fail-open.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::components::mtls::CertFiles;
use crate::components::pod::{self, Pod};
use crate::components::Component;
use crate::process::Service;

/// One listener of a sidecar: `port` on loopback forwards to `upstream`.
#[derive(Clone, Debug)]
pub struct Route {
    /// The destination service host (`rest.pipeline.svc.cluster.local`); it names the
    /// cluster the way Istio does, `outbound|<port>||<host>`, and `kiosk graph` reads the
    /// destination back from it.
    pub name: String,
    pub port: u16,
    pub upstream: u16,
    pub protocol: Protocol,
    /// Inbound routes forward to the workload's own port (`inbound|<port>||`).
    pub inbound: bool,
    /// The upstream leg's transport.
    pub tls: UpstreamTls,
}

/// What a listener speaks, which decides its filter chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// The kiosk filter, then `tcp_proxy` (Istio: the WasmPlugin's match ports).
    Kafka,
    /// The kiosk filter reading MongoDB (a second WasmPlugin, matched on MongoDB's port,
    /// configured by [`SidecarSpec::mongodb_plugin_config`]), then `tcp_proxy`.
    MongoDb,
    /// `tcp_proxy` only.
    Tcp,
    /// `http_connection_manager` with the router, so requests are counted per cluster.
    Http,
}

impl Route {
    pub fn outbound(host: &str, port: u16, upstream: u16, protocol: Protocol) -> Route {
        Route {
            name: host.to_string(),
            port,
            upstream,
            protocol,
            inbound: false,
            tls: UpstreamTls::None,
        }
    }

    /// The same route with its upstream leg secured by `tls`.
    pub fn with_tls(mut self, tls: UpstreamTls) -> Route {
        self.tls = tls;
        self
    }

    pub fn inbound(port: u16, upstream: u16, protocol: Protocol) -> Route {
        Route {
            name: String::new(),
            port,
            upstream,
            protocol,
            inbound: true,
            tls: UpstreamTls::None,
        }
    }

    /// The cluster name, as Istio spells it.
    pub fn cluster(&self) -> String {
        if self.inbound {
            format!("inbound|{}||", self.port)
        } else {
            format!("outbound|{}||{}", self.upstream, self.name)
        }
    }
}

/// The tag Istio's bootstrap defines for cluster stats: a host with dots
/// (`x.ns.svc.cluster.local`) stays whole in the `cluster_name` label.
const CLUSTER_NAME_TAG: &str = r"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)";

#[derive(Clone, Debug)]
pub struct SidecarSpec {
    pub workload: String,
    pub namespace: String,
    pub app: String,
    pub admin_port: u16,
    pub routes: Vec<Route>,
    /// The WasmPlugin's `pluginConfig`, as JSON.
    pub plugin_config: Value,
    /// The `pluginConfig` of the WasmPlugin for MongoDB's port (`protocol: mongodb`),
    /// used by [`Protocol::MongoDb`] listeners.
    pub mongodb_plugin_config: Value,
    pub wasm: PathBuf,
    /// Envoy worker threads (each runs its own Wasm VM).
    pub concurrency: u32,
    /// In a pod: Istio's listeners instead of `routes` (see [`PodSidecar`]).
    pub pod: Option<PodSidecar>,
    /// The sidecar's environment, which the filter's VM reads (a WasmPlugin's
    /// `vmConfig.env` with `valueFrom: HOST`): where a Kafka credential comes from.
    pub env: Vec<(String, String)>,
}

/// A sidecar in a pod, configured as istiod configures one: traffic arrives by iptables
/// redirection on a virtual outbound listener (15001) and a virtual inbound listener
/// (15006), both using the original destination; Istio mTLS between sidecars; the stats
/// on 15090.
#[derive(Clone, Debug)]
pub struct PodSidecar {
    pub pod: Pod,
    pub certs: CertFiles,
    /// Destination ports the app dials, and what each speaks.
    pub outbound: Vec<OutboundPort>,
    /// Ports the app serves (inbound chains).
    pub inbound: Vec<u16>,
    /// Of `inbound`, the ports served as HTTP, with the HTTP filters an
    /// `AuthorizationPolicy` renders to (RBAC on the peer's mTLS identity) before the
    /// router. Others are TCP.
    pub inbound_http: Vec<(u16, Vec<Value>)>,
    /// Inbound ports whose PeerAuthentication says DISABLE: passed through as they come
    /// (a TLS listener of the app's own, such as Kafka's 9093).
    pub inbound_passthrough: Vec<u16>,
    /// PeerAuthentication: STRICT refuses plaintext on inbound ports; PERMISSIVE takes both.
    pub strict: bool,
    /// Where spans go (OTLP gRPC), as a Telemetry resource's tracing provider makes istiod
    /// configure every HTTP connection manager; `None`: no tracing.
    pub tracing: Option<SocketAddr>,
}

/// One destination port of the virtual outbound listener.
#[derive(Clone, Debug)]
pub struct OutboundPort {
    pub port: u16,
    pub protocol: Protocol,
    /// The service host, naming the cluster `outbound|<port>||<host>` as Istio does.
    pub host: String,
    /// The upstream leg's transport.
    pub tls: UpstreamTls,
}

/// How a sidecar's outbound cluster secures the upstream leg.
#[derive(Clone, Debug)]
pub enum UpstreamTls {
    /// Istio mTLS to a peer sidecar (auto mTLS: the destination has a sidecar).
    IstioMutual,
    /// TLS originated to the destination itself (a DestinationRule `tls.mode: MUTUAL` with
    /// a client certificate from `credentialName`; `SIMPLE` without one), SNI
    /// `server_name`: the server's certificate must chain to `ca` and name `server_name`.
    Originate {
        client: Option<CertFiles>,
        ca: PathBuf,
        server_name: String,
    },
    /// Plaintext.
    None,
}

/// Istio's default sidecar concurrency (`proxy.istio.io/config` `concurrency`, 2): two
/// worker threads, so two Wasm VMs that share only proxy-wasm shared data.
pub const ISTIO_CONCURRENCY: u32 = 2;

/// Istio's ALPN for mTLS between sidecars.
const ISTIO_ALPN: [&str; 2] = ["istio-peer-exchange", "istio"];
/// Envoy's admin API inside a pod (Istio's 15000), on the pod's loopback only.
const ADMIN_PORT_IN_POD: u16 = 15000;

/// Istio's `meshConfig.defaultConfig.extraStatTags` for kiosk: every label the filter emits.
pub fn extra_stat_tags() -> Vec<&'static str> {
    kiosk_filter::metrics::LABELS.to_vec()
}

impl SidecarSpec {
    /// A sidecar outside any pod (the test bed's and the benchmarks'): `workload` in
    /// `namespace` with `routes`, the filter module set-up built, the filter observing
    /// (`pluginConfig` `{}`; MongoDB's plugin `protocol: mongodb`), Istio's worker count, no
    /// environment. Change what differs with struct update syntax.
    pub fn standalone(workload: &str, namespace: &str, routes: Vec<Route>) -> Result<SidecarSpec> {
        Ok(SidecarSpec {
            workload: workload.into(),
            namespace: namespace.into(),
            app: workload.into(),
            admin_port: crate::ports::free()?,
            routes,
            plugin_config: json!({}),
            mongodb_plugin_config: json!({ "protocol": "mongodb" }),
            wasm: crate::paths::filter_wasm()?,
            concurrency: ISTIO_CONCURRENCY,
            pod: None,
            env: Vec::new(),
        })
    }

    pub fn bootstrap(&self) -> Value {
        let mut stats_tags: Vec<Value> = extra_stat_tags()
            .into_iter()
            .map(|tag| json!({ "tag_name": tag, "regex": kiosk_filter::labels::tag_regex(tag) }))
            .collect();
        stats_tags.push(json!({ "tag_name": "cluster_name", "regex": CLUSTER_NAME_TAG }));
        let (listeners, clusters, address, admin) = match &self.pod {
            Some(p) => {
                let (listeners, clusters) = self.pod_resources(p);
                (
                    listeners,
                    clusters,
                    p.pod.ip.to_string(),
                    admin_socket(ADMIN_PORT_IN_POD),
                )
            }
            None => {
                let (listeners, clusters) = self.loopback_resources();
                (
                    listeners,
                    clusters,
                    "127.0.0.1".to_string(),
                    socket(self.admin_port),
                )
            }
        };
        json!({
            "node": {
                "id": format!("sidecar~{address}~{}.{}~{}.svc.cluster.local", self.workload, self.namespace, self.namespace),
                "cluster": format!("{}.{}", self.app, self.namespace),
                "metadata": {
                    "NAMESPACE": self.namespace,
                    "WORKLOAD_NAME": self.workload,
                    "LABELS": { "app": self.app, "version": "v1" },
                    "CLUSTER_ID": "Kubernetes",
                    "MESH_ID": "cluster.local",
                    "ISTIO_VERSION": "1.30.3"
                }
            },
            "stats_config": { "use_all_default_tags": false, "stats_tags": stats_tags },
            "admin": { "address": admin },
            "static_resources": { "listeners": listeners, "clusters": clusters }
        })
    }

    /// One listener per route on loopback (the test bed's sidecars).
    fn loopback_resources(&self) -> (Vec<Value>, Vec<Value>) {
        let listeners: Vec<Value> = self.routes.iter().map(|r| self.listener(r)).collect();
        let clusters: Vec<Value> = self
            .routes
            .iter()
            .map(|r| {
                let mut cluster = json!({
                    "name": r.cluster(),
                    "type": "STATIC",
                    "connect_timeout": "2s",
                    "load_assignment": {
                        "cluster_name": r.cluster(),
                        "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket(r.upstream) } }] }]
                    }
                });
                if let UpstreamTls::Originate {
                    client,
                    ca,
                    server_name,
                } = &r.tls
                {
                    cluster["transport_socket"] =
                        upstream_originate(client.as_ref(), ca, server_name);
                }
                cluster
            })
            .collect();
        (listeners, clusters)
    }

    /// Istio's listeners and clusters for a sidecar in a pod.
    fn pod_resources(&self, p: &PodSidecar) -> (Vec<Value>, Vec<Value>) {
        let mut listeners = Vec::new();
        let mut clusters = Vec::new();

        // virtualOutbound: one filter chain per destination port the app dials; HTTP
        // services sharing a port share its chain, routed by Host as Istio's
        // `0.0.0.0_<port>` route configuration does.
        let mut chains = Vec::new();
        let mut http_ports_done = Vec::new();
        for out in &p.outbound {
            let cluster = format!("outbound|{}||{}", out.port, out.host);
            let shared: Vec<&OutboundPort> = p
                .outbound
                .iter()
                .filter(|o| o.port == out.port && o.protocol == Protocol::Http)
                .collect();
            let filters = match out.protocol {
                Protocol::Http if shared.len() > 1 => {
                    if http_ports_done.contains(&out.port) {
                        None
                    } else {
                        http_ports_done.push(out.port);
                        Some(vec![http_by_host(out.port, &shared)])
                    }
                }
                Protocol::Http => Some(vec![http_manager(&cluster, &cluster)]),
                Protocol::Kafka | Protocol::MongoDb => Some(vec![
                    self.kiosk_filter(out.protocol),
                    tcp_proxy(&cluster, &cluster),
                ]),
                Protocol::Tcp => Some(vec![tcp_proxy(&cluster, &cluster)]),
            };
            if let Some(filters) = filters {
                let name = match shared.len() > 1 {
                    true => format!("0.0.0.0_{}", out.port),
                    false => cluster.clone(),
                };
                chains.push(json!({
                    "name": name,
                    "filter_chain_match": { "destination_port": out.port },
                    "filters": filters
                }));
            }
            let mut c = original_dst_cluster(&cluster);
            match &out.tls {
                UpstreamTls::IstioMutual => {
                    let sni = format!("outbound_.{}_._.{}", out.port, out.host);
                    c["transport_socket"] = upstream_mtls(&p.certs, &sni);
                }
                UpstreamTls::Originate {
                    client,
                    ca,
                    server_name,
                } => c["transport_socket"] = upstream_originate(client.as_ref(), ca, server_name),
                UpstreamTls::None => {}
            }
            clusters.push(c);
        }
        listeners.push(json!({
            "name": "virtualOutbound",
            "address": any_socket(pod::OUTBOUND_CAPTURE_PORT),
            // As istiod sets it: tracers name spans by it (egress), stats plugins read it.
            "traffic_direction": "OUTBOUND",
            "listener_filters": [original_dst_filter()],
            "filter_chains": chains,
            // Anything else leaves as it came (Istio's PassthroughCluster).
            "default_filter_chain": {
                "name": "PassthroughFilterChain",
                "filters": [tcp_proxy("PassthroughCluster", "PassthroughCluster")]
            }
        }));
        clusters.push(original_dst_cluster("PassthroughCluster"));

        // virtualInbound: mTLS chains per served port; plaintext too when PERMISSIVE.
        let mut chains = Vec::new();
        for port in &p.inbound {
            let cluster = format!("inbound|{port}||");
            let filters = match p.inbound_http.iter().find(|(h, _)| h == port) {
                Some((_, http_filters)) => {
                    let mut manager = http_manager(&format!("inbound_{port}"), &cluster);
                    let chain = &mut manager["typed_config"]["http_filters"];
                    if let Some(list) = chain.as_array_mut() {
                        list.splice(0..0, http_filters.iter().cloned());
                    }
                    vec![manager]
                }
                None => vec![tcp_proxy(&cluster, &cluster)],
            };
            chains.push(json!({
                "name": format!("{cluster}-mtls"),
                "filter_chain_match": {
                    "destination_port": port,
                    "transport_protocol": "tls",
                    "application_protocols": ISTIO_ALPN
                },
                "transport_socket": downstream_mtls(&p.certs),
                "filters": filters
            }));
            if !p.strict {
                chains.push(json!({
                    "name": format!("{cluster}-plaintext"),
                    "filter_chain_match": { "destination_port": port, "transport_protocol": "raw_buffer" },
                    "filters": [tcp_proxy(&cluster, &cluster)]
                }));
            }
            clusters.push(inbound_cluster(&cluster));
        }
        for port in &p.inbound_passthrough {
            let cluster = format!("inbound|{port}||");
            chains.push(json!({
                "name": format!("{cluster}-passthrough"),
                "filter_chain_match": { "destination_port": port },
                "filters": [tcp_proxy(&cluster, &cluster)]
            }));
            clusters.push(inbound_cluster(&cluster));
        }
        let mut inbound = json!({
            "name": "virtualInbound",
            "address": any_socket(pod::INBOUND_CAPTURE_PORT),
            "traffic_direction": "INBOUND",
            "listener_filters": [
                original_dst_filter(),
                {
                    "name": "envoy.filters.listener.tls_inspector",
                    "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector" }
                }
            ],
            "filter_chains": chains,
        });
        if p.inbound.is_empty() && p.inbound_passthrough.is_empty() {
            inbound["filter_chains"] = json!([{
                "name": "BlackHoleFilterChain",
                "filters": [tcp_proxy("BlackHoleCluster", "BlackHoleCluster")]
            }]);
            clusters.push(
                json!({ "name": "BlackHoleCluster", "type": "STATIC", "connect_timeout": "1s" }),
            );
        }
        listeners.push(inbound);

        // The sidecar's stats and readiness, as Istio serves them on 15090 (the admin
        // API itself stays on the pod's loopback).
        listeners.push(json!({
            "name": "prometheus_stats",
            "address": any_socket(pod::STATS_PORT),
            "filter_chains": [{ "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "stats",
                    "route_config": { "virtual_hosts": [{
                        "name": "backend",
                        "domains": ["*"],
                        "routes": [
                            { "match": { "prefix": "/stats/prometheus" }, "route": { "cluster": "prometheus_stats" } },
                            { "match": { "path": "/ready" }, "route": { "cluster": "prometheus_stats" } }
                        ]
                    }]},
                    "http_filters": [{
                        "name": "envoy.filters.http.router",
                        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
                    }]
                }
            }]}]
        }));
        clusters.push(json!({
            "name": "prometheus_stats",
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": "prometheus_stats",
                "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": admin_socket(ADMIN_PORT_IN_POD) } }] }]
            }
        }));
        if let Some(collector) = p.tracing {
            let service = format!("{}.{}", self.workload, self.namespace);
            add_tracing(&mut listeners, &mut clusters, collector, &service);
        }
        (listeners, clusters)
    }

    /// The kiosk filter as a WasmPlugin delivers it.
    /// The kiosk filter as Istio renders a WasmPlugin: `kiosk` for Kafka's ports,
    /// `kiosk-mongodb` for MongoDB's.
    fn kiosk_filter(&self, protocol: Protocol) -> Value {
        let (plugin, config) = match protocol {
            Protocol::MongoDb => ("kiosk-mongodb", &self.mongodb_plugin_config),
            _ => ("kiosk", &self.plugin_config),
        };
        json!({
            "name": format!("extensions.istio.io/wasmplugin/{}.{plugin}", self.namespace),
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
                "config": {
                    "name": format!("{}.{plugin}", self.namespace),
                    "root_id": plugin,
                    "vm_config": {
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": { "local": { "filename": self.wasm.display().to_string() } },
                        "environment_variables": {
                            "host_env_keys": self.env.iter().map(|(k, _)| k).collect::<Vec<_>>()
                        }
                    },
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": config.to_string()
                    },
                    "failure_policy": "FAIL_OPEN"
                }
            }
        })
    }

    fn listener(&self, route: &Route) -> Value {
        let cluster = route.cluster();
        let mut filters = Vec::new();
        if route.protocol == Protocol::Http {
            filters.push(http_manager(&cluster, &cluster));
            return self.listener_with(route, filters);
        }
        if matches!(route.protocol, Protocol::Kafka | Protocol::MongoDb) {
            filters.push(self.kiosk_filter(route.protocol));
        }
        filters.push(tcp_proxy(&cluster, &cluster));
        self.listener_with(route, filters)
    }

    fn listener_with(&self, route: &Route, filters: Vec<Value>) -> Value {
        json!({
            "name": format!("127.0.0.1_{}", route.port),
            "address": socket(route.port),
            "filter_chains": [{ "filters": filters }]
        })
    }
}

fn socket(port: u16) -> Value {
    json!({ "socket_address": { "address": "127.0.0.1", "port_value": port } })
}

/// The sidecar's stats and readiness: 15090 on the pod's address, or the admin API.
fn stats_endpoint(spec: &SidecarSpec) -> (std::net::Ipv4Addr, u16) {
    match &spec.pod {
        Some(p) => (p.pod.ip, pod::STATS_PORT),
        None => (std::net::Ipv4Addr::LOCALHOST, spec.admin_port),
    }
}

fn admin_socket(port: u16) -> Value {
    socket(port)
}

/// The cluster that carries spans to the collector.
const TRACING_CLUSTER: &str = "opentelemetry-collector";

/// Tracing on every HTTP connection manager of `listeners` but the stats listener's, as
/// istiod renders a Telemetry resource with an `opentelemetry` extension provider: Envoy's
/// OpenTelemetry tracer (W3C `traceparent`: a request's trace is joined, or started),
/// every request sampled, spans over OTLP gRPC to `collector` as `service`
/// (`<workload>.<namespace>`, Istio's service name).
pub fn add_tracing(
    listeners: &mut [Value],
    clusters: &mut Vec<Value>,
    collector: SocketAddr,
    service: &str,
) {
    let tracing = json!({
        "random_sampling": { "value": 100 },
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "grpc_service": { "envoy_grpc": { "cluster_name": TRACING_CLUSTER }, "timeout": "1s" },
                "service_name": service
            }
        }
    });
    for listener in listeners.iter_mut() {
        if listener["name"] == "prometheus_stats" {
            continue;
        }
        let chains = listener["filter_chains"]
            .as_array_mut()
            .into_iter()
            .flatten();
        for filter in chains.flat_map(|c| c["filters"].as_array_mut().into_iter().flatten()) {
            if filter["name"] == "envoy.filters.network.http_connection_manager" {
                filter["typed_config"]["tracing"] = tracing.clone();
            }
        }
    }
    clusters.push(json!({
        "name": TRACING_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http2_protocol_options": {} }
            }
        },
        "load_assignment": {
            "cluster_name": TRACING_CLUSTER,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": {
                "socket_address": { "address": collector.ip().to_string(), "port_value": collector.port() }
            }}}]}]
        }
    }));
}

fn any_socket(port: u16) -> Value {
    json!({ "socket_address": { "address": "0.0.0.0", "port_value": port } })
}

fn tcp_proxy(stat_prefix: &str, cluster: &str) -> Value {
    json!({
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": stat_prefix,
            "cluster": cluster
        }
    })
}

/// An HTTP connection manager routing everything to `cluster`, so requests are counted per
/// cluster.
fn http_manager(stat_prefix: &str, cluster: &str) -> Value {
    json!({
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": stat_prefix,
            "route_config": {
                "virtual_hosts": [{
                    "name": cluster,
                    "domains": ["*"],
                    "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": cluster } }]
                }]
            },
            "http_filters": [{
                "name": "envoy.filters.http.router",
                "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
            }]
        }
    })
}

/// One HTTP manager for several services on `port`, a virtual host per service matched
/// on its Host (`host`, `host:port`), each to its own cluster.
fn http_by_host(port: u16, services: &[&OutboundPort]) -> Value {
    let cluster = |o: &OutboundPort| format!("outbound|{}||{}", o.port, o.host);
    let mut manager = http_manager(&format!("outbound_0.0.0.0_{port}"), "");
    manager["typed_config"]["route_config"]["virtual_hosts"] = services
        .iter()
        .map(|o| {
            json!({
                "name": format!("{}:{port}", o.host),
                "domains": [o.host.clone(), format!("{}:{port}", o.host)],
                "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": cluster(o) } }]
            })
        })
        .collect();
    manager
}

fn original_dst_filter() -> Value {
    json!({
        "name": "envoy.filters.listener.original_dst",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst" }
    })
}

/// A cluster whose upstream is the connection's original destination.
fn original_dst_cluster(name: &str) -> Value {
    json!({
        "name": name,
        "type": "ORIGINAL_DST",
        "lb_policy": "CLUSTER_PROVIDED",
        "connect_timeout": "2s"
    })
}

fn tls_certificate(certs: &CertFiles) -> Value {
    json!({
        "certificate_chain": { "filename": certs.chain.display().to_string() },
        "private_key": { "filename": certs.key.display().to_string() }
    })
}

/// The peer must hold a certificate of the mesh CA with a SPIFFE identity of the trust
/// domain.
fn mesh_validation(certs: &CertFiles) -> Value {
    json!({
        "trusted_ca": { "filename": certs.root.display().to_string() },
        "match_typed_subject_alt_names": [{
            "san_type": "URI",
            "matcher": { "prefix": format!("spiffe://{}/", crate::components::mtls::TRUST_DOMAIN) }
        }]
    })
}

/// An inbound cluster: the original destination, connected from 127.0.0.6, which the
/// pod's iptables never redirect again.
fn inbound_cluster(name: &str) -> Value {
    let mut c = original_dst_cluster(name);
    c["upstream_bind_config"] = json!({
        "source_address": { "address": pod::INBOUND_PASSTHROUGH_SOURCE, "port_value": 0 }
    });
    c
}

/// TLS originated by the sidecar to a server that terminates it (DestinationRule MUTUAL).
fn upstream_originate(client: Option<&CertFiles>, ca: &Path, server_name: &str) -> Value {
    let certificates: Vec<Value> = client.into_iter().map(tls_certificate).collect();
    json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": server_name,
            "common_tls_context": {
                "tls_certificates": certificates,
                "validation_context": {
                    "trusted_ca": { "filename": ca.display().to_string() },
                    "match_typed_subject_alt_names": [{
                        "san_type": "DNS",
                        "matcher": { "exact": server_name }
                    }]
                }
            }
        }
    })
}

/// Istio mTLS from this sidecar to a peer sidecar.
fn upstream_mtls(certs: &CertFiles, sni: &str) -> Value {
    json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": sni,
            "common_tls_context": {
                "alpn_protocols": ISTIO_ALPN,
                "tls_certificates": [tls_certificate(certs)],
                "validation_context": mesh_validation(certs)
            }
        }
    })
}

/// The transport socket of an outbound cluster to a sidecar's `port` of Service `host`, as
/// istiod writes it with auto mTLS (SNI `outbound_.<port>_._.<host>`): for proxies other
/// than a sidecar's virtual outbound listener (the ingress gateway).
pub fn istio_mutual_transport(certs: &CertFiles, port: u16, host: &str) -> Value {
    upstream_mtls(certs, &format!("outbound_.{port}_._.{host}"))
}

/// Istio mTLS terminated by this sidecar: a client certificate is required.
fn downstream_mtls(certs: &CertFiles) -> Value {
    json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": true,
            "common_tls_context": {
                "alpn_protocols": ISTIO_ALPN,
                "tls_certificates": [tls_certificate(certs)],
                "validation_context": mesh_validation(certs)
            }
        }
    })
}

/// A running sidecar.
pub struct Sidecar {
    pub spec: SidecarSpec,
    pub service: Service,
    name: String,
    dir: PathBuf,
}

impl Sidecar {
    /// Write the bootstrap into `dir` and start Envoy; returns once every listener and the
    /// admin port accept connections.
    pub fn start(spec: SidecarSpec, dir: &Path) -> Result<Sidecar> {
        std::fs::create_dir_all(dir)?;
        let config = dir.join(format!("envoy-{}.json", spec.workload));
        std::fs::write(&config, serde_json::to_vec_pretty(&spec.bootstrap())?)
            .with_context(|| format!("writing {}", config.display()))?;
        let envoy = crate::paths::envoy()?;
        // In a pod, as Istio's proxy uid: its own connections are never redirected.
        let mut command = match &spec.pod {
            Some(p) => p.pod.command(&envoy, true),
            None => Command::new(&envoy),
        };
        command
            .arg("-c")
            .arg(&config)
            .args(["--concurrency", &spec.concurrency.to_string()])
            .args(["--disable-hot-restart", "--log-level", "info"])
            .envs(spec.env.iter().map(|(k, v)| (k, v)));
        let name = Sidecar::name_of(&spec.workload);
        // KIOSK_ENVOY_START_SECONDS: more patience, for an Envoy under valgrind.
        let patience = std::env::var("KIOSK_ENVOY_START_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(Duration::from_secs(60), Duration::from_secs);
        let mut service = Service::start(&name, command, dir)?;
        if spec.pod.is_none() {
            service.wait_for_port(spec.admin_port, patience)?;
            for route in &spec.routes {
                service.wait_for_port(route.port, patience)?;
            }
        }
        // An open port may belong to someone else: Envoy is ready only once it says LIVE
        // (a listener that cannot bind makes it exit instead).
        let (host, port) = stats_endpoint(&spec);
        service.wait_until("report LIVE on /ready", patience, || {
            crate::http::get_at(host, port, "/ready").is_ok_and(|body| body.contains("LIVE"))
        })?;
        Ok(Sidecar {
            spec,
            service,
            name,
            dir: dir.to_path_buf(),
        })
    }

    /// Where Prometheus scrapes this sidecar (`/stats/prometheus`).
    pub fn stats_endpoint(&self) -> (std::net::Ipv4Addr, u16) {
        stats_endpoint(&self.spec)
    }

    /// The sidecar's process name: `envoy-<workload>`.
    pub fn name_of(workload: &str) -> String {
        format!("envoy-{workload}")
    }

    fn admin(&self, path: &str) -> Result<String> {
        let (host, port) = self.stats_endpoint();
        crate::http::get_at(host, port, path)
    }

    /// `/stats/prometheus`, parsed.
    pub fn prometheus(&self) -> Result<Vec<crate::prometheus::scrape::Sample>> {
        Ok(crate::prometheus::scrape::parse(&self.prometheus_text()?))
    }

    pub fn prometheus_text(&self) -> Result<String> {
        self.admin("/stats/prometheus")
    }
}

impl Component for Sidecar {
    fn name(&self) -> &str {
        &self.name
    }

    fn services(&self) -> Vec<&Service> {
        vec![&self.service]
    }

    fn services_mut(&mut self) -> Vec<&mut Service> {
        vec![&mut self.service]
    }

    fn stop_grace(&self) -> Duration {
        Duration::ZERO
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        if self.spec.pod.is_none() {
            let ports = self.spec.routes.iter().map(|r| r.port);
            for port in ports.chain([self.spec.admin_port]) {
                crate::ports::wait_closed(port, Duration::from_secs(10))?;
            }
        }
        *self = Sidecar::start(self.spec.clone(), &self.dir)?;
        Ok(())
    }
}
