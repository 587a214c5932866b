//! The pages: `/` for everyone, `/me` for a logged-in member (every purchase in every server,
//! its status in words and when access ends).

use std::sync::Arc;

use askama::Template;
use docobo_core::domain::{JobState, RoleJob, RoleJobKey};
use docobo_core::machine::Status;
use docobo_core::ports::{CatalogRepo, JobQueue};
use docobo_core::service::{member_status, renewal};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, handler};
use time::format_description::well_known::Rfc3339;

use super::auth::{forged, same_origin, token_ok, viewer};
use super::{message, redirect, render, unavailable};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "index.html")]
struct Index<'a> {
    viewer: Option<&'a str>,
    csrf: &'a str,
}

/// One purchase as `/me` shows it.
#[derive(Debug)]
pub struct Purchase {
    pub guild: String,
    pub role: String,
    pub status: &'static str,
    /// When access ends, RFC 3339 in UTC.
    pub until: Option<String>,
    /// Time left, as the page says it without JavaScript.
    pub left: String,
    /// Why the role is not (or not yet) as the purchase says on Discord, from its role job.
    pub why: Option<String>,
    /// `guild/role/provider` for the renew form, when access ends or has ended.
    pub renew: Option<String>,
}

#[derive(Template)]
#[template(path = "me.html")]
struct Me<'a> {
    viewer: Option<&'a str>,
    csrf: &'a str,
    purchases: Vec<Purchase>,
}

/// What the role job says about a role that is still being changed on Discord, in words.
fn why(job: Option<&RoleJob>, entitled: bool) -> Option<String> {
    let job = job?;
    let doing = if entitled { "giving you the role" } else { "taking the role back" };
    match job.state {
        JobState::Done => None,
        JobState::Pending if job.attempts == 0 => Some(format!("Docobo is {doing} on Discord now.")),
        JobState::Pending => Some(format!(
            "Discord has not answered yet; Docobo is {doing} again ({} tries so far{}).",
            job.attempts,
            job.last_error.as_deref().map(|e| format!("; last answer: {e}")).unwrap_or_default()
        )),
        JobState::Parked => Some(format!(
            "Discord refused the change, so it waits for the server's owner: {}",
            job.last_error.as_deref().unwrap_or("no reason given")
        )),
    }
}

/// A status in words a member understands.
pub fn words(status: Status, entitled: bool) -> &'static str {
    match (status, entitled) {
        (Status::Pending, _) => "Waiting for the payment",
        (Status::Active, _) => "Active",
        (Status::PastDue, true) => "Payment failed: access kept while the provider retries",
        (Status::PastDue, false) => "Payment failed",
        (Status::Cancelled, true) => "Cancelled: access until the period ends",
        (Status::Cancelled, false) => "Cancelled",
        (Status::Expired, _) => "Ended",
        (Status::Revoked, _) => "Revoked",
        (Status::Refunded, _) => "Refunded",
    }
}

/// Time left, rounded up: a purchase of 20 days says "20 days" until a full day has passed.
fn left(span: time::Duration) -> String {
    let up = |unit: i64| (span.whole_seconds() + unit - 1) / unit;
    match up(86_400) {
        _ if span.is_negative() || span.is_zero() => "ended".to_owned(),
        1 => format!("{} h", up(3_600)),
        days => format!("{days} days"),
    }
}

#[handler]
pub async fn index(request: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    let who = viewer(state, request).await;
    let (name, csrf) = who.as_ref().map_or((None, ""), |(s, _)| (Some(s.name.as_str()), s.csrf.as_str()));
    render(&Index { viewer: name, csrf }, StatusCode::OK)
}

#[handler]
pub async fn me(request: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    let Some((session, _)) = viewer(state, request).await else {
        return redirect("/login");
    };
    let now = state.clock.now();
    let guilds = match state.repo.guilds().await {
        Ok(guilds) => guilds,
        Err(e) => return unavailable(e),
    };
    let mut purchases = Vec::new();
    for guild in guilds {
        let lines = match member_status(&state.repo, guild.id, session.user, now).await {
            Ok(lines) => lines,
            Err(e) => return unavailable(e),
        };
        for line in lines {
            let key = RoleJobKey { guild: guild.id, user: session.user, role: line.role };
            let job = match state.repo.job_for(key).await {
                Ok(job) => job,
                Err(e) => return unavailable(e),
            };
            purchases.push(Purchase {
                guild: guild.name.clone(),
                role: line.role_name.unwrap_or_else(|| format!("Role {}", line.role)),
                status: words(line.status, line.entitled),
                until: line.access_until.and_then(|t| t.format(&Rfc3339).ok()),
                left: line.access_until.map_or_else(String::new, |t| left(t - now)),
                why: why(job.as_ref(), line.entitled),
                renew: (line.access_until.is_some() || !line.entitled)
                    .then(|| format!("{}/{}/{}", guild.id, line.role, line.provider)),
            });
        }
    }
    render(&Me { viewer: Some(&session.name), csrf: &session.csrf, purchases }, StatusCode::OK)
}

#[derive(serde::Deserialize)]
pub struct Renew {
    csrf: String,
    /// `guild/role/provider`, as the page wrote it.
    what: String,
}

impl std::fmt::Debug for Renew {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renew").field("what", &self.what).finish_non_exhaustive()
    }
}

/// `POST /me/renew`: the checkout `/join` would make, opened at once (a payment page) or shown
/// (a bank transfer's code and QR). Only for the logged-in member, with the page's token.
#[handler]
pub async fn renew(
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
    form: Option<poem::web::Form<Renew>>,
) -> Response {
    if !same_origin(request, &state.public_url) {
        return forged();
    }
    let Some((session, _)) = viewer(state, request).await else { return redirect("/login") };
    let Some(poem::web::Form(form)) = form.filter(|f| token_ok(&session, Some(&f.csrf))) else {
        return forged();
    };
    let mut parts = form.what.splitn(3, '/');
    let parsed = (parts.next().map(str::parse), parts.next().map(str::parse), parts.next().map(str::parse));
    let (Some(Ok(guild)), Some(Ok(role)), Some(Ok(provider))) = parsed else {
        return message(StatusCode::BAD_REQUEST, "Unknown purchase", "Reload the page and try again.");
    };
    let member = (guild, session.user, role);
    let entropy = docobo_adapters::discord::bot::entropy;
    match renewal(&state.repo, &state.providers, member, provider, &entropy, state.clock.now()).await {
        Ok(Ok(Some(link))) => match link.url {
            Some(url) => redirect(&url),
            None => {
                let text = match &link.qr_image_url {
                    Some(qr) => format!("{} (QR code: {qr})", link.instructions),
                    None => link.instructions.clone(),
                };
                render(
                    &super::Message {
                        viewer: Some(&session.name),
                        csrf: &session.csrf,
                        title: "Pay by bank transfer",
                        text: &text,
                    },
                    StatusCode::OK,
                )
            }
        },
        Ok(Ok(None)) => message(
            StatusCode::CONFLICT,
            "Not for sale here",
            "Nothing sells this role now: use /join in the server.",
        ),
        Ok(Err(e)) => unavailable(e),
        Err(e) => unavailable(e),
    }
}
