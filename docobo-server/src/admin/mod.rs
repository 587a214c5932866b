//! The admin API under `/admin`, described by an OpenAPI document at `/admin/openapi.json`.
//!
//! Every operation needs `Authorization: Bearer <DOCOBO_ADMIN_TOKEN>`, compared in constant time;
//! a missing or wrong token is a 401 and nothing runs. Without `DOCOBO_ADMIN_TOKEN` the whole
//! prefix answers 404, so an unconfigured server exposes nothing. The operations are thin calls
//! into the core's use cases; manual grants and revokes are audited with their reason.

mod catalog;
pub(crate) mod relays;
mod views;

use std::str::FromStr;
use std::sync::Arc;

use docobo_core::domain::{DeliveryId, EventOutcome, GuildId, JobId, JobState, RoleJobKey};
use docobo_core::ports::{AuditLog, EntitlementRepo, JobQueue, Ledger, NoticeRepo};
use docobo_core::service::{
    IngestOutcome, ManualError, ReplayError, grant_manually, replay_event, revoke_manually,
};
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Route};
use poem_openapi::auth::Bearer;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, OpenApi, OpenApiService, SecurityScheme};

use crate::state::AppState;
use views::*;

/// The bearer token of `DOCOBO_ADMIN_TOKEN`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "admin_token")]
pub(super) struct AdminToken(());

async fn admin_token(request: &Request, bearer: Bearer) -> Option<()> {
    let state = request.data::<Arc<AppState>>()?;
    state.admin_token.as_ref()?.matches(&bearer.token).then_some(())
}

/// Which deliveries to list.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "snake_case")]
enum OutcomeParam {
    Processed,
    Ignored,
    Failed,
    Deferred,
}

/// Which role jobs to list.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "snake_case")]
enum JobStateParam {
    Pending,
    Parked,
    Done,
}

#[derive(ApiResponse)]
enum Created {
    /// Granted; the role worker applies it on Discord within moments.
    #[oai(status = 201)]
    Granted(Json<ManualView>),
}

fn id<T: FromStr>(raw: &str) -> Result<T, ApiError>
where
    T::Err: std::fmt::Display,
{
    raw.parse().map_err(ApiError::bad)
}

fn key(request: &ManualRequest) -> Result<RoleJobKey, ApiError> {
    Ok(RoleJobKey { guild: id(&request.guild_id)?, user: id(&request.user_id)?, role: id(&request.role_id)? })
}

fn manual_error(e: ManualError) -> ApiError {
    match e {
        ManualError::NoReason | ManualError::Invalid(_) => ApiError::bad(e),
        ManualError::UnknownGuild(_) | ManualError::NotForSale { .. } => ApiError::not_found(e),
        ManualError::NothingToRevoke { .. } => ApiError::conflict(e),
        ManualError::Store(s) => s.into(),
    }
}

struct Admin {
    state: Arc<AppState>,
}

#[OpenApi]
impl Admin {
    /// A member: their purchases, their roles on Discord now, and their audit trail.
    #[oai(path = "/members/:guild_id/:user_id", method = "get")]
    async fn member(
        &self,
        _auth: AdminToken,
        guild_id: Path<String>,
        user_id: Path<String>,
    ) -> Result<Json<MemberView>, ApiError> {
        let (guild, user): (GuildId, _) = (id(&guild_id)?, id(&user_id)?);
        let repo = &self.state.repo;
        let entitlements = repo.member_entitlements(guild, user).await?;
        let audit = repo.audit_trail(guild, user).await?;
        let (discord_roles, roles_error) = match &self.state.roles {
            None => (None, Some("DISCORD_BOT_TOKEN is not set".to_owned())),
            Some(g) => match g.member_roles(guild, user).await {
                Ok(roles) => (Some(roles.iter().map(ToString::to_string).collect()), None),
                Err(e) => (None, Some(e.to_string())),
            },
        };
        let preferences = repo.member_notices(guild, user).await?;
        let notices = repo.member_notice_log(guild, user).await?;
        Ok(Json(MemberView {
            guild_id: guild.to_string(),
            user_id: user.to_string(),
            entitlements: entitlements.iter().map(Into::into).collect(),
            discord_roles,
            roles_error,
            audit: audit.iter().map(Into::into).collect(),
            notices_off: preferences.muted_at.is_some(),
            dm_unreachable_since: preferences.unreachable_at.map(rfc3339),
            notices: notices.iter().map(Into::into).collect(),
        }))
    }

