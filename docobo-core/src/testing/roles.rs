//! A fake Discord, as far as roles go: members, their roles, injected failures and a call log.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::domain::{GuildId, RoleId, UserId};
use crate::ports::{GatewayError, Manageable, RoleGateway};

/// One call the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    MemberRoles { guild: GuildId, user: UserId },
    AddRole { guild: GuildId, user: UserId, role: RoleId, reason: String },
    RemoveRole { guild: GuildId, user: UserId, role: RoleId, reason: String },
    BotCanManage { guild: GuildId, role: RoleId },
}

#[derive(Debug, Default)]
struct State {
    members: BTreeMap<(GuildId, UserId), BTreeSet<RoleId>>,
    /// Roles the bot may not hand out, with Discord's reason.
    forbidden: BTreeMap<(GuildId, RoleId), String>,
    /// Errors returned by the next calls, one per call, before any real work.
    failures: VecDeque<GatewayError>,
    calls: Vec<Call>,
}

/// A [`RoleGateway`] that keeps guild membership and roles in memory.
#[derive(Debug, Default)]
pub struct FakeRoles(Mutex<State>);

impl FakeRoles {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `user` in `guild` with no roles (keeping any they have).
    pub fn join(&self, guild: GuildId, user: UserId) {
        lock(&self.0).members.entry((guild, user)).or_default();
    }

    /// Removes `user` from `guild`; Discord drops their roles with them.
    pub fn leave(&self, guild: GuildId, user: UserId) {
        lock(&self.0).members.remove(&(guild, user));
    }

    /// The member's roles, or `None` when they are not in the guild.
    pub fn roles(&self, guild: GuildId, user: UserId) -> Option<BTreeSet<RoleId>> {
        lock(&self.0).members.get(&(guild, user)).cloned()
    }

    /// Changes a member's roles behind Docobo's back (an admin editing by hand).
    pub fn set_roles(&self, guild: GuildId, user: UserId, roles: impl IntoIterator<Item = RoleId>) {
        lock(&self.0).members.insert((guild, user), roles.into_iter().collect());
    }

    /// Makes adding or removing `role` fail with 403 and `why`.
    pub fn forbid(&self, guild: GuildId, role: RoleId, why: impl Into<String>) {
        lock(&self.0).forbidden.insert((guild, role), why.into());
    }

    /// The next call (of any kind) fails with `error`; queued errors are used in order.
    pub fn fail_next(&self, error: GatewayError) {
        lock(&self.0).failures.push_back(error);
    }

    pub fn calls(&self) -> Vec<Call> {
        lock(&self.0).calls.clone()
    }

    /// How many role changes (adds and removes) were requested.
    pub fn writes(&self) -> usize {
        lock(&self.0)
            .calls
            .iter()
            .filter(|c| matches!(c, Call::AddRole { .. } | Call::RemoveRole { .. }))
            .count()
    }

    /// A role change: refused for a forbidden role or an absent member, else `edit` applies.
    fn change(
        &self,
        call: Call,
        edit: impl FnOnce(&mut BTreeSet<RoleId>) -> bool,
    ) -> Result<(), GatewayError> {
        let (Call::AddRole { guild, user, role, .. } | Call::RemoveRole { guild, user, role, .. }) = call
        else {
            unreachable!("only role changes")
        };
        let mut state = self.enter(call)?;
        if let Some(why) = state.forbidden.get(&(guild, role)) {
            return Err(GatewayError::Forbidden { why: why.clone() });
        }
        edit(state.members.get_mut(&(guild, user)).ok_or(GatewayError::MemberGone)?);
        Ok(())
    }

    fn enter(&self, call: Call) -> Result<std::sync::MutexGuard<'_, State>, GatewayError> {
        let mut state = lock(&self.0);
        state.calls.push(call);
        match state.failures.pop_front() {
            Some(e) => Err(e),
            None => Ok(state),
        }
    }
}

#[async_trait]
impl RoleGateway for FakeRoles {
    async fn member_roles(&self, guild: GuildId, user: UserId) -> Result<BTreeSet<RoleId>, GatewayError> {
        let state = self.enter(Call::MemberRoles { guild, user })?;
        state.members.get(&(guild, user)).cloned().ok_or(GatewayError::MemberGone)
    }

    async fn add_role(
        &self,
        guild: GuildId,
        user: UserId,
        role: RoleId,
        reason: &str,
    ) -> Result<(), GatewayError> {
        self.change(Call::AddRole { guild, user, role, reason: reason.to_owned() }, |roles| {
            roles.insert(role)
        })
    }

    async fn remove_role(
        &self,
        guild: GuildId,
        user: UserId,
        role: RoleId,
        reason: &str,
    ) -> Result<(), GatewayError> {
        self.change(Call::RemoveRole { guild, user, role, reason: reason.to_owned() }, |roles| {
            roles.remove(&role)
        })
    }

    async fn bot_can_manage(&self, guild: GuildId, role: RoleId) -> Result<Manageable, GatewayError> {
        let state = self.enter(Call::BotCanManage { guild, role })?;
        Ok(match state.forbidden.get(&(guild, role)) {
            Some(why) => Manageable::No { why: why.clone(), fix: "give the bot a higher role".to_owned() },
            None => Manageable::Yes,
        })
    }
}
