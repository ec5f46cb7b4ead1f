//! Envoy sidecars configured the way Istio configures them, run for real.
//!
//! The bootstrap mirrors what istiod and pilot-agent generate for a sidecar, so what is
//! proven here holds in a mesh: node metadata under the keys Istio sets (NAMESPACE,
//! WORKLOAD_NAME, LABELS, CLUSTER_ID, MESH_ID), `stats_config.stats_tags` built from an
//! `extraStatTags` list with Istio's regex, and the filter loaded as
//! `envoy.filters.network.wasm` with the same `pluginConfig` JSON a `WasmPlugin` delivers,
//! fail-open.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

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
}

/// What a listener speaks, which decides its filter chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// The kiosk filter, then `tcp_proxy` (Istio: the WasmPlugin's match ports).
    Kafka,
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
        }
    }

    pub fn inbound(port: u16, upstream: u16, protocol: Protocol) -> Route {
        Route {
            name: String::new(),
            port,
            upstream,
            protocol,
            inbound: true,
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
    pub wasm: PathBuf,
    /// Envoy worker threads (each runs its own Wasm VM).
    pub concurrency: u32,
}

/// Istio's `meshConfig.defaultConfig.extraStatTags` for kiosk: every label the filter emits.
pub fn extra_stat_tags() -> Vec<&'static str> {
    kiosk_filter::metrics::LABELS.to_vec()
}

impl SidecarSpec {
    pub fn bootstrap(&self) -> Value {
        let mut stats_tags: Vec<Value> = extra_stat_tags()
            .into_iter()
            .map(|tag| json!({ "tag_name": tag, "regex": kiosk_filter::labels::tag_regex(tag) }))
            .collect();
        stats_tags.push(json!({ "tag_name": "cluster_name", "regex": CLUSTER_NAME_TAG }));
        let listeners: Vec<Value> = self.routes.iter().map(|r| self.listener(r)).collect();
        let clusters: Vec<Value> = self
            .routes
            .iter()
            .map(|r| {
                json!({
                    "name": r.cluster(),
                    "type": "STATIC",
                    "connect_timeout": "2s",
                    "load_assignment": {
                        "cluster_name": r.cluster(),
                        "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket(r.upstream) } }] }]
                    }
                })
            })
            .collect();
        json!({
            "node": {
                "id": format!("sidecar~127.0.0.1~{}.{}~{}.svc.cluster.local", self.workload, self.namespace, self.namespace),
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
            "admin": { "address": socket(self.admin_port) },
            "static_resources": { "listeners": listeners, "clusters": clusters }
        })
    }

    fn listener(&self, route: &Route) -> Value {
        let cluster = route.cluster();
        let mut filters = Vec::new();
        if route.protocol == Protocol::Http {
            filters.push(json!({
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": cluster,
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
            }));
            return self.listener_with(route, filters);
        }
        if route.protocol == Protocol::Kafka {
            filters.push(json!({
                "name": format!("extensions.istio.io/wasmplugin/{}.kiosk", self.namespace),
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
                    "config": {
                        "name": format!("{}.kiosk", self.namespace),
                        "root_id": "kiosk",
                        "vm_config": {
                            "runtime": "envoy.wasm.runtime.v8",
                            "code": { "local": { "filename": self.wasm.display().to_string() } }
                        },
                        "configuration": {
                            "@type": "type.googleapis.com/google.protobuf.StringValue",
                            "value": self.plugin_config.to_string()
                        },
                        "failure_policy": "FAIL_OPEN"
                    }
                }
            }));
        }
        filters.push(json!({
            "name": "envoy.filters.network.tcp_proxy",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                "stat_prefix": cluster,
                "cluster": cluster
            }
        }));
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
        let mut command = Command::new(crate::paths::envoy()?);
        command
            .arg("-c")
            .arg(&config)
            .args(["--concurrency", &spec.concurrency.to_string()])
            .args(["--disable-hot-restart", "--log-level", "info"]);
        let name = Sidecar::name_of(&spec.workload);
        // KIOSK_ENVOY_START_SECONDS: more patience, for an Envoy under valgrind.
        let patience = std::env::var("KIOSK_ENVOY_START_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(Duration::from_secs(60), Duration::from_secs);
        let mut service = Service::start(&name, command, dir)?;
        service.wait_for_port(spec.admin_port, patience)?;
        for route in &spec.routes {
            service.wait_for_port(route.port, patience)?;
        }
        // An open port may belong to someone else: Envoy is ready only once it says LIVE
        // (a listener that cannot bind makes it exit instead).
        service.wait_until("report LIVE on /ready", patience, || {
            crate::http::get(spec.admin_port, "/ready").is_ok_and(|body| body.contains("LIVE"))
        })?;
        Ok(Sidecar {
            spec,
            service,
            name,
            dir: dir.to_path_buf(),
        })
    }

    /// The sidecar's process name: `envoy-<workload>`.
    pub fn name_of(workload: &str) -> String {
        format!("envoy-{workload}")
    }

    fn admin(&self, path: &str) -> Result<String> {
        crate::http::get(self.spec.admin_port, path)
    }

    /// `/stats/prometheus`, parsed.
    pub fn prometheus(&self) -> Result<Vec<crate::prom::Sample>> {
        Ok(crate::prom::parse(&self.prometheus_text()?))
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

    fn check(&mut self) -> Result<()> {
        self.service.check_running()
    }

    fn stop(&mut self) {
        self.service.stop();
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        let ports = self.spec.routes.iter().map(|r| r.port);
        for port in ports.chain([self.spec.admin_port]) {
            crate::ports::wait_closed(port, Duration::from_secs(10))?;
        }
        *self = Sidecar::start(self.spec.clone(), &self.dir)?;
        Ok(())
    }
}
