//! `POST /webhooks/{provider}/{guild_id}`: `polar`, `sepay`, and any provider in the registry.
//!
//! The raw body is read with a 1 MiB cap, handed to the core's `ingest_webhook`, and answered
//! only after the transaction commits (DESIGN §4): 2xx = the event is durable (processed,
//! duplicate, ignored, or kept in the failure inbox); 401 bad or missing authentication (nothing
//! stored; a security log line without any secret); 404 unknown guild or provider not
//! configured; 413 body over 1 MiB; 503 when the database cannot take it now (the provider
//! retries). Nothing here calls Discord.

use std::sync::Arc;

use docobo_core::domain::GuildId;
use docobo_core::ports::{Headers, PaymentProvider, StoreError};
use docobo_core::service::{IngestError, IngestOutcome, ingest_webhook};
use poem::error::ReadBodyError;
use poem::http::{HeaderMap, StatusCode};
use poem::web::{Data, Json, Path};
use poem::{Body, IntoResponse, Response, handler};
use serde_json::json;

use crate::respond::refuse;
use crate::state::AppState;
use crate::throttle::AuthThrottle;

/// Largest accepted webhook body.
pub const MAX_BODY: usize = 1024 * 1024;

fn status(code: StatusCode, message: &str) -> Response {
    refuse(code, message, None)
}

/// Answers one delivery, and counts and times the answer for `/metrics`.
async fn ingest(
    state: &AppState,
    provider: &dyn PaymentProvider,
    guild: &str,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    // Every line logged while handling the delivery carries its provider, guild and event id
    // (Polar's is in a header; SePay's is read from the body, and recorded once known).
    let span = tracing::info_span!(
        "webhook",
        provider = %provider.name(),
        guild,
        event_id = headers.get("webhook-id").and_then(|v| v.to_str().ok()),
    );
    let (outcome, response) = answer(state, provider, guild, headers, body).instrument(span).await;
    state.metrics.webhook(provider.name().as_str(), outcome, started.elapsed());
    response
}

/// The answer to one delivery, with its outcome label.
async fn answer(
    state: &AppState,
    provider: &dyn PaymentProvider,
    guild: &str,
    headers: &HeaderMap,
    body: Body,
) -> (&'static str, Response) {
    let kind = provider.name();
    let Ok(guild) = guild.parse::<GuildId>() else {
        return ("not_found", status(StatusCode::NOT_FOUND, "unknown guild"));
    };
    let throttle_key = (guild, kind);
    if let Some(left) = state.auth_failures.locked(throttle_key) {
        let message = "too many failed authentications; try again later";
        return ("locked", refuse(StatusCode::TOO_MANY_REQUESTS, message, Some(left.as_secs().max(1))));
    }
    let body = match body.into_bytes_limit(MAX_BODY).await {
        Ok(b) => b,
        Err(ReadBodyError::PayloadTooLarge) => {
            return ("too_large", status(StatusCode::PAYLOAD_TOO_LARGE, "body over 1 MiB"));
        }
        Err(_) => return ("bad_request", status(StatusCode::BAD_REQUEST, "unreadable body")),
    };
    let headers: Headers =
        headers.iter().filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))).collect();
    let mut result =
        ingest_webhook(&state.repo, provider, state.clock.as_ref(), guild, &headers, &body).await;
    if let Err(IngestError::Store(StoreError::Unavailable(e))) = &result {
        // A pooled connection the database dropped (a restart, a failover) fails once and is
        // replaced. Trying again is safe: the commit is one transaction, and if the first one
        // did land, the second is a duplicate.
        tracing::info!(error = %e, "storage error; trying the webhook once more");
        result = ingest_webhook(&state.repo, provider, state.clock.as_ref(), guild, &headers, &body).await;
    }
    match result {
        Ok(report) => {
            tracing::Span::current().record("event_id", report.event_id.as_str());
            let outcome = report.outcome.label();
            if let IngestOutcome::Failed { reason } = &report.outcome {
                tracing::warn!(%reason, "webhook kept in the failure inbox");
            }
            tracing::info!(outcome, "webhook acknowledged");
            let response = match provider.acknowledgement() {
                Some(exact) => poem::Response::builder().content_type("application/json").body(exact),
                None => Json(json!({ "status": outcome, "event_id": report.event_id })).into_response(),
            };
            (outcome, response)
        }
        Err(IngestError::Unauthorized(reason)) => {
            tracing::warn!(?reason, "webhook refused: authentication failed");
            if state.auth_failures.failed(throttle_key) {
                tracing::warn!(
                    failures = AuthThrottle::LIMIT,
                    "webhook endpoint locked for a minute: repeated failed authentication (someone may be guessing the key)"
                );
            }
            ("unauthorized", status(StatusCode::UNAUTHORIZED, "authentication failed"))
        }
        Err(e @ (IngestError::UnknownGuild(_) | IngestError::NotConfigured { .. })) => {
            // One answer for both, so nobody can list a hosted instance's guilds and providers.
            tracing::info!(reason = %e, "webhook for an unknown guild or provider");
            (
                "not_found",
                status(StatusCode::NOT_FOUND, "unknown guild, or this provider is not configured for it"),
            )
        }
        Err(IngestError::Store(e @ StoreError::Corrupt(_))) => {
            tracing::error!(error = %e, "webhook not processed: stored data unreadable");
            ("internal", status(StatusCode::INTERNAL_SERVER_ERROR, "stored configuration is unreadable"))
        }
        Err(IngestError::Store(e)) => {
            tracing::warn!(error = %e, "webhook not stored; the provider will retry");
            ("unavailable", refuse(StatusCode::SERVICE_UNAVAILABLE, "try again shortly", Some(5)))
        }
    }
}

/// `POST /webhooks/{provider}/{guild_id}`: the provider is found by name in the registry; an
/// unknown name is 404 (counted under `provider="unknown"`, so the label set stays bounded).
#[handler]
pub async fn webhook(
    Path((provider, guild)): Path<(String, String)>,
    headers: &HeaderMap,
    body: Body,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let Some(provider) = state.providers.named(&provider) else {
        state.metrics.webhook("unknown", "not_found", std::time::Duration::ZERO);
        return status(StatusCode::NOT_FOUND, "unknown guild, or this provider is not configured for it");
    };
    // Admission: past the cap, refuse at once rather than queue (a queue past what the database
    // writes per second only adds latency to every delivery behind it); providers redeliver.
    let Ok(_permit) = state.webhooks_in_flight.clone().try_acquire_owned() else {
        state.metrics.webhook(provider.name().as_str(), "busy", std::time::Duration::ZERO);
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "busy; try again shortly", Some(1));
    };
    ingest(state, provider.as_ref(), &guild, headers, body).await
}
