//! Member notices: planned from the ledger, recorded once under a key, sent as paced DMs.
//!
//! - *Payment failed* and *welcome* are planned by the commit that records the change
//!   ([`on_change`], called by ingest), and *ended* by the expirer's commit ([`on_elapsed`]): the
//!   notice is durable exactly when the fact is.
//! - *Ending soon* is planned by [`plan_reminders`], a pass over the purchases whose deadline
//!   falls within the longest lead time. For each, the shortest lead whose moment has passed is
//!   planned, keyed by purchase, lead and deadline: passes, restarts and replicas plan it once,
//!   a renewal that moves the deadline arms new reminders, and a server that was down sends only
//!   the most recent reminder rather than all it missed.
//! - [`send_due_notices`] claims due notices one at a time under [`Pace`], checks each is still
//!   true and wanted when it is sent (not renewed meanwhile, the guild and the member have not
//!   turned notices off, the member is reachable), adds the checkout `/join` would make as the
//!   renew button, and settles it. Discord's 50007 marks the member unreachable in that guild, for
//!   good until they run `/notify on`; 429 and 5xx retry on the role jobs' backoff.
//!
//! A notice is recorded before it is sent, and the send carries the notice's nonce with
//! `enforce_nonce`, so a sender that dies between Discord's answer and the record does not
//! show the member the message twice when the lease runs out and it is sent again.

pub mod text;

use std::collections::BTreeMap;

use time::Duration;

use crate::domain::{
    Entitlement, EntitlementId, ExternalRef, Guild, GuildId, JobId, Locale, Notice, NoticeKind,
    PlannedNotice, ProviderName, Reminders, RoleJobKey, Timestamp,
};
use crate::machine::{Standing, Status, role_desired};
use crate::ports::{
    CatalogRepo, CheckoutRepo, Clock, DirectMessages, DmError, EntitlementRepo, NoticeRepo, NoticeSettlement,
    ProviderRegistry, StoreError,
};

use super::checkout::renewal;
use super::retry::backoff;

/// Purchases one [`plan_reminders`] page reads.
pub const REMINDER_PAGE: usize = 500;
/// How long a claimed notice is held: well past one DM's bounded time.
pub const NOTICE_LEASE: Duration = Duration::minutes(2);
/// Failed attempts after which a notice is given up (about an hour of retries).
pub const MAX_NOTICE_ATTEMPTS: u32 = 10;
/// How long after access ended an *ended* notice is still worth sending.
pub const ENDED_USEFUL_FOR: Duration = Duration::days(7);

/// What became of one notice a sender handled, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeOutcome {
    Sent,
    /// Outdated (renewed, ended otherwise, another purchase keeps the role).
    Skipped,
    /// The guild or the member turned notices off.
    Muted,
    /// Discord refused DMs to the member (50007), now or before.
    Unreachable,
    Retried,
    Failed,
}

impl NoticeOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeOutcome::Sent => "sent",
            NoticeOutcome::Skipped => "skipped",
            NoticeOutcome::Muted => "muted",
            NoticeOutcome::Unreachable => "unreachable",
            NoticeOutcome::Retried => "retried",
            NoticeOutcome::Failed => "failed",
        }
    }
}

/// The purchase a notice is about.
#[derive(Debug, Clone, Copy)]
pub struct Purchase<'a> {
    pub key: RoleJobKey,
    pub provider: ProviderName,
    pub external_ref: &'a ExternalRef,
}

impl<'a> From<&'a Entitlement> for Purchase<'a> {
    fn from(e: &'a Entitlement) -> Self {
        Purchase { key: e.job_key(), provider: e.provider, external_ref: &e.external_ref }
    }
}

fn planned(
    p: Purchase<'_>,
    kind: NoticeKind,
    lead: Option<Duration>,
    about: Option<Timestamp>,
    now: Timestamp,
) -> PlannedNotice {
    PlannedNotice {
        guild: p.key.guild,
        user: p.key.user,
        role: p.key.role,
        provider: p.provider,
        external_ref: p.external_ref.clone(),
        kind,
        lead,
        about,
        send_at: now,
    }
}

