//! An operator's view of one member: the whole chain as one timeline — each purchase as the
//! ledger records it, what was done to the role on Discord (the audit trail, with the payment
//! or job that caused it), and the role job still waiting, with Discord's last answer — and a
//! manual grant or revoke with a required reason, audited like the CLI's.

use std::sync::Arc;

use askama::Template;
use docobo_core::domain::{RoleId, RoleJobKey, UserId};
use docobo_core::ports::{AuditLog, CatalogRepo, EntitlementRepo, JobQueue};
use docobo_core::service::{grant_manually, revoke_manually};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response, handler};
use time::format_description::well_known::Rfc3339;

use super::ops::{Operating, acting_on};
use super::{message, redirect, render, unavailable};
use crate::state::AppState;

/// One moment of the chain.
#[derive(Debug)]
pub struct Moment {
    /// RFC 3339, UTC.
    pub at: String,
    pub what: String,
}

#[derive(Template)]
#[template(path = "member.html")]
struct Member<'a> {
    viewer: Option<&'a str>,
    csrf: &'a str,
    id: String,
    user: String,
    roles: Vec<(String, String)>,
    moments: Vec<Moment>,
}

#[derive(Debug, serde::Deserialize)]
pub struct Lookup {
    user: Option<String>,
}

/// `GET /ops/{guild}/members?user=ID`: the lookup form's target.
#[handler]
pub async fn lookup(Path(guild): Path<String>, Query(q): Query<Lookup>) -> Response {
    match q.user.as_deref().map(str::trim).and_then(|u| u.parse::<UserId>().ok()) {
        Some(user) => redirect(&format!("/ops/{guild}/members/{user}")),
        None => message(
            StatusCode::BAD_REQUEST,
            "Not a member id",
            "Give the member's Discord user id (a number).",
        ),
    }
}

#[handler]
pub async fn member(
    Operating { session, guild }: Operating,
    Data(state): Data<&Arc<AppState>>,
    Path((_, user)): Path<(String, String)>,
) -> Response {
    let Ok(user) = user.parse::<UserId>() else {
        return message(StatusCode::BAD_REQUEST, "Not a member id", "Give the member's Discord user id.");
    };
    let chain = async {
        let roles = state.repo.paid_roles(guild).await?;
        let purchases = state.repo.member_entitlements(guild, user).await?;
        let audit = state.repo.audit_trail(guild, user).await?;
        let mut jobs = Vec::new();
        for role in &roles {
            if let Some(job) = state.repo.job_for(RoleJobKey { guild, user, role: role.role }).await? {
                jobs.push((role.name.clone(), job));
            }
        }
        Ok::<_, docobo_core::ports::StoreError>((roles, purchases, audit, jobs))
    };
    let (roles, purchases, audit, jobs) = match chain.await {
        Ok(chain) => chain,
        Err(e) => return unavailable(e),
    };
    let name = |role: RoleId| {
        roles.iter().find(|r| r.role == role).map_or_else(|| format!("role {role}"), |r| r.name.clone())
    };
    let stamp = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let mut moments: Vec<Moment> = Vec::new();
    for e in &purchases {
        moments.push(Moment {
            at: stamp(e.created_at),
            what: format!("{} purchase {} of {} recorded", e.provider.title(), e.external_ref, name(e.role)),
        });
        if e.updated_at != e.created_at {
            moments.push(Moment {
                at: stamp(e.updated_at),
                what: format!("{} is now {}", e.external_ref, e.status().as_str()),
            });
        }
    }
    for a in &audit {
        let cause = a.cause.as_deref().map(|c| format!(" (cause: {c})")).unwrap_or_default();
        moments.push(Moment {
            at: stamp(a.at),
            what: format!("{} {}: {}{cause}", a.action, name(a.role), a.reason),
        });
    }
    for (role, job) in &jobs {
        let last = job.last_error.as_deref().map(|e| format!("; Discord said: {e}")).unwrap_or_default();
        moments.push(Moment {
            at: stamp(job.run_at),
            what: format!("role job for {role}: {} after {} attempt(s){last}", job.state, job.attempts),
        });
    }
    moments.sort_by(|a, b| b.at.cmp(&a.at));
    let page = Member {
        viewer: Some(&session.name),
        csrf: &session.csrf,
        id: guild.to_string(),
        user: user.to_string(),
        roles: roles.iter().map(|r| (r.role.to_string(), r.name.clone())).collect(),
        moments,
    };
    render(&page, StatusCode::OK)
}

#[derive(serde::Deserialize)]
pub struct Manual {
    csrf: String,
    role: String,
    reason: String,
}

impl std::fmt::Debug for Manual {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manual")
            .field("role", &self.role)
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

/// `POST /ops/{guild}/members/{user}/grant` and `/revoke`: a manual change with its reason.
#[handler]
pub async fn change(
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
    Path((raw, user, verb)): Path<(String, String, String)>,
    form: Option<Form<Manual>>,
) -> Response {
    let csrf = form.as_ref().map(|Form(f)| f.csrf.clone());
    let (session, guild) = match acting_on(state, request, &raw, csrf.as_deref()).await {
        Ok(ok) => ok,
        Err(refused) => return refused,
    };
    let (Ok(user), Some(Form(form))) = (user.parse::<UserId>(), form) else {
        return message(StatusCode::BAD_REQUEST, "Unknown member", "Give the member's Discord user id.");
    };
    let Ok(role) = form.role.parse::<RoleId>() else {
        return message(StatusCode::BAD_REQUEST, "Unknown role", "Pick one of the server's roles.");
    };
    let key = RoleJobKey { guild, user, role };
    let reason = format!("{} (by {} in the dashboard)", form.reason.trim(), session.user);
    let done = match verb.as_str() {
        "grant" if !form.reason.trim().is_empty() => {
            grant_manually(&state.repo, &*state.clock, key, &reason).await
        }
        "revoke" if !form.reason.trim().is_empty() => {
            revoke_manually(&state.repo, &*state.clock, key, &reason).await
        }
        "grant" | "revoke" => {
            return message(StatusCode::BAD_REQUEST, "A reason is required", "Say why, for the audit trail.");
        }
        _ => return message(StatusCode::NOT_FOUND, "Unknown action", "Grant or revoke."),
    };
    match done {
        Ok(_) => redirect(&format!("/ops/{guild}/members/{user}")),
        Err(e) => message(StatusCode::CONFLICT, "Not done", &e.to_string()),
    }
}
