//! The signal relay's use cases.
//!
//! - [`record_source_event`]: a gateway event (or a catch-up read) becomes a stored signal and
//!   its mirror jobs, in one commit ([`crate::domain::decide_signal`] decides; a concurrent
//!   change of the same signal re-reads and decides again).
//! - [`deliver_due_mirrors`]: claims due mirror jobs and makes each target show its signal's
//!   current version: post what was never posted, edit what is behind, delete what the source
//!   deleted. Jobs of one relay run one after another in source order; relays run side by side.
//!
//! **Never twice.** A bot message carries a nonce derived from (signal, relay, part), which
//! Discord enforces for a few minutes. A channel webhook has no nonce, so before it posts, a job
//! records when it started and a digest of each content it is about to post
//! ([`RelayRepo::note_mirror_attempt`]). A worker that finds such a record on a mirror not yet
//! complete (the previous attempt died, or lost Discord's answer, before its commit) first reads
//! Docobo's messages in the target since then ([`MirrorGateway::posted_since`]) and adopts the
//! ones whose content matches a recorded digest instead of posting again; adopted messages are
//! then edited to the signal's current version like any other. This needs Read Message History
//! in the target.
//!
//! **Retries** follow the role jobs' schedule ([`crate::service::retry::backoff`]: 5 s doubling
//! to 15 minutes, `Retry-After` as a floor); after [`MAX_ATTEMPTS`] failures, or at once for a
//! refusal a person must fix, the job is parked with the reason and shown next to parked role
//! jobs.

mod render;

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use time::Duration;

pub use self::render::{DEFAULT_UPLOAD_LIMIT, is_executable, plain_mentions, render, split_text};
use super::retry::{MAX_ATTEMPTS, MAX_CONFLICT_RETRIES, backoff};
use crate::domain::{
    GuildId, JobId, MirrorJob, NewRelay, PostedMessage, Relay, RelayId, RoleId, Signal, SourceEvent,
    Timestamp, UserId, decide_signal,
};
use crate::ports::{
    CatalogRepo, Clock, EntitlementRepo, MirrorError, MirrorGateway, MirrorSettlement, RelayRepo, StoreError,
};

/// How long claimed mirror jobs are a worker's alone, for Discord calls that each give up after
/// `call_timeout`: six calls at the timeout plus a second of pacing each (a job makes two to
/// four; a long signal more), at least ten seconds. A worker that died holds its jobs, and
/// the jobs queued behind them in their relays, that long: 66 s at the default 10 s timeout.
/// Jobs of one relay run one after another, so a job starts only while at least half the
/// lease is left; the rest go back unchanged for the next pass.
pub fn mirror_lease(call_timeout: std::time::Duration) -> Duration {
    let per_call = call_timeout.saturating_add(std::time::Duration::from_secs(1));
    Duration::try_from(per_call.saturating_mul(6)).unwrap_or(Duration::HOUR).max(Duration::seconds(10))
}

/// How far before `tried_at` a recovery looks for messages an earlier attempt posted (clocks
/// of Discord and of this host differ a little).
const RECOVERY_SLACK: Duration = Duration::seconds(2);

/// Why a relay was not added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    #[error("a relay's source and target must be different channels")]
    SameChannel,
    #[error("the name must be 1 to 80 characters")]
    BadName,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Adds a relay, as the CLI and the admin API do.
pub async fn add_relay(
    repo: &dyn RelayRepo,
    clock: &dyn Clock,
    relay: NewRelay,
) -> Result<Relay, RelayError> {
    if relay.source_channel == relay.target_channel {
        return Err(RelayError::SameChannel);
    }
    if relay.name.as_ref().is_some_and(|n| n.trim().is_empty() || n.chars().count() > 80) {
        return Err(RelayError::BadName);
    }
    Ok(repo.add_relay(&relay, clock.now()).await?)
}

/// The relays whose signals `user` may read on the dashboard: each has an access role that the
/// user is entitled to in the relay's target guild at `now`. Checked for every page, file and
/// stream, since access ends.
pub async fn readable_relays<R: RelayRepo + CatalogRepo + EntitlementRepo + ?Sized>(
    repo: &R,
    user: UserId,
    now: Timestamp,
) -> Result<Vec<Relay>, StoreError> {
    let mut entitled: BTreeMap<GuildId, Vec<RoleId>> = BTreeMap::new();
    let mut readable = Vec::new();
    for relay in repo.relays().await? {
        let Some(role) = relay.access_role else { continue };
        let roles = match entitled.entry(relay.target_guild) {
            std::collections::btree_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::btree_map::Entry::Vacant(unknown) => {
                let lines = crate::service::member_status(repo, relay.target_guild, user, now).await?;
                unknown.insert(lines.iter().filter(|l| l.entitled).map(|l| l.role).collect())
            }
        };
        if roles.contains(&role) {
            readable.push(relay);
        }
    }
    Ok(readable)
}

