//! The relay's target side: [`DiscordMirrors`] implements the core's `MirrorGateway` over
//! Discord's REST API, through the same pacer, timeout and error classification as role calls.
//!
//! - **Webhook relays** post through one channel webhook per target channel. It is found among
//!   the channel's webhooks by its creator (the bot), created only when none exists, and its
//!   token is kept in memory only: after a restart the same webhook is found again, so nothing
//!   secret is stored and Discord's 15-webhooks-per-channel limit is never reached by restarts.
//!   Executes use `wait=true` to learn the message id. Unknown Webhook (10015) forgets it and
//!   recreates it once; if that fails too, the job is parked.
//! - **Bot relays** post as the bot with `nonce` + `enforce_nonce`.
//! - Every request carries `allowed_mentions`: nothing, or the relay's ping role.
//! - Files come from the [`AttachmentStore`] and go up as `files[n]` beside `payload_json`.
//!
//! Discord's answers, for the job: 429 and 5xx retry (the 429's wait is a floor); 30046 (edits
//! of old messages exhausted) retries in ten minutes with the newest content; 50013 and 50001
//! park with the permission to grant; Unknown Message (10008) on a delete is success.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use docobo_core::domain::{Author, MessageId, PostedMessage, Relay, Timestamp, Via};
use docobo_core::ports::{GatewayError, MirrorError, MirrorGateway, MirrorPart};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use super::DiscordRoles;
use super::attachments::AttachmentStore;

const UNKNOWN_MESSAGE: isize = 10008;
const UNKNOWN_WEBHOOK: isize = 10015;
const OLD_MESSAGE_EDITS: isize = 30046;
/// The name of the webhook Docobo creates in each target channel.
const WEBHOOK_NAME: &str = "Docobo relay";

/// A channel webhook's id and token.
#[derive(Clone)]
struct Hook {
    id: u64,
    token: String,
}

/// Mirrors in target channels.
#[derive(Clone)]
pub struct DiscordMirrors {
    discord: DiscordRoles,
    store: AttachmentStore,
    /// Webhooks by target channel.
    hooks: Arc<Mutex<HashMap<u64, Hook>>>,
    /// Upload limits by target guild, and when each was read.
    limits: Arc<Mutex<HashMap<u64, (std::time::Instant, u64)>>>,
}

/// How long a guild's upload limit (its boost level) is trusted.
const LIMIT_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// The per-file upload limit of a boost level, as Discord documents it for servers: 10 MiB up
/// to level 1, 50 MiB at level 2, 100 MiB at level 3. That a bot's uploads follow the target
/// server's level is an inference (`shared/reference/sellapp-relay-dm.md` B2).
fn limit_of_tier(tier: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    match tier {
        0 | 1 => 10 * MIB,
        2 => 50 * MIB,
        _ => 100 * MIB,
    }
}

impl std::fmt::Debug for DiscordMirrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordMirrors").finish_non_exhaustive()
    }
}

fn mirror_error(relay: &Relay, (error, code): (GatewayError, isize)) -> MirrorError {
    let channel = relay.target_channel;
    match error {
        _ if code == OLD_MESSAGE_EDITS => MirrorError::Retryable {
            after: Some(time::Duration::minutes(10)),
            why: "Discord's edit limit for messages older than an hour (30046)".to_owned(),
        },
        GatewayError::Retryable { after, why } => MirrorError::Retryable { after, why },
        _ if code == 50013 => MirrorError::Refused {
            why: match relay.via {
                Via::Webhook => format!(
                    "Missing Permissions (50013) in channel {channel}: give the bot Manage Webhooks there"
                ),
                Via::Bot => format!(
                    "Missing Permissions (50013) in channel {channel}: give the bot Send Messages, Embed Links and \
                     Attach Files there"
                ),
            },
        },
        _ if code == 50001 => MirrorError::Refused {
            why: format!(
                "Missing Access (50001): the bot cannot see channel {channel}; add it to the channel"
            ),
        },
        other => MirrorError::Refused { why: other.to_string() },
    }
}

