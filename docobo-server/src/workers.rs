//! The background workers the server runs beside HTTP.
//!
//! - The role worker, the expirer, the reconciler (every 6 hours) and the pruner (every hour,
//!   `DOCOBO_EVENT_RETENTION_DAYS`) are the library's loops (`docobo_adapters::workers`, the same
//!   an embedding bot runs), with the server's metrics, heartbeats and log lines. The role
//!   worker's lease and batch follow `DOCOBO_DISCORD_TIMEOUT` (`lease_and_batch`: 8 jobs under a
//!   66 s lease at the default 10 s).
//! - The gateway connection (when `DOCOBO_GATEWAY` is on) handles member joins, guild
//!   registration and interactions; if it cannot connect or drops for good it is retried after
//!   5 s, doubling to 5 minutes.
//!
//! All stop between batches when asked, so a job in flight finishes and settles (its lease is
//! released) before the process exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use docobo_adapters::discord::bot::Bot;
use docobo_adapters::discord::gateway::GatewayEvents;
use docobo_adapters::discord::rest_client;
use docobo_adapters::seaorm::SeaOrmRepo;
use docobo_adapters::workers::Reconciled;
use docobo_core::domain::{Secret, Timestamp};
use docobo_core::ports::{Clock, RoleGateway, SystemClock};
use docobo_core::service::{ClockTrust, ReconcileReport};
use tokio::sync::watch;

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

/// The library's role worker, with the server's metrics, heartbeat and log lines.
pub async fn role_worker(
    repo: SeaOrmRepo,
    roles: Arc<dyn RoleGateway>,
    metrics: Arc<crate::metrics::Metrics>,
    heartbeats: Arc<Heartbeats>,
    lease: (time::Duration, usize),
    clock: Arc<dyn Clock>,
    stop: watch::Receiver<bool>,
) {
    docobo_adapters::workers::role_worker(repo, roles, clock, lease, stop, |pass| match pass {
        Ok(report) => {
            heartbeats.beat(Worker::RoleWorker, SystemClock.now());
            if report.claimed > 0 {
                metrics.jobs(report);
                tracing::info!(
                    claimed = report.claimed,
                    changed = report.changed,
                    retried = report.retried,
                    parked = report.parked,
                    "role jobs run"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "role worker: storage unavailable, trying again shortly"),
    })
    .await;
}

/// Keeps the gateway connected until `stop` turns true.
pub async fn gateway(
    token: Secret,
    api_base: String,
    bot: Bot,
    repo: SeaOrmRepo,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(5);
    while !*stop.borrow() {
        let handler = GatewayEvents { bot: bot.clone(), repo: Arc::new(repo.clone()), clock: clock.clone() };
        let mut stopped = stop.clone();
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        match docobo_adapters::discord::gateway::run(
            rest_client(token.expose(), &api_base),
            handler,
            shutdown,
        )
        .await
        {
            Ok(()) => backoff = Duration::from_secs(5),
            Err(e) => tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), "gateway connection failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(300));
    }
}

/// The library's expirer, with the server's heartbeat and log lines.
pub async fn expirer(
    repo: SeaOrmRepo,
    heartbeats: Arc<Heartbeats>,
    clock: Arc<dyn Clock>,
    stop: watch::Receiver<bool>,
) {
    docobo_adapters::workers::expirer(repo, clock, stop, |pass| {
        if pass.is_ok() {
            heartbeats.beat(Worker::Expirer, SystemClock.now());
        }
        match pass {
            Ok(Ok(report)) if report.due > 0 => {
                tracing::info!(due = report.due, jobs = report.jobs, "terms expired")
            }
            Ok(Err(ClockTrust::Stepped { by })) => tracing::warn!(
                stepped_s = by.whole_seconds(),
                "expirer: the wall clock stepped; nothing expires until it steps back or holds for 10 minutes"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "expirer: storage unavailable, trying again shortly"),
        }
    })
    .await;
}

/// The library's pruner, with the server's log lines.
pub async fn pruner(
    repo: SeaOrmRepo,
    retention: time::Duration,
    clock: Arc<dyn Clock>,
    stop: watch::Receiver<bool>,
) {
    docobo_adapters::workers::pruner(repo, retention, clock, stop, |pass| match pass {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(pruned, "old webhook bodies pruned"),
        Err(e) => tracing::warn!(error = %e, "pruner: storage unavailable, trying again later"),
    })
    .await;
}

/// The library's reconciler, with the server's log lines.
pub async fn reconciler(
    repo: SeaOrmRepo,
    roles: Arc<dyn RoleGateway>,
    clock: Arc<dyn Clock>,
    stop: watch::Receiver<bool>,
) {
    docobo_adapters::workers::reconciler(repo, roles, clock, stop, |pass| match pass {
        Reconciled::Guild(guild, ReconcileReport { stopped: Some(why), .. }) => {
            tracing::warn!(%guild, reason = ?why, "reconciliation stopped: Discord refused the server")
        }
        Reconciled::Guild(guild, r) => {
            tracing::info!(%guild, checked = r.members_checked, drift = r.drift.len(), "reconciled")
        }
        Reconciled::Failed(guild, e) => tracing::warn!(%guild, error = %e, "reconciliation failed"),
        Reconciled::Unavailable(e) => tracing::warn!(error = %e, "reconciler: storage unavailable"),
    })
    .await;
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

    /// M9: a batch behind a slow Discord used to beat only when the whole batch finished, so
    /// `/ready` called the worker stuck (and took the webhook intake out of rotation) while it
    /// was merely waiting on Discord. Every answered call now counts as progress.
    #[tokio::test]
    async fn m9_a_slow_discord_that_still_answers_is_not_a_stuck_worker() {
        use docobo_core::domain::{GuildId, UserId};
        let started = SystemClock.now() - time::Duration::seconds(200);
        let beats = Arc::new(Heartbeats::new(started, Duration::from_secs(10)));
        assert_eq!(beats.problems(&[Worker::RoleWorker], SystemClock.now()).len(), 1, "silent for 200 s");
        let metered = crate::metrics::Metered {
            inner: Arc::new(docobo_core::testing::FakeRoles::new()),
            metrics: Arc::new(crate::metrics::Metrics::new().expect("metrics")),
            heartbeats: Some(beats.clone()),
        };
        let gone = metered.member_roles(GuildId::new(1).expect("id"), UserId::new(2).expect("id")).await;
        assert!(gone.is_err(), "even an error is an answer");
        assert!(beats.problems(&[Worker::RoleWorker], SystemClock.now()).is_empty());
    }

    #[test]
    fn a_long_discord_timeout_stretches_what_counts_as_stuck() {
        let start = datetime!(2026-12-01 12:00 UTC);
        let beats = Heartbeats::new(start, Duration::from_secs(300));
        assert!(beats.problems(&[Worker::RoleWorker], start + time::Duration::seconds(590)).is_empty());
        assert_eq!(beats.problems(&[Worker::RoleWorker], start + time::Duration::seconds(601)).len(), 1);
    }
}
