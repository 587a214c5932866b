//! The member's signal feed: `GET /me/signals` (the latest signals of every relay the member's
//! purchases open), `GET /me/signals/stream` (the same, live, over Server-Sent Events) and
//! `GET /me/signals/{signal}/files/{n}` (a signal's attachment from the relay's store).
//!
//! **Who reads what.** A relay opens to the members entitled to its access role in its target
//! guild ([`readable_relays`]); a relay without one is read on Discord only. Every page, file
//! and stream asks again: a stream re-checks its session and the member's access every
//! [`RECHECK`] and ends when either is gone, and passes on only changes in channels the member
//! may read.
//!
//! **Live.** One task per server ([`SignalFeed::run`]) reads the signals changed in the last
//! [`OVERLAP`] every [`TICK`] while anyone watches, and passes each new version on once; every
//! stream filters what it may show. The database is read the same few times a second whether
//! one member watches or a thousand, and changes recorded by another server process reach the
//! page too. A stream starts with the whole list (and sends it again whenever it may have missed
//! something), then one event per change: `signal` (an item, new or edited) or `gone` (a
//! deleted item's id). Items replace each other by id, so a repeat is harmless.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use docobo_core::domain::{ChannelId, Signal, SignalId, Timestamp, UserId};
use docobo_core::ports::{Clock, RelayRepo, StoreError};
use docobo_core::service::{current_session, is_executable, plain_mentions, readable_relays};
use poem::http::StatusCode;
use poem::web::sse::{Event, SSE};
use poem::web::{Data, Path};
use poem::{Body, IntoResponse, Request, Response, handler};
use time::format_description::well_known::Rfc3339;
use tokio::sync::{broadcast, watch};

use super::auth::viewer;
use super::live::Place;
use super::{redirect, render, unavailable};
use crate::state::AppState;

/// How often the feed reads what changed while anyone watches.
pub const TICK: Duration = Duration::from_millis(250);
/// How far back each read looks: a change committed up to this long after it was stamped is
/// still passed on.
pub const OVERLAP: time::Duration = time::Duration::seconds(5);
/// How often a stream re-checks its session and the member's access.
pub const RECHECK: Duration = Duration::from_secs(15);
/// How long one stream lasts; the browser then reconnects and is checked like a new one.
const LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Signals a page (and a stream's list) shows.
const SHOWN: usize = 50;
/// Changes read per tick; more means the feed fell behind, and every stream sends its list again.
const BATCH: usize = 500;
/// Images larger than this are offered as downloads instead of shown in the page.
const MAX_INLINE_IMAGE: u64 = 8 * 1024 * 1024;
/// Image types shown in the page (never SVG, which can carry script).
const INLINE_IMAGES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// What the feed passes on.
#[derive(Debug, Clone)]
enum Change {
    Signal(Arc<Signal>),
    /// Some changes were not passed on: every stream sends its whole list again.
    Reset,
}

/// The server's one reader of signal changes.
#[derive(Debug)]
pub struct SignalFeed {
    changes: broadcast::Sender<Change>,
}

impl Default for SignalFeed {
    fn default() -> Self {
        SignalFeed { changes: broadcast::channel(1024).0 }
    }
}

impl SignalFeed {
    /// Reads what changed every [`TICK`] while any stream is open, until `stop`.
    pub async fn run(&self, repo: &dyn RelayRepo, clock: &dyn Clock, mut stop: watch::Receiver<bool>) {
        let mut sent: HashMap<SignalId, (i64, Timestamp)> = HashMap::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
            }
            if self.changes.receiver_count() == 0 {
                sent.clear();
                continue;
            }
            let since = clock.now() - OVERLAP;
            match repo.signals_changed_since(since, BATCH).await {
                Ok(signals) => {
                    if signals.len() == BATCH {
                        let _ = self.changes.send(Change::Reset);
                    }
                    for signal in signals {
                        if sent.get(&signal.id).is_some_and(|(version, _)| *version >= signal.version) {
                            continue;
                        }
                        sent.insert(signal.id, (signal.version, signal.changed_at));
                        let _ = self.changes.send(Change::Signal(Arc::new(signal)));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "signal feed: cannot read changes; trying again"),
            }
            sent.retain(|_, (_, at)| *at >= since);
        }
    }
}

/// One attachment as the page shows it.
#[derive(Debug)]
pub struct FileView {
    pub name: String,
    pub href: String,
    pub size: String,
    /// How it is offered: `image` (shown), `download`, `program` (never offered) or `missing`
    /// (not kept in the relay's store).
    pub kind: &'static str,
}

