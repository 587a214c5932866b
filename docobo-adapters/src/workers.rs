//! The loops an application runs beside its HTTP endpoint or its bot, over the SeaORM
//! repository: `docobo-server` and an embedding bot (`examples/serenity_bot.rs`) both run these.
//!
//! - [`role_worker`] claims due role jobs ([`run_due_jobs`], lease and batch from
//!   `lease_and_batch`) and converges them. When nothing is due it sleeps until the next job's
//!   `run_at`, but at most [`POLL`] (jobs enqueued by another process are seen within that), and
//!   wakes at once when this process enqueues one (`SeaOrmRepo::job_signal`), so webhook →
//!   Discord takes milliseconds.
//! - [`expirer`] applies `TermElapsed` to terms, cancellations and grace periods that ran out,
//!   every [`EXPIRY_EVERY`], holding back while the wall clock has stepped (`ClockWatch`).
//!
//! Both stop between passes once `stop` turns true, so a job in flight settles first. Each
//! pass's result goes to `observe`, for the caller's logs, metrics and heartbeats.

use std::sync::Arc;
use std::time::Duration;

use docobo_core::ports::{Clock, JobQueue, RoleGateway, StoreError};
use docobo_core::service::{
    ClockTrust, ClockWatch, ExpiryReport, WorkReport, expire_due_watched, run_due_jobs,
};
use tokio::sync::watch;

use crate::seaorm::SeaOrmRepo;

/// Longest the role worker sleeps without looking for due jobs.
pub const POLL: Duration = Duration::from_secs(5);
/// How often the expirer looks for terms that ran out.
pub const EXPIRY_EVERY: Duration = Duration::from_secs(30);
/// Most entitlements one expiry pass handles.
pub const EXPIRY_BATCH: usize = 500;

/// Converges role jobs until `stop` turns true; `observe` sees every pass.
pub async fn role_worker(
    repo: SeaOrmRepo,
    gateway: Arc<dyn RoleGateway>,
    clock: Arc<dyn Clock>,
    (lease, batch): (time::Duration, usize),
    mut stop: watch::Receiver<bool>,
    mut observe: impl FnMut(&Result<WorkReport, StoreError>) + Send,
) {
    let signal = repo.job_signal();
    while !*stop.borrow() {
        let pass = run_due_jobs(&repo, gateway.as_ref(), clock.as_ref(), lease, batch).await;
        observe(&pass);
        if pass.is_ok_and(|report| report.claimed > 0) {
            continue;
        }
        let wait = match repo.next_due().await {
            Ok(Some(at)) => Duration::try_from(at - clock.now()).unwrap_or(Duration::ZERO).min(POLL),
            _ => POLL,
        };
        tokio::select! {
            () = signal.notified() => {}
            () = tokio::time::sleep(wait) => {}
            // The sender gone counts as a stop, rather than waking this loop forever.
            changed = stop.changed() => if changed.is_err() { return },
        }
    }
}

/// Expires elapsed terms until `stop` turns true; `observe` sees every pass (`Ok(Err(..))`:
/// held back because the wall clock stepped).
pub async fn expirer(
    repo: SeaOrmRepo,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
    mut observe: impl FnMut(&Result<Result<ExpiryReport, ClockTrust>, StoreError>) + Send,
) {
    let started = std::time::Instant::now();
    let mut clock_watch = ClockWatch::default();
    while !*stop.borrow() {
        let pass =
            expire_due_watched(&repo, clock.as_ref(), &mut clock_watch, started.elapsed(), EXPIRY_BATCH)
                .await;
        observe(&pass);
        tokio::select! {
            () = tokio::time::sleep(EXPIRY_EVERY) => {}
            changed = stop.changed() => if changed.is_err() { return },
        }
    }
}
