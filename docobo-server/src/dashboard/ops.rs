//! The operator pages: `/ops` (the guilds the viewer may run) and `/ops/{guild_id}` (members
//! entitled per role, revenue by month as a server-drawn SVG chart, the failure inbox with
//! replay, parked role and relay jobs with retry). Who is an operator is decided here for every
//! request: a user in `DOCOBO_OPERATORS`, or the guild's owner or a member with Manage Server as
//! Discord says (asked at most once a minute per guild and user). Every action is a POST with
//! the session's CSRF token from the dashboard's own origin, and is recorded with who did it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use askama::Template;
use docobo_core::domain::{DeliveryId, Guild, GuildId, JobId, JobState, RelayId, Session, SignalId, UserId};
use docobo_core::ports::{CatalogRepo, JobQueue, Ledger, RelayRepo};
use docobo_core::service::replay_event;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response, handler};

use super::auth::{forged, same_origin, token_ok, viewer};
use super::health::Queue;
use super::{message, redirect, render, unavailable};
use crate::state::AppState;

/// How long Discord's answer about who may operate a guild is trusted.
const OPERATOR_TTL: Duration = Duration::from_secs(60);

/// Who may operate which guild, with when Discord said so.
#[derive(Debug, Default)]
pub struct OperatorCache(Mutex<HashMap<(GuildId, UserId), (Instant, bool)>>);

/// Whether `user` may operate `guild`. Discord not answering means no.
pub async fn may_operate(state: &AppState, user: UserId, guild: GuildId) -> bool {
    if state.operators.contains(&user) {
        return true;
    }
    let key = (guild, user);
    let cached = state.operator_cache.0.lock().unwrap_or_else(PoisonError::into_inner).get(&key).copied();
    if let Some((_, allowed)) = cached.filter(|(at, _)| at.elapsed() < OPERATOR_TTL) {
        return allowed;
    }
    let Some(discord) = &state.discord else { return false };
    let allowed = match discord.manages_guild(guild, user).await {
        Ok(allowed) => allowed,
        Err(e) => {
            tracing::warn!(%guild, %user, error = %e, "dashboard: cannot tell whether the user runs the guild");
            return false;
        }
    };
    let mut cache = state.operator_cache.0.lock().unwrap_or_else(PoisonError::into_inner);
    if cache.len() > 10_000 {
        cache.clear();
    }
    cache.insert(key, (Instant::now(), allowed));
    allowed
}

#[derive(Template)]
#[template(path = "ops.html")]
struct Ops<'a> {
    viewer: Option<&'a str>,
    csrf: &'a str,
    guilds: Vec<Guild>,
}

/// One bar of the revenue chart.
#[derive(Debug)]
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub height: u32,
    pub month: String,
    pub amount: String,
}

/// A line of the failure inbox or of the parked jobs.
#[derive(Debug)]
pub struct Row {
    pub id: String,
    pub what: String,
    pub why: String,
}

#[derive(Template)]
#[template(path = "ops_guild.html")]
struct OpsGuild<'a> {
    viewer: Option<&'a str>,
    csrf: &'a str,
    guild: String,
    id: String,
    roles: Vec<(String, usize)>,
    bars: Vec<Bar>,
    currency: String,
    current: &'static str,
    failed: Vec<Row>,
    /// Parked role and relay jobs: listed on `/ops/{g}/jobs`.
    parked: usize,
    /// Role changes and relay mirrors waiting: the queue's depth.
    waiting: usize,
}

/// The session and guild of an operator's request, or the page that refuses it.
pub(super) async fn operator(
    state: &AppState,
    request: &Request,
    guild: &str,
) -> Result<(Session, GuildId), Response> {
    let Some((session, _)) = viewer(state, request).await else {
        return Err(poem::Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header("location", "/login")
            .finish());
    };
    let refused = || {
        message(
            StatusCode::FORBIDDEN,
            "Not yours to run",
            "Only the server's owner, members with Manage Server, and Docobo's operators see this page.",
        )
    };
    let Ok(guild) = guild.parse::<GuildId>() else { return Err(refused()) };
    if !may_operate(state, session.user, guild).await {
        return Err(refused());
    }
    Ok((session, guild))
}

/// An operator's request for the guild in the path (`:guild_id`), as an extractor: handlers that
/// take it run only for someone who may operate that guild; anyone else gets `operator`'s
/// answer (the login, or 403).
#[derive(Debug)]
pub struct Operating {
    pub session: Session,
    pub guild: GuildId,
}

impl<'a> poem::FromRequest<'a> for Operating {
    async fn from_request(request: &'a Request, _body: &mut poem::RequestBody) -> poem::Result<Self> {
        let Some(state) = request.data::<Arc<AppState>>() else {
            return Err(poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR));
        };
        let raw = request.raw_path_param("guild_id").unwrap_or_default();
        match operator(state, request, raw).await {
            Ok((session, guild)) => Ok(Operating { session, guild }),
            Err(refused) => Err(poem::Error::from_response(refused)),
        }
    }
}

