//! The records the use cases keep: entitlements, checkouts, webhook events, role jobs, audit.

use serde::{Deserialize, Serialize};
use time::Duration;

use super::Timestamp;
use super::ids::{
    CheckoutRef, DeliveryId, EntitlementId, EventId, ExternalRef, GuildId, JobId, RoleId, UserId,
};
use super::money::Money;
use super::provider::ProviderName;
use crate::machine::{self, Standing, Status};

/// One purchase line that can grant one paid role to one member: a Polar subscription or order,
/// a SePay checkout code, a manual grant. Unique by `(provider, guild, external_ref)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlement {
    pub id: EntitlementId,
    pub guild: GuildId,
    pub user: UserId,
    pub role: RoleId,
    pub provider: ProviderName,
    pub external_ref: ExternalRef,
    pub standing: Standing,
    /// When access next lapses by the clock alone ([`Standing::deadline`] under the guild's grace
    /// period), stored so the expirer can find due entitlements with one indexed query.
    #[serde(with = "time::serde::rfc3339::option")]
    pub deadline: Option<Timestamp>,
    /// Bumped on every write; a write that names an older revision is refused (optimistic
    /// concurrency between concurrent deliveries for the same purchase).
    pub revision: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: Timestamp,
}

impl Entitlement {
    pub fn status(&self) -> Status {
        self.standing.status()
    }

    pub fn access_until(&self) -> Option<Timestamp> {
        self.standing.access_until()
    }

    pub fn entitled(&self, now: Timestamp, grace: Duration) -> bool {
        machine::entitled(&self.standing, now, grace)
    }

    pub fn job_key(&self) -> RoleJobKey {
        RoleJobKey { guild: self.guild, user: self.user, role: self.role }
    }
}

/// A purchase started by `/join`, waiting for its payment. It is how a payment finds its member:
/// Polar copies the reference into order and subscription metadata; a SePay transfer carries it as
/// the transfer code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkout {
    pub reference: CheckoutRef,
    pub guild: GuildId,
    pub user: UserId,
    pub role: RoleId,
    pub provider: ProviderName,
    /// What the member was asked to pay; a smaller transfer grants nothing.
    pub expected: Money,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    /// After this a payment with the reference no longer starts a new entitlement.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: Timestamp,
}

impl Checkout {
    pub fn is_open(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

/// What became of a stored webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventOutcome {
    /// Applied (possibly changing nothing, as for a stale fact).
    Processed,
    /// Understood and deliberately not acted on (an event type we do not use).
    Ignored,
    /// Could not be applied; kept in the failure inbox with the reason, for replay.
    Failed,
    /// Authenticated and stored, but it must be read from the provider's API before it can be
    /// applied (a Sell.app webhook that carries only an order id); the resolver does that at
    /// `retry_at`, after the acknowledgement.
    Deferred,
}

names!(EventOutcome { Processed => "processed", Ignored => "ignored", Failed => "failed", Deferred => "deferred" });

/// One authenticated webhook delivery, stored before it is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// Store-assigned; what `docobo events replay <ID>` takes. Ignored when recording.
    pub id: DeliveryId,
    pub provider: ProviderName,
    pub guild: GuildId,
    /// Unique per `(provider, guild)`: the deduplication key.
    pub external_id: EventId,
    /// The raw body exactly as received, so a failed event can be replayed after a fix.
    pub body: Vec<u8>,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: Timestamp,
    pub outcome: EventOutcome,
    pub attempts: u32,
    /// Why it failed or was ignored, in words an operator can act on.
    pub last_error: Option<String>,
    /// When the resolver next tries a deferred delivery; `None` for every other outcome.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub retry_at: Option<Timestamp>,
}

/// The member and role a role job converges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RoleJobKey {
    pub guild: GuildId,
    pub user: UserId,
    pub role: RoleId,
}

/// Where a role job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for `run_at`, or claimed by a worker until `locked_until`.
    Pending,
    /// Needs a person (missing permission, role above the bot); `last_error` says what.
    Parked,
    Done,
}

names!(JobState { Pending => "pending", Parked => "parked", Done => "done" });

