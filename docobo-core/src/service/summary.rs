//! A guild at a glance, for its owner or an operator: who holds each paid role now, how its
//! purchases stand, and the money recorded by month.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use crate::domain::{Currency, Guild, GuildId, Money, RoleId, Timestamp, UserId};
use crate::machine::Status;
use crate::ports::{CatalogRepo, EntitlementRepo, GuildRevision, PaymentLog, StoreError};

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

/// The costly part of a summary: every purchase and payment of the guild folded, at `at`.
#[derive(Debug)]
struct Folded {
    /// Per role: purchases by status, and members entitled at `at`.
    roles: BTreeMap<RoleId, (BTreeMap<Status, usize>, usize)>,
    revenue: Vec<MonthRevenue>,
    at: Timestamp,
    /// The first instant after `at` at which some purchase's access may start or stop without
    /// anything being written (an `access_until` or a grace period's end): the counts hold
    /// until then.
    until: Option<Timestamp>,
}

async fn fold<R: EntitlementRepo + PaymentLog + ?Sized>(
    repo: &R,
    guild: GuildId,
    grace: time::Duration,
    now: Timestamp,
) -> Result<Folded, StoreError> {
    let mut roles: BTreeMap<RoleId, (BTreeMap<Status, usize>, BTreeSet<UserId>)> = BTreeMap::new();
    let mut until: Option<Timestamp> = None;
    for e in repo.guild_entitlements(guild).await? {
        let (by_status, members) = roles.entry(e.role).or_default();
        *by_status.entry(e.status()).or_default() += 1;
        if e.entitled(now, grace) {
            members.insert(e.user);
        }
        let grace_ends = e.standing.past_due_since().map(|since| since.saturating_add(grace));
        for instant in [e.access_until(), grace_ends].into_iter().flatten().filter(|t| *t > now) {
            until = Some(until.map_or(instant, |u| u.min(instant)));
        }
    }
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
    Ok(Folded {
        roles: roles
            .into_iter()
            .map(|(role, (by_status, members))| (role, (by_status, members.len())))
            .collect(),
        revenue: revenue.into_values().collect(),
        at: now,
        until,
    })
}

/// The summary: every role for sale, and every role with purchases, by role id.
fn assemble(g: Guild, for_sale: Vec<crate::domain::PaidRole>, folded: &Folded) -> GuildSummary {
    let mut roles: BTreeMap<RoleId, RoleSummary> = for_sale
        .into_iter()
        .map(|paid| {
            let line = RoleSummary {
                role: paid.role,
                name: Some(paid.name),
                active_members: 0,
                by_status: BTreeMap::new(),
            };
            (paid.role, line)
        })
        .collect();
    for (role, (by_status, members)) in &folded.roles {
        let line = roles.entry(*role).or_insert_with(|| RoleSummary {
            role: *role,
            name: None,
            active_members: 0,
            by_status: BTreeMap::new(),
        });
        line.active_members = *members;
        line.by_status.clone_from(by_status);
    }
    GuildSummary {
        guild: g.id,
        name: g.name,
        roles: roles.into_values().collect(),
        revenue: folded.revenue.clone(),
    }
}

/// Summarises `guild` at `now`; `None` when the guild is not registered.
pub async fn guild_summary<R: CatalogRepo + EntitlementRepo + PaymentLog + ?Sized>(
    repo: &R,
    guild: GuildId,
    now: Timestamp,
) -> Result<Option<GuildSummary>, StoreError> {
    let Some(g) = repo.guild(guild).await? else { return Ok(None) };
    let folded = fold(repo, guild, g.grace, now).await?;
    Ok(Some(assemble(g, repo.paid_roles(guild).await?, &folded)))
}

/// Guild summaries kept while they are exact: a kept fold is used again only while the guild's
/// purchases and payments are at the same [`EntitlementRepo::guild_revision`], its grace period
/// is the same, and no access can have started or stopped by time alone since it was made
/// (`Folded::until`). Never by age: what it answers is what [`guild_summary`] would.
#[derive(Debug, Default)]
pub struct SummaryCache(Mutex<HashMap<GuildId, Kept>>);

/// A kept fold, with the revision and grace period it was made at.
type Kept = (GuildRevision, time::Duration, Arc<Folded>);

impl SummaryCache {
    /// [`guild_summary`], from the kept fold when it still holds.
    pub async fn summary<R: CatalogRepo + EntitlementRepo + PaymentLog + ?Sized>(
        &self,
        repo: &R,
        guild: GuildId,
        now: Timestamp,
    ) -> Result<Option<GuildSummary>, StoreError> {
        let Some(g) = repo.guild(guild).await? else { return Ok(None) };
        let revision = repo.guild_revision(guild).await?;
        let holds = |(kept, grace, folded): &Kept| {
            *kept == revision && *grace == g.grace && folded.at <= now && folded.until.is_none_or(|u| now < u)
        };
        let kept = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&guild)
            .filter(|k| holds(k))
            .map(|k| k.2.clone());
        let folded = match kept {
            Some(folded) => folded,
            None => {
                let folded = Arc::new(fold(repo, guild, g.grace, now).await?);
                let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                if kept.len() >= MAX_KEPT && !kept.contains_key(&guild) {
                    kept.clear();
                }
                kept.insert(guild, (revision, g.grace, folded.clone()));
                folded
            }
        };
        Ok(Some(assemble(g, repo.paid_roles(guild).await?, &folded)))
    }
}

/// Guilds whose fold is kept at once.
const MAX_KEPT: usize = 1_000;
