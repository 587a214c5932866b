//! [`MemoryRepo`]: every repository port in memory, with the uniqueness, atomicity and queue
//! rules the database adapters must keep.
//!
//! Atomicity is real: a commit is applied to a copy of the state and swapped in only if every
//! step succeeded, so a failure at any point (including one injected with
//! [`MemoryRepo::fail_commits_after_event`]) leaves nothing behind.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use time::Duration;

use super::lock;
use crate::domain::{
    AuditEntry, Checkout, CheckoutRef, Entitlement, EntitlementId, EventId, EventOutcome, ExternalRef, Guild,
    GuildId, JobId, JobState, PaidRole, ProviderKind, RoleId, RoleJob, RoleJobKey, SetupProgress, Timestamp,
    UserId, WebhookEvent,
};
use crate::ports::{
    AuditLog, CatalogRepo, CheckoutRepo, Commit, EntitlementRepo, EntitlementWrite, JobQueue, Ledger,
    ProviderCredentials, Recorded, Settled, Settlement, SetupRepo, StoreError,
};

#[derive(Debug, Clone, Default)]
struct State {
    guilds: BTreeMap<GuildId, Guild>,
    roles: BTreeMap<(GuildId, RoleId), PaidRole>,
    credentials: BTreeMap<(GuildId, ProviderKind), ProviderCredentials>,
    checkouts: BTreeMap<(GuildId, CheckoutRef), Checkout>,
    entitlements: BTreeMap<EntitlementId, Entitlement>,
    by_ref: BTreeMap<(ProviderKind, GuildId, ExternalRef), EntitlementId>,
    events: BTreeMap<(ProviderKind, GuildId, EventId), WebhookEvent>,
    jobs: BTreeMap<RoleJobKey, RoleJob>,
    audit: Vec<AuditEntry>,
    setups: BTreeMap<GuildId, SetupProgress>,
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

#[async_trait]
impl CatalogRepo for MemoryRepo {
    async fn put_guild(&self, guild: &Guild) -> Result<(), StoreError> {
        lock(&self.state).guilds.insert(guild.id, guild.clone());
        Ok(())
    }

    async fn guild(&self, id: GuildId) -> Result<Option<Guild>, StoreError> {
        self.read(|s| s.guilds.get(&id).cloned())
    }

    async fn guilds(&self) -> Result<Vec<Guild>, StoreError> {
        self.read(|s| s.guilds.values().cloned().collect())
    }

    async fn remove_paid_role(&self, guild: GuildId, role: RoleId) -> Result<bool, StoreError> {
        Ok(lock(&self.state).roles.remove(&(guild, role)).is_some())
    }

    async fn put_paid_role(&self, role: &PaidRole) -> Result<(), StoreError> {
        lock(&self.state).roles.insert((role.guild, role.role), role.clone());
        Ok(())
    }

    async fn paid_role(&self, guild: GuildId, role: RoleId) -> Result<Option<PaidRole>, StoreError> {
        self.read(|s| s.roles.get(&(guild, role)).cloned())
    }

    async fn paid_roles(&self, guild: GuildId) -> Result<Vec<PaidRole>, StoreError> {
        self.read(|s| s.roles.values().filter(|r| r.guild == guild).cloned().collect())
    }

    async fn paid_role_by_product(
        &self,
        guild: GuildId,
        product: &str,
    ) -> Result<Option<PaidRole>, StoreError> {
        self.read(|s| {
            s.roles
                .values()
                .find(|r| r.guild == guild && r.polar_product.as_deref() == Some(product))
                .cloned()
        })
    }

    async fn put_credentials(
        &self,
        guild: GuildId,
        provider: ProviderKind,
        credentials: &ProviderCredentials,
    ) -> Result<(), StoreError> {
        lock(&self.state).credentials.insert((guild, provider), credentials.clone());
        Ok(())
    }