impl DiscordMirrors {
    pub fn new(discord: DiscordRoles, store: AttachmentStore) -> Self {
        DiscordMirrors { discord, store, hooks: Arc::default(), limits: Arc::default() }
    }

    fn cached(&self, channel: u64) -> Option<Hook> {
        self.hooks.lock().unwrap_or_else(PoisonError::into_inner).get(&channel).cloned()
    }

    fn forget(&self, channel: u64) {
        self.hooks.lock().unwrap_or_else(PoisonError::into_inner).remove(&channel);
    }

    /// Sends `request` about `relay`'s target; the body of a 2xx, or Discord's error and code.
    /// Paced per target channel, not per guild: Discord limits webhooks per webhook and per
    /// channel, and a relay must not slow the guild's role changes down (nor they it).
    async fn send(
        &self,
        relay: &Relay,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, (GatewayError, isize)> {
        let built = request.build().map_err(|e| {
            (GatewayError::Retryable { after: None, why: format!("{what}: {}", e.without_url()) }, 0)
        })?;
        self.discord.send_coded(relay.target_channel.get(), "relay", what, built).await
    }

    /// The bot's user id, as Discord's JSON writes it.
    async fn bot_id(&self, relay: &Relay) -> Result<String, MirrorError> {
        let bot = self.discord.bot_user(relay.target_guild).await.map_err(|e| mirror_error(relay, (e, 0)))?;
        Ok(bot.get().to_string())
    }

    /// The target channel's webhook: cached, else found among the channel's, else created.
    async fn hook(&self, relay: &Relay) -> Result<Hook, MirrorError> {
        let channel = relay.target_channel.get();
        if let Some(hook) = self.cached(channel) {
            return Ok(hook);
        }
        let bot = self.bot_id(relay).await?;
        let list = self.discord.request(Method::GET, &format!("/channels/{channel}/webhooks"));
        let body = self
            .send(relay, "listing the channel's webhooks", list)
            .await
            .map_err(|e| mirror_error(relay, e))?;
        let hooks: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
        let ours = hooks.iter().find(|h| {
            h["token"].is_string()
                && (h["application_id"].as_str() == Some(&bot) || h["user"]["id"].as_str() == Some(&bot))
        });
        let hook = match ours {
            Some(found) => found.clone(),
            None => {
                let create = self
                    .discord
                    .request(Method::POST, &format!("/channels/{channel}/webhooks"))
                    .json(&json!({ "name": WEBHOOK_NAME }));
                let body = self
                    .send(relay, "creating the channel webhook", create)
                    .await
                    .map_err(|e| mirror_error(relay, e))?;
                serde_json::from_slice(&body).unwrap_or_default()
            }
        };
        let (Some(id), Some(token)) =
            (hook["id"].as_str().and_then(|i| i.parse().ok()), hook["token"].as_str())
        else {
            return Err(MirrorError::Retryable {
                after: None,
                why: "Discord's answer was not a webhook".to_owned(),
            });
        };
        let hook = Hook { id, token: token.to_owned() };
        self.hooks.lock().unwrap_or_else(PoisonError::into_inner).insert(channel, hook.clone());
        Ok(hook)
    }

    /// The JSON of a part, and its files as a multipart form when it has any.
    async fn payload(
        &self,
        part: &MirrorPart,
        mut body: Value,
    ) -> Result<(Value, Option<Form>), MirrorError> {
        body["content"] = json!(part.content);
        body["embeds"] =
            Value::Array(part.embeds.iter().filter_map(|e| serde_json::from_str(e).ok()).collect());
        body["allowed_mentions"] = match part.ping {
            Some(role) => json!({ "parse": [], "roles": [role.to_string()] }),
            None => json!({ "parse": [] }),
        };
        if part.files.is_empty() {
            return Ok((body, None));
        }
        let mut form = Form::new();
        let mut listed = Vec::new();
        for (i, file) in part.files.iter().enumerate() {
            let Some(digest) = &file.stored else { continue };
            let bytes = self.store.read(digest).await.map_err(|e| MirrorError::Retryable {
                after: None,
                why: format!("reading the stored attachment {}: {e}", file.name),
            })?;
            form = form.part(format!("files[{i}]"), Part::bytes(bytes).file_name(file.name.clone()));
            listed.push(json!({ "id": i, "filename": file.name }));
        }
        body["attachments"] = Value::Array(listed);
        Ok((body.clone(), Some(form.text("payload_json", body.to_string()))))
    }

    /// `request` with the part's body: JSON, or multipart when it uploads files.
    async fn with_body(
        &self,
        request: reqwest::RequestBuilder,
        part: &MirrorPart,
        base: Value,
    ) -> Result<reqwest::RequestBuilder, MirrorError> {
        Ok(match self.payload(part, base).await? {
            (_, Some(form)) => request.multipart(form),
            (body, None) => request.json(&body),
        })
    }

    fn webhook_path(hook: &Hook, message: Option<MessageId>) -> String {
        match message {
            Some(m) => format!("/webhooks/{}/{}/messages/{m}", hook.id, hook.token),
            None => format!("/webhooks/{}/{}", hook.id, hook.token),
        }
    }

    /// Where a posted message is edited or deleted: through the webhook that posted it (found
    /// again after a restart), or as the bot.
    async fn message_path(&self, relay: &Relay, posted: PostedMessage) -> Result<String, MirrorError> {
        let Some(webhook) = posted.webhook else {
            return Ok(format!("/channels/{}/messages/{}", relay.target_channel, posted.id));
        };
        let hook = self.hook(relay).await?;
        if hook.id != webhook {
            return Err(gone_webhook(relay));
        }
        Ok(Self::webhook_path(&hook, Some(posted.id)))
    }
}

fn gone_webhook(relay: &Relay) -> MirrorError {
    MirrorError::Refused {
        why: format!(
            "the webhook that posted this mirror in channel {} was deleted, so Docobo can no longer edit or delete it",
            relay.target_channel
        ),
    }
}

fn message_id(body: &[u8]) -> Result<MessageId, MirrorError> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|m| m["id"].as_str().and_then(|i| i.parse().ok()))
        .ok_or_else(|| MirrorError::Retryable {
            after: None,
            why: "Discord's answer was not a message".to_owned(),
        })
}

