//! The expirer: turns terms, cancellations and grace periods that ran out by the clock into
//! `TermElapsed` events, and enqueues the role jobs that remove access.
//!
//! Nothing else would notice: no provider sends a webhook when a fixed term ends, and a lost
//! `subscription.revoked` must not leave a cancelled member with the role forever.

use crate::domain::{Entitlement, Guild, RoleJobKey};
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
        let grace = repo.guild(entitlement.guild).await?.map_or(Guild::DEFAULT_GRACE, |g| g.grace);
        let Some(commit) = elapse(&entitlement, grace, now) else { continue };
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

/// The commit that marks `entitlement`'s term as elapsed at `now`, if that changes anything.
fn elapse(entitlement: &Entitlement, grace: time::Duration, now: crate::domain::Timestamp) -> Option<Commit> {
    let event = Event { kind: EventKind::TermElapsed, version: Version(now) };
    // `TermElapsed` cannot fail: it extends nothing.
    let transition = machine::apply(&entitlement.standing, &event, now).ok()?;
    if transition.outcome == machine::Outcome::Unchanged {
        return None;
    }
    let jobs: Vec<RoleJobKey> =
        if transition.effects.contains(&Effect::SyncRole) { vec![entitlement.job_key()] } else { vec![] };
    Some(Commit {
        event: None,
        replay: false,
        writes: vec![EntitlementWrite::Update {
            id: entitlement.id,
            expected_revision: entitlement.revision,
            deadline: transition.standing.deadline(grace),
            standing: transition.standing,
        }],
        jobs,
        cause: format!("term of entitlement {} elapsed", entitlement.id),
        audit: vec![],
        payments: vec![],
        at: now,
    })
}