/// Records `event`; `true` when it changed a signal (and so queued mirror work).
pub async fn record_source_event(
    repo: &dyn RelayRepo,
    clock: &dyn Clock,
    event: &SourceEvent,
) -> Result<bool, StoreError> {
    for _ in 0..MAX_CONFLICT_RETRIES {
        let stored = repo.signal(event.channel(), event.message()).await?;
        let Some(write) = decide_signal(stored.as_ref(), event) else { return Ok(false) };
        match repo.record_signal(&write, clock.now()).await {
            Ok(()) => return Ok(true),
            Err(StoreError::Conflict) => {}
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict)
}

/// What a mirror job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorOp {
    Create,
    Update,
    Delete,
}

impl MirrorOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MirrorOp::Create => "create",
            MirrorOp::Update => "update",
            MirrorOp::Delete => "delete",
        }
    }
}

/// One job's result, for metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorReport {
    pub relay: RelayId,
    pub op: MirrorOp,
    /// `mirrored`, `retried`, `parked`, `waiting` (behind an earlier signal) or `lost` (the
    /// lease ran out first).
    pub outcome: &'static str,
    /// Source event received → Discord's last answer, for mirrored jobs.
    pub latency: Option<Duration>,
}

/// Claims up to `limit` due mirror jobs under `lease` ([`mirror_lease`]) and runs them; one
/// report per job.
pub async fn deliver_due_mirrors(
    repo: &dyn RelayRepo,
    gateway: &dyn MirrorGateway,
    clock: &dyn Clock,
    lease: Duration,
    limit: usize,
) -> Result<Vec<MirrorReport>, StoreError> {
    let jobs = repo.claim_mirrors(clock.now(), lease, limit).await?;
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let relays: BTreeMap<RelayId, Relay> = repo.relays().await?.into_iter().map(|r| (r.id, r)).collect();
    let mut by_relay: BTreeMap<RelayId, Vec<MirrorJob>> = BTreeMap::new();
    for job in jobs {
        by_relay.entry(job.relay).or_default().push(job);
    }
    let runs = by_relay.into_values().map(|jobs| {
        let relays = &relays;
        async move {
            let mut reports = Vec::new();
            // A create that failed holds back the creates after it, so order is kept.
            let mut held = false;
            for job in jobs {
                let unposted = job.unposted();
                let late = job.locked_until.is_some_and(|until| until - clock.now() < lease / 2);
                let report = match relays.get(&job.relay) {
                    _ if late || (held && unposted) => release(repo, clock, job).await?,
                    Some(relay) => run(repo, gateway, clock, relay, job).await?,
                    None => release(repo, clock, job).await?,
                };
                held |= unposted && report.outcome != "mirrored";
                reports.push(report);
            }
            Ok::<_, StoreError>(reports)
        }
    });
    let mut all = Vec::new();
    for reports in futures_util::future::join_all(runs).await {
        all.extend(reports?);
    }
    Ok(all)
}

/// Hands a claimed job back untouched.
async fn release(
    repo: &dyn RelayRepo,
    clock: &dyn Clock,
    job: MirrorJob,
) -> Result<MirrorReport, StoreError> {
    let settled = repo.settle_mirror(&job, MirrorSettlement::Released, clock.now()).await?;
    let op = if job.mirrored == 0 { MirrorOp::Create } else { MirrorOp::Update };
    Ok(MirrorReport {
        relay: job.relay,
        op,
        outcome: if settled { "waiting" } else { "lost" },
        latency: None,
    })
}

/// Why a job stopped before its target caught up.
enum Halt {
    Discord(MirrorError),
    Store(StoreError),
    /// The lease ran out and another worker has the job.
    Lost,
}

impl From<MirrorError> for Halt {
    fn from(e: MirrorError) -> Self {
        Halt::Discord(e)
    }
}

