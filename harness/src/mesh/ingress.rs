//! The REST entry behind an ingress gateway that requires a JWT (`kiosk up`, default
//! `--ingress jwt`): the bundle's Gateway, VirtualService, RequestAuthentication and
//! AuthorizationPolicy (`istio/`) rendered into a gateway pod ([`crate::istiod`],
//! [`crate::components::gateway`]), the identity provider the RequestAuthentication names
//! (Keycloak with the bundle's realm, in its own pod outside the mesh, [`keycloak`]), and
//! the producer as an OAuth 2.0 client of it.
//!
//! Made per run: the producer's client secret and Keycloak's bootstrap admin password, each
//! a mode-0600 file laid out as a mounted Secret and given to Keycloak by environment (the
//! realm file's placeholders). Keycloak generates its signing keys itself. The gateway's
//! JWKS is fetched from the rule's `jwksUri`, inlined, and fetched again every
//! `--jwks-refresh`, as istiod does.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine;

use super::jobs::step;
use super::names::REST_PORT;
use super::plan::{Plan, NAMESPACE};
use super::secrets::write_secret;
use super::supervisor::Mesh;
use crate::components::envoy::{OutboundPort, Protocol, UpstreamTls};
use crate::components::gateway::{self, GatewaySpec, IngressGateway, Jwks, Upstream};
use crate::components::keycloak::{self, Keycloak, KeycloakSpec, Realm};
use crate::components::mtls::MeshCa;
use crate::components::pod::{self, Network};
use crate::components::prometheus::Target;
use crate::istiod::Ingress;

/// The bundle's Gateway in front of the REST entry.
pub const GATEWAY: &str = "kiosk-rest";
/// The OAuth 2.0 client id the producer uses.
pub const CLIENT_ID: &str = "producer";
/// The gateway Service's host, as the chart's `rest.gateway.url` names it.
pub const GATEWAY_HOST: &str = "istio-ingressgateway.istio-ingress.svc.cluster.local";
/// The realm's placeholders the local mesh fills: the producer's secret and the audience.
const PRODUCER_SECRET_ENV: &str = "KIOSK_PRODUCER_SECRET";
const AUDIENCE_ENV: &str = "KIOSK_REST_AUDIENCE";

/// What the ingress needs, read from the bundle before anything starts.
pub struct Prepared {
    pub resources: Ingress,
    /// The issuer (`iss`) of the one jwtRule: `http://<pod>.<ns>.svc...:<port>/realms/<realm>`.
    pub issuer: String,
    pub audience: String,
    idp_pod: String,
    idp_host: String,
    idp_port: u16,
    jwks_path: String,
    realm_file: PathBuf,
    /// How often the gateway's JWKS is fetched again (istiod's refresh interval).
    pub jwks_refresh: Duration,
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

/// Read the bundle's ingress resources and realm and check the local mesh can run them.
pub fn prepare(istio_dir: &Path, realm_file: &Path, jwks_refresh: Duration) -> Result<Prepared> {
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
    let (issuer_host, issuer_port, issuer_path) = split_url(&rule.issuer)?;
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
    let realm = Realm::read(realm_file)?;
    if issuer_path != format!("/realms/{}", realm.name) {
        bail!(
            "issuer {}: Keycloak's issuer for realm {} ({}) is <origin>/realms/{}",
            rule.issuer,
            realm.name,
            realm_file.display(),
            realm.name
        );
    }
    let client = realm.client(CLIENT_ID).with_context(|| {
        format!(
            "{}: no client {CLIENT_ID} (the producer)",
            realm_file.display()
        )
    })?;
    if !client.client_credentials_only {
        bail!(
            "{}: client {CLIENT_ID} must be confidential with the client-credentials grant only",
            realm_file.display()
        );
    }
    let env = [(AUDIENCE_ENV.to_string(), audience.clone())];
    if !client
        .audiences
        .iter()
        .any(|a| keycloak::resolve(a, &env) == audience)
    {
        bail!(
            "{}: client {CLIENT_ID}'s tokens would not be for {audience} (its audience mappers: {:?})",
            realm_file.display(),
            client.audiences
        );
    }
    if let Some(unset) = realm
        .required_env
        .iter()
        .find(|v| v.as_str() != PRODUCER_SECRET_ENV)
    {
        bail!(
            "{}: ${{{unset}}} has no default and the local mesh does not set it",
            realm_file.display()
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
        idp_pod: issuer_pod.to_string(),
        idp_host: issuer_host,
        idp_port: issuer_port,
        jwks_path,
        realm_file: realm_file.to_path_buf(),
        jwks_refresh,
        resources,
    })
}

impl Prepared {
    /// The gateway's pod and the identity provider's: neither has a sidecar (the gateway
    /// is a proxy; the identity provider stands outside the mesh).
    pub fn add_pods(&self, net: &mut Network) {
        net.add_pod(gateway::WORKLOAD, gateway::NAMESPACE, None);
        net.add_pod(&self.idp_pod, NAMESPACE, None);
    }

