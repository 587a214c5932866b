//! A fake Discord REST API (`/api/v10`), for the routes the role gateway uses: it keeps guilds,
//! roles (with positions), members and their roles; enforces the hierarchy as Discord does
//! (403 50013 for a role at or above the bot's highest role, or a managed one); answers 404 with
//! Discord's codes; and can be told to answer the next requests with 429 (with Discord's
//! rate-limit headers), 5xx or a delay. Every request is recorded. `GET /guilds/{id}` tells the
//! guild's owner and roles, for who-may-sell checks. Direct messages: `POST /users/@me/channels`
//! and `POST /channels/{dm}/messages`, with 50007 for users who closed their DMs and
//! `enforce_nonce` honoured.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};

use super::channels::{ChannelMessage, Channels, Hook};
use super::http::{Request, Response, serve};
use super::oauth::Oauth;

/// `MANAGE_ROLES`, as Discord's permission bit.
pub const MANAGE_ROLES: u64 = 1 << 28;
/// `ADMINISTRATOR`, as Discord's permission bit.
pub const ADMINISTRATOR: u64 = 1 << 3;
/// Every guild's owner unless [`FakeDiscord::set_owner`] says otherwise.
pub const DEFAULT_OWNER: u64 = 1;

#[derive(Debug, Clone)]
struct Role {
    name: String,
    position: u16,
    managed: bool,
    permissions: u64,
}

#[derive(Debug, Default)]
struct Guild {
    owner: Option<u64>,
    /// The boost level (`premium_tier`).
    tier: u8,
    roles: BTreeMap<u64, Role>,
    members: BTreeMap<u64, BTreeSet<u64>>,
}

#[derive(Debug, Clone)]
struct Injection {
    /// `None`: answer as usual, with `headers` added.
    status: Option<u16>,
    /// Discord's JSON error code in the injected answer.
    code: u32,
    delay: Duration,
    headers: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct State {
    bot: u64,
    guilds: BTreeMap<u64, Guild>,
    requests: Vec<(String, String)>,
    /// When each request arrived, in the same order as `requests`.
    arrivals: Vec<std::time::Instant>,
    /// `X-Audit-Log-Reason` of each role change, as sent (percent-encoded).
    reasons: Vec<String>,
    injected: VecDeque<Injection>,
    /// Registered command names: global under `None`, per guild under `Some(guild)`.
    commands: BTreeMap<Option<u64>, Vec<String>>,
    /// What `GET /gateway` answers.
    gateway_url: String,
    /// Interaction callbacks (answers sent over REST by the gateway transport): (token, body).
    callbacks: Vec<(String, Value)>,
    /// Edits of original interaction responses (deferred answers): (interaction token, body).
    edits: Vec<(String, Value)>,
    /// DM channel ids by user.
    dm_channels: BTreeMap<u64, u64>,
    /// Direct messages delivered: (user, body), in order.
    dms: Vec<(u64, Value)>,
    /// Users who do not accept DMs from the bot (50007).
    dms_closed: BTreeSet<u64>,
    /// Guild channels, their webhooks and the CDN, for the relay.
    channels: Channels,
    /// How long every answer is held after the request took effect (a slow network back).
    answer_delay: Duration,
    /// OAuth2 for the dashboard's login.
    oauth: Oauth,
}

/// DM channel ids are this plus a counter.
const DM_CHANNELS: u64 = 600_000_000_000_000_000;

/// A running fake Discord on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct FakeDiscord {
    /// Pass this as `DOCOBO_DISCORD_API_URL`.
    pub base_url: String,
    /// The bot's user id.
    pub bot: u64,
    state: Arc<Mutex<State>>,
}

/// The bot's own role in every guild: position 10, Manage Roles.
pub const BOT_ROLE_POSITION: u16 = 10;

