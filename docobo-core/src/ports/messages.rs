//! The `DirectMessages` port: sending a member a direct message on Discord (member notices).

use async_trait::async_trait;
use time::Duration;

use crate::domain::UserId;

/// One direct message: text, and optionally a link button and an image (a payment QR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectMessage {
    pub text: String,
    /// `(label, url)` of a link button.
    pub button: Option<(String, String)>,
    pub image: Option<String>,
    /// Unique per notice (at most 25 characters): Discord drops a second message with the same
    /// nonce sent shortly after the first (`enforce_nonce`), so a send repeated after a crash
    /// between Discord's answer and the store's record is not shown twice.
    pub nonce: String,
}

/// Why a direct message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DmError {
    /// Discord will not deliver to this user (50007: DMs closed, the bot blocked, no shared
    /// server, a bot account). Permanent: do not retry.
    #[error("Discord cannot send this user direct messages (50007)")]
    Unreachable,
    /// Rate limited, a 5xx, a timeout: try again later, not before `after` when Discord said so.
    #[error("Discord is unavailable for now: {why}")]
    Retryable { after: Option<Duration>, why: String },
    /// Refused for another reason (a bad token, an unknown user); `why` says what.
    #[error("Discord refused the message: {why}")]
    Refused { why: String },
}

/// Discord, as far as direct messages go. Implemented over Discord's REST API in
/// `docobo-adapters`; in memory in `docobo_core::testing`.
#[async_trait]
pub trait DirectMessages: Send + Sync {
    /// Sends `message` to `user` in a DM channel (opened once and reused).
    ///
    /// MUST send no mentions (`allowed_mentions` empty), MUST report 50007 as
    /// [`DmError::Unreachable`], and MUST give up within a bounded time.
    async fn send_dm(&self, user: UserId, message: &DirectMessage) -> Result<(), DmError>;
}
