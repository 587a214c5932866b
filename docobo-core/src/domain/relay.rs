//! The signal relay: a [`Relay`] mirrors one source channel into one target channel; a
//! [`Signal`] is a source message as last seen (a delete leaves a tombstone); a [`MirrorJob`]
//! makes one target show one signal's current version, and remembers which target messages it
//! posted to do so.
//!
//! [`decide_signal`] is the rule that turns a gateway event into a change of the stored signal, pure and
//! table-driven like the state machine:
//!
//! | stored signal   | event                                   | result                           |
//! |-----------------|-----------------------------------------|----------------------------------|
//! | none            | posted, or a full update                | insert (version 1)               |
//! | none            | deleted                                 | insert a tombstone               |
//! | none            | partial update                          | nothing (nothing to mirror)      |
//! | live            | posted again (redelivery, catch-up)     | nothing                          |
//! | live            | update, `edited_at` later, body changed | update, version + 1              |
//! | live            | update otherwise (unfurl, pin, repeat)  | nothing                          |
//! | live            | deleted                                 | tombstone, version + 1           |
//! | tombstone       | anything                                | nothing (an edit after a delete) |
//!
//! The body is the content, the rich embeds and the attachment ids: link unfurls arrive as
//! updates without a new `edited_timestamp` and change only non-rich embeds, which the intake
//! drops, so they never count as edits.

use serde::{Deserialize, Serialize};

use super::{ChannelId, GuildId, JobState, MessageId, RoleId, Timestamp};

/// A relay's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RelayId(pub i64);

impl std::fmt::Display for RelayId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A signal's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SignalId(pub i64);

/// How mirrors are posted in the target channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// Through a channel webhook the bot creates once, under the source author's name and avatar.
    #[default]
    Webhook,
    /// As the bot itself (needs Send Messages instead of Manage Webhooks).
    Bot,
}

names!(Via { Webhook => "webhook", Bot => "bot" });

/// A relay before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelay {
    pub source_guild: GuildId,
    pub source_channel: ChannelId,
    pub target_guild: GuildId,
    pub target_channel: ChannelId,
    pub via: Via,
    /// The owner's label, shown in lists.
    pub name: Option<String>,
    /// A role in the target guild that each new signal pings; without it, nothing is pinged.
    pub ping_role: Option<RoleId>,
    /// The paid role in the target guild that opens the target channel: members entitled to it
    /// read the relay's signals on the dashboard (`/me/signals`); without it, no one does there.
    pub access_role: Option<RoleId>,
}

/// A configured relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Relay {
    pub id: RelayId,
    pub source_guild: GuildId,
    pub source_channel: ChannelId,
    pub target_guild: GuildId,
    pub target_channel: ChannelId,
    pub via: Via,
    pub name: Option<String>,
    pub ping_role: Option<RoleId>,
    pub access_role: Option<RoleId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

/// Who posted a source message, as the mirrors show it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Author {
    pub name: String,
    /// Discord's CDN address of the avatar (unsigned; it does not expire).
    pub avatar_url: Option<String>,
}

/// A file attached to a source message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Discord's attachment id: what tells one file from another across edits.
    pub id: String,
    pub name: String,
    pub content_type: Option<String>,
    pub size: u64,
    /// Where Discord served it, without the expiring signature parameters.
    pub url: String,
    /// The SHA-256 (hex) of the bytes kept in the relay's store, when they were downloaded.
    pub stored: Option<String>,
}

/// A rich embed as Discord sent it (JSON text), with the characters that count towards
/// Discord's 6,000 per message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Embed {
    pub json: String,
    pub chars: usize,
}

/// A source message, whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMessage {
    pub guild: GuildId,
    pub channel: ChannelId,
    pub id: MessageId,
    pub author: Author,
    pub content: String,
    pub embeds: Vec<Embed>,
    pub attachments: Vec<Attachment>,
    /// Discord's `edited_timestamp`: `None` until the author edits.
    pub edited_at: Option<Timestamp>,
}

impl SourceMessage {
    /// Whether `other` shows something different: content, rich embeds or attachment ids.
    fn body_differs(&self, other: &SourceMessage) -> bool {
        let ids = |m: &SourceMessage| m.attachments.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
        self.content != other.content || self.embeds != other.embeds || ids(self) != ids(other)
    }
}

