//! Relays, signals and mirror jobs of [`MemoryRepo`].

use async_trait::async_trait;
use time::Duration;

use super::{MemoryRepo, State, lock};
use crate::domain::{
    ChannelId, JobState, MessageId, MirrorJob, NewRelay, Relay, RelayId, Signal, SignalId, SignalWrite,
    Timestamp,
};
use crate::ports::{MirrorSettlement, RelayRepo, StoreError};

impl State {
    /// Pending mirror jobs by (relay, position), as the claim rule wants them.
    fn pending_mirrors(&self) -> Vec<MirrorJob> {
        let mut pending: Vec<MirrorJob> =
            self.mirrors.values().filter(|j| j.state == JobState::Pending).cloned().collect();
        pending.sort_by_key(|j| (j.relay, j.position));
        pending
    }
}

impl MemoryRepo {
    /// Runs `change` on the job if it is still leased as `claimed`; whether it was.
    fn leased(&self, claimed: &MirrorJob, change: impl FnOnce(&mut MirrorJob)) -> bool {
        let mut state = lock(&self.state);
        let job = state.mirrors.get_mut(&(claimed.signal, claimed.relay)).filter(|j| j.leased_as(claimed));
        job.map(change).is_some()
    }
}

#[async_trait]
impl RelayRepo for MemoryRepo {
    async fn add_relay(&self, relay: &NewRelay, now: Timestamp) -> Result<Relay, StoreError> {
        let mut state = lock(&self.state);
        let same =
            |r: &&Relay| r.source_channel == relay.source_channel && r.target_channel == relay.target_channel;
        if state.relays.values().any(|r| same(&r)) {
            return Err(StoreError::AlreadyExists(format!(
                "a relay from channel {} to channel {}",
                relay.source_channel, relay.target_channel
            )));
        }
        let stored = Relay {
            id: RelayId(state.next_id()),
            source_guild: relay.source_guild,
            source_channel: relay.source_channel,
            target_guild: relay.target_guild,
            target_channel: relay.target_channel,
            via: relay.via,
            name: relay.name.clone(),
            ping_role: relay.ping_role,
            access_role: relay.access_role,
            created_at: now,
        };
        state.relays.insert(stored.id, stored.clone());
        Ok(stored)
    }

    async fn relays(&self) -> Result<Vec<Relay>, StoreError> {
        self.read(|s| s.relays.values().cloned().collect())
    }

