//! The bot's slash commands and components, independent of how an interaction arrived: the HTTP
//! interactions endpoint (`docobo-server`'s `POST /interactions`) and the gateway
//! ([`super::gateway`]) both hand an [`Interaction`] to [`Bot::handle`] and send back its
//! [`Reply`].
//!
//! Discord wants an answer within 3 seconds. Work that waits on another service (asking Discord
//! whether the bot can hand out a role, asking Polar for a checkout or to check a token) is
//! *deferred*: [`Reply::now`] acknowledges at once and [`Reply::later`] computes the real answer,
//! which the transport delivers with [`follow_up`] by editing the original response.
//!
//! - `/help`, `/status`, `/notify` (`bot/status.rs`): answered at once, ephemeral.
//! - `/join` (`bot/join.rs`): a menu of (role, provider) offers; picking one stores a checkout and shows
//!   the Polar link or the SePay QR and transfer code.
//! - `/setup` (`bot/setup/`): the owners' three-step wizard, resumable.

mod join;
mod setup;
mod status;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use docobo_core::domain::{GuildId, ProviderName, Timestamp, UserId};
use docobo_core::ports::{
    GatewayError, PaymentProvider, ProviderRegistry, RoleGateway, StoreError, SubscriptionRepo,
};
use serenity::all::{
    CreateActionRow, CreateEmbed, CreateInteractionResponse, CreateInteractionResponseMessage,
    EditInteractionResponse, Interaction, Member, Permissions,
};
use serenity::http::Http;

/// Slow work that finishes a deferred reply; its result replaces the original response.
pub type Later = Pin<Box<dyn Future<Output = EditInteractionResponse> + Send>>;

/// How to answer one interaction.
pub struct Reply {
    /// The HTTP response body (or the gateway's interaction callback), sent at once.
    pub now: CreateInteractionResponse,
    /// Present when `now` is a deferral: the answer to deliver with [`follow_up`].
    pub later: Option<Later>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply").field("now", &self.now).field("later", &self.later.is_some()).finish()
    }
}

impl Reply {
    fn new(now: CreateInteractionResponse) -> Reply {
        Reply { now, later: None }
    }

    /// A new ephemeral message.
    fn message(view: CreateInteractionResponseMessage) -> Reply {
        Reply::new(CreateInteractionResponse::Message(view.ephemeral(true).allowed_mentions(no_mentions())))
    }

    fn text(content: impl Into<String>) -> Reply {
        Reply::message(CreateInteractionResponseMessage::new().content(content))
    }

    /// Replaces the message the clicked component (or the submitted modal's button) sits on.
    fn update(view: CreateInteractionResponseMessage) -> Reply {
        Reply::new(CreateInteractionResponse::UpdateMessage(view.allowed_mentions(no_mentions())))
    }

    /// Acknowledges a component now; `later` replaces its message.
    fn deferred_update(later: impl Future<Output = EditInteractionResponse> + Send + 'static) -> Reply {
        Reply { now: CreateInteractionResponse::Acknowledge, later: Some(Box::pin(later)) }
    }
}

/// Mention nobody: role names and provider messages shown in replies may contain `@everyone`
/// or `<@&id>`, and a reply must never notify anyone.
fn no_mentions() -> serenity::all::CreateAllowedMentions {
    serenity::all::CreateAllowedMentions::new()
}

/// One screen: the text, components and embed of a message, sent as a new or updated message
/// or as the edit that delivers a deferred answer.
struct View {
    content: String,
    rows: Vec<CreateActionRow>,
    embed: Option<CreateEmbed>,
}

impl View {
    fn message(self) -> CreateInteractionResponseMessage {
        let m = CreateInteractionResponseMessage::new().content(self.content).components(self.rows);
        m.embeds(self.embed.into_iter().collect())
    }

    fn edit(self) -> EditInteractionResponse {
        let e = EditInteractionResponse::new().content(self.content).components(self.rows);
        let e = e.allowed_mentions(no_mentions());
        e.embeds(self.embed.into_iter().collect())
    }
}

/// Who sent an interaction, and from which server.
#[derive(Debug, Clone)]
struct Caller {
    guild: GuildId,
    user: UserId,
    /// The member's permissions in the channel, as Discord computed them (the owner has all).
    permissions: Permissions,
    /// The member's roles, as Discord reported them: whether they could assign a role
    /// themselves depends on them.
    roles: Arc<std::collections::BTreeSet<docobo_core::domain::RoleId>>,
    /// When the interaction was received.
    at: Timestamp,
}

fn caller(guild: Option<serenity::all::GuildId>, member: Option<&Member>, at: Timestamp) -> Option<Caller> {
    let (guild, member) = (guild?, member?);
    Some(Caller {
        guild: GuildId::new(guild.get()).ok()?,
        user: UserId::new(member.user.id.get()).ok()?,
        permissions: member.permissions.unwrap_or_else(Permissions::empty),
        roles: Arc::new(
            member.roles.iter().filter_map(|r| docobo_core::domain::RoleId::new(r.get()).ok()).collect(),
        ),
        at,
    })
}

