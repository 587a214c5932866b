//! The reconciler: compares the roles members should hold with the roles they hold, and enqueues
//! role jobs for the differences. It runs on member join, on a schedule, and on demand.
//!
//! Only members Docobo knows (those with an entitlement in the guild) are checked: a paid role an
//! owner handed out by hand to someone who never bought it is the owner's business.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::{Entitlement, Guild, GuildId, RoleId, RoleJobKey, Timestamp, UserId};
use crate::machine::role_desired;
use crate::ports::{CatalogRepo, Clock, EntitlementRepo, GatewayError, JobQueue, RoleGateway, StoreError};

/// One member whose role differs from what their entitlements say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drift {
    pub key: RoleJobKey,
    /// Whether they should hold the role.
    pub desired: bool,
}

/// The desired holding of every (member, role) that has entitlements.
pub fn desired_roles(
    entitlements: &[Entitlement],
    now: Timestamp,
    grace: time::Duration,
) -> BTreeMap<RoleJobKey, bool> {
    let mut by_key: BTreeMap<RoleJobKey, Vec<&Entitlement>> = BTreeMap::new();
    for e in entitlements {
        by_key.entry(e.job_key()).or_default().push(e);
    }
    by_key
        .into_iter()
        .map(|(key, es)| (key, role_desired(es.iter().map(|e| &e.standing), now, grace)))
        .collect()
}

/// The pure diff: for each key, does the member's actual holding (from `actual`) match the
/// desired one? Members missing from `actual` (not in the guild) are skipped: a join re-checks
/// them.
pub fn diff(desired: &BTreeMap<RoleJobKey, bool>, actual: &BTreeMap<UserId, BTreeSet<RoleId>>) -> Vec<Drift> {
    desired
        .iter()
        .filter_map(|(key, &want)| {
            let roles = actual.get(&key.user)?;
            (roles.contains(&key.role) != want).then_some(Drift { key: *key, desired: want })
        })
        .collect()
}

/// What a reconciliation found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub members_checked: usize,
    pub members_gone: usize,
    /// Members Discord could not tell us about right now (rate limits, outages): checked next time.
    pub members_unreadable: usize,
    pub drift: Vec<Drift>,
    /// Why the pass stopped early: Discord refused to show the guild (the bot was removed, or
    /// lost access), which would be the same answer for every member. Each refusal counts
    /// toward Discord's invalid-request limit, so one is enough.
    pub stopped: Option<String>,
}

/// The repository ports reconciliation needs.
pub trait ReconcileRepo: CatalogRepo + EntitlementRepo + JobQueue {}
impl<T: CatalogRepo + EntitlementRepo + JobQueue + ?Sized> ReconcileRepo for T {}

/// Reads every known member's roles once, and enqueues a role job for each drift.
pub async fn reconcile_guild<R: ReconcileRepo + ?Sized>(
    repo: &R,
    gateway: &dyn RoleGateway,
    clock: &dyn Clock,
    guild: GuildId,
) -> Result<ReconcileReport, StoreError> {
    let grace = repo.guild(guild).await?.map_or(Guild::DEFAULT_GRACE, |g| g.grace);
    let entitlements = repo.guild_entitlements(guild).await?;
    let desired = desired_roles(&entitlements, clock.now(), grace);
    let users: BTreeSet<UserId> = desired.keys().map(|k| k.user).collect();
    let mut report = ReconcileReport::default();
    let mut actual = BTreeMap::new();
    for user in users {
        match gateway.member_roles(guild, user).await {
            Ok(roles) => {
                report.members_checked += 1;
                actual.insert(user, roles);
            }
            Err(GatewayError::MemberGone) => report.members_gone += 1,
            Err(e @ (GatewayError::Forbidden { .. } | GatewayError::NotFound { .. })) => {
                report.stopped = Some(e.to_string());
                break;
            }
            Err(GatewayError::Retryable { .. }) => report.members_unreadable += 1,
        }
    }
    report.drift = diff(&desired, &actual);
    let keys: Vec<RoleJobKey> = report.drift.iter().map(|d| d.key).collect();
    if !keys.is_empty() {
        repo.enqueue(&keys, "reconciliation", clock.now()).await?;
    }
    Ok(report)
}

/// A member (re)joined: re-check every paid role they have entitlements for. Returns how many
/// jobs were enqueued.
pub async fn on_member_join<R: EntitlementRepo + JobQueue + ?Sized>(
    repo: &R,
    clock: &dyn Clock,
    guild: GuildId,
    user: UserId,
) -> Result<usize, StoreError> {
    let keys: BTreeSet<RoleJobKey> =
        repo.member_entitlements(guild, user).await?.iter().map(Entitlement::job_key).collect();
    let keys: Vec<RoleJobKey> = keys.into_iter().collect();
    if !keys.is_empty() {
        repo.enqueue(&keys, "member joined", clock.now()).await?;
    }
    Ok(keys.len())
}
