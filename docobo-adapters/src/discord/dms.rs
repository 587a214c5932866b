//! Direct messages for member notices: [`DiscordRoles`] implements the core's `DirectMessages`.
//!
//! `POST /users/@me/channels` opens (or returns) the DM channel, whose id is cached, so a member
//! costs that call once; `POST /channels/{id}/messages` sends with `allowed_mentions` empty and
//! the notice's `nonce` with `enforce_nonce`, so Discord drops a repeat sent shortly after (a
//! sender that died between Discord's answer and its record). Both go through the same pacer,
//! timeout and error classification as the role calls. Discord's 50007 (DMs closed, the bot
//! blocked, no shared server; seen as 403 on the message and 400 on opening the channel to a bot)
//! is [`DmError::Unreachable`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use docobo_core::domain::UserId;
use docobo_core::ports::{DirectMessage, DirectMessages, DmError, GatewayError};
use serde_json::{Value, json};
use serenity::http::{LightMethod, Request, Route};

use super::DiscordRoles;

/// Discord's "Cannot send messages to this user".
const CANNOT_MESSAGE: isize = 50007;
/// Most DM channel ids kept; past it the cache starts over (each costs one call to reopen).
const MAX_CACHED: usize = 100_000;

/// DM channel ids by user.
#[derive(Debug, Clone, Default)]
pub(super) struct DmChannels(Arc<Mutex<HashMap<UserId, u64>>>);

impl DmChannels {
    fn get(&self, user: UserId) -> Option<u64> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&user).copied()
    }

    fn put(&self, user: UserId, channel: u64) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_CACHED {
            map.clear();
        }
        map.insert(user, channel);
    }
}

fn dm_error((error, code): (GatewayError, isize)) -> DmError {
    match error {
        _ if code == CANNOT_MESSAGE => DmError::Unreachable,
        GatewayError::Retryable { after, why } => DmError::Retryable { after, why },
        other => DmError::Refused { why: other.to_string() },
    }
}

/// The message body: text, no mentions, the nonce enforced, a link button and an image.
fn body(message: &DirectMessage) -> Value {
    let mut body = json!({
        "content": message.text,
        "allowed_mentions": { "parse": [] },
        "nonce": message.nonce,
        "enforce_nonce": true,
    });
    if let Some((label, url)) = &message.button {
        body["components"] =
            json!([{ "type": 1, "components": [{ "type": 2, "style": 5, "label": label, "url": url }] }]);
    }
    if let Some(image) = &message.image {
        body["embeds"] = json!([{ "image": { "url": image } }]);
    }
    body
}

impl DiscordRoles {
    /// The DM channel with `user`, opened once.
    async fn dm_channel(&self, user: UserId) -> Result<u64, DmError> {
        if let Some(channel) = self.dm_channels.get(user) {
            return Ok(channel);
        }
        #[derive(serde::Deserialize)]
        struct Channel {
            id: String,
        }
        let body = json!({ "recipient_id": user.to_string() }).to_string().into_bytes();
        let request = Request::new(Route::UserMeDmChannels, LightMethod::Post).body(Some(body));
        let answer =
            self.raw_coded(0, "dm-open", "opening the DM channel", request).await.map_err(dm_error)?;
        let channel =
            serde_json::from_slice::<Channel>(&answer).ok().and_then(|c| c.id.parse().ok()).ok_or_else(
                || DmError::Retryable { after: None, why: "Discord's answer was not a channel".to_owned() },
            )?;
        self.dm_channels.put(user, channel);
        Ok(channel)
    }
}

#[async_trait]
impl DirectMessages for DiscordRoles {
    async fn send_dm(&self, user: UserId, message: &DirectMessage) -> Result<(), DmError> {
        let channel = self.dm_channel(user).await?;
        let route = Route::ChannelMessages { channel_id: channel.into() };
        let request =
            Request::new(route, LightMethod::Post).body(Some(body(message).to_string().into_bytes()));
        self.raw_coded(0, "dm-send", "sending the DM", request).await.map(drop).map_err(dm_error)
    }
}
