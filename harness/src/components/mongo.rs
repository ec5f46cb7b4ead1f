//! The MongoDB-wire server of the local mesh: SecantusDB (PyPI) as the bundle runs
//! mongod: TLS required, client certificates required, authentication required, its
//! users the X.509 identities of the client workloads (the subject DNs of their
//! certificates, on `$external`), created the server's documented way.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use mongodb::bson::doc;

use crate::components::pod::Pod;
use crate::components::Component;
use crate::process::Service;

/// The server's TLS: its certificate and key, and the CA its clients' certificates must
/// chain to (required).
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

/// A user authenticated by its certificate (MONGODB-X509): `subject` is the certificate's
/// subject DN as the server reads it (RFC 4514, e.g. `CN=kiosk-connect`), with
/// `readWrite` on `database`.
#[derive(Clone, Debug)]
pub struct X509User {
    pub subject: String,
    pub database: String,
}

/// The connection string an app uses: the server's name and port, nothing else (no user,
/// no password, no TLS option: the sidecar supplies those).
pub fn uri(host: &str, port: u16) -> String {
    format!("mongodb://{host}:{port}/?directConnection=true")
}

pub struct MongoServer {
    pub port: u16,
    pub service: Service,
    dir: PathBuf,
    tls: Option<ServerTls>,
    pod: Option<Pod>,
}

impl MongoServer {
    /// Start SecantusDB on `port` (in `pod`, if given) with its data in `dir`. With `tls`,
    /// TLS and client certificates are required and so is authentication, `users` having
    /// been created once without either (on the host's loopback, before the server is
    /// reachable from anywhere); without, the server is open (`--mongodb-auth none`).
    pub async fn start(
        dir: &Path,
        port: u16,
        users: &[X509User],
        tls: Option<ServerTls>,
        pod: Option<Pod>,
    ) -> Result<MongoServer> {
        let data = dir.join("secantus-data");
        std::fs::create_dir_all(&data)?;
        if tls.is_some() {
            let setup_port = crate::ports::free()?;
            let mut setup =
                MongoServer::spawn("mongodb-setup", dir, &data, setup_port, None, None)?;
            provision(setup_port, users).await.with_context(|| {
                format!(
                    "creating the MongoDB users; log: {}",
                    setup.service.log.display()
                )
            })?;
            // A graceful stop: SecantusDB writes the users out on shutdown.
            setup.service.terminate(Duration::from_secs(15));
            crate::ports::wait_closed(setup_port, Duration::from_secs(10))?;
        }
        MongoServer::spawn("mongodb", dir, &data, port, tls, pod)
    }

    /// Start again, as configured, a server [`start`](Self::start) provisioned in `dir`
    /// (its data and users are kept).
    pub fn restart(
        dir: &Path,
        port: u16,
        tls: Option<ServerTls>,
        pod: Option<Pod>,
    ) -> Result<MongoServer> {
        MongoServer::spawn("mongodb", dir, &dir.join("secantus-data"), port, tls, pod)
    }

    fn spawn(
        name: &str,
        dir: &Path,
        data: &Path,
        port: u16,
        tls: Option<ServerTls>,
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
        if let Some(tls) = &tls {
            command
                .arg("--auth")
                .arg("--tls-cert-file")
                .arg(&tls.cert)
                .arg("--tls-key-file")
                .arg(&tls.key)
                .arg("--tls-ca-file")
                .arg(&tls.client_ca)
                .arg("--tls-require-client-cert");
        }
        let mut service = Service::start(name, command, dir)?;
        service.wait_listening(port, Duration::from_secs(60))?;
        Ok(MongoServer {
            port,
            service,
            dir: dir.to_path_buf(),
            tls,
            pod,
        })
    }
}

/// Create each X.509 user on `$external`, as an operator does with `createUser`.
async fn provision(port: u16, users: &[X509User]) -> Result<()> {
    let client = mongodb::Client::with_uri_str(uri("127.0.0.1", port)).await?;
    let external = client.database("$external");
    for user in users {
        external
            .run_command(doc! {
                "createUser": &user.subject,
                "roles": [{ "role": "readWrite", "db": &user.database }],
                "mechanisms": ["MONGODB-X509"],
            })
            .await
            .with_context(|| format!("createUser {}", user.subject))?;
    }
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
        *self = MongoServer::restart(&self.dir, self.port, self.tls.clone(), self.pod.clone())?;
        Ok(())
    }
}
