//! The `RoleGateway` port, the role client: reading and changing a member's roles on Discord over
//! its REST API. (The name is DESIGN's; elsewhere in Docobo "gateway" alone means Discord's websocket.)

use std::collections::BTreeSet;

use async_trait::async_trait;
use time::Duration;

use crate::domain::{GuildId, RoleId, UserId};

/// Why a role call failed, classified for what the worker does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// Rate limited (429), a 5xx, a timeout or a dropped connection: try again later, not before
    /// `after` when Discord said so.
    #[error("Discord is unavailable for now: {why}")]
    Retryable { after: Option<Duration>, why: String },
    /// The user is not in the guild (404 Unknown Member): nothing to do until they rejoin.
    #[error("the member is not in the server")]
    MemberGone,
    /// The bot may not do this (403: missing Manage Roles, role above the bot's highest role,
    /// managed role). Needs a person; `why` says what to fix.
    #[error("Discord refused: {why}")]
    Forbidden { why: String },
    /// The guild or role does not exist (any more).
    #[error("not found on Discord: {what}")]
    NotFound { what: String },
}

/// Whether the bot can hand out a role, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manageable {
    Yes,
    /// `why` it cannot, and how an owner can `fix` it; `/setup` shows both.
    No {
        why: String,
        fix: String,
    },
}

/// Discord, as far as roles go. Implemented over serenity in `docobo-adapters`; in memory in
/// `docobo_core::testing`.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait RoleGateway: Send + Sync {
    /// The member's current role ids.
    ///
    /// MUST return [`GatewayError::MemberGone`] when the user is not in the guild, and MUST read
    /// Discord's current state (no cache that a manual change could have made stale).
    async fn member_roles(&self, guild: GuildId, user: UserId) -> Result<BTreeSet<RoleId>, GatewayError>;

    /// Adds a role, recording `reason` in the guild's audit log.
    ///
    /// MUST be idempotent (adding a role the member has succeeds), MUST give up within a bounded
    /// time and report that as `Retryable`, and MUST NOT retry internally without bound.
    async fn add_role(
        &self,
        guild: GuildId,
        user: UserId,
        role: RoleId,
        reason: &str,
    ) -> Result<(), GatewayError>;

    /// Removes a role, recording `reason` in the guild's audit log.
    ///
    /// MUST be idempotent (removing a role the member lacks succeeds). A member who left MAY be
    /// reported as `MemberGone`; callers treat that as done.
    async fn remove_role(
        &self,
        guild: GuildId,
        user: UserId,
        role: RoleId,
        reason: &str,
    ) -> Result<(), GatewayError>;

    /// Whether the bot can manage `role`: it exists, is not @everyone, not managed by an
    /// integration, sits below the bot's highest role, and the bot has Manage Roles.
    ///
    /// MUST answer `Manageable::No` with a reason an owner can act on rather than an error when
    /// the answer is simply "no".
    async fn bot_can_manage(&self, guild: GuildId, role: RoleId) -> Result<Manageable, GatewayError>;

    /// Whether `user`, who holds `roles` (as Discord reported them in a signed interaction),
    /// could assign `role` on Discord themselves: the guild's owner can; anyone else needs
    /// Manage Roles (or Administrator) and a highest role above `role`. Putting a role on sale
    /// lets its seller obtain it, so Docobo must never let anyone sell a role Discord would not
    /// let them assign.
    ///
    /// MUST answer `Manageable::No` when it cannot tell, as this default does.
    async fn member_can_assign(
        &self,
        guild: GuildId,
        user: UserId,
        roles: &BTreeSet<RoleId>,
        role: RoleId,
    ) -> Result<Manageable, GatewayError> {
        let _ = (guild, user, roles, role);
        Ok(Manageable::No {
            why: "this Docobo cannot check who may assign roles".to_owned(),
            fix: "ask whoever runs Docobo to configure Discord".to_owned(),
        })
    }
}
