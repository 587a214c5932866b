//! Connections that died with the database: after a restart or a failover every idle pooled
//! connection is dead, but the pool only learns that one checkout at a time, each costing a
//! failed statement (and a 503 to a provider). So once any statement fails for a reason other
//! than a conflict, every connection opened before that moment is pinged before its next use
//! and replaced if it does not answer; connections opened since are trusted. In steady state
//! nothing is pinged (beyond SeaORM's ping of connections idle for 30 s).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The process's reference instant; times below are microseconds since it.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// When a statement last failed for a reason that may mean a dead connection (0: never).
static LAST_FAILURE: AtomicU64 = AtomicU64::new(0);

fn micros_since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Records that a statement just failed (see the module docs).
pub(super) fn note_failure() {
    LAST_FAILURE.fetch_max(micros_since_epoch(Instant::now()), Ordering::Relaxed);
}

/// Whether a connection that has existed for `age` was opened before the last failure, and so
/// must prove it is alive before it is used.
pub(super) fn suspect(age: Duration) -> bool {
    let last = LAST_FAILURE.load(Ordering::Relaxed);
    let opened = Instant::now().checked_sub(age).unwrap_or_else(epoch);
    last != 0 && micros_since_epoch(opened) <= last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_opened_before_a_failure_are_suspect_and_newer_ones_are_not() {
        std::thread::sleep(Duration::from_millis(2));
        let before = Instant::now();
        note_failure();
        std::thread::sleep(Duration::from_millis(2));
        assert!(suspect(before.elapsed() + Duration::from_millis(1)), "opened before the failure");
        assert!(!suspect(Duration::ZERO), "opened just now");
    }
}
