//! Domain types. Raw input becomes these at the edge; the core never sees a bare string id, a
//! float amount or an unchecked term.

mod catalog;
mod ids;
mod money;
mod provider;
mod records;

pub use catalog::{CatalogError, Guild, PaidRole, ProductLink, Term};
pub use ids::{CheckoutRef, EntitlementId, EventId, ExternalRef, GuildId, IdError, JobId, RoleId, UserId};
pub use money::{Currency, Money, MoneyError};
pub use provider::ProviderName;
pub use records::{
    AuditAction, AuditEntry, Checkout, Entitlement, EventOutcome, JobState, Payment, RoleJob, RoleJobKey,
    Secret, SetupProgress, WebhookEvent,
};

/// A moment in time, always handled in UTC.
pub type Timestamp = time::OffsetDateTime;
