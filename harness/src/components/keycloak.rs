//! The identity provider of the local mesh: Keycloak 26.7.3 (its Quarkus distribution from
//! Maven Central, built once by `scripts/setup.sh` with `kc.sh build --db=dev-file`), in
//! production mode (`start --optimized`) with H2 in a file, one node (`--cache=local`), the
//! bundle's realm imported at its first start. Its issuer is pinned by `--hostname` to the
//! Service name the bundle's RequestAuthentication names, whatever address a request came to.
//!
//! Keycloak keeps its data in `<home>/data` and imports from `<home>/data/import`, where
//! `<home>` is the directory above `kc.sh` (no option moves them). Each run therefore gets a
//! home of its own: `bin/` copied (`kc.sh` finds the home as `bin/..`), the rest of the built
//! distribution linked. Secrets come in by environment, as from a Kubernetes Secret.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::components::pod::Pod;
use crate::components::Component;
use crate::process::Service;

/// 14 s on an idle machine; a mesh starting beside it on two cores can triple that.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// What the process is called (its log is `keycloak.log` in the run directory).
pub const NAME: &str = "keycloak";

#[derive(Clone, Debug)]
pub struct KeycloakSpec {
    pub pod: Pod,
    pub port: u16,
    /// `--hostname`: the issuer's origin (`http://<service>.<ns>.svc.cluster.local:<port>`).
    pub hostname: String,
    /// The realm import file (`${ENV}` placeholders resolved from `env` at import).
    pub realm_file: PathBuf,
    /// Environment for the server: the bootstrap admin and the realm's secrets.
    pub env: Vec<(String, String)>,
    /// What answers 200 once the realm is served (its JWKS).
    pub ready_path: String,
}

pub struct Keycloak {
    pub spec: KeycloakSpec,
    service: Service,
    dir: PathBuf,
}

impl Keycloak {
    /// Lay out the run's Keycloak home under `dir` (kept on a restart, as a volume is) and
    /// start the server. It is ready when [`Keycloak::ready`] says so; the caller waits
    /// (it takes 14 s or more, so the mesh starts it early and waits where it needs it).
    pub fn spawn(spec: KeycloakSpec, dir: &Path) -> Result<Keycloak> {
        let dist = crate::paths::keycloak()?;
        let java = crate::paths::java21()?;
        let java_home = java
            .canonicalize()
            .ok()
            .and_then(|j| Some(j.parent()?.parent()?.to_path_buf()))
            .with_context(|| format!("{}: not <JAVA_HOME>/bin/java", java.display()))?;
        let home = home(dir);
        if !home.join("bin/kc.sh").is_file() {
            make_home(&dist, &home, &spec.realm_file)?;
        }
        let mut command = spec.pod.command(home.join("bin/kc.sh"), false);
        command
            .args(["start", "--optimized", "--http-enabled=true"])
            .arg(format!("--http-host={}", spec.pod.ip))
            .arg(format!("--http-port={}", spec.port))
            .arg(format!("--hostname={}", spec.hostname))
            .args(["--cache=local", "--import-realm"])
            .env("JAVA_HOME", java_home)
            // Two cores and several JVMs: no JIT threads fighting.
            .env(
                "JAVA_OPTS_APPEND",
                "-XX:TieredStopAtLevel=1 -XX:CICompilerCount=1",
            );
        for (k, v) in &spec.env {
            command.env(k, v);
        }
        let service = Service::start(NAME, command, dir)?;
        Ok(Keycloak {
            spec,
            service,
            dir: dir.to_path_buf(),
        })
    }

    /// Wait until the realm's JWKS answers 200, as a readiness probe would.
    pub fn wait_ready(&mut self) -> Result<()> {
        let (ip, port, path) = (
            self.spec.pod.ip,
            self.spec.port,
            self.spec.ready_path.clone(),
        );
        self.service
            .wait_until(&format!("answer {path}"), READY_TIMEOUT, || {
                crate::http::request_at(ip, port, "GET", &path, None).is_ok_and(|r| r.status == 200)
            })
    }
}

/// The run's Keycloak home.
pub fn home(dir: &Path) -> PathBuf {
    dir.join("keycloak")
}

/// `bin/` copied, `lib`, `conf`, `providers`, `themes` linked to the built distribution, the
/// realm in `data/import/`.
fn make_home(dist: &Path, home: &Path, realm_file: &Path) -> Result<()> {
    let import = home.join("data/import");
    std::fs::create_dir_all(&import)?;
    copy_dir(&dist.join("bin"), &home.join("bin"))?;
    for d in ["lib", "conf", "providers", "themes"] {
        std::os::unix::fs::symlink(dist.join(d), home.join(d))
            .with_context(|| format!("linking {}", home.join(d).display()))?;
    }
    std::fs::copy(realm_file, import.join("realm.json"))
        .with_context(|| format!("copying {}", realm_file.display()))?;
    Ok(())
}

