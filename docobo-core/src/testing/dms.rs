//! A fake Discord, as far as direct messages go: who got what, users with DMs closed, and
//! injected failures.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::domain::UserId;
use crate::ports::{DirectMessage, DirectMessages, DmError};

#[derive(Debug, Default)]
struct State {
    sent: Vec<(UserId, DirectMessage)>,
    closed: BTreeSet<UserId>,
    failures: VecDeque<DmError>,
    attempts: usize,
}

/// A [`DirectMessages`] that keeps every message in memory.
#[derive(Debug, Default)]
pub struct FakeDms(Mutex<State>);

impl FakeDms {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message delivered, in order.
    pub fn sent(&self) -> Vec<(UserId, DirectMessage)> {
        lock(&self.0).sent.clone()
    }

    /// Every send attempted, delivered or not.
    pub fn attempts(&self) -> usize {
        lock(&self.0).attempts
    }

    /// `user` has DMs closed: every send to them is refused with 50007.
    pub fn close_dms(&self, user: UserId) {
        lock(&self.0).closed.insert(user);
    }

    /// The next send fails with `error`, before anything else happens.
    pub fn fail_next(&self, error: DmError) {
        lock(&self.0).failures.push_back(error);
    }
}

#[async_trait]
impl DirectMessages for FakeDms {
    async fn send_dm(&self, user: UserId, message: &DirectMessage) -> Result<(), DmError> {
        let mut state = lock(&self.0);
        state.attempts += 1;
        if let Some(error) = state.failures.pop_front() {
            return Err(error);
        }
        if state.closed.contains(&user) {
            return Err(DmError::Unreachable);
        }
        state.sent.push((user, message.clone()));
        Ok(())
    }
}