    async fn credentials(
        &self,
        guild: GuildId,
        provider: ProviderKind,
    ) -> Result<Option<ProviderCredentials>, StoreError> {
        self.read(|s| s.credentials.get(&(guild, provider)).cloned())
    }
}

#[async_trait]
impl CheckoutRepo for MemoryRepo {
    async fn put_checkout(&self, checkout: &Checkout) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let key = (checkout.guild, checkout.reference.clone());
        if state.checkouts.contains_key(&key) {
            return Err(StoreError::AlreadyExists(format!("checkout {}", checkout.reference)));
        }
        state.checkouts.insert(key, checkout.clone());
        Ok(())
    }

    async fn checkout(
        &self,
        guild: GuildId,
        reference: &CheckoutRef,
    ) -> Result<Option<Checkout>, StoreError> {
        self.read(|s| s.checkouts.get(&(guild, reference.clone())).cloned())
    }
}

#[async_trait]
impl EntitlementRepo for MemoryRepo {
    async fn entitlement(
        &self,
        provider: ProviderKind,
        guild: GuildId,
        external_ref: &ExternalRef,
    ) -> Result<Option<Entitlement>, StoreError> {
        self.read(|s| {
            s.by_ref
                .get(&(provider, guild, external_ref.clone()))
                .and_then(|id| s.entitlements.get(id))
                .cloned()
        })
    }

    async fn entitlements_for(&self, key: RoleJobKey) -> Result<Vec<Entitlement>, StoreError> {
        self.read(|s| s.entitlements.values().filter(|e| e.job_key() == key).cloned().collect())
    }

    async fn member_entitlements(
        &self,
        guild: GuildId,
        user: UserId,
    ) -> Result<Vec<Entitlement>, StoreError> {
        self.read(|s| {
            s.entitlements.values().filter(|e| e.guild == guild && e.user == user).cloned().collect()
        })
    }

    async fn guild_entitlements(&self, guild: GuildId) -> Result<Vec<Entitlement>, StoreError> {
        self.read(|s| s.entitlements.values().filter(|e| e.guild == guild).cloned().collect())
    }

    async fn due_entitlements(&self, now: Timestamp, limit: usize) -> Result<Vec<Entitlement>, StoreError> {
        self.read(|s| {
            let mut due: Vec<Entitlement> =
                s.entitlements.values().filter(|e| e.deadline.is_some_and(|d| d <= now)).cloned().collect();
            due.sort_by_key(|e| (e.deadline, e.id));
            due.truncate(limit);
            due
        })
    }
}

#[async_trait]
impl Ledger for MemoryRepo {
    async fn commit(&self, commit: Commit) -> Result<Recorded, StoreError> {
        let mut state = lock(&self.state);
        {
            let mut faults = lock(&self.faults);
            if faults.conflicts > 0 {
                faults.conflicts -= 1;
                return Err(StoreError::Conflict);
            }
        }
        let mut next = state.clone();
        if let Some(mut event) = commit.event {
            let key = (event.provider, event.guild, event.external_id.clone());
            let stored = next.events.get(&key);
            if commit.replay {
                // Only a stored failure may be replayed, and only once.
                if stored.is_none_or(|s| s.id != event.id || s.outcome != EventOutcome::Failed) {
                    return Ok(Recorded::Duplicate);
                }
            } else if stored.is_some() {
                return Ok(Recorded::Duplicate);
            } else {
                event.id = next.next_id();
            }
            next.events.insert(key, event);
            let mut faults = lock(&self.faults);
            if faults.after_event > 0 {
                faults.after_event -= 1;
                return Err(StoreError::Unavailable("injected failure after recording the event".to_owned()));
            }
        }
        for write in commit.writes {
            next.write(write, commit.at)?;
        }
        for key in commit.jobs {
            next.enqueue(key, &commit.cause, commit.at);
        }
        *state = next;
        Ok(Recorded::Committed)
    }

    async fn webhook_event(
        &self,
        provider: ProviderKind,
        guild: GuildId,
        id: &EventId,
    ) -> Result<Option<WebhookEvent>, StoreError> {
        self.read(|s| s.events.get(&(provider, guild, id.clone())).cloned())
    }

