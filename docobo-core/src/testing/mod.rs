//! In-memory implementations of every port, for tests, examples and embedders' own tests
//! (feature `testing`).
//!
//! They are real implementations, not mocks: [`MemoryRepo`] enforces the same uniqueness,
//! atomicity and queue rules the database adapters must (the contract suite holds both to them),
//! [`FakeGateway`] keeps guild membership and roles and can be told to fail, [`ManualClock`] moves
//! only when told, and [`ToyProvider`] is a small signed-webhook provider.

mod clock;
mod gateway;
mod memory;
mod provider;

pub use clock::ManualClock;
pub use gateway::{Call, FakeGateway};
pub use memory::MemoryRepo;
pub use provider::ToyProvider;

/// Locks a mutex, recovering the data if another thread panicked while holding it: the fakes'
/// state stays usable in a test that already failed elsewhere.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