impl FakeDiscord {
    pub async fn start(bot: u64) -> std::io::Result<FakeDiscord> {
        let state = Arc::new(Mutex::new(State { bot, ..State::default() }));
        let shared = state.clone();
        let addr = serve(move |request: Request| {
            let state = shared.clone();
            async move {
                let injected = lock(&state).injected.pop_front();
                let Some(injection) = injected else {
                    let answer = respond(&state, request, None);
                    let delay = lock(&state).answer_delay;
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    if answer.0 == 302 {
                        return Response {
                            status: 302,
                            body: String::new(),
                            headers: vec![("location".into(), answer.1)],
                        };
                    }
                    return Response::from(answer);
                };
                tokio::time::sleep(injection.delay).await;
                let (status, body) = respond(&state, request, injection.status.map(|s| (s, injection.code)));
                Response { status, body, headers: injection.headers }
            }
        })
        .await?;
        Ok(FakeDiscord { base_url: format!("http://{addr}"), bot, state })
    }

    /// A guild with @everyone (no permissions) and the bot, whose own role sits at position 10
    /// with Manage Roles.
    pub fn add_guild(&self, guild: u64) {
        let mut s = lock(&self.state);
        let bot = s.bot;
        let g = s.guilds.entry(guild).or_default();
        g.roles.insert(guild, Role { name: "@everyone".into(), position: 0, managed: false, permissions: 0 });
        let bot_role = guild + 1;
        g.roles.insert(
            bot_role,
            Role {
                name: "Docobo".into(),
                position: BOT_ROLE_POSITION,
                managed: true,
                permissions: MANAGE_ROLES,
            },
        );
        g.members.insert(bot, BTreeSet::from([bot_role]));
    }

    pub fn add_role(&self, guild: u64, role: u64, name: &str, position: u16) {
        let role_def = Role { name: name.into(), position, managed: false, permissions: 0 };
        lock(&self.state).guilds.entry(guild).or_default().roles.insert(role, role_def);
    }

    /// A role owned by an integration (a bot's or booster role): never assignable.
    pub fn add_managed_role(&self, guild: u64, role: u64, name: &str, position: u16) {
        let role_def = Role { name: name.into(), position, managed: true, permissions: 0 };
        lock(&self.state).guilds.entry(guild).or_default().roles.insert(role, role_def);
    }

    /// Takes Manage Roles away from the bot's role.
    pub fn revoke_manage_roles(&self, guild: u64) {
        if let Some(r) = lock(&self.state).guilds.get_mut(&guild).and_then(|g| g.roles.get_mut(&(guild + 1)))
        {
            r.permissions = 0;
        }
    }

    pub fn join(&self, guild: u64, user: u64) {
        lock(&self.state).guilds.entry(guild).or_default().members.entry(user).or_default();
    }

    pub fn leave(&self, guild: u64, user: u64) {
        if let Some(g) = lock(&self.state).guilds.get_mut(&guild) {
            g.members.remove(&user);
        }
    }

    /// The member's roles, or `None` when they are not in the guild.
    pub fn roles(&self, guild: u64, user: u64) -> Option<BTreeSet<u64>> {
        lock(&self.state).guilds.get(&guild)?.members.get(&user).cloned()
    }

    /// Changes a member's roles by hand, as an admin would.
    pub fn set_roles(&self, guild: u64, user: u64, roles: impl IntoIterator<Item = u64>) {
        lock(&self.state).guilds.entry(guild).or_default().members.insert(user, roles.into_iter().collect());
    }

    /// The next request is answered with `status` after `delay` (429 carries Discord's body).
    pub fn inject(&self, status: u16, delay: Duration) {
        lock(&self.state).injected.push_back(Injection {
            status: Some(status),
            code: 0,
            delay,
            headers: Vec::new(),
        });
    }

    /// The next request is answered with `status` and Discord's error `code` (10015 Unknown
    /// Webhook, 30046 the edit limit of old messages, …).
    pub fn inject_code(&self, status: u16, code: u32) {
        let injection = Injection { status: Some(status), code, delay: Duration::ZERO, headers: Vec::new() };
        lock(&self.state).injected.push_back(injection);
    }

    /// The next request is refused with 429 as Discord does: `Retry-After` (whole seconds),
    /// `X-RateLimit-Global` and `X-RateLimit-Scope`, and for a route limit its bucket.
    pub fn inject_rate_limit(&self, retry_after_s: u32, global: bool) {
        let mut headers = vec![
            ("retry-after".to_owned(), retry_after_s.to_string()),
            ("x-ratelimit-scope".to_owned(), if global { "global" } else { "user" }.to_owned()),
        ];
        if global {
            headers.push(("x-ratelimit-global".to_owned(), "true".to_owned()));
        } else {
            headers.extend(rate_headers(0, retry_after_s));
        }
        lock(&self.state).injected.push_back(Injection {
            status: Some(429),
            code: 0,
            delay: Duration::ZERO,
            headers,
        });
    }

