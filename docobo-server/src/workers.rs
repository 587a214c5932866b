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
use std::time::Duration;

use docobo_adapters::discord::gateway::GatewayEvents;
use docobo_adapters::discord::intake::RelayIntake;
use docobo_adapters::discord::rest_client;
use docobo_adapters::seaorm::SeaOrmRepo;
use docobo_adapters::workers::Reconciled;
use docobo_core::ports::{Clock, DirectMessages, MirrorGateway, RoleGateway, SystemClock};
use docobo_core::service::{ClockTrust, Pace, ReconcileReport};
use tokio::sync::watch;

use crate::heartbeats::{Heartbeats, Worker};

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

/// Keeps the gateway connected until `stop` turns true. Message events are asked for only
/// when a relay is configured at connection time; the first relay added later takes effect
/// at the next connection (a restart).
pub async fn gateway(
    state: Arc<crate::state::AppState>,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) {
    let Some((token, api_base)) = state.gateway.clone() else { return };
    let repo: Arc<dyn docobo_core::ports::SubscriptionRepo> = Arc::new(state.repo.clone());
    let mut backoff = Duration::from_secs(5);
    while !*stop.borrow() {
        let relay = Some(Arc::new(RelayIntake::new(repo.clone(), clock.clone(), state.attachments.clone())));
        let handler =
            GatewayEvents { bot: state.bot.clone(), repo: repo.clone(), clock: clock.clone(), relay };
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

/// The library's relay worker, with the server's metrics, latency window and log lines.
pub async fn relay_worker(
    state: Arc<crate::state::AppState>,
    mirrors: Arc<dyn MirrorGateway>,
    clock: Arc<dyn Clock>,
    stop: watch::Receiver<bool>,
) {
    let (metrics, stats) = (state.metrics.clone(), state.relay_stats.clone());
    let lease = state.mirror_lease;
    docobo_adapters::workers::relay_worker(state.repo.clone(), mirrors, clock, lease, stop, |pass| match pass {
        Ok(reports) => {
            metrics.mirrors(reports);
            stats.record(reports);
            for r in reports.iter().filter(|r| r.outcome == "parked") {
                tracing::warn!(relay = %r.relay, op = r.op.as_str(), "a mirror job is parked; see GET /admin/relays/jobs");
            }
        }
        Err(e) => tracing::warn!(error = %e, "relay worker: storage unavailable, trying again shortly"),
    })
    .await;
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

/// The library's resolver, with the server's log lines.
pub async fn resolver(
    repo: SeaOrmRepo,
    providers: docobo_core::ports::ProviderRegistry,
    clock: Arc<dyn Clock>,
    stop: watch::Receiver<bool>,
) {
    docobo_adapters::workers::resolver(repo, providers, clock, stop, |pass| match pass {
        Ok(r) if r.due > 0 => {
            tracing::info!(
                due = r.due,
                settled = r.settled,
                retried = r.retried,
                jobs = r.jobs,
                "deferred deliveries resolved"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "resolver: storage unavailable, trying again shortly"),
    })
    .await;
}

/// The library's Sell.app journal reader, with the server's log lines.
pub async fn journal(
    repo: SeaOrmRepo,
    sellapp: docobo_adapters::sellapp::Sellapp,
    clock: Arc<dyn Clock>,
    stop: watch::Receiver<bool>,
) {
    docobo_adapters::workers::journal(repo, sellapp, clock, stop, |guild, pass| match pass {
        Ok(r) if r.read > 0 => tracing::info!(%guild, read = r.read, new = r.new, restarted = r.restarted, "Sell.app journal read"),
        Ok(_) => {}
        Err(e) => tracing::warn!(%guild, error = %e, "Sell.app journal: not read this time"),
    })
    .await;
}

/// The library's notifier, with the server's metrics and log lines; one DM per
/// `DOCOBO_NOTICE_INTERVAL_MS`.
pub async fn notifier(
    state: Arc<crate::state::AppState>,
    dms: Arc<dyn DirectMessages>,
    clock: Arc<dyn Clock>,
    stop: watch::Receiver<bool>,
) {
    let pace = Pace::every(state.notice_interval);
    let metrics = state.metrics.clone();
    let (repo, providers) = (state.repo.clone(), state.providers.clone());
    docobo_adapters::workers::notifier(repo, dms, providers, clock, pace, stop, |pass| match pass {
        Ok(pass) => {
            metrics.notices(&pass.handled);
            if pass.planned > 0 || !pass.handled.is_empty() {
                tracing::info!(planned = pass.planned, handled = pass.handled.len(), "member notices");
            }
        }
        Err(e) => tracing::warn!(error = %e, "notifier: storage unavailable, trying again shortly"),
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
