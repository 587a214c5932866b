//! Discord, as far as roles go: [`DiscordRoles`] implements the core's `RoleGateway` over
//! serenity's REST client.
//!
//! serenity's `Http` is built with `.proxy(base)` and `.ratelimiter_disabled(true)` in every
//! environment, so tests against the local fake exercise the production path (with the limiter
//! on, serenity ignores the proxy and talks to discord.com). Instead, [`pacer::Pacer`] spaces
//! requests, every call has a timeout, and errors are classified for the role worker:
//! 429/5xx/timeouts → retry later; 403 → park with a reason an owner can act on; 404 Unknown
//! Member → the member is gone; other 404s → not found.
//!
//! The role routes (read a member, add or remove a role, read the guild) are built with
//! serenity's routes but sent with our own client (`DiscordRoles::raw`), because serenity's
//! error keeps only the status and body: Discord's `Retry-After`, `X-RateLimit-Global` and
//! bucket headers are read here, fed to the pacer, and a 429's wait becomes the job's floor.

pub mod attachments;
pub mod bot;
pub mod channels;
pub mod commands;
pub mod dms;
pub mod gateway;
pub mod intake;
pub mod interactions;
pub mod login;
pub mod pacer;
pub mod relay;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use docobo_core::domain::{GuildId, RoleId, UserId};
use docobo_core::ports::{GatewayError, Manageable, RoleGateway};
use serenity::all::{HttpBuilder, HttpError, Permissions};
use serenity::http::{Http, LightMethod, Request, Route};
use tokio::sync::OnceCell;

use self::pacer::Pacer;

/// Longest a single Discord call may take, pacing excluded.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest [`DiscordRoles::with_timeout`] accepts. The role gateway's HTTP client gives up
/// only after this; the per-call timeout is enforced around each call, so it is the one that
/// counts whatever it is set to.
pub const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// Permissions a role on sale must not carry: with them, a buyer (or a seller buying their own
/// role) could moderate or administer the server.
pub const UNSAFE_TO_SELL: Permissions = Permissions::ADMINISTRATOR
    .union(Permissions::MANAGE_GUILD)
    .union(Permissions::MANAGE_ROLES)
    .union(Permissions::MANAGE_CHANNELS)
    .union(Permissions::MANAGE_WEBHOOKS)
    .union(Permissions::KICK_MEMBERS)
    .union(Permissions::BAN_MEMBERS)
    .union(Permissions::MODERATE_MEMBERS);

