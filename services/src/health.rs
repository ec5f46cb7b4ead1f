//! Readiness by progress, for a kubelet's exec probe: a consuming service is ready while it
//! waits for records or keeps committing what it read, and not ready once it has held
//! records without committing them for longer than the probe allows (brokers gone, a
//! transaction failing again and again). The service touches a file while it is healthy;
//! `kiosk-services health --file F --max-age S` (the probe) fails once the file is older, and
//! until the service first says it is ready to work.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

/// How often a healthy service touches its file.
pub const TOUCH_EVERY: Duration = Duration::from_secs(5);

/// What the service's loop reports; cloned into the task that touches the file.
#[derive(Clone, Default)]
pub struct Progress {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Ready to work once: before that (transactions not initialised, say), not healthy.
    started: AtomicBool,
    /// Holding records it has not committed yet.
    busy: AtomicBool,
    /// When it last committed, or last started holding records (Unix seconds).
    since: AtomicU64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Progress {
    /// Records taken, not yet committed.
    pub fn holding(&self) {
        if !self.inner.busy.swap(true, Ordering::Relaxed) {
            self.inner.since.store(now(), Ordering::Relaxed);
        }
    }

    /// What was held is committed (or there is nothing to hold; the first call says the
    /// service is ready to work).
    pub fn committed(&self) {
        self.inner.since.store(now(), Ordering::Relaxed);
        self.inner.busy.store(false, Ordering::Relaxed);
        self.inner.started.store(true, Ordering::Relaxed);
    }

    /// Healthy: started, and idle or holding records for less than `stuck_after`.
    pub fn is_healthy(&self, stuck_after: Duration) -> bool {
        self.inner.started.load(Ordering::Relaxed)
            && (!self.inner.busy.load(Ordering::Relaxed)
                || now().saturating_sub(self.inner.since.load(Ordering::Relaxed))
                    < stuck_after.as_secs())
    }

    /// Touch `file` every [`TOUCH_EVERY`] while healthy (holding for less than
    /// `stuck_after`), for as long as the service runs.
    pub fn touch_while_healthy(&self, file: PathBuf, stuck_after: Duration) {
        let progress = self.clone();
        tokio::spawn(async move {
            loop {
                if progress.is_healthy(stuck_after) {
                    if let Err(e) = std::fs::write(&file, now().to_string()) {
                        tracing::warn!(file = %file.display(), error = %e, "health file not written");
                    }
                }
                tokio::time::sleep(TOUCH_EVERY).await;
            }
        });
    }
}

/// A consuming service's health file (`--health-file`, `--stuck-after-secs`).
#[derive(clap::Args, Debug, Clone)]
pub struct FileArgs {
    /// Touch this file every 5 s while making progress (idle, or committing what it
    /// read), for a readiness probe (`kiosk-services health --file`).
    #[arg(long, env = "KIOSK_HEALTH_FILE")]
    pub health_file: Option<PathBuf>,
    /// Records held uncommitted this long: not healthy.
    #[arg(long, default_value_t = 60)]
    pub stuck_after_secs: u64,
}

impl FileArgs {
    /// The service's progress, touching the health file (if any) while healthy.
    pub fn progress(&self) -> Progress {
        let progress = Progress::default();
        if let Some(file) = &self.health_file {
            let stuck_after = Duration::from_secs(self.stuck_after_secs);
            progress.touch_while_healthy(file.clone(), stuck_after);
        }
        progress
    }
}

/// `kiosk-services health`: the probe.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file the service touches while healthy.
    #[arg(long)]
    pub file: PathBuf,
    /// Older than this many seconds: not healthy.
    #[arg(long, default_value_t = 30)]
    pub max_age: u64,
}

/// Whether `file` was touched within `max_age`; the reason when not.
pub fn check(file: &Path, max_age: Duration) -> Result<()> {
    let modified = std::fs::metadata(file)
        .and_then(|m| m.modified())
        .with_context(|| format!("{} not written yet", file.display()))?;
    let age = SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    anyhow::ensure!(
        age <= max_age,
        "no progress for {} s (the service holds records it cannot commit)",
        age.as_secs()
    );
    Ok(())
}

pub fn run(args: Args) -> Result<bool> {
    match check(&args.file, Duration::from_secs(args.max_age)) {
        Ok(()) => Ok(true),
        Err(e) => {
            println!("not ready: {e:#}");
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_is_healthy_and_holding_too_long_is_not() {
        let p = Progress::default();
        assert!(!p.is_healthy(Duration::from_secs(60)), "not started yet");
        p.committed();
        assert!(p.is_healthy(Duration::from_secs(1)), "idle");
        p.holding();
        assert!(p.is_healthy(Duration::from_secs(60)), "holding briefly");
        p.inner.since.store(now() - 120, Ordering::Relaxed);
        assert!(!p.is_healthy(Duration::from_secs(60)), "holding for 2 min");
        // Holding again does not restart the clock; committing does.
        p.holding();
        assert!(!p.is_healthy(Duration::from_secs(60)));
        p.committed();
        assert!(p.is_healthy(Duration::from_secs(60)));
    }

    #[test]
    fn the_probe_fails_on_a_missing_or_stale_file() {
        let dir = std::env::temp_dir().join(format!("kiosk-health-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("health");
        assert!(check(&file, Duration::from_secs(30)).is_err(), "missing");
        std::fs::write(&file, "1").unwrap();
        assert!(check(&file, Duration::from_secs(30)).is_ok(), "fresh");
        let old = SystemTime::now() - Duration::from_secs(120);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let err = check(&file, Duration::from_secs(30)).unwrap_err();
        assert!(err.to_string().contains("no progress for 1"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
