//! The `Clock` port: time-driven rules (grace, expiry, backoff) read the time from here, so tests
//! move time by hand instead of sleeping.

use crate::domain::Timestamp;

/// The current time.
pub trait Clock: Send + Sync {
    /// MUST return UTC and MUST NOT go backwards within one process.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        time::OffsetDateTime::now_utc()
    }
}
