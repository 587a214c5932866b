//! The repository ports, split by concern. [`SubscriptionRepo`] is all of them together, which is
//! what an adapter implements and what the binaries pass around.

use std::sync::Arc;

use async_trait::async_trait;
use time::Duration;

use super::provider::ProviderCredentials;
use crate::domain::{
    AuditEntry, Checkout, CheckoutRef, DeliveryId, Entitlement, EntitlementId, EventId, EventOutcome,
    ExternalRef, Guild, GuildId, JobState, MemberNotices, Notice, PaidRole, Payment, PlannedNotice,
    ProviderName, RoleId, RoleJob, RoleJobKey, SetupProgress, Timestamp, UserId, WebhookEvent,
};
use crate::machine::Standing;

/// A storage failure, already translated from the database library's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A concurrent writer changed what this write was based on; re-read and try again.
    #[error("a concurrent change conflicted with this write")]
    Conflict,
    /// The same key already exists (a checkout reference, say).
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The database cannot be reached or refused the operation; safe to retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored data cannot be read back (a wrong `DOCOBO_SECRET_KEY`, a corrupt row).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

/// What ingest needs of a guild's catalog to plan a delivery from one provider: the guild, its
/// credentials for that provider and every role it sells. A delivery is planned against one
/// catalog, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuildCatalog {
    pub guild: Guild,
    pub credentials: Option<ProviderCredentials>,
    /// By role id.
    pub roles: Vec<PaidRole>,
    /// The guild's catalog revision it was read at, where the adapter keeps one (see
    /// [`CatalogRepo::kept_catalog`]); a commit can name it ([`Commit::catalog`]).
    pub revision: Option<u64>,
}

impl GuildCatalog {
    /// Reads it afresh from `repo`; `None` for an unknown guild.
    pub async fn read<R: CatalogRepo + ?Sized>(
        repo: &R,
        guild: GuildId,
        provider: ProviderName,
    ) -> Result<Option<GuildCatalog>, StoreError> {
        let (Some(found), credentials) = repo.guild_and_credentials(guild, provider).await? else {
            return Ok(None);
        };
        let roles = repo.paid_roles(guild).await?;
        Ok(Some(GuildCatalog { guild: found, credentials, roles, revision: None }))
    }

    /// The role `role`, if it is for sale.
    pub fn paid_role(&self, role: RoleId) -> Option<&PaidRole> {
        self.roles.iter().find(|r| r.role == role)
    }

    /// The role a payload's product (and variant) is sold as at `provider`: the first role, by
    /// id, with a link covering them ([`crate::domain::ProductLink::covers`]); with only a
    /// variant (a Sell.app subscription), the first role linked to that variant.
    pub fn sold_as(
        &self,
        provider: ProviderName,
        product: Option<&str>,
        variant: Option<&str>,
    ) -> Option<&PaidRole> {
        let linked = |r: &&PaidRole| match (product, variant) {
            (Some(product), variant) => r.links.iter().any(|l| l.covers(provider, product, variant)),
            (None, Some(variant)) => {
                r.links.iter().any(|l| l.provider == provider && l.variant.as_deref() == Some(variant))
            }
            (None, None) => false,
        };
        self.roles.iter().find(linked)
    }
}

