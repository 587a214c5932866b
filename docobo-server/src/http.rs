//! The HTTP surface: provider webhooks, interactions, liveness, readiness, metrics and the admin API,
//! behind a per-IP rate limit, admission control, request tracing and security headers.
//!
//! Admission (`admit`): at most [`MAX_IN_FLIGHT`] requests are handled at once (past that, 503
//! with `Retry-After: 1` at once, rather than an unbounded queue), and every request body must
//! arrive whole, up to 1 MiB, within [`crate::guard::Limits::body`] (408 otherwise) before any
//! handler sees it. `/health` is exempt from the cap so that liveness stays visible under load.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::middleware::SetHeader;
use poem::web::{Data, Json};
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler, post};
use serde_json::json;

pub use crate::respond::refuse;
use crate::state::AppState;
use docobo_core::ports::{Clock, SystemClock};

/// `200 {"status":"ok"}` while the process runs.
#[handler]
async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `200` when the server can do its whole job; `503` with every reason it cannot: the database
/// does not answer, Discord is not configured, or a background worker is stuck. The reasons name
/// only the part at fault, unless the request comes from this host or carries the admin token:
/// raw errors can name hosts and users.
#[handler]
async fn ready(request: &poem::Request, Data(state): Data<&Arc<AppState>>) -> Response {
    let local = request.remote_addr().as_socket_addr().is_some_and(|a| a.ip().is_loopback());
    let admin = state.admin_token.as_ref().is_some_and(|token| {
        let bearer = request.header("authorization").and_then(|h| h.strip_prefix("Bearer "));
        bearer.is_some_and(|b| token.matches(b.trim()))
    });
    let detailed = local || admin;
    let mut reasons = Vec::new();
    if let Err(e) = state.repo.ping().await {
        tracing::warn!(error = %e, "ready: the database does not answer");
        reasons.push(if detailed { format!("database: {e}") } else { "database: unavailable".to_owned() });
    }
    if let Err(e) = state.repo.credentials_readable().await {
        tracing::warn!(error = %e, "ready: stored credentials cannot be opened");
        reasons.push(if detailed {
            format!("credentials: {e}")
        } else {
            "credentials: unreadable".to_owned()
        });
    }
    if state.roles.is_none() {
        reasons.push(if detailed {
            "discord: DISCORD_BOT_TOKEN is not set, so paid roles are recorded but not granted".to_owned()
        } else {
            "discord: not configured".to_owned()
        });
    }
    let mut running = vec![crate::heartbeats::Worker::Expirer];
    if state.roles.is_some() {
        running.push(crate::heartbeats::Worker::RoleWorker);
    }
    let stuck = state.heartbeats.problems(&running, SystemClock.now());
    if detailed {
        reasons.extend(stuck);
    } else if !stuck.is_empty() {
        reasons.push("workers: not making progress".to_owned());
    }
    if reasons.is_empty() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        let body = Json(json!({ "status": "not_ready", "reasons": reasons }));
        body.with_status(StatusCode::SERVICE_UNAVAILABLE).into_response()
    }
}

/// Answers 429 (with `Retry-After: 1`) to an address over `DOCOBO_RATE_LIMIT`, before any work.
async fn limit<E: Endpoint>(endpoint: Arc<E>, request: poem::Request) -> poem::Result<Response> {
    let limited = request.data::<Arc<AppState>>().and_then(|s| s.rate_limit.as_ref()).is_some_and(|limit| {
        request.remote_addr().as_socket_addr().is_some_and(|addr| !limit.allows(addr.ip()))
    });
    if limited {
        return Ok(refuse(StatusCode::TOO_MANY_REQUESTS, "too many requests", Some(1)));
    }
    endpoint.call(request).await.map(IntoResponse::into_response)
}

/// Requests handled at once, across all clients.
pub const MAX_IN_FLIGHT: usize = 256;