/// One signal as the page shows it.
#[derive(Debug)]
pub struct SignalView {
    pub id: i64,
    /// The source message id: items are ordered by it.
    pub order: String,
    pub author: String,
    pub avatar: Option<String>,
    pub content: String,
    /// Rich embeds' titles and descriptions.
    pub embeds: Vec<String>,
    pub at: Option<String>,
    pub edited: bool,
    pub files: Vec<FileView>,
}

/// When a snowflake was made.
fn snowflake_time(id: u64) -> Option<Timestamp> {
    const DISCORD_EPOCH_MS: i128 = 1_420_070_400_000;
    let ms = i128::from(id >> 22) + DISCORD_EPOCH_MS;
    Timestamp::from_unix_timestamp_nanos(ms * 1_000_000).ok()
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
        b if b >= 1024 => format!("{} KB", b.div_ceil(1024)),
        b => format!("{b} bytes"),
    }
}

impl SignalView {
    pub fn of(signal: &Signal) -> Self {
        let m = &signal.message;
        let embeds = m
            .embeds
            .iter()
            .filter_map(|e| {
                let json: serde_json::Value = serde_json::from_str(&e.json).ok()?;
                let text: Vec<&str> =
                    ["title", "description"].iter().filter_map(|k| json.get(k)?.as_str()).collect();
                (!text.is_empty()).then(|| plain_mentions(&text.join(" — ")))
            })
            .collect();
        let files = m
            .attachments
            .iter()
            .enumerate()
            .map(|(n, a)| FileView {
                name: a.name.clone(),
                href: format!("/me/signals/{}/files/{n}", signal.id.0),
                size: size(a.size),
                kind: match a {
                    a if is_executable(&a.name) => "program",
                    a if a.stored.is_none() => "missing",
                    a if inline(a.content_type.as_deref(), a.size) => "image",
                    _ => "download",
                },
            })
            .collect();
        SignalView {
            id: signal.id.0,
            order: format!("{:020}", m.id.get()),
            author: m.author.name.clone(),
            avatar: m.author.avatar_url.clone().filter(|u| u.starts_with("https://cdn.discordapp.com/")),
            content: plain_mentions(&m.content),
            embeds,
            at: snowflake_time(m.id.get()).and_then(|t| t.format(&Rfc3339).ok()),
            edited: m.edited_at.is_some(),
            files,
        }
    }
}

fn inline(content_type: Option<&str>, size: u64) -> bool {
    content_type.is_some_and(|t| INLINE_IMAGES.contains(&t)) && size <= MAX_INLINE_IMAGE
}

/// One item: the page's loop and the stream's `signal` event render the same template.
#[derive(Template)]
#[template(path = "signal.html")]
struct Item<'a> {
    s: &'a SignalView,
}

#[derive(Template)]
#[template(path = "signal_list.html")]
struct List<'a> {
    signals: &'a [SignalView],
}

#[derive(Template)]
#[template(path = "signals.html")]
struct Page<'a> {
    viewer: Option<&'a str>,
    csrf: &'a str,
    feeds: Vec<String>,
    signals: Vec<SignalView>,
}

/// The source channels `user` may read now, and the relays' names for the page.
async fn readable(state: &AppState, user: UserId) -> Result<(BTreeSet<ChannelId>, Vec<String>), StoreError> {
    let relays = readable_relays(&state.repo, user, state.clock.now()).await?;
    let names = relays.iter().map(|r| r.name.clone().unwrap_or_else(|| format!("relay {}", r.id))).collect();
    Ok((relays.iter().map(|r| r.source_channel).collect(), names))
}

async fn latest(state: &AppState, channels: &BTreeSet<ChannelId>) -> Result<Vec<SignalView>, StoreError> {
    let channels: Vec<ChannelId> = channels.iter().copied().collect();
    let signals = state.repo.recent_signals(&channels, SHOWN).await?;
    Ok(signals.iter().map(SignalView::of).collect())
}

#[handler]
pub async fn page(request: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    let Some((session, _)) = viewer(state, request).await else { return redirect("/login") };
    let shown = async {
        let (channels, feeds) = readable(state, session.user).await?;
        Ok::<_, StoreError>((feeds, latest(state, &channels).await?))
    };
    match shown.await {
        Ok((feeds, signals)) => {
            render(&Page { viewer: Some(&session.name), csrf: &session.csrf, feeds, signals }, StatusCode::OK)
        }
        Err(e) => unavailable(e),
    }
}

/// A stream between events.
struct Watching {
    state: Arc<AppState>,
    token: String,
    user: UserId,
    channels: BTreeSet<ChannelId>,
    changes: broadcast::Receiver<Change>,
    recheck: tokio::time::Interval,
    ends: tokio::time::Instant,
    /// The whole list is due (the first event, or after something may have been missed).
    list_due: bool,
    place: Place,
}