/// Everything the commands need. Cheap to clone: deferred work takes a clone.
#[derive(Clone)]
pub struct Bot {
    repo: Arc<dyn SubscriptionRepo>,
    /// Discord's REST side, to check roles in `/setup`; `None` without a bot token.
    roles: Option<Arc<dyn RoleGateway>>,
    providers: ProviderRegistry,
    /// `DOCOBO_PUBLIC_URL`, for the webhook URLs shown to owners.
    public_url: String,
    /// When each member last started a checkout.
    checkouts: Arc<join::CheckoutCooldown>,
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot").field("public_url", &self.public_url).finish_non_exhaustive()
    }
}

const OUTSIDE_A_SERVER: &str = "Docobo's commands work inside a server.";

impl Bot {
    pub fn new(
        repo: Arc<dyn SubscriptionRepo>,
        roles: Option<Arc<dyn RoleGateway>>,
        providers: ProviderRegistry,
        public_url: &str,
    ) -> Bot {
        Bot {
            repo,
            roles,
            providers,
            public_url: public_url.trim_end_matches('/').to_owned(),
            checkouts: Arc::default(),
        }
    }

    fn provider(&self, kind: ProviderName) -> Option<Arc<dyn PaymentProvider>> {
        self.providers.get(kind)
    }

    /// The URL an owner pastes into `kind`'s dashboard.
    pub fn webhook_url(&self, kind: ProviderName, guild: GuildId) -> String {
        format!("{}/webhooks/{kind}/{guild}", self.public_url)
    }

    /// Answers an authenticated interaction. A storage failure is returned rather than answered,
    /// so that the HTTP edge can answer 503 and Discord shows the member that it failed.
    pub async fn handle(&self, interaction: &Interaction, now: Timestamp) -> Result<Reply, StoreError> {
        match interaction {
            Interaction::Ping(_) => Ok(Reply::new(CreateInteractionResponse::Pong)),
            Interaction::Command(c) => {
                let Some(who) = caller(c.guild_id, c.member.as_deref(), now) else {
                    return Ok(Reply::text(OUTSIDE_A_SERVER));
                };
                match c.data.name.as_str() {
                    "help" => Ok(Reply::text(status::HELP)),
                    "status" => Ok(Reply::text(status::text(&*self.repo, who).await?)),
                    "join" => self.join_menu(who).await,
                    "notify" => {
                        let state = c.data.options.iter().find(|o| o.name == "state");
                        let on = state.and_then(|o| o.value.as_str()).map(|v| v == "on");
                        Ok(Reply::text(status::notify(&*self.repo, who, on).await?))
                    }
                    "setup" => self.setup_start(who).await,
                    other => Ok(Reply::text(format!("`/{other}` is not a Docobo command. Try `/help`."))),
                }
            }
            Interaction::Component(c) => {
                let Some(who) = caller(c.guild_id, c.member.as_ref(), now) else {
                    return Ok(Reply::text(OUTSIDE_A_SERVER));
                };
                match c.data.custom_id.split_once(':') {
                    Some(("join", _)) => self.join_choice(who, &c.data).await,
                    Some(("setup", action)) => self.setup_component(who, action, &c.data).await,
                    _ => Ok(Reply::text("This button is from an older Docobo. Run the command again.")),
                }
            }
            Interaction::Modal(m) => {
                let Some(who) = caller(m.guild_id, m.member.as_ref(), now) else {
                    return Ok(Reply::text(OUTSIDE_A_SERVER));
                };
                match m.data.custom_id.split_once(':') {
                    Some(("setup", form)) => self.setup_modal(who, form, &m.data).await,
                    Some(("join", form)) => self.join_email(who, form, &m.data).await,
                    _ => Ok(Reply::text("This form is from an older Docobo. Run the command again.")),
                }
            }
            _ => Ok(Reply::text("Docobo does not handle this kind of interaction. Try `/help`.")),
        }
    }
}

/// Delivers a deferred reply by editing the interaction's original response (the webhook routes,
/// authorised by the interaction token).
pub async fn follow_up(
    http: &Http,
    interaction: &Interaction,
    edit: &EditInteractionResponse,
) -> Result<(), GatewayError> {
    http.set_application_id(interaction.application_id());
    http.edit_original_interaction_response(interaction.token(), edit, Vec::new())
        .await
        .map(drop)
        .map_err(|e| super::classify(&e, "answering the interaction"))
}

/// What a member sees when the database failed during deferred work.
fn unavailable(e: &StoreError) -> EditInteractionResponse {
    tracing::warn!(error = %e, "deferred interaction failed: storage unavailable");
    EditInteractionResponse::new()
        .allowed_mentions(no_mentions())
        .content("Docobo could not reach its database just now. Please try again in a minute.")
        .components(Vec::new())
}

/// Random bytes for a checkout reference. The OS generator fails only on a broken system; the
/// clock's nanoseconds then still give a reference (a collision is refused by the store, never
/// merged).
pub fn entropy() -> [u8; 6] {
    let mut bytes = [0u8; 6];
    if getrandom::getrandom(&mut bytes).is_err() {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        bytes.copy_from_slice(&nanos.to_le_bytes()[..6]);
    }
    bytes
}
