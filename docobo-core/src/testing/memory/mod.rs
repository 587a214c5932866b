//! [`MemoryRepo`]: every repository port in memory, with the uniqueness, atomicity and queue
//! rules the database adapters must keep.
//!
//! Atomicity is real: a commit is applied to a copy of the state and swapped in only if every
//! step succeeded, so a failure at any point (including one injected with
//! [`MemoryRepo::fail_commits_after_event`]) leaves nothing behind.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::lock;
use crate::domain::{
    AuditEntry, ChannelId, Checkout, CheckoutRef, Entitlement, EntitlementId, EventId, ExternalRef, Guild,
    GuildId, JobId, JobState, MemberNotices, MessageId, MirrorJob, Notice, PaidRole, Payment, ProviderName,
    Relay, RelayId, RoleId, RoleJob, RoleJobKey, SetupProgress, Signal, SignalId, Timestamp, UserId,
    WebhookEvent,
};
use crate::ports::{EntitlementWrite, GuildCatalog, ProviderCredentials, StoreError};

mod catalog;
mod ledger;
mod notices;
mod relay;
mod sessions;

#[derive(Debug, Clone, Default)]
struct State {
    guilds: BTreeMap<GuildId, Guild>,
    roles: BTreeMap<(GuildId, RoleId), PaidRole>,
    credentials: BTreeMap<(GuildId, ProviderName), ProviderCredentials>,
    checkouts: BTreeMap<(GuildId, CheckoutRef), Checkout>,
    entitlements: BTreeMap<EntitlementId, Entitlement>,
    by_ref: BTreeMap<(ProviderName, GuildId, ExternalRef), EntitlementId>,
    events: BTreeMap<(ProviderName, GuildId, EventId), WebhookEvent>,
    jobs: BTreeMap<RoleJobKey, RoleJob>,
    audit: Vec<AuditEntry>,
    payments: BTreeMap<(ProviderName, GuildId, ExternalRef), Payment>,
    setups: BTreeMap<GuildId, SetupProgress>,
    notices: BTreeMap<String, Notice>,
    member_notices: BTreeMap<(GuildId, UserId), MemberNotices>,
    relays: BTreeMap<RelayId, Relay>,
    signals: BTreeMap<SignalId, Signal>,
    signal_keys: BTreeMap<(ChannelId, MessageId), SignalId>,
    mirrors: BTreeMap<(SignalId, RelayId), MirrorJob>,
    sessions: BTreeMap<String, crate::domain::Session>,
    /// Raised by every catalog write, as the database adapters do.
    catalog_revisions: BTreeMap<GuildId, u64>,
    last_id: i64,
}

/// What the next commits should do wrong.
#[derive(Debug, Default)]
struct Faults {
    /// Fail this many commits right after recording the event, before the rest is written.
    after_event: usize,
    /// Report this many commits as conflicting with a concurrent writer.
    conflicts: usize,
}

/// Every repository port in memory.
#[derive(Debug, Default)]
pub struct MemoryRepo {
    state: Mutex<State>,
    faults: Mutex<Faults>,
    /// The catalogs last read, kept as the database adapters keep them.
    kept: Mutex<BTreeMap<(GuildId, ProviderName), Arc<GuildCatalog>>>,
}

impl MemoryRepo {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` commits fail with `StoreError::Unavailable` after the event is recorded and
    /// before anything else is: the atomicity check.
    pub fn fail_commits_after_event(&self, n: usize) {
        lock(&self.faults).after_event = n;
    }

    /// The next `n` commits fail with `StoreError::Conflict`, as if a concurrent delivery for the
    /// same purchase had committed first.
    pub fn fail_commits_with_conflict(&self, n: usize) {
        lock(&self.faults).conflicts = n;
    }

    /// Every stored webhook event, in key order.
    pub fn events(&self) -> Vec<WebhookEvent> {
        lock(&self.state).events.values().cloned().collect()
    }

    /// Every entitlement, by id.
    pub fn entitlements(&self) -> Vec<Entitlement> {
        lock(&self.state).entitlements.values().cloned().collect()
    }

    /// Every role job row (one per key).
    pub fn all_jobs(&self) -> Vec<RoleJob> {
        lock(&self.state).jobs.values().cloned().collect()
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> Result<T, StoreError> {
        Ok(f(&lock(&self.state)))
    }
}

impl State {
    fn catalog_revision(&self, guild: GuildId) -> u64 {
        self.catalog_revisions.get(&guild).copied().unwrap_or_default()
    }

    /// Marks a change to `guild`'s catalog.
    fn catalog_changed(&mut self, guild: GuildId) {
        *self.catalog_revisions.entry(guild).or_default() += 1;
    }

    fn next_id(&mut self) -> i64 {
        self.last_id += 1;
        self.last_id
    }

    fn enqueue(&mut self, key: RoleJobKey, cause: &str, now: Timestamp) {
        let id = JobId(self.last_id + 1);
        let job = self.jobs.entry(key).or_insert_with(|| RoleJob {
            id,
            key,
            state: JobState::Done,
            attempts: 0,
            generation: 0,
            run_at: now,
            locked_until: None,
            last_error: None,
            cause: None,
        });
        if job.id == id {
            self.last_id += 1;
        }
        if job.state != JobState::Pending {
            job.attempts = 0;
            job.last_error = None;
        }
        job.state = JobState::Pending;
        job.run_at = job.run_at.min(now);
        job.generation += 1;
        job.cause = Some(cause.to_owned());
    }

    fn write(&mut self, write: EntitlementWrite, at: Timestamp) -> Result<(), StoreError> {
        match write {
            EntitlementWrite::Insert { guild, user, role, provider, external_ref, standing, deadline } => {
                let key = (provider, guild, external_ref.clone());
                if self.by_ref.contains_key(&key) {
                    return Err(StoreError::Conflict);
                }
                let id = EntitlementId(self.next_id());
                self.by_ref.insert(key, id);
                let e = Entitlement {
                    id,
                    guild,
                    user,
                    role,
                    provider,
                    external_ref,
                    standing,
                    deadline,
                    revision: 1,
                    created_at: at,
                    updated_at: at,
                };
                self.entitlements.insert(id, e);
            }
            EntitlementWrite::Update { id, expected_revision, standing, deadline } => {
                let e = self.entitlements.get_mut(&id).ok_or(StoreError::Conflict)?;
                if e.revision != expected_revision {
                    return Err(StoreError::Conflict);
                }
                e.standing = standing;
                e.deadline = deadline;
                e.revision += 1;
                e.updated_at = at;
            }
        }
        Ok(())
    }
}
