//! Discord interactions over HTTP (the Interactions Endpoint): authenticating a request before
//! [`super::bot::Bot`] answers it.
//!
//! Discord signs `timestamp ++ body` with the application's Ed25519 key (`X-Signature-Ed25519`,
//! `X-Signature-Timestamp`); serenity's `Verifier` checks it, and a timestamp more than 5 minutes
//! away is refused as a replay.

use docobo_core::domain::Timestamp;
pub use serenity::interactions_endpoint::Verifier;

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
    if now.unix_timestamp().saturating_sub(sent).saturating_abs() > TOLERANCE_SECONDS {
        return Err(InteractionError::Stale);
    }
    verifier.verify(signature, timestamp, body).map_err(|()| InteractionError::BadSignature)
}
