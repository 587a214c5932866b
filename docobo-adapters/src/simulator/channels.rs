//! The fake Discord's guild channels, for the relay: channel messages (post, edit, delete, read
//! with `after`), channel webhooks (create, list, execute with `wait` and multipart uploads, edit
//! and delete their messages), and a CDN that serves source attachments. Message ids are real
//! snowflakes (milliseconds since Discord's epoch above bit 22), so reads by time work.
//!
//! Tests add source messages with [`super::discord::FakeDiscord::source_message`], which also
//! gives the MESSAGE_CREATE payload for the fake gateway.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::http::Request;

/// Discord's epoch, in Unix milliseconds.
const DISCORD_EPOCH_MS: u128 = 1_420_070_400_000;

/// A message in a fake guild channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMessage {
    pub id: u64,
    pub channel: u64,
    pub content: String,
    pub embeds: Value,
    /// (file name, bytes) uploaded with it.
    pub files: Vec<(String, usize)>,
    /// The webhook it was posted through, if any.
    pub webhook: Option<u64>,
    /// The name shown (a webhook's `username`, else the author's).
    pub username: String,
    pub avatar_url: Option<String>,
    pub author: u64,
    pub allowed_mentions: Value,
    pub nonce: Option<String>,
    pub edits: u32,
}

/// A channel webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub id: u64,
    pub channel: u64,
    pub token: String,
}

#[derive(Debug, Default)]
pub(super) struct Channels {
    /// Live messages, in posting order.
    messages: Vec<ChannelMessage>,
    /// Ids of messages deleted, in order.
    deleted: Vec<u64>,
    hooks: Vec<Hook>,
    counter: u64,
    /// Attachment bytes served under `/attachments/{name}`.
    cdn: BTreeMap<String, String>,
    /// Channels where the bot lacks Manage Webhooks.
    no_webhooks: BTreeSet<u64>,
    /// Guild channels `GET /channels/{id}` knows: their guild and permission overwrites.
    known: BTreeMap<u64, (u64, Value)>,
}

fn error(status: u16, code: u32, message: &str) -> (u16, String) {
    (status, json!({ "code": code, "message": message }).to_string())
}

/// The message as Discord's API shows it.
fn message_json(m: &ChannelMessage) -> Value {
    let attachments: Vec<Value> = m
        .files
        .iter()
        .enumerate()
        .map(|(i, (name, size))| {
            json!({ "id": (m.id + 1 + i as u64).to_string(), "filename": name, "size": size,
                    "url": format!("https://cdn.example/{name}"), "proxy_url": format!("https://cdn.example/{name}") })
        })
        .collect();
    json!({
        "id": m.id.to_string(), "channel_id": m.channel.to_string(), "content": m.content,
        "author": { "id": m.webhook.unwrap_or(m.author).to_string(), "username": m.username, "discriminator": "0",
                    "global_name": null, "avatar": null, "bot": m.webhook.is_some() },
        "webhook_id": m.webhook.map(|w| w.to_string()), "nonce": m.nonce,
        "timestamp": "2026-01-01T00:00:00+00:00", "edited_timestamp": null, "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": attachments,
        "embeds": m.embeds, "pinned": false, "type": 0,
    })
}

/// The JSON payload and files of a request: `payload_json` and `files[n]` of a multipart form,
/// or the JSON body.
fn payload(request: &Request) -> (Value, Vec<(String, usize)>) {
    let boundary = request
        .headers
        .get("content-type")
        .and_then(|t| t.split("boundary=").nth(1))
        .map(|b| b.trim_matches('"').to_owned());
    let Some(boundary) = boundary else {
        return (serde_json::from_slice(&request.body).unwrap_or(Value::Null), Vec::new());
    };
    let body = String::from_utf8_lossy(&request.body);
    let mut json = Value::Null;
    let mut files = Vec::new();
    for section in body.split(&format!("--{boundary}")) {
        let Some((head, content)) = section.split_once("\r\n\r\n") else { continue };
        let content = content.strip_suffix("\r\n").unwrap_or(content);
        let field = |key: &str| {
            head.split(&format!("{key}=\"")).nth(1).and_then(|rest| rest.split('"').next()).map(str::to_owned)
        };
        match (field("name").as_deref(), field("filename")) {
            (Some("payload_json"), _) => json = serde_json::from_str(content).unwrap_or(Value::Null),
            (Some(name), Some(filename)) if name.starts_with("files[") => {
                files.push((filename, content.len()))
            }
            _ => {}
        }
    }
    (json, files)
}

