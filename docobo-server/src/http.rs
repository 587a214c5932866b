//! The HTTP surface: provider webhooks, liveness and readiness. Interactions, the admin API and
//! metrics arrive with the Discord and operability issues.

use std::sync::Arc;

use docobo_adapters::discord::bot::Bot;
use docobo_adapters::discord::interactions::Verifier as VerifierAlias;
use docobo_adapters::polar::Polar;
use docobo_adapters::seaorm::SeaOrmRepo;
use docobo_adapters::sepay::Sepay;
use poem::http::StatusCode;
use poem::middleware::{SetHeader, Tracing};
use poem::web::{Data, Json};
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler, post};
use serde_json::json;

/// What the handlers share.
pub struct AppState {
    pub repo: SeaOrmRepo,
    /// Discord, when a bot token is configured; without one, role jobs wait.
    pub gateway: Option<Arc<dyn docobo_core::ports::RoleGateway>>,
    /// Checks `POST /interactions`, when `DISCORD_PUBLIC_KEY` is set.
    pub interactions: Option<VerifierAlias>,
    pub polar: Polar,
    pub sepay: Sepay,
    /// Answers interactions from `POST /interactions` (and the gateway).
    pub bot: Bot,
    /// Delivers deferred interaction answers (webhook routes, no bot token needed).
    pub discord_http: Arc<serenity::http::Http>,
    /// The bot token and API base for the gateway connection, when `DOCOBO_GATEWAY` is on.
    pub gateway_connection: Option<(docobo_core::domain::Secret, String)>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("repo", &self.repo)
            .field("discord", &self.gateway.is_some())
            .finish()
    }
}

/// `200 {"status":"ok"}` while the process runs.
#[handler]
async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `200` when the server can do its whole job; `503` with every reason it cannot.
#[handler]
async fn ready(Data(state): Data<&Arc<AppState>>) -> Response {
    let mut reasons = Vec::new();
    if let Err(e) = state.repo.ping().await {
        reasons.push(format!("database: {e}"));
    }
    if state.gateway.is_none() {
        reasons.push(
            "discord: DISCORD_BOT_TOKEN is not set, so paid roles are recorded but not granted".to_owned(),
        );
    }
    if reasons.is_empty() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        let body = Json(json!({ "status": "not_ready", "reasons": reasons }));
        body.with_status(StatusCode::SERVICE_UNAVAILABLE).into_response()
    }
}

pub fn app(state: Arc<AppState>) -> impl Endpoint {
    Route::new()
        .at("/health", get(health))
        .at("/ready", get(ready))
        .at("/webhooks/polar/:guild_id", post(crate::webhooks::polar))
        .at("/webhooks/sepay/:guild_id", post(crate::webhooks::sepay))
        .at("/interactions", post(crate::interactions::interactions))
        .data(state)
        .with(Tracing)
        .with(
            SetHeader::new()
                .overriding("x-content-type-options", "nosniff")
                .overriding("x-frame-options", "DENY")
                .overriding("referrer-policy", "no-referrer")
                .overriding("content-security-policy", "default-src 'none'; frame-ancestors 'none'")
                .overriding("cache-control", "no-store"),
        )
}
