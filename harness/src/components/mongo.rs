//! The MongoDB-wire server of the local mesh: SecantusDB (PyPI), with SCRAM-SHA-256
//! authentication and a per-run user whose password is never the default.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use mongodb::bson::doc;

use crate::components::pod::Pod;
use crate::components::Component;
use crate::process::Service;

/// The application user of the pipeline.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    /// A user with a random password ([`random_password`]).
    pub fn generate(user: &str) -> Result<Credentials> {
        Ok(Credentials {
            user: user.to_string(),
            password: random_password()?,
        })
    }

    /// A connection string to `127.0.0.1:port` (a sidecar listener, or the server).
    pub fn uri(&self, port: u16) -> String {
        self.uri_at("127.0.0.1", port)
    }

    /// A connection string to `host:port` (the service name, in a pod).
    pub fn uri_at(&self, host: &str, port: u16) -> String {
        format!(
            "mongodb://{}:{}@{host}:{port}/?authSource=admin&authMechanism=SCRAM-SHA-256&directConnection=true",
            self.user, self.password
        )
    }
}

pub struct MongoServer {
    pub port: u16,
    pub service: Service,
    dir: PathBuf,
    pod: Option<Pod>,
}

impl MongoServer {
    /// Start SecantusDB on `port` (in `pod`, if given) with its data in `dir`, having
    /// created `credentials` as a user the server's documented way: once without auth (on
    /// the host's loopback, before the server is reachable from anywhere), then for good
    /// with `--auth`.
    pub async fn start(
        dir: &Path,
        port: u16,
        credentials: &Credentials,
        pod: Option<Pod>,
    ) -> Result<MongoServer> {
        let data = dir.join("secantus-data");
        std::fs::create_dir_all(&data)?;
        let setup_port = crate::ports::free()?;
        {
            let mut setup =
                MongoServer::spawn("mongodb-setup", dir, &data, setup_port, false, None)?;
            provision(setup_port, credentials).await.with_context(|| {
                format!(
                    "creating the MongoDB user; log: {}",
                    setup.service.log.display()
                )
            })?;
            // A graceful stop: SecantusDB writes the user out on shutdown.
            setup.service.terminate(Duration::from_secs(15));
        }
        crate::ports::wait_closed(setup_port, Duration::from_secs(10))?;
        MongoServer::spawn("mongodb", dir, &data, port, true, pod)
    }

    /// Start again, with authentication, a server [`start`](Self::start) provisioned in
    /// `dir` (its data and users are kept).
    pub fn restart(dir: &Path, port: u16, pod: Option<Pod>) -> Result<MongoServer> {
        MongoServer::spawn("mongodb", dir, &dir.join("secantus-data"), port, true, pod)
    }

    fn spawn(
        name: &str,
        dir: &Path,
        data: &Path,
        port: u16,
        auth: bool,
        pod: Option<Pod>,
    ) -> Result<MongoServer> {
        let secantusd = crate::paths::secantusd()?;
        let (mut command, bind) = match &pod {
            Some(p) => (p.command(&secantusd, false), "0.0.0.0"),
            None => (Command::new(&secantusd), "127.0.0.1"),
        };
        command
            .args(["--host", bind, "--port", &port.to_string()])
            .arg("--storage-path")
            .arg(data)
            .args(["--standalone", "--log-level", "WARNING"]);
        if auth {
            command.arg("--auth");
        }
        let mut service = Service::start(name, command, dir)?;
        service.wait_listening(port, Duration::from_secs(60))?;
        Ok(MongoServer {
            port,
            service,
            dir: dir.to_path_buf(),
            pod,
        })
    }
}

async fn provision(port: u16, credentials: &Credentials) -> Result<()> {
    let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    let client = mongodb::Client::with_uri_str(&uri).await?;
    client
        .database("admin")
        .run_command(doc! {
            "createUser": &credentials.user,
            "pwd": &credentials.password,
            "roles": [{ "role": "readWrite", "db": "pipeline" }],
        })
        .await?;
    Ok(())
}

impl Component for MongoServer {
    fn name(&self) -> &str {
        "mongodb"
    }

    fn services(&self) -> Vec<&Service> {
        vec![&self.service]
    }

    fn check(&mut self) -> Result<()> {
        self.service.check_running()
    }

    fn stop(&mut self) {
        // Gracefully: SecantusDB writes its data out on shutdown.
        self.service.terminate(Duration::from_secs(15));
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        if self.pod.is_none() {
            crate::ports::wait_closed(self.port, Duration::from_secs(10))?;
        }
        *self = MongoServer::restart(&self.dir, self.port, self.pod.clone())?;
        Ok(())
    }
}

/// A random password as an operator generates one: 16 bytes of /dev/urandom, hex (safe in
/// a URI, a JAAS value and a StorageTool SCRAM argument alike).
pub fn random_password() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
