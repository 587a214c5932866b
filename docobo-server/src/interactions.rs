//! `POST /interactions`: Discord's HTTP interactions, verified (Ed25519) before anything else.
//! 401 for a bad or stale signature, 404 when `DISCORD_PUBLIC_KEY` is not configured, 413 over
//! 64 KiB, 400 for a body that is not an interaction, 503 when the database cannot answer.

use std::sync::Arc;

use docobo_adapters::discord::bot::follow_up;
use docobo_adapters::discord::interactions::verify;

use poem::error::ReadBodyError;
use poem::http::{HeaderMap, StatusCode};
use poem::web::{Data, Json};
use poem::{Body, IntoResponse, Response, handler};
use serenity::all::Interaction;

use crate::state::AppState;

/// Largest accepted interaction body.
pub const MAX_BODY: usize = 64 * 1024;

fn refuse(code: StatusCode, message: &str) -> Response {
    crate::respond::refuse(code, message, None)
}

#[handler]
pub async fn interactions(headers: &HeaderMap, body: Body, Data(state): Data<&Arc<AppState>>) -> Response {
    let Some(verifier) = &state.interactions else {
        return refuse(StatusCode::NOT_FOUND, "interactions are not configured (DISCORD_PUBLIC_KEY)");
    };
    let body = match body.into_bytes_limit(MAX_BODY).await {
        Ok(b) => b,
        Err(ReadBodyError::PayloadTooLarge) => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "body over 64 KiB");
        }
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "unreadable body"),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = state.clock.now();
    if let Err(e) =
        verify(verifier, header("x-signature-ed25519"), header("x-signature-timestamp"), &body, now)
    {
        tracing::warn!(reason = ?e.to_string(), "interaction refused: authentication failed");
        return refuse(StatusCode::UNAUTHORIZED, "invalid request signature");
    }
    let interaction: Interaction = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &format!("not an interaction: {e}")),
    };
    match state.bot.handle(&interaction, now).await {
        Ok(reply) => {
            if let Some(later) = reply.later {
                let http = state.discord_http.clone();
                tokio::spawn(async move {
                    let edit = later.await;
                    if let Err(e) = follow_up(&http, &interaction, &edit).await {
                        tracing::warn!(error = %e, "a deferred interaction answer was not delivered");
                    }
                });
            }
            match serde_json::to_value(&reply.now) {
                Ok(body) => Json(body).into_response(),
                Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, &format!("unserializable answer: {e}")),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "interaction not answered: storage unavailable");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "try again shortly")
        }
    }
}
