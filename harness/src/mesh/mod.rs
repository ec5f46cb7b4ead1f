//! The local mesh in a box: the `test-kafka-istio-mongo` pipeline as local processes, each
//! workload behind its own real Envoy sidecar carrying the kiosk filter, declared once in
//! [`plan`] and configured from the bundle's own Strimzi resources ([`crate::bundle`]).
//!
//! ```text
//! producer -> [sidecar] -> [sidecar] rest -> [sidecar] -> Kafka: events
//! Kafka: events -> [sidecar] mirror -> [sidecar] -> Kafka: events.mirror
//! Kafka: events.mirror -> [sidecar] kiosk-connect (MongoDB sink) -> [sidecar] -> MongoDB
//! Prometheus scrapes every sidecar; `kiosk graph` asks it what Kiali would.
//! ```
//!
//! Everything listens on 127.0.0.1 on ports chosen at start. `<home>/mesh.json` records
//! what runs (pid and start time of each process) and doubles as the lock that makes a
//! second `kiosk up` refuse; `kiosk down` stops exactly those processes.
//!
//! [`up`] is the list of phases, in the order they run; each phase is a module of its own
//! that takes what it needs (`setup::Setup`, the facts fixed before anything starts, and
//! what earlier phases returned) and returns what later phases need.

mod addons;
mod apps;
mod args;
mod external;
pub mod ingress;
mod jobs;
mod kafka;
mod mongodb;
mod names;
pub mod plan;
mod pods;
pub mod restarts;
mod run;
mod scraping;
mod secrets;
mod setup;
mod sidecars;
mod state;
mod supervisor;
mod tenancy;

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::components::mtls::MeshCa;
use jobs::step;
use setup::{Checked, Setup};
use supervisor::Mesh;

pub use args::UpArgs;
pub use names::{mongo_subject, registry_url};
pub use state::{default_home, down, read_state, state_path, Proc, State};

/// `kiosk up`. Returns whether verify passed.
pub async fn up(home: &Path, args: &UpArgs) -> Result<bool> {
    let started = Instant::now();
    let checked = Checked::check(args)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let run_dir = home.join("runs").join(format!("{now}"));
    let setup = Setup::new(args, checked, run_dir, now)?;
    let mut mesh = Mesh::open(home, &setup.run_dir, args.records)?;
    std::fs::create_dir_all(&setup.run_dir)?;
    println!(
        "kiosk: run directory {} (every process logs there); Strimzi resources from {}",
        setup.run_dir.display(),
        setup.strimzi.display()
    );

    let pods = pods::create(&setup, &mut mesh)?;
    // The identity provider takes the longest to be ready: it starts first, waited for last.
    let idp = match &setup.ingress {
        Some(prepared) => Some(ingress::spawn_idp(prepared, &pods.net, &setup.run_dir)?),
        None => None,
    };
    step("mesh CA and a SPIFFE certificate per sidecar");
    let ca = MeshCa::generate(&setup.run_dir.join("certs"))?;
    let mongodb = mongodb::start(&setup, &mut mesh, &pods).await?;
    if setup.with_registry {
        addons::start_registry(&setup, &mut mesh, &pods)?;
    }
    if args.kafka_port_decoy {
        addons::start_decoy(&setup, &mut mesh, &pods)?;
    }
    // Where the spans go (the sidecars: OTLP gRPC; the services: OTLP HTTP).
    let collector = match setup.with_tracing {
        true => Some(addons::start_jaeger(&setup, &mut mesh, &pods)?),
        false => None,
    };
    let kafka = kafka::start(&setup, &mut mesh, &pods)?;
    kafka::run_operator(&setup, &pods, &kafka)?;
    let external = match &setup.external {
        Some(prepared) => Some(external::start(prepared, &setup, &mut mesh, &pods.net)?),
        None => None,
    };
    let servers = sidecars::Servers {
        mongodb: &mongodb,
        kafka: &kafka,
        external: external.as_ref(),
    };
    let mut targets = sidecars::start(&setup, &mut mesh, &pods, &ca, &servers, collector)?;
    let ingress = match (&setup.ingress, idp) {
        (Some(prepared), Some(idp)) => {
            let gateway = ingress::start(
                prepared,
                idp,
                &mut mesh,
                &pods.net,
                &ca,
                &setup.plan,
                &setup.wasm,
                collector,
            )?;
            targets.push(gateway.target.clone());
            Some(gateway)
        }
        _ => None,
    };
    let scraping = scraping::start(&setup, &mut mesh, &targets).await?;
    let apps = apps::start(&setup, &mut mesh, &pods, ingress.as_ref())?;
    mesh.state.rest_url = Some(apps.rest_url.clone());
    mesh.phase("running")?;
    println!(
        "kiosk: the mesh started in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    run::produce(&setup, &mut mesh, &apps, ingress.as_ref()).await?;
    let verified = run::verify(&setup, &mut mesh, &apps).await?;
    if let Some(external) = &external {
        external::run_tenants(external, &setup, &pods.net, args.records, args.rate)?;
    }
    run::graph(&setup, &scraping).await?;
    if args.once {
        return Ok(verified);
    }
    println!(
        "\nkiosk: the mesh is up. Prometheus {}, REST entry {} (from the pods), logs in {}.\n\
         kiosk: `kiosk graph` redraws the graph; Ctrl-C or `kiosk down` stops everything.",
        scraping.url,
        apps.rest_url,
        setup.run_dir.display()
    );
    mesh.wait_for_stop().await?;
    Ok(verified)
}
