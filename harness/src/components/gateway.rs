//! Istio's ingress gateway, run for real: one Envoy in a pod of its own (`istio-ingress`
//! namespace, no sidecar: the gateway is the proxy), configured as istiod configures a
//! router for the bundle's Gateway, VirtualService, RequestAuthentication and
//! AuthorizationPolicy ([`crate::istiod`]). The upstream leg to the REST entry's sidecar is
//! Istio mTLS with the gateway's own SPIFFE identity; the stats are served on 15090 with the
//! HTTP tags istiod's bootstrap defines, so that JWT and RBAC refusals are labelled series.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::components::envoy::{istio_mutual_transport, PodSidecar, SidecarSpec};
use crate::components::mtls::CertFiles;
use crate::components::pod::{self, Pod};
use crate::components::Component;
use crate::istiod::{self, Ingress, Route};
use crate::process::Service;

/// The gateway workload as the istio/gateway chart names it (release istio-ingressgateway).
pub const WORKLOAD: &str = "istio-ingressgateway";
pub const NAMESPACE: &str = "istio-ingress";

/// Where a route's destination runs.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// The destination as the VirtualService names it.
    pub route_host: String,
    pub route_port: u16,
    /// The Service host that runs it here (the REST entry standing in for the Bridge's
    /// Service): it names the cluster and the mTLS SNI, as Kiali then names the edge.
    pub host: String,
    pub ip: std::net::Ipv4Addr,
    pub port: u16,
}

#[derive(Clone, Debug)]
pub struct GatewaySpec {
    pub pod: Pod,
    pub certs: CertFiles,
    pub ingress: Ingress,
    /// The JWKS of each jwtRule, as istiod inlines it (issuer -> JWKS JSON).
    pub jwks: Vec<(String, String)>,
    pub upstreams: Vec<Upstream>,
    /// The kiosk filter module (the sidecar bootstrap names it; no chain loads it here).
    pub wasm: PathBuf,
    /// Where spans go (OTLP gRPC); `None`: no tracing.
    pub tracing: Option<std::net::SocketAddr>,
}

impl GatewaySpec {
    fn upstream(&self, route: &Route) -> Result<&Upstream> {
        self.upstreams
            .iter()
            .find(|u| u.route_host == route.host && u.route_port == route.port)
            .with_context(|| {
                format!(
                    "the VirtualService routes to {}:{}, which the local mesh does not run",
                    route.host, route.port
                )
            })
    }

