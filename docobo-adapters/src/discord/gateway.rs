//! The gateway transport: serenity's `Client` over a websocket, for what only the gateway tells —
//! a member joining (re-grant what they are entitled to) and the bot joining a server (register
//! it) — and for interactions when no HTTP endpoint is configured.
//!
//! Interactions go to the same [`Bot`] as `POST /interactions`; the answer is sent with the
//! interaction callback route and a deferred answer by editing the original response. The
//! client's `Http` is ours ([`super::rest_client`]): proxied base, serenity's rate limiter off.
//!
//! Intents: `GUILDS` and `GUILD_MEMBERS`, and with a relay ([`GatewayEvents::relay`])
//! `GUILD_MESSAGES` and `MESSAGE_CONTENT` for its source channels ([`super::intake`]).
//! `GUILD_MEMBERS` and `MESSAGE_CONTENT` are privileged: enable "Server Members Intent" (and
//! "Message Content Intent" for a relay) for the application in the Developer Portal, or Discord
//! closes the connection with 4014, which [`run`] reports as such.

use std::sync::Arc;

use async_trait::async_trait;
use docobo_core::domain::{GuildId, UserId};
use docobo_core::ports::{Clock, GatewayError, SubscriptionRepo};
use docobo_core::service::{on_member_join, register_guild};
use serenity::all::{
    ChannelId, ClientBuilder, Context, EventHandler, GatewayIntents, GuildId as SerenityGuildId, Interaction,
    Member, Message, MessageId, MessageUpdateEvent, Ready,
};

use super::bot::{Bot, follow_up};
use super::intake::RelayIntake;

/// The intents Docobo needs.
pub const INTENTS: GatewayIntents = GatewayIntents::GUILDS.union(GatewayIntents::GUILD_MEMBERS);
/// The intents a relay adds: message events, with their content.
pub const RELAY_INTENTS: GatewayIntents =
    GatewayIntents::GUILD_MESSAGES.union(GatewayIntents::MESSAGE_CONTENT);

/// Reacts to gateway events.
pub struct GatewayEvents {
    pub bot: Bot,
    pub repo: Arc<dyn SubscriptionRepo>,
    pub clock: Arc<dyn Clock>,
    /// The relay's intake: message events from source channels are recorded as signals. They
    /// are requested (with their content) only when a relay is configured as [`run`] connects.
    pub relay: Option<Arc<RelayIntake>>,
}

impl std::fmt::Debug for GatewayEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayEvents").field("bot", &self.bot).finish_non_exhaustive()
    }
}

#[async_trait]
impl EventHandler for GatewayEvents {
    async fn ready(&self, ctx: Context, ready: Ready) {
        tracing::info!(bot = %ready.user.name, guilds = ready.guilds.len(), "connected to the Discord gateway");
        if let Some(relay) = &self.relay {
            relay.catch_up(&ctx.http).await;
        }
    }

    async fn message(&self, _: Context, message: Message) {
        if let Some(relay) = &self.relay {
            relay.created(&message).await;
        }
    }

    async fn message_update(
        &self,
        _: Context,
        _: Option<Message>,
        _: Option<Message>,
        event: MessageUpdateEvent,
    ) {
        if let Some(relay) = &self.relay {
            relay.updated(&event).await;
        }
    }

    async fn message_delete(
        &self,
        _: Context,
        channel: ChannelId,
        message: MessageId,
        _: Option<SerenityGuildId>,
    ) {
        if let Some(relay) = &self.relay {
            relay.deleted(channel.get(), message.get()).await;
        }
    }

    async fn message_delete_bulk(
        &self,
        _: Context,
        channel: ChannelId,
        messages: Vec<MessageId>,
        _: Option<SerenityGuildId>,
    ) {
        if let Some(relay) = &self.relay {
            for message in messages {
                relay.deleted(channel.get(), message.get()).await;
            }
        }
    }

    async fn guild_create(&self, _: Context, guild: serenity::all::Guild, _: Option<bool>) {
        let Ok(id) = GuildId::new(guild.id.get()) else { return };
        if let Err(e) = register_guild(&*self.repo, id, &guild.name, Some(&guild.preferred_locale)).await {
            tracing::warn!(guild = %id, error = %e, "guild not registered");
        }
    }

    async fn guild_member_addition(&self, _: Context, member: Member) {
        let (Ok(guild), Ok(user)) = (GuildId::new(member.guild_id.get()), UserId::new(member.user.id.get()))
        else {
            return;
        };
        match on_member_join(&*self.repo, &*self.clock, guild, user).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(%guild, %user, roles = n, "member rejoined: their paid roles are queued"),
            Err(e) => tracing::warn!(%guild, %user, error = %e, "member join not handled"),
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let reply = match self.bot.handle(&interaction, self.clock.now()).await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(error = %e, "interaction not answered: storage unavailable");
                return;
            }
        };
        let sent = ctx
            .http
            .create_interaction_response(interaction.id(), interaction.token(), &reply.now, Vec::new())
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "interaction answer not delivered");
            return;
        }
        if let Some(later) = reply.later
            && let Err(e) = follow_up(&ctx.http, &interaction, &later.await).await
        {
            tracing::warn!(error = %e, "a deferred interaction answer was not delivered");
        }
    }
}

/// Connects with `http`'s token ([`super::rest_client`]) and handles events until `shutdown`
/// resolves or the connection fails for good.
///
/// The gateway's address is asked of the configured API base first: serenity would fall back to
/// `wss://gateway.discord.gg` when that request fails, which must never happen against a local
/// fake (or a proxy that is down). The caller retries later instead.
pub async fn run(
    http: serenity::http::Http,
    handler: GatewayEvents,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), GatewayError> {
    http.get_gateway().await.map_err(|e| super::classify(&e, "asking Discord for the gateway address"))?;
    let relaying = match &handler.relay {
        Some(relay) => relay.any().await,
        None => false,
    };
    let intents = if relaying { INTENTS | RELAY_INTENTS } else { INTENTS };
    let mut client = ClientBuilder::new_with_http(http, intents)
        .event_handler(handler)
        .await
        .map_err(|e| super::classify(&e, "starting the gateway client"))?;
    let shards = client.shard_manager.clone();
    tokio::select! {
        ended = client.start() => ended.map_err(|e| match e {
            serenity::Error::Gateway(serenity::gateway::GatewayError::DisallowedGatewayIntents) => GatewayError::Forbidden {
                why: "Discord closed the gateway with 4014 (disallowed intents): enable Server Members Intent, and \
                      Message Content Intent when a relay is configured, under Bot → Privileged Gateway Intents in \
                      the Developer Portal"
                    .to_owned(),
            },
            e => super::classify(&e, "the gateway connection"),
        }),
        () = shutdown => {
            shards.shutdown_all().await;
            Ok(())
        }
    }
}
