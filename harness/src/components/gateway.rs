//! Istio's ingress gateway, run for real: one Envoy in a pod of its own (`istio-ingress`
//! namespace, no sidecar: the gateway is the proxy), configured as istiod configures a
//! router for the bundle's Gateway, VirtualService, RequestAuthentication and
//! AuthorizationPolicy ([`crate::istiod`]). The upstream leg to the REST entry's sidecar is
//! Istio mTLS with the gateway's own SPIFFE identity; the stats are served on 15090 with the
//! HTTP tags istiod's bootstrap defines, so that JWT and RBAC refusals are labelled series.
//!
//! The JWKS is istiod's part too: fetched from each jwtRule's `jwksUri`, inlined, and
//! fetched again every [`GatewaySpec::jwks_refresh`] (istiod's
//! `PILOT_JWT_PUB_KEY_REFRESH_INTERVAL`, 20 minutes by default); when it changed, the
//! gateway gets the new configuration. Istio pushes it over xDS; this gateway's
//! configuration is static, so it restarts with it (the one difference: connections open
//! at that moment are closed rather than drained).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    pub ip: Ipv4Addr,
    pub port: u16,
}

/// An issuer's JWK Set as istiod fetched it from the jwtRule's `jwksUri`.
#[derive(Clone, Debug)]
pub struct Jwks {
    pub issuer: String,
    /// Where `jwksUri` points (its host resolved to the pod serving it).
    pub ip: Ipv4Addr,
    pub port: u16,
    pub path: String,
    /// The JWK Set's text, inlined into jwt_authn.
    pub text: String,
}

impl Jwks {
    /// Fetch the JWK Set and check it is one (a `keys` array that is not empty).
    pub fn fetch(issuer: &str, ip: Ipv4Addr, port: u16, path: &str) -> Result<Jwks> {
        let text = crate::http::get_at(ip, port, path)
            .with_context(|| format!("fetching the JWKS of {issuer} from {path}"))?;
        let jwks = Jwks {
            issuer: issuer.to_string(),
            ip,
            port,
            path: path.to_string(),
            text,
        };
        if jwks.kids().is_empty() {
            anyhow::bail!("{issuer}: {path} serves no JWK Set with keys");
        }
        Ok(jwks)
    }

    /// The same source, fetched again.
    pub fn refetch(&self) -> Result<Jwks> {
        Jwks::fetch(&self.issuer, self.ip, self.port, &self.path)
    }

    /// The keys' ids, in the set's order.
    pub fn kids(&self) -> Vec<String> {
        serde_json::from_str::<Value>(&self.text)
            .ok()
            .and_then(|v| {
                v["keys"].as_array().map(|keys| {
                    keys.iter()
                        .map(|k| k["kid"].as_str().unwrap_or("(no kid)").to_string())
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    /// Whether two fetches hold the same keys (whatever their order or formatting).
    fn same_as(&self, other: &Jwks) -> bool {
        let keys = |j: &Jwks| {
            let v = serde_json::from_str::<Value>(&j.text).unwrap_or_default();
            let mut keys: Vec<String> = v["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .map(Value::to_string)
                .collect();
            keys.sort();
            keys
        };
        keys(self) == keys(other)
    }
}

#[derive(Clone, Debug)]
pub struct GatewaySpec {
    pub pod: Pod,
    pub certs: CertFiles,
    pub ingress: Ingress,
    /// The JWKS of each jwtRule, as istiod inlines it (issuer -> JWKS JSON).
    pub jwks: Vec<Jwks>,
    /// How often istiod fetches each JWKS again.
    pub jwks_refresh: Duration,
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
                    .find(|j| j.issuer == rule.issuer)
                    .map(|j| j.text.clone())
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
    /// When istiod last fetched the JWKS.
    jwks_fetched: Instant,
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
            jwks_fetched: Instant::now(),
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

    /// istiod's JWKS refresh: fetch every issuer's JWKS again when due; if one changed, the
    /// gateway takes the new configuration. A fetch that fails keeps the last JWKS.
    fn reconcile(&mut self) -> Result<Option<String>> {
        if self.jwks_fetched.elapsed() < self.spec.jwks_refresh {
            return Ok(None);
        }
        self.jwks_fetched = Instant::now();
        let mut changed = Vec::new();
        for jwks in &mut self.spec.jwks {
            match jwks.refetch() {
                Ok(new) if !new.same_as(jwks) => {
                    changed.push(format!(
                        "{}: keys {} (were {})",
                        jwks.issuer,
                        new.kids().join(", "),
                        jwks.kids().join(", ")
                    ));
                    *jwks = new;
                }
                Ok(_) => {}
                Err(e) => {
                    return Ok(Some(format!(
                        "JWKS refresh: {e:#}; the gateway keeps the last JWKS"
                    )))
                }
            }
        }
        if changed.is_empty() {
            return Ok(None);
        }
        // The new spec is kept even if the restart fails: the supervisor's restart uses it.
        self.restart()?;
        Ok(Some(format!(
            "JWKS refresh: {}; the gateway's jwt_authn has the new JWKS",
            changed.join("; ")
        )))
    }
}
