//! The web dashboard, served by the server itself: `GET /` (what Docobo is), "Log in with
//! Discord" (`/login`, `/auth/callback`, `POST /logout`: [`auth`]), the member's page `GET /me`
//! ([`pages`]) and the operators' pages under `/ops` ([`ops`]). Pages are rendered on the server (askama templates in `templates/`, escaped
//! by default) and work without JavaScript; `assets/app.js` only shows times in the reader's
//! zone and counts down to each end of access.
//!
//! Every dashboard answer carries its own Content-Security-Policy ([`CSP`]: scripts and styles
//! from this server only, avatars from Discord's CDN). Who may see what is decided here, on the
//! server, for every request, from the session cookie alone.
//!
//! Without `DISCORD_CLIENT_SECRET` (and `DISCORD_CLIENT_ID`) every dashboard route answers 404
//! with how to turn it on.

pub mod auth;
pub mod events;
pub mod health;
pub mod live;
pub mod members;
pub mod ops;
pub mod pages;
pub mod signals;

use std::sync::Arc;

use askama::Template;
use poem::http::StatusCode;
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler, post};

use crate::state::AppState;

/// The dashboard's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https://cdn.discordapp.com; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A page with a title and one paragraph: errors, and the dashboard being off.
#[derive(Debug, Template)]
#[template(path = "message.html")]
pub struct Message<'a> {
    pub viewer: Option<&'a str>,
    pub csrf: &'a str,
    pub title: &'a str,
    pub text: &'a str,
}

/// Renders `page` with `status`.
pub fn render(page: &impl Template, status: StatusCode) -> Response {
    match page.render() {
        Ok(html) => Html(html).with_status(status).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a dashboard page did not render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `303 See Other` to `to`: where a form or a login sends the browser next.
pub fn redirect(to: &str) -> Response {
    Response::builder().status(StatusCode::SEE_OTHER).header("location", to).finish()
}

/// The page for storage (or Discord) not answering.
pub fn unavailable(e: impl std::fmt::Display) -> Response {
    message(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", &e.to_string())
}

/// A message page for someone not logged in.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    render(&Message { viewer: None, csrf: "", title, text }, status)
}

#[handler]
fn asset(poem::web::Path(file): poem::web::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (include_str!("../../assets/app.css"), "text/css; charset=utf-8"),
        "app.js" => (include_str!("../../assets/app.js"), "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    body.with_content_type(kind).into_response()
}

/// The dashboard's policy on every answer, and the 404 that says how to turn it on when off.
async fn guarded<E: Endpoint>(endpoint: Arc<E>, request: poem::Request) -> poem::Result<Response> {
    let on = request.data::<Arc<AppState>>().is_some_and(|s| s.login.is_some());
    let response = if on {
        // A refusal from an extractor (`ops::Operating`) is a page too, and gets the policy.
        endpoint.call(request).await.map_or_else(poem::Error::into_response, IntoResponse::into_response)
    } else {
        message(
            StatusCode::NOT_FOUND,
            "The dashboard is off",
            "Set DISCORD_CLIENT_ID and DISCORD_CLIENT_SECRET (the application's OAuth2 credentials) and register \
             {DOCOBO_PUBLIC_URL}/auth/callback as a redirect in the Discord Developer Portal to turn it on.",
        )
    };
    Ok(response.with_header("content-security-policy", CSP).into_response())
}

/// Adds the dashboard's routes to `route`.
pub fn mount(route: Route) -> Route {
    route
        .at("/", get(pages::index).around(guarded))
        .at("/me", get(pages::me).around(guarded))
        .at("/me/renew", post(pages::renew).around(guarded))
        .at("/me/signals", get(signals::page).around(guarded))
        .at("/me/signals/stream", get(signals::stream).around(guarded))
        .at("/me/signals/:signal/files/:n", get(signals::file).around(guarded))
        .at("/login", get(auth::login).around(guarded))
        .at("/auth/callback", get(auth::callback).around(guarded))
        .at("/logout", post(auth::logout).around(guarded))
        .at("/assets/:file", get(asset).around(guarded))
        .at("/ops", get(ops::index).around(guarded))
        .at("/ops/:guild_id", get(ops::overview).around(guarded))
        .at("/ops/:guild_id/events/:id/replay", post(ops::replay).around(guarded))
        .at("/ops/:guild_id/events", get(events::page).around(guarded))
        .at("/ops/:guild_id/events/stream", get(events::stream).around(guarded))
        .at("/ops/:guild_id/jobs", get(health::job_queue).around(guarded))
        .at("/ops/:guild_id/relays", get(health::relay_health).around(guarded))
        .at("/ops/:guild_id/export.csv", get(health::export).around(guarded))
        .at("/ops/:guild_id/members", get(members::lookup).around(guarded))
        .at("/ops/:guild_id/members/:user_id", get(members::member).around(guarded))
        .at("/ops/:guild_id/members/:user_id/:verb", post(members::change).around(guarded))
        .at("/ops/:guild_id/replay-all", get(ops::replay_all_preview).post(ops::replay_all).around(guarded))
        .at("/ops/:guild_id/jobs/:id/retry", post(ops::retry_job).around(guarded))
        .at("/ops/:guild_id/relays/:signal/:relay/retry", post(ops::retry_mirror).around(guarded))
}
