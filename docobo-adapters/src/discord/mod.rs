//! Discord, as far as roles go: [`DiscordRoles`] implements the core's `RoleGateway` over
//! serenity's REST client.
//!
//! serenity's `Http` is built with `.proxy(base)` and `.ratelimiter_disabled(true)` in every
//! environment, so tests against the local fake exercise the production path (with the limiter
//! on, serenity ignores the proxy and talks to discord.com). Instead, [`pacer::Pacer`] spaces
//! requests, every call has a timeout, and errors are classified for the role worker:
//! 429/5xx/timeouts → retry later; 403 → park with a reason an owner can act on; 404 Unknown
//! Member → the member is gone; other 404s → not found.

pub mod bot;
pub mod commands;
pub mod gateway;
pub mod interactions;
pub mod pacer;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use docobo_core::domain::{GuildId, RoleId, UserId};
use docobo_core::ports::{GatewayError, Manageable, RoleGateway};
use serenity::all::{HttpBuilder, HttpError, Permissions};
use serenity::http::Http;
use tokio::sync::OnceCell;

use self::pacer::Pacer;

/// Longest a single Discord call may take, pacing excluded.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest [`DiscordRoles::with_timeout`] accepts. The role gateway's HTTP client gives up
/// only after this; the per-call timeout is enforced around each call, so it is the one that
/// counts whatever it is set to.
pub const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// The role gateway over Discord's REST API.
#[derive(Clone)]
pub struct DiscordRoles {
    http: Arc<Http>,
    pacer: Arc<Pacer>,
    bot: Arc<OnceCell<serenity::all::UserId>>,
    timeout: Duration,
}

impl std::fmt::Debug for DiscordRoles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordRoles").field("token", &"[redacted]").finish_non_exhaustive()
    }
}

impl DiscordRoles {
    /// `api_base` is `DOCOBO_DISCORD_API_URL` (`https://discord.com`, or a local fake); serenity
    /// appends `/api/v10`.
    pub fn new(token: &str, api_base: &str) -> Self {
        DiscordRoles {
            http: Arc::new(rest_client_within(token, api_base, MAX_CALL_TIMEOUT)),
            pacer: Arc::new(Pacer::default()),
            bot: Arc::new(OnceCell::new()),
            timeout: CALL_TIMEOUT,
        }
    }

    /// The underlying REST client, for answering interactions and the gateway.
    pub fn http(&self) -> Arc<Http> {
        self.http.clone()
    }

    /// Paces all requests below `per_second` instead of [`pacer::GLOBAL_RATE`] (for bots whose
    /// global limit Discord raised).
    pub fn with_global_rate(mut self, per_second: u32) -> Self {
        self.pacer = Arc::new(Pacer::new(per_second));
        self
    }

    /// Changes the per-call timeout ([`CALL_TIMEOUT`] by default, at most [`MAX_CALL_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.min(MAX_CALL_TIMEOUT);
        self
    }

    /// Paces, then runs `call` under the timeout, translating serenity's errors.
    async fn call<T, F>(&self, guild: GuildId, what: &str, call: F) -> Result<T, GatewayError>
    where
        F: std::future::Future<Output = Result<T, serenity::Error>>,
    {
        self.paced(guild.get(), what, call).await
    }

    /// [`Self::call`] under pacing key `key` (a guild id, or 0 for calls about no guild).
    async fn paced<T, F>(&self, key: u64, what: &str, call: F) -> Result<T, GatewayError>
    where
        F: std::future::Future<Output = Result<T, serenity::Error>>,
    {
        self.pacer.wait(key).await;
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(|e| classify(&e, what)),
            Err(_) => Err(GatewayError::Retryable {
                after: None,
                why: format!("{what}: Discord did not answer in time"),
            }),
        }
    }

    /// The bot's user name: reading it proves the token works (`docobo check`).
    pub async fn bot_name(&self) -> Result<String, GatewayError> {
        let user = self.paced(0, "reading the bot user", self.http.get_current_user()).await?;
        Ok(user.name.clone())
    }

    /// Whether the bot is a member of `guild`: `Ok` if so, `Forbidden` or `MemberGone` if not.
    pub async fn bot_in_guild(&self, guild: GuildId) -> Result<(), GatewayError> {
        let bot = self.bot_user(guild).await?;
        self.call(guild, "reading the bot's member", self.http.get_member(guild.get().into(), bot))
            .await
            .map(drop)
    }

    async fn bot_user(&self, guild: GuildId) -> Result<serenity::all::UserId, GatewayError> {
        self.bot
            .get_or_try_init(|| async {
                self.call(guild, "reading the bot user", self.http.get_current_user()).await.map(|u| u.id)
            })
            .await
            .copied()
    }
}

/// serenity's REST client for `api_base` (`DOCOBO_DISCORD_API_URL`; serenity appends `/api/v10`):
/// our reqwest client with timeouts, serenity's rate limiter off (see the module comment).
pub fn rest_client(token: &str, api_base: &str) -> Http {
    rest_client_within(token, api_base, CALL_TIMEOUT)
}