/// Guilds, their paid roles and their provider credentials.
#[async_trait]
pub trait CatalogRepo: Send + Sync {
    /// Inserts or replaces a guild.
    async fn put_guild(&self, guild: &Guild) -> Result<(), StoreError>;
    async fn guild(&self, id: GuildId) -> Result<Option<Guild>, StoreError>;
    /// Every guild, by id.
    async fn guilds(&self) -> Result<Vec<Guild>, StoreError>;
    /// Inserts or replaces the paid role `(role.guild, role.role)`.
    async fn put_paid_role(&self, role: &PaidRole) -> Result<(), StoreError>;
    async fn paid_role(&self, guild: GuildId, role: RoleId) -> Result<Option<PaidRole>, StoreError>;
    /// The guild's roles for sale, by role id.
    async fn paid_roles(&self, guild: GuildId) -> Result<Vec<PaidRole>, StoreError>;
    /// Stops selling a role; existing entitlements are kept. `false` when it was not for sale.
    async fn remove_paid_role(&self, guild: GuildId, role: RoleId) -> Result<bool, StoreError>;
    /// Stores credentials. MUST store the secrets encrypted at rest.
    async fn put_credentials(
        &self,
        guild: GuildId,
        provider: ProviderName,
        credentials: &ProviderCredentials,
    ) -> Result<(), StoreError>;
    /// MUST return `StoreError::Corrupt` (never garbage) when the secrets cannot be decrypted.
    async fn credentials(
        &self,
        guild: GuildId,
        provider: ProviderName,
    ) -> Result<Option<ProviderCredentials>, StoreError>;
    /// The guild and its credentials for `provider`, as [`Self::guild`] and [`Self::credentials`]
    /// give them (no credentials for an unknown guild). Ingest asks this on every webhook, so an
    /// adapter SHOULD answer it in one round trip.
    async fn guild_and_credentials(
        &self,
        guild: GuildId,
        provider: ProviderName,
    ) -> Result<(Option<Guild>, Option<ProviderCredentials>), StoreError> {
        let Some(found) = self.guild(guild).await? else { return Ok((None, None)) };
        Ok((Some(found), self.credentials(guild, provider).await?))
    }
    /// The guild's catalog for deliveries from `provider` (`None` for an unknown guild), as
    /// [`Self::guild_and_credentials`] and [`Self::paid_roles`] give them, current when read.
    /// Ingest asks this whenever [`Self::kept_catalog`] has none or it was refused, so an
    /// adapter SHOULD keep it and answer from memory while it is exact: a revision that every
    /// catalog write bumps in the same transaction, never a timer.
    async fn catalog(
        &self,
        guild: GuildId,
        provider: ProviderName,
    ) -> Result<Option<Arc<GuildCatalog>>, StoreError> {
        Ok(GuildCatalog::read(self, guild, provider).await?.map(Arc::new))
    }
    /// The catalog as last kept, without asking the database whether it is still current, so
    /// that a webhook is verified and planned without a round trip first; `None` when none is
    /// kept (ask [`Self::catalog`]). A catalog returned here MUST carry the revision it was read
    /// at, and [`Ledger::commit`] MUST refuse a commit that names a revision the catalog has
    /// since moved past. The default keeps nothing.
    async fn kept_catalog(
        &self,
        _guild: GuildId,
        _provider: ProviderName,
    ) -> Result<Option<Arc<GuildCatalog>>, StoreError> {
        Ok(None)
    }
}

/// Checkouts started by `/join`.
#[async_trait]
pub trait CheckoutRepo: Send + Sync {
    /// MUST refuse a reference that exists in the guild with `StoreError::AlreadyExists`.
    async fn put_checkout(&self, checkout: &Checkout) -> Result<(), StoreError>;
    async fn checkout(&self, guild: GuildId, reference: &CheckoutRef)
    -> Result<Option<Checkout>, StoreError>;
}

/// Reading entitlements. Writing goes through [`Ledger::commit`].
#[async_trait]
pub trait EntitlementRepo: Send + Sync {
    async fn entitlement(
        &self,
        provider: ProviderName,
        guild: GuildId,
        external_ref: &ExternalRef,
    ) -> Result<Option<Entitlement>, StoreError>;
    async fn entitlement_by_id(&self, id: EntitlementId) -> Result<Option<Entitlement>, StoreError>;
    /// Every entitlement of one member for one role (the reference-counting input).
    async fn entitlements_for(&self, key: RoleJobKey) -> Result<Vec<Entitlement>, StoreError>;
    async fn member_entitlements(&self, guild: GuildId, user: UserId)
    -> Result<Vec<Entitlement>, StoreError>;
    async fn guild_entitlements(&self, guild: GuildId) -> Result<Vec<Entitlement>, StoreError>;
    /// What the guild's purchases and payments are at: MUST differ from every earlier answer
    /// once any entitlement or payment of the guild was added or changed (entitlements are never
    /// deleted; an update raises its revision; a payment only ever raises its refund).
    async fn guild_revision(&self, guild: GuildId) -> Result<GuildRevision, StoreError>;
    /// Entitlements whose `deadline` is at or before `now`, oldest deadline first.
    async fn due_entitlements(&self, now: Timestamp, limit: usize) -> Result<Vec<Entitlement>, StoreError>;
    /// Entitlements whose `deadline` comes after `after` (a deadline and an id, in that order)
    /// and is at or before `until`, by deadline then id, at most `limit`: one page of what ends
    /// soon. The next page starts after the last row's `(deadline, id)`.
    async fn deadlines_after(
        &self,
        after: (Timestamp, EntitlementId),
        until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Entitlement>, StoreError>;
}

/// A new entitlement, or a new standing for an existing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntitlementWrite {
    Insert {
        guild: GuildId,
        user: UserId,
        role: RoleId,
        provider: ProviderName,
        external_ref: ExternalRef,
        standing: Standing,
        deadline: Option<Timestamp>,
    },
    Update {
        id: EntitlementId,
        /// The revision the new standing was computed from.
        expected_revision: u64,
        standing: Standing,
        deadline: Option<Timestamp>,
    },
}

