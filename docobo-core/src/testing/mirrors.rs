//! A fake Discord, as far as the relay's target channels go: the messages in each channel,
//! injected failures, and answers that get lost after Discord acted (a worker killed between
//! Discord's answer and its commit).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::lock;
use crate::domain::{Author, ChannelId, MessageId, PostedMessage, Relay, Timestamp, Via};
use crate::ports::{Clock, MirrorError, MirrorGateway, MirrorPart};

/// A message in a target channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetMessage {
    pub id: MessageId,
    pub author: Author,
    pub content: String,
    pub embeds: Vec<String>,
    /// File names uploaded.
    pub files: Vec<String>,
    pub webhook: Option<u64>,
    pub nonce: String,
    pub posted_at: Timestamp,
    pub edits: u32,
}

#[derive(Debug, Default)]
struct State {
    channels: BTreeMap<ChannelId, Vec<TargetMessage>>,
    failures: VecDeque<MirrorError>,
    /// Requests that act but answer with an error, as a connection cut after Discord's answer.
    lose_answers: usize,
    next_id: u64,
    requests: usize,
}

/// A [`MirrorGateway`] that keeps every target channel in memory; bot messages honour the
/// nonce as Discord does, webhook messages do not.
pub struct FakeMirrors {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for FakeMirrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMirrors").finish_non_exhaustive()
    }
}

/// The webhook the fake posts through in every channel.
pub const FAKE_WEBHOOK: u64 = 77;

impl FakeMirrors {
    /// Messages are stamped with `clock`'s time.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        FakeMirrors { state: Mutex::new(State { next_id: 5_000, ..State::default() }), clock }
    }

    /// The messages in `channel`, oldest first.
    pub fn messages(&self, channel: ChannelId) -> Vec<TargetMessage> {
        lock(&self.state).channels.get(&channel).cloned().unwrap_or_default()
    }

    /// Every request made, answered or not.
    pub fn requests(&self) -> usize {
        lock(&self.state).requests
    }

    /// The next request fails with `error` before acting.
    pub fn fail_next(&self, error: MirrorError) {
        lock(&self.state).failures.push_back(error);
    }

    /// The next `n` requests act, then answer with a retryable error.
    pub fn lose_answers(&self, n: usize) {
        lock(&self.state).lose_answers = n;
    }

    fn begin(&self) -> Result<(), MirrorError> {
        let mut state = lock(&self.state);
        state.requests += 1;
        state.failures.pop_front().map_or(Ok(()), Err)
    }

    fn answer<T>(&self, value: T) -> Result<T, MirrorError> {
        let mut state = lock(&self.state);
        if state.lose_answers > 0 {
            state.lose_answers -= 1;
            return Err(MirrorError::Retryable { after: None, why: "the connection was cut".to_owned() });
        }
        Ok(value)
    }
}

#[async_trait]
impl MirrorGateway for FakeMirrors {
    async fn post(
        &self,
        relay: &Relay,
        author: &Author,
        part: &MirrorPart,
        nonce: &str,
    ) -> Result<PostedMessage, MirrorError> {
        self.begin()?;
        let now = self.clock.now();
        let posted = {
            let mut state = lock(&self.state);
            state.next_id += 1;
            let id =
                MessageId::new(state.next_id).map_err(|e| MirrorError::Refused { why: e.to_string() })?;
            let webhook = (relay.via == Via::Webhook).then_some(FAKE_WEBHOOK);
            let channel = state.channels.entry(relay.target_channel).or_default();
            let repeat =
                channel.iter().find(|m| webhook.is_none() && m.webhook.is_none() && m.nonce == nonce);
            match repeat {
                Some(first) => PostedMessage { id: first.id, webhook: None },
                None => {
                    channel.push(TargetMessage {
                        id,
                        author: if webhook.is_some() { author.clone() } else { Author::default() },
                        content: part.content.clone(),
                        embeds: part.embeds.clone(),
                        files: part.files.iter().map(|f| f.name.clone()).collect(),
                        webhook,
                        nonce: nonce.to_owned(),
                        posted_at: now,
                        edits: 0,
                    });
                    PostedMessage { id, webhook }
                }
            }
        };
        self.answer(posted)
    }

    async fn edit(&self, relay: &Relay, posted: PostedMessage, part: &MirrorPart) -> Result<(), MirrorError> {
        self.begin()?;
        {
            let mut state = lock(&self.state);
            let channel = state.channels.entry(relay.target_channel).or_default();
            let Some(m) = channel.iter_mut().find(|m| m.id == posted.id) else {
                return Err(MirrorError::Refused { why: "Unknown Message (10008)".to_owned() });
            };
            m.content = part.content.clone();
            m.embeds = part.embeds.clone();
            m.files = part.files.iter().map(|f| f.name.clone()).collect();
            m.edits += 1;
        }
        self.answer(())
    }

    async fn delete(&self, relay: &Relay, posted: PostedMessage) -> Result<(), MirrorError> {
        self.begin()?;
        if let Some(channel) = lock(&self.state).channels.get_mut(&relay.target_channel) {
            channel.retain(|m| m.id != posted.id);
        }
        self.answer(())
    }

    async fn posted_since(
        &self,
        relay: &Relay,
        since: Timestamp,
    ) -> Result<Vec<(PostedMessage, String)>, MirrorError> {
        self.begin()?;
        let state = lock(&self.state);
        let channel = state.channels.get(&relay.target_channel).map(Vec::as_slice).unwrap_or_default();
        Ok(channel
            .iter()
            .filter(|m| m.posted_at >= since)
            .map(|m| (PostedMessage { id: m.id, webhook: m.webhook }, m.content.clone()))
            .collect())
    }
}