fn rest_client_within(token: &str, api_base: &str, timeout: Duration) -> Http {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    HttpBuilder::new(token)
        .client(client)
        .proxy(api_base.trim_end_matches('/'))
        .ratelimiter_disabled(true)
        .build()
}

/// What a serenity error means for a role job.
pub(crate) fn classify(error: &serenity::Error, what: &str) -> GatewayError {
    let serenity::Error::Http(http) = error else {
        return GatewayError::Retryable { after: None, why: format!("{what}: {error}") };
    };
    let HttpError::UnsuccessfulRequest(response) = http else {
        return GatewayError::Retryable { after: None, why: format!("{what}: {http}") };
    };
    let status = response.status_code.as_u16();
    let code = response.error.code;
    let message = &response.error.message;
    match (status, code) {
        (429, _) | (500..=599, _) => GatewayError::Retryable { after: None, why: format!("{what}: HTTP {status}") },
        (404, 10007) => GatewayError::MemberGone,
        (404, 10011) => GatewayError::NotFound { what: "the role".to_owned() },
        (404, 10004) => GatewayError::NotFound { what: "the server".to_owned() },
        (404, _) => GatewayError::NotFound { what: format!("{what} ({message})") },
        (403, 50013) => GatewayError::Forbidden {
            why: "Missing Permissions (Discord 50013): give Docobo's bot role Manage Roles and drag it above the paid \
                  role in Server Settings → Roles"
                .to_owned(),
        },
        (403, 50001) => GatewayError::Forbidden {
            why: "Missing Access (Discord 50001): the bot is not in the server or cannot see it; invite it again".to_owned(),
        },
        (401, _) => GatewayError::Forbidden {
            why: "Discord refused the bot token (401): check DISCORD_BOT_TOKEN".to_owned(),
        },
        _ => GatewayError::Forbidden { why: format!("{what}: Discord answered {status} ({code}: {message})") },
    }
}

#[async_trait]
impl RoleGateway for DiscordRoles {
    async fn member_roles(&self, guild: GuildId, user: UserId) -> Result<BTreeSet<RoleId>, GatewayError> {
        let member = self
            .call(guild, "reading the member", self.http.get_member(guild.get().into(), user.get().into()))
            .await?;
        Ok(member.roles.iter().filter_map(|r| RoleId::new(r.get()).ok()).collect())
    }

    async fn add_role(
        &self,
        guild: GuildId,
        user: UserId,
        role: RoleId,
        reason: &str,
    ) -> Result<(), GatewayError> {
        let call =
            self.http.add_member_role(guild.get().into(), user.get().into(), role.get().into(), Some(reason));
        self.call(guild, "adding the role", call).await
    }

    async fn remove_role(
        &self,
        guild: GuildId,
        user: UserId,
        role: RoleId,
        reason: &str,
    ) -> Result<(), GatewayError> {
        let call = self.http.remove_member_role(
            guild.get().into(),
            user.get().into(),
            role.get().into(),
            Some(reason),
        );
        self.call(guild, "removing the role", call).await
    }

    async fn bot_can_manage(&self, guild: GuildId, role: RoleId) -> Result<Manageable, GatewayError> {
        const ROLES: &str = "Server Settings → Roles";
        let no = |why: String, fix: String| Ok(Manageable::No { why, fix });
        if role.get() == guild.get() {
            return no(
                "@everyone is every member's role, so it cannot be sold".to_owned(),
                "create a dedicated role and sell that one".to_owned(),
            );
        }
        let bot = self.bot_user(guild).await?;
        let roles = self
            .call(guild, "reading the server's roles", self.http.get_guild_roles(guild.get().into()))
            .await?;
        let roles: HashMap<_, _> = roles.into_iter().map(|r| (r.id, r)).collect();
        let Some(target) = roles.get(&role.get().into()) else {
            return no(
                format!("role {role} does not exist in this server"),
                "pick an existing role, or create it first".to_owned(),
            );
        };
        if target.managed {
            return no(
                format!(
                    "{} is managed by an integration (a bot, booster or subscription role), so no one can assign it",
                    target.name
                ),
                "create an ordinary role and sell that one".to_owned(),
            );
        }
        let me = self
            .call(guild, "reading the bot's member", self.http.get_member(guild.get().into(), bot))
            .await?;
        let mine = || me.roles.iter().filter_map(|id| roles.get(id));
        let everyone = roles.get(&guild.get().into());
        let permissions = mine().chain(everyone).fold(Permissions::empty(), |acc, r| acc | r.permissions);
        if !permissions.intersects(Permissions::MANAGE_ROLES | Permissions::ADMINISTRATOR) {
            return no(
                "the bot lacks the Manage Roles permission".to_owned(),
                format!("enable Manage Roles on the bot's role in {ROLES}"),
            );
        }
        match mine().max() {
            Some(top) if top > target => Ok(Manageable::Yes),
            _ => no(
                format!(
                    "{} is above (or level with) the bot's highest role, and Discord only lets a bot assign roles below its own",
                    target.name
                ),
                format!("in {ROLES}, drag the bot's role above {}", target.name),
            ),
        }
    }
}