    /// The next request is answered as usual, but says its bucket is empty for `reset_after_s`
    /// seconds (`X-RateLimit-Remaining: 0`), as Discord does before a route's limit is hit.
    pub fn exhaust_bucket(&self, reset_after_s: u32) {
        let headers = rate_headers(0, reset_after_s);
        lock(&self.state).injected.push_back(Injection {
            status: None,
            code: 0,
            delay: Duration::ZERO,
            headers,
        });
    }

    /// Every request takes effect at once but is answered only after `delay`: a client that
    /// dies meanwhile never learns that it succeeded.
    pub fn delay_answers(&self, delay: Duration) {
        lock(&self.state).answer_delay = delay;
    }

    /// The OAuth2 application the dashboard logs in with.
    pub fn set_oauth_app(&self, client_id: &str, client_secret: &str) {
        lock(&self.state).oauth.client = Some((client_id.to_owned(), client_secret.to_owned()));
    }

    /// The Discord user who approves the next "Log in with Discord" (the browser's user).
    pub fn log_in_as(&self, user: u64, name: &str) {
        lock(&self.state).oauth.user = Some((user, name.to_owned()));
    }

    /// OAuth2 code exchanges refused (wrong verifier, client, redirect, or a code used twice).
    pub fn refused_token_exchanges(&self) -> usize {
        lock(&self.state).oauth.refused
    }

    /// Sets the guild's boost level (`premium_tier`, 0–3).
    pub fn set_premium_tier(&self, guild: u64, tier: u8) {
        lock(&self.state).guilds.entry(guild).or_default().tier = tier;
    }

    /// Makes `user` the guild's owner (the default is [`DEFAULT_OWNER`]).
    pub fn set_owner(&self, guild: u64, user: u64) {
        lock(&self.state).guilds.entry(guild).or_default().owner = Some(user);
    }

    /// Gives `role` these permission bits (Discord's, e.g. [`ADMINISTRATOR`]).
    pub fn set_role_permissions(&self, guild: u64, role: u64, permissions: u64) {
        if let Some(r) = lock(&self.state).guilds.get_mut(&guild).and_then(|g| g.roles.get_mut(&role)) {
            r.permissions = permissions;
        }
    }

    /// How many requests had this method and a path containing `part`.
    pub fn count(&self, method: &str, part: &str) -> usize {
        lock(&self.state).requests.iter().filter(|(m, p)| m == method && p.contains(part)).count()
    }

    /// The audit-log reasons sent with role changes, percent-encoded as on the wire.
    pub fn audit_reasons(&self) -> Vec<String> {
        lock(&self.state).reasons.clone()
    }

    /// When the first request with this method and a path containing `part` arrived.
    pub fn first_arrival(&self, method: &str, part: &str) -> Option<std::time::Instant> {
        let s = lock(&self.state);
        s.requests
            .iter()
            .zip(&s.arrivals)
            .find(|((m, p), _)| m == method && p.contains(part))
            .map(|(_, at)| *at)
    }

    /// Every request with this method: its path and when it arrived, in order.
    pub fn arrivals(&self, method: &str) -> Vec<(String, std::time::Instant)> {
        let s = lock(&self.state);
        s.requests
            .iter()
            .zip(&s.arrivals)
            .filter(|((m, _), _)| m == method)
            .map(|((_, p), at)| (p.clone(), *at))
            .collect()
    }

    /// The command names registered globally (`None`) or in a guild.
    pub fn commands(&self, guild: Option<u64>) -> Vec<String> {
        lock(&self.state).commands.get(&guild).cloned().unwrap_or_default()
    }

    /// Where `GET /gateway` sends serenity's client (a [`super::gateway::FakeGateway`]).
    pub fn set_gateway_url(&self, url: &str) {
        lock(&self.state).gateway_url = url.to_owned();
    }

