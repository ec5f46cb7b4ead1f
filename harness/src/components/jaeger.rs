//! Where the local mesh's spans go: Jaeger v2 (`scripts/setup.sh` builds it from the Go
//! module proxy), its all-in-one configuration (in-memory storage), in its own pod without a
//! sidecar, as Istio's samples/addons/jaeger.yaml runs it in `istio-system`. The sidecars
//! send OTLP over gRPC ([`OTLP_GRPC_PORT`]), the services OTLP over HTTP
//! ([`OTLP_HTTP_PORT`]); traces are read back through its query API ([`QUERY_PORT`]).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::components::pod::Pod;
use crate::components::Component;
use crate::process::Service;
pub use kiosk_services::otel::{jaeger_trace_spans, TraceSpan};

pub const OTLP_GRPC_PORT: u16 = 4317;
pub const OTLP_HTTP_PORT: u16 = 4318;
/// The query API (and UI) port.
pub const QUERY_PORT: u16 = 16686;
/// The health check extension's port (`/status`).
const HEALTH_PORT: u16 = 13133;

pub struct Jaeger {
    pub service: Service,
    dir: PathBuf,
    pod: Pod,
}

impl Jaeger {
    /// Start Jaeger in `pod`, bound to the pod's address, its log in `dir`.
    pub fn start(dir: &Path, pod: Pod) -> Result<Jaeger> {
        let jaeger = crate::paths::jaeger()?;
        let mut command = pod.command(&jaeger, false);
        // The all-in-one configuration binds every endpoint to this host.
        command.env("JAEGER_LISTEN_HOST", pod.ip.to_string());
        let mut service = Service::start("jaeger", command, dir)?;
        let ip = pod.ip;
        service.wait_until("report healthy", Duration::from_secs(60), || healthy(ip))?;
        Ok(Jaeger {
            service,
            dir: dir.to_path_buf(),
            pod,
        })
    }
}

fn healthy(ip: Ipv4Addr) -> bool {
    crate::http::request_at(ip, HEALTH_PORT, "GET", "/status", None)
        .is_ok_and(|r| r.status == 200 && r.body.contains("\"healthy\":true"))
}

/// The spans of trace `trace_id` (32 hex digits), ordered by start time, from the query
/// API at `ip`.
pub fn trace(ip: Ipv4Addr, trace_id: &str) -> Result<Vec<TraceSpan>> {
    let path = format!("/api/traces/{trace_id}");
    let response = crate::http::request_at(ip, QUERY_PORT, "GET", &path, None)?;
    anyhow::ensure!(
        response.status == 200,
        "GET {path}: {} {}",
        response.status,
        response.body.chars().take(200).collect::<String>()
    );
    let body: Value = serde_json::from_str(&response.body).context("Jaeger's answer")?;
    Ok(jaeger_trace_spans(&body))
}

impl Component for Jaeger {
    fn name(&self) -> &str {
        "jaeger"
    }

    fn services(&self) -> Vec<&Service> {
        vec![&self.service]
    }

    fn services_mut(&mut self) -> Vec<&mut Service> {
        vec![&mut self.service]
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        *self = Jaeger::start(&self.dir, self.pod.clone())?;
        Ok(())
    }
}
