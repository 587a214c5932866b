//! The relay's ports: [`RelayRepo`] keeps relays, signals and their mirror jobs; [`MirrorGateway`]
//! posts, edits and deletes mirrors in target channels.

use async_trait::async_trait;
use time::Duration;

use super::StoreError;
use crate::domain::{
    Attachment, Author, ChannelId, JobState, MessageId, MirrorJob, NewRelay, PostedMessage, Relay, RelayId,
    RoleId, Signal, SignalId, SignalWrite, Timestamp,
};

/// What a worker reports when it is done with a claimed mirror job. Each variant carries what is
/// posted in the target now, so partial progress (two of three parts) is never forgotten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorSettlement {
    /// The target shows signal version `version`.
    Mirrored {
        version: i64,
        posted: Vec<PostedMessage>,
    },
    Retry {
        at: Timestamp,
        error: String,
        posted: Vec<PostedMessage>,
    },
    /// Needs a person (a missing permission, a deleted webhook); `why` says what to do.
    Parked {
        why: String,
        posted: Vec<PostedMessage>,
    },
    /// Hands the job back unchanged and due now, costing no attempt (it was held behind an
    /// earlier signal of its relay).
    Released,
}

impl MirrorSettlement {
    /// Applies the settlement to the job, as every repository does once it checked the lease.
    pub fn apply(self, job: &mut MirrorJob, now: Timestamp) {
        job.locked_until = None;
        match self {
            MirrorSettlement::Mirrored { version, posted } => {
                job.mirrored = version;
                job.posted = posted;
                job.attempts = 0;
                job.last_error = None;
                if job.wanted <= version {
                    job.state = JobState::Done;
                } else {
                    job.run_at = now;
                }
            }
            MirrorSettlement::Retry { at, error, posted } => {
                job.posted = posted;
                job.attempts += 1;
                job.last_error = Some(error);
                job.run_at = at;
            }
            MirrorSettlement::Parked { why, posted } => {
                job.posted = posted;
                job.state = JobState::Parked;
                job.last_error = Some(why);
            }
            MirrorSettlement::Released => job.run_at = now,
        }
    }
}

