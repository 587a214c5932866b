//! Discord interactions over HTTP (the Interactions Endpoint): verification and the commands
//! that exist so far, independent of how the interaction arrived.
//!
//! Discord signs `timestamp ++ body` with the application's Ed25519 key (`X-Signature-Ed25519`,
//! `X-Signature-Timestamp`); serenity's `Verifier` checks it, and a timestamp more than 5 minutes
//! away is refused as a replay. `PING` is answered `PONG`; `/help` and `/status` answer with
//! ephemeral messages. `/setup` and `/join` arrive with the rest of the Discord issue.

use docobo_core::domain::{GuildId, Timestamp, UserId};
use docobo_core::ports::{CatalogRepo, EntitlementRepo, StoreError};
use docobo_core::service::member_status;
use serenity::all::{CreateInteractionResponse, CreateInteractionResponseMessage, Interaction};
pub use serenity::interactions_endpoint::Verifier;
use time::format_description::well_known::Rfc3339;

/// How far `X-Signature-Timestamp` may be from now.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// Why an interaction request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InteractionError {
    #[error("missing or malformed signature headers")]
    MissingSignature,
    #[error("the signature does not match")]
    BadSignature,
    #[error("the timestamp is too old or in the future")]
    Stale,
    #[error("not an interaction: {0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The verifier for `DISCORD_PUBLIC_KEY` (64 hex characters), or `None` when it is not one.
pub fn verifier(public_key_hex: &str) -> Option<Verifier> {
    let hex = public_key_hex.trim();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Verifier::try_new(key).ok()
}

/// Checks Discord's signature over the raw body.
pub fn verify(
    verifier: &Verifier,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: Timestamp,
) -> Result<(), InteractionError> {
    let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
        return Err(InteractionError::MissingSignature);
    };
    let sent: i64 = timestamp.trim().parse().map_err(|_| InteractionError::MissingSignature)?;
    if (now.unix_timestamp() - sent).abs() > TOLERANCE_SECONDS {
        return Err(InteractionError::Stale);
    }
    verifier.verify(signature, timestamp, body).map_err(|()| InteractionError::BadSignature)
}

fn ephemeral(content: String) -> CreateInteractionResponse {
    CreateInteractionResponse::Message(
        CreateInteractionResponseMessage::new().content(content).ephemeral(true),
    )
}

const HELP: &str = "**Docobo** sells roles in this server.\n\
    • `/join` — buy a role (card via Polar, or a Vietnamese bank transfer via SePay)\n\
    • `/status` — what you have bought and until when\n\
    • `/setup` — for server managers: choose roles, prices and payment providers\n\
    Paid roles are granted moments after payment and removed when access ends.";

/// Answers an authenticated interaction. The returned JSON is the HTTP response body.
pub async fn respond<R: CatalogRepo + EntitlementRepo + ?Sized>(
    repo: &R,
    body: &[u8],
    now: Timestamp,
) -> Result<serde_json::Value, InteractionError> {
    let interaction: Interaction =
        serde_json::from_slice(body).map_err(|e| InteractionError::Malformed(e.to_string()))?;
    let response = match interaction {
        Interaction::Ping(_) => CreateInteractionResponse::Pong,
        Interaction::Command(command) => match command.data.name.as_str() {
            "help" => ephemeral(HELP.to_owned()),
            "status" => {
                let (Some(guild), Some(member)) = (command.guild_id, command.member.as_ref()) else {
                    return Ok(json(ephemeral("Use /status in a server.".to_owned())));
                };
                let guild =
                    GuildId::new(guild.get()).map_err(|e| InteractionError::Malformed(e.to_string()))?;
                let user = UserId::new(member.user.id.get())
                    .map_err(|e| InteractionError::Malformed(e.to_string()))?;
                ephemeral(status_text(&member_status(repo, guild, user, now).await?))
            }
            other => ephemeral(format!("`/{other}` is not available yet. Try `/help`.")),
        },
        _ => ephemeral("This action is not available yet. Try `/help`.".to_owned()),
    };
    Ok(json(response))
}

fn json(response: CreateInteractionResponse) -> serde_json::Value {
    serde_json::to_value(response).unwrap_or_else(|_| unreachable!("builders always serialize"))
}

fn status_text(lines: &[docobo_core::service::StatusLine]) -> String {
    if lines.is_empty() {
        return "You have no purchases in this server yet. `/join` shows what is for sale.".to_owned();
    }
    let mut text = String::from("Your purchases here:\n");
    for l in lines {
        let name = l.role_name.clone().unwrap_or_else(|| format!("role {}", l.role));
        let until = l.access_until.and_then(|t| t.format(&Rfc3339).ok());
        let when = match (l.entitled, until) {
            (true, Some(t)) => format!(" — until {t}"),
            (true, None) => String::new(),
            (false, _) => " — no access".to_owned(),
        };
        text.push_str(&format!("• **{name}**: {}{when}\n", l.status));
    }
    text
}
