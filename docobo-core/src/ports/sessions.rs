//! Dashboard sessions, stored so that they can be revoked.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{Session, Timestamp, UserId};

/// Dashboard sessions.
#[async_trait]
pub trait SessionRepo: Send + Sync {
    /// Stores a new session. MUST refuse an id already stored with `StoreError::AlreadyExists`.
    async fn put_session(&self, session: &Session) -> Result<(), StoreError>;
    /// The session with this id, if it exists and has not expired at `now`.
    async fn session(&self, id: &str, now: Timestamp) -> Result<Option<Session>, StoreError>;
    /// Ends one session (logging out); `false` when there was none.
    async fn delete_session(&self, id: &str) -> Result<bool, StoreError>;
    /// Ends every session of `user` ("log out everywhere", an operator removed); how many.
    async fn delete_sessions_of(&self, user: UserId) -> Result<usize, StoreError>;
}
