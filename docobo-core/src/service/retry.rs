//! When a failed role job runs again.
//!
//! After the n-th failed attempt (n = 1, 2, …) the job waits a delay drawn from
//! `[base/2, base]`, where `base = 5 s × 2^(n−1)` capped at 15 minutes:
//!
//! | attempt | 1    | 2     | 3     | 4     | 5      | 6      | 7      | 8       | 9+     |
//! |---------|------|-------|-------|-------|--------|--------|--------|---------|--------|
//! | base    | 5 s  | 10 s  | 20 s  | 40 s  | 80 s   | 160 s  | 320 s  | 640 s   | 900 s  |
//!
//! The jitter spreads jobs that failed together (a 429 storm) so they do not retry in lockstep.
//! It is derived from a hash of the job id and the attempt, not from a random generator, so the
//! schedule is reproducible in tests and the core needs no source of randomness. A `Retry-After`
//! from Discord is a floor: the job never runs before Discord said it may. After
//! [`MAX_ATTEMPTS`] failures (roughly two to three and a half hours of trying) the job is parked
//! for a person to look at.

use sha2::{Digest, Sha256};
use time::Duration;

use crate::domain::JobId;

/// Failed attempts after which a job is parked instead of retried.
pub const MAX_ATTEMPTS: u32 = 20;

/// How many times a commit is re-planned when a concurrent writer to the same entitlement
/// committed first (a redelivery racing the original, a manual revoke racing a webhook). Each
/// retry re-reads the entitlement, so it converges quickly; past this a webhook gets a 5xx and
/// the provider redelivers, and a manual override reports the conflict.
pub const MAX_CONFLICT_RETRIES: usize = 8;

const BASE: Duration = Duration::seconds(5);
const CAP: Duration = Duration::minutes(15);

/// The delay before the next run of `job` after its `attempt`-th failure (1-based).
pub fn backoff(job: JobId, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    let base = (BASE * 2_i32.pow(doublings)).min(CAP);
    let digest =
        Sha256::new().chain_update(job.0.to_le_bytes()).chain_update(attempt.to_le_bytes()).finalize();
    let unit = f64::from(u16::from_le_bytes([digest[0], digest[1]])) / f64::from(u16::MAX);
    let jittered = base * (0.5 + 0.5 * unit);
    retry_after.map_or(jittered, |floor| jittered.max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_schedule_doubles_from_five_seconds_up_to_fifteen_minutes() {
        for (attempt, base) in [(1, 5), (2, 10), (3, 20), (8, 640), (9, 900), (30, 900)] {
            let d = backoff(JobId(7), attempt, None);
            let base = Duration::seconds(base);
            assert!(d >= base / 2 && d <= base, "attempt {attempt}: {d} not in [{}, {base}]", base / 2);
        }
    }

    #[test]
    fn jobs_that_failed_together_do_not_retry_together() {
        let delays: std::collections::BTreeSet<_> = (0..50).map(|id| backoff(JobId(id), 4, None)).collect();
        assert!(delays.len() > 40, "only {} distinct delays for 50 jobs", delays.len());
    }

    proptest! {
        #[test]
        fn retry_after_is_a_floor(id in any::<i64>(), attempt in 1u32..40, secs in 0i64..7200) {
            let floor = Duration::seconds(secs);
            prop_assert!(backoff(JobId(id), attempt, Some(floor)) >= floor);
        }
    }
}
