//! `restartPolicy: Always`, as the kubelet applies it to a pod's containers: a component
//! whose process exited is restarted, at once the first time, then after a back-off that
//! doubles from 10 s up to 5 min, and starts again from nothing once the component has
//! run 10 min. Every restart is printed, counted and kept in the mesh's state
//! (`mesh.json`): a restart is never silent.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The kubelet's back-off: 10 s doubling, capped at 5 min, reset after 10 min running.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
pub const RESET_AFTER: Duration = Duration::from_secs(600);

/// What the mesh's state shows of one component's restarts.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Restarts {
    pub count: u32,
    /// Why it last exited: the first line of what its check said.
    pub last_reason: String,
    /// When it was last restarted, in Unix seconds.
    pub last_at: u64,
}

/// One component's back-off.
#[derive(Debug)]
pub struct Backoff {
    /// The delay before the next restart.
    delay: Duration,
    /// When the component last started.
    started: Instant,
    /// Found exited: restart it at this instant.
    due: Option<Instant>,
}

impl Backoff {
    pub fn new(started: Instant) -> Self {
        Backoff {
            delay: Duration::ZERO,
            started,
            due: None,
        }
    }

    /// The component was found exited at `now`: when to restart it, and whether that was
    /// decided just now (the first time it is found exited).
    pub fn exited(&mut self, now: Instant) -> (Instant, bool) {
        if let Some(due) = self.due {
            return (due, false);
        }
        if now.saturating_duration_since(self.started) >= RESET_AFTER {
            self.delay = Duration::ZERO;
        }
        let due = now + self.delay;
        self.delay = if self.delay.is_zero() {
            INITIAL_BACKOFF
        } else {
            (self.delay * 2).min(MAX_BACKOFF)
        };
        self.due = Some(due);
        (due, true)
    }

    /// A restart was attempted at `now` (whether or not it came up: if not, it is found
    /// exited again and waits out the next, longer delay).
    pub fn restarted(&mut self, now: Instant) {
        self.started = now;
        self.due = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_at_once_then_back_off_doubling_to_five_minutes() {
        let t0 = Instant::now();
        let mut b = Backoff::new(t0);
        let mut now = t0 + Duration::from_secs(1);
        let mut delays = Vec::new();
        for _ in 0..8 {
            let (due, new) = b.exited(now);
            assert!(new);
            // Found exited again before it is due: the same instant, not a new decision.
            assert_eq!(b.exited(now), (due, false));
            delays.push((due - now).as_secs());
            now = due;
            b.restarted(now);
            now += Duration::from_secs(1);
        }
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn ten_minutes_running_resets_the_back_off() {
        let t0 = Instant::now();
        let mut b = Backoff::new(t0);
        b.exited(t0);
        b.restarted(t0);
        let (due, _) = b.exited(t0 + Duration::from_secs(5));
        assert_eq!(due - (t0 + Duration::from_secs(5)), INITIAL_BACKOFF);
        b.restarted(due);
        let later = due + RESET_AFTER;
        assert_eq!(b.exited(later), (later, true));
    }
}
