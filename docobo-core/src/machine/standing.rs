//! [`Standing`]: the registers of one entitlement and the status derived from them.

use serde::{Deserialize, Serialize};

use super::{Event, EventKind, Status, TransitionError, Version};
use crate::domain::{Term, Timestamp};

/// A value with the version and tie-break rank of the event that set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamped<T> {
    pub version: Version,
    /// Breaks ties between different events with the same version, so the merge stays
    /// deterministic whatever the arrival order.
    pub rank: u8,
    pub value: T,
}

impl<T: Ord + Copy> Stamped<T> {
    /// Version first, then the kind of event, then the value itself: two different events can
    /// never tie, so the winner does not depend on arrival order.
    fn key(&self) -> (Version, u8, T) {
        (self.version, self.rank, self.value)
    }
}

/// What the provider last said about the subscription's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Active,
    /// Since the stamp's version.
    PastDue,
    Cancelled,
}

/// Why access ended for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    Revoked,
    Refunded,
    Disputed,
}

impl EndReason {
    pub fn status(self) -> Status {
        match self {
            EndReason::Refunded => Status::Refunded,
            EndReason::Revoked | EndReason::Disputed => Status::Revoked,
        }
    }
}

/// The state-machine part of an entitlement. Construct with [`Standing::new`]; change only
/// through [`super::apply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// Copied from the paid role at purchase, so a later price or term change does not rewrite
    /// what was bought.
    pub term: Term,
    pub paid: bool,
    pub phase: Option<Stamped<Phase>>,
    pub period_end: Option<Stamped<Timestamp>>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub fixed_until: Option<Timestamp>,
    pub ended: Option<Stamped<EndReason>>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub elapsed_at: Option<Timestamp>,
}

impl Standing {
    /// A purchase nobody has paid for yet.
    pub fn new(term: Term) -> Self {
        Standing {
            term,
            paid: false,
            phase: None,
            period_end: None,
            fixed_until: None,
            ended: None,
            elapsed_at: None,
        }
    }

    /// The derived status (table in the module docs).
    pub fn status(&self) -> Status {
        if let Some(ended) = self.ended {
            return ended.value.status();
        }
        if !self.paid {
            return Status::Pending;
        }
        let phase = self.phase.map_or(Phase::Active, |p| p.value);
        let lapsed = matches!((self.elapsed_at, self.access_until()), (Some(e), Some(u)) if e >= u);
        let expirable = phase != Phase::Active || matches!(self.term, Term::Fixed { .. });
        match phase {
            _ if lapsed && expirable => Status::Expired,
            Phase::PastDue => Status::PastDue,
            Phase::Cancelled => Status::Cancelled,
            Phase::Active => Status::Active,
        }
    }

    /// When paid access runs out, if it does: the accumulated end of a fixed term, or the period
    /// end the provider reported. `None` once access ended for good.
    pub fn access_until(&self) -> Option<Timestamp> {
        if self.ended.is_some() {
            return None;
        }
        match self.term {
            Term::Fixed { .. } => self.fixed_until,
            Term::Recurring | Term::Lifetime => self.period_end.map(|p| p.value),
        }
    }

    /// When the renewal failed, while the status is `PastDue`.
    pub fn past_due_since(&self) -> Option<Timestamp> {
        self.phase.filter(|p| p.value == Phase::PastDue).map(|p| p.version.at())
    }

    /// Why access ended for good, if it did.
    pub fn end_reason(&self) -> Option<EndReason> {
        self.ended.map(|e| e.value)
    }

    /// The newest version any register holds: "how recent is what we know".
    pub fn version(&self) -> Option<Version> {
        let stamps = [
            self.phase.map(|s| s.version),
            self.period_end.map(|s| s.version),
            self.ended.map(|s| s.version),
        ];
        stamps.into_iter().flatten().max()
    }

