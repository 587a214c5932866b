//! What a relay needs from its channels, checked the way Discord computes permissions: the
//! guild's `@everyone` role and the bot's roles (Administrator grants everything), then the
//! channel's overwrites — `@everyone`'s, the roles' (denies, then allows), the member's.
//! [`DiscordRoles::relay_problems`] names each missing permission with its fix, and a target
//! channel every member can read (paid content leaking to those who did not pay).

use docobo_core::domain::{ChannelId, GuildId, Relay, Via};
use docobo_core::ports::GatewayError;
use serenity::all::Permissions;
use serenity::http::{LightMethod, Request, Route};

use super::DiscordRoles;

#[derive(serde::Deserialize)]
struct Overwrite {
    id: String,
    /// 0: a role, 1: a member.
    #[serde(rename = "type")]
    kind: u8,
    allow: String,
    deny: String,
}

#[derive(serde::Deserialize)]
struct Channel {
    #[serde(default)]
    permission_overwrites: Vec<Overwrite>,
}

fn bits(raw: &str) -> Permissions {
    Permissions::from_bits_truncate(raw.parse().unwrap_or(0))
}

/// Who can do what in one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelAccess {
    pub bot: Permissions,
    /// Whether every member (`@everyone`) can see the channel.
    pub everyone_views: bool,
}

/// The permissions a relay needs in its source channel.
const SOURCE_NEEDS: Permissions = Permissions::VIEW_CHANNEL.union(Permissions::READ_MESSAGE_HISTORY);

/// The permissions a relay needs in its target channel: history is read after a crash to find
/// what an interrupted attempt posted.
fn target_needs(via: Via) -> Permissions {
    let base = Permissions::VIEW_CHANNEL.union(Permissions::READ_MESSAGE_HISTORY);
    match via {
        Via::Webhook => base | Permissions::MANAGE_WEBHOOKS,
        Via::Bot => base | Permissions::SEND_MESSAGES | Permissions::EMBED_LINKS | Permissions::ATTACH_FILES,
    }
}

impl DiscordRoles {
    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        guild: GuildId,
        what: &str,
        route: Route<'_>,
    ) -> Result<T, GatewayError> {
        let body = self.raw(guild, "channel", what, Request::new(route, LightMethod::Get)).await?;
        serde_json::from_slice(&body).map_err(|e| GatewayError::Retryable {
            after: None,
            why: format!("{what}: Discord's answer was unexpected ({e})"),
        })
    }

    /// The bot's permissions in `channel` of `guild`, and whether `@everyone` can see it.
    pub async fn channel_access(
        &self,
        guild: GuildId,
        channel: ChannelId,
    ) -> Result<ChannelAccess, GatewayError> {
        #[derive(serde::Deserialize)]
        struct Role {
            id: String,
            permissions: String,
        }
        #[derive(serde::Deserialize)]
        struct Member {
            roles: Vec<String>,
        }
        let bot = self.bot_user(guild).await?;
        let found: Channel = self
            .read(guild, "reading the channel", Route::Channel { channel_id: channel.get().into() })
            .await?;
        let roles: Vec<Role> = self
            .read(guild, "reading the server's roles", Route::GuildRoles { guild_id: guild.get().into() })
            .await?;
        let me: Member = self
            .read(
                guild,
                "reading the bot's member",
                Route::GuildMember { guild_id: guild.get().into(), user_id: bot },
            )
            .await?;
        let everyone_id = guild.to_string();
        let role_bits = |id: &str| {
            roles.iter().find(|r| r.id == id).map_or(Permissions::empty(), |r| bits(&r.permissions))
        };
        let everyone = role_bits(&everyone_id);
        let base = me.roles.iter().fold(everyone, |acc, r| acc | role_bits(r));
        let apply = |mut p: Permissions, overwrites: &mut dyn Iterator<Item = &Overwrite>| {
            let (mut allow, mut deny) = (Permissions::empty(), Permissions::empty());
            for o in overwrites {
                allow |= bits(&o.allow);
                deny |= bits(&o.deny);
            }
            p.remove(deny);
            p | allow
        };
        let of_everyone =
            |p| apply(p, &mut found.permission_overwrites.iter().filter(|o| o.id == everyone_id));
        let bot_bits = if base.contains(Permissions::ADMINISTRATOR) {
            Permissions::all()
        } else {
            let p = of_everyone(base);
            let p = apply(
                p,
                &mut found.permission_overwrites.iter().filter(|o| o.kind == 0 && me.roles.contains(&o.id)),
            );
            apply(
                p,
                &mut found.permission_overwrites.iter().filter(|o| o.kind == 1 && o.id == bot.to_string()),
            )
        };
        let everyone_views = everyone.contains(Permissions::ADMINISTRATOR)
            || of_everyone(everyone).contains(Permissions::VIEW_CHANNEL);
        Ok(ChannelAccess { bot: bot_bits, everyone_views })
    }

    /// Whether `user` may run `guild` from the dashboard: its owner, or a member holding Manage
    /// Server or Administrator (what Discord requires to change the server's settings).
    pub async fn manages_guild(
        &self,
        guild: GuildId,
        user: docobo_core::domain::UserId,
    ) -> Result<bool, GatewayError> {
        #[derive(serde::Deserialize)]
        struct Facts {
            owner_id: String,
            roles: Vec<RoleBits>,
        }
        #[derive(serde::Deserialize)]
        struct RoleBits {
            id: String,
            permissions: String,
        }
        #[derive(serde::Deserialize)]
        struct Member {
            roles: Vec<String>,
        }
        let facts: Facts =
            self.read(guild, "reading the server", Route::Guild { guild_id: guild.get().into() }).await?;
        if facts.owner_id == user.to_string() {
            return Ok(true);
        }
        let member = Route::GuildMember { guild_id: guild.get().into(), user_id: user.get().into() };
        let me: Member = match self.read(guild, "reading the member", member).await {
            Ok(me) => me,
            Err(GatewayError::MemberGone) => return Ok(false),
            Err(e) => return Err(e),
        };
        let everyone = guild.to_string();
        let held = facts.roles.iter().filter(|r| r.id == everyone || me.roles.contains(&r.id));
        let bits = held.fold(Permissions::empty(), |acc, r| acc | bits(&r.permissions));
        Ok(bits.intersects(Permissions::MANAGE_GUILD | Permissions::ADMINISTRATOR))
    }

    /// What stops `relay` from working, or leaks through it, each with its fix; empty when
    /// nothing does.
    pub async fn relay_problems(&self, relay: &Relay) -> Result<Vec<String>, GatewayError> {
        let mut problems = Vec::new();
        let missing = |needed: Permissions, have: Permissions| needed - have;
        let source = self.channel_access(relay.source_guild, relay.source_channel).await?;
        let lacking = missing(SOURCE_NEEDS, source.bot);
        if !lacking.is_empty() {
            problems.push(format!(
                "the bot lacks {lacking} in the source channel {}: allow it there (channel settings → Permissions)",
                relay.source_channel
            ));
        }
        let target = self.channel_access(relay.target_guild, relay.target_channel).await?;
        let lacking = missing(target_needs(relay.via), target.bot);
        if !lacking.is_empty() {
            problems.push(format!(
                "the bot lacks {lacking} in the target channel {}: allow it there (channel settings → Permissions)",
                relay.target_channel
            ));
        }
        if target.everyone_views {
            problems.push(format!(
                "everyone in server {} can read the target channel {}, so paid signals leak to members who did not \
                 pay: deny View Channel to @everyone there and allow it to the paid role",
                relay.target_guild, relay.target_channel
            ));
        }
        Ok(problems)
    }
}
