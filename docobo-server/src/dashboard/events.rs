//! An operator's live feed of one guild: `GET /ops/{g}/events` (the latest webhook deliveries
//! and role changes, newest first) and `GET /ops/{g}/events/stream` (the same list, sent again
//! over Server-Sent Events whenever it changes, checked every `POLL`). The page has a Pause
//! control; without JavaScript it is a page to reload.
//!
//! The stream re-checks the session and the viewer's right to operate the guild every
//! [`super::signals::RECHECK`] and ends when either is gone. Operators are few, so each
//! stream reads for itself; [`super::live::Streams`] bounds how many there are.

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use docobo_core::domain::{AuditAction, GuildId, Timestamp, UserId};
use docobo_core::ports::{AuditLog, Ledger, StoreError};
use docobo_core::service::current_session;
use poem::http::StatusCode;
use poem::web::Data;
use poem::web::sse::{Event, SSE};
use poem::{IntoResponse, Request, Response, handler};
use time::format_description::well_known::Rfc3339;

use super::live::Place;
use super::ops::{Operating, may_operate};
use super::signals::RECHECK;
use super::{render, unavailable};
use crate::state::AppState;

/// How often a stream looks for changes.
const POLL: Duration = Duration::from_secs(1);
/// Items shown.
const SHOWN: usize = 50;

/// One line of the feed.
#[derive(Debug, PartialEq, Eq)]
pub struct Item {
    pub at: String,
    /// `delivery` or `role`.
    pub kind: &'static str,
    pub what: String,
    pub detail: String,
    sort: Timestamp,
}

fn action(a: AuditAction) -> &'static str {
    match a {
        AuditAction::RoleAdded => "Role given",
        AuditAction::RoleRemoved => "Role taken back",
        AuditAction::JobParked => "Role change parked",
        AuditAction::ManualGrant => "Granted by hand",
        AuditAction::ManualRevoke => "Revoked by hand",
    }
}

/// The guild's latest deliveries and role changes, newest first.
async fn latest(state: &AppState, guild: GuildId) -> Result<Vec<Item>, StoreError> {
    let (deliveries, audit) =
        tokio::try_join!(state.repo.guild_deliveries(guild, SHOWN), state.repo.recent_audit(guild, SHOWN))?;
    let at = |t: Timestamp| t.format(&Rfc3339).unwrap_or_default();
    let mut items: Vec<Item> = deliveries
        .into_iter()
        .map(|d| Item {
            at: at(d.received_at),
            kind: "delivery",
            what: format!("{} delivery {}: {}", d.provider.title(), d.external_id, d.outcome),
            detail: d.last_error.unwrap_or_default(),
            sort: d.received_at,
        })
        .chain(audit.into_iter().map(|a| {
            Item {
                at: at(a.at),
                kind: "role",
                what: format!("{}: role {} for member {}", action(a.action), a.role, a.user),
                detail: [Some(a.reason), a.cause]
                    .into_iter()
                    .flatten()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" — "),
                sort: a.at,
            }
        }))
        .collect();
    items.sort_by_key(|i| std::cmp::Reverse(i.sort));
    items.truncate(SHOWN);
    Ok(items)
}

#[derive(Template)]
#[template(path = "event_list.html")]
struct List<'a> {
    items: &'a [Item],
}

#[derive(Template)]
#[template(path = "ops_events.html")]
struct Page<'a> {
    viewer: Option<&'a str>,
    csrf: &'a str,
    guild: String,
    id: String,
    current: &'static str,
    items: Vec<Item>,
}

#[handler]
pub async fn page(Operating { session, guild }: Operating, Data(state): Data<&Arc<AppState>>) -> Response {
    let read = async {
        Ok::<_, StoreError>((super::health::guild_name(state, guild).await?, latest(state, guild).await?))
    };
    match read.await {
        Ok((None, _)) => super::health::unknown_guild(),
        Ok((Some(name), items)) => render(
            &Page {
                viewer: Some(&session.name),
                csrf: &session.csrf,
                guild: name,
                id: guild.to_string(),
                current: "events",
                items,
            },
            StatusCode::OK,
        ),
        Err(e) => unavailable(e),
    }
}

/// A stream between events.
struct Watching {
    state: Arc<AppState>,
    token: String,
    user: UserId,
    guild: GuildId,
    poll: tokio::time::Interval,
    recheck: tokio::time::Instant,
    /// The list as last sent.
    sent: String,
    place: Place,
}

impl Watching {
    async fn still_allowed(&self) -> bool {
        let session = current_session(&self.state.repo, &*self.state.clock, &self.token).await;
        matches!(session, Ok(Some(s)) if s.user == self.user)
            && may_operate(&self.state, self.user, self.guild).await
    }

    async fn next(mut self) -> Option<(Event, Self)> {
        loop {
            tokio::select! {
                () = self.place.ended() => return None,
                _ = self.poll.tick() => {}
            }
            if tokio::time::Instant::now() >= self.recheck {
                if !self.still_allowed().await {
                    return None;
                }
                self.recheck = tokio::time::Instant::now() + RECHECK;
            }
            let Ok(items) = latest(&self.state, self.guild).await else { continue };
            let html = List { items: &items }.render().ok()?;
            if html != self.sent {
                self.sent.clone_from(&html);
                return Some((Event::message(html).event_type("list"), self));
            }
        }
    }
}

#[handler]
pub async fn stream(
    request: &Request,
    Operating { session, guild }: Operating,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let Some(token) = super::auth::session_token(request) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Some(place) = state.streams.admit(session.user) else {
        return crate::http::refuse(StatusCode::SERVICE_UNAVAILABLE, "too many open feeds", Some(10));
    };
    let watching = Watching {
        state: state.clone(),
        token,
        user: session.user,
        guild,
        poll: tokio::time::interval(POLL),
        recheck: tokio::time::Instant::now() + RECHECK,
        sent: String::new(),
        place,
    };
    let events = futures_util::stream::unfold(watching, Watching::next);
    SSE::new(events)
        .keep_alive(Duration::from_secs(15))
        .with_header("cache-control", "no-store")
        .into_response()
}