/// Makes the relay's target show the job's signal as it is now.
async fn run(
    repo: &dyn RelayRepo,
    gateway: &dyn MirrorGateway,
    clock: &dyn Clock,
    relay: &Relay,
    job: MirrorJob,
) -> Result<MirrorReport, StoreError> {
    let report = |op, outcome, latency| MirrorReport { relay: relay.id, op, outcome, latency };
    let Some(signal) = repo.signal_by_id(job.signal).await? else {
        let why = "the signal is no longer stored".to_owned();
        repo.settle_mirror(&job, MirrorSettlement::Parked { why, posted: job.posted.clone() }, clock.now())
            .await?;
        return Ok(report(MirrorOp::Create, "parked", None));
    };
    let op = match (signal.deleted, job.mirrored) {
        (true, _) => MirrorOp::Delete,
        (false, 0) => MirrorOp::Create,
        (false, _) => MirrorOp::Update,
    };
    let mut posted = job.posted.clone();
    let result = converge((repo, gateway, clock), relay, &signal, &job, &mut posted).await;
    let now = clock.now();
    let (settlement, outcome) = match result {
        Ok(()) => (MirrorSettlement::Mirrored { version: signal.version, posted }, "mirrored"),
        Err(Halt::Store(e)) => return Err(e),
        Err(Halt::Lost) => return Ok(report(op, "lost", None)),
        Err(Halt::Discord(MirrorError::Retryable { after, why })) if job.attempts + 1 < MAX_ATTEMPTS => {
            let id = JobId(job.signal.0.wrapping_mul(1_000_003).wrapping_add(job.relay.0));
            let at = now + backoff(id, job.attempts + 1, after);
            (MirrorSettlement::Retry { at, error: why, posted }, "retried")
        }
        Err(Halt::Discord(MirrorError::Retryable { why, .. } | MirrorError::Refused { why })) => {
            (MirrorSettlement::Parked { why, posted }, "parked")
        }
    };
    if !repo.settle_mirror(&job, settlement, now).await? {
        return Ok(report(op, "lost", None));
    }
    let latency = (outcome == "mirrored").then(|| now - signal.changed_at);
    Ok(report(op, outcome, latency))
}

/// The requests that bring the target to `signal`; `posted` is kept current as they succeed.
async fn converge(
    (repo, gateway, clock): (&dyn RelayRepo, &dyn MirrorGateway, &dyn Clock),
    relay: &Relay,
    signal: &Signal,
    job: &MirrorJob,
    posted: &mut Vec<PostedMessage>,
) -> Result<(), Halt> {
    let parts =
        if signal.deleted { Vec::new() } else { render(&signal.message, relay, DEFAULT_UPLOAD_LIMIT) };
    let creating = job.mirrored == 0;
    let mut recovered = false;
    if creating
        && !job.tried.is_empty()
        && let Some(since) = job.tried_at
    {
        for (message, content) in gateway.posted_since(relay, since - RECOVERY_SLACK).await? {
            if job.tried.contains(&digest(&content)) && !posted.iter().any(|p| p.id == message.id) {
                posted.push(message);
                recovered = true;
            }
        }
        posted.sort_by_key(|p| p.id);
    }
    if creating && parts.len() > posted.len() {
        let digests: Vec<String> = parts[posted.len()..].iter().map(|p| digest(&p.content)).collect();
        let new = digests.iter().any(|d| !job.tried.contains(d)) || job.tried_at.is_none();
        if new && !repo.note_mirror_attempt(job, &digests, clock.now()).await.map_err(Halt::Store)? {
            return Err(Halt::Lost);
        }
    }
    // Parts already posted of the first version are current; any other may show an old one.
    let start = if creating && signal.version == 1 && !recovered { posted.len() } else { 0 };
    for (i, part) in parts.iter().enumerate().skip(start) {
        match posted.get(i).copied() {
            Some(existing) => gateway.edit(relay, existing, part).await?,
            None => posted
                .push(gateway.post(relay, &signal.message.author, part, &nonce(signal, relay, i)).await?),
        }
    }
    while let Some(extra) = posted.get(parts.len()).copied() {
        gateway.delete(relay, extra).await?;
        posted.remove(parts.len());
    }
    Ok(())
}

/// What recognises a part's content among messages already posted.
fn digest(content: &str) -> String {
    Sha256::digest(content.as_bytes()).iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// The same for every attempt of one (signal, relay, part), 24 characters (Discord takes 25).
pub fn nonce(signal: &Signal, relay: &Relay, part: usize) -> String {
    let digest = Sha256::new()
        .chain_update(signal.message.channel.get().to_le_bytes())
        .chain_update(signal.message.id.get().to_le_bytes())
        .chain_update(relay.id.0.to_le_bytes())
        .chain_update(part.to_le_bytes())
        .finalize();
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}