/// The role gateway over Discord's REST API.
#[derive(Clone)]
pub struct DiscordRoles {
    http: Arc<Http>,
    /// The same HTTP client `http` uses, for [`DiscordRoles::raw`].
    client: reqwest::Client,
    /// `DOCOBO_DISCORD_API_URL` without a trailing slash.
    api_base: String,
    pacer: Arc<Pacer>,
    bot: Arc<OnceCell<serenity::all::UserId>>,
    timeout: Duration,
    /// DM channel ids by user, so a DM opens its channel once.
    dm_channels: dms::DmChannels,
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
        let client = http_client(MAX_CALL_TIMEOUT);
        DiscordRoles {
            client: client.clone(),
            ..Self::from_http(Arc::new(rest_client_on(client, token, api_base)))
        }
    }

    /// Role changes over a host bot's own REST client (an embedding serenity bot's
    /// `ctx.http`), which keeps its own rate limiter: Docobo's pacing and job backoff come on top
    /// of it. Requests serenity cannot make go to the client's proxy (its `proxy`, else
    /// `https://discord.com`) with its token.
    pub fn from_http(http: Arc<Http>) -> Self {
        let api_base = http.proxy.clone().unwrap_or_else(|| "https://discord.com".to_owned());
        DiscordRoles {
            http,
            client: http_client(MAX_CALL_TIMEOUT),
            api_base: api_base.trim_end_matches('/').to_owned(),
            pacer: Arc::new(Pacer::default()),
            bot: Arc::new(OnceCell::new()),
            timeout: CALL_TIMEOUT,
            dm_channels: dms::DmChannels::default(),
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
        self.pacer.wait(key, "other").await;
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(|e| classify(&e, what)),
            Err(_) => Err(GatewayError::Retryable {
                after: None,
                why: format!("{what}: Discord did not answer in time"),
            }),
        }
    }

    /// Sends `request` (one of serenity's routes) for `guild` with our client, under pacing
    /// route `route` and the timeout; feeds Discord's rate-limit headers to the pacer and
    /// returns the body of a 2xx, or the classified error (a 429 carries its wait).
    async fn raw(
        &self,
        guild: GuildId,
        route: &'static str,
        what: &str,
        request: Request<'_>,
    ) -> Result<Vec<u8>, GatewayError> {
        self.raw_coded(guild.get(), route, what, request).await.map_err(|(error, _)| error)
    }

    /// [`Self::raw`] under pacing key `key` (a guild id, or 0 for calls about no guild), with
    /// Discord's JSON error code beside the classified error.
    async fn raw_coded(
        &self,
        key: u64,
        route: &'static str,
        what: &str,
        request: Request<'_>,
    ) -> Result<Vec<u8>, (GatewayError, isize)> {
        let retry = |why: String| (GatewayError::Retryable { after: None, why: format!("{what}: {why}") }, 0);
        let built = request
            .build(&self.client, self.http.token(), Some(&self.api_base))
            .map_err(|e| retry(e.to_string()))?
            .build()
            .map_err(|e| retry(e.without_url().to_string()))?;
        self.send_coded(key, route, what, built).await
    }

    /// Sends a request already built with our client (one serenity cannot build, such as an
    /// upload of several files): paced, under the timeout, Discord's answer classified as in
    /// [`Self::raw_coded`].
    pub(crate) async fn send_coded(
        &self,
        key: u64,
        route: &'static str,
        what: &str,
        built: reqwest::Request,
    ) -> Result<Vec<u8>, (GatewayError, isize)> {
        let retry = |why: String| (GatewayError::Retryable { after: None, why: format!("{what}: {why}") }, 0);
        self.pacer.wait(key, route).await;
        let send = async {
            let response = self.client.execute(built).await?;
            let status = response.status().as_u16();
            let limit = rate_limit(response.headers());
            Ok::<_, reqwest::Error>((status, limit, response.bytes().await?))
        };
        let (status, mut limit, body) = match tokio::time::timeout(self.timeout, send).await {
            Err(_) => return Err(retry("Discord did not answer in time".to_owned())),
            Ok(Err(e)) => return Err(retry(e.without_url().to_string())),
            Ok(Ok(answer)) => answer,
        };
        let error: DiscordError = serde_json::from_slice(&body).unwrap_or_default();
        if status == 429 {
            let said = error.retry_after.filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64);
            limit.retry_after = limit.retry_after.max(said).or(Some(Duration::from_secs(1)));
            limit.global |= error.global;
        }
        self.pacer.observe(key, route, &limit).await;
        if (200..300).contains(&status) {
            return Ok(body.to_vec());
        }
        let after = limit.retry_after.and_then(|d| time::Duration::try_from(d).ok());
        Err((classify_status(status, error.code, &error.message, what, after), error.code))
    }

    /// A request to `path` (under `/api/v10`) with the bot's token, for [`Self::send_coded`].
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}/api/v10{path}", self.api_base))
            .header(reqwest::header::AUTHORIZATION, self.http.token())
    }

    /// Adds (`Put`) or removes (`Delete`) a member's role, with `reason` in the audit log.
    async fn member_role(
        &self,
        method: LightMethod,
        (guild, user, role): (GuildId, UserId, RoleId),
        reason: &str,
        what: &str,
    ) -> Result<(), GatewayError> {
        let route = Route::GuildMemberRole {
            guild_id: guild.get().into(),
            user_id: user.get().into(),
            role_id: role.get().into(),
        };
        let request = Request::new(route, method).headers(audit_reason(reason));
        self.raw(guild, "member-role", what, request).await.map(drop)
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

    pub(crate) async fn bot_user(&self, guild: GuildId) -> Result<serenity::all::UserId, GatewayError> {
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
    rest_client_on(http_client(CALL_TIMEOUT), token, api_base)
}

fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

fn rest_client_on(client: reqwest::Client, token: &str, api_base: &str) -> Http {
    HttpBuilder::new(token)
        .client(client)
        .proxy(api_base.trim_end_matches('/'))
        .ratelimiter_disabled(true)
        .build()
}

/// The JSON body of a Discord error (and of a 429).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct DiscordError {
    code: isize,
    message: String,
    retry_after: Option<f64>,
    global: bool,
}

/// Discord's rate-limit headers.
fn rate_limit(headers: &reqwest::header::HeaderMap) -> pacer::RateLimit {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let seconds = |name: &str| {
        text(name)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
    };
    pacer::RateLimit {
        bucket: text("x-ratelimit-bucket").map(|b| b.chars().take(64).collect()),
        remaining: text("x-ratelimit-remaining").and_then(|v| v.trim().parse().ok()),
        reset_after: seconds("x-ratelimit-reset-after"),
        retry_after: seconds("retry-after"),
        global: text("x-ratelimit-global").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || text("x-ratelimit-scope") == Some("global"),
    }
}

/// `X-Audit-Log-Reason`: percent-encoded UTF-8, as Discord requires.
fn audit_reason(reason: &str) -> Option<reqwest::header::HeaderMap> {
    let encoded: String = reason
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-audit-log-reason", reqwest::header::HeaderValue::from_str(&encoded).ok()?);
    Some(headers)
}

