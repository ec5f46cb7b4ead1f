//! A pipeline service of `kiosk-services` (the REST entry, the mirror) run by the mesh as
//! the cluster's Deployment would run the container: the same subcommand and arguments,
//! restarted with them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::components::pod::Pod;
use crate::components::Component;
use crate::process::Service;

/// What to run: the program, its arguments and environment (secrets go there, never on a
/// command line).
#[derive(Clone, Debug)]
pub struct ServiceSpec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// A port the service is ready once it listens on.
    pub ready_port: Option<u16>,
    /// The pod it runs in, or none for the host.
    pub pod: Option<Pod>,
}

pub struct PipelineService {
    spec: ServiceSpec,
    dir: PathBuf,
    service: Service,
}

impl PipelineService {
    pub fn start(spec: ServiceSpec, dir: &Path) -> Result<PipelineService> {
        let mut command = match &spec.pod {
            Some(pod) => pod.command(&spec.program, false),
            None => Command::new(&spec.program),
        };
        command.args(&spec.args);
        for (key, value) in &spec.env {
            command.env(key, value);
        }
        let mut service = Service::start(&spec.name, command, dir)?;
        if let Some(port) = spec.ready_port {
            service.wait_listening(port, Duration::from_secs(30))?;
        }
        Ok(PipelineService {
            spec,
            dir: dir.to_path_buf(),
            service,
        })
    }
}

impl Component for PipelineService {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn services(&self) -> Vec<&Service> {
        vec![&self.service]
    }

    fn services_mut(&mut self) -> Vec<&mut Service> {
        vec![&mut self.service]
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        *self = PipelineService::start(self.spec.clone(), &self.dir)?;
        Ok(())
    }
}
