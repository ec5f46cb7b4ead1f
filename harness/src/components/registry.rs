//! The schema registry of the local mesh: Apicurio Registry 3.3.3 (its Quarkus
//! distribution from Maven Central, `scripts/setup.sh`), in-memory storage, the
//! Confluent-compatible API at [`CCOMPAT_PATH`]. Started in its pod bound to the pod's
//! address; ready when its management port says `/health/ready` is UP.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::components::pod::Pod;
use crate::components::Component;
use crate::process::Service;

/// The Confluent-compatible API's base path.
pub const CCOMPAT_PATH: &str = "/apis/ccompat/v7";
/// The API port (Apicurio's default, the bundle's Service port).
pub const API_PORT: u16 = 8080;
/// Quarkus' management interface (health, metrics): Apicurio's default.
pub const MANAGEMENT_PORT: u16 = 9000;

pub struct SchemaRegistry {
    pub service: Service,
    dir: PathBuf,
    pod: Pod,
}

impl SchemaRegistry {
    /// Start the registry in `pod`, its log in `dir`.
    pub fn start(dir: &Path, pod: Pod) -> Result<SchemaRegistry> {
        let java = crate::paths::java21()?;
        let jar = crate::paths::registry_jar()?;
        let mut command = pod.command(&java, false);
        command
            // Two cores and several JVMs: a small heap, no JIT threads fighting.
            .args([
                "-Xms64m",
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
            ])
            .arg("-XX:CICompilerCount=1")
            .arg(format!("-Dquarkus.http.host={}", pod.ip))
            .arg(format!("-Dquarkus.http.port={API_PORT}"))
            .arg(format!("-Dquarkus.management.host={}", pod.ip))
            .arg(format!("-Dquarkus.management.port={MANAGEMENT_PORT}"))
            .arg("-Dquarkus.log.level=WARN")
            .arg("-Dquarkus.log.category.\"io.quarkus\".level=INFO")
            .arg("-jar")
            .arg(&jar);
        if let Some(app) = jar.parent() {
            command.current_dir(app);
        }
        let mut service = Service::start("schema-registry", command, dir)?;
        let ip = pod.ip;
        service.wait_until("answer /health/ready", Duration::from_secs(120), || {
            ready(ip)
        })?;
        Ok(SchemaRegistry {
            service,
            dir: dir.to_path_buf(),
            pod,
        })
    }
}

/// Whether the registry at `ip` says it is ready (its management port, from the host).
fn ready(ip: Ipv4Addr) -> bool {
    crate::http::request_at(ip, MANAGEMENT_PORT, "GET", "/health/ready", None)
        .is_ok_and(|r| r.status == 200 && r.body.contains("UP"))
}

impl Component for SchemaRegistry {
    fn name(&self) -> &str {
        "schema-registry"
    }

    fn services(&self) -> Vec<&Service> {
        vec![&self.service]
    }

    fn services_mut(&mut self) -> Vec<&mut Service> {
        vec![&mut self.service]
    }

    fn stop_grace(&self) -> Duration {
        Duration::from_secs(15)
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        *self = SchemaRegistry::start(&self.dir, self.pod.clone())?;
        Ok(())
    }
}
