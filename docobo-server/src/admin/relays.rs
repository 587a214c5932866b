//! The admin API's relay operations: add, list (with each relay's state, last error and latency
//! over the last hour), remove, and the mirror jobs, parked ones with retry.

use std::sync::Arc;

use docobo_core::domain::{JobState, MirrorJob, NewRelay, Relay, RelayId, SignalId, Via};
use docobo_core::ports::RelayRepo;
use docobo_core::service::{MirrorOp, RelayError, add_relay};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::views::ApiError;
use super::{AdminToken, JobStateParam, default_limit, id, listed, parked};
use crate::state::AppState;

/// A relay to add: messages in the source channel are mirrored into the target channel.
#[derive(Debug, Object)]
pub struct RelayRequest {
    pub source_guild_id: String,
    pub source_channel_id: String,
    pub target_guild_id: String,
    pub target_channel_id: String,
    /// `webhook` (the default: the source author's name and avatar) or `bot`.
    pub via: Option<String>,
    pub name: Option<String>,
    /// A role in the target guild each new signal pings.
    pub ping_role_id: Option<String>,
    /// The paid role that opens the target channel: members entitled to it read the relay's
    /// signals on the dashboard.
    pub access_role_id: Option<String>,
}

/// Latency of one operation over the last hour: source event received → Discord's answer.
#[derive(Debug, Object)]
pub struct LatencyView {
    /// `create`, `update` or `delete`.
    pub op: String,
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// A relay and its health.
#[derive(Debug, Object)]
pub struct RelayView {
    pub id: i64,
    pub source_guild_id: String,
    pub source_channel_id: String,
    pub target_guild_id: String,
    pub target_channel_id: String,
    pub via: String,
    #[oai(skip_serializing_if_is_none)]
    pub name: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub ping_role_id: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub access_role_id: Option<String>,
    /// `ok`, `behind` (jobs waiting) or `parked` (a job needs a person: see `last_error`).
    pub state: String,
    pub pending: u64,
    pub parked: u64,
    #[oai(skip_serializing_if_is_none)]
    pub last_error: Option<String>,
    pub latency: Vec<LatencyView>,
}

/// A mirror job: one signal in one relay's target.
#[derive(Debug, Object)]
pub struct MirrorJobView {
    pub signal_id: i64,
    pub relay_id: i64,
    pub source_message_id: String,
    pub state: String,
    /// The signal version the target should show, and the one it shows (0: nothing yet).
    pub wanted: i64,
    pub mirrored: i64,
    /// The target message ids, in order.
    pub posted: Vec<String>,
    pub attempts: u32,
    pub run_at: String,
    #[oai(skip_serializing_if_is_none)]
    pub last_error: Option<String>,
}

impl From<&MirrorJob> for MirrorJobView {
    fn from(j: &MirrorJob) -> Self {
        MirrorJobView {
            signal_id: j.signal.0,
            relay_id: j.relay.0,
            source_message_id: j.position.to_string(),
            state: j.state.to_string(),
            wanted: j.wanted,
            mirrored: j.mirrored,
            posted: j.posted.iter().map(|p| p.id.to_string()).collect(),
            attempts: j.attempts,
            run_at: super::views::rfc3339(j.run_at),
            last_error: j.last_error.clone(),
        }
    }
}

#[derive(ApiResponse)]
enum Added {
    /// Added; messages posted in the source from now on are relayed.
    #[oai(status = 201)]
    Relay(Json<RelayView>),
}

#[derive(ApiResponse)]
enum Removed {
    /// Removed; mirrors already posted stay.
    #[oai(status = 204)]
    Gone,
}

pub struct Relays {
    pub state: Arc<AppState>,
}

/// Every relay that `shown` keeps, with its jobs' state and its latency window: what
/// `GET /admin/relays` and the dashboard's relay page show.
pub async fn relay_views(
    state: &AppState,
    shown: impl Fn(&Relay) -> bool,
) -> Result<Vec<RelayView>, docobo_core::ports::StoreError> {
    let repo = &state.repo;
    let mut jobs = repo.mirror_jobs(JobState::Pending, STATE_SAMPLE).await?;
    jobs.extend(repo.mirror_jobs(JobState::Parked, STATE_SAMPLE).await?);
    let relays = repo.relays().await?;
    Ok(relays.iter().filter(|r| shown(r)).map(|r| relay_view(state, r, &jobs)).collect())
}

/// The relay with its jobs' state and its latency window.
fn relay_view(state: &AppState, r: &Relay, jobs: &[MirrorJob]) -> RelayView {
    let mine = || jobs.iter().filter(|j| j.relay == r.id);
    let count = |state| mine().filter(|j| j.state == state).count() as u64;
    let (pending, parked) = (count(JobState::Pending), count(JobState::Parked));
    let latency = [MirrorOp::Create, MirrorOp::Update, MirrorOp::Delete]
        .into_iter()
        .filter_map(|op| {
            let l = state.relay_stats.latency(r.id, op)?;
            Some(LatencyView {
                op: op.as_str().to_owned(),
                count: l.count as u64,
                p50_ms: l.p50 * 1e3,
                p95_ms: l.p95 * 1e3,
            })
        })
        .collect();
    RelayView {
        id: r.id.0,
        source_guild_id: r.source_guild.to_string(),
        source_channel_id: r.source_channel.to_string(),
        target_guild_id: r.target_guild.to_string(),
        target_channel_id: r.target_channel.to_string(),
        via: r.via.to_string(),
        name: r.name.clone(),
        ping_role_id: r.ping_role.map(|p| p.to_string()),
        access_role_id: r.access_role.map(|p| p.to_string()),
        state: match (parked, pending) {
            (0, 0) => "ok",
            (0, _) => "behind",
            _ => "parked",
        }
        .to_owned(),
        pending,
        parked,
        last_error: mine().filter_map(|j| j.last_error.clone()).next_back(),
        latency,
    }
}

/// Jobs read to describe relays' state: the waiting ones, which are few unless a relay is stuck.
const STATE_SAMPLE: usize = 10_000;

#[OpenApi]
impl Relays {
    /// Every relay with its state, last error and p50/p95 latency per operation over the last hour.
    #[oai(path = "/relays", method = "get")]
    async fn relays(&self, _auth: AdminToken) -> Result<Json<Vec<RelayView>>, ApiError> {
        Ok(Json(relay_views(&self.state, |_| true).await?))
    }

