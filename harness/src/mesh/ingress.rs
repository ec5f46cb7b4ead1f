//! The REST entry behind an ingress gateway that requires a JWT (`kiosk up`, default
//! `--ingress jwt`): the bundle's Gateway, VirtualService, RequestAuthentication and
//! AuthorizationPolicy (`istio/`) rendered into a gateway pod ([`crate::istiod`],
//! [`crate::components::gateway`]), the token issuer the RequestAuthentication names
//! (`kiosk issuer`, in its own pod outside the mesh, as an identity provider), and the
//! producer as an OAuth 2.0 client of it.
//!
//! Made per run: the issuer's ES256 signing key and the producer's client secret, each a
//! mode-0600 file laid out as a mounted Secret. The gateway's JWKS is fetched from the
//! issuer's `jwksUri` and inlined, as istiod does.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine;

use super::jobs::step;
use super::names::REST_PORT;
use super::plan::{Plan, NAMESPACE};
use super::secrets::write_secret;
use super::supervisor::Mesh;
use crate::components::envoy::{OutboundPort, Protocol, UpstreamTls};
use crate::components::gateway::{self, GatewaySpec, IngressGateway, Upstream};
use crate::components::mtls::MeshCa;
use crate::components::pipeline::{PipelineService, ServiceSpec};
use crate::components::pod::{self, Network};
use crate::components::prometheus::Target;
use crate::istiod::Ingress;

/// The bundle's Gateway in front of the REST entry.
pub const GATEWAY: &str = "kiosk-rest";
/// The OAuth 2.0 client id the producer uses.
pub const CLIENT_ID: &str = "producer";
/// The gateway Service's host, as the chart's `rest.gateway.url` names it.
pub const GATEWAY_HOST: &str = "istio-ingressgateway.istio-ingress.svc.cluster.local";
/// Access token lifetime (the producer renews 30 s before the end).
const TOKEN_LIFETIME_SECS: u64 = 300;

/// What the ingress needs, read from the bundle before anything starts.
pub struct Prepared {
    pub resources: Ingress,
    /// The issuer (`iss`) of the one jwtRule, its URL's host, port and path prefix.
    pub issuer: String,
    pub audience: String,
    issuer_pod: String,
    issuer_host: String,
    issuer_port: u16,
    jwks_path: String,
}

/// `http://host:port/path` -> (host, port, path).
fn split_url(url: &str) -> Result<(String, u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: the local mesh serves the issuer over http://"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().with_context(|| format!("{url}: port"))?),
        None => (authority, 80),
    };
    Ok((host.to_string(), port, format!("/{path}")))
}

/// Read the bundle's ingress resources and check the local mesh can run them.
pub fn prepare(istio_dir: &Path) -> Result<Prepared> {
    let resources = Ingress::read(istio_dir, GATEWAY, gateway::NAMESPACE)?;
    let [rule] = resources.jwt_rules.as_slice() else {
        bail!(
            "the local mesh runs one token issuer: the gateway's RequestAuthentications have {} jwtRules",
            resources.jwt_rules.len()
        );
    };
    let audience = rule
        .audiences
        .first()
        .cloned()
        .context("the jwtRule names no audience")?;
    let (issuer_host, issuer_port, _) = split_url(&rule.issuer)?;
    let jwks_uri = rule
        .jwks_uri
        .clone()
        .context("the jwtRule has no jwksUri (the local mesh fetches the JWKS as istiod does)")?;
    let (jwks_host, jwks_port, jwks_path) = split_url(&jwks_uri)?;
    if (jwks_host.as_str(), jwks_port) != (issuer_host.as_str(), issuer_port) {
        bail!(
            "jwksUri {jwks_uri} is not served by the issuer {}",
            rule.issuer
        );
    }
    let mut labels = issuer_host.split('.');
    let (Some(issuer_pod), Some(ns)) = (labels.next(), labels.next()) else {
        bail!(
            "issuer {}: expected <service>.<namespace>.svc...",
            rule.issuer
        );
    };
    if ns != NAMESPACE {
        bail!(
            "issuer {}: the local mesh runs it in {NAMESPACE}",
            rule.issuer
        );
    }
    for r in &resources.routes {
        if r.port != REST_PORT {
            bail!(
                "the VirtualService routes to {}:{}; the REST entry serves {REST_PORT}",
                r.host,
                r.port
            );
        }
    }
    Ok(Prepared {
        issuer: rule.issuer.clone(),
        audience,
        issuer_pod: issuer_pod.to_string(),
        issuer_host,
        issuer_port,
        jwks_path,
        resources,
    })
}

