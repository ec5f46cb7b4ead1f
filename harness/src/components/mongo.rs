//! The MongoDB-wire server of the local mesh: SecantusDB (PyPI) as the bundle runs
//! mongod: TLS required, client certificates required, authentication required, its
//! users the X.509 identities of the client workloads (the subject DNs of their
//! certificates, on `$external`), or SCRAM-SHA-256 password users, created the server's
//! documented way.

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

/// A MongoDB user with `readWrite` on `database`: with a `password`, a SCRAM-SHA-256 user
/// named `name` in `admin`; without, a MONGODB-X509 user on `$external` whose `name` is
/// its certificate's subject DN as the server reads it (RFC 4514, e.g. `CN=kiosk-connect`).
#[derive(Clone, Debug)]
pub struct MongoUser {
    pub name: String,
    pub database: String,
    pub password: Option<String>,
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
    auth: bool,
    tls: Option<ServerTls>,
    pod: Option<Pod>,
}

impl MongoServer {
    /// Start SecantusDB on `port` (in `pod`, if given) with its data in `dir`. With `tls`,
    /// TLS and client certificates are required. With `users`, authentication is
    /// required, the users having been created once without it (on the host's loopback,
    /// before the server is reachable from anywhere); without, the server is open.
    pub async fn start(
        dir: &Path,
        port: u16,
        users: &[MongoUser],
        tls: Option<ServerTls>,
        pod: Option<Pod>,
    ) -> Result<MongoServer> {
        let data = dir.join("secantus-data");
        std::fs::create_dir_all(&data)?;
        let auth = !users.is_empty();
        if auth {
            let setup_port = crate::ports::free()?;
            let mut setup =
                MongoServer::spawn("mongodb-setup", dir, &data, setup_port, false, None, None)?;
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
        MongoServer::spawn("mongodb", dir, &data, port, auth, tls, pod)
    }

    /// Start again, as configured, a server [`start`](Self::start) provisioned in `dir`
    /// (its data and users are kept).
    pub fn restart(
        dir: &Path,
        port: u16,
        auth: bool,
        tls: Option<ServerTls>,
        pod: Option<Pod>,
    ) -> Result<MongoServer> {
        let data = dir.join("secantus-data");
        MongoServer::spawn("mongodb", dir, &data, port, auth, tls, pod)
    }

    fn spawn(
        name: &str,
        dir: &Path,
        data: &Path,
        port: u16,
        auth: bool,
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
        if auth {
            command.arg("--auth");
        }
        if let Some(tls) = &tls {
            command
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
            auth,
            tls,
            pod,
        })
    }
}

/// Create each user as an operator does with `createUser`: X.509 users on `$external`,
/// password users in `admin`.
async fn provision(port: u16, users: &[MongoUser]) -> Result<()> {
    let client = mongodb::Client::with_uri_str(uri("127.0.0.1", port)).await?;
    for user in users {
        let roles = [doc! { "role": "readWrite", "db": &user.database }];
        let (database, command) = match &user.password {
            Some(password) => (
                "admin",
                doc! {
                    "createUser": &user.name, "pwd": password, "roles": roles.to_vec(),
                    "mechanisms": ["SCRAM-SHA-256"],
                },
            ),
            None => (
                "$external",
                doc! {
                    "createUser": &user.name, "roles": roles.to_vec(),
                    "mechanisms": ["MONGODB-X509"],
                },
            ),
        };
        client
            .database(database)
            .run_command(command)
            .await
            .with_context(|| format!("createUser {}", user.name))?;
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

    fn services_mut(&mut self) -> Vec<&mut Service> {
        vec![&mut self.service]
    }

    // Gracefully: SecantusDB writes its data out on shutdown.
    fn stop_grace(&self) -> Duration {
        Duration::from_secs(15)
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        if self.pod.is_none() {
            crate::ports::wait_closed(self.port, Duration::from_secs(10))?;
        }
        let (auth, tls, pod) = (self.auth, self.tls.clone(), self.pod.clone());
        *self = MongoServer::restart(&self.dir, self.port, auth, tls, pod)?;
        Ok(())
    }
}
