//! A guild at a glance, for its owner or an operator: who holds each paid role now, how its
//! purchases stand, and the money recorded by month.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::{Currency, GuildId, Money, RoleId, Timestamp, UserId};
use crate::machine::Status;
use crate::ports::{CatalogRepo, EntitlementRepo, PaymentLog, StoreError};

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

/// The money recorded in one calendar month (UTC) in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthRevenue {
    /// `YYYY-MM`.
    pub month: String,
    pub currency: Currency,
    /// Received before refunds (Polar's `net_amount`: after discounts, before taxes).
    pub gross: Money,
    /// Given back since, for those payments.
    pub refunded: Money,
    pub payments: usize,
}

/// [`guild_summary`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuildSummary {
    pub guild: GuildId,
    pub name: String,
    /// Every role for sale, and every role with purchases, by role id.
    pub roles: Vec<RoleSummary>,
    /// By month, then currency, oldest first; months without payments are left out.
    pub revenue: Vec<MonthRevenue>,
}

/// Summarises `guild` at `now`; `None` when the guild is not registered.
pub async fn guild_summary<R: CatalogRepo + EntitlementRepo + PaymentLog + ?Sized>(
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
    let mut revenue: BTreeMap<(String, Currency), MonthRevenue> = BTreeMap::new();
    for p in repo.payments(guild).await? {
        let month = format!("{:04}-{:02}", p.paid_at.year(), u8::from(p.paid_at.month()));
        let currency = p.amount.currency;
        let zero = Money { minor: 0, currency };
        let line = revenue.entry((month.clone(), currency)).or_insert(MonthRevenue {
            month,
            currency,
            gross: zero,
            refunded: zero,
            payments: 0,
        });
        line.gross.minor = line.gross.minor.saturating_add(p.amount.minor);
        line.refunded.minor = line.refunded.minor.saturating_add(p.refunded.minor);
        line.payments += 1;
    }
    Ok(Some(GuildSummary { guild, name: g.name, roles, revenue: revenue.into_values().collect() }))
}