#[async_trait]
impl MirrorGateway for DiscordMirrors {
    async fn post(
        &self,
        relay: &Relay,
        author: &Author,
        part: &MirrorPart,
        nonce: &str,
    ) -> Result<PostedMessage, MirrorError> {
        if relay.via == Via::Bot {
            let path = format!("/channels/{}/messages", relay.target_channel);
            let base = json!({ "nonce": nonce, "enforce_nonce": true });
            let request = self.with_body(self.discord.request(Method::POST, &path), part, base).await?;
            let body =
                self.send(relay, "posting the mirror", request).await.map_err(|e| mirror_error(relay, e))?;
            return Ok(PostedMessage { id: message_id(&body)?, webhook: None });
        }
        let base = json!({ "username": author.name.chars().take(80).collect::<String>(), "avatar_url": author.avatar_url });
        // Unknown Webhook (an admin deleted it): forget it, find or create one, try once more.
        for _ in 0..2 {
            let hook = self.hook(relay).await?;
            let path = Self::webhook_path(&hook, None);
            let request = self.discord.request(Method::POST, &path).query(&[("wait", "true")]);
            let request = self.with_body(request, part, base.clone()).await?;
            match self.send(relay, "posting the mirror", request).await {
                Ok(body) => return Ok(PostedMessage { id: message_id(&body)?, webhook: Some(hook.id) }),
                Err((_, UNKNOWN_WEBHOOK)) => self.forget(relay.target_channel.get()),
                Err(e) => return Err(mirror_error(relay, e)),
            }
        }
        Err(MirrorError::Refused {
            why: format!(
                "the channel webhook in {} disappeared again right after Docobo replaced it: check the server's \
                 integrations (Server Settings → Integrations → Webhooks), then retry",
                relay.target_channel
            ),
        })
    }