    /// `/etc/hosts` lines: the gateway's and the identity provider's Service names.
    pub fn hosts(&self, net: &Network) -> Result<String> {
        Ok(format!(
            "{} {GATEWAY_HOST}\n{} {}\n",
            net.pod(gateway::WORKLOAD)?.ip,
            net.pod(&self.idp_pod)?.ip,
            self.idp_host
        ))
    }

    /// The client's outbound ports: the gateway's HTTP port and the identity provider's,
    /// both plain HTTP (auto mTLS needs a sidecar at the destination; neither has one).
    pub fn client_ports(&self) -> Vec<OutboundPort> {
        vec![
            OutboundPort {
                port: self.resources.gateway.port,
                protocol: Protocol::Http,
                host: GATEWAY_HOST.into(),
                tls: UpstreamTls::None,
            },
            OutboundPort {
                port: self.idp_port,
                protocol: Protocol::Http,
                host: self.idp_host.clone(),
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

/// Where the run keeps the identity provider's secrets (mode 0700, files 0600).
pub fn secrets_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("idp-secrets")
}

/// The producer's client secret file of a run.
pub fn client_secret_file(run_dir: &Path) -> PathBuf {
    secrets_dir(run_dir).join("clients").join(CLIENT_ID)
}

/// Keycloak's bootstrap admin password of a run (user `admin`, realm `master`).
pub fn admin_password_file(run_dir: &Path) -> PathBuf {
    secrets_dir(run_dir).join("admin-password")
}

/// Keycloak, starting: the mesh starts it right after the pods, as it takes the longest to
/// be ready, and [`start`] waits for it.
pub struct StartingIdp(Keycloak, Instant);

/// Make the run's secrets and start Keycloak in its pod with the bundle's realm.
pub(super) fn spawn_idp(prepared: &Prepared, net: &Network, run_dir: &Path) -> Result<StartingIdp> {
    use std::os::unix::fs::PermissionsExt;
    let secrets = secrets_dir(run_dir);
    std::fs::create_dir_all(secrets.join("clients"))?;
    for dir in [&secrets, &secrets.join("clients")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let producer_secret = random_secret()?;
    let admin_password = random_secret()?;
    write_secret(&client_secret_file(run_dir), producer_secret.as_bytes())?;
    write_secret(&admin_password_file(run_dir), admin_password.as_bytes())?;
    let origin = prepared
        .issuer
        .strip_suffix(realm_path(&prepared.issuer))
        .unwrap_or(&prepared.issuer)
        .to_string();
    step(&format!(
        "identity provider: Keycloak in pod {}/{} outside the mesh, realm {} imported ({}), issuer {}",
        NAMESPACE,
        prepared.idp_pod,
        realm_path(&prepared.issuer).trim_start_matches("/realms/"),
        prepared
            .realm_file
            .strip_prefix(crate::paths::root())
            .unwrap_or(&prepared.realm_file)
            .display(),
        prepared.issuer
    ));
    let idp = Keycloak::spawn(
        KeycloakSpec {
            pod: net.pod(&prepared.idp_pod)?.clone(),
            port: prepared.idp_port,
            hostname: origin,
            realm_file: prepared.realm_file.clone(),
            env: vec![
                ("KC_BOOTSTRAP_ADMIN_USERNAME".into(), "admin".into()),
                ("KC_BOOTSTRAP_ADMIN_PASSWORD".into(), admin_password),
                (PRODUCER_SECRET_ENV.into(), producer_secret),
                (AUDIENCE_ENV.into(), prepared.audience.clone()),
            ],
            ready_path: prepared.jwks_path.clone(),
        },
        run_dir,
    )?;
    Ok(StartingIdp(idp, Instant::now()))
}

/// `http://host:port/realms/x` -> `/realms/x`.
fn realm_path(issuer: &str) -> &str {
    issuer.find("/realms/").map_or("", |i| &issuer[i..])
}

/// Wait for the identity provider, check what it publishes, and start the gateway, routing
/// to `plan`'s REST entry.
#[allow(clippy::too_many_arguments)]
pub(super) fn start(
    prepared: &Prepared,
    idp: StartingIdp,
    mesh: &mut Mesh,
    net: &Network,
    ca: &MeshCa,
    plan: &Plan,
    wasm: &Path,
    tracing: Option<std::net::SocketAddr>,
) -> Result<Started> {
    let run_dir = mesh.state.run_dir.clone();
    let StartingIdp(mut keycloak, spawned) = idp;
    keycloak.wait_ready()?;
    let idp_ip = keycloak.spec.pod.ip;
    mesh.add(keycloak)?;
    // What an OIDC client reads first: the issuer must be the pinned one whatever address
    // was asked, and the token endpoint is the producer's.
    let discovery_path = format!(
        "{}/.well-known/openid-configuration",
        realm_path(&prepared.issuer)
    );
    let discovery: serde_json::Value = serde_json::from_str(
        &crate::http::get_at(idp_ip, prepared.idp_port, &discovery_path)
            .context("Keycloak's OpenID discovery document")?,
    )?;
    if discovery["issuer"] != prepared.issuer.as_str() {
        bail!(
            "Keycloak names its issuer {} (the RequestAuthentication: {}): --hostname did not pin it",
            discovery["issuer"],
            prepared.issuer
        );
    }
    let token_url = discovery["token_endpoint"]
        .as_str()
        .context("no token_endpoint in Keycloak's discovery document")?
        .to_string();
    // istiod's part: fetch the JWKS from jwksUri and inline it into the gateway's config.
    let jwks = Jwks::fetch(
        &prepared.issuer,
        idp_ip,
        prepared.idp_port,
        &prepared.jwks_path,
    )?;
    step(&format!(
        "Keycloak ready {:.0} s after its start: JWKS keys {}; token endpoint {token_url}",
        spawned.elapsed().as_secs_f64(),
        jwks.kids().join(", ")
    ));

    step(&format!(
        "ingress gateway {}/{}: Gateway {GATEWAY}, jwt_authn (JWKS inline, fetched again every {} s), RBAC requiring a request principal",
        gateway::NAMESPACE,
        gateway::WORKLOAD,
        prepared.jwks_refresh.as_secs()
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
            jwks: vec![jwks],
            jwks_refresh: prepared.jwks_refresh,
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
            token_url,
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
        let p = prepare(
            &crate::bundle::default_istio_dir(),
            &crate::bundle::default_realm_file(),
            Duration::from_secs(1200),
        )
        .unwrap();
        assert_eq!(p.idp_pod, "keycloak");
        assert_eq!(p.idp_port, 8080);
        assert_eq!(p.jwks_path, "/realms/kiosk/protocol/openid-connect/certs");
        assert_eq!(p.audience, "kiosk-rest");
        assert_eq!(realm_path(&p.issuer), "/realms/kiosk");
        assert_eq!(
            split_url("http://a.b.svc:81/x/y").unwrap(),
            ("a.b.svc".into(), 81, "/x/y".into())
        );
        assert!(split_url("https://a.b").is_err());
    }
}