    async fn webhook_event_by_id(&self, id: i64) -> Result<Option<WebhookEvent>, StoreError> {
        self.read(|s| s.events.values().find(|e| e.id == id).cloned())
    }

    async fn events(
        &self,
        outcome: Option<EventOutcome>,
        limit: usize,
    ) -> Result<Vec<WebhookEvent>, StoreError> {
        self.read(|s| {
            let mut events: Vec<WebhookEvent> =
                s.events.values().filter(|e| outcome.is_none_or(|o| e.outcome == o)).cloned().collect();
            events.sort_by_key(|e| (e.received_at, e.id));
            events.truncate(limit);
            events
        })
    }
}

#[async_trait]
impl JobQueue for MemoryRepo {
    async fn enqueue(&self, keys: &[RoleJobKey], cause: &str, now: Timestamp) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        for key in keys {
            state.enqueue(*key, cause, now);
        }
        Ok(())
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<RoleJob>, StoreError> {
        let mut state = lock(&self.state);
        let mut due: Vec<&mut RoleJob> = state
            .jobs
            .values_mut()
            .filter(|j| {
                j.state == JobState::Pending && j.run_at <= now && j.locked_until.is_none_or(|l| l <= now)
            })
            .collect();
        due.sort_by_key(|j| (j.run_at, j.id));
        Ok(due
            .into_iter()
            .take(limit)
            .map(|j| {
                j.locked_until = Some(now + lease);
                j.clone()
            })
            .collect())
    }

    async fn settle(
        &self,
        claimed: &RoleJob,
        settlement: Settlement,
        audit: Vec<AuditEntry>,
        now: Timestamp,
    ) -> Result<Settled, StoreError> {
        let mut state = lock(&self.state);
        state.audit.extend(audit);
        let Some(job) = state.jobs.get_mut(&claimed.key) else { return Ok(Settled::LeaseLost) };
        if job.id != claimed.id || job.locked_until != claimed.locked_until {
            return Ok(Settled::LeaseLost);
        }
        job.locked_until = None;
        if job.generation != claimed.generation {
            job.state = JobState::Pending;
            job.run_at = now;
            job.attempts = 0;
            return Ok(Settled::Requeued);
        }
        match settlement {
            Settlement::Done => {
                job.state = JobState::Done;
                job.last_error = None;
            }
            Settlement::Retry { at, error } => {
                job.attempts += 1;
                job.run_at = at;
                job.last_error = Some(error);
            }
            Settlement::Park { reason } => {
                job.state = JobState::Parked;
                job.last_error = Some(reason);
            }
        }
        Ok(Settled::Applied)
    }

    async fn jobs(&self, state: JobState, limit: usize) -> Result<Vec<RoleJob>, StoreError> {
        self.read(|s| s.jobs.values().filter(|j| j.state == state).take(limit).cloned().collect())
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|s| {
            s.jobs
                .values()
                .filter(|j| j.state == JobState::Pending)
                .map(|j| j.locked_until.map_or(j.run_at, |l| l.max(j.run_at)))
                .min()
        })
    }
}

#[async_trait]
impl AuditLog for MemoryRepo {
    async fn audit_trail(&self, guild: GuildId, user: UserId) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|s| s.audit.iter().filter(|a| a.guild == guild && a.user == user).cloned().collect())
    }
}

#[async_trait]
impl SetupRepo for MemoryRepo {
    async fn put_setup(&self, progress: &SetupProgress) -> Result<(), StoreError> {
        lock(&self.state).setups.insert(progress.guild, progress.clone());
        Ok(())
    }

    async fn setup(&self, guild: GuildId) -> Result<Option<SetupProgress>, StoreError> {
        self.read(|s| s.setups.get(&guild).cloned())
    }

    async fn clear_setup(&self, guild: GuildId) -> Result<(), StoreError> {
        lock(&self.state).setups.remove(&guild);
        Ok(())
    }
}