impl Prepared {
    /// The gateway's pod and the issuer's: neither has a sidecar (the gateway is a proxy;
    /// the issuer stands outside the mesh as an identity provider does).
    pub fn add_pods(&self, net: &mut Network) {
        net.add_pod(gateway::WORKLOAD, gateway::NAMESPACE, None);
        net.add_pod(&self.issuer_pod, NAMESPACE, None);
    }

    /// `/etc/hosts` lines: the gateway's and the issuer's Service names.
    pub fn hosts(&self, net: &Network) -> Result<String> {
        Ok(format!(
            "{} {GATEWAY_HOST}\n{} {}\n",
            net.pod(gateway::WORKLOAD)?.ip,
            net.pod(&self.issuer_pod)?.ip,
            self.issuer_host
        ))
    }

    /// The client's outbound ports: the gateway's HTTP port and the issuer's, both plain
    /// HTTP (auto mTLS needs a sidecar at the destination; neither has one).
    pub fn client_ports(&self) -> Vec<OutboundPort> {
        vec![
            OutboundPort {
                port: self.resources.gateway.port,
                protocol: Protocol::Http,
                host: GATEWAY_HOST.into(),
                tls: UpstreamTls::None,
            },
            OutboundPort {
                port: self.issuer_port,
                protocol: Protocol::Http,
                host: self.issuer_host.clone(),
                tls: UpstreamTls::None,
            },
        ]
    }
}

/// The ingress, running.
pub struct Started {
    /// The URL the producer posts to (the gateway's Service).
    pub url: String,
    /// The producer's token arguments.
    pub producer_args: Vec<String>,
    /// The gateway's stats, for Prometheus.
    pub target: Target,
}

fn random_secret() -> Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Where the run keeps the issuer's key and clients (mode 0700, files 0600).
pub fn secrets_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("issuer-secrets")
}

/// The issuer's signing key of a run (for tests minting tokens of their own).
pub fn signing_key_file(run_dir: &Path) -> PathBuf {
    secrets_dir(run_dir).join("signing-key.pem")
}

/// The producer's client secret file of a run.
pub fn client_secret_file(run_dir: &Path) -> PathBuf {
    secrets_dir(run_dir).join("clients").join(CLIENT_ID)
}