    /// Adds a relay. 409 when one already links the two channels.
    #[oai(path = "/relays", method = "post")]
    async fn add(&self, _auth: AdminToken, request: Json<RelayRequest>) -> Result<Added, ApiError> {
        let r = request.0;
        let via: Via = r.via.as_deref().unwrap_or("webhook").parse().map_err(ApiError::bad)?;
        let relay = NewRelay {
            source_guild: id(&r.source_guild_id)?,
            source_channel: id(&r.source_channel_id)?,
            target_guild: id(&r.target_guild_id)?,
            target_channel: id(&r.target_channel_id)?,
            via,
            name: r.name,
            ping_role: r.ping_role_id.as_deref().map(id).transpose()?,
            access_role: r.access_role_id.as_deref().map(id).transpose()?,
        };
        let added = add_relay(&self.state.repo, &*self.state.clock, relay).await.map_err(|e| match e {
            RelayError::Store(e) => ApiError::from(e),
            other => ApiError::bad(other),
        })?;
        Ok(Added::Relay(Json(relay_view(&self.state, &added, &[]))))
    }

    /// Removes a relay and its waiting jobs.
    #[oai(path = "/relays/:id", method = "delete")]
    async fn remove(&self, _auth: AdminToken, relay: Path<i64>) -> Result<Removed, ApiError> {
        if self.state.repo.remove_relay(RelayId(relay.0)).await? {
            Ok(Removed::Gone)
        } else {
            Err(ApiError::not_found(format!("no relay {}", relay.0)))
        }
    }

    /// Mirror jobs in a state (`parked` by default), oldest first.
    #[oai(path = "/relays/jobs", method = "get")]
    async fn jobs(
        &self,
        _auth: AdminToken,
        #[oai(default = "parked")] state: Query<JobStateParam>,
        #[oai(default = "default_limit")] limit: Query<u32>,
    ) -> Result<Json<Vec<MirrorJobView>>, ApiError> {
        let jobs = self.state.repo.mirror_jobs(state.0.into(), listed(limit.0)).await?;
        Ok(Json(jobs.iter().map(Into::into).collect()))
    }

    /// Runs a parked mirror job again now (after fixing what parked it).
    #[oai(path = "/relays/jobs/:signal_id/:relay_id/retry", method = "post")]
    async fn retry(
        &self,
        _auth: AdminToken,
        signal_id: Path<i64>,
        relay_id: Path<i64>,
    ) -> Result<Json<MirrorJobView>, ApiError> {
        let (signal, relay) = (SignalId(signal_id.0), RelayId(relay_id.0));
        let repo = &self.state.repo;
        if !repo.retry_mirror(signal, relay, self.state.clock.now()).await? {
            return Err(ApiError::not_found(format!(
                "no parked mirror job for signal {} in relay {}",
                signal.0, relay.0
            )));
        }
        let jobs = repo.mirrors_of(signal).await?;
        let job =
            jobs.iter().find(|j| j.relay == relay).ok_or_else(|| ApiError::not_found("the job is gone"))?;
        Ok(Json(job.into()))
    }
}
