//! An operator's pages about the work in flight for one guild: `/ops/{g}/jobs` (queue depth, and
//! parked role and relay jobs with retry), `/ops/{g}/relays` (each relay from or into the guild,
//! its state and latency) and `/ops/{g}/export.csv?data=entitlements|payments` (the CLI's
//! export). Each asks `ops::operator` first, like every operator page.

use std::sync::Arc;

use askama::Template;
use docobo_core::domain::{GuildId, JobState, Relay};
use docobo_core::ports::{CatalogRepo, JobQueue, RelayRepo, StoreError};
use docobo_core::service::{ExportData, export_table};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{IntoResponse, Response, handler};

use super::ops::{Operating, Row};
use super::{message, render, unavailable};
use crate::admin::relays::{RelayView, relay_views};
use crate::state::AppState;

/// Jobs read per state to count and list a guild's: the waiting ones are few unless something
/// is stuck, and then the first ten thousand say enough.
const SAMPLE: usize = 10_000;

/// Whether `relay` reads from or posts into `guild`.
fn touches(relay: &Relay, guild: GuildId) -> bool {
    relay.target_guild == guild || relay.source_guild == guild
}

pub(super) async fn guild_name(state: &AppState, guild: GuildId) -> Result<Option<String>, StoreError> {
    Ok(state.repo.guild(guild).await?.map(|g| g.name))
}

pub(super) fn unknown_guild() -> Response {
    message(StatusCode::NOT_FOUND, "Unknown server", "Docobo does not know this server.")
}

/// The work in flight for a guild: what `/ops/{g}/jobs` lists and the overview counts.
#[derive(Debug)]
pub(super) struct Queue {
    /// Role changes waiting for Discord.
    pub pending_roles: usize,
    /// Relay mirrors into the guild waiting.
    pub pending_mirrors: usize,
    pub parked: Vec<Row>,
    pub mirrors: Vec<Row>,
}

impl Queue {
    pub(super) async fn of(state: &AppState, guild: GuildId) -> Result<Queue, StoreError> {
        let into_guild: Vec<Relay> =
            state.repo.relays().await?.into_iter().filter(|r| r.target_guild == guild).collect();
        let ours = |relay| into_guild.iter().any(|r| r.id == relay);
        let (pending, parked, waiting, stuck) = tokio::try_join!(
            state.repo.jobs(JobState::Pending, SAMPLE),
            state.repo.jobs(JobState::Parked, SAMPLE),
            state.repo.mirror_jobs(JobState::Pending, SAMPLE),
            state.repo.mirror_jobs(JobState::Parked, SAMPLE),
        )?;
        let parked = parked
            .into_iter()
            .filter(|j| j.key.guild == guild)
            .map(|j| Row {
                id: j.id.0.to_string(),
                what: format!("role {} for member {}", j.key.role, j.key.user),
                why: j.last_error.unwrap_or_default(),
            })
            .collect();
        let mirrors = stuck
            .into_iter()
            .filter(|j| ours(j.relay))
            .map(|j| Row {
                id: format!("{}/{}", j.signal.0, j.relay.0),
                what: format!("signal {} in relay {}", j.position, j.relay),
                why: j.last_error.unwrap_or_default(),
            })
            .collect();
        Ok(Queue {
            pending_roles: pending.iter().filter(|j| j.key.guild == guild).count(),
            pending_mirrors: waiting.iter().filter(|j| ours(j.relay)).count(),
            parked,
            mirrors,
        })
    }
}

#[derive(Template)]
#[template(path = "ops_jobs.html")]
struct Jobs<'a> {
    viewer: Option<&'a str>,
    csrf: &'a str,
    guild: String,
    id: String,
    current: &'static str,
    queue: Queue,
}

#[handler]
pub async fn job_queue(
    Operating { session, guild }: Operating,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let read =
        async { Ok::<_, StoreError>((guild_name(state, guild).await?, Queue::of(state, guild).await?)) };
    match read.await {
        Ok((Some(name), queue)) => render(
            &Jobs {
                viewer: Some(&session.name),
                csrf: &session.csrf,
                guild: name,
                id: guild.to_string(),
                current: "jobs",
                queue,
            },
            StatusCode::OK,
        ),
        Ok((None, _)) => unknown_guild(),
        Err(e) => unavailable(e),
    }
}

#[derive(Template)]
#[template(path = "ops_relays.html")]
struct Relays<'a> {
    viewer: Option<&'a str>,
    csrf: &'a str,
    guild: String,
    id: String,
    current: &'static str,
    relays: Vec<RelayView>,
}

#[handler]
pub async fn relay_health(
    Operating { session, guild }: Operating,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let read = async {
        let name = guild_name(state, guild).await?;
        Ok::<_, StoreError>((name, relay_views(state, |r| touches(r, guild)).await?))
    };
    match read.await {
        Ok((Some(name), relays)) => render(
            &Relays {
                viewer: Some(&session.name),
                csrf: &session.csrf,
                guild: name,
                id: guild.to_string(),
                current: "relays",
                relays,
            },
            StatusCode::OK,
        ),
        Ok((None, _)) => unknown_guild(),
        Err(e) => unavailable(e),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct Export {
    data: Option<String>,
}

/// `GET /ops/{g}/export.csv?data=entitlements|payments`: what `docobo export` writes.
#[handler]
pub async fn export(
    Operating { session, guild }: Operating,
    Data(state): Data<&Arc<AppState>>,
    Query(query): Query<Export>,
) -> Response {
    let data = match query.data.as_deref().unwrap_or("entitlements").parse::<ExportData>() {
        Ok(data) => data,
        Err(why) => return message(StatusCode::BAD_REQUEST, "Unknown export", &why),
    };
    let table = match export_table(&state.repo, guild, data).await {
        Ok(table) => table,
        Err(e) => return unavailable(e),
    };
    let mut out = csv::Writer::from_writer(Vec::new());
    let written = std::iter::once(table.columns.iter().map(|c| c.to_string()).collect::<Vec<_>>())
        .chain(table.rows)
        .try_for_each(|row| out.write_record(&row));
    let body =
        match written.map_err(|e| e.to_string()).and_then(|()| out.into_inner().map_err(|e| e.to_string())) {
            Ok(body) => body,
            Err(e) => return unavailable(e),
        };
    let name = match data {
        ExportData::Entitlements => "entitlements",
        ExportData::Payments => "payments",
    };
    tracing::info!(%guild, operator = %session.user, data = name, "dashboard: exported");
    body.with_content_type("text/csv; charset=utf-8")
        .with_header("content-disposition", format!("attachment; filename=\"{guild}-{name}.csv\""))
        .with_header("cache-control", "no-store")
        .into_response()
}