#[handler]
pub async fn index(request: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    let Some((session, _)) = viewer(state, request).await else {
        return redirect("/login");
    };
    let all = match state.repo.guilds().await {
        Ok(guilds) => guilds,
        Err(e) => return unavailable(e),
    };
    let mut guilds = Vec::new();
    for guild in all {
        if may_operate(state, session.user, guild.id).await {
            guilds.push(guild);
        }
    }
    render(&Ops { viewer: Some(&session.name), csrf: &session.csrf, guilds }, StatusCode::OK)
}

/// The chart's bars: one per month of the guild's main currency, scaled to 120 pixels.
fn bars(summary: &docobo_core::service::GuildSummary) -> (Vec<Bar>, String) {
    let Some(currency) = summary.revenue.first().map(|m| m.currency) else {
        return (Vec::new(), String::new());
    };
    let months: Vec<_> = summary.revenue.iter().filter(|m| m.currency == currency).collect();
    let top = months.iter().map(|m| m.gross.minor - m.refunded.minor).max().unwrap_or(0).max(1);
    let bars = months
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let net = (m.gross.minor - m.refunded.minor).max(0);
            let height = u32::try_from(net * 120 / top).unwrap_or(0);
            let net = docobo_core::domain::Money { minor: net, currency };
            Bar {
                x: 40 + 56 * i as u32,
                y: 140 - height,
                height,
                month: m.month.clone(),
                amount: net.amount(),
            }
        })
        .collect();
    (bars, currency.code().to_owned())
}

#[handler]
pub async fn overview(
    Operating { session, guild }: Operating,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let summary = match state.summaries.summary(&state.repo, guild, state.clock.now()).await {
        Ok(Some(summary)) => summary,
        Ok(None) => return super::health::unknown_guild(),
        Err(e) => return unavailable(e),
    };
    let (failed, queue) = match tokio::try_join!(state.repo.failed_events(1_000), Queue::of(state, guild)) {
        Ok(all) => all,
        Err(e) => return unavailable(e),
    };
    let failed = failed
        .into_iter()
        .filter(|e| e.guild == guild)
        .map(|e| Row {
            id: e.id.0.to_string(),
            what: format!("{} delivery {}", e.provider.title(), e.external_id),
            why: e.last_error.unwrap_or_default(),
        })
        .collect();
    let parked = queue.parked.len() + queue.mirrors.len();
    let (bars, currency) = bars(&summary);
    let roles = summary
        .roles
        .iter()
        .map(|r| (r.name.clone().unwrap_or_else(|| format!("Role {}", r.role)), r.active_members))
        .collect();
    let page = OpsGuild {
        viewer: Some(&session.name),
        csrf: &session.csrf,
        guild: summary.name,
        id: guild.to_string(),
        roles,
        bars,
        currency,
        current: "overview",
        failed,
        parked,
        waiting: queue.pending_roles + queue.pending_mirrors,
    };
    render(&page, StatusCode::OK)
}

#[derive(serde::Deserialize)]
pub struct Action {
    csrf: String,
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Action { csrf: [redacted] }")
    }
}

/// The operator's session for a POST carrying `csrf`: same origin, the right token, allowed on
/// the guild.
pub(super) async fn acting_on(
    state: &AppState,
    request: &Request,
    guild: &str,
    csrf: Option<&str>,
) -> Result<(Session, GuildId), Response> {
    if !same_origin(request, &state.public_url) {
        return Err(forged());
    }
    let (session, guild) = operator(state, request, guild).await?;
    if !token_ok(&session, csrf) {
        return Err(forged());
    }
    Ok((session, guild))
}

/// An operator's action form (only its CSRF token) on the guild in the path, as an extractor:
/// `acting_on`'s checks, and its refusal otherwise. For GETs, [`Operating`].
#[derive(Debug)]
pub struct Acting {
    pub session: Session,
    pub guild: GuildId,
}

impl<'a> poem::FromRequest<'a> for Acting {
    async fn from_request(request: &'a Request, body: &mut poem::RequestBody) -> poem::Result<Self> {
        let Some(state) = request.data::<Arc<AppState>>() else {
            return Err(poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR));
        };
        let form = Form::<Action>::from_request(request, body).await.ok();
        let csrf = form.as_ref().map(|Form(f)| f.csrf.as_str());
        let raw = request.raw_path_param("guild_id").unwrap_or_default();
        match acting_on(state, request, raw, csrf).await {
            Ok((session, guild)) => Ok(Acting { session, guild }),
            Err(refused) => Err(poem::Error::from_response(refused)),
        }
    }
}

fn back(guild: GuildId) -> Response {
    redirect(&format!("/ops/{guild}"))
}

/// Where a retried job was listed.
fn back_to_jobs(guild: GuildId) -> Response {
    redirect(&format!("/ops/{guild}/jobs"))
}