/// The notices a delivery's change of one purchase calls for: *payment failed* when a renewal
/// newly failed (about its grace deadline), *welcome* when the purchase is paid for the first
/// time and the guild wants welcomes.
pub fn on_change(
    guild: &Guild,
    purchase: Purchase<'_>,
    before: Option<&Standing>,
    after: &Standing,
    now: Timestamp,
) -> Vec<PlannedNotice> {
    let mut notices = Vec::new();
    let since = after.past_due_since().filter(|_| after.status() == Status::PastDue);
    if let Some(since) = since.filter(|s| before.and_then(Standing::past_due_since) != Some(*s)) {
        let deadline = since.saturating_add(guild.grace);
        if guild.notices.sends(NoticeKind::PaymentFailed) && deadline > now {
            notices.push(planned(purchase, NoticeKind::PaymentFailed, None, Some(deadline), now));
        }
    }
    if guild.notices.sends(NoticeKind::Welcome)
        && !before.is_some_and(|b| b.paid)
        && crate::machine::entitled(after, now, guild.grace)
    {
        notices.push(planned(purchase, NoticeKind::Welcome, None, None, now));
    }
    notices
}

/// The *ended* notice for a purchase whose access the expirer found ended by the clock at `at`.
pub fn on_elapsed(
    guild: &Guild,
    purchase: Purchase<'_>,
    at: Timestamp,
    now: Timestamp,
) -> Vec<PlannedNotice> {
    if !guild.notices.sends(NoticeKind::Ended) {
        return Vec::new();
    }
    vec![planned(purchase, NoticeKind::Ended, None, Some(at), now)]
}

/// The *ending soon* reminder due for `e` now, if any: the shortest lead whose moment has
/// passed, unless a *payment failed* notice already gave that deadline.
fn reminder(guild: &Guild, e: &Entitlement, now: Timestamp) -> Option<PlannedNotice> {
    let deadline = e.deadline.filter(|d| *d > now && guild.notices.sends(NoticeKind::EndingSoon))?;
    let lead = *guild.notices.remind.leads().iter().rev().find(|lead| deadline - **lead <= now)?;
    if e.standing.past_due_since().is_some_and(|since| deadline - lead <= since) {
        return None;
    }
    Some(planned(e.into(), NoticeKind::EndingSoon, Some(lead), Some(deadline), now))
}

/// Plans the *ending soon* reminders due now (module docs); how many were new.
pub async fn plan_reminders<R: CatalogRepo + EntitlementRepo + NoticeRepo + ?Sized>(
    repo: &R,
    clock: &dyn Clock,
) -> Result<usize, StoreError> {
    let now = clock.now();
    let guilds: BTreeMap<GuildId, Guild> = repo.guilds().await?.into_iter().map(|g| (g.id, g)).collect();
    let window = guilds.values().filter(|g| g.notices.enabled).map(|g| g.notices.remind.longest()).max();
    let Some(window) = window.filter(|w| w.is_positive()) else { return Ok(0) };
    let mut after = (now, EntitlementId(i64::MIN));
    let mut added = 0;
    loop {
        let page = repo.deadlines_after(after, now.saturating_add(window), REMINDER_PAGE).await?;
        let due: Vec<PlannedNotice> =
            page.iter().filter_map(|e| reminder(guilds.get(&e.guild)?, e, now)).collect();
        if !due.is_empty() {
            added += repo.plan_notices(&due, now).await?;
        }
        match page.last() {
            Some(last) if page.len() == REMINDER_PAGE => after = (last.deadline.unwrap_or(now), last.id),
            _ => return Ok(added),
        }
    }
}

/// A change to a guild's notice settings: `None` keeps a setting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoticeChange {
    pub enabled: Option<bool>,
    pub welcome: Option<bool>,
    pub remind: Option<Reminders>,
    pub locale: Option<Locale>,
}

