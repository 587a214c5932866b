//! Our own request pacing, in place of serenity's rate limiter (which is disabled so the same
//! code path runs against the fake in tests; it would also retry 429s forever).
//!
//! Requests are spaced so that all of them together stay below 45 per second (Discord's global
//! limit is 50) and those for one guild below 10 per second (the member-role routes share one
//! bucket per guild). A 429 that still happens becomes `Retryable`, and the role job's backoff
//! takes over.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Global spacing: 45 requests per second.
pub const GLOBAL_INTERVAL: Duration = Duration::from_micros(1_000_000 / 45);
/// Per-guild spacing: 10 requests per second.
pub const GUILD_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct Slots {
    global: Option<Instant>,
    guilds: HashMap<u64, Instant>,
}

/// Hands out send times: each caller waits for its slot, then goes.
#[derive(Debug, Default)]
pub struct Pacer(Mutex<Slots>);

impl Pacer {
    /// Waits until a request for `guild` may be sent.
    pub async fn wait(&self, guild: u64) {
        let at = {
            let mut slots = self.0.lock().await;
            let now = Instant::now();
            let global = slots.global.map_or(now, |t| t.max(now));
            let local = slots.guilds.get(&guild).map_or(now, |t| (*t).max(now));
            let at = global.max(local);
            slots.global = Some(at + GLOBAL_INTERVAL);
            slots.guilds.insert(guild, at + GUILD_INTERVAL);
            if slots.guilds.len() > 10_000 {
                slots.guilds.retain(|_, t| *t > now);
            }
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_globally_and_per_guild() {
        let pacer = Pacer::default();
        let start = Instant::now();
        for _ in 0..10 {
            pacer.wait(1).await;
        }
        // Ten requests for one guild: nine guild intervals.
        assert_eq!(Instant::now() - start, GUILD_INTERVAL * 9);
        let start = Instant::now();
        for guild in 100..145 {
            pacer.wait(guild).await;
        }
        // 45 different guilds: the global spacing rules, about one second in all.
        let elapsed = Instant::now() - start;
        assert!(
            elapsed >= GLOBAL_INTERVAL * 44 && elapsed <= GUILD_INTERVAL + GLOBAL_INTERVAL * 45,
            "{elapsed:?}"
        );
    }
}
