//! Kafka Connect 4.3.1 in distributed mode (`ConnectDistributed`, Maven Central) with the
//! MongoDB sink connector as a plugin, configured from the bundle's `KafkaConnect` and
//! running the bundle's `KafkaConnector`s, as Strimzi's Cluster Operator does: it writes the
//! worker's properties, then `PUT /connectors/<name>/config` on Connect's REST API.
//!
//! Secrets. The connector reads its MongoDB URI through a config provider:
//! `${secrets:pipeline/kiosk-mongodb:uri}`. In the cluster that is Strimzi's
//! `KubernetesSecretConfigProvider`; here it is Kafka's own `DirectoryConfigProvider` over a
//! directory laid out as `<namespace>/<secret>/<key>` (mode 0700, files 0600), the way a
//! mounted Secret looks. The connector configuration stays byte for byte the bundle's.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::bundle::{KafkaConnect, KafkaConnector};
use crate::components::pod::Pod;
use crate::components::{java, Component};
use crate::process::Service;

/// Strimzi's provider needs a Kubernetes API; the local mesh reads files instead.
const STRIMZI_SECRET_PROVIDER: &str = "io.strimzi.kafka.KubernetesSecretConfigProvider";
const DIRECTORY_PROVIDER: &str = "org.apache.kafka.common.config.provider.DirectoryConfigProvider";

/// A Connect worker, before it starts.
#[derive(Clone, Debug)]
pub struct ConnectSpec {
    pub dir: PathBuf,
    /// The bundle's `KafkaConnect`.
    pub connect: KafkaConnect,
    /// The connectors to run (the bundle's `KafkaConnector`s for this cluster).
    pub connectors: Vec<KafkaConnector>,
    /// Kafka as the worker reaches it (its sidecar listener).
    pub bootstrap: String,
    /// The REST API's port (outside the mesh, as in the bundle: excluded from capture).
    pub rest_port: u16,
    /// Secret files: `namespace/secret/key` -> value.
    pub secrets: BTreeMap<String, String>,
    /// The pod it runs in, or none for loopback.
    pub pod: Option<Pod>,
}

impl ConnectSpec {
    fn secrets_dir(&self) -> PathBuf {
        self.dir.join("connect-secrets")
    }

    /// Where its REST API answers (the pod's address, or loopback).
    pub fn rest_host(&self) -> Ipv4Addr {
        self.pod.as_ref().map_or(Ipv4Addr::LOCALHOST, |p| p.ip)
    }

    /// The worker's properties: the bundle's `spec.config`, then what Strimzi derives from
    /// the resource (group, storage topics), then the local topology.
    pub fn properties(&self) -> Result<String> {
        let c = &self.connect;
        let mut props = c.config.clone();
        let mut set = |k: &str, v: &str| {
            props.insert(k.to_string(), v.to_string());
        };
        set("bootstrap.servers", &self.bootstrap);
        set("group.id", &c.group_id);
        set("config.storage.topic", &c.config_storage_topic);
        set("offset.storage.topic", &c.offset_storage_topic);
        set("status.storage.topic", &c.status_storage_topic);
        set(
            "plugin.path",
            &crate::paths::connect_plugins()?.display().to_string(),
        );
        let (bind, advertised) = match &self.pod {
            Some(p) => ("0.0.0.0".to_string(), p.ip.to_string()),
            None => ("127.0.0.1".to_string(), "127.0.0.1".to_string()),
        };
        set("listeners", &format!("http://{bind}:{}", self.rest_port));
        set("rest.advertised.host.name", &advertised);
        set("rest.advertised.port", &self.rest_port.to_string());
        set("client.id", &c.app);
        // Clients do not create topics; the KafkaTopics did.
        set("topic.creation.enable", "false");
        set("offset.flush.interval.ms", "1000");
        // The bundle names Strimzi's Secret provider; here the same references resolve to
        // files (see the module comment).
        let providers: Vec<(String, String)> = props
            .iter()
            .filter(|(k, v)| k.starts_with("config.providers.") && *v == STRIMZI_SECRET_PROVIDER)
            .map(|(k, _)| (k.clone(), DIRECTORY_PROVIDER.to_string()))
            .collect();
        for (key, class) in providers {
            props.insert(key, class);
        }
        let mut text = String::from("# Written by kiosk from the bundle's KafkaConnect.\n");
        for (key, value) in props {
            text.push_str(&format!("{key}={value}\n"));
        }
        Ok(text)
    }
}