/// The outbox row that asks the worker to converge one (guild, user, role). It carries no
/// "grant" or "revoke": the worker computes the desired state when it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleJob {
    pub id: JobId,
    pub key: RoleJobKey,
    pub state: JobState,
    /// Failed attempts so far; drives the backoff schedule.
    pub attempts: u32,
    /// Bumped by every enqueue. A worker settles the generation it claimed; if the job was
    /// enqueued again meanwhile, the facts changed after the worker read them, so it runs again.
    pub generation: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub run_at: Timestamp,
    /// A claimed job belongs to its worker until then; after it, another worker may take it (the
    /// first one crashed).
    #[serde(with = "time::serde::rfc3339::option")]
    pub locked_until: Option<Timestamp>,
    pub last_error: Option<String>,
    /// The event that asked for the job, named in Discord's audit-log reason.
    pub cause: Option<String>,
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    RoleAdded,
    RoleRemoved,
    JobParked,
    ManualGrant,
    ManualRevoke,
}

names!(AuditAction {
    RoleAdded => "role_added",
    RoleRemoved => "role_removed",
    JobParked => "job_parked",
    ManualGrant => "manual_grant",
    ManualRevoke => "manual_revoke",
});

/// Where an owner is in `/setup` (1/3 pick roles, 2/3 prices and terms, 3/3 providers), so the
/// wizard resumes where they left it. One per guild.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupProgress {
    pub guild: GuildId,
    /// Who is running it.
    pub user: UserId,
    /// 1 to 3.
    pub step: u8,
    /// The wizard's unsaved choices, in whatever form the Discord adapter keeps them.
    pub draft: String,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: Timestamp,
}

/// Every role change and every manual action, with what caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub guild: GuildId,
    pub user: UserId,
    pub role: RoleId,
    pub action: AuditAction,
    pub reason: String,
    /// The provider event or job that caused it.
    pub cause: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: Timestamp,
}

/// Money received, as the provider reported it: one Polar order or one SePay transfer. Kept for
/// revenue figures and exports; access is decided by entitlements, never by this. Unique by
/// `(provider, guild, reference)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub provider: ProviderName,
    pub guild: GuildId,
    /// The provider's id for the money movement (Polar order id, SePay transaction id).
    pub reference: ExternalRef,
    /// Who paid and for which role, when the delivery told.
    pub user: Option<UserId>,
    pub role: Option<RoleId>,
    /// What the owner receives before the provider's fees: Polar's `net_amount` (after
    /// discounts, before taxes), a transfer's amount.
    pub amount: Money,
    /// Given back so far, in the same currency.
    pub refunded: Money,
    #[serde(with = "time::serde::rfc3339")]
    pub paid_at: Timestamp,
}

/// A provider secret (webhook secret, API key, access token). `Debug` and `Display` print
/// `[redacted]`, so it cannot reach a log line by accident; [`Secret::expose`] is the one way out.
#[derive(Clone)]
pub struct Secret(String);

/// `==` is [`Secret::matches`]: constant-time, so comparing secrets never leaks them by timing.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.matches(&other.0)
    }
}

impl Eq for Secret {}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` equals the secret, in constant time: both sides are hashed first (so the
    /// comparison does not even leak the secret's length), and the digests are compared with
    /// `subtle`, which the optimiser cannot short-circuit.
    pub fn matches(&self, given: &str) -> bool {
        use sha2::Digest;
        use subtle::ConstantTimeEq;
        let (a, b) = (sha2::Sha256::digest(self.0.as_bytes()), sha2::Sha256::digest(given.as_bytes()));
        a.as_slice().ct_eq(b.as_slice()).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::{AuditAction, EventOutcome, JobState, Secret};

    /// One table of names serves storage, the admin API and metrics; it must say what serde says.
    #[test]
    fn names_match_serde_and_round_trip() {
        fn check<T>(all: &[T])
        where
            T: Copy + std::fmt::Debug + PartialEq + serde::Serialize + std::fmt::Display + std::str::FromStr,
        {
            for v in all {
                let serde = serde_json::to_value(v).expect("json");
                assert_eq!(serde.as_str(), Some(v.to_string().as_str()), "{v:?}");
                assert!(v.to_string().parse::<T>().is_ok_and(|back| back == *v), "{v:?}");
            }
            assert!("Processed".parse::<T>().is_err() && "".parse::<T>().is_err());
        }
        check(EventOutcome::ALL);
        check(JobState::ALL);
        check(AuditAction::ALL);
    }

    #[test]
    fn secrets_never_print_their_value() {
        let s = Secret::new("whsec_topsecret");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "whsec_topsecret");
        assert!(s.matches("whsec_topsecret"));
        assert!(!s.matches("whsec_topsecreT") && !s.matches("whsec_topsecre") && !s.matches(""));
    }
}