/// A MESSAGE_UPDATE: Discord now sends the whole message, but each field is optional here so
/// an older, partial update is merged into what was stored instead of blanking it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEdit {
    pub guild: GuildId,
    pub channel: ChannelId,
    pub id: MessageId,
    pub author: Option<Author>,
    pub content: Option<String>,
    pub embeds: Option<Vec<Embed>>,
    pub attachments: Option<Vec<Attachment>>,
    pub edited_at: Option<Timestamp>,
}

/// What the gateway (or a catch-up read) reported about one source message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    Posted(SourceMessage),
    Edited(SourceEdit),
    Deleted { guild: GuildId, channel: ChannelId, id: MessageId },
}

impl SourceEvent {
    pub fn channel(&self) -> ChannelId {
        match self {
            SourceEvent::Posted(m) => m.channel,
            SourceEvent::Edited(e) => e.channel,
            SourceEvent::Deleted { channel, .. } => *channel,
        }
    }

    pub fn message(&self) -> MessageId {
        match self {
            SourceEvent::Posted(m) => m.id,
            SourceEvent::Edited(e) => e.id,
            SourceEvent::Deleted { id, .. } => *id,
        }
    }
}

/// A source message as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub id: SignalId,
    pub message: SourceMessage,
    /// 1 when first seen; each accepted edit or the delete adds one. Mirrors record the version
    /// they show, so a worker always knows whether a target is behind.
    pub version: i64,
    pub deleted: bool,
    /// When the latest change was received: where relay latency is measured from.
    pub changed_at: Timestamp,
}

/// What [`decide_signal`] asks the repository to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalWrite {
    Insert {
        message: SourceMessage,
        deleted: bool,
    },
    /// MUST apply only while the stored version is still `expected_version`.
    Update {
        id: SignalId,
        expected_version: i64,
        message: SourceMessage,
        deleted: bool,
    },
}

/// The rule in the module's table.
pub fn decide_signal(stored: Option<&Signal>, event: &SourceEvent) -> Option<SignalWrite> {
    let Some(stored) = stored else {
        return match event {
            SourceEvent::Posted(m) => Some(SignalWrite::Insert { message: m.clone(), deleted: false }),
            SourceEvent::Edited(e) => full(e).map(|message| SignalWrite::Insert { message, deleted: false }),
            SourceEvent::Deleted { guild, channel, id } => Some(SignalWrite::Insert {
                message: SourceMessage {
                    guild: *guild,
                    channel: *channel,
                    id: *id,
                    author: Author::default(),
                    content: String::new(),
                    embeds: Vec::new(),
                    attachments: Vec::new(),
                    edited_at: None,
                },
                deleted: true,
            }),
        };
    };
    if stored.deleted {
        return None;
    }
    let update = |message, deleted| SignalWrite::Update {
        id: stored.id,
        expected_version: stored.version,
        message,
        deleted,
    };
    match event {
        SourceEvent::Posted(_) => None,
        SourceEvent::Deleted { .. } => Some(update(stored.message.clone(), true)),
        SourceEvent::Edited(e) => {
            let later = e.edited_at.is_some() && e.edited_at > stored.message.edited_at;
            if !later {
                return None;
            }
            let mut merged = stored.message.clone();
            merged.edited_at = e.edited_at;
            if let Some(author) = &e.author {
                merged.author = author.clone();
            }
            if let Some(content) = &e.content {
                merged.content = content.clone();
            }
            if let Some(embeds) = &e.embeds {
                merged.embeds = embeds.clone();
            }
            if let Some(attachments) = &e.attachments {
                merged.attachments = attachments.clone();
            }
            merged.body_differs(&stored.message).then(|| update(merged, false))
        }
    }
}

/// An update that carries the whole message, as a create.
fn full(e: &SourceEdit) -> Option<SourceMessage> {
    Some(SourceMessage {
        guild: e.guild,
        channel: e.channel,
        id: e.id,
        author: e.author.clone()?,
        content: e.content.clone()?,
        embeds: e.embeds.clone().unwrap_or_default(),
        attachments: e.attachments.clone().unwrap_or_default(),
        edited_at: e.edited_at,
    })
}

/// A message a mirror posted in its target channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedMessage {
    pub id: MessageId,
    /// The channel webhook it was posted through (its edits must use the same one), or `None`
    /// when the bot posted it.
    pub webhook: Option<u64>,
}

