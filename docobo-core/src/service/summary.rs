//! A guild at a glance, for its owner or an operator: who holds each paid role now, and how its
//! purchases stand.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::{GuildId, RoleId, Timestamp, UserId};
use crate::machine::Status;
use crate::ports::{CatalogRepo, EntitlementRepo, StoreError};

/// One role's line in [`GuildSummary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSummary {
    pub role: RoleId,
    /// The paid role's name, or `None` when it is no longer for sale (old purchases remain).
    pub name: Option<String>,
    /// Members entitled to the role now (each counted once, however many purchases they hold).
    pub active_members: usize,
    /// Purchases by status.
    pub by_status: BTreeMap<Status, usize>,
}

/// [`guild_summary`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuildSummary {
    pub guild: GuildId,
    pub name: String,
    /// Every role for sale, and every role with purchases, by role id.
    pub roles: Vec<RoleSummary>,
}

/// Summarises `guild` at `now`; `None` when the guild is not registered.
pub async fn guild_summary<R: CatalogRepo + EntitlementRepo + ?Sized>(
    repo: &R,
    guild: GuildId,
    now: Timestamp,
) -> Result<Option<GuildSummary>, StoreError> {
    let Some(g) = repo.guild(guild).await? else { return Ok(None) };
    let mut roles: BTreeMap<RoleId, (RoleSummary, BTreeSet<UserId>)> = BTreeMap::new();
    let line = |role: RoleId, name: Option<String>| {
        (RoleSummary { role, name, active_members: 0, by_status: BTreeMap::new() }, BTreeSet::new())
    };
    for paid in repo.paid_roles(guild).await? {
        roles.insert(paid.role, line(paid.role, Some(paid.name)));
    }
    for e in repo.guild_entitlements(guild).await? {
        let (summary, members) = roles.entry(e.role).or_insert_with(|| line(e.role, None));
        *summary.by_status.entry(e.status()).or_default() += 1;
        if e.entitled(now, g.grace) {
            members.insert(e.user);
        }
    }
    let roles = roles
        .into_values()
        .map(|(summary, members)| RoleSummary { active_members: members.len(), ..summary })
        .collect();
    Ok(Some(GuildSummary { guild, name: g.name, roles }))
}