/// Everything one delivery (or one expiry) changes, written as one atomic unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The delivery to record; `None` for Docobo's own events (expiry).
    pub event: Option<WebhookEvent>,
    /// `event` is a replay of the stored failed delivery with id `event.id`: update that row
    /// instead of inserting one.
    pub replay: bool,
    pub writes: Vec<EntitlementWrite>,
    /// Role jobs to enqueue (see [`JobQueue::enqueue`] for how they merge).
    pub jobs: Vec<RoleJobKey>,
    /// Why the jobs exist, named in Discord's audit log (`polar evt_123`, `expiry`).
    pub cause: String,
    /// Audit entries written with the rest (a manual grant or revoke and its reason).
    pub audit: Vec<AuditEntry>,
    /// Money the delivery reports (see [`PaymentLog`] for how repeats merge).
    pub payments: Vec<Payment>,
    /// Member notices the change calls for, recorded as [`NoticeRepo::plan_notices`] does.
    pub notices: Vec<PlannedNotice>,
    /// The guild and catalog revision the commit was planned on, when that catalog was a kept
    /// one nobody has confirmed current ([`CatalogRepo::kept_catalog`]).
    pub catalog: Option<(GuildId, u64)>,
    pub at: Timestamp,
}

impl Commit {
    /// A commit at `at` that writes nothing yet.
    pub fn new(at: Timestamp) -> Self {
        Commit {
            event: None,
            replay: false,
            writes: Vec::new(),
            jobs: Vec::new(),
            cause: String::new(),
            audit: Vec::new(),
            payments: Vec::new(),
            notices: Vec::new(),
            catalog: None,
            at,
        }
    }
}

/// How a commit landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Committed,
    /// The delivery id was already recorded: nothing was written.
    Duplicate,
}

/// The event log and the atomic write path.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Writes the event, the entitlement writes, the jobs and the audit entries in **one
    /// transaction**: all or none.
    ///
    /// - MUST return `Ok(Recorded::Duplicate)` and write nothing when `(provider, guild,
    ///   external_id)` is already recorded, enforced by a unique constraint, not by a read before
    ///   the write.
    /// - MUST return `Err(StoreError::Conflict)` and write nothing when an `Update` names a
    ///   revision that is no longer current, or an `Insert` collides with an existing
    ///   `(provider, guild, external_ref)`.
    /// - MUST return `Err(StoreError::Conflict)` and write nothing when `catalog` names a
    ///   revision the guild's catalog has moved past, even if the delivery is recorded already:
    ///   the delivery may have been verified under credentials that were replaced.
    /// - MUST bump the revision of every written entitlement.
    /// - MUST insert each payment once per `(provider, guild, reference)` (a unique constraint);
    ///   a later one with the same key only raises the stored `refunded`, never lowers it.
    /// - MUST record `notices` as [`NoticeRepo::plan_notices`] does.
    /// - With `replay`, MUST update the stored row `event.id` (outcome, last error, `retry_at`,
    ///   one more attempt) only while its outcome is still `failed` or `deferred`, and otherwise
    ///   return `Ok(Recorded::Duplicate)` writing nothing (someone else replayed or resolved it
    ///   first).
    async fn commit(&self, commit: Commit) -> Result<Recorded, StoreError>;
    async fn webhook_event(
        &self,
        provider: ProviderName,
        guild: GuildId,
        id: &EventId,
    ) -> Result<Option<WebhookEvent>, StoreError>;
    async fn webhook_event_by_id(&self, id: DeliveryId) -> Result<Option<WebhookEvent>, StoreError>;
    /// Recorded deliveries, oldest first, optionally only those with `outcome`.
    async fn events(
        &self,
        outcome: Option<EventOutcome>,
        limit: usize,
    ) -> Result<Vec<WebhookEvent>, StoreError>;
    /// The failure inbox, oldest first.
    async fn failed_events(&self, limit: usize) -> Result<Vec<WebhookEvent>, StoreError> {
        self.events(Some(EventOutcome::Failed), limit).await
    }
    /// Recorded deliveries newest first, optionally only those with `outcome`, and only those
    /// stored before the delivery with id `before` (the last id of the previous page).
    ///
    /// MUST order by id, descending, so that pages neither skip nor repeat rows.
    async fn recent_events(
        &self,
        outcome: Option<EventOutcome>,
        before: Option<DeliveryId>,
        limit: usize,
    ) -> Result<Vec<WebhookEvent>, StoreError>;

    /// The guild's latest `limit` deliveries, newest first, **without their bodies** (`body` is
    /// empty): for lists that refresh often.
    async fn guild_deliveries(&self, guild: GuildId, limit: usize) -> Result<Vec<WebhookEvent>, StoreError>;

    /// Deferred deliveries whose `retry_at` is at or before `now`, soonest first, at most
    /// `limit`.
    async fn due_deferred(&self, now: Timestamp, limit: usize) -> Result<Vec<WebhookEvent>, StoreError>;

    /// Puts off a deferred delivery that could not be resolved yet: counts the attempt, keeps
    /// `why` as its last error and sets `retry_at`. MUST change only a row that is still
    /// deferred, and say whether it did (`false`: another resolver settled it first).
    async fn defer_again(&self, id: DeliveryId, retry_at: Timestamp, why: &str) -> Result<bool, StoreError>;
}