/// One (signal, relay) pair: the outbox row that makes the relay's target show the signal's
/// current version, and the map of what it posted there. It carries no "create", "edit" or
/// "delete": the worker compares `mirrored` with the signal when it runs, so rapid edits
/// coalesce (newest wins) and an edit or delete that lands while the create is being delivered
/// is applied right after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MirrorJob {
    pub signal: SignalId,
    pub relay: RelayId,
    /// The source message: within a relay, mirrors are delivered in this order.
    pub position: MessageId,
    pub state: JobState,
    /// The signal version the target should show.
    pub wanted: i64,
    /// The signal version the target shows (0: nothing posted yet).
    pub mirrored: i64,
    /// The target messages, in order (a long signal is split into several).
    pub posted: Vec<PostedMessage>,
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub run_at: Timestamp,
    #[serde(with = "time::serde::rfc3339::option")]
    pub locked_until: Option<Timestamp>,
    /// When a worker first started posting this mirror, recorded before its first post. A
    /// worker that finds it set before the mirror is complete knows an earlier attempt may have
    /// reached Discord without its answer being recorded, and looks before posting again.
    #[serde(with = "time::serde::rfc3339::option")]
    pub tried_at: Option<Timestamp>,
    /// Digests of the contents posts were attempted with (every version tried), recorded with
    /// `tried_at`: how that look recognises what an earlier attempt posted.
    pub tried: Vec<String>,
    pub last_error: Option<String>,
}

impl MirrorJob {
    /// The job of a new signal: due now, nothing posted.
    pub fn new(signal: SignalId, relay: RelayId, position: MessageId, now: Timestamp) -> Self {
        MirrorJob {
            signal,
            relay,
            position,
            state: JobState::Pending,
            wanted: 1,
            mirrored: 0,
            posted: Vec::new(),
            attempts: 0,
            run_at: now,
            locked_until: None,
            tried_at: None,
            tried: Vec::new(),
            last_error: None,
        }
    }

    /// Whether `claimed` (this job as a worker claimed it) still holds the lease.
    pub fn leased_as(&self, claimed: &MirrorJob) -> bool {
        self.state == JobState::Pending && self.locked_until == claimed.locked_until
    }

    /// The signal changed to `version`: the target must catch up, now unless it was due earlier.
    pub fn want(&mut self, version: i64, now: Timestamp) {
        if self.state != JobState::Pending {
            self.attempts = 0;
            self.last_error = None;
        }
        self.state = JobState::Pending;
        self.wanted = version;
        self.run_at = self.run_at.min(now);
    }

    /// Records an attempt about to post contents with `digests` (see `tried`).
    pub fn note_attempt(&mut self, digests: &[String], now: Timestamp) {
        self.tried_at.get_or_insert(now);
        for d in digests {
            if !self.tried.contains(d) {
                self.tried.push(d.clone());
            }
        }
    }

    /// Whether nothing of this mirror is in its target yet.
    pub fn unposted(&self) -> bool {
        self.mirrored == 0 && self.posted.is_empty()
    }

    /// The claim rule every repository applies, once: given the pending jobs ordered by
    /// (relay, position), the indices of those to hand out at `now`, at most `limit`. A job is
    /// handed out when it is due and its lease is free, unless an earlier job of its relay that
    /// has posted nothing is not handed out with it (not due yet, or leased to another worker):
    /// that one must be posted first.
    pub fn claimable(pending: &[MirrorJob], now: Timestamp, limit: usize) -> Vec<usize> {
        let mut picked = Vec::new();
        let mut blocked: Option<RelayId> = None;
        for (i, job) in pending.iter().enumerate() {
            if picked.len() == limit {
                break;
            }
            if blocked == Some(job.relay) {
                continue;
            }
            if job.run_at <= now && job.locked_until.is_none_or(|l| l <= now) {
                picked.push(i);
            } else if job.unposted() {
                blocked = Some(job.relay);
            }
        }
        picked
    }

    /// When [`MirrorJob::claimable`] will next hand something out, given the same pending jobs:
    /// the earliest due time (or lease end) among each relay's jobs up to its first job that
    /// has posted nothing, since nothing after that one may go before it.
    pub fn next_due(pending: &[MirrorJob]) -> Option<Timestamp> {
        let mut next: Option<Timestamp> = None;
        let mut blocked: Option<RelayId> = None;
        for job in pending {
            if blocked == Some(job.relay) {
                continue;
            }
            let ready = job.locked_until.map_or(job.run_at, |l| l.max(job.run_at));
            next = Some(next.map_or(ready, |n| n.min(ready)));
            if job.unposted() {
                blocked = Some(job.relay);
            }
        }
        next
    }
}

#[cfg(test)]
mod tests;