impl Watching {
    async fn list(&mut self) -> Option<Event> {
        self.list_due = false;
        let signals = latest(&self.state, &self.channels).await.ok()?;
        let html = List { signals: &signals }.render().ok()?;
        Some(Event::message(html).event_type("list"))
    }

    /// Whether the session still holds and what it may read now; `false` ends the stream.
    async fn still_allowed(&mut self) -> bool {
        let session = current_session(&self.state.repo, &*self.state.clock, &self.token).await;
        if !matches!(session, Ok(Some(s)) if s.user == self.user) {
            return false;
        }
        match readable(&self.state, self.user).await {
            Ok((channels, _)) => {
                self.list_due |= channels != self.channels;
                self.channels = channels;
                true
            }
            Err(_) => false,
        }
    }

    async fn next(mut self) -> Option<(Event, Self)> {
        loop {
            if self.list_due {
                let event = self.list().await?;
                return Some((event, self));
            }
            tokio::select! {
                _ = tokio::time::sleep_until(self.ends) => return None,
                () = self.place.ended() => return None,
                _ = self.recheck.tick() => {
                    if !self.still_allowed().await {
                        return None;
                    }
                }
                change = self.changes.recv() => match change {
                    Ok(Change::Signal(signal)) if self.channels.contains(&signal.message.channel) => {
                        let event = if signal.deleted {
                            Event::message(format!("signal-{}", signal.id.0)).event_type("gone")
                        } else {
                            let html = Item { s: &SignalView::of(&signal) }.render().ok()?;
                            Event::message(html).event_type("signal")
                        };
                        return Some((event, self));
                    }
                    Ok(Change::Signal(_)) => {}
                    Ok(Change::Reset) | Err(broadcast::error::RecvError::Lagged(_)) => self.list_due = true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }
}

#[handler]
pub async fn stream(request: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    let Some((session, token)) = viewer(state, request).await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Some(place) = state.streams.admit(session.user) else {
        return crate::http::refuse(StatusCode::SERVICE_UNAVAILABLE, "too many open feeds", Some(10));
    };
    let channels = match readable(state, session.user).await {
        Ok((channels, _)) => channels,
        Err(e) => return unavailable(e),
    };
    let watching = Watching {
        state: state.clone(),
        token,
        user: session.user,
        channels,
        changes: state.signal_feed.changes.subscribe(),
        recheck: tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK),
        ends: tokio::time::Instant::now() + LIFETIME,
        list_due: true,
        place,
    };
    let events = futures_util::stream::unfold(watching, Watching::next);
    SSE::new(events)
        .keep_alive(Duration::from_secs(15))
        .with_header("cache-control", "no-store")
        .into_response()
}

/// `GET /me/signals/{signal}/files/{n}`: the file, to a member who may read the signal now.
/// Images of the shown types are served inline; everything else as a download; programs never.
#[handler]
pub async fn file(
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
    Path((signal, n)): Path<(i64, usize)>,
) -> Response {
    let Some((session, _)) = viewer(state, request).await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let found = async {
        let signal = state.repo.signal_by_id(SignalId(signal)).await?.filter(|s| !s.deleted);
        let Some(signal) = signal else { return Ok(None) };
        let (channels, _) = readable(state, session.user).await?;
        Ok::<_, StoreError>(channels.contains(&signal.message.channel).then_some(signal))
    };
    let attachment = match found.await {
        Ok(signal) => signal.and_then(|s| s.message.attachments.get(n).cloned()),
        Err(e) => return unavailable(e),
    };
    // One answer for "no such file" and "not yours": which signals exist is not for everyone.
    let Some((a, digest)) = attachment.and_then(|a| a.stored.clone().map(|d| (a, d))) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if is_executable(&a.name) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let (file, len) = match state.attachments.open(&digest).await {
        Ok(opened) => opened,
        Err(e) => {
            tracing::warn!(error = %e, "a stored attachment cannot be read");
            return StatusCode::NOT_FOUND.into_response();
        }
    };
    let name: String = a
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' })
        .collect();
    let (kind, disposition) = match a.content_type.as_deref() {
        Some(t) if inline(Some(t), len) => (t.to_owned(), format!("inline; filename=\"{name}\"")),
        _ => ("application/octet-stream".to_owned(), format!("attachment; filename=\"{name}\"")),
    };
    Response::builder()
        .content_type(kind)
        .header("content-disposition", disposition)
        .header("content-length", len)
        .header("x-content-type-options", "nosniff")
        .header("cache-control", "private, max-age=300")
        .header("content-security-policy", "default-src 'none'; sandbox")
        .body(Body::from_async_read(file))
}