/// What a worker reports when it is done with a claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    Done,
    Retry { at: Timestamp, error: String },
    Park { reason: String },
}

/// Whether a settlement took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Applied,
    /// The job was enqueued again while it ran; it stays pending and runs again now.
    Requeued,
    /// The lease ran out and another worker claimed the job; this settlement was dropped.
    LeaseLost,
}

/// The durable role-job queue. One row per `(guild, user, role)`.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Asks for the keys to be converged at `now`.
    ///
    /// MUST NOT create a second row for a key: a pending job is brought forward to `now`; a
    /// parked or done one is made pending again with its attempts reset; a job that a worker
    /// holds right now MUST run again after that worker settles (its generation is bumped).
    async fn enqueue(&self, keys: &[RoleJobKey], cause: &str, now: Timestamp) -> Result<(), StoreError>;
    /// Claims up to `limit` pending jobs with `run_at <= now` whose lease is free or expired,
    /// leasing each until `now + lease`.
    ///
    /// MUST NOT hand one job to two workers whose leases overlap (`FOR UPDATE SKIP LOCKED` or a
    /// single writer), and MUST bump nothing but the lease.
    async fn claim_due(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<RoleJob>, StoreError>;
    /// The job with this id, in whatever state.
    async fn job(&self, id: crate::domain::JobId) -> Result<Option<RoleJob>, StoreError>;
    /// The job of this key (there is at most one), in whatever state.
    async fn job_for(&self, key: RoleJobKey) -> Result<Option<RoleJob>, StoreError>;
    /// Settles a job claimed as `claimed` (the row `claim_due` returned).
    ///
    /// MUST write `audit` in the same transaction whatever the outcome (it records what already
    /// happened on Discord), MUST leave the job alone and return `Settled::LeaseLost` when its
    /// lease is no longer `claimed.locked_until`, and MUST return `Settled::Requeued` (job
    /// pending, `run_at = now`, attempts reset, lease released) when it was enqueued again
    /// meanwhile.
    async fn settle(
        &self,
        claimed: &RoleJob,
        settlement: Settlement,
        audit: Vec<AuditEntry>,
        now: Timestamp,
    ) -> Result<Settled, StoreError>;
    async fn jobs(&self, state: JobState, limit: usize) -> Result<Vec<RoleJob>, StoreError>;
    /// The earliest `run_at` (or lease expiry) among pending jobs: when a sleeping worker should
    /// wake up at the latest.
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError>;
}

