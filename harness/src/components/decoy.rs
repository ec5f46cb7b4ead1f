//! A service on Kafka's port that is not one of the brokers (`kiosk up --kafka-port-decoy`):
//! what an app selected by the kiosk WasmPlugin could dial, since a WasmPlugin matches ports
//! by number only. It runs in a pod of its own behind a sidecar, with its own identity, and
//! speaks just enough Kafka to draw a credential out: it answers ApiVersions, so a client
//! goes on to the next request, where the filter would begin SASL. Every byte it receives is
//! appended to a file, for the test that no credential ever reaches it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::components::pod::Pod;
use crate::components::Component;
use crate::process::Service;

/// The pod's name (namespace `pipeline`; reached as `kafka-decoy.pipeline.pod`).
pub const POD: &str = "kafka-decoy";
/// The file of the bytes received, in the run directory.
pub const RECEIVED: &str = "kafka-decoy.received";

/// The decoy's program (Python 3, the machine's; run with `-c`, so the `kiosk` binary
/// carries it).
const PROGRAM: &str = include_str!("kafka_decoy.py");

pub struct Decoy {
    service: Service,
    dir: PathBuf,
    pod: Pod,
    port: u16,
}

impl Decoy {
    /// Start the decoy on `port` in `pod`, its log and [`RECEIVED`] in `dir`.
    pub fn start(dir: &Path, pod: Pod, port: u16) -> Result<Decoy> {
        let mut command = pod.command("python3", false);
        command
            .args(["-c", PROGRAM, &port.to_string()])
            .arg(dir.join(RECEIVED));
        let mut service = Service::start("kafka-decoy", command, dir)?;
        let log = service.log.clone();
        service.wait_until("listen", Duration::from_secs(20), || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains("decoy listening"))
        })?;
        Ok(Decoy {
            service,
            dir: dir.to_path_buf(),
            pod,
            port,
        })
    }
}

impl Component for Decoy {
    fn name(&self) -> &str {
        POD
    }

    fn services(&self) -> Vec<&Service> {
        vec![&self.service]
    }

    fn services_mut(&mut self) -> Vec<&mut Service> {
        vec![&mut self.service]
    }

    fn stop_grace(&self) -> Duration {
        Duration::from_secs(5)
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        *self = Decoy::start(&self.dir, self.pod.clone(), self.port)?;
        Ok(())
    }
}
