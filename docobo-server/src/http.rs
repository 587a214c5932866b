//! The HTTP surface: provider webhooks, interactions, liveness, readiness, metrics and the admin API,
//! behind a per-IP rate limit, admission control, request tracing and security headers.
//!
//! Admission ([`admit`]): at most [`MAX_IN_FLIGHT`] requests are handled at once (past that, 503
//! with `Retry-After: 1` at once, rather than an unbounded queue), and every request body must
//! arrive whole, up to 1 MiB, within [`crate::guard::Limits::body`] (408 otherwise) before any
//! handler sees it. `/health` is exempt from the cap so that liveness stays visible under load.

use std::sync::Arc;

use docobo_adapters::discord::bot::Bot;
use docobo_adapters::discord::interactions::Verifier as VerifierAlias;
use docobo_adapters::seaorm::SeaOrmRepo;
use docobo_core::ports::{Clock, SystemClock};
use poem::http::StatusCode;
use poem::middleware::SetHeader;
use poem::web::{Data, Json};
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler, post};
use serde_json::json;

/// What the handlers share.
pub struct AppState {
    /// `DOCOBO_ADMIN_TOKEN`: the admin API's bearer token; the API is off without it.
    pub admin_token: Option<docobo_core::domain::Secret>,
    /// Business time: what webhooks, interactions, the admin API and the workers read (a
    /// `ManualClock` in tests that move time). Liveness (heartbeats) is always the system clock.
    pub clock: Arc<dyn Clock>,
    /// When the background workers last finished a pass, for `/ready`.
    pub heartbeats: Arc<crate::workers::Heartbeats>,
    /// The role worker's lease and batch size, from `DOCOBO_DISCORD_TIMEOUT`.
    pub job_lease: (time::Duration, usize),
    /// `DOCOBO_EVENT_RETENTION_DAYS`, for the pruner.
    pub event_retention: Option<time::Duration>,
    /// How long clients may take to send requests.
    pub limits: crate::guard::Limits,
    /// Failed webhook authentications per guild and provider.
    pub auth_failures: crate::webhooks::AuthThrottle,
    /// Permits for requests in flight ([`MAX_IN_FLIGHT`]).
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// What `GET /metrics` reports.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// `DOCOBO_RATE_LIMIT`: requests per second per IP address, when on.
    pub rate_limit: Option<PerIp>,
    pub repo: SeaOrmRepo,
    /// Discord, when a bot token is configured; without one, role jobs wait.
    pub roles: Option<Arc<dyn docobo_core::ports::RoleGateway>>,
    /// Checks `POST /interactions`, when `DISCORD_PUBLIC_KEY` is set.
    pub interactions: Option<VerifierAlias>,
    /// The payment providers this server runs, by name: `/webhooks/{provider}/…` and replay
    /// find them here.
    pub providers: docobo_core::ports::ProviderRegistry,
    /// Answers interactions from `POST /interactions` (and the gateway).
    pub bot: Bot,
    /// Delivers deferred interaction answers (webhook routes, no bot token needed).
    pub discord_http: Arc<serenity::http::Http>,
    /// The bot token and API base for the gateway connection, when `DOCOBO_GATEWAY` is on.
    pub gateway: Option<(docobo_core::domain::Secret, String)>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("repo", &self.repo).field("discord", &self.roles.is_some()).finish()
    }
}

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
    let mut running = vec![crate::workers::Worker::Expirer];
    if state.roles.is_some() {
        running.push(crate::workers::Worker::RoleWorker);
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

/// A per-IP rate limit (GCRA, bursts of twice the rate), with when it last purged (unix seconds).
pub struct PerIp(governor::DefaultKeyedRateLimiter<std::net::IpAddr>, std::sync::atomic::AtomicI64);

/// The key an address is limited under: itself for IPv4, its /64 for IPv6.
fn per_subscriber(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let [a, b, c, d, ..] = v6.segments();
            std::net::IpAddr::V6(std::net::Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        other => other,
    }
}

impl std::fmt::Debug for PerIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerIp").field("addresses", &self.0.len()).finish()
    }
}

impl PerIp {
    pub fn new(per_second: std::num::NonZeroU32) -> Self {
        let burst = per_second.saturating_mul(std::num::NonZeroU32::MIN.saturating_add(1));
        let limiter =
            governor::RateLimiter::keyed(governor::Quota::per_second(per_second).allow_burst(burst));
        PerIp(limiter, std::sync::atomic::AtomicI64::new(0))
    }

    /// Whether `ip` may make one more request now. IPv6 addresses count by their /64 (one
    /// subscriber's allocation), so rotating through a prefix gains nothing.
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        if self.0.len() > 10_000 {
            // Forget addresses whose allowance is full again, so memory stays bounded. At most
            // once per second, so that an attacker rotating addresses cannot make every request
            // pay for a scan of the whole table.
            let now = SystemClock.now().unix_timestamp();
            if self.1.swap(now, std::sync::atomic::Ordering::Relaxed) != now {
                self.0.retain_recent();
            }
        }
        self.0.check_key(&per_subscriber(ip)).is_ok()
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

/// `{"error": message}` with `code`, and `Retry-After` in seconds when given: every refusal the
/// server answers looks the same.
pub(crate) fn refuse(code: StatusCode, message: &str, retry_after_s: Option<u64>) -> Response {
    let mut response = Json(json!({ "error": message })).with_status(code).into_response();
    if let Some(after) = retry_after_s {
        response.headers_mut().insert("retry-after", poem::http::HeaderValue::from(after));
    }
    response
}

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

pub fn app(state: Arc<AppState>) -> impl Endpoint {
    Route::new()
        .at("/health", get(health))
        .at("/ready", get(ready))
        .at("/metrics", get(crate::metrics::metrics))
        .at("/webhooks/:provider/:guild_id", post(crate::webhooks::webhook))
        .at("/interactions", post(crate::interactions::interactions))
        .nest("/admin", crate::admin::routes(state.clone()))
        .around(admit)
        .around(limit)
        .data(state)
        .around(traced)
        .with(
            SetHeader::new()
                .overriding("x-content-type-options", "nosniff")
                .overriding("x-frame-options", "DENY")
                .overriding("referrer-policy", "no-referrer")
                .overriding("content-security-policy", "default-src 'none'; frame-ancestors 'none'")
                .overriding("cache-control", "no-store"),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l4_an_ipv6_prefix_shares_one_allowance() {
        let limit = PerIp::new(std::num::NonZeroU32::MIN);
        let a: std::net::IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: std::net::IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let other: std::net::IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        // A burst of two, then the same /64 is limited whichever address it uses.
        assert!(limit.allows(a) && limit.allows(b));
        assert!(!limit.allows(b) && !limit.allows(a));
        assert!(limit.allows(other), "another /64 has its own allowance");
    }
}