/// Resumable `/setup` progress, one per guild.
#[async_trait]
pub trait SetupRepo: Send + Sync {
    /// Inserts or replaces the guild's progress.
    async fn put_setup(&self, progress: &SetupProgress) -> Result<(), StoreError>;
    async fn setup(&self, guild: GuildId) -> Result<Option<SetupProgress>, StoreError>;
    /// Forgets the guild's progress (the wizard finished or was abandoned).
    async fn clear_setup(&self, guild: GuildId) -> Result<(), StoreError>;
}

/// [`EntitlementRepo::guild_revision`]'s answer: counts and sums that grow with every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuildRevision {
    pub entitlements: i64,
    /// The sum of the entitlements' revisions.
    pub revisions: i64,
    pub payments: i64,
    /// The sum of the payments' refunds, in minor units.
    pub refunded: i64,
}

/// Recorded payments, for revenue figures and exports.
#[async_trait]
pub trait PaymentLog: Send + Sync {
    /// The guild's payments, oldest `paid_at` first.
    async fn payments(&self, guild: GuildId) -> Result<Vec<Payment>, StoreError>;
}

/// The audit trail.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// One member's entries in `guild`, oldest first.
    async fn audit_trail(&self, guild: GuildId, user: UserId) -> Result<Vec<AuditEntry>, StoreError>;
    /// The guild's latest `limit` entries, newest first: the operators' live feed.
    async fn recent_audit(&self, guild: GuildId, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
}

/// What a sender reports when it is done with a claimed notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeSettlement {
    Sent,
    /// Deliberately not sent (outdated, turned off).
    Skipped {
        why: String,
    },
    /// Discord will not deliver to the member: the notice fails and the member is marked
    /// unreachable in its guild (`MemberNotices::unreachable_at`), in one transaction.
    Unreachable,
    Retry {
        at: Timestamp,
        error: String,
    },
    Failed {
        why: String,
    },
}

impl NoticeSettlement {
    /// The note an unreachable member's notice keeps.
    pub const UNREACHABLE: &str = "Discord cannot send this member direct messages (50007: DMs closed, the bot \
                                   blocked, or no shared server)";
}

/// Member notices (an outbox like the role jobs) and each member's notice preferences.
#[async_trait]
pub trait NoticeRepo: Send + Sync {
    /// Records the notices whose [`PlannedNotice::key`] is not recorded yet, pending at their
    /// `send_at`, and says how many were new. MUST keep one notice per key (a unique
    /// constraint), so planning the same notice again, from a restart or another replica, adds
    /// nothing.
    async fn plan_notices(&self, notices: &[PlannedNotice], now: Timestamp) -> Result<usize, StoreError>;
    /// Claims up to `limit` pending notices with `send_at <= now` whose lease is free or
    /// expired, soonest first, leasing each until `now + lease`. MUST NOT hand one notice to two
    /// senders whose leases overlap.
    async fn claim_notices(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Notice>, StoreError>;
    /// Settles a notice claimed as `claimed`. MUST change nothing and return `false` when its
    /// lease is no longer `claimed.locked_until` (another sender has it).
    async fn settle_notice(
        &self,
        claimed: &Notice,
        settlement: NoticeSettlement,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// A member's notices in a guild, oldest first.
    async fn member_notice_log(&self, guild: GuildId, user: UserId) -> Result<Vec<Notice>, StoreError>;
    /// A member's preferences in a guild (the default when never set).
    async fn member_notices(&self, guild: GuildId, user: UserId) -> Result<MemberNotices, StoreError>;
    /// `/notify on|off`. Turning notices on also forgets that the member was unreachable, so
    /// the next notice is tried.
    async fn set_member_notices(
        &self,
        guild: GuildId,
        user: UserId,
        on: bool,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// The earliest `send_at` (or lease expiry) among pending notices.
    async fn next_notice_due(&self) -> Result<Option<Timestamp>, StoreError>;
}

/// Every repository port. Implemented automatically for anything that implements them all.
pub trait SubscriptionRepo:
    CatalogRepo
    + CheckoutRepo
    + EntitlementRepo
    + Ledger
    + JobQueue
    + AuditLog
    + SetupRepo
    + PaymentLog
    + NoticeRepo
    + super::RelayRepo
    + super::SessionRepo
{
}

impl<T> SubscriptionRepo for T where
    T: CatalogRepo
        + CheckoutRepo
        + EntitlementRepo
        + Ledger
        + JobQueue
        + AuditLog
        + SetupRepo
        + PaymentLog
        + NoticeRepo
        + super::RelayRepo
        + super::SessionRepo
{
}
