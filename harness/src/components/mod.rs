//! The real programs of the local mesh, one module each, all of one shape
//! ([`Component`]): started (and ready) by a constructor, then checked, stopped and
//! restarted by the mesh, each process logging into the run directory.
//!
//! - [`kafka`]: Apache Kafka in KRaft mode, one or several nodes, and [`kafka_perf`]: what
//!   Kafka's own performance tools report;
//! - [`connect`]: Kafka Connect with the MongoDB sink connector;
//! - [`decoy`]: a service on Kafka's port that is not a broker (for the credential test);
//! - [`envoy`]: Envoy sidecars configured the way Istio configures them, and [`gateway`]:
//!   the ingress gateway as istiod configures a router;
//! - [`keycloak`]: Keycloak, the identity provider behind the ingress gateway's JWTs;
//! - [`mongo`]: SecantusDB, the MongoDB-wire server;
//! - [`pipeline`]: a `kiosk-services` service (REST entry, mirror);
//! - [`prometheus`]: Prometheus scraping every sidecar;
//! - [`registry`]: Apicurio Registry, the schema registry;
//! - [`pod`]: pods as network namespaces with Istio's traffic capture, and [`mtls`]: the
//!   mesh CA and the workloads' SPIFFE certificates;
//! - [`java`]: how the Java programs are started.

pub mod connect;
pub mod decoy;
pub mod envoy;
pub mod gateway;
pub mod jaeger;
pub mod java;
pub mod kafka;
pub mod kafka_perf;
pub mod keycloak;
pub mod mongo;
pub mod mtls;
pub mod pipeline;
pub mod pod;
pub mod prometheus;
pub mod registry;

use std::time::Duration;

use anyhow::Result;

use crate::process::Service;

/// A real program the mesh runs: one or more processes, started and ready when built.
pub trait Component: Send {
    /// What messages call it (`kafka`, `envoy-mirror`, ...).
    fn name(&self) -> &str;
    /// The processes running now (for `mesh.json` and `kiosk down`).
    fn services(&self) -> Vec<&Service>;
    /// The same, to check and stop them.
    fn services_mut(&mut self) -> Vec<&mut Service>;
    /// How long a process may take to stop after SIGTERM before it is killed (longer
    /// where the program writes its data out on shutdown).
    fn stop_grace(&self) -> Duration {
        Duration::from_secs(10)
    }
    /// Fail, naming the process and quoting its log's tail, if one has exited.
    fn check(&mut self) -> Result<()> {
        for service in self.services_mut() {
            service.check_running()?;
        }
        Ok(())
    }
    /// Stop every process (gracefully where the program keeps data), keeping the data.
    fn stop(&mut self) {
        let grace = self.stop_grace();
        for service in self.services_mut() {
            service.terminate(grace);
        }
    }
    /// Stop, start again with the same configuration and data, and wait until ready.
    fn restart(&mut self) -> Result<()>;
    /// Restart one process at a time, each ready before the next stops (a StatefulSet's
    /// rolling update); a component of one process restarts.
    fn rolling_restart(&mut self) -> Result<()> {
        self.restart()
    }
    /// The control plane's periodic work for this component, called by the supervisor about
    /// every second (istiod's JWKS refresh for the ingress gateway); what it changed, if
    /// anything.
    fn reconcile(&mut self) -> Result<Option<String>> {
        Ok(None)
    }
    /// The last lines of each process's log.
    fn log_tail(&self, lines: usize) -> String {
        self.services()
            .iter()
            .map(|s| format!("{} ({}):\n{}", s.name, s.log.display(), s.log_tail(lines)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