    /// Stored deliveries, newest first; `status=failed` is the failure inbox. `limit` defaults
    /// to 100 and is capped at 1000. For the next page, pass the last id you got as `before`.
    #[oai(path = "/events", method = "get")]
    async fn events(
        &self,
        _auth: AdminToken,
        status: Query<Option<OutcomeParam>>,
        before: Query<Option<i64>>,
        #[oai(default = "default_limit")] limit: Query<u32>,
    ) -> Result<Json<Vec<EventView>>, ApiError> {
        let outcome = status.0.map(|s| match s {
            OutcomeParam::Processed => EventOutcome::Processed,
            OutcomeParam::Ignored => EventOutcome::Ignored,
            OutcomeParam::Failed => EventOutcome::Failed,
            OutcomeParam::Deferred => EventOutcome::Deferred,
        });
        let events =
            self.state.repo.recent_events(outcome, before.0.map(DeliveryId), listed(limit.0)).await?;
        Ok(Json(events.iter().map(Into::into).collect()))
    }

    /// Applies a failed delivery again, after its cause was fixed. Applies at most once.
    #[oai(path = "/events/:id/replay", method = "post")]
    async fn replay(&self, _auth: AdminToken, id: Path<i64>) -> Result<Json<ReplayView>, ApiError> {
        let event = self
            .state
            .repo
            .webhook_event_by_id(DeliveryId(id.0))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no event {}", id.0)))?;
        let provider = self.state.providers.get(event.provider).ok_or_else(|| {
            ApiError::conflict(format!(
                "{} events are not replayable here: this server does not run it",
                event.provider
            ))
        })?;
        let report = replay_event(&self.state.repo, provider.as_ref(), self.state.clock.as_ref(), &event)
            .await
            .map_err(|e| match e {
                ReplayError::NotFailed(_) | ReplayError::WrongProvider { .. } => ApiError::conflict(e),
                ReplayError::Ingest(docobo_core::service::IngestError::Store(s)) => s.into(),
                ReplayError::Ingest(other) => ApiError::conflict(other),
            })?;
        let outcome = report.outcome.label();
        let reason = match report.outcome {
            IngestOutcome::Processed { .. } | IngestOutcome::Duplicate => None,
            IngestOutcome::Ignored { note } | IngestOutcome::Deferred { why: note } => Some(note),
            IngestOutcome::Failed { reason } => Some(reason.to_string()),
        };
        Ok(Json(ReplayView {
            id: event.id.0,
            event_id: report.event_id.to_string(),
            outcome: outcome.to_owned(),
            reason,
        }))
    }

    /// Grants a paid role by hand, with a reason kept in the audit trail.
    #[oai(path = "/grants", method = "post")]
    async fn grant(&self, _auth: AdminToken, body: Json<ManualRequest>) -> Result<Created, ApiError> {
        let report = grant_manually(&self.state.repo, self.state.clock.as_ref(), key(&body)?, &body.reason)
            .await
            .map_err(manual_error)?;
        Ok(Created::Granted(Json(ManualView {
            references: report.references.iter().map(ToString::to_string).collect(),
            access_until: report.access_until.map(rfc3339),
        })))
    }

    /// Revokes every purchase of the role that grants access now, with a reason kept in the
    /// audit trail. It cancels nothing at the provider.
    #[oai(path = "/revokes", method = "post")]
    async fn revoke(
        &self,
        _auth: AdminToken,
        body: Json<ManualRequest>,
    ) -> Result<Json<ManualView>, ApiError> {
        let report = revoke_manually(&self.state.repo, self.state.clock.as_ref(), key(&body)?, &body.reason)
            .await
            .map_err(manual_error)?;
        Ok(Json(ManualView {
            references: report.references.iter().map(ToString::to_string).collect(),
            access_until: None,
        }))
    }

    /// Role jobs in one state; `state=parked` (the default) lists what needs a person, with the
    /// reason. `limit` defaults to 100 and is capped at 1000.
    #[oai(path = "/jobs", method = "get")]
    async fn jobs(
        &self,
        _auth: AdminToken,
        #[oai(default = "parked")] state: Query<JobStateParam>,
        #[oai(default = "default_limit")] limit: Query<u32>,
    ) -> Result<Json<Vec<JobView>>, ApiError> {
        let jobs = self.state.repo.jobs(state.0.into(), listed(limit.0)).await?;
        Ok(Json(jobs.iter().map(Into::into).collect()))
    }

