//! Our own request pacing, in place of serenity's rate limiter (which is disabled so the same
//! code path runs against the fake in tests; it would also retry 429s forever).
//!
//! Two generic cell-rate limiters (GCRA), checked together: all requests stay below 45 per
//! second (Discord's global limit is 50) with bursts of up to 10, and requests for one guild
//! below 10 per second (the member-role routes share a bucket per guild) with bursts of up to 5.
//! A quiet guild's job (read, change, verify: three requests) therefore goes at full speed, and
//! only sustained traffic is spread out. A 429 that still happens becomes `Retryable`, and the
//! role job's backoff takes over.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Global requests per second by default: below Discord's 50. Discord raises the global limit
/// for large bots on request; `DOCOBO_DISCORD_RATE` follows it.
pub const GLOBAL_RATE: u32 = 45;
/// Global emission interval at the default rate.
pub const GLOBAL_INTERVAL: Duration = Duration::from_micros(1_000_000 / GLOBAL_RATE as u64);
pub const GLOBAL_BURST: u32 = 10;
/// Per-guild emission interval: 10 requests per second.
pub const GUILD_INTERVAL: Duration = Duration::from_millis(100);
pub const GUILD_BURST: u32 = 5;

/// One GCRA cell: the theoretical arrival time of the next request.
fn reserve(tat: &mut Option<Instant>, now: Instant, interval: Duration, burst: u32) -> Instant {
    let next = tat.map_or(now, |t| t.max(now));
    let tolerance = interval * burst.saturating_sub(1);
    *tat = Some(next + interval);
    next.checked_sub(tolerance).map_or(now, |t| t.max(now))
}

#[derive(Debug)]
struct Cells {
    global_interval: Duration,
    global: Option<Instant>,
    guilds: HashMap<u64, Option<Instant>>,
}

/// Hands out send times: each caller waits for its slot, then goes.
#[derive(Debug)]
pub struct Pacer(Mutex<Cells>);

impl Default for Pacer {
    fn default() -> Self {
        Pacer::new(GLOBAL_RATE)
    }
}

impl Pacer {
    /// A pacer allowing `global_per_second` requests in all (at least 1); the per-guild limit
    /// is Discord's and fixed.
    pub fn new(global_per_second: u32) -> Self {
        let global_interval = Duration::from_secs(1) / global_per_second.max(1);
        Pacer(Mutex::new(Cells { global_interval, global: None, guilds: HashMap::new() }))
    }

    /// Waits until a request for `guild` may be sent.
    pub async fn wait(&self, guild: u64) {
        let at = {
            let mut cells = self.0.lock().await;
            let now = Instant::now();
            let interval = cells.global_interval;
            let global = reserve(&mut cells.global, now, interval, GLOBAL_BURST);
            let local = reserve(cells.guilds.entry(guild).or_default(), now, GUILD_INTERVAL, GUILD_BURST);
            if cells.guilds.len() > 10_000 {
                cells.guilds.retain(|_, t| t.is_some_and(|t| t > now));
            }
            global.max(local)
        };
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_quiet_guild_bursts_and_sustained_traffic_is_spread() {
        let pacer = Pacer::default();
        let start = Instant::now();
        for _ in 0..GUILD_BURST {
            pacer.wait(1).await;
        }
        assert_eq!(Instant::now() - start, Duration::ZERO, "a burst goes at once");
        for _ in 0..5 {
            pacer.wait(1).await;
        }
        assert_eq!(Instant::now() - start, GUILD_INTERVAL * 5, "then 10 per second");
    }

    #[tokio::test(start_paused = true)]
    async fn the_global_limit_holds_across_guilds() {
        let pacer = Pacer::default();
        let start = Instant::now();
        for guild in 0..100 {
            pacer.wait(guild).await;
        }
        // 100 requests: a burst of 10, then 90 more at 45 per second — about two seconds.
        let elapsed = Instant::now() - start;
        assert!(elapsed >= GLOBAL_INTERVAL * 89 && elapsed <= GLOBAL_INTERVAL * 91, "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_raised_global_rate_lets_many_guilds_through_faster() {
        let pacer = Pacer::new(450);
        let start = Instant::now();
        for guild in 0..100 {
            pacer.wait(guild).await;
        }
        // A burst of 10, then 90 at 450 per second: a tenth of the default's two seconds.
        let elapsed = Instant::now() - start;
        let interval = Duration::from_secs(1) / 450;
        assert!(elapsed >= interval * 89 && elapsed <= interval * 91, "{elapsed:?}");
    }
}