    /// The router's bootstrap: the sidecar bootstrap's node metadata, stats tags and
    /// 15090 stats listener (envoy.rs), with the gateway's listener and clusters instead
    /// of the sidecar's virtual listeners.
    pub fn bootstrap(&self) -> Result<Value> {
        let base = SidecarSpec {
            env: Vec::new(),
            workload: WORKLOAD.into(),
            namespace: NAMESPACE.into(),
            app: WORKLOAD.into(),
            admin_port: 0,
            routes: Vec::new(),
            plugin_config: json!({}),
            mongodb_plugin_config: serde_json::json!({ "protocol": "mongodb" }),
            wasm: self.wasm.clone(),
            concurrency: 1,
            pod: Some(PodSidecar {
                pod: self.pod.clone(),
                certs: self.certs.clone(),
                outbound: Vec::new(),
                inbound: Vec::new(),
                inbound_http: Vec::new(),
                inbound_passthrough: Vec::new(),
                strict: false,
                tracing: None,
            }),
        };
        let mut b = base.bootstrap();
        b["node"]["id"] = json!(format!(
            "router~{}~{}.{NAMESPACE}~{NAMESPACE}.svc.cluster.local",
            self.pod.ip, self.pod.name
        ));
        let mut labels = json!({ "app": WORKLOAD, "version": "v1" });
        for (k, v) in &self.ingress.gateway.selector {
            labels[k] = json!(v);
        }
        b["node"]["metadata"]["LABELS"] = labels;
        if let Some(tags) = b["stats_config"]["stats_tags"].as_array_mut() {
            tags.extend(istiod::istio_http_stats_tags());
        }
        let jwt = if self.ingress.jwt_rules.is_empty() {
            None
        } else {
            Some(istiod::jwt_authn(&self.ingress.jwt_rules, &|rule| {
                self.jwks
                    .iter()
                    .find(|(issuer, _)| *issuer == rule.issuer)
                    .map(|(_, jwks)| jwks.clone())
                    .with_context(|| format!("no JWKS for issuer {}", rule.issuer))
            })?)
        };
        for r in &self.ingress.routes {
            self.upstream(r)?;
        }
        // The istio/gateway chart's Service maps port 80 to the pods' port 80 (the pod may
        // bind it: net.ipv4.ip_unprivileged_port_start): the listener is on the server's port.
        let listener = istiod::listener(&self.ingress, self.ingress.gateway.port, jwt, &|r| {
            self.upstream(r)
                .map(|u| istiod::cluster_name(&u.host, u.port))
                .unwrap_or_default()
        })?;
        let static_resources = &mut b["static_resources"];
        let keep = |v: &Value| v["name"] == "prometheus_stats";
        let mut listeners: Vec<Value> = static_resources["listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| keep(l))
            .cloned()
            .collect();
        listeners.push(listener);
        let mut clusters: Vec<Value> = static_resources["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| keep(c))
            .cloned()
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        for u in &self.upstreams {
            let name = istiod::cluster_name(&u.host, u.port);
            if !seen.insert(name.clone()) {
                continue;
            }
            // An EDS cluster in Istio; here its one endpoint, the pod's address.
            clusters.push(json!({
                "name": name,
                "type": "STATIC",
                "connect_timeout": "10s",
                "load_assignment": {
                    "cluster_name": name,
                    "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": {
                        "socket_address": { "address": u.ip.to_string(), "port_value": u.port }
                    }}}]}]
                },
                "transport_socket": istio_mutual_transport(&self.certs, u.port, &u.host)
            }));
        }
        if let Some(collector) = self.tracing {
            let service = format!("{WORKLOAD}.{NAMESPACE}");
            crate::components::envoy::add_tracing(
                &mut listeners,
                &mut clusters,
                collector,
                &service,
            );
        }
        static_resources["listeners"] = json!(listeners);
        static_resources["clusters"] = json!(clusters);
        Ok(b)
    }
}

/// The running gateway.
pub struct IngressGateway {
    pub spec: GatewaySpec,
    service: Service,
    dir: PathBuf,
}

impl IngressGateway {
    pub const NAME: &'static str = "envoy-istio-ingressgateway";

    /// Write the bootstrap, start Envoy in the pod and wait until it reports LIVE.
    pub fn start(spec: GatewaySpec, dir: &Path) -> Result<IngressGateway> {
        let config = dir.join(format!("envoy-{WORKLOAD}.json"));
        std::fs::write(&config, serde_json::to_vec_pretty(&spec.bootstrap()?)?)
            .with_context(|| format!("writing {}", config.display()))?;
        let envoy = crate::paths::envoy()?;
        let mut command = spec.pod.command(&envoy, true);
        command
            .arg("-c")
            .arg(&config)
            .args(["--concurrency", "1"])
            .args(["--disable-hot-restart", "--log-level", "info"]);
        let mut service = Service::start(Self::NAME, command, dir)?;
        let ip = spec.pod.ip;
        service.wait_until("report LIVE on /ready", Duration::from_secs(60), || {
            crate::http::get_at(ip, pod::STATS_PORT, "/ready").is_ok_and(|b| b.contains("LIVE"))
        })?;
        Ok(IngressGateway {
            spec,
            service,
            dir: dir.to_path_buf(),
        })
    }

    /// Where Prometheus scrapes it.
    pub fn stats_endpoint(&self) -> (std::net::Ipv4Addr, u16) {
        (self.spec.pod.ip, pod::STATS_PORT)
    }
}

impl Component for IngressGateway {
    fn name(&self) -> &str {
        Self::NAME
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
        *self = IngressGateway::start(self.spec.clone(), &self.dir)?;
        Ok(())
    }
}