    /// Runs a parked job again now (after fixing what parked it), with its attempts reset.
    #[oai(path = "/jobs/:id/retry", method = "post")]
    async fn retry_job(&self, _auth: AdminToken, id: Path<i64>) -> Result<Json<JobView>, ApiError> {
        let repo = &self.state.repo;
        let job = repo
            .job(JobId(id.0))
            .await?
            .filter(|j| j.state == JobState::Parked)
            .ok_or_else(|| ApiError::not_found(format!("no parked job {}", id.0)))?;
        let now = self.state.clock.now();
        repo.enqueue(&[job.key], &format!("admin retry of job {}", job.id), now).await?;
        let job = repo.job(job.id).await?.unwrap_or(job);
        Ok(Json(JobView::from(&job)))
    }

    /// A guild at a glance: each paid role with its members entitled now and its purchases by
    /// status, and revenue by month from recorded payments.
    #[oai(path = "/guilds/:guild_id/summary", method = "get")]
    async fn summary(
        &self,
        _auth: AdminToken,
        guild_id: Path<String>,
    ) -> Result<Json<GuildSummaryView>, ApiError> {
        let guild: GuildId = id(&guild_id)?;
        let now = self.state.clock.now();
        let summary = self
            .state
            .summaries
            .summary(&self.state.repo, guild, now)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("guild {guild} is not registered")))?;
        Ok(Json(GuildSummaryView {
            guild_id: summary.guild.to_string(),
            name: summary.name,
            roles: summary
                .roles
                .into_iter()
                .map(|r| RoleSummaryView {
                    role_id: r.role.to_string(),
                    name: r.name,
                    active_members: r.active_members as u64,
                    by_status: r
                        .by_status
                        .into_iter()
                        .map(|(s, n)| (s.as_str().to_owned(), n as u64))
                        .collect(),
                })
                .collect(),
            revenue: summary.revenue.iter().map(Into::into).collect(),
        }))
    }
}

fn default_limit() -> u32 {
    100
}

/// Listings return at most this many rows, whatever `limit` asks.
pub const MAX_LIST: u32 = 1000;

fn listed(limit: u32) -> usize {
    limit.min(MAX_LIST) as usize
}

fn parked() -> JobStateParam {
    JobStateParam::Parked
}

impl From<JobStateParam> for JobState {
    fn from(p: JobStateParam) -> Self {
        match p {
            JobStateParam::Pending => JobState::Pending,
            JobStateParam::Parked => JobState::Parked,
            JobStateParam::Done => JobState::Done,
        }
    }
}

/// `/admin`: the API and its document when `DOCOBO_ADMIN_TOKEN` is set; otherwise a 404 that
/// says how to turn it on.
pub fn routes(state: Arc<AppState>) -> impl Endpoint {
    if state.admin_token.is_none() {
        return poem::endpoint::make_sync(|_| {
            let body =
                serde_json::json!({ "error": "the admin API is off; set DOCOBO_ADMIN_TOKEN to enable it" });
            poem::web::Json(body).with_status(poem::http::StatusCode::NOT_FOUND)
        })
        .map_to_response()
        .boxed();
    }
    let apis =
        (Admin { state: state.clone() }, catalog::Catalog { state: state.clone() }, relays::Relays { state });
    let api = OpenApiService::new(apis, "Docobo admin API", env!("CARGO_PKG_VERSION")).server("/admin");
    let spec = api.spec_endpoint();
    Route::new().at("/openapi.json", spec).nest("/", api.into_endpoint()).around(capped).boxed()
}

/// Largest admin request body; a manual grant is a few hundred bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// Reads the body under [`MAX_BODY`] before anything parses it: 413 past that.
async fn capped<E: Endpoint>(endpoint: Arc<E>, mut request: Request) -> poem::Result<poem::Response> {
    let body = match request.take_body().into_bytes_limit(MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(poem::error::ReadBodyError::PayloadTooLarge) => {
            let body = serde_json::json!({ "error": "body over 64 KiB" });
            return Ok(poem::web::Json(body)
                .with_status(poem::http::StatusCode::PAYLOAD_TOO_LARGE)
                .into_response());
        }
        Err(e) => return Err(e.into()),
    };
    request.set_body(body);
    endpoint.call(request).await.map(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn listings_are_capped_whatever_the_limit_asks() {
        assert_eq!((super::listed(5), super::listed(u32::MAX)), (5, 1000));
    }
}
