//! Relay latency over the last hour, per relay and operation, for `GET /admin/relays`: every
//! mirrored job's latency (source event received → Discord's answer) is kept with when it
//! happened, and samples older than an hour are dropped as new ones come. At most
//! [`MAX_SAMPLES`] per relay and operation are kept, so a busy relay costs bounded memory.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use docobo_core::domain::RelayId;
use docobo_core::service::{MirrorOp, MirrorReport};

/// The window the percentiles cover.
pub const WINDOW: Duration = Duration::from_secs(3600);
/// Most samples kept per relay and operation.
pub const MAX_SAMPLES: usize = 10_000;

/// When each latency (in seconds) was seen.
type Samples = VecDeque<(Instant, f64)>;

/// Samples by relay and operation.
#[derive(Debug, Default)]
pub struct RelayStats(Mutex<BTreeMap<(RelayId, &'static str), Samples>>);

/// Percentiles of one relay's operation, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
}

impl RelayStats {
    /// Keeps the latency of every mirrored job in `reports`.
    pub fn record(&self, reports: &[MirrorReport]) {
        let now = Instant::now();
        let mut all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for r in reports {
            let Some(latency) = r.latency else { continue };
            let samples = all.entry((r.relay, r.op.as_str())).or_default();
            while samples.front().is_some_and(|(at, _)| now.duration_since(*at) > WINDOW)
                || samples.len() >= MAX_SAMPLES
            {
                samples.pop_front();
            }
            samples.push_back((now, latency.as_seconds_f64().max(0.0)));
        }
    }

    /// The relay's p50 and p95 for `op` over the last hour, if it mirrored anything.
    pub fn latency(&self, relay: RelayId, op: MirrorOp) -> Option<Latency> {
        let all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let mut recent: Vec<f64> = all
            .get(&(relay, op.as_str()))?
            .iter()
            .filter(|(at, _)| now.duration_since(*at) <= WINDOW)
            .map(|(_, s)| *s)
            .collect();
        if recent.is_empty() {
            return None;
        }
        recent.sort_by(f64::total_cmp);
        let at = |q: f64| recent[((recent.len() - 1) as f64 * q).round() as usize];
        Some(Latency { count: recent.len(), p50: at(0.5), p95: at(0.95) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_mirrored_jobs_of_each_relay_and_operation() {
        let stats = RelayStats::default();
        let report = |relay, ms: i64, outcome| MirrorReport {
            relay: RelayId(relay),
            op: MirrorOp::Create,
            outcome,
            latency: (outcome == "mirrored").then(|| time::Duration::milliseconds(ms)),
        };
        let mut reports: Vec<MirrorReport> = (1..=100).map(|ms| report(1, ms, "mirrored")).collect();
        reports.push(report(1, 9_000, "retried"));
        reports.push(report(2, 7, "mirrored"));
        stats.record(&reports);
        let one = stats.latency(RelayId(1), MirrorOp::Create).expect("samples");
        assert_eq!(one.count, 100);
        assert!((one.p50 - 0.050).abs() < 0.0015 && (one.p95 - 0.095).abs() < 0.0015, "{one:?}");
        assert_eq!(stats.latency(RelayId(2), MirrorOp::Create).map(|l| l.count), Some(1));
        assert_eq!(stats.latency(RelayId(1), MirrorOp::Update), None);
    }
}
