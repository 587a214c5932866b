//! The expirer: turns terms, cancellations and grace periods that ran out by the clock into
//! `TermElapsed` events, and enqueues the role jobs that remove access.
//!
//! Nothing else would notice: no provider sends a webhook when a fixed term ends, and a lost
//! `subscription.revoked` must not leave a cancelled member with the role forever.
//!
//! The wall clock can step (an NTP correction, a VM restored from a snapshot, a skewed host), and
//! an expiry decided at a wrong time is stored for good. Two guards: `TermElapsed` is stamped
//! at the deadline, never later than it (so no stored fact lies in the future), and
//! [`ClockWatch`] compares the wall clock with a monotonic one between passes and holds expiry
//! back while they disagree by more than [`ClockWatch::TOLERANCE`]. A step that is undone (a
//! year forward and back) never expires anyone; a step that holds for [`ClockWatch::CONFIRM`] is
//! taken as the correct time.

use super::notices::on_elapsed;
use crate::domain::{Entitlement, Guild, RoleJobKey, Timestamp};
use crate::machine::{self, Effect, Event, EventKind, Version};
use crate::ports::{
    CatalogRepo, Clock, Commit, EntitlementRepo, EntitlementWrite, Ledger, Recorded, StoreError,
};

/// What one expiry pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpiryReport {
    /// Entitlements whose deadline had passed.
    pub due: usize,
    /// Of those, how many now need their role re-checked.
    pub jobs: usize,
    /// Skipped because a concurrent write got there first (the next pass sees the new state).
    pub conflicts: usize,
}

/// Applies `TermElapsed` to up to `limit` entitlements whose deadline is at or before now. Each
/// entitlement is its own commit, so one conflict does not hold up the rest.
pub async fn expire_due<R: CatalogRepo + EntitlementRepo + Ledger + ?Sized>(
    repo: &R,
    clock: &dyn Clock,
    limit: usize,
) -> Result<ExpiryReport, StoreError> {
    let now = clock.now();
    let due = repo.due_entitlements(now, limit).await?;
    let mut report = ExpiryReport { due: due.len(), ..ExpiryReport::default() };
    for entitlement in due {
        let guild = repo.guild(entitlement.guild).await?;
        let guild = guild.unwrap_or_else(|| Guild::new(entitlement.guild, ""));
        let Some(commit) = elapse(&entitlement, &guild, now) else { continue };
        let jobs = commit.jobs.len();
        match repo.commit(commit).await {
            Ok(Recorded::Committed) => report.jobs += jobs,
            Ok(Recorded::Duplicate) => {}
            Err(StoreError::Conflict) => report.conflicts += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

/// Whether the wall clock can be trusted for an expiry pass now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockTrust {
    Trusted,
    /// The wall clock moved `by` more (or less, when negative) than the monotonic clock since
    /// the last trusted pass.
    Stepped {
        by: time::Duration,
    },
}

/// Tells a wall-clock step from the passage of time, by comparing the wall clock with a
/// monotonic clock (which never steps) between passes. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct ClockWatch {
    /// The wall and monotonic readings of the last trusted pass.
    base: Option<(Timestamp, std::time::Duration)>,
    /// The monotonic reading when a step was first seen, while it lasts.
    stepped_since: Option<std::time::Duration>,
}

impl ClockWatch {
    /// How far the two clocks may disagree between passes: far more than NTP's slewing (at most
    /// 0.5 ms per second) can make them drift.
    pub const TOLERANCE: time::Duration = time::Duration::seconds(60);
    /// How long a step must hold before it is taken as the correct time.
    pub const CONFIRM: std::time::Duration = std::time::Duration::from_secs(10 * 60);

    /// Compares `wall` with `monotonic` (any monotonic reading, e.g. the time since the process
    /// started) against the last trusted pass.
    pub fn check(&mut self, wall: Timestamp, monotonic: std::time::Duration) -> ClockTrust {
        let Some((base_wall, base_mono)) = self.base else {
            self.base = Some((wall, monotonic));
            return ClockTrust::Trusted;
        };
        let elapsed =
            time::Duration::try_from(monotonic.saturating_sub(base_mono)).unwrap_or(time::Duration::MAX);
        let by = (wall - base_wall).saturating_sub(elapsed);
        if by.abs() <= Self::TOLERANCE {
            *self = ClockWatch { base: Some((wall, monotonic)), stepped_since: None };
            return ClockTrust::Trusted;
        }
        let since = *self.stepped_since.get_or_insert(monotonic);
        if monotonic.saturating_sub(since) >= Self::CONFIRM {
            *self = ClockWatch { base: Some((wall, monotonic)), stepped_since: None };
            return ClockTrust::Trusted;
        }
        ClockTrust::Stepped { by }
    }
}

/// [`expire_due`] when `watch` trusts the clock at `monotonic`; `Ok(None)` (nothing done) while
/// the wall clock disagrees with it.
pub async fn expire_due_watched<R: CatalogRepo + EntitlementRepo + Ledger + ?Sized>(
    repo: &R,
    clock: &dyn Clock,
    watch: &mut ClockWatch,
    monotonic: std::time::Duration,
    limit: usize,
) -> Result<Result<ExpiryReport, ClockTrust>, StoreError> {
    match watch.check(clock.now(), monotonic) {
        ClockTrust::Trusted => expire_due(repo, clock, limit).await.map(Ok),
        stepped => Ok(Err(stepped)),
    }
}

/// The commit that marks `entitlement`'s term as elapsed at `now`, if that changes anything, with
/// the *ended* notice when access ended by it.
fn elapse(entitlement: &Entitlement, guild: &Guild, now: Timestamp) -> Option<Commit> {
    let grace = guild.grace;
    // Stamped at the deadline: the fact is "the term ran out then", true whenever it is read.
    let at = entitlement.standing.deadline(grace).map_or(now, |d| d.min(now));
    let event = Event { kind: EventKind::TermElapsed, version: Version(at) };
    // `TermElapsed` cannot fail: it extends nothing.
    let transition = machine::apply(&entitlement.standing, &event, now).ok()?;
    if transition.outcome == machine::Outcome::Unchanged {
        return None;
    }
    // Whether access ran out at the deadline. The status alone does not tell: a failed renewal
    // whose grace ran out stays `past_due` when the provider reported a later period end (Polar's
    // `past_due` does), and its access view does not change, yet access ends.
    let was = machine::entitled(&entitlement.standing, at - time::Duration::MICROSECOND, grace);
    let ended = was && !machine::entitled(&transition.standing, now, grace);
    let jobs: Vec<RoleJobKey> = if ended || transition.effects.contains(&Effect::SyncRole) {
        vec![entitlement.job_key()]
    } else {
        vec![]
    };
    let notices = if ended { on_elapsed(guild, entitlement.into(), at, now) } else { Vec::new() };
    Some(Commit {
        writes: vec![EntitlementWrite::Update {
            id: entitlement.id,
            expected_revision: entitlement.revision,
            deadline: transition.standing.deadline(grace),
            standing: transition.standing,
        }],
        notices,
        jobs,
        cause: format!("term of entitlement {} elapsed", entitlement.id),
        ..Commit::new(now)
    })
}