impl Channels {
    /// A new snowflake for now.
    fn snowflake(&mut self) -> u64 {
        self.counter += 1;
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
            .saturating_sub(DISCORD_EPOCH_MS);
        (u64::try_from(ms).unwrap_or(0) << 22) + (self.counter % (1 << 22))
    }

    pub(super) fn messages(&self, channel: u64) -> Vec<ChannelMessage> {
        self.messages.iter().filter(|m| m.channel == channel).cloned().collect()
    }

    pub(super) fn deleted(&self) -> Vec<u64> {
        self.deleted.clone()
    }

    pub(super) fn hooks(&self, channel: u64) -> Vec<Hook> {
        self.hooks.iter().filter(|h| h.channel == channel).cloned().collect()
    }

    pub(super) fn remove_hook(&mut self, channel: u64) {
        self.hooks.retain(|h| h.channel != channel);
    }

    pub(super) fn set_channel(&mut self, guild: u64, channel: u64, overwrites: Value) {
        self.known.insert(channel, (guild, overwrites));
    }

    pub(super) fn deny_webhooks(&mut self, channel: u64, denied: bool) {
        if denied {
            self.no_webhooks.insert(channel);
        } else {
            self.no_webhooks.remove(&channel);
        }
    }

    /// Adds a message by `author` to a source channel, with attachments (name, bytes) served
    /// from the CDN at `base`; its MESSAGE_CREATE payload.
    pub(super) fn source(
        &mut self,
        base: &str,
        (guild, channel, author): (u64, u64, u64),
        content: &str,
        files: &[(&str, &str)],
    ) -> Value {
        let id = self.snowflake();
        for (name, bytes) in files {
            self.cdn.insert(format!("{id}-{name}"), (*bytes).to_owned());
        }
        let message = ChannelMessage {
            id,
            channel,
            content: content.to_owned(),
            embeds: json!([]),
            files: files.iter().map(|(n, b)| ((*n).to_owned(), b.len())).collect(),
            webhook: None,
            username: format!("analyst{author}"),
            avatar_url: None,
            author,
            allowed_mentions: Value::Null,
            nonce: None,
            edits: 0,
        };
        let mut payload = message_json(&message);
        payload["author"]["bot"] = json!(false);
        payload["guild_id"] = json!(guild.to_string());
        payload["attachments"] = Value::Array(
            files
                .iter()
                .enumerate()
                .map(|(i, (name, bytes))| {
                    let url = format!("{base}/attachments/{id}-{name}?ex=1&is=2&hm=3");
                    json!({ "id": (id + 1 + i as u64).to_string(), "filename": name, "size": bytes.len(),
                            "url": url, "proxy_url": url, "content_type": "image/png" })
                })
                .collect(),
        );
        self.messages.push(message);
        payload
    }

