//! Prometheus scraping every sidecar, as the bundle's Prometheus does.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::jobs::step;
use super::setup::Setup;
use super::supervisor::Mesh;
use crate::components::prometheus::{PrometheusServer, Target};
use crate::ports;
use crate::prometheus::PromClient;

/// Prometheus, running and having scraped every target once.
pub struct Scraping {
    pub url: String,
    pub client: PromClient,
}

pub async fn start(setup: &Setup, mesh: &mut Mesh, targets: &[Target]) -> Result<Scraping> {
    let run_dir = &setup.run_dir;
    step("Prometheus scraping every sidecar");
    let prometheus_port = ports::free()?;
    mesh.add(PrometheusServer::start(run_dir, prometheus_port, targets)?)?;
    let prom_url = format!("http://127.0.0.1:{prometheus_port}");
    mesh.state.prometheus = Some(prom_url.clone());
    // Prometheus scrapes a new target only after a start-up delay: wait until every
    // sidecar has been scraped, or the first seconds of traffic would be missing.
    let prom = PromClient::new(&prom_url)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while prom
        .sum(r#"count(up{job="envoy-sidecars"} == 1)"#)
        .await
        .unwrap_or(0.0)
        < targets.len() as f64
    {
        if Instant::now() > deadline {
            bail!(
                "Prometheus did not scrape every sidecar within 60 s; see {}",
                run_dir.join("prometheus.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(Scraping {
        url: prom_url,
        client: prom,
    })
}
