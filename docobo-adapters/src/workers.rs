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
//! - [`reconciler`] compares every guild's known members with Discord every [`RECONCILE_EVERY`]
//!   and queues a job for each difference (drift from hand edits, lost jobs); its reads go
//!   through the role client's pacing like everything else.
//! - [`resolver`] reads deferred deliveries (a Sell.app hint) from their provider's API and
//!   applies them ([`resolve_deferred`]), woken at once when one is stored and every [`POLL`]
//!   for those waiting on the backoff.
//! - [`journal`] reads every guild's Sell.app event journal ([`reconcile_journal`]) 30 s after
//!   start and then every [`JOURNAL_EVERY`], making up for lost webhooks and refunds.
//! - [`notifier`] plans *ending soon* reminders every [`REMIND_EVERY`] and sends due member
//!   notices as paced DMs ([`send_due_notices`]), woken at once when a commit records one.
//! - [`relay_worker`] delivers due mirror jobs ([`deliver_due_mirrors`]), woken at once when a
//!   signal is recorded, sleeping until the next one is due (at most [`POLL`]) otherwise.
//! - [`pruner`] empties the bodies of applied and ignored webhooks older than a retention, every
//!   [`PRUNE_EVERY`].
//!
//! All stop between passes once `stop` turns true (or its sender is dropped), so a job in flight
//! settles first. Each pass's result goes to `observe`, for the caller's logs, metrics and
//! heartbeats.

use std::sync::Arc;
use std::time::Duration;

use docobo_core::domain::GuildId;
use docobo_core::domain::NoticeKind;
use docobo_core::ports::{
    CatalogRepo, Clock, DirectMessages, JobQueue, MirrorGateway, NoticeRepo, ProviderRegistry, RelayRepo,
    RoleGateway, StoreError,
};
use docobo_core::service::{
    ClockTrust, ClockWatch, ExpiryReport, MirrorReport, NoticeOutcome, Pace, ReconcileReport, ResolveReport,
    Sender, WorkReport, deliver_due_mirrors, expire_due_watched, plan_reminders, reconcile_guild,
    resolve_deferred, run_due_jobs, send_due_notices,
};
use tokio::sync::watch;

use crate::seaorm::SeaOrmRepo;
#[cfg(feature = "sellapp")]
use crate::sellapp::journal::{JournalError, JournalReport, reconcile_journal};

/// Longest the role worker sleeps without looking for due jobs.
pub const POLL: Duration = Duration::from_secs(5);
/// How often the expirer looks for terms that ran out.
pub const EXPIRY_EVERY: Duration = Duration::from_secs(30);
/// Most entitlements one expiry pass handles.
pub const EXPIRY_BATCH: usize = 500;
/// How often every guild is reconciled against Discord.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(6 * 60 * 60);
/// How often old webhook bodies are pruned.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Sleeps `wait`, or until `stop` changes; `false` once the loop must end (stop is true or its
/// sender is gone).
async fn pause(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        changed = stop.changed() => if changed.is_err() { return false },
    }
    !*stop.borrow()
}

/// Sleeps until `next` (the next job's due time, at most [`POLL`] away), or until `signal` says
/// work was added; `false` once the loop must end. The sender of `stop` gone counts as a stop,
/// rather than waking the loop forever.
async fn wait_for_work(
    next: Result<Option<docobo_core::domain::Timestamp>, StoreError>,
    clock: &dyn Clock,
    signal: &tokio::sync::Notify,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let wait = match next {
        Ok(Some(at)) => Duration::try_from(at - clock.now()).unwrap_or(Duration::ZERO).min(POLL),
        _ => POLL,
    };
    tokio::select! {
        () = signal.notified() => true,
        () = tokio::time::sleep(wait) => true,
        changed = stop.changed() => changed.is_ok(),
    }
}

/// Converges role jobs until `stop` turns true; `observe` sees every pass.
pub async fn role_worker(
    repo: SeaOrmRepo,
    roles: Arc<dyn RoleGateway>,
    clock: Arc<dyn Clock>,
    (lease, batch): (time::Duration, usize),
    mut stop: watch::Receiver<bool>,
    mut observe: impl FnMut(&Result<WorkReport, StoreError>) + Send,
) {
    let signal = repo.job_signal();
    while !*stop.borrow() {
        let pass = run_due_jobs(&repo, roles.as_ref(), clock.as_ref(), lease, batch).await;
        observe(&pass);
        if pass.is_ok_and(|report| report.claimed > 0) {
            continue;
        }
        if !wait_for_work(repo.next_due().await, clock.as_ref(), &signal, &mut stop).await {
            return;
        }
    }
}

/// Most mirror jobs one relay pass claims.
pub const RELAY_BATCH: usize = 64;