    /// Answers the routes above, or `None` for a route that is not theirs.
    pub(super) fn respond(&mut self, bot: u64, request: &Request, parts: &[&str]) -> Option<(u16, String)> {
        let num = |i: usize| parts.get(i).and_then(|p| p.parse::<u64>().ok());
        Some(match (request.method.as_str(), parts) {
            ("GET", ["attachments", name]) => match self.cdn.get(*name) {
                Some(bytes) => (200, bytes.clone()),
                None => error(404, 0, "404: Not Found"),
            },
            ("GET", ["channels", _]) => match self.known.get(&num(1)?) {
                Some((guild, overwrites)) => {
                    let body = json!({ "id": parts[1], "type": 0, "guild_id": guild.to_string(),
                                       "name": "signals", "permission_overwrites": overwrites });
                    (200, body.to_string())
                }
                None => error(404, 10003, "Unknown Channel"),
            },
            ("GET", ["channels", _, "webhooks"]) => {
                let channel = num(1)?;
                let hooks: Vec<Value> = self
                    .hooks(channel)
                    .iter()
                    .map(|h| json!({ "id": h.id.to_string(), "type": 1, "channel_id": channel.to_string(),
                                     "token": h.token, "name": "Docobo relay", "application_id": bot.to_string(),
                                     "user": { "id": bot.to_string(), "username": "docobo" } }))
                    .collect();
                (200, Value::Array(hooks).to_string())
            }
            ("POST", ["channels", _, "webhooks"]) => {
                let channel = num(1)?;
                if self.no_webhooks.contains(&channel) {
                    return Some(error(403, 50013, "Missing Permissions"));
                }
                let id = self.snowflake();
                let hook = Hook { id, channel, token: format!("token-{id}") };
                self.hooks.push(hook.clone());
                let body = json!({ "id": id.to_string(), "type": 1, "channel_id": channel.to_string(),
                                   "token": hook.token, "application_id": bot.to_string() });
                (200, body.to_string())
            }
            ("POST", ["webhooks", _, token]) => {
                let Some(hook) =
                    self.hooks.iter().find(|h| Some(h.id) == num(1) && h.token == *token).cloned()
                else {
                    return Some(error(404, 10015, "Unknown Webhook"));
                };
                let (body, files) = payload(request);
                let message = self.post(hook.channel, bot, Some(&hook), &body, files);
                let wait = request.path.contains("wait=true");
                if wait { (200, message_json(&message).to_string()) } else { (204, String::new()) }
            }
            ("PATCH" | "DELETE", ["webhooks", _, token, "messages", _]) => {
                if !self.hooks.iter().any(|h| Some(h.id) == num(1) && h.token == *token) {
                    return Some(error(404, 10015, "Unknown Webhook"));
                }
                self.change(request, num(4)?, num(1))
            }
            ("POST", ["channels", _, "messages"]) => {
                let (body, files) = payload(request);
                let channel = num(1)?;
                let enforced = body["enforce_nonce"] == json!(true);
                let repeat = self.messages.iter().find(|m| {
                    enforced
                        && m.channel == channel
                        && m.nonce.is_some()
                        && m.nonce.as_deref() == body["nonce"].as_str()
                });
                let message = match repeat {
                    Some(first) => first.clone(),
                    None => self.post(channel, bot, None, &body, files),
                };
                (200, message_json(&message).to_string())
            }
            ("PATCH" | "DELETE", ["channels", _, "messages", _]) => self.change(request, num(3)?, None),
            ("GET", ["channels", _, "messages"]) => {
                let channel = num(1)?;
                let after = request
                    .path
                    .split("after=")
                    .nth(1)
                    .and_then(|a| a.split('&').next()?.parse::<u64>().ok());
                let mut found: Vec<Value> = self
                    .messages
                    .iter()
                    .filter(|m| m.channel == channel && after.is_none_or(|a| m.id > a))
                    .map(message_json)
                    .collect();
                found.reverse();
                found.truncate(100);
                (200, Value::Array(found).to_string())
            }
            _ => return None,
        })
    }

    fn post(
        &mut self,
        channel: u64,
        bot: u64,
        hook: Option<&Hook>,
        body: &Value,
        files: Vec<(String, usize)>,
    ) -> ChannelMessage {
        let id = self.snowflake();
        let message = ChannelMessage {
            id,
            channel,
            content: body["content"].as_str().unwrap_or_default().to_owned(),
            embeds: body.get("embeds").cloned().unwrap_or(json!([])),
            files,
            webhook: hook.map(|h| h.id),
            username: body["username"].as_str().unwrap_or("docobo").to_owned(),
            avatar_url: body["avatar_url"].as_str().map(str::to_owned),
            author: bot,
            allowed_mentions: body.get("allowed_mentions").cloned().unwrap_or(Value::Null),
            nonce: body["nonce"].as_str().map(str::to_owned),
            edits: 0,
        };
        self.messages.push(message.clone());
        message
    }

    /// PATCH or DELETE of message `id`, through webhook `hook` or as the bot.
    fn change(&mut self, request: &Request, id: u64, hook: Option<u64>) -> (u16, String) {
        let Some(index) = self.messages.iter().position(|m| m.id == id && m.webhook == hook) else {
            return error(404, 10008, "Unknown Message");
        };
        if request.method == "DELETE" {
            self.messages.remove(index);
            self.deleted.push(id);
            return (204, String::new());
        }
        let (body, files) = payload(request);
        let m = &mut self.messages[index];
        if let Some(content) = body["content"].as_str() {
            m.content = content.to_owned();
        }
        if let Some(embeds) = body.get("embeds") {
            m.embeds = embeds.clone();
        }
        if !files.is_empty() {
            m.files = files;
        }
        m.allowed_mentions = body.get("allowed_mentions").cloned().unwrap_or(Value::Null);
        m.edits += 1;
        (200, message_json(m).to_string())
    }
}
