//! MongoDB (SecantusDB) in its pod: the MongoDB CA (the bundle's mongodb-ca Secret), a
//! user per client workload, and the server.

use anyhow::Result;

use super::jobs::step;
use super::names::{mongo_subject, MONGODB, MONGO_DATABASE, MONGO_PORT};
use super::plan::{self, MONGO_HOST, NAMESPACE};
use super::pods::Pods;
use super::secrets::write_secret;
use super::setup::Setup;
use super::supervisor::Mesh;
use crate::components::kafka::random_password;
use crate::components::mongo::{MongoServer, MongoUser, ServerTls};
use crate::components::mtls::MeshCa;

/// MongoDB, running: what its clients' sidecars need.
pub struct MongoDb {
    /// The MongoDB CA (`--mongodb-auth x509`): it issues each client's certificate.
    pub ca: Option<MeshCa>,
    /// Its users, one per client workload.
    pub users: Vec<MongoUser>,
}

pub async fn start(setup: &Setup, mesh: &mut Mesh, pods: &Pods) -> Result<MongoDb> {
    let (args, run_dir) = (&setup.args, &setup.run_dir);
    // The MongoDB CA (the bundle's mongodb-ca Secret): the server's certificate, and one
    // per client workload whose subject DN is its MongoDB user.
    let mongo_ca = if args.mongodb_auth == "x509" {
        Some(MeshCa::generate_named(
            &run_dir.join("certs/mongodb-ca"),
            "mongodb-ca",
        )?)
    } else {
        None
    };
    let mongo_clients: Vec<&plan::Workload> =
        setup.plan.workloads.iter().filter(|w| w.mongo).collect();
    step(match args.mongodb_auth.as_str() {
        "x509" => "MongoDB (SecantusDB): TLS, client certificates and authentication required; X.509 users",
        "scram-sha-256" => "MongoDB (SecantusDB): authentication required; SCRAM-SHA-256 users",
        _ => "MongoDB (SecantusDB): no authentication (--mongodb-auth none)",
    });
    let mongo_tls = match &mongo_ca {
        Some(ca) => {
            let names = [MONGO_HOST.to_string(), format!("{MONGODB}.{NAMESPACE}.svc")];
            let server = ca.issue_server("mongodb-server", &names)?;
            Some(ServerTls {
                cert: server.chain,
                key: server.key,
                client_ca: ca.root_file(),
            })
        }
        None => None,
    };
    // A user per client workload: its certificate's subject, or a name with a random
    // password (in its Secret, here a file only root reads; in its sidecar's environment).
    let scram = args.mongodb_auth == "scram-sha-256";
    let mut users = Vec::new();
    for w in mongo_clients.iter().filter(|_| args.mongodb_auth != "none") {
        let (name, password) = if scram {
            let password = random_password()?;
            let name = format!("{}-mongodb", w.name);
            write_secret(
                &run_dir.join(format!("secrets/{name}.password")),
                password.as_bytes(),
            )?;
            (name, Some(password))
        } else {
            (mongo_subject(&w.name), None)
        };
        users.push(MongoUser {
            name,
            database: MONGO_DATABASE.into(),
            password,
        });
    }
    let mongo_pod = pods.net.pod(MONGODB)?.clone();
    let mongo = MongoServer::start(
        run_dir,
        MONGO_PORT,
        &users,
        mongo_tls.clone(),
        Some(mongo_pod),
    )
    .await?;
    mesh.add(mongo)?;
    mesh.state.mongodb_port = Some(MONGO_PORT);
    if !users.is_empty() {
        println!(
            "  MongoDB users: {}; the apps hold none of their credentials",
            users
                .iter()
                .map(|u| u.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(MongoDb {
        ca: mongo_ca,
        users,
    })
}