/// A running Connect worker.
pub struct Connect {
    pub spec: ConnectSpec,
    service: Option<Service>,
    name: String,
    /// Set to stop the auto-restart watcher (see [`Connect::watch_auto_restart`]).
    watching: Arc<AtomicBool>,
}

impl Connect {
    /// Start the worker, wait for its REST API, post every connector and wait until each
    /// connector and its tasks run.
    pub fn start(spec: ConnectSpec) -> Result<Connect> {
        let mut connect = Connect {
            name: spec.connect.app.clone(),
            spec,
            service: None,
            watching: Arc::new(AtomicBool::new(true)),
        };
        connect.write_secrets()?;
        connect.launch()?;
        for connector in connect.spec.connectors.clone() {
            connect.put_connector(&connector)?;
        }
        connect.wait_running(Duration::from_secs(120))?;
        connect.watch_auto_restart();
        Ok(connect)
    }

    /// The Cluster Operator's `autoRestart`: while Connect runs, a connector of
    /// `spec.autoRestart.enabled` with a FAILED connector or task is restarted
    /// (`POST /connectors/<name>/restart?includeTasks=true&onlyFailed=true`), at most every
    /// 5 s. Each restart is logged in Connect's log.
    fn watch_auto_restart(&self) {
        let names: Vec<String> = self
            .spec
            .connectors
            .iter()
            .filter(|c| c.auto_restart)
            .map(|c| c.name.clone())
            .collect();
        if names.is_empty() {
            return;
        }
        let (host, port) = (self.spec.rest_host(), self.spec.rest_port);
        let log = self.spec.dir.join(format!("{}.log", self.name));
        let watching = self.watching.clone();
        std::thread::spawn(move || {
            while watching.load(Ordering::Relaxed) {
                for name in &names {
                    let path = format!("/connectors/{name}/status");
                    let Ok(status) = crate::http::request_at(host, port, "GET", &path, None) else {
                        continue;
                    };
                    let Ok(v) = serde_json::from_str::<Value>(&status.body) else {
                        continue;
                    };
                    let tasks = v["tasks"].as_array().cloned().unwrap_or_default();
                    let failed = std::iter::once(&v["connector"])
                        .chain(tasks.iter())
                        .any(|t| t["state"] == "FAILED");
                    if failed {
                        let restart =
                            format!("/connectors/{name}/restart?includeTasks=true&onlyFailed=true");
                        let answer = crate::http::request_at(host, port, "POST", &restart, None);
                        let line = format!(
                            "kiosk (as the Cluster Operator, autoRestart): restarting the failed parts of {name}: {:?}\n",
                            answer.map(|a| a.status)
                        );
                        let _ = std::fs::OpenOptions::new()
                            .append(true)
                            .open(&log)
                            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
                    }
                }
                std::thread::sleep(Duration::from_secs(5));
            }
        });
    }