    /// The answers posted to the callback route for the interaction with `token`.
    pub fn callbacks(&self, token: &str) -> Vec<Value> {
        lock(&self.state).callbacks.iter().filter(|(t, _)| t == token).map(|(_, b)| b.clone()).collect()
    }

    /// The bodies that edited the original response of the interaction with `token`, in order.
    pub fn edits(&self, token: &str) -> Vec<Value> {
        lock(&self.state).edits.iter().filter(|(t, _)| t == token).map(|(_, b)| b.clone()).collect()
    }

    /// Waits up to 5 s for the first edit of the interaction with `token`.
    pub async fn wait_for_edit(&self, token: &str) -> Option<Value> {
        for _ in 0..500 {
            if let Some(edit) = self.edits(token).into_iter().next() {
                return Some(edit);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// `user` does not accept the bot's DMs: messages to them get 403 50007, as Discord answers.
    pub fn close_dms(&self, user: u64) {
        lock(&self.state).dms_closed.insert(user);
    }

    /// The direct messages delivered to `user` (request bodies), in order; a repeat that Discord
    /// dropped for its nonce is not among them.
    pub fn dms(&self, user: u64) -> Vec<Value> {
        lock(&self.state).dms.iter().filter(|(u, _)| *u == user).map(|(_, b)| b.clone()).collect()
    }

    /// Every direct message delivered: (user, body), in order.
    pub fn all_dms(&self) -> Vec<(u64, Value)> {
        lock(&self.state).dms.clone()
    }

    /// Posts a message by `author` in a source channel, with attachments (file name, content)
    /// served from this fake's CDN; the MESSAGE_CREATE payload to dispatch at the fake gateway.
    pub fn source_message(
        &self,
        guild: u64,
        channel: u64,
        author: u64,
        content: &str,
        files: &[(&str, &str)],
    ) -> Value {
        let base = self.base_url.clone();
        lock(&self.state).channels.source(&base, (guild, channel, author), content, files)
    }

    /// The live messages in a guild channel, in posting order.
    pub fn channel_messages(&self, channel: u64) -> Vec<ChannelMessage> {
        lock(&self.state).channels.messages(channel)
    }

    /// The ids of every guild-channel message deleted, in order.
    pub fn deleted_messages(&self) -> Vec<u64> {
        lock(&self.state).channels.deleted()
    }

    /// The channel's webhooks.
    pub fn webhooks(&self, channel: u64) -> Vec<Hook> {
        lock(&self.state).channels.hooks(channel)
    }

    /// An admin deletes the channel's webhooks (executing them then answers 10015).
    pub fn delete_webhooks(&self, channel: u64) {
        lock(&self.state).channels.remove_hook(channel);
    }

    /// A text channel in `guild` with Discord's permission overwrites (`[{id, type, allow,
    /// deny}]`), for `GET /channels/{id}`.
    pub fn set_channel(&self, guild: u64, channel: u64, overwrites: Value) {
        lock(&self.state).channels.set_channel(guild, channel, overwrites);
    }

    /// Whether the bot lacks Manage Webhooks in `channel`: then creating a webhook there
    /// answers 50013.
    pub fn deny_webhooks(&self, channel: u64, denied: bool) {
        lock(&self.state).channels.deny_webhooks(channel, denied);
    }

    /// Every (method, path) received, in order.
    pub fn requests(&self) -> Vec<(String, String)> {
        lock(&self.state).requests.clone()
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Discord's per-route rate-limit headers for the member-role bucket.
fn rate_headers(remaining: u32, reset_after_s: u32) -> Vec<(String, String)> {
    vec![
        ("x-ratelimit-bucket".to_owned(), "member-roles-bucket".to_owned()),
        ("x-ratelimit-limit".to_owned(), "10".to_owned()),
        ("x-ratelimit-remaining".to_owned(), remaining.to_string()),
        ("x-ratelimit-reset-after".to_owned(), format!("{reset_after_s}.000")),
    ]
}

fn error(status: u16, code: u32, message: &str) -> (u16, String) {
    (status, json!({ "code": code, "message": message }).to_string())
}

fn user_json(id: u64) -> Value {
    json!({ "id": id.to_string(), "username": format!("user{id}"), "discriminator": "0", "global_name": null, "avatar": null })
}

fn role_json(id: u64, r: &Role) -> Value {
    json!({
        "id": id.to_string(), "name": r.name, "color": 0, "colors": { "primary_color": 0 },
        "hoist": false, "managed": r.managed, "mentionable": false, "icon": null, "unicode_emoji": null,
        "permissions": r.permissions.to_string(), "position": r.position, "flags": 0,
    })
}

fn respond(state: &Mutex<State>, request: Request, injected: Option<(u16, u32)>) -> (u16, String) {
    let mut s = lock(state);
    s.requests.push((request.method.clone(), request.path.clone()));
    s.arrivals.push(std::time::Instant::now());
    if let Some(reason) = request.headers.get("x-audit-log-reason") {
        s.reasons.push(reason.clone());
    }
    match injected {
        Some((429, _)) => {
            return (
                429,
                json!({ "message": "You are being rate limited.", "retry_after": 1.0, "global": false })
                    .to_string(),
            );
        }
        Some((status, code)) => return (status, json!({ "message": "injected", "code": code }).to_string()),
        None => {}
    }
    let path = request.path.split('?').next().unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches("/api/v10").trim_start_matches('/').split('/').collect();
    let num = |i: usize| parts.get(i).and_then(|p| p.parse::<u64>().ok());
    let bot = s.bot;
    match (request.method.as_str(), parts.as_slice()) {
        ("GET", ["users", "@me"])
            if request.headers.get("authorization").is_some_and(|a| a.starts_with("Bearer ")) =>
        {
            let token = request.headers.get("authorization").map_or("", |a| a.trim_start_matches("Bearer "));
            match s.oauth.user_of(token) {
                Some((id, name)) => {
                    let mut user = user_json(id);
                    user["global_name"] = json!(name);
                    (200, user.to_string())
                }
                None => error(401, 0, "401: Unauthorized"),
            }
        }
        ("GET", ["users", "@me"]) => {
            let mut user = user_json(bot);
            user["bot"] = Value::Bool(true);
            (200, user.to_string())
        }
        ("GET", ["guilds", _]) => {
            let Some((id, g)) = num(1).and_then(|id| Some((id, s.guilds.get(&id)?))) else {
                return error(404, 10004, "Unknown Guild");
            };
            let roles: Vec<Value> = g.roles.iter().map(|(id, r)| role_json(*id, r)).collect();
            let owner = g.owner.unwrap_or(DEFAULT_OWNER).to_string();
            (
                200,
                json!({ "id": id.to_string(), "name": "guild", "owner_id": owner, "roles": roles,
                        "premium_tier": g.tier })
                .to_string(),
            )
        }
        ("GET", ["guilds", _, "roles"]) => {
            let Some(g) = num(1).and_then(|g| s.guilds.get(&g)) else {
                return error(404, 10004, "Unknown Guild");
            };
            (200, Value::Array(g.roles.iter().map(|(id, r)| role_json(*id, r)).collect()).to_string())
        }
        ("GET", ["guilds", _, "members", _]) => {
            let Some(g) = num(1).and_then(|g| s.guilds.get(&g)) else {
                return error(404, 10004, "Unknown Guild");
            };
            let Some((user, roles)) = num(3).and_then(|u| Some((u, g.members.get(&u)?))) else {
                return error(404, 10007, "Unknown Member");
            };
            let member = json!({
                "user": user_json(user), "roles": roles.iter().map(u64::to_string).collect::<Vec<_>>(),
                "deaf": false, "mute": false, "flags": 0, "joined_at": "2026-01-01T00:00:00+00:00",
            });
            (200, member.to_string())
        }
        ("PUT", ["applications", app, "commands"]) => register(&mut s, app, None, &request.body),
        ("PUT", ["applications", app, "guilds", guild, "commands"]) => {
            let guild = guild.parse().ok();
            register(&mut s, app, guild, &request.body)
        }
        (method @ ("PUT" | "DELETE"), ["guilds", _, "members", _, "roles", _]) => {
            let (Some(guild), Some(user), Some(role)) = (num(1), num(3), num(5)) else {
                return error(404, 0, "Not Found");
            };
            let Some(g) = s.guilds.get_mut(&guild) else { return error(404, 10004, "Unknown Guild") };
            let Some(target) = g.roles.get(&role).cloned() else { return error(404, 10011, "Unknown Role") };
            let bot_roles = g.members.get(&bot).cloned().unwrap_or_default();
            let bot_top =
                bot_roles.iter().filter_map(|r| g.roles.get(r)).map(|r| r.position).max().unwrap_or(0);
            let can =
                bot_roles.iter().filter_map(|r| g.roles.get(r)).any(|r| r.permissions & MANAGE_ROLES != 0);
            if !can || target.managed || target.position >= bot_top {
                return error(403, 50013, "Missing Permissions");
            }
            let Some(roles) = g.members.get_mut(&user) else { return error(404, 10007, "Unknown Member") };
            if method == "PUT" {
                roles.insert(role);
            } else {
                roles.remove(&role);
            }
            (204, String::new())
        }
        ("GET", ["gateway"]) => (200, json!({ "url": s.gateway_url }).to_string()),
        ("POST", ["interactions", _, token, "callback"]) => {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            s.callbacks.push(((*token).to_owned(), body));
            (204, String::new())
        }
        ("PATCH", ["webhooks", _, token, "messages", "@original"]) => {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let message = json!({
                "id": "1", "channel_id": "3", "author": user_json(bot), "content": body["content"],
                "timestamp": "2026-01-01T00:00:00+00:00", "edited_timestamp": null, "tts": false,
                "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
                "embeds": [], "pinned": false, "type": 0,
            });
            s.edits.push(((*token).to_owned(), body));
            (200, message.to_string())
        }
        ("POST", ["users", "@me", "channels"]) => {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let Some(user) = body["recipient_id"].as_str().and_then(|u| u.parse::<u64>().ok()) else {
                return error(400, 50035, "Invalid Form Body");
            };
            let next = DM_CHANNELS + s.dm_channels.len() as u64;
            let channel = *s.dm_channels.entry(user).or_insert(next);
            (
                200,
                json!({ "id": channel.to_string(), "type": 1, "recipients": [user_json(user)] }).to_string(),
            )
        }
        ("POST", ["channels", _, "messages"]) if s.dm_channels.values().any(|c| Some(*c) == num(1)) => {
            let channel = num(1).unwrap_or_default();
            let Some(user) = s.dm_channels.iter().find(|(_, c)| **c == channel).map(|(u, _)| *u) else {
                return error(404, 10003, "Unknown Channel");
            };
            if s.dms_closed.contains(&user) {
                return error(403, 50007, "Cannot send messages to this user");
            }
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            // `enforce_nonce`: a second message with a nonce already used is not created again.
            let repeated = body["enforce_nonce"] == json!(true)
                && s.dms.iter().any(|(u, b)| *u == user && b["nonce"] == body["nonce"]);
            if !repeated {
                s.dms.push((user, body.clone()));
            }
            let message = json!({
                "id": (DM_CHANNELS + s.dms.len() as u64).to_string(), "channel_id": channel.to_string(),
                "author": user_json(bot), "content": body["content"], "nonce": body["nonce"],
                "timestamp": "2026-01-01T00:00:00+00:00", "edited_timestamp": null, "tts": false,
                "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
                "embeds": [], "pinned": false, "type": 0,
            });
            (200, message.to_string())
        }
        _ => match s.oauth.respond(&request, &parts) {
            Some(answer) => answer,
            None => {
                s.channels.respond(bot, &request, &parts).unwrap_or_else(|| error(404, 0, "404: Not Found"))
            }
        },
    }
}

/// Bulk overwrite of commands: echoes them back as Discord does, with ids and versions.
fn register(s: &mut State, app: &str, guild: Option<u64>, body: &[u8]) -> (u16, String) {
    let Ok(Value::Array(commands)) = serde_json::from_slice::<Value>(body) else {
        return error(400, 50035, "Invalid Form Body");
    };
    let mut names = Vec::new();
    let echoed: Vec<Value> = commands
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut c = c.clone();
            names.push(c["name"].as_str().unwrap_or_default().to_owned());
            c["id"] = json!((1000 + i).to_string());
            c["application_id"] = json!(app);
            c["version"] = json!("1");
            if c.get("type").is_none() {
                c["type"] = json!(1);
            }
            c
        })
        .collect();
    s.commands.insert(guild, names);
    (200, Value::Array(echoed).to_string())
}