/// Relays, signals and mirror jobs.
#[async_trait]
pub trait RelayRepo: Send + Sync {
    /// MUST refuse a second relay between the same source and target channels with
    /// `StoreError::AlreadyExists`.
    async fn add_relay(&self, relay: &NewRelay, now: Timestamp) -> Result<Relay, StoreError>;
    /// Every relay, by id.
    async fn relays(&self) -> Result<Vec<Relay>, StoreError>;
    /// Removes the relay and its mirror jobs (mirrors already posted stay where they are);
    /// `false` when there was none.
    async fn remove_relay(&self, id: RelayId) -> Result<bool, StoreError>;
    /// The signal of source message `id` in `channel`.
    async fn signal(&self, channel: ChannelId, id: MessageId) -> Result<Option<Signal>, StoreError>;
    async fn signal_by_id(&self, id: SignalId) -> Result<Option<Signal>, StoreError>;
    /// Up to `limit` live (not deleted) signals of `channels`, newest source message first: what
    /// a member's signal feed shows.
    async fn recent_signals(&self, channels: &[ChannelId], limit: usize) -> Result<Vec<Signal>, StoreError>;
    /// Up to `limit` signals of any channel, deleted ones too, whose latest change was received
    /// at or after `since`, oldest change first: what the live feed passes on.
    async fn signals_changed_since(&self, since: Timestamp, limit: usize) -> Result<Vec<Signal>, StoreError>;
    /// The newest source message recorded in `channel`: where a catch-up read starts.
    async fn last_signal(&self, channel: ChannelId) -> Result<Option<MessageId>, StoreError>;
    /// Stores `write` and, in the same transaction, its mirror jobs:
    /// - inserting a live signal adds one pending job (`wanted` 1) per relay from its channel;
    /// - an update sets every job of the signal pending with `wanted` = the new version, due now
    ///   unless it was due earlier.
    ///
    /// MUST return `StoreError::Conflict`, writing nothing, when an insert's (channel, message)
    /// is already stored or an update's signal is no longer at `expected_version`.
    async fn record_signal(&self, write: &SignalWrite, now: Timestamp) -> Result<(), StoreError>;
    /// Claims up to `limit` due mirror jobs whose lease is free or expired, leasing each until
    /// `now + lease`. MUST NOT hand one job to two workers whose leases overlap, and MUST NOT hand
    /// out a job while an earlier job (by `position`) of the same relay that has posted nothing
    /// is pending and not handed out with it ([`MirrorJob::claimable`] is the rule): within a
    /// relay, mirrors appear in source order.
    async fn claim_mirrors(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<MirrorJob>, StoreError>;
    /// Before a claimed job posts: sets `tried_at` to `now` unless set, and adds the `digests`
    /// not yet in `tried`. MUST change nothing and return `false` when the lease is no longer
    /// `claimed.locked_until`.
    async fn note_mirror_attempt(
        &self,
        claimed: &MirrorJob,
        digests: &[String],
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Settles a job claimed as `claimed`. MUST change nothing and return `false` when its lease
    /// is no longer `claimed.locked_until`. A job mirrored at a version below `wanted` (the
    /// signal changed meanwhile) stays pending, due now. `Retry` adds one to `attempts`.
    async fn settle_mirror(
        &self,
        claimed: &MirrorJob,
        settlement: MirrorSettlement,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Jobs in `state`, oldest first.
    async fn mirror_jobs(&self, state: JobState, limit: usize) -> Result<Vec<MirrorJob>, StoreError>;
    /// The jobs of one signal, by relay.
    async fn mirrors_of(&self, signal: SignalId) -> Result<Vec<MirrorJob>, StoreError>;
    /// A parked job runs again now, its attempts reset; `false` when it was not parked.
    async fn retry_mirror(
        &self,
        signal: SignalId,
        relay: RelayId,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// The earliest `run_at` (or lease expiry) among pending mirror jobs.
    async fn next_mirror_due(&self) -> Result<Option<Timestamp>, StoreError>;
}

/// One message of a mirror: a long signal becomes several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorPart {
    pub content: String,
    /// Rich embeds, as Discord's JSON.
    pub embeds: Vec<String>,
    /// Files to upload from the relay's store.
    pub files: Vec<Attachment>,
    /// The role this part may ping (`allowed_mentions`); `None` pings no one.
    pub ping: Option<RoleId>,
}

/// Why a mirror request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MirrorError {
    /// Try again later (429, 5xx, a timeout; 30046, the edit limit of old messages). `after`
    /// is a floor Discord asked for.
    #[error("{why}")]
    Retryable { after: Option<Duration>, why: String },
    /// Will not work until a person acts (a missing permission, a webhook that cannot be
    /// recreated); `why` names the fix.
    #[error("{why}")]
    Refused { why: String },
}

/// The target side of the relay.
#[async_trait]
pub trait MirrorGateway: Send + Sync {
    /// Posts `part` in the relay's target as `author` (or as the bot, per [`Relay::via`]).
    /// `nonce` (at most 25 characters) is the same for every attempt of one (signal, relay,
    /// part): for bot messages an adapter MUST send it so that Discord returns the first message
    /// instead of creating a second.
    async fn post(
        &self,
        relay: &Relay,
        author: &Author,
        part: &MirrorPart,
        nonce: &str,
    ) -> Result<PostedMessage, MirrorError>;
    /// Replaces what `posted` shows with `part`.
    async fn edit(&self, relay: &Relay, posted: PostedMessage, part: &MirrorPart) -> Result<(), MirrorError>;
    /// The largest file the relay's target accepts, in bytes; files above it are linked
    /// instead of uploaded. The default is the limit of a server without boosts.
    async fn upload_limit(&self, _relay: &Relay) -> u64 {
        crate::service::relay::DEFAULT_UPLOAD_LIMIT
    }
    /// Deletes `posted`. MUST succeed when it is already gone.
    async fn delete(&self, relay: &Relay, posted: PostedMessage) -> Result<(), MirrorError>;
    /// The messages Docobo posted in the relay's target after `since` (through its webhook, or
    /// as the bot), oldest first, each with its content: where a worker looks for what an
    /// attempt that died before recording its result posted.
    async fn posted_since(
        &self,
        relay: &Relay,
        since: Timestamp,
    ) -> Result<Vec<(PostedMessage, String)>, MirrorError>;
}
