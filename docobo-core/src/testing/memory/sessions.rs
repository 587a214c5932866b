//! Dashboard sessions of [`MemoryRepo`].

use async_trait::async_trait;

use super::{MemoryRepo, lock};
use crate::domain::{Session, Timestamp, UserId};
use crate::ports::{SessionRepo, StoreError};

#[async_trait]
impl SessionRepo for MemoryRepo {
    async fn put_session(&self, session: &Session) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        if state.sessions.contains_key(&session.id) {
            return Err(StoreError::AlreadyExists("the session".to_owned()));
        }
        state.sessions.insert(session.id.clone(), session.clone());
        Ok(())
    }

    async fn session(&self, id: &str, now: Timestamp) -> Result<Option<Session>, StoreError> {
        self.read(|s| s.sessions.get(id).filter(|s| s.expires_at > now).cloned())
    }

    async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.state).sessions.remove(id).is_some())
    }

    async fn delete_sessions_of(&self, user: UserId) -> Result<usize, StoreError> {
        let mut state = lock(&self.state);
        let before = state.sessions.len();
        state.sessions.retain(|_, s| s.user != user);
        Ok(before - state.sessions.len())
    }
}