/// Applies `change` to the guild's notice settings; the guild as stored, or `None` when it is
/// not registered. The CLI, `/setup` and the admin API all change settings through this.
pub async fn configure_notices<R: CatalogRepo + ?Sized>(
    repo: &R,
    guild: GuildId,
    change: NoticeChange,
) -> Result<Option<Guild>, StoreError> {
    let Some(mut stored) = repo.guild(guild).await? else { return Ok(None) };
    let settings = &mut stored.notices;
    settings.enabled = change.enabled.unwrap_or(settings.enabled);
    settings.welcome = change.welcome.unwrap_or(settings.welcome);
    settings.locale = change.locale.unwrap_or(settings.locale);
    if let Some(remind) = change.remind {
        settings.remind = remind;
    }
    repo.put_guild(&stored).await?;
    Ok(Some(stored))
}

/// Spreads DMs: at most one per `every`, never in a burst (a bucket of one).
#[derive(Debug, Clone)]
pub struct Pace {
    every: Duration,
    next: Option<Timestamp>,
}

impl Pace {
    /// One DM per `every` (at least a millisecond).
    pub fn every(every: Duration) -> Self {
        Pace { every: every.max(Duration::milliseconds(1)), next: None }
    }

    /// When the next DM may go, if it must wait.
    pub fn next(&self) -> Option<Timestamp> {
        self.next
    }

    fn ready(&self, now: Timestamp) -> bool {
        self.next.is_none_or(|next| next <= now)
    }

    fn spend(&mut self, now: Timestamp) {
        self.next = Some(self.next.map_or(now, |n| n.max(now)) + self.every);
    }
}

impl Default for Pace {
    /// One per second.
    fn default() -> Self {
        Pace::every(Duration::SECOND)
    }
}

/// The repository ports the sender needs.
pub trait NoticeRepos: CatalogRepo + CheckoutRepo + EntitlementRepo + NoticeRepo {}
impl<T: CatalogRepo + CheckoutRepo + EntitlementRepo + NoticeRepo + ?Sized> NoticeRepos for T {}

/// What the sender needs besides the store.
pub struct Sender<'a> {
    pub dms: &'a dyn DirectMessages,
    pub providers: &'a ProviderRegistry,
    pub clock: &'a dyn Clock,
    /// Random bytes for checkout references.
    pub entropy: &'a (dyn Fn() -> [u8; 6] + Send + Sync),
}

impl std::fmt::Debug for Sender<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("providers", &self.providers.names()).finish_non_exhaustive()
    }
}

/// Sends due notices while `pace` allows and some are due; what became of each.
pub async fn send_due_notices<R: NoticeRepos + ?Sized>(
    repo: &R,
    sender: &Sender<'_>,
    pace: &mut Pace,
) -> Result<Vec<(NoticeKind, NoticeOutcome)>, StoreError> {
    let mut handled = Vec::new();
    loop {
        let now = sender.clock.now();
        if !pace.ready(now) {
            return Ok(handled);
        }
        let Some(notice) = repo.claim_notices(now, NOTICE_LEASE, 1).await?.pop() else { return Ok(handled) };
        let (settlement, outcome, attempted) = deliver(repo, sender, &notice, now).await?;
        if attempted {
            pace.spend(now);
        }
        repo.settle_notice(&notice, settlement, sender.clock.now()).await?;
        handled.push((notice.planned.kind, outcome));
    }
}

type Delivered = (NoticeSettlement, NoticeOutcome, bool);

fn skipped(why: impl Into<String>, outcome: NoticeOutcome) -> Result<Delivered, StoreError> {
    Ok((NoticeSettlement::Skipped { why: why.into() }, outcome, false))
}

/// The retry of a notice's `attempt` failure, or `None` when it is out of attempts.
fn retry(
    notice: &Notice,
    after: Option<Duration>,
    error: String,
    now: Timestamp,
) -> Option<NoticeSettlement> {
    let attempt = notice.attempts + 1;
    (attempt < MAX_NOTICE_ATTEMPTS)
        .then(|| NoticeSettlement::Retry { at: now + backoff(JobId(notice.id.0), attempt, after), error })
}