/// Admission control and bounded bodies (see the module docs).
async fn admit<E: Endpoint>(endpoint: Arc<E>, mut request: poem::Request) -> poem::Result<Response> {
    let Some(state) = request.data::<Arc<AppState>>().cloned() else {
        return endpoint.call(request).await.map(IntoResponse::into_response);
    };
    let permit = match request.uri().path() {
        "/health" => None,
        _ => match state.in_flight.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                return Ok(refuse(StatusCode::SERVICE_UNAVAILABLE, "busy; try again shortly", Some(1)));
            }
        },
    };
    let read = request.take_body().into_bytes_limit(crate::webhooks::MAX_BODY);
    let body = match tokio::time::timeout(state.limits.body, read).await {
        Ok(Ok(body)) => body,
        Ok(Err(poem::error::ReadBodyError::PayloadTooLarge)) => {
            return Ok(refuse(StatusCode::PAYLOAD_TOO_LARGE, "body over 1 MiB", None));
        }
        Ok(Err(_)) => return Ok(refuse(StatusCode::BAD_REQUEST, "unreadable body", None)),
        Err(_) => return Ok(refuse(StatusCode::REQUEST_TIMEOUT, "the body took too long to arrive", None)),
    };
    request.set_body(body);
    let response = endpoint.call(request).await.map(IntoResponse::into_response);
    drop(permit);
    response
}

/// A span per request with the socket's address (never a client-supplied `X-Real-IP` or
/// `Forwarded`, which poem's `Tracing` would prefer) and the URI Debug-formatted (escaped), and
/// one line with the status and duration.
async fn traced<E: Endpoint>(endpoint: Arc<E>, request: poem::Request) -> poem::Result<Response> {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "request",
        remote_addr = %request.remote_addr(),
        method = %request.method(),
        uri = ?request.original_uri().to_string(),
    );
    async move {
        let started = std::time::Instant::now();
        let response = endpoint.call(request).await.map(IntoResponse::into_response);
        let status = response.as_ref().map_or_else(|e| e.status(), Response::status);
        tracing::info!(status = %status, duration = ?started.elapsed(), "response");
        response
    }
    .instrument(span)
    .await
}

/// `GET /metrics`.
#[handler]
async fn metrics(Data(state): Data<&Arc<AppState>>) -> Response {
    // A database that cannot answer leaves the last gauge values; the counters still report.
    let counts = match state.repo.job_counts().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot count role jobs");
            Vec::new()
        }
    };
    match state.metrics.render(&counts, state.repo.commit_stats()) {
        Ok(text) => text.with_content_type("text/plain; version=0.0.4").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics: cannot encode");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `Content-Security-Policy: default-src 'none'` on every answer that has no policy of its own
/// (the dashboard's pages have theirs).
async fn default_csp<E: Endpoint>(endpoint: Arc<E>, request: poem::Request) -> poem::Result<Response> {
    let mut response = endpoint.call(request).await.map(IntoResponse::into_response)?;
    if !response.headers().contains_key("content-security-policy") {
        let policy = poem::http::HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'");
        response.headers_mut().insert("content-security-policy", policy);
    }
    Ok(response)
}

pub fn app(state: Arc<AppState>) -> impl Endpoint {
    crate::dashboard::mount(Route::new())
        .at("/health", get(health))
        .at("/ready", get(ready))
        .at("/metrics", get(metrics))
        .at("/webhooks/:provider/:guild_id", post(crate::webhooks::webhook))
        .at("/interactions", post(crate::interactions::interactions))
        .nest("/admin", crate::admin::routes(state.clone()))
        .around(admit)
        .around(limit)
        .data(state)
        .around(traced)
        .around(default_csp)
        .with(
            SetHeader::new()
                .overriding("x-content-type-options", "nosniff")
                .overriding("x-frame-options", "DENY")
                .overriding("referrer-policy", "no-referrer")
                .overriding("cache-control", "no-store"),
        )
}