/// Start the issuer and the gateway, the gateway routing to `plan`'s REST entry.
#[allow(clippy::too_many_arguments)]
pub(super) fn start(
    prepared: &Prepared,
    mesh: &mut Mesh,
    net: &Network,
    ca: &MeshCa,
    plan: &Plan,
    kiosk: &Path,
    wasm: &Path,
    tracing: Option<std::net::SocketAddr>,
) -> Result<Started> {
    use std::os::unix::fs::PermissionsExt;
    let run_dir = mesh.state.run_dir.clone();
    let secrets = secrets_dir(&run_dir);
    std::fs::create_dir_all(secrets.join("clients"))?;
    for dir in [&secrets, &secrets.join("clients")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let key = kiosk_services::issuer::SigningKey::generate()?;
    write_secret(&signing_key_file(&run_dir), key.to_pem().as_bytes())?;
    write_secret(&client_secret_file(&run_dir), random_secret()?.as_bytes())?;

    step(&format!(
        "token issuer {} (ES256, key {}), outside the mesh",
        prepared.issuer,
        key.kid()
    ));
    let issuer_pod = net.pod(&prepared.issuer_pod)?.clone();
    let issuer_ip = issuer_pod.ip;
    let args = vec![
        "issuer".to_string(),
        "--listen".into(),
        format!("0.0.0.0:{}", prepared.issuer_port),
        "--issuer".into(),
        prepared.issuer.clone(),
        "--audience".into(),
        prepared.audience.clone(),
        "--clients".into(),
        secrets.join("clients").display().to_string(),
        "--key-file".into(),
        signing_key_file(&run_dir).display().to_string(),
        "--token-lifetime".into(),
        TOKEN_LIFETIME_SECS.to_string(),
    ];
    mesh.add(PipelineService::start(
        ServiceSpec {
            name: prepared.issuer_pod.clone(),
            program: kiosk.to_path_buf(),
            args,
            env: Vec::new(),
            ready_port: Some(prepared.issuer_port),
            pod: Some(issuer_pod),
        },
        &run_dir,
    )?)?;
    // istiod's part: fetch the JWKS from jwksUri and inline it into the gateway's config.
    let jwks = crate::http::get_at(issuer_ip, prepared.issuer_port, &prepared.jwks_path)
        .with_context(|| format!("fetching the JWKS of {}", prepared.issuer))?;
    serde_json::from_str::<serde_json::Value>(&jwks)
        .ok()
        .filter(|v| v["keys"].as_array().is_some_and(|k| !k.is_empty()))
        .context("the issuer's jwks_uri serves no JWK Set")?;

    step(&format!(
        "ingress gateway {}/{}: Gateway {GATEWAY}, jwt_authn (JWKS inline), RBAC requiring a request principal",
        gateway::NAMESPACE,
        gateway::WORKLOAD
    ));
    let entry = plan
        .workloads
        .iter()
        .find(|w| w.serves_http.is_some())
        .context("the plan has no REST entry")?;
    let entry_ip: Ipv4Addr = net.pod(&entry.name)?.ip;
    let upstreams = prepared
        .resources
        .routes
        .iter()
        .map(|r| Upstream {
            route_host: r.host.clone(),
            route_port: r.port,
            host: entry.serves_http.clone().unwrap_or_default(),
            ip: entry_ip,
            port: REST_PORT,
        })
        .collect();
    let gw_pod = net.pod(gateway::WORKLOAD)?.clone();
    let certs = ca.issue(
        gateway::WORKLOAD,
        gateway::NAMESPACE,
        gateway::WORKLOAD,
        Some(pod::SIDECAR_UID),
    )?;
    let gw = IngressGateway::start(
        GatewaySpec {
            pod: gw_pod,
            certs,
            ingress: prepared.resources.clone(),
            jwks: vec![(prepared.issuer.clone(), jwks)],
            upstreams,
            wasm: wasm.to_path_buf(),
            tracing,
        },
        &run_dir,
    )?;
    let (ip, port) = gw.stats_endpoint();
    mesh.add(gw)?;
    let port_suffix = match prepared.resources.gateway.port {
        80 => String::new(),
        p => format!(":{p}"),
    };
    Ok(Started {
        url: format!("http://{GATEWAY_HOST}{port_suffix}"),
        producer_args: vec![
            "--token-url".into(),
            format!("{}/token", prepared.issuer.trim_end_matches('/')),
            "--client-id".into(),
            CLIENT_ID.into(),
            "--client-secret-file".into(),
            client_secret_file(&run_dir).display().to_string(),
        ],
        target: Target {
            address: format!("{ip}:{port}"),
            namespace: gateway::NAMESPACE.into(),
            workload: gateway::WORKLOAD.into(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_names_an_issuer_the_local_mesh_can_run() {
        let p = prepare(&crate::bundle::default_istio_dir()).unwrap();
        assert_eq!(p.issuer_pod, "kiosk-issuer");
        assert_eq!(p.issuer_port, 8080);
        assert_eq!(p.jwks_path, "/.well-known/jwks.json");
        assert_eq!(p.audience, "kiosk-rest");
        assert_eq!(
            split_url("http://a.b.svc:81/x/y").unwrap(),
            ("a.b.svc".into(), 81, "/x/y".into())
        );
        assert!(split_url("https://a.b").is_err());
    }
}
