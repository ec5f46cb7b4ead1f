//! What `<home>/mesh.json` records (the supervisor, every process we started, the pods'
//! network), the lock it doubles as, and `kiosk down`, which stops exactly those processes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::restarts;
use crate::components::pod::Network;
use crate::paths;

/// What `mesh.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub supervisor: Proc,
    pub run_dir: PathBuf,
    pub phase: String,
    pub prometheus: Option<String>,
    pub mongodb_port: Option<u16>,
    pub rest_url: Option<String>,
    pub records: u64,
    pub processes: Vec<Proc>,
    /// The pods' network, removed by `kiosk down` even if this supervisor was killed.
    #[serde(default)]
    pub network: Option<Network>,
    /// Components restarted after their process exited (`restartPolicy: Always`).
    #[serde(default)]
    pub restarts: BTreeMap<String, restarts::Restarts>,
}

/// A process we started, identified by pid and kernel start time (a recycled pid is
/// never mistaken for ours).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Proc {
    pub name: String,
    pub pid: u32,
    pub start: u64,
}

impl Proc {
    pub fn of(name: &str, pid: u32) -> Proc {
        Proc {
            name: name.to_string(),
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// The process start time from /proc/<pid>/stat (field 22), in clock ticks; none for a
/// process that has exited (a zombie: once its supervisor is gone, nobody may reap it).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces: count from the closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

pub fn state_path(home: &Path) -> PathBuf {
    home.join("mesh.json")
}

pub fn read_state(home: &Path) -> Result<Option<State>> {
    match std::fs::read(state_path(home)) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
            format!("{} is not a kiosk state file", state_path(home).display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Take the lock: create the state file, refusing if a live mesh holds it.
pub(super) fn lock(home: &Path, state: &State) -> Result<()> {
    std::fs::create_dir_all(home)?;
    let path = state_path(home);
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(&serde_json::to_vec_pretty(state)?)?;
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if let Some(other) = read_state(home)? {
                    if other.supervisor.is_alive() {
                        bail!(
                            "a local mesh is already running (kiosk up, pid {}, run directory {}); \
                             use it, or stop it with `kiosk down`",
                            other.supervisor.pid,
                            other.run_dir.display()
                        );
                    }
                    // Its supervisor died: stop what it left behind, then take over.
                    eprintln!("kiosk: stopping the leftovers of a mesh whose `kiosk up` is gone");
                    stop_processes(&other.processes, LEFTOVER_GRACE);
                    if let Some(net) = &other.network {
                        net.remove();
                    }
                }
                std::fs::remove_file(&path)?;
            }
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
    bail!("could not take the lock {}", path.display())
}

pub(super) fn write_state(home: &Path, state: &State) -> Result<()> {
    let tmp = home.join("mesh.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state)?)?;
    std::fs::rename(&tmp, state_path(home))?;
    Ok(())
}

/// How long `kiosk down` lets `kiosk up` stop its components (Kafka, Connect and MongoDB
/// shut down gracefully, up to 20 s each) before killing it.
const SUPERVISOR_GRACE: Duration = Duration::from_secs(120);
/// How long processes left by a dead supervisor get after SIGTERM.
const LEFTOVER_GRACE: Duration = Duration::from_secs(10);

/// SIGTERM, then SIGKILL after a grace period, to each process that is still ours.
fn stop_processes(procs: &[Proc], grace: Duration) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    for p in procs.iter().filter(|p| p.is_alive()) {
        let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while procs.iter().any(Proc::is_alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in procs.iter().filter(|p| p.is_alive()) {
        let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while procs.iter().any(Proc::is_alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `kiosk down`: ask the running `kiosk up` to stop everything, and wait for it.
pub fn down(home: &Path) -> Result<()> {
    let Some(state) = read_state(home)? else {
        println!(
            "kiosk: no local mesh is running (no {})",
            state_path(home).display()
        );
        return Ok(());
    };
    if state.supervisor.is_alive() {
        println!(
            "kiosk: stopping the mesh of `kiosk up` pid {}",
            state.supervisor.pid
        );
        // It stops the JVMs and databases gracefully, one by one: give it time.
        stop_processes(std::slice::from_ref(&state.supervisor), SUPERVISOR_GRACE);
    }
    // Whatever it could not stop (it was killed, say), stop here.
    let left: Vec<Proc> = state
        .processes
        .iter()
        .filter(|p| p.is_alive())
        .cloned()
        .collect();
    if !left.is_empty() {
        stop_processes(&left, LEFTOVER_GRACE);
    }
    // The pods' network: a killed supervisor leaves it behind.
    if let Some(net) = &state.network {
        net.remove();
        let remaining = net.leftovers();
        if !remaining.is_empty() {
            bail!("could not remove: {}", remaining.join(", "));
        }
    }
    if let Ok(Some(now)) = read_state(home) {
        if now.supervisor == state.supervisor {
            std::fs::remove_file(state_path(home))?;
        }
    }
    println!(
        "kiosk: stopped ({} processes); logs stay in {}",
        state.processes.len() + 1,
        state.run_dir.display()
    );
    Ok(())
}

/// The default home of the local mesh: `$KIOSK_HOME`, else `.kiosk` in the repository.
pub fn default_home() -> PathBuf {
    std::env::var_os("KIOSK_HOME").map_or_else(|| paths::root().join(".kiosk"), PathBuf::from)
}