    fn write_secrets(&self) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let root = self.spec.secrets_dir();
        for (path, value) in &self.spec.secrets {
            let file = root.join(path);
            if let Some(parent) = file.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&file)
                .with_context(|| format!("writing {}", file.display()))?;
            f.write_all(value.as_bytes())?;
        }
        Ok(())
    }

    fn launch(&mut self) -> Result<()> {
        let props = self.spec.dir.join(format!("{}.properties", self.name));
        std::fs::write(&props, self.spec.properties()?)?;
        let mut command = java::command(&self.spec.dir, self.spec.pod.as_ref())?;
        command
            .current_dir(self.spec.secrets_dir())
            .args(java::heap("768m"))
            .arg("org.apache.kafka.connect.cli.ConnectDistributed")
            .arg(&props);
        let mut service = Service::start(&self.name, command, &self.spec.dir)?;
        let (host, port) = (self.spec.rest_host(), self.spec.rest_port);
        service.wait_until("answer on its REST API", Duration::from_secs(120), || {
            crate::http::get_at(host, port, "/connectors").is_ok()
        })?;
        self.service = Some(service);
        Ok(())
    }

    /// `PUT /connectors/<name>/config`, as the Cluster Operator does for a KafkaConnector.
    fn put_connector(&mut self, connector: &KafkaConnector) -> Result<()> {
        let body = serde_json::to_string(&connector.rest_config())?;
        let path = format!("/connectors/{}/config", connector.name);
        // Connect answers 409 while its workers rebalance: retry for a while.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.check()?;
            let response = crate::http::request_at(
                self.spec.rest_host(),
                self.spec.rest_port,
                "PUT",
                &path,
                Some(&body),
            )?;
            match response.status {
                200 | 201 => return Ok(()),
                409 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(500)),
                status => bail!(
                    "Kafka Connect refused KafkaConnector `{}` ({status}): {}",
                    connector.name,
                    response.body
                ),
            }
        }
    }

    /// Wait until every connector and each of its tasks is RUNNING; a FAILED one fails at
    /// once with Connect's trace.
    fn wait_running(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        for connector in self.spec.connectors.clone() {
            loop {
                self.check()?;
                let path = format!("/connectors/{}/status", connector.name);
                let status = crate::http::request_at(
                    self.spec.rest_host(),
                    self.spec.rest_port,
                    "GET",
                    &path,
                    None,
                )?;
                if status.status == 200 {
                    let v: Value = serde_json::from_str(&status.body)?;
                    let state = v["connector"]["state"].as_str().unwrap_or_default();
                    let tasks = v["tasks"].as_array().cloned().unwrap_or_default();
                    if let Some(failed) = std::iter::once(&v["connector"])
                        .chain(tasks.iter())
                        .find(|t| t["state"] == "FAILED")
                    {
                        bail!(
                            "KafkaConnector `{}` failed in Kafka Connect: {}",
                            connector.name,
                            failed["trace"].as_str().unwrap_or("(no trace)")
                        );
                    }
                    if state == "RUNNING"
                        && tasks.len() as u32 >= connector.tasks_max.min(1)
                        && tasks.iter().all(|t| t["state"] == "RUNNING")
                    {
                        break;
                    }
                }
                if start.elapsed() > timeout {
                    bail!(
                        "KafkaConnector `{}` is not RUNNING after {timeout:?} (last status: {}); {}",
                        connector.name,
                        status.body,
                        self.log_tail(20)
                    );
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        Ok(())
    }

    pub fn rest_port(&self) -> u16 {
        self.spec.rest_port
    }
}

impl Component for Connect {
    fn name(&self) -> &str {
        &self.name
    }

    fn services(&self) -> Vec<&Service> {
        self.service.iter().collect()
    }

    fn services_mut(&mut self) -> Vec<&mut Service> {
        self.service.iter_mut().collect()
    }

    fn stop(&mut self) {
        self.watching.store(false, Ordering::Relaxed);
        if let Some(mut service) = self.service.take() {
            service.terminate(Duration::from_secs(20));
        }
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        crate::ports::wait_closed(self.spec.rest_port, Duration::from_secs(10))?;
        // The connectors live in Connect's config topic: they come back by themselves.
        self.launch()?;
        self.wait_running(Duration::from_secs(120))?;
        self.watching = Arc::new(AtomicBool::new(true));
        self.watch_auto_restart();
        Ok(())
    }
}