    async fn remove_relay(&self, id: RelayId) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        state.mirrors.retain(|(_, relay), _| *relay != id);
        Ok(state.relays.remove(&id).is_some())
    }

    async fn signal(&self, channel: ChannelId, id: MessageId) -> Result<Option<Signal>, StoreError> {
        self.read(|s| s.signal_keys.get(&(channel, id)).and_then(|id| s.signals.get(id)).cloned())
    }

    async fn signal_by_id(&self, id: SignalId) -> Result<Option<Signal>, StoreError> {
        self.read(|s| s.signals.get(&id).cloned())
    }

    async fn recent_signals(&self, channels: &[ChannelId], limit: usize) -> Result<Vec<Signal>, StoreError> {
        self.read(|s| {
            let mut live: Vec<Signal> = s
                .signals
                .values()
                .filter(|g| !g.deleted && channels.contains(&g.message.channel))
                .cloned()
                .collect();
            live.sort_by_key(|g| std::cmp::Reverse(g.message.id));
            live.truncate(limit);
            live
        })
    }

    async fn signals_changed_since(&self, since: Timestamp, limit: usize) -> Result<Vec<Signal>, StoreError> {
        self.read(|s| {
            let mut changed: Vec<Signal> =
                s.signals.values().filter(|g| g.changed_at >= since).cloned().collect();
            changed.sort_by_key(|g| (g.changed_at, g.id));
            changed.truncate(limit);
            changed
        })
    }

    async fn last_signal(&self, channel: ChannelId) -> Result<Option<MessageId>, StoreError> {
        self.read(|s| s.signal_keys.keys().filter(|(c, _)| *c == channel).map(|(_, m)| *m).max())
    }

    async fn record_signal(&self, write: &SignalWrite, now: Timestamp) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        match write {
            SignalWrite::Insert { message, deleted } => {
                let key = (message.channel, message.id);
                if state.signal_keys.contains_key(&key) {
                    return Err(StoreError::Conflict);
                }
                let id = SignalId(state.next_id());
                state.signal_keys.insert(key, id);
                let signal =
                    Signal { id, message: message.clone(), version: 1, deleted: *deleted, changed_at: now };
                state.signals.insert(id, signal);
                if *deleted {
                    return Ok(());
                }
                let relays: Vec<RelayId> = state
                    .relays
                    .values()
                    .filter(|r| r.source_channel == message.channel)
                    .map(|r| r.id)
                    .collect();
                for relay in relays {
                    state.mirrors.insert((id, relay), MirrorJob::new(id, relay, message.id, now));
                }
            }
            SignalWrite::Update { id, expected_version, message, deleted } => {
                let signal = state.signals.get_mut(id).ok_or(StoreError::Conflict)?;
                if signal.version != *expected_version {
                    return Err(StoreError::Conflict);
                }
                signal.version += 1;
                signal.message = message.clone();
                signal.deleted = *deleted;
                signal.changed_at = now;
                let version = signal.version;
                for (_, job) in state.mirrors.range_mut((*id, RelayId(i64::MIN))..=(*id, RelayId(i64::MAX))) {
                    job.want(version, now);
                }
            }
        }
        Ok(())
    }

    async fn claim_mirrors(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<MirrorJob>, StoreError> {
        let mut state = lock(&self.state);
        let pending = state.pending_mirrors();
        let picked = MirrorJob::claimable(&pending, now, limit);
        let mut claimed = Vec::new();
        for i in picked {
            let before = &pending[i];
            if let Some(job) = state.mirrors.get_mut(&(before.signal, before.relay)) {
                job.locked_until = Some(now + lease);
                claimed.push(MirrorJob { locked_until: job.locked_until, ..before.clone() });
            }
        }
        Ok(claimed)
    }

    async fn note_mirror_attempt(
        &self,
        claimed: &MirrorJob,
        digests: &[String],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        Ok(self.leased(claimed, |job| job.note_attempt(digests, now)))
    }

    async fn settle_mirror(
        &self,
        claimed: &MirrorJob,
        settlement: MirrorSettlement,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        Ok(self.leased(claimed, |job| settlement.apply(job, now)))
    }

    async fn mirror_jobs(&self, state: JobState, limit: usize) -> Result<Vec<MirrorJob>, StoreError> {
        self.read(|s| {
            let mut jobs: Vec<MirrorJob> = s.mirrors.values().filter(|j| j.state == state).cloned().collect();
            jobs.sort_by_key(|j| (j.run_at, j.signal, j.relay));
            jobs.truncate(limit);
            jobs
        })
    }

    async fn mirrors_of(&self, signal: SignalId) -> Result<Vec<MirrorJob>, StoreError> {
        self.read(|s| {
            s.mirrors
                .range((signal, RelayId(i64::MIN))..=(signal, RelayId(i64::MAX)))
                .map(|(_, j)| j.clone())
                .collect()
        })
    }

    async fn retry_mirror(
        &self,
        signal: SignalId,
        relay: RelayId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        let Some(job) = state.mirrors.get_mut(&(signal, relay)).filter(|j| j.state == JobState::Parked)
        else {
            return Ok(false);
        };
        job.state = JobState::Pending;
        job.attempts = 0;
        job.run_at = now;
        Ok(true)
    }

    async fn next_mirror_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|s| MirrorJob::next_due(&s.pending_mirrors()))
    }
}
