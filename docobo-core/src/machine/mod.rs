//! The entitlement state machine: a pure function from (standing, event, now) to a new standing
//! and the effects it implies. No clock, no I/O.
//!
//! # Model
//!
//! Providers deliver facts late, twice and out of order. Instead of a status that each event
//! overwrites, a [`Standing`] keeps a few *registers*, each merged in a way that does not care
//! about order or repetition:
//!
//! | register      | set by                                             | merge                         |
//! |---------------|----------------------------------------------------|-------------------------------|
//! | `paid`        | `PaymentSucceeded`                                 | logical or                    |
//! | `phase`       | `PaymentSucceeded`, `CancelUndone` (→ active), `PaymentFailed` (→ past due), `CancelScheduled` (→ cancelled) | newest `(version, rank, value)` wins |
//! | `period_end`  | `PaymentSucceeded { access_until: Some }`, `CancelScheduled` | newest `(version, rank, value)` wins |
//! | `fixed_until` | `PaymentSucceeded` on a `Fixed { days }` term      | `max(now, fixed_until) + days` |
//! | `ended`       | `Revoked`, `Refunded { full: true }`, `Disputed`   | oldest `(version, rank, value)` wins |
//! | `elapsed_at`  | `TermElapsed`                                      | latest                        |
//!
//! `PaymentPending` and `Refunded { full: false }` (a partial refund) are recorded by the caller
//! and change nothing here: an unpaid purchase is already `Pending`, and a pending renewal order
//! must not undo `PastDue`.
//!
//! The status is *derived* from the registers:
//!
//! | condition (first match)                                          | status      |
//! |------------------------------------------------------------------|-------------|
//! | `ended` is set                                                   | `Revoked` or `Refunded` (a dispute revokes) |
//! | no successful payment yet                                        | `Pending`   |
//! | phase `Cancelled` or `PastDue`, or a `Fixed` term, and `elapsed_at >= access_until` | `Expired` |
//! | phase `PastDue`                                                  | `PastDue`   |
//! | phase `Cancelled`                                                | `Cancelled` |
//! | otherwise (phase `Active`)                                       | `Active`    |
//!
//! # The rules this buys (property-tested in `tests`)
//! 1. **Idempotence**: applying an event twice changes nothing the second time and emits nothing.
//!    The exception is a payment on a `Fixed` term, which *adds* time: two payments are two
//!    payments. Those are told apart by their provider event id, which the repository
//!    deduplicates (`Ledger::commit` MUST report a repeated id as a duplicate).
//! 2. **Order-insensitivity**: every register merge is commutative, so any permutation of a set of
//!    events ends in the same standing. A stale event (older than what a register holds) is
//!    absorbed without regressing anything.
//! 3. **Terminal states absorb**: once `ended` is set, the status stays `Revoked` or `Refunded`
//!    and access never returns, whatever arrives, and no role job is asked for. When two terminal
//!    facts arrive (a revocation and a refund), the earlier by version names the status, so a
//!    late older one may relabel `Refunded` as `Revoked`: that keeps every arrival order
//!    converging on the same answer.
//!    `Expired` absorbs everything except provider facts that re-establish access beyond the
//!    elapsed moment: a payment or a cancellation whose end lies past it, or an undone
//!    cancellation. That is the provider's explicit reactivation, and it is what a member who
//!    paid (or whose un-cancel webhook arrived after the expirer ran) expects.
//! 4. **No access without payment**: `paid` is only ever set by `PaymentSucceeded`, which for
//!    `ProviderName::MANUAL` is the manual grant.
//! 5. **Entitlement** is decided by [`entitled`]; fixed-term extension never shortens access.

mod entitled;
mod standing;

pub use entitled::{entitled, role_desired};
pub use standing::{EndReason, Phase, Stamped, Standing};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{Term, Timestamp};

/// The ordering key of an event: when the provider says the fact became true (Polar's
/// `modified_at`, a bank transfer's time, the moment of a manual action). Later wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version(#[serde(with = "time::serde::rfc3339")] pub Timestamp);

