//! Domain types. Raw input becomes these at the edge; the core never sees a bare string id, a
//! float amount or an unchecked term.

/// `ALL`, `as_str`, `Display` and `FromStr` for a fieldless enum, from one table of its
/// lower-case names (the same names serde writes: a test checks they agree).
macro_rules! names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    other => Err(format!("{other:?} is not one of {:?}", [$($name),+])),
                }
            }
        }
    };
}

mod catalog;
mod ids;
mod money;
mod notice;
mod provider;
mod records;
mod relay;
mod session;

pub use catalog::{CatalogError, Guild, PaidRole, ProductLink, Term};
pub use ids::{
    ChannelId, CheckoutRef, DeliveryId, EntitlementId, EventId, ExternalRef, GuildId, IdError, JobId,
    MessageId, RoleId, UserId,
};
pub use money::{Currency, Money, MoneyError};
pub use notice::{
    Locale, MemberNotices, Notice, NoticeId, NoticeKind, NoticeSettingError, NoticeSettings, NoticeState,
    PlannedNotice, Reminders,
};
pub use provider::ProviderName;
pub use records::{
    AuditAction, AuditEntry, Checkout, Entitlement, EventOutcome, JobState, Payment, RoleJob, RoleJobKey,
    Secret, SetupProgress, WebhookEvent,
};
pub use relay::{
    Attachment, Author, Embed, MirrorJob, NewRelay, PostedMessage, Relay, RelayId, Signal, SignalId,
    SignalWrite, SourceEdit, SourceEvent, SourceMessage, Via, decide_signal,
};
pub use session::Session;

/// A moment in time, always handled in UTC.
pub type Timestamp = time::OffsetDateTime;
