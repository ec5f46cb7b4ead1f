//! Child processes with their own log file, stopped when dropped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

/// Set in the environment of every process the harness starts: its run directory.
pub const RUN_DIR_ENV: &str = "KIOSK_RUN_DIR";

/// A running program started by us; killed (and reaped) on drop.
pub struct Service {
    pub name: String,
    pub log: PathBuf,
    child: Child,
}

impl Service {
    /// Start `command` with stdout and stderr appended to `<log_dir>/<name>.log`.
    pub fn start(name: &str, mut command: Command, log_dir: &Path) -> Result<Service> {
        std::fs::create_dir_all(log_dir)?;
        let log = log_dir.join(format!("{name}.log"));
        // Appended: a service restarted in the same run keeps its earlier log.
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let child = command
            // Marks the process as this run's, whatever its command line: a leftover can
            // always be found in /proc/<pid>/environ.
            .env(RUN_DIR_ENV, log_dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(Service {
            name: name.to_string(),
            log,
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Fail with the log's tail if the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!(
                "{} exited ({status}); last lines of {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail(30)
            );
        }
        Ok(())
    }

    /// Wait for the service's port, naming the service and its log tail on failure.
    pub fn wait_for_port(&mut self, port: u16, timeout: Duration) -> Result<()> {
        self.wait_until(&format!("open port {port}"), timeout, || {
            crate::ports::wait_open(port, Duration::from_millis(200)).is_ok()
        })
    }

    /// Wait until the service listens on TCP `port` in its own network namespace (read
    /// from `/proc/<pid>/net/tcp`, so it works for a process in a pod, whose port the host
    /// may not reach).
    pub fn wait_listening(&mut self, port: u16, timeout: Duration) -> Result<()> {
        let pid = self.pid();
        self.wait_until(&format!("listen on port {port}"), timeout, || {
            listening(pid, port)
        })
    }

    /// Probe `ready` until it says yes, failing as soon as the service exits, or with the
    /// log's tail once `timeout` has passed (`what` completes "did not ... within").
    pub fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<()> {
        let start = std::time::Instant::now();
        loop {
            self.check_running()?;
            if ready() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                anyhow::bail!(
                    "{} did not {what} within {timeout:?}; last lines of {}:\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kill at once (SIGKILL) and reap.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Send SIGTERM and return at once (see [`terminate`](Self::terminate)).
    pub fn signal_terminate(&mut self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        }
    }

    /// Ask to stop (SIGTERM), so a database flushes what it holds; kill after `grace`.
    pub fn terminate(&mut self, grace: Duration) {
        if let Ok(None) = self.child.try_wait() {
            self.signal_terminate();
            let start = std::time::Instant::now();
            while start.elapsed() < grace {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.stop();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether the network namespace of process `pid` has a TCP socket listening on `port`.
pub fn listening(pid: u32, port: u16) -> bool {
    ["tcp", "tcp6"].iter().any(|table| {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        text.lines().skip(1).any(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1).unwrap_or_default();
            let state = fields.nth(1).unwrap_or_default();
            state == "0A"
                && local
                    .rsplit_once(':')
                    .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                    == Some(port)
        })
    })
}

pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