impl Version {
    pub fn at(self) -> Timestamp {
        self.0
    }
}

impl From<OffsetDateTime> for Version {
    fn from(at: OffsetDateTime) -> Self {
        Version(at)
    }
}

/// A provider-neutral fact about one entitlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A payment was started but has not succeeded (Polar `order.created` with status pending).
    PaymentPending,
    /// Money arrived (or an admin granted access by hand). `access_until` is the end of the paid
    /// period for recurring terms; fixed terms compute their own.
    PaymentSucceeded {
        #[serde(with = "time::serde::rfc3339::option")]
        access_until: Option<Timestamp>,
    },
    /// A renewal failed; the member keeps access for the guild's grace period.
    PaymentFailed,
    /// Cancellation scheduled: access continues until `access_until`.
    CancelScheduled {
        #[serde(with = "time::serde::rfc3339")]
        access_until: Timestamp,
    },
    /// A scheduled cancellation was withdrawn.
    CancelUndone,
    /// Access ends now (Polar `subscription.revoked`, a manual revoke).
    Revoked,
    /// Money went back. Only a full refund ends access.
    Refunded { full: bool },
    /// A chargeback: access ends.
    Disputed,
    /// Docobo's own observation that a term or grace period has run out (the expirer).
    TermElapsed,
}

impl EventKind {
    /// Stable lower-case name, for logs and the audit trail.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::PaymentPending => "payment_pending",
            EventKind::PaymentSucceeded { .. } => "payment_succeeded",
            EventKind::PaymentFailed => "payment_failed",
            EventKind::CancelScheduled { .. } => "cancel_scheduled",
            EventKind::CancelUndone => "cancel_undone",
            EventKind::Revoked => "revoked",
            EventKind::Refunded { full: true } => "refunded",
            EventKind::Refunded { full: false } => "partially_refunded",
            EventKind::Disputed => "disputed",
            EventKind::TermElapsed => "term_elapsed",
        }
    }
}

/// An event with its ordering key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub version: Version,
}

/// The status a member and an owner see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Active,
    PastDue,
    Cancelled,
    Expired,
    Revoked,
    Refunded,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Pending,
        Status::Active,
        Status::PastDue,
        Status::Cancelled,
        Status::Expired,
        Status::Revoked,
        Status::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
            Status::PastDue => "past_due",
            Status::Cancelled => "cancelled",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
            Status::Refunded => "refunded",
        }
    }

    /// `Revoked` and `Refunded` never change again; `Expired` only through a documented
    /// reactivation (see the module docs).
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Expired | Status::Revoked | Status::Refunded)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something the caller must do because the standing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Whether the member should hold the role may have changed: enqueue a role job for
    /// (guild, user, role). The worker recomputes the desired state when it runs.
    SyncRole,
}

/// How an event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The standing changed.
    Applied,
    /// Nothing changed: the event was already applied, older than what is known, or absorbed by
    /// a terminal state. It is still recorded by the caller.
    Unchanged,
}

/// The result of [`apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub standing: Standing,
    pub outcome: Outcome,
    pub effects: Vec<Effect>,
}

/// Why an event could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("extending a {term} term from {from} leaves the supported date range")]
    DateOutOfRange { term: Term, from: Timestamp },
}

/// Applies one event. `now` is only used to extend fixed terms from `max(now, access_until)`.
///
/// Pure: same input, same output. See the module docs for the registers and the rules.
pub fn apply(current: &Standing, event: &Event, now: Timestamp) -> Result<Transition, TransitionError> {
    let mut next = current.clone();
    next.merge(event, now)?;
    let outcome = if next == *current { Outcome::Unchanged } else { Outcome::Applied };
    // A role job is needed when anything that decides access moved; bookkeeping that cannot
    // change access (say, `paid` learnt after a revocation) is stored without one.
    let effects = if next.access_view() != current.access_view() { vec![Effect::SyncRole] } else { vec![] };
    Ok(Transition { standing: next, outcome, effects })
}

#[cfg(test)]
mod tests;