    async fn upload_limit(&self, relay: &Relay) -> u64 {
        let guild = relay.target_guild.get();
        let cached = self.limits.lock().unwrap_or_else(PoisonError::into_inner).get(&guild).copied();
        if let Some((_, limit)) = cached.filter(|(read, _)| read.elapsed() < LIMIT_TTL) {
            return limit;
        }
        let request = self.discord.request(Method::GET, &format!("/guilds/{guild}"));
        let tier = match self.send(relay, "reading the target server's boost level", request).await {
            Ok(body) => serde_json::from_slice::<Value>(&body).ok().and_then(|g| g["premium_tier"].as_u64()),
            Err(_) => None,
        };
        let limit = limit_of_tier(tier.unwrap_or(0));
        if tier.is_some() {
            let entry = (std::time::Instant::now(), limit);
            self.limits.lock().unwrap_or_else(PoisonError::into_inner).insert(guild, entry);
        }
        limit
    }

    async fn edit(&self, relay: &Relay, posted: PostedMessage, part: &MirrorPart) -> Result<(), MirrorError> {
        let path = self.message_path(relay, posted).await?;
        let request = self.with_body(self.discord.request(Method::PATCH, &path), part, json!({})).await?;
        match self.send(relay, "editing the mirror", request).await {
            Ok(_) => Ok(()),
            Err((_, UNKNOWN_WEBHOOK)) => {
                self.forget(relay.target_channel.get());
                Err(gone_webhook(relay))
            }
            Err(e) => Err(mirror_error(relay, e)),
        }
    }

    async fn delete(&self, relay: &Relay, posted: PostedMessage) -> Result<(), MirrorError> {
        let path = self.message_path(relay, posted).await?;
        match self.send(relay, "deleting the mirror", self.discord.request(Method::DELETE, &path)).await {
            Ok(_) | Err((_, UNKNOWN_MESSAGE)) => Ok(()),
            Err(e) => Err(mirror_error(relay, e)),
        }
    }

    async fn posted_since(
        &self,
        relay: &Relay,
        since: Timestamp,
    ) -> Result<Vec<(PostedMessage, String)>, MirrorError> {
        let after = snowflake_at(since);
        let path = format!("/channels/{}/messages", relay.target_channel);
        let request = self
            .discord
            .request(Method::GET, &path)
            .query(&[("after", after.to_string()), ("limit", "100".to_owned())]);
        let body = self
            .send(relay, "reading the target's recent messages", request)
            .await
            .map_err(|e| mirror_error(relay, e))?;
        let messages: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
        let hook = match relay.via {
            Via::Webhook => Some(self.hook(relay).await?.id.to_string()),
            Via::Bot => None,
        };
        let bot = self.bot_id(relay).await?;
        let mut ours: Vec<(PostedMessage, String)> = messages
            .iter()
            .filter_map(|m| {
                let id: MessageId = m["id"].as_str()?.parse().ok()?;
                let webhook = m["webhook_id"].as_str();
                let mine = match relay.via {
                    Via::Webhook => webhook.is_some() && webhook.map(str::to_owned) == hook,
                    Via::Bot => webhook.is_none() && m["author"]["id"].as_str() == Some(&bot),
                };
                let webhook = webhook.and_then(|w| w.parse().ok());
                mine.then(|| {
                    (PostedMessage { id, webhook }, m["content"].as_str().unwrap_or_default().to_owned())
                })
            })
            .collect();
        ours.sort_by_key(|(p, _)| p.id);
        Ok(ours)
    }
}

/// The smallest snowflake of a moment: Discord's ids carry milliseconds since 2015 above bit 22.
fn snowflake_at(at: Timestamp) -> u64 {
    const DISCORD_EPOCH_MS: i128 = 1_420_070_400_000;
    let ms = at.unix_timestamp_nanos() / 1_000_000 - DISCORD_EPOCH_MS;
    u64::try_from(ms.max(0)).unwrap_or(0) << 22
}
