//! The role-sync step: converge one (guild, user, role) to what the entitlements say.
//!
//! The worker does not replay "grant" or "revoke" commands. It computes the desired state from
//! the database when it runs, reads the member's roles from Discord, changes only the difference,
//! and re-reads the member to verify. Duplicated, reordered or retried jobs collapse into the same
//! result. Failures are classified: retry later (with [`super::retry::backoff`]), park for a
//! person, or done.

use crate::domain::{AuditAction, AuditEntry, Guild, RoleJob, RoleJobKey, Timestamp};
use crate::machine::role_desired;
use crate::ports::{
    CatalogRepo, Clock, EntitlementRepo, GatewayError, JobQueue, RoleGateway, Settled, Settlement, StoreError,
};

use super::retry::{MAX_ATTEMPTS, backoff};

/// What converging one job found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The member holds the role iff they should; `change` says what this run did.
    Converged { change: Option<AuditAction> },
    /// The member is not in the guild. Nothing to do until they rejoin (the join handler enqueues
    /// a new job then).
    MemberGone,
    /// Try again later.
    Retry { after: Option<time::Duration>, error: String },
    /// Needs a person; the reason says what to fix.
    Park { reason: String },
}

/// Converges `key` once. Store errors are returned as errors (the job's lease then runs out and
/// it is retried); Discord's are classified into the verdict.
pub async fn sync_role<R: CatalogRepo + EntitlementRepo + ?Sized>(
    repo: &R,
    gateway: &dyn RoleGateway,
    key: RoleJobKey,
    cause: &str,
    now: Timestamp,
) -> Result<(Verdict, Option<AuditEntry>), StoreError> {
    let grace = repo.guild(key.guild).await?.map_or(Guild::DEFAULT_GRACE, |g| g.grace);
    let entitlements = repo.entitlements_for(key).await?;
    let desired = role_desired(entitlements.iter().map(|e| &e.standing), now, grace);

    let has = match gateway.member_roles(key.guild, key.user).await {
        Ok(roles) => roles.contains(&key.role),
        Err(e) => return Ok((classify(e, desired), None)),
    };
    if has == desired {
        return Ok((Verdict::Converged { change: None }, None));
    }
    let reason = format!("Docobo: {cause}");
    let (result, action) = if desired {
        (gateway.add_role(key.guild, key.user, key.role, &reason).await, AuditAction::RoleAdded)
    } else {
        (gateway.remove_role(key.guild, key.user, key.role, &reason).await, AuditAction::RoleRemoved)
    };
    if let Err(e) = result {
        return Ok((classify(e, desired), None));
    }
    // Verify the post-condition: a 2xx is not proof (another bot may race us, Discord may lag).
    match gateway.member_roles(key.guild, key.user).await {
        Ok(roles) if roles.contains(&key.role) == desired => {
            let audit = AuditEntry {
                guild: key.guild,
                user: key.user,
                role: key.role,
                action,
                reason,
                cause: Some(cause.to_owned()),
                at: now,
            };
            Ok((Verdict::Converged { change: Some(action) }, Some(audit)))
        }
        Ok(_) => Ok((
            Verdict::Retry {
                after: None,
                error: "Discord accepted the change but the member's roles do not show it yet".to_owned(),
            },
            None,
        )),
        Err(e) => Ok((classify(e, desired), None)),
    }
}

/// What a gateway error means for a job that wants the role (`desired`) or not.
fn classify(error: GatewayError, desired: bool) -> Verdict {
    match error {
        GatewayError::Retryable { after, why } => Verdict::Retry { after, error: why },
        // Removing from someone who left is done; granting waits for them to rejoin.
        GatewayError::MemberGone if !desired => Verdict::Converged { change: None },
        GatewayError::MemberGone => Verdict::MemberGone,
        GatewayError::NotFound { .. } if !desired => Verdict::Converged { change: None },
        GatewayError::NotFound { what } => Verdict::Park {
            reason: format!(
                "{what} was not found on Discord; check the role still exists and the bot is in the server"
            ),
        },
        GatewayError::Forbidden { why } => Verdict::Park { reason: why },
    }
}

/// Turns a verdict into what the queue records, applying the retry schedule.
pub fn settlement(job: &RoleJob, verdict: &Verdict, now: Timestamp) -> Settlement {
    match verdict {
        Verdict::Converged { .. } | Verdict::MemberGone => Settlement::Done,
        Verdict::Park { reason } => Settlement::Park { reason: reason.clone() },
        Verdict::Retry { after, error } => {
            let attempt = job.attempts + 1;
            if attempt >= MAX_ATTEMPTS {
                Settlement::Park { reason: format!("gave up after {attempt} attempts; last error: {error}") }
            } else {
                Settlement::Retry { at: now + backoff(job.id, attempt, *after), error: error.clone() }
            }
        }
    }
}

/// What one pass of the worker did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkReport {
    pub claimed: usize,
    pub changed: usize,
    pub retried: usize,
    pub parked: usize,
    /// Settlements dropped because the lease ran out meanwhile, or the job was re-enqueued.
    pub superseded: usize,
    /// For each change made, how long after the job became due (the webhook's commit, or the
    /// retry time) the change was verified on Discord: the webhook → role latency.
    pub change_latencies: Vec<time::Duration>,
}

/// The repository ports the worker needs.
pub trait WorkerRepo: CatalogRepo + EntitlementRepo + JobQueue {}
impl<T: CatalogRepo + EntitlementRepo + JobQueue + ?Sized> WorkerRepo for T {}