#[handler]
pub async fn replay(
    Acting { session, guild }: Acting,
    Data(state): Data<&Arc<AppState>>,
    Path((_, id)): Path<(String, i64)>,
) -> Response {
    let event = match state.repo.webhook_event_by_id(DeliveryId(id)).await {
        Ok(Some(event)) if event.guild == guild => event,
        Ok(_) => {
            return message(StatusCode::NOT_FOUND, "No such delivery", "It is not in this server's inbox.");
        }
        Err(e) => return unavailable(e),
    };
    let Some(provider) = state.providers.get(event.provider) else {
        return message(StatusCode::CONFLICT, "Not replayable", "This server does not run that provider.");
    };
    match replay_event(&state.repo, provider.as_ref(), &*state.clock, &event).await {
        Ok(report) => {
            tracing::info!(%guild, operator = %session.user, delivery = id, outcome = report.outcome.label(), "dashboard: delivery replayed");
            back(guild)
        }
        Err(e) => message(StatusCode::CONFLICT, "Not replayed", &e.to_string()),
    }
}

#[handler]
pub async fn retry_job(
    Acting { session, guild }: Acting,
    Data(state): Data<&Arc<AppState>>,
    Path((_, id)): Path<(String, i64)>,
) -> Response {
    let job = match state.repo.job(JobId(id)).await {
        Ok(Some(job)) if job.key.guild == guild && job.state == JobState::Parked => job,
        Ok(_) => return message(StatusCode::NOT_FOUND, "No such job", "It is not parked in this server."),
        Err(e) => return unavailable(e),
    };
    let cause = format!("dashboard: {} retried job {}", session.user, job.id);
    match state.repo.enqueue(&[job.key], &cause, state.clock.now()).await {
        Ok(()) => back_to_jobs(guild),
        Err(e) => unavailable(e),
    }
}

#[handler]
pub async fn retry_mirror(
    Acting { session, guild }: Acting,
    Data(state): Data<&Arc<AppState>>,
    Path((_, signal, relay)): Path<(String, i64, i64)>,
) -> Response {
    let ours = state
        .repo
        .relays()
        .await
        .is_ok_and(|r| r.iter().any(|r| r.id == RelayId(relay) && r.target_guild == guild));
    if !ours {
        return message(StatusCode::NOT_FOUND, "No such relay", "It does not post into this server.");
    }
    match state.repo.retry_mirror(SignalId(signal), RelayId(relay), state.clock.now()).await {
        Ok(true) => {
            tracing::info!(%guild, operator = %session.user, signal, relay, "dashboard: mirror job retried");
            back_to_jobs(guild)
        }
        Ok(false) => message(StatusCode::NOT_FOUND, "No such job", "It is not parked."),
        Err(e) => unavailable(e),
    }
}

/// The guild's failed deliveries, oldest first (at most 1,000 per pass).
async fn inbox(
    state: &AppState,
    guild: GuildId,
) -> Result<Vec<docobo_core::domain::WebhookEvent>, docobo_core::ports::StoreError> {
    let mut failed: Vec<_> =
        state.repo.failed_events(1_000).await?.into_iter().filter(|e| e.guild == guild).collect();
    failed.sort_by_key(|e| e.id.0);
    Ok(failed)
}

#[derive(Template)]
#[template(path = "replay_all.html")]
struct ReplayAll<'a> {
    viewer: Option<&'a str>,
    csrf: &'a str,
    id: String,
    count: usize,
}

/// `GET /ops/{guild}/replay-all`: the dry run: how many deliveries a bulk replay would retry.
#[handler]
pub async fn replay_all_preview(
    Operating { session, guild }: Operating,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    match inbox(state, guild).await {
        Ok(failed) => render(
            &ReplayAll {
                viewer: Some(&session.name),
                csrf: &session.csrf,
                id: guild.to_string(),
                count: failed.len(),
            },
            StatusCode::OK,
        ),
        Err(e) => unavailable(e),
    }
}

/// `POST /ops/{guild}/replay-all`: replays every failed delivery of the guild once, and says
/// how many were applied and how many still fail.
#[handler]
pub async fn replay_all(Acting { session, guild }: Acting, Data(state): Data<&Arc<AppState>>) -> Response {
    let failed = match inbox(state, guild).await {
        Ok(failed) => failed,
        Err(e) => return unavailable(e),
    };
    let (mut applied, mut still) = (0usize, 0usize);
    for event in &failed {
        let Some(provider) = state.providers.get(event.provider) else {
            still += 1;
            continue;
        };
        match replay_event(&state.repo, provider.as_ref(), &*state.clock, event).await {
            Ok(report) if report.outcome.label() != "failed" => applied += 1,
            _ => still += 1,
        }
    }
    tracing::info!(%guild, operator = %session.user, applied, still, "dashboard: failure inbox replayed");
    let text =
        format!("{applied} of {} applied; {still} still failing (they stay in the inbox).", failed.len());
    render(
        &super::Message {
            viewer: Some(&session.name),
            csrf: &session.csrf,
            title: "Inbox replayed",
            text: &text,
        },
        StatusCode::OK,
    )
}