/// Delivers mirror jobs until `stop` turns true; `observe` sees every pass.
pub async fn relay_worker(
    repo: SeaOrmRepo,
    mirrors: Arc<dyn MirrorGateway>,
    clock: Arc<dyn Clock>,
    lease: time::Duration,
    mut stop: watch::Receiver<bool>,
    mut observe: impl FnMut(&Result<Vec<MirrorReport>, StoreError>) + Send,
) {
    let signal = repo.mirror_signal();
    while !*stop.borrow() {
        let pass = deliver_due_mirrors(&repo, mirrors.as_ref(), clock.as_ref(), lease, RELAY_BATCH).await;
        observe(&pass);
        if pass.is_ok_and(|reports| !reports.is_empty()) {
            continue;
        }
        if !wait_for_work(repo.next_mirror_due().await, clock.as_ref(), &signal, &mut stop).await {
            return;
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
        if !pause(EXPIRY_EVERY, &mut stop).await {
            return;
        }
    }
}

/// Most deferred deliveries one resolver pass takes.
pub const RESOLVE_BATCH: usize = 16;

/// Resolves deferred deliveries until `stop` turns true; `observe` sees every pass.
pub async fn resolver(
    repo: SeaOrmRepo,
    providers: ProviderRegistry,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
    mut observe: impl FnMut(&Result<ResolveReport, StoreError>) + Send,
) {
    let signal = repo.deferred_signal();
    while !*stop.borrow() {
        let pass = resolve_deferred(&repo, &providers, clock.as_ref(), RESOLVE_BATCH).await;
        observe(&pass);
        if pass.is_ok_and(|report| report.due == RESOLVE_BATCH) {
            continue;
        }
        tokio::select! {
            () = signal.notified() => {}
            () = tokio::time::sleep(POLL) => {}
            changed = stop.changed() => if changed.is_err() { return },
        }
    }
}

/// How often Sell.app's event journal is read.
pub const JOURNAL_EVERY: Duration = Duration::from_secs(10 * 60);

/// Reads every guild's Sell.app journal until `stop` turns true; `observe` sees each guild.
#[cfg(feature = "sellapp")]
pub async fn journal(
    repo: SeaOrmRepo,
    sellapp: crate::sellapp::Sellapp,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
    mut observe: impl FnMut(GuildId, Result<JournalReport, JournalError>) + Send,
) {
    let mut wait = Duration::from_secs(30);
    while pause(wait, &mut stop).await {
        wait = JOURNAL_EVERY;
        let Ok(guilds) = repo.guilds().await else { continue };
        for guild in guilds {
            if *stop.borrow() {
                return;
            }
            observe(guild.id, reconcile_journal(&repo, &sellapp, clock.as_ref(), guild.id).await);
        }
    }
}

/// One step of a reconciliation pass, for `observe`.
#[derive(Debug)]
pub enum Reconciled {
    /// One guild reconciled (or refused by Discord: `report.stopped`).
    Guild(GuildId, ReconcileReport),
    /// One guild could not be read or written.
    Failed(GuildId, StoreError),
    /// The guild list could not be read; the pass is skipped.
    Unavailable(StoreError),
}

/// Every [`RECONCILE_EVERY`] (the first pass one period after start), reconciles every guild
/// until `stop` turns true; `observe` sees each guild.
pub async fn reconciler(
    repo: SeaOrmRepo,
    roles: Arc<dyn RoleGateway>,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
    mut observe: impl FnMut(Reconciled) + Send,
) {
    while pause(RECONCILE_EVERY, &mut stop).await {
        let guilds = match repo.guilds().await {
            Ok(g) => g,
            Err(e) => {
                observe(Reconciled::Unavailable(e));
                continue;
            }
        };
        for guild in guilds {
            if *stop.borrow() {
                return;
            }
            match reconcile_guild(&repo, roles.as_ref(), clock.as_ref(), guild.id).await {
                Ok(report) => observe(Reconciled::Guild(guild.id, report)),
                Err(e) => observe(Reconciled::Failed(guild.id, e)),
            }
        }
    }
}

/// How often *ending soon* reminders are planned.
pub const REMIND_EVERY: Duration = Duration::from_secs(60);

/// What one notifier pass did: reminders planned (on the passes that plan) and the notices
/// handled.
#[derive(Debug, Default)]
pub struct NoticePass {
    pub planned: usize,
    pub handled: Vec<(NoticeKind, NoticeOutcome)>,
}

/// Plans reminders and sends member notices, at most one DM per `pace`, until `stop` turns
/// true; `observe` sees every pass.
pub async fn notifier(
    repo: SeaOrmRepo,
    dms: Arc<dyn DirectMessages>,
    providers: ProviderRegistry,
    clock: Arc<dyn Clock>,
    mut pace: Pace,
    mut stop: watch::Receiver<bool>,
    mut observe: impl FnMut(&Result<NoticePass, StoreError>) + Send,
) {
    let signal = repo.notice_signal();
    let entropy = crate::discord::bot::entropy;
    let mut planned_at: Option<std::time::Instant> = None;
    while !*stop.borrow() {
        let pass = async {
            let mut pass = NoticePass::default();
            if planned_at.is_none_or(|at| at.elapsed() >= REMIND_EVERY) {
                pass.planned = plan_reminders(&repo, clock.as_ref()).await?;
                planned_at = Some(std::time::Instant::now());
            }
            let sender =
                Sender { dms: dms.as_ref(), providers: &providers, clock: clock.as_ref(), entropy: &entropy };
            pass.handled = send_due_notices(&repo, &sender, &mut pace).await?;
            Ok(pass)
        }
        .await;
        observe(&pass);
        // Sleep until the pace allows the next DM or one comes due, at most until the next plan.
        let now = clock.now();
        let until =
            |at: docobo_core::domain::Timestamp| Duration::try_from(at - now).unwrap_or(Duration::ZERO);
        let due = repo.next_notice_due().await.ok().flatten().map(until).unwrap_or(REMIND_EVERY);
        let wait = due.max(pace.next().map_or(Duration::ZERO, until)).min(REMIND_EVERY);
        tokio::select! {
            () = signal.notified() => {}
            () = tokio::time::sleep(wait) => {}
            changed = stop.changed() => if changed.is_err() { return },
        }
    }
}

/// Every [`PRUNE_EVERY`], empties the bodies of applied and ignored webhooks older than
/// `retention`, until `stop` turns true; `observe` sees how many each pass pruned.
pub async fn pruner(
    repo: SeaOrmRepo,
    retention: time::Duration,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
    mut observe: impl FnMut(Result<u64, StoreError>) + Send,
) {
    loop {
        observe(repo.prune_event_bodies(clock.now() - retention).await);
        if !pause(PRUNE_EVERY, &mut stop).await {
            return;
        }
    }
}