async fn deliver<R: NoticeRepos + ?Sized>(
    repo: &R,
    sender: &Sender<'_>,
    notice: &Notice,
    now: Timestamp,
) -> Result<Delivered, StoreError> {
    let p = &notice.planned;
    let Some(guild) = repo.guild(p.guild).await? else {
        return skipped("the server is no longer registered", NoticeOutcome::Skipped);
    };
    if !guild.notices.sends(p.kind) {
        return skipped("the server has these notices turned off", NoticeOutcome::Muted);
    }
    let member = repo.member_notices(p.guild, p.user).await?;
    if member.muted_at.is_some() {
        return skipped("the member turned notices off", NoticeOutcome::Muted);
    }
    if member.unreachable_at.is_some() {
        return skipped(NoticeSettlement::UNREACHABLE, NoticeOutcome::Unreachable);
    }
    let Some(purchase) = repo.entitlement(p.provider, p.guild, &p.external_ref).await? else {
        return skipped("the purchase no longer exists", NoticeOutcome::Skipped);
    };
    if let Some(why) = outdated(repo, &guild, &purchase, p, now).await? {
        return skipped(why, NoticeOutcome::Skipped);
    }
    let link = if p.kind == NoticeKind::Welcome {
        None
    } else {
        match renewal(repo, sender.providers, (p.guild, p.user, p.role), p.provider, sender.entropy, now)
            .await?
        {
            Ok(link) => link,
            Err(e) => match retry(notice, None, format!("making the renew link: {e}"), now) {
                Some(again) => return Ok((again, NoticeOutcome::Retried, false)),
                // Out of attempts: the notice still goes, pointing at /join.
                None => None,
            },
        }
    };
    let role = repo.paid_role(p.guild, p.role).await?.map_or_else(|| format!("role {}", p.role), |r| r.name);
    let facts = text::NoticeFacts { kind: p.kind, role: &role, guild: &guild.name, about: p.about, now };
    let message = text::render(guild.notices.locale, &facts, link.as_ref(), format!("docobo-n{}", notice.id));
    Ok(match sender.dms.send_dm(p.user, &message).await {
        Ok(()) => (NoticeSettlement::Sent, NoticeOutcome::Sent, true),
        Err(DmError::Unreachable) => (NoticeSettlement::Unreachable, NoticeOutcome::Unreachable, true),
        Err(DmError::Retryable { after, why }) => match retry(notice, after, why.clone(), now) {
            Some(again) => (again, NoticeOutcome::Retried, true),
            None => (
                NoticeSettlement::Failed {
                    why: format!("gave up after {MAX_NOTICE_ATTEMPTS} attempts: {why}"),
                },
                NoticeOutcome::Failed,
                true,
            ),
        },
        Err(DmError::Refused { why }) => (NoticeSettlement::Failed { why }, NoticeOutcome::Failed, true),
    })
}

/// Why the notice is no longer true or useful, if it is not.
async fn outdated<R: NoticeRepos + ?Sized>(
    repo: &R,
    guild: &Guild,
    purchase: &Entitlement,
    p: &PlannedNotice,
    now: Timestamp,
) -> Result<Option<&'static str>, StoreError> {
    let still = match p.kind {
        NoticeKind::EndingSoon if purchase.deadline != p.about => {
            return Ok(Some("access no longer ends then (renewed or changed)"));
        }
        NoticeKind::EndingSoon => p.about.filter(|end| *end > now),
        NoticeKind::PaymentFailed if purchase.status() != Status::PastDue => {
            return Ok(Some("the renewal is no longer failing"));
        }
        NoticeKind::PaymentFailed => {
            return Ok(p.about.is_none_or(|d| d <= now).then_some("the grace period is over"));
        }
        NoticeKind::Ended if purchase.entitled(now, guild.grace) => return Ok(Some("access was renewed")),
        NoticeKind::Ended => p.about.filter(|end| now - *end < ENDED_USEFUL_FOR).map(|_| now),
        NoticeKind::Welcome => {
            return Ok((!purchase.entitled(now, guild.grace)).then_some("access is not active"));
        }
    };
    let Some(at) = still else { return Ok(Some("too late to be useful")) };
    // Another purchase of the same role that keeps access past `at` makes the notice wrong.
    let others = repo.entitlements_for(purchase.job_key()).await?;
    let others = others.iter().filter(|e| e.id != purchase.id).map(|e| &e.standing);
    Ok(role_desired(others, at, guild.grace).then_some("another purchase keeps the role"))
}
