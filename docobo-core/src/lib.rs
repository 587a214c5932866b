//! Docobo's core: the pure domain of paid Discord roles.
//!
//! - [`domain`]: identifiers, money, paid roles, entitlements and the records the use cases keep.
//! - [`machine`]: the entitlement state machine, a pure function with its rules property-tested.
//! - [`ports`]: what the core needs from outside (payments, Discord, storage, time), each method
//!   documenting what an adapter MUST do.
//! - [`service`]: the use cases (ingest a webhook, sync a role, expire terms, reconcile).
//! - `testing` (feature `testing`): in-memory adapters for every port.
//!
//! This crate does no I/O of its own and depends on no runtime, HTTP, database or Discord crate.

pub mod domain;
pub mod machine;
pub mod ports;
pub mod service;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
