//! The admin API's JSON shapes, as they appear in its OpenAPI document. Snowflakes are strings
//! (JavaScript loses precision above 2^53), times RFC 3339.

use docobo_core::domain::{AuditEntry, Entitlement, Money, RoleJob, Timestamp, WebhookEvent};
use docobo_core::ports::StoreError;
use docobo_core::service::MonthRevenue;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};
use time::format_description::well_known::Rfc3339;

pub fn rfc3339(t: Timestamp) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A lower-case name as serde writes it (`manual_grant`, `past_due`).
fn name(value: impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

#[derive(Debug, Object)]
pub struct ErrorBody {
    pub error: String,
}

/// Every answer but success. 401 (missing or wrong bearer token) is poem-openapi's own.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// An id or field is malformed, a required reason is missing, or a role or credentials
    /// break the catalog rules.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No such guild, member, event, job, paid role or provider.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The request does not fit the current state (an event that is not failed, nothing to revoke).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// Stored data cannot be read back (a wrong DOCOBO_SECRET_KEY, a corrupt row).
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database (or, for credentials, the provider) cannot be reached now; try again.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl ApiError {
    pub fn bad(message: impl std::fmt::Display) -> Self {
        ApiError::BadRequest(Json(ErrorBody { error: message.to_string() }))
    }
    pub fn not_found(message: impl std::fmt::Display) -> Self {
        ApiError::NotFound(Json(ErrorBody { error: message.to_string() }))
    }
    pub fn conflict(message: impl std::fmt::Display) -> Self {
        ApiError::Conflict(Json(ErrorBody { error: message.to_string() }))
    }
    pub fn unavailable(message: impl std::fmt::Display) -> Self {
        ApiError::Unavailable(Json(ErrorBody { error: message.to_string() }))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let body = Json(ErrorBody { error: e.to_string() });
        match e {
            StoreError::Corrupt(_) => ApiError::Internal(body),
            StoreError::Conflict | StoreError::AlreadyExists(_) => ApiError::Conflict(body),
            StoreError::Unavailable(_) => ApiError::Unavailable(body),
        }
    }
}

/// One purchase line.
#[derive(Debug, Object)]
pub struct EntitlementView {
    pub id: i64,
    pub guild_id: String,
    pub user_id: String,
    pub role_id: String,
    /// `polar`, `sepay` or `manual`.
    pub provider: String,
    pub external_ref: String,
    /// `pending`, `active`, `past_due`, `cancelled`, `expired`, `revoked` or `refunded`.
    pub status: String,
    pub access_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Entitlement> for EntitlementView {
    fn from(e: &Entitlement) -> Self {
        EntitlementView {
            id: e.id.0,
            guild_id: e.guild.to_string(),
            user_id: e.user.to_string(),
            role_id: e.role.to_string(),
            provider: e.provider.to_string(),
            external_ref: e.external_ref.to_string(),
            status: e.status().as_str().to_owned(),
            access_until: e.access_until().map(rfc3339),
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
        }
    }
}

/// A role change or manual action.
#[derive(Debug, Object)]
pub struct AuditView {
    pub role_id: String,
    /// `role_added`, `role_removed`, `job_parked`, `manual_grant` or `manual_revoke`.
    pub action: String,
    pub reason: String,
    pub cause: Option<String>,
    pub at: String,
}

impl From<&AuditEntry> for AuditView {
    fn from(a: &AuditEntry) -> Self {
        AuditView {
            role_id: a.role.to_string(),
            action: name(a.action),
            reason: a.reason.clone(),
            cause: a.cause.clone(),
            at: rfc3339(a.at),
        }
    }
}

/// A member as Docobo and Discord see them.
#[derive(Debug, Object)]
pub struct MemberView {
    pub guild_id: String,
    pub user_id: String,
    pub entitlements: Vec<EntitlementView>,
    /// The member's roles on Discord now; absent when Discord could not be asked (see
    /// `roles_error`).
    pub discord_roles: Option<Vec<String>>,
    pub roles_error: Option<String>,
    pub audit: Vec<AuditView>,
    /// Whether the member turned this server's notices off (`/notify off`).
    pub notices_off: bool,
    /// Since when Discord refuses the bot's DMs to the member (50007), if it does.
    pub dm_unreachable_since: Option<String>,
    /// The member's notices, oldest first.
    pub notices: Vec<NoticeView>,
}

/// A member notice.
#[derive(Debug, Object)]
pub struct NoticeView {
    pub id: i64,
    /// `ending_soon`, `payment_failed`, `ended` or `welcome`.
    pub kind: String,
    pub role_id: String,
    /// `pending`, `sent`, `skipped` or `failed`.
    pub state: String,
    /// When access ends or ended, or the grace deadline.
    pub about: Option<String>,
    pub send_at: String,
    pub attempts: u32,
    /// Why it was skipped or failed, or the last error.
    pub note: Option<String>,
}

impl From<&docobo_core::domain::Notice> for NoticeView {
    fn from(n: &docobo_core::domain::Notice) -> Self {
        NoticeView {
            id: n.id.0,
            kind: n.planned.kind.to_string(),
            role_id: n.planned.role.to_string(),
            state: n.state.to_string(),
            about: n.planned.about.map(rfc3339),
            send_at: rfc3339(n.planned.send_at),
            attempts: n.attempts,
            note: n.note.clone(),
        }
    }
}

/// A stored webhook delivery (the body is not included).
#[derive(Debug, Object)]
pub struct EventView {
    /// What `POST /admin/events/{id}/replay` takes.
    pub id: i64,
    pub provider: String,
    pub guild_id: String,
    pub event_id: String,
    /// `processed`, `ignored` or `failed`.
    pub outcome: String,
    pub received_at: String,
    pub attempts: u32,
    pub last_error: Option<String>,
}

impl From<&WebhookEvent> for EventView {
    fn from(e: &WebhookEvent) -> Self {
        EventView {
            id: e.id.0,
            provider: e.provider.to_string(),
            guild_id: e.guild.to_string(),
            event_id: e.external_id.to_string(),
            outcome: name(e.outcome),
            received_at: rfc3339(e.received_at),
            attempts: e.attempts,
            last_error: e.last_error.clone(),
        }
    }
}

/// What a replay did.
#[derive(Debug, Object)]
pub struct ReplayView {
    pub id: i64,
    pub event_id: String,
    /// `processed`, `duplicate`, `ignored` or `failed` (still failing; see `reason`).
    pub outcome: String,
    pub reason: Option<String>,
}

/// A role job.
#[derive(Debug, Object)]
pub struct JobView {
    /// What `POST /admin/jobs/{id}/retry` takes.
    pub id: i64,
    pub guild_id: String,
    pub user_id: String,
    pub role_id: String,
    /// `pending`, `parked` or `done`.
    pub state: String,
    pub attempts: u32,
    pub run_at: String,
    /// Why it is parked or was retried, in words an owner can act on.
    pub last_error: Option<String>,
    pub cause: Option<String>,
}

impl From<&RoleJob> for JobView {
    fn from(j: &RoleJob) -> Self {
        JobView {
            id: j.id.0,
            guild_id: j.key.guild.to_string(),
            user_id: j.key.user.to_string(),
            role_id: j.key.role.to_string(),
            state: name(j.state),
            attempts: j.attempts,
            run_at: rfc3339(j.run_at),
            last_error: j.last_error.clone(),
            cause: j.cause.clone(),
        }
    }
}

/// A manual grant or revoke.
#[derive(Debug, Object)]
pub struct ManualRequest {
    pub guild_id: String,
    pub user_id: String,
    pub role_id: String,
    /// Required; kept in the audit trail.
    pub reason: String,
}

/// What a manual grant or revoke wrote.
#[derive(Debug, Object)]
pub struct ManualView {
    /// The new manual entitlement (grant), or the purchases revoked.
    pub references: Vec<String>,
    /// When a granted fixed term ends; absent when it lasts until revoked.
    pub access_until: Option<String>,
}

/// One role's line in a guild summary.
#[derive(Debug, Object)]
pub struct RoleSummaryView {
    pub role_id: String,
    /// Absent when the role is no longer for sale.
    pub name: Option<String>,
    /// Members entitled to it now, each counted once.
    pub active_members: u64,
    /// Purchases by status (`active`, `revoked`, ...).
    pub by_status: std::collections::BTreeMap<String, u64>,
}

/// The money recorded in one month (UTC) in one currency. Amounts are decimal strings in major
/// units (`"12.50"`), never floats.
#[derive(Debug, Object)]
pub struct RevenueView {
    /// `YYYY-MM`.
    pub month: String,
    pub currency: String,
    /// Received before refunds (Polar: after discounts, before taxes).
    pub gross: String,
    pub refunded: String,
    pub net: String,
    pub payments: u64,
}

impl From<&MonthRevenue> for RevenueView {
    fn from(m: &MonthRevenue) -> Self {
        let net = Money { minor: m.gross.minor.saturating_sub(m.refunded.minor), currency: m.currency };
        RevenueView {
            month: m.month.clone(),
            currency: m.currency.code().to_owned(),
            gross: m.gross.amount(),
            refunded: m.refunded.amount(),
            net: net.amount(),
            payments: m.payments as u64,
        }
    }
}

#[derive(Debug, Object)]
pub struct GuildSummaryView {
    pub guild_id: String,
    pub name: String,
    pub roles: Vec<RoleSummaryView>,
    /// Recorded payments by month and currency, oldest first.
    pub revenue: Vec<RevenueView>,
}