/// Jobs of one batch converged at the same time. Each job is a different (guild, user, role), so
/// they are independent; Discord's limits are the gateway's pacing, not this.
pub const JOB_CONCURRENCY: usize = 8;
/// How soon a job that failed on a storage error runs again.
pub const STORE_RETRY: time::Duration = time::Duration::seconds(5);
/// Discord calls one job makes at most: read, change, verify.
pub const CALLS_PER_JOB: u32 = 3;
/// Most jobs claimed at once.
pub const MAX_BATCH: usize = 50;

/// The lease and batch size for role jobs whose Discord calls each give up after
/// `call_timeout`, so that a batch always finishes inside its lease (review finding M5).
///
/// The worst job is [`CALLS_PER_JOB`] calls at the timeout plus 1 s of pacing each. A batch runs
/// [`JOB_CONCURRENCY`] jobs at a time, so `n` rounds take up to `n` worst jobs. The lease is two
/// worst jobs, at least a minute (a worker that died holds its jobs that long); the batch is as
/// many rounds as leave one worst job of margin, at most [`MAX_BATCH`]: 8 jobs under a 66 s lease
/// at the default 10 s timeout, 50 under a minute at a 1 s timeout.
pub fn lease_and_batch(call_timeout: std::time::Duration) -> (time::Duration, usize) {
    let per_call = call_timeout.saturating_add(std::time::Duration::from_secs(1));
    let worst =
        time::Duration::try_from(per_call.saturating_mul(CALLS_PER_JOB)).unwrap_or(time::Duration::DAY);
    let lease: time::Duration = (worst * 2i32).max(time::Duration::MINUTE);
    let rounds = (lease.whole_milliseconds() / worst.whole_milliseconds().max(1)).saturating_sub(1);
    let rounds = usize::try_from(rounds).unwrap_or(1).max(1);
    (lease, (JOB_CONCURRENCY * rounds).min(MAX_BATCH))
}

/// Claims up to `limit` due jobs, converges them ([`JOB_CONCURRENCY`] at a time) and settles
/// each. The binary runs this in a loop, woken when ingest enqueues jobs and otherwise at
/// [`JobQueue::next_due`]. A storage error on one job does not abandon the others in flight; the
/// first is returned once all have finished, and unsettled jobs run again when their lease ends.
pub async fn run_due_jobs<R: WorkerRepo + ?Sized>(
    repo: &R,
    gateway: &dyn RoleGateway,
    clock: &dyn Clock,
    lease: time::Duration,
    limit: usize,
) -> Result<WorkReport, StoreError> {
    use futures_util::StreamExt;

    let jobs = repo.claim_due(clock.now(), lease, limit).await?;
    let mut report = WorkReport { claimed: jobs.len(), ..WorkReport::default() };
    let mut outcomes = futures_util::stream::iter(jobs)
        .map(|job| async move {
            let outcome = run_job(repo, gateway, clock, job.clone()).await;
            if let Err(e) = &outcome {
                // A storage error (a dropped connection, a failover) left the job leased. Release
                // it for a retry soon if the database answers again, rather than leaving it until
                // the lease runs out; if it does not answer, the lease still ends.
                let retry = Settlement::Retry { at: clock.now() + STORE_RETRY, error: e.to_string() };
                let _ = repo.settle(&job, retry, vec![], clock.now()).await;
            }
            outcome
        })
        .buffer_unordered(JOB_CONCURRENCY);
    let mut failure = None;
    while let Some(outcome) = outcomes.next().await {
        match outcome {
            Ok((settled, applied)) => {
                match settled {
                    JobOutcome::Unchanged => {}
                    JobOutcome::Changed(latency) => {
                        report.changed += 1;
                        report.change_latencies.push(latency);
                    }
                    JobOutcome::Retried => report.retried += 1,
                    JobOutcome::Parked => report.parked += 1,
                }
                report.superseded += usize::from(!applied);
            }
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    failure.map_or(Ok(report), Err)
}

/// How one job was settled, for the report.
enum JobOutcome {
    Unchanged,
    /// With the time from the job's `run_at` to the verified change.
    Changed(time::Duration),
    Retried,
    Parked,
}

/// Converges and settles one claimed job; `true` when the settlement was applied.
async fn run_job<R: WorkerRepo + ?Sized>(
    repo: &R,
    gateway: &dyn RoleGateway,
    clock: &dyn Clock,
    job: RoleJob,
) -> Result<(JobOutcome, bool), StoreError> {
    let cause = job.cause.clone().unwrap_or_else(|| format!("role job {}", job.id));
    let (verdict, audit) = sync_role(repo, gateway, job.key, &cause, clock.now()).await?;
    let now = clock.now();
    let mut audit: Vec<AuditEntry> = audit.into_iter().collect();
    let settled = settlement(&job, &verdict, now);
    let outcome = match &settled {
        Settlement::Done if audit.is_empty() => JobOutcome::Unchanged,
        Settlement::Done => JobOutcome::Changed((now - job.run_at).max(time::Duration::ZERO)),
        Settlement::Retry { .. } => JobOutcome::Retried,
        Settlement::Park { reason } => {
            audit.push(AuditEntry {
                guild: job.key.guild,
                user: job.key.user,
                role: job.key.role,
                action: AuditAction::JobParked,
                reason: reason.clone(),
                cause: Some(cause.clone()),
                at: now,
            });
            JobOutcome::Parked
        }
    };
    let settled = repo.settle(&job, settled, audit, now).await?;
    if settled == Settled::LeaseLost {
        // Our lease ran out and another worker claimed the job: whatever this run changed on
        // Discord may have landed after that worker's check, so the key is checked once more.
        repo.enqueue(&[job.key], &cause, now).await?;
    }
    Ok((outcome, settled == Settled::Applied))
}
