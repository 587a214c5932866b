//! "Log in with Discord" and the session cookie.
//!
//! - `GET /login` starts OAuth2 (state + PKCE S256, [`docobo_adapters::discord::login`]), keeps
//!   state and verifier in a ten-minute login cookie, and sends the browser to Discord.
//! - `GET /auth/callback` checks the state against that cookie (constant time), exchanges the
//!   code, opens a new session (a new random token at every login: no fixation) and sends the
//!   browser to `/me`.
//! - `POST /logout` needs the session's CSRF token and a same-origin request (`Sec-Fetch-Site`,
//!   else `Origin` against the public URL or the request's host), then deletes the session, or
//!   with `everywhere` every session of the user (a lost phone, a shared computer).
//!
//! Cookies are `__Host-` prefixed, `Secure`, `HttpOnly`, `SameSite=Lax`, path `/`.

use std::sync::Arc;

use docobo_adapters::discord::login::random_token;
use docobo_core::domain::{Secret, Session};
use docobo_core::ports::SessionRepo;
use docobo_core::service::{SESSION_TTL, close_session, current_session, open_session};
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{IntoResponse, Request, Response, handler};

use super::{message, redirect};
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "__Host-docobo_session";
pub const LOGIN_COOKIE: &str = "__Host-docobo_login";
/// How long a login may take at Discord's consent screen.
const LOGIN_TTL_S: i64 = 600;

/// The value of cookie `name` in the request, if any.
pub fn cookie(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
}

fn set_cookie(name: &str, value: &str, max_age: i64) -> String {
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}")
}

/// The session cookie's token, if the request carries one.
pub fn session_token(request: &Request) -> Option<String> {
    cookie(request, SESSION_COOKIE)
}

/// The session of the request's cookie, with the cookie's token.
pub async fn viewer(state: &AppState, request: &Request) -> Option<(Session, String)> {
    let token = session_token(request)?;
    match current_session(&state.repo, &*state.clock, &token).await {
        Ok(session) => session.map(|s| (s, token)),
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: sessions cannot be read");
            None
        }
    }
}

#[handler]
pub async fn login(Data(state): Data<&Arc<AppState>>) -> Response {
    let Some(discord) = &state.login else { return StatusCode::NOT_FOUND.into_response() };
    match discord.start() {
        Ok(pending) => {
            let value = format!("{}.{}", pending.state, pending.verifier);
            let mut response = redirect(&pending.authorize_url);
            if let Ok(header) = set_cookie(LOGIN_COOKIE, &value, LOGIN_TTL_S).parse() {
                response.headers_mut().append("set-cookie", header);
            }
            response
        }
        Err(e) => message(StatusCode::SERVICE_UNAVAILABLE, "Login unavailable", &e.to_string()),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[handler]
pub async fn callback(
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
    Query(back): Query<Callback>,
) -> Response {
    let Some(discord) = &state.login else { return StatusCode::NOT_FOUND.into_response() };
    let stale = || {
        message(
            StatusCode::BAD_REQUEST,
            "Login expired",
            "This login link is stale or was not started here. Log in again.",
        )
    };
    if back.error.is_some() {
        return message(
            StatusCode::FORBIDDEN,
            "Login cancelled",
            "Discord did not let you in. Log in again if you meant to.",
        );
    }
    let (Some(code), Some(given)) = (back.code, back.state) else { return stale() };
    let Some((expected, verifier)) = cookie(request, LOGIN_COOKIE).and_then(|c| {
        let (s, v) = c.split_once('.')?;
        Some((s.to_owned(), v.to_owned()))
    }) else {
        return stale();
    };
    if !Secret::new(expected).matches(&given) {
        return stale();
    }
    let who = match discord.finish(&code, &verifier).await {
        Ok(who) => who,
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: a login did not finish");
            return message(StatusCode::BAD_GATEWAY, "Login failed", &e.to_string());
        }
    };
    let (Some(token), Some(csrf)) = (random_token(32), random_token(24)) else {
        return message(StatusCode::SERVICE_UNAVAILABLE, "Login unavailable", "no randomness");
    };
    if let Some(old) = cookie(request, SESSION_COOKIE) {
        let _ = close_session(&state.repo, &old).await;
    }
    if let Err(e) = open_session(&state.repo, &*state.clock, (&token, &csrf), who.user, &who.name).await {
        tracing::warn!(error = %e, "dashboard: a session was not stored");
        return message(StatusCode::SERVICE_UNAVAILABLE, "Login unavailable", "Try again in a moment.");
    }
    let mut response = redirect("/me");
    for header in
        [set_cookie(SESSION_COOKIE, &token, SESSION_TTL.whole_seconds()), set_cookie(LOGIN_COOKIE, "", 0)]
    {
        if let Ok(value) = header.parse() {
            response.headers_mut().append("set-cookie", value);
        }
    }
    response
}

/// The answer to a state-changing request that did not come from the dashboard's own page.
pub fn forged() -> Response {
    message(StatusCode::FORBIDDEN, "Refused", "This request did not come from Docobo's own page.")
}

/// Whether `given` is the session's CSRF token, compared in constant time.
pub fn token_ok(session: &Session, given: Option<&str>) -> bool {
    given.is_some_and(|g| Secret::new(session.csrf.clone()).matches(g))
}

/// Whether a state-changing request comes from one of the dashboard's own pages.
pub fn same_origin(request: &Request, public_url: &str) -> bool {
    if let Some(site) = request.header("sec-fetch-site") {
        return site == "same-origin";
    }
    let Some(origin) = request.header("origin") else { return true };
    let host = request.header("host").unwrap_or_default();
    let public = public_url.trim_end_matches('/');
    origin == public || origin.split_once("://").is_some_and(|(_, rest)| !host.is_empty() && rest == host)
}

#[derive(serde::Deserialize)]
pub struct LogoutForm {
    csrf: String,
    /// Present: end every session of the user ("log out everywhere"), not only this one.
    everywhere: Option<String>,
}

impl std::fmt::Debug for LogoutForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogoutForm { csrf: [redacted] }")
    }
}

#[handler]
pub async fn logout(
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
    form: Option<Form<LogoutForm>>,
) -> Response {
    if !same_origin(request, &state.public_url) {
        return forged();
    }
    let Some((session, token)) = viewer(state, request).await else { return redirect("/") };
    let Some(Form(form)) = form.filter(|Form(f)| token_ok(&session, Some(&f.csrf))) else { return forged() };
    let closed = match form.everywhere {
        Some(_) => state.repo.delete_sessions_of(session.user).await.map(|n| n > 0),
        None => close_session(&state.repo, &token).await,
    };
    if let Err(e) = closed {
        tracing::warn!(error = %e, "dashboard: a session was not closed");
    }
    let mut response = redirect("/");
    if let Ok(value) = set_cookie(SESSION_COOKIE, "", 0).parse() {
        response.headers_mut().append("set-cookie", value);
    }
    response
}
