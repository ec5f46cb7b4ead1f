//! The running mesh: every component, supervised as a kubelet would (`restartPolicy:
//! Always`), recorded in `mesh.json`, and stopped in reverse order on drop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::restarts;
use super::state::{lock, read_state, state_path, write_state, Proc, State};
use crate::components::pod::Network;
use crate::components::Component;

/// The running mesh: every component, stopped in reverse order on drop.
pub struct Mesh {
    home: PathBuf,
    pub state: State,
    components: Vec<Box<dyn Component>>,
    /// Each restarted component's back-off.
    backoff: BTreeMap<String, restarts::Backoff>,
}

impl Mesh {
    /// Take the lock on `home` for a mesh whose processes log in `run_dir`: nothing runs
    /// yet.
    pub fn open(home: &Path, run_dir: &Path, records: u64) -> Result<Mesh> {
        let state = State {
            supervisor: Proc::of("kiosk-up", std::process::id()),
            run_dir: run_dir.to_path_buf(),
            phase: "starting".into(),
            prometheus: None,
            mongodb_port: None,
            rest_url: None,
            records,
            processes: Vec::new(),
            network: None,
            restarts: BTreeMap::new(),
        };
        lock(home, &state)?;
        Ok(Mesh {
            home: home.to_path_buf(),
            state,
            components: Vec::new(),
            backoff: BTreeMap::new(),
        })
    }

    /// Record the pods' network, so that `kiosk down` removes it even if this supervisor
    /// is killed.
    pub fn set_network(&mut self, net: Network) -> Result<()> {
        self.state.network = Some(net);
        write_state(&self.home, &self.state)
    }

    pub fn add(&mut self, component: impl Component + 'static) -> Result<()> {
        self.components.push(Box::new(component));
        self.sync()
    }

    /// Record every running process in `mesh.json`.
    fn sync(&mut self) -> Result<()> {
        self.state.processes = self
            .components
            .iter()
            .flat_map(|c| c.services())
            .map(|s| Proc::of(&s.name, s.pid()))
            .collect();
        write_state(&self.home, &self.state)
    }

    fn component(&mut self, name: &str) -> Result<&mut Box<dyn Component>> {
        self.components
            .iter_mut()
            .find(|c| c.name() == name)
            .with_context(|| format!("no component `{name}` in the mesh"))
    }

    /// Restart component `name` with its configuration and data.
    pub fn restart(&mut self, name: &str) -> Result<()> {
        let result = self.component(name)?.restart();
        self.sync()?;
        result.with_context(|| format!("restarting {name}"))
    }

    /// Restart component `name` one process at a time.
    pub fn rolling_restart(&mut self, name: &str) -> Result<()> {
        let result = self.component(name)?.rolling_restart();
        self.sync()?;
        result.with_context(|| format!("rolling {name}"))
    }

    pub fn phase(&mut self, phase: &str) -> Result<()> {
        self.state.phase = phase.to_string();
        write_state(&self.home, &self.state)
    }

    /// SIGKILL every process of component `name`, as the kernel's OOM killer or a crash
    /// would end it: nothing is told, the supervisor finds it exited.
    pub fn kill(&mut self, name: &str) -> Result<()> {
        let pids: Vec<u32> = self
            .component(name)?
            .services()
            .iter()
            .map(|s| s.pid())
            .collect();
        for pid in pids {
            let status = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .context("running kill")?;
            anyhow::ensure!(status.success(), "kill -KILL {pid} ({name}) failed");
        }
        Ok(())
    }

    /// `restartPolicy: Always`: restart every component whose process exited, at once the
    /// first time and then after the kubelet's back-off ([`restarts`]); each restart
    /// printed and counted in `mesh.json`.
    pub fn supervise(&mut self) -> Result<()> {
        let now = Instant::now();
        for i in 0..self.components.len() {
            let Err(exit) = self.components[i].check() else {
                continue;
            };
            let name = self.components[i].name().to_string();
            // `<name> exited (<status>); last lines of <log>:` -> `<status>`.
            let text = format!("{exit:#}");
            let first = text.lines().next().unwrap_or_default();
            let reason = first
                .split_once(" exited (")
                .and_then(|(_, rest)| rest.split_once("); last lines"))
                .map_or(first, |(status, _)| status)
                .to_string();
            let backoff = self
                .backoff
                .entry(name.clone())
                .or_insert_with(|| restarts::Backoff::new(now));
            let (due, new) = backoff.exited(now);
            if due > now {
                if new {
                    let wait = due.saturating_duration_since(now).as_secs();
                    println!("kiosk: {name} exited ({reason}); back-off: restarting in {wait} s");
                }
                continue;
            }
            let record = self.state.restarts.entry(name.clone()).or_default();
            record.count += 1;
            record.last_reason = reason.clone();
            record.last_at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let count = record.count;
            println!("kiosk: {name} exited ({reason}); restarting it (restart {count})");
            let result = self.components[i].restart();
            if let Some(b) = self.backoff.get_mut(&name) {
                b.restarted(Instant::now());
            }
            match result {
                Ok(()) => println!("  {name} is back (restart {count})"),
                Err(e) => {
                    println!("  restarting {name} failed: {e:#}; trying again after its back-off")
                }
            }
            self.sync()?;
        }
        for i in 0..self.components.len() {
            match self.components[i].reconcile() {
                Ok(None) => continue,
                Ok(Some(said)) => println!("kiosk: {said}"),
                Err(e) => println!(
                    "kiosk: {}: {e:#}; the supervisor restarts it",
                    self.components[i].name()
                ),
            }
            self.sync()?;
        }
        Ok(())
    }

    /// Supervise while `work` runs on its own thread; its result.
    pub async fn supervise_until<T: Send + 'static>(
        &mut self,
        work: std::thread::JoinHandle<Result<T>>,
    ) -> Result<T> {
        while !work.is_finished() {
            self.supervise()?;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        work.join()
            .map_err(|_| anyhow::anyhow!("a job's thread panicked"))?
    }

    /// Supervise for `how_long`.
    pub async fn supervise_for(&mut self, how_long: Duration) -> Result<()> {
        let until = Instant::now() + how_long;
        while Instant::now() < until {
            self.supervise()?;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(())
    }

    /// What `kiosk up` prints of the restarts, if there were any.
    pub fn restart_summary(&self) -> Option<String> {
        if self.state.restarts.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .state
            .restarts
            .iter()
            .map(|(name, r)| format!("{name} {} ({})", r.count, r.last_reason))
            .collect();
        Some(format!(
            "restarts (restartPolicy Always): {}",
            parts.join("; ")
        ))
    }

    /// Wait for Ctrl-C, SIGTERM (`kiosk down`) or a service dying.
    pub async fn wait_for_stop(&mut self) -> Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        loop {
            tokio::select! {
                _ = term.recv() => { println!("kiosk: stopping (SIGTERM)"); return Ok(()); }
                _ = interrupt.recv() => { println!("kiosk: stopping (Ctrl-C)"); return Ok(()); }
                _ = tokio::time::sleep(Duration::from_secs(1)) => self.supervise()?,
            }
        }
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        while let Some(mut c) = self.components.pop() {
            c.stop();
        }
        if let Some(net) = &self.state.network {
            net.remove();
        }
        if let Ok(Some(now)) = read_state(&self.home) {
            if now.supervisor == self.state.supervisor {
                let _ = std::fs::remove_file(state_path(&self.home));
            }
        }
    }
}
