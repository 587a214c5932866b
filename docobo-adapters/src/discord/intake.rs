//! The relay's intake: MESSAGE_CREATE, MESSAGE_UPDATE, MESSAGE_DELETE and MESSAGE_DELETE_BULK
//! from source channels become the core's `SourceEvent`s, recorded with
//! `record_source_event` (the signal and its mirror jobs in one commit).
//!
//! - Only channels that are a relay's source count; the set is read from the repository at most
//!   every [`SOURCES_TTL`], so a relay added with the CLI starts relaying within seconds.
//! - Attachments are downloaded here, once, while Discord's signed URL is fresh.
//! - User mentions become `@name` (the gateway sends the mentioned users); role and channel
//!   mentions become plain text in the core.
//! - Only rich embeds are kept: link unfurls are Discord's, not the author's, and change without
//!   an edit.
//! - New messages of one channel are recorded in id (posting) order. serenity runs each event
//!   handler in a task of its own, and tokio may run the newest task first, so a burst can reach
//!   this code out of order; a message with an attachment to download would also be overtaken by
//!   the text after it. Each MESSAGE_CREATE takes a place in its channel's line as its task
//!   starts, waits [`REORDER_WINDOW`] for the tasks of messages received with it to take theirs,
//!   and records once every earlier message in the line has (at most [`TURN_TIMEOUT`], so one
//!   stuck download cannot hold the channel). The mirror jobs' claim rule keeps that order in
//!   every target. The window is the price of order: it is added to every create's latency.
//! - After a connection that could not resume (`READY`), each source channel is read from its
//!   newest recorded message onwards (`GET /channels/{id}/messages?after=`), so creates missed
//!   while disconnected are relayed. Edits and deletes missed in that gap are not recovered.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use docobo_core::domain::{
    Attachment, Author, ChannelId, Embed, GuildId, MessageId, SourceEdit, SourceEvent, SourceMessage,
};
use docobo_core::ports::{Clock, SubscriptionRepo};
use docobo_core::service::record_source_event;
use serenity::all::{Message, MessageUpdateEvent, User};
use serenity::http::{Http, MessagePagination};
use tokio::sync::Mutex;

use super::attachments::AttachmentStore;

/// How long the set of source channels is trusted before it is read again.
pub const SOURCES_TTL: Duration = Duration::from_secs(5);

/// Longest a new message waits for the ones posted before it to be recorded.
pub const TURN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a new message waits for the handler tasks of messages received just before it to
/// start.
pub const REORDER_WINDOW: Duration = Duration::from_millis(15);

/// Messages being taken in, by channel, in id order.
#[derive(Debug, Default)]
struct Line {
    waiting: std::sync::Mutex<BTreeMap<u64, BTreeSet<u64>>>,
    moved: tokio::sync::Notify,
}

/// A message's place in its channel's line; leaving it (by drop) lets the next one go.
struct Place<'a> {
    line: &'a Line,
    channel: u64,
    id: u64,
}

impl Line {
    fn join(&self, channel: u64, id: u64) -> Place<'_> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(channel)
            .or_default()
            .insert(id);
        Place { line: self, channel, id }
    }
}

impl Place<'_> {
    /// Waits [`REORDER_WINDOW`], then until no earlier message of the channel is still being
    /// taken in.
    async fn turn(&self) {
        tokio::time::sleep(REORDER_WINDOW).await;
        let first = || {
            let waiting = self.line.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            waiting.get(&self.channel).and_then(|ids| ids.first().copied()) == Some(self.id)
        };
        let _ = tokio::time::timeout(TURN_TIMEOUT, async {
            loop {
                let moved = self.line.moved.notified();
                if first() {
                    return;
                }
                moved.await;
            }
        })
        .await;
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut waiting = self.line.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(ids) = waiting.get_mut(&self.channel) {
            ids.remove(&self.id);
            if ids.is_empty() {
                waiting.remove(&self.channel);
            }
        }
        self.line.moved.notify_waiters();
    }
}

