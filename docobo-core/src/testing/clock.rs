//! A clock that moves only when told.

use std::sync::Mutex;

use time::Duration;

use super::lock;
use crate::domain::Timestamp;
use crate::ports::Clock;

/// A [`Clock`] for tests: `set` and `advance` move it; nothing else does.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Mutex::new(start))
    }

    pub fn set(&self, to: Timestamp) {
        *lock(&self.0) = to;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = lock(&self.0);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *lock(&self.0)
    }
}
