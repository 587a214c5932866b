//! In-memory implementations of every port, for tests, examples and embedders' own tests
//! (feature `testing`).
//!
//! They are real implementations, not mocks: [`MemoryRepo`] enforces the same uniqueness,
//! atomicity and queue rules the database adapters must (the contract suite holds both to them),
//! [`FakeRoles`] keeps guild membership and roles and can be told to fail, [`ManualClock`] moves
//! only when told, and [`ToyProvider`] is a small signed-webhook provider.

mod clock;
mod dms;
mod memory;
mod mirrors;
mod provider;
mod roles;

pub use clock::ManualClock;
pub use dms::FakeDms;
pub use memory::MemoryRepo;
pub use mirrors::{FAKE_WEBHOOK, FakeMirrors, TargetMessage};
pub use provider::{SIGNATURE_HEADER, ToyProvider};
pub use roles::{Call, FakeRoles};

/// Locks a mutex, recovering the data if another thread panicked while holding it: the fakes'
/// state stays usable in a test that already failed elsewhere.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A commit recording that `key.user` paid (Polar purchase `reference`) for `key.role`, as a
/// provider's payment would: for tests that need an entitlement without a webhook.
///
/// # Panics
/// When `reference` is not a valid external reference (test input), or the machine refuses a
/// first payment (a bug).
pub fn purchase(
    key: crate::domain::RoleJobKey,
    reference: &str,
    term: crate::domain::Term,
    access_until: Option<crate::domain::Timestamp>,
    at: crate::domain::Timestamp,
) -> crate::ports::Commit {
    use crate::machine::{Event, EventKind, Standing, Version, apply};
    let paid = Event { kind: EventKind::PaymentSucceeded { access_until }, version: Version(at) };
    let standing =
        apply(&Standing::new(term), &paid, at).map_or_else(|_| Standing::new(term), |a| a.standing);
    let write = crate::ports::EntitlementWrite::Insert {
        guild: key.guild,
        user: key.user,
        role: key.role,
        provider: crate::domain::ProviderName::POLAR,
        external_ref: reference.parse().expect("a valid test reference"),
        standing,
        deadline: None,
    };
    crate::ports::Commit { writes: vec![write], cause: "test".into(), ..crate::ports::Commit::new(at) }
}