/// Turns source-channel events into signals.
pub struct RelayIntake {
    repo: Arc<dyn SubscriptionRepo>,
    clock: Arc<dyn Clock>,
    store: AttachmentStore,
    line: Line,
    /// Source channels and their guilds, and when they were read.
    sources: Mutex<(Option<Instant>, BTreeMap<ChannelId, GuildId>)>,
}

impl std::fmt::Debug for RelayIntake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayIntake").finish_non_exhaustive()
    }
}

fn at(ts: &serenity::all::Timestamp) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(&ts.to_string(), &time::format_description::well_known::Rfc3339).ok()
}

fn author(user: &User, nick: Option<&str>) -> Author {
    let name = nick.or(user.global_name.as_deref()).unwrap_or(&user.name).to_owned();
    Author { name, avatar_url: user.avatar_url() }
}

/// `content` with `<@id>` of the mentioned users as `@name`.
fn named_mentions(content: &str, mentions: &[User]) -> String {
    mentions.iter().fold(content.to_owned(), |text, user| {
        let name = format!("@{}", user.global_name.as_deref().unwrap_or(&user.name));
        text.replace(&format!("<@{}>", user.id), &name).replace(&format!("<@!{}>", user.id), &name)
    })
}

/// The rich embeds, each with the characters Discord counts towards its 6,000 per message.
fn rich_embeds(embeds: &[serenity::all::Embed]) -> Vec<Embed> {
    embeds
        .iter()
        .filter(|e| e.kind.as_deref().is_none_or(|k| k == "rich"))
        .filter_map(|e| {
            let len = |s: &Option<String>| s.as_deref().map_or(0, |s| s.chars().count());
            let chars = len(&e.title)
                + len(&e.description)
                + e.fields.iter().map(|f| f.name.chars().count() + f.value.chars().count()).sum::<usize>()
                + e.footer.as_ref().map_or(0, |f| f.text.chars().count())
                + e.author.as_ref().map_or(0, |a| a.name.chars().count());
            Some(Embed { json: serde_json::to_string(e).ok()?, chars })
        })
        .collect()
}

impl RelayIntake {
    pub fn new(repo: Arc<dyn SubscriptionRepo>, clock: Arc<dyn Clock>, store: AttachmentStore) -> Self {
        RelayIntake {
            repo,
            clock,
            store,
            line: Line::default(),
            sources: Mutex::new((None, BTreeMap::new())),
        }
    }

    /// The source channels, read again when older than [`SOURCES_TTL`], or when there were
    /// none (without relays no message events are requested, so that costs nothing).
    async fn sources(&self) -> BTreeMap<ChannelId, GuildId> {
        let mut cached = self.sources.lock().await;
        if cached.1.is_empty() || cached.0.is_none_or(|read| read.elapsed() >= SOURCES_TTL) {
            match self.repo.relays().await {
                Ok(relays) => {
                    *cached = (
                        Some(Instant::now()),
                        relays.iter().map(|r| (r.source_channel, r.source_guild)).collect(),
                    )
                }
                Err(e) => tracing::warn!(error = %e, "relays not read; using the last known source channels"),
            }
        }
        cached.1.clone()
    }

    /// Whether any relay is configured.
    pub async fn any(&self) -> bool {
        !self.sources().await.is_empty()
    }

    async fn is_source(&self, channel: u64) -> Option<(ChannelId, GuildId)> {
        let channel = ChannelId::new(channel).ok()?;
        self.sources().await.get(&channel).map(|guild| (channel, *guild))
    }

    /// The attachments, each downloaded into the store (a failed download is linked instead).
    async fn attachments(&self, attachments: &[serenity::all::Attachment]) -> Vec<Attachment> {
        let mut kept = Vec::with_capacity(attachments.len());
        for a in attachments {
            let stored = match self.store.fetch(&a.url, u64::from(a.size)).await {
                Ok(digest) => Some(digest),
                Err(why) => {
                    tracing::warn!(attachment = %a.id, %why, "attachment not stored; it will be linked");
                    None
                }
            };
            kept.push(Attachment {
                id: a.id.to_string(),
                name: a.filename.clone(),
                content_type: a.content_type.clone(),
                size: u64::from(a.size),
                url: a.url.split('?').next().unwrap_or_default().to_owned(),
                stored,
            });
        }
        kept
    }