    /// The next moment at which access lapses by the clock alone (a term or cancellation runs
    /// out, a grace period ends) and nobody has applied `TermElapsed` for it yet. The expirer
    /// looks for entitlements whose deadline has passed.
    pub fn deadline(&self, grace: time::Duration) -> Option<Timestamp> {
        let status = self.status();
        let mut candidates = [None, None];
        match status {
            Status::Cancelled => candidates[0] = self.access_until(),
            Status::Active if matches!(self.term, Term::Fixed { .. }) => candidates[0] = self.access_until(),
            Status::PastDue => {
                candidates[0] = self.past_due_since().map(|since| since.saturating_add(grace));
                if matches!(self.term, Term::Fixed { .. }) {
                    candidates[1] = self.access_until();
                }
            }
            _ => {}
        }
        candidates.into_iter().flatten().filter(|d| self.elapsed_at.is_none_or(|e| e < *d)).min()
    }

    /// What decides access: if this changes, the role must be re-checked. Every ended standing
    /// looks the same (no access, for good), so learning that a revoked purchase was also
    /// refunded asks for no role job.
    pub(super) fn access_view(&self) -> Option<(Status, Option<Timestamp>, Option<Timestamp>)> {
        self.ended.is_none().then(|| (self.status(), self.access_until(), self.past_due_since()))
    }

    pub(super) fn merge(&mut self, event: &Event, now: Timestamp) -> Result<(), TransitionError> {
        let v = event.version;
        match event.kind {
            // Informational: the purchase exists but is unpaid, which `paid == false` already
            // says. It must not touch the phase, or a pending renewal order would undo `PastDue`.
            EventKind::PaymentPending => {}
            EventKind::PaymentSucceeded { access_until } => {
                self.paid = true;
                newest(&mut self.phase, v, 1, Phase::Active);
                if let Some(extension) = self.term.extension() {
                    let from = self.fixed_until.map_or(now, |until| until.max(now));
                    let until = from
                        .checked_add(extension)
                        .ok_or(TransitionError::DateOutOfRange { term: self.term, from })?;
                    self.fixed_until = Some(until);
                } else if let Some(until) = access_until {
                    newest(&mut self.period_end, v, 0, until);
                }
            }
            EventKind::CancelUndone => newest(&mut self.phase, v, 2, Phase::Active),
            EventKind::PaymentFailed => newest(&mut self.phase, v, 3, Phase::PastDue),
            EventKind::CancelScheduled { access_until } => {
                newest(&mut self.phase, v, 4, Phase::Cancelled);
                newest(&mut self.period_end, v, 1, access_until);
            }
            EventKind::Revoked => oldest(&mut self.ended, v, 0, EndReason::Revoked),
            EventKind::Refunded { full: true } => oldest(&mut self.ended, v, 1, EndReason::Refunded),
            EventKind::Refunded { full: false } => {}
            EventKind::Disputed => oldest(&mut self.ended, v, 2, EndReason::Disputed),
            EventKind::TermElapsed => {
                self.elapsed_at = Some(self.elapsed_at.map_or(v.at(), |e| e.max(v.at())));
            }
        }
        Ok(())
    }
}

/// Last-writer-wins by `(version, rank, value)`.
fn newest<T: Ord + Copy>(slot: &mut Option<Stamped<T>>, version: Version, rank: u8, value: T) {
    let candidate = Stamped { version, rank, value };
    if slot.as_ref().is_none_or(|held| candidate.key() > held.key()) {
        *slot = Some(candidate);
    }
}

/// First-writer-wins by `(version, rank, value)`: the earliest terminal fact is the one that ended
/// it.
fn oldest<T: Ord + Copy>(slot: &mut Option<Stamped<T>>, version: Version, rank: u8, value: T) {
    let candidate = Stamped { version, rank, value };
    if slot.as_ref().is_none_or(|held| candidate.key() < held.key()) {
        *slot = Some(candidate);
    }
}
