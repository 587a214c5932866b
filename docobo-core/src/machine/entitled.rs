//! Whether a standing grants access now, and whether a member should hold a role (DESIGN §2.2
//! rule 5 and §2.3).

use time::Duration;

use super::{Standing, Status};
use crate::domain::{Term, Timestamp};

/// `Active` ∨ (`PastDue` ∧ within `grace`) ∨ (`Cancelled` ∧ `now < access_until`); a `Fixed`
/// term additionally needs `now < access_until`. Nothing else is entitled.
pub fn entitled(standing: &Standing, now: Timestamp, grace: Duration) -> bool {
    let before = |deadline: Option<Timestamp>| deadline.is_some_and(|d| now < d);
    let within_term = !matches!(standing.term, Term::Fixed { .. }) || before(standing.access_until());
    let by_status = match standing.status() {
        Status::Active => true,
        Status::PastDue => before(standing.past_due_since().map(|since| since.saturating_add(grace))),
        Status::Cancelled => before(standing.access_until()),
        Status::Pending | Status::Expired | Status::Revoked | Status::Refunded => false,
    };
    by_status && within_term
}

/// Reference counting: a member keeps a paid role while **any** of their entitlements for it is
/// entitled. Two purchases, one refunded: the role stays.
pub fn role_desired<'a>(
    standings: impl IntoIterator<Item = &'a Standing>,
    now: Timestamp,
    grace: Duration,
) -> bool {
    standings.into_iter().any(|s| entitled(s, now, grace))
}