    async fn record(&self, event: SourceEvent) {
        let message = event.message();
        match record_source_event(&*self.repo, &*self.clock, &event).await {
            Ok(true) => tracing::debug!(%message, "signal recorded"),
            Ok(false) => {}
            Err(e) => tracing::warn!(%message, error = %e, "signal not recorded"),
        }
    }

    /// `m` as a signal; REST reads carry no guild id, so the relay's source guild is used.
    async fn source_message(
        &self,
        (channel, guild): (ChannelId, GuildId),
        m: &Message,
    ) -> Option<SourceMessage> {
        Some(SourceMessage {
            guild,
            channel,
            id: MessageId::new(m.id.get()).ok()?,
            author: author(&m.author, m.member.as_ref().and_then(|p| p.nick.as_deref())),
            content: named_mentions(&m.content, &m.mentions),
            embeds: rich_embeds(&m.embeds),
            attachments: self.attachments(&m.attachments).await,
            edited_at: m.edited_timestamp.as_ref().and_then(at),
        })
    }

    /// MESSAGE_CREATE.
    pub async fn created(&self, m: &Message) {
        let place = self.line.join(m.channel_id.get(), m.id.get());
        let Some(source) = self.is_source(m.channel_id.get()).await else { return };
        if let Some(message) = self.source_message(source, m).await {
            place.turn().await;
            self.record(SourceEvent::Posted(message)).await;
        }
    }

    /// MESSAGE_UPDATE.
    pub async fn updated(&self, e: &MessageUpdateEvent) {
        let Some((channel, guild)) = self.is_source(e.channel_id.get()).await else { return };
        let Ok(id) = MessageId::new(e.id.get()) else { return };
        let attachments = match &e.attachments {
            Some(a) => Some(self.attachments(a).await),
            None => None,
        };
        let mentions = e.mentions.clone().unwrap_or_default();
        let nick = e.member.as_ref().and_then(|m| m.as_ref()).and_then(|p| p.nick.clone());
        self.record(SourceEvent::Edited(SourceEdit {
            guild,
            channel,
            id,
            author: e.author.as_ref().map(|u| author(u, nick.as_deref())),
            content: e.content.as_deref().map(|c| named_mentions(c, &mentions)),
            embeds: e.embeds.as_deref().map(rich_embeds),
            attachments,
            edited_at: e.edited_timestamp.as_ref().and_then(at),
        }))
        .await;
    }

    /// MESSAGE_DELETE and each message of MESSAGE_DELETE_BULK.
    pub async fn deleted(&self, channel: u64, message: u64) {
        let Some((channel, guild)) = self.is_source(channel).await else { return };
        let Ok(id) = MessageId::new(message) else { return };
        self.record(SourceEvent::Deleted { guild, channel, id }).await;
    }

    /// After READY: relays what each source channel gained since its newest recorded signal.
    pub async fn catch_up(&self, http: &Http) {
        for (channel, guild) in self.sources().await {
            let last = match self.repo.last_signal(channel).await {
                Ok(Some(last)) => last,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(%channel, error = %e, "catch-up skipped");
                    continue;
                }
            };
            let after = MessagePagination::After(last.get().into());
            let mut missed = match http.get_messages(channel.get().into(), Some(after), Some(100)).await {
                Ok(missed) => missed,
                Err(e) => {
                    tracing::warn!(%channel, error = %e, "catch-up read failed");
                    continue;
                }
            };
            missed.sort_by_key(|m| m.id);
            if !missed.is_empty() {
                tracing::info!(%channel, messages = missed.len(), "relaying messages missed while disconnected");
            }
            for m in &missed {
                if let Some(message) = self.source_message((channel, guild), m).await {
                    self.record(SourceEvent::Posted(message)).await;
                }
            }
        }
    }
}
