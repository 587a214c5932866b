//! [`Heartbeats`]: when each background worker last made progress, for `/ready`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use docobo_core::domain::Timestamp;

/// When each background worker last made progress, so `/ready` can tell a stuck or dead worker
/// from a quiet one. The role worker beats after every pass and every answered Discord call
/// (through the metered gateway), the expirer after every pass (at least every 30 s). A worker
/// silent for longer than [`Heartbeats::STALE`], or twice the Discord call timeout when that is
/// longer, counts as stuck: a slow Discord still answers (or times out) within the timeout, so
/// it is never taken for a stuck worker.
#[derive(Debug)]
pub struct Heartbeats {
    role_worker: AtomicI64,
    expirer: AtomicI64,
    stale_seconds: i64,
}

/// A background worker with a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worker {
    RoleWorker,
    Expirer,
}

impl Heartbeats {
    pub const STALE: time::Duration = time::Duration::seconds(120);

    /// Both counted from `now`, so a server that just started is not reported stuck.
    pub fn new(now: Timestamp, call_timeout: Duration) -> Self {
        let t = now.unix_timestamp();
        let stale = Self::STALE
            .whole_seconds()
            .max(i64::try_from(call_timeout.as_secs()).unwrap_or(i64::MAX).saturating_mul(2));
        Heartbeats { role_worker: AtomicI64::new(t), expirer: AtomicI64::new(t), stale_seconds: stale }
    }

    fn cell(&self, worker: Worker) -> &AtomicI64 {
        match worker {
            Worker::RoleWorker => &self.role_worker,
            Worker::Expirer => &self.expirer,
        }
    }

    pub fn beat(&self, worker: Worker, now: Timestamp) {
        self.cell(worker).store(now.unix_timestamp(), Ordering::Relaxed);
    }

    /// A reason for each of `running` that has not finished a pass within [`Self::STALE`].
    pub fn problems(&self, running: &[Worker], now: Timestamp) -> Vec<String> {
        running
            .iter()
            .filter_map(|w| {
                let idle = now.unix_timestamp() - self.cell(*w).load(Ordering::Relaxed);
                let name = match w {
                    Worker::RoleWorker => "the role worker",
                    Worker::Expirer => "the expirer",
                };
                (idle > self.stale_seconds)
                    .then(|| format!("workers: {name} has not finished a pass for {idle} s (stuck, or the database is down)"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_worker_is_reported_only_once_it_has_missed_passes_for_two_minutes() {
        let start = datetime!(2026-12-01 12:00 UTC);
        let beats = Heartbeats::new(start, Duration::from_secs(10));
        let both = [Worker::RoleWorker, Worker::Expirer];
        assert!(beats.problems(&both, start + time::Duration::seconds(120)).is_empty(), "just started");
        beats.beat(Worker::RoleWorker, start + time::Duration::seconds(100));
        let problems = beats.problems(&both, start + time::Duration::seconds(121));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("the expirer") && problems[0].contains("121 s"), "{problems:?}");
        assert!(beats.problems(&[Worker::RoleWorker], start + time::Duration::seconds(121)).is_empty());
    }

    #[test]
    fn a_long_discord_timeout_stretches_what_counts_as_stuck() {
        let start = datetime!(2026-12-01 12:00 UTC);
        let beats = Heartbeats::new(start, Duration::from_secs(300));
        assert!(beats.problems(&[Worker::RoleWorker], start + time::Duration::seconds(590)).is_empty());
        assert_eq!(beats.problems(&[Worker::RoleWorker], start + time::Duration::seconds(601)).len(), 1);
    }
}
