//! The write side of [`MemoryRepo`]: the atomic commit, the event log, the job queue, the audit
//! trail and setup progress.

use async_trait::async_trait;
use time::Duration;

use super::{MemoryRepo, lock};
use crate::domain::{
    AuditEntry, DeliveryId, EventId, EventOutcome, GuildId, JobState, Payment, ProviderName, RoleJob,
    RoleJobKey, SetupProgress, Timestamp, UserId, WebhookEvent,
};
use crate::ports::{
    AuditLog, Commit, JobQueue, Ledger, PaymentLog, Recorded, Settled, Settlement, SetupRepo, StoreError,
};

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
        if let Some((guild, revision)) = commit.catalog
            && state.catalog_revision(guild) != revision
        {
            return Err(StoreError::Conflict);
        }
        let mut next = state.clone();
        if let Some(mut event) = commit.event {
            let key = (event.provider, event.guild, event.external_id.clone());
            let stored = next.events.get(&key);
            if commit.replay {
                // Only a stored failure or deferral may be replayed, and only once.
                let replayable =
                    |s: &WebhookEvent| matches!(s.outcome, EventOutcome::Failed | EventOutcome::Deferred);
                match stored {
                    Some(s) if s.id == event.id && replayable(s) => event.attempts = s.attempts + 1,
                    _ => return Ok(Recorded::Duplicate),
                }
            } else if stored.is_some() {
                return Ok(Recorded::Duplicate);
            } else {
                event.id = DeliveryId(next.next_id());
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
        next.audit.extend(commit.audit);
        for payment in commit.payments {
            let key = (payment.provider, payment.guild, payment.reference.clone());
            let stored = next.payments.entry(key).or_insert_with(|| payment.clone());
            if payment.refunded.minor > stored.refunded.minor {
                stored.refunded = payment.refunded;
            }
        }
        next.plan_notices(&commit.notices);
        *state = next;
        Ok(Recorded::Committed)
    }

    async fn webhook_event(
        &self,
        provider: ProviderName,
        guild: GuildId,
        id: &EventId,
    ) -> Result<Option<WebhookEvent>, StoreError> {
        self.read(|s| s.events.get(&(provider, guild, id.clone())).cloned())
    }

    async fn webhook_event_by_id(&self, id: DeliveryId) -> Result<Option<WebhookEvent>, StoreError> {
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

    async fn guild_deliveries(&self, guild: GuildId, limit: usize) -> Result<Vec<WebhookEvent>, StoreError> {
        self.read(|s| {
            let mut events: Vec<WebhookEvent> = s
                .events
                .values()
                .filter(|e| e.guild == guild)
                .map(|e| WebhookEvent { body: Vec::new(), ..e.clone() })
                .collect();
            events.sort_by_key(|e| std::cmp::Reverse(e.id));
            events.truncate(limit);
            events
        })
    }

    async fn recent_events(
        &self,
        outcome: Option<EventOutcome>,
        before: Option<DeliveryId>,
        limit: usize,
    ) -> Result<Vec<WebhookEvent>, StoreError> {
        self.read(|s| {
            let mut events: Vec<WebhookEvent> = s
                .events
                .values()
                .filter(|e| outcome.is_none_or(|o| e.outcome == o) && before.is_none_or(|b| e.id < b))
                .cloned()
                .collect();
            events.sort_by_key(|e| std::cmp::Reverse(e.id));
            events.truncate(limit);
            events
        })
    }

    async fn due_deferred(&self, now: Timestamp, limit: usize) -> Result<Vec<WebhookEvent>, StoreError> {
        self.read(|s| {
            let mut due: Vec<WebhookEvent> = s
                .events
                .values()
                .filter(|e| e.outcome == EventOutcome::Deferred && e.retry_at.is_some_and(|at| at <= now))
                .cloned()
                .collect();
            due.sort_by_key(|e| (e.retry_at, e.id));
            due.truncate(limit);
            due
        })
    }

    async fn defer_again(&self, id: DeliveryId, retry_at: Timestamp, why: &str) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        let found = state.events.values_mut().find(|e| e.id == id && e.outcome == EventOutcome::Deferred);
        Ok(found
            .map(|e| {
                e.attempts += 1;
                e.retry_at = Some(retry_at);
                e.last_error = Some(why.to_owned());
            })
            .is_some())
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

    async fn job(&self, id: crate::domain::JobId) -> Result<Option<RoleJob>, StoreError> {
        self.read(|s| s.jobs.values().find(|j| j.id == id).cloned())
    }

    async fn job_for(&self, key: RoleJobKey) -> Result<Option<RoleJob>, StoreError> {
        self.read(|s| s.jobs.get(&key).cloned())
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
impl PaymentLog for MemoryRepo {
    async fn payments(&self, guild: GuildId) -> Result<Vec<Payment>, StoreError> {
        self.read(|s| {
            let mut payments: Vec<Payment> =
                s.payments.values().filter(|p| p.guild == guild).cloned().collect();
            payments.sort_by_key(|p| p.paid_at);
            payments
        })
    }
}

#[async_trait]
impl AuditLog for MemoryRepo {
    async fn audit_trail(&self, guild: GuildId, user: UserId) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|s| s.audit.iter().filter(|a| a.guild == guild && a.user == user).cloned().collect())
    }

    async fn recent_audit(&self, guild: GuildId, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|s| s.audit.iter().rev().filter(|a| a.guild == guild).take(limit).cloned().collect())
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