/// Copy a directory tree, keeping modes (kc.sh and its helpers are executable).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

impl Component for Keycloak {
    fn name(&self) -> &str {
        NAME
    }

    fn services(&self) -> Vec<&Service> {
        vec![&self.service]
    }

    fn services_mut(&mut self) -> Vec<&mut Service> {
        vec![&mut self.service]
    }

    /// kc.sh forwards SIGTERM to the JVM, which stops in a second or two and closes H2.
    fn stop_grace(&self) -> Duration {
        Duration::from_secs(15)
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        *self = Keycloak::spawn(self.spec.clone(), &self.dir)?;
        self.wait_ready()
    }
}

/// What the local mesh needs to know of a realm import file (Keycloak's own format).
#[derive(Clone, Debug)]
pub struct Realm {
    pub name: String,
    pub clients: Vec<RealmClient>,
    /// The `${VAR}` placeholders without a default: the server must have each in its
    /// environment, or the literal text becomes the value (a secret anyone could guess).
    pub required_env: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct RealmClient {
    pub client_id: String,
    /// Confidential and allowed the client-credentials grant only.
    pub client_credentials_only: bool,
    /// The audiences its audience mappers add, placeholders as written.
    pub audiences: Vec<String>,
}

impl Realm {
    pub fn read(file: &Path) -> Result<Realm> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the realm file {}", file.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))?;
        let name = v["realm"]
            .as_str()
            .with_context(|| format!("{}: no `realm`", file.display()))?
            .to_string();
        let flag = |c: &serde_json::Value, k: &str| c[k].as_bool().unwrap_or(false);
        let clients = v["clients"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some(RealmClient {
                    client_id: c["clientId"].as_str()?.to_string(),
                    client_credentials_only: flag(c, "serviceAccountsEnabled")
                        && !flag(c, "publicClient")
                        && !flag(c, "standardFlowEnabled")
                        && !flag(c, "implicitFlowEnabled")
                        && !flag(c, "directAccessGrantsEnabled"),
                    audiences: c["protocolMappers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|m| m["protocolMapper"] == "oidc-audience-mapper")
                        .filter_map(|m| m["config"]["included.custom.audience"].as_str())
                        .map(String::from)
                        .collect(),
                })
            })
            .collect();
        let required_env = placeholders(&text)
            .into_iter()
            .filter(|(_, default)| default.is_none())
            .map(|(name, _)| name)
            .collect();
        Ok(Realm {
            name,
            clients,
            required_env,
        })
    }

    pub fn client(&self, id: &str) -> Option<&RealmClient> {
        self.clients.iter().find(|c| c.client_id == id)
    }
}

/// `${NAME}` and `${NAME:default}` in `text`, as Keycloak's import resolves them.
fn placeholders(text: &str) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find('}') else { break };
        let inner = &rest[..end];
        found.push(match inner.split_once(':') {
            Some((name, default)) => (name.to_string(), Some(default.to_string())),
            None => (inner.to_string(), None),
        });
        rest = &rest[end + 1..];
    }
    found
}

/// `value` with its placeholders resolved from `env` (then their defaults).
pub fn resolve(value: &str, env: &[(String, String)]) -> String {
    let mut out = value.to_string();
    for (name, default) in placeholders(value) {
        let written = match &default {
            Some(d) => format!("${{{name}:{d}}}"),
            None => format!("${{{name}}}"),
        };
        let by_env = env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
        if let Some(v) = by_env.or(default) {
            out = out.replace(&written, &v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundles_realm_reads_and_resolves() {
        let realm = Realm::read(&crate::bundle::default_realm_file()).unwrap();
        assert_eq!(realm.name, "kiosk");
        let producer = realm.client("producer").unwrap();
        assert!(producer.client_credentials_only);
        assert_eq!(realm.required_env, ["KIOSK_PRODUCER_SECRET"]);
        let [audience] = producer.audiences.as_slice() else {
            panic!("{producer:?}")
        };
        assert_eq!(resolve(audience, &[]), "kiosk-rest");
        let env = [("KIOSK_REST_AUDIENCE".to_string(), "other".to_string())];
        assert_eq!(resolve(audience, &env), "other");
        assert_eq!(
            placeholders("a ${X} b ${Y:1:2} ${"),
            [("X".into(), None), ("Y".into(), Some("1:2".into()))]
        );
    }
}
