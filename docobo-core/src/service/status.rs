//! What `/status` shows a member: each purchase in the guild, with its role, status and end.

use crate::domain::{Guild, GuildId, RoleId, Timestamp, UserId};
use crate::machine::Status;
use crate::ports::{CatalogRepo, EntitlementRepo, StoreError};

/// One line of `/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    pub role: RoleId,
    /// The paid role's display name, or `None` when it is no longer for sale.
    pub role_name: Option<String>,
    pub status: Status,
    /// Whether it grants access right now.
    pub entitled: bool,
    pub access_until: Option<Timestamp>,
    /// Who the purchase was paid through.
    pub provider: crate::domain::ProviderName,
}

/// The member's purchases in `guild`, newest first.
pub async fn member_status<R: CatalogRepo + EntitlementRepo + ?Sized>(
    repo: &R,
    guild: GuildId,
    user: UserId,
    now: Timestamp,
) -> Result<Vec<StatusLine>, StoreError> {
    let grace = repo.guild(guild).await?.map_or(Guild::DEFAULT_GRACE, |g| g.grace);
    let roles = repo.paid_roles(guild).await?;
    let mut lines: Vec<StatusLine> = repo
        .member_entitlements(guild, user)
        .await?
        .iter()
        .rev()
        .map(|e| StatusLine {
            role: e.role,
            role_name: roles.iter().find(|r| r.role == e.role).map(|r| r.name.clone()),
            status: e.status(),
            entitled: e.entitled(now, grace),
            access_until: e.access_until(),
            provider: e.provider,
        })
        .collect();
    // Entitled purchases first; the order is otherwise newest first.
    lines.sort_by_key(|l| !l.entitled);
    Ok(lines)
}