/// What a serenity error means for a role job.
pub(crate) fn classify(error: &serenity::Error, what: &str) -> GatewayError {
    let serenity::Error::Http(http) = error else {
        return GatewayError::Retryable { after: None, why: format!("{what}: {error}") };
    };
    let HttpError::UnsuccessfulRequest(response) = http else {
        return GatewayError::Retryable { after: None, why: format!("{what}: {http}") };
    };
    classify_status(response.status_code.as_u16(), response.error.code, &response.error.message, what, None)
}

/// What Discord's answer `status` (with its JSON `code` and `message`) means for a role job;
/// `after` is how long Discord asked us to wait, for a 429.
fn classify_status(
    status: u16,
    code: isize,
    message: &str,
    what: &str,
    after: Option<time::Duration>,
) -> GatewayError {
    match (status, code) {
        (429, _) => GatewayError::Retryable { after, why: format!("{what}: HTTP 429 (rate limited)") },
        (500..=599, _) => GatewayError::Retryable { after: None, why: format!("{what}: HTTP {status}") },
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
        #[derive(serde::Deserialize)]
        struct Member {
            roles: Vec<String>,
        }
        let route = Route::GuildMember { guild_id: guild.get().into(), user_id: user.get().into() };
        let body =
            self.raw(guild, "member", "reading the member", Request::new(route, LightMethod::Get)).await?;
        let member: Member = serde_json::from_slice(&body).map_err(|e| GatewayError::Retryable {
            after: None,
            why: format!("reading the member: Discord's answer was not a member ({e})"),
        })?;
        Ok(member.roles.iter().filter_map(|r| r.parse().ok()).filter_map(|r| RoleId::new(r).ok()).collect())
    }

    async fn add_role(
        &self,
        guild: GuildId,
        user: UserId,
        role: RoleId,
        reason: &str,
    ) -> Result<(), GatewayError> {
        self.member_role(LightMethod::Put, (guild, user, role), reason, "adding the role").await
    }

    async fn remove_role(
        &self,
        guild: GuildId,
        user: UserId,
        role: RoleId,
        reason: &str,
    ) -> Result<(), GatewayError> {
        self.member_role(LightMethod::Delete, (guild, user, role), reason, "removing the role").await
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
        let unsafe_bits = target.permissions & UNSAFE_TO_SELL;
        if !unsafe_bits.is_empty() {
            return no(
                format!(
                    "{} carries {unsafe_bits}: whoever buys it could moderate or administer this server",
                    target.name
                ),
                format!(
                    "sell a role without those permissions (in {ROLES} → {} → Permissions), and give members \
                     access to channels through it instead",
                    target.name
                ),
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
    async fn member_can_assign(
        &self,
        guild: GuildId,
        user: UserId,
        roles: &BTreeSet<RoleId>,
        role: RoleId,
    ) -> Result<Manageable, GatewayError> {
        #[derive(serde::Deserialize)]
        struct GuildFacts {
            owner_id: String,
            roles: Vec<serenity::all::Role>,
        }
        let route = Route::Guild { guild_id: guild.get().into() };
        let body =
            self.raw(guild, "guild", "reading the server", Request::new(route, LightMethod::Get)).await?;
        let facts: GuildFacts = serde_json::from_slice(&body).map_err(|e| GatewayError::Retryable {
            after: None,
            why: format!("reading the server: Discord's answer was not a server ({e})"),
        })?;
        if facts.owner_id == user.to_string() {
            return Ok(Manageable::Yes);
        }
        let everyone = guild.get();
        let held: Vec<&serenity::all::Role> = facts
            .roles
            .iter()
            .filter(|r| r.id.get() == everyone || roles.iter().any(|mine| mine.get() == r.id.get()))
            .collect();
        let permissions = held.iter().fold(Permissions::empty(), |acc, r| acc | r.permissions);
        let Some(target) = facts.roles.iter().find(|r| r.id.get() == role.get()) else {
            return Ok(Manageable::No {
                why: format!("role {role} does not exist in this server"),
                fix: "pick an existing role".to_owned(),
            });
        };
        if !permissions.intersects(Permissions::MANAGE_ROLES | Permissions::ADMINISTRATOR) {
            return Ok(Manageable::No {
                why: format!(
                    "you do not have the Manage Roles permission, so Discord would not let you give anyone {}",
                    target.name
                ),
                fix: "ask the server owner, or someone with Manage Roles whose highest role is above it, to run /setup"
                    .to_owned(),
            });
        }
        match held.iter().filter(|r| r.id.get() != everyone).max() {
            Some(top) if *top > target => Ok(Manageable::Yes),
            _ => Ok(Manageable::No {
                why: format!(
                    "{} is above (or level with) your highest role, and Discord only lets you assign roles below your own",
                    target.name
                ),
                fix: format!("ask the server owner, or someone whose highest role is above {}", target.name),
            }),
        }
    }
}
