//! A fake Discord gateway (websocket, JSON text frames): HELLO, IDENTIFY → READY, heartbeat
//! ACKs, and whatever events a test dispatches, numbered as Discord numbers them. Point
//! [`super::discord::FakeDiscord::set_gateway_url`] at it so serenity finds it.

use std::sync::{Arc, Mutex, PoisonError};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Mutex as AsyncMutex, mpsc};
use tokio_tungstenite::tungstenite::Message;

/// A running fake gateway on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct FakeGateway {
    /// `ws://127.0.0.1:PORT`.
    pub url: String,
    events: mpsc::UnboundedSender<(String, Value)>,
    identify: Arc<Mutex<Option<Value>>>,
}

impl FakeGateway {
    /// Starts the gateway for bot user `bot` of application `application`.
    pub async fn start(bot: u64, application: u64) -> std::io::Result<FakeGateway> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("ws://{}", listener.local_addr()?);
        let (events, queued) = mpsc::unbounded_channel::<(String, Value)>();
        let queued = Arc::new(AsyncMutex::new(queued));
        let identify = Arc::new(Mutex::new(None));
        let seen = identify.clone();
        let ready = json!({
            "v": 10, "session_id": "fake-session", "resume_gateway_url": url.clone(), "guilds": [],
            "user": { "id": bot.to_string(), "username": "docobo", "discriminator": "0", "global_name": null,
                      "avatar": null, "bot": true, "verified": true, "mfa_enabled": false, "flags": 0 },
            "application": { "id": application.to_string(), "flags": 0 },
        });
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { continue };
                let hello = json!({ "op": 10, "d": { "heartbeat_interval": 41_250 } });
                if ws.send(Message::Text(hello.to_string())).await.is_err() {
                    continue;
                }
                let mut queued = queued.lock().await;
                let mut seq = 0u64;
                loop {
                    let out = tokio::select! {
                        incoming = ws.next() => {
                            let Some(Ok(Message::Text(text))) = incoming else { break };
                            let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                            match frame["op"].as_u64() {
                                Some(1) => json!({ "op": 11 }),
                                Some(2) => {
                                    *seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(frame["d"].clone());
                                    seq += 1;
                                    json!({ "op": 0, "t": "READY", "s": seq, "d": ready })
                                }
                                _ => continue,
                            }
                        }
                        Some((name, data)) = queued.recv() => {
                            seq += 1;
                            json!({ "op": 0, "t": name, "s": seq, "d": data })
                        }
                    };
                    if ws.send(Message::Text(out.to_string())).await.is_err() {
                        break;
                    }
                }
            }
        });
        Ok(FakeGateway { url, events, identify })
    }

    /// Sends a dispatch event (`GUILD_CREATE`, `GUILD_MEMBER_ADD`, `INTERACTION_CREATE`, …) to
    /// the connected client, or to the next one that connects.
    pub fn dispatch(&self, name: &str, data: Value) {
        let _ = self.events.send((name.to_owned(), data));
    }

    /// The IDENTIFY payload the client sent, once it has.
    pub async fn wait_for_identify(&self) -> Option<Value> {
        for _ in 0..1000 {
            if let Some(d) = self.identify.lock().unwrap_or_else(PoisonError::into_inner).clone() {
                return Some(d);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        None
    }
}

/// A `GUILD_CREATE` payload for a small guild, as Discord sends it when the bot joins one.
pub fn guild_create(guild: u64, name: &str, owner: u64) -> Value {
    let mut payload = json!({
        "id": guild.to_string(), "name": name, "icon": null, "icon_hash": null, "splash": null,
        "discovery_splash": null, "owner_id": owner.to_string(), "afk_channel_id": null, "afk_timeout": 300,
        "widget_enabled": false, "widget_channel_id": null, "verification_level": 0,
        "default_message_notifications": 0, "explicit_content_filter": 0, "roles": [], "emojis": [],
        "features": [], "mfa_level": 0, "application_id": null, "system_channel_id": null,
        "system_channel_flags": 0, "rules_channel_id": null, "max_presences": null, "max_members": 500000,
    });
    let rest = json!({
        "vanity_url_code": null, "description": null, "banner": null, "premium_tier": 0,
        "premium_subscription_count": 0, "preferred_locale": "en-US", "public_updates_channel_id": null,
        "max_video_channel_users": 25, "max_stage_video_channel_users": 50, "nsfw_level": 0,
        "stickers": [], "premium_progress_bar_enabled": false, "joined_at": "2026-01-01T00:00:00+00:00",
        "large": false, "unavailable": false, "member_count": 2, "voice_states": [], "members": [],
        "channels": [], "threads": [], "presences": [], "stage_instances": [], "guild_scheduled_events": [],
        "safety_alerts_channel_id": null, "incidents_data": null,
    });
    if let (Some(all), Value::Object(rest)) = (payload.as_object_mut(), rest) {
        all.extend(rest);
    }
    payload
}

/// A `GUILD_MEMBER_ADD` payload: `user` joined `guild`.
pub fn member_add(guild: u64, user: u64) -> Value {
    json!({
        "guild_id": guild.to_string(), "roles": [], "deaf": false, "mute": false, "flags": 0,
        "joined_at": "2026-01-01T00:00:00+00:00",
        "user": { "id": user.to_string(), "username": format!("user{user}"), "discriminator": "0",
                  "global_name": null, "avatar": null },
    })
}
