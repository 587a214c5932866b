//! Our own request pacing, in place of serenity's rate limiter (which is disabled so the same
//! code path runs against the fake in tests; it would also retry 429s forever).
//!
//! Two generic cell-rate limiters (GCRA), checked together: all requests stay below 45 per
//! second (Discord's global limit is 50) with bursts of up to 10, and requests for one guild
//! below 10 per second (the member-role routes share a bucket per guild) with bursts of up to 5.
//! A quiet guild's job (read, change, verify: three requests) therefore goes at full speed, and
//! only sustained traffic is spread out.
//!
//! On top of that, what Discord says is obeyed ([`Pacer::observe`]): a response whose bucket is
//! empty (`X-RateLimit-Remaining: 0`) holds that bucket for the guild until
//! `X-RateLimit-Reset-After`; a 429 holds the bucket for `Retry-After`, or, when it is global,
//! every request. Routes are mapped to the bucket Discord names (`X-RateLimit-Bucket`), so two
//! routes that share a bucket are held together. The 429 itself becomes `Retryable` with
//! `Retry-After` as the floor of the role job's next attempt.

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
    /// A global 429: nothing is sent before this.
    paused_until: Option<Instant>,
    /// The bucket Discord named for each route.
    buckets: HashMap<&'static str, String>,
    /// (bucket, guild) → nothing is sent on that bucket for that guild before this.
    holds: HashMap<(String, u64), Instant>,
}

/// What a response said about rate limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateLimit {
    /// `X-RateLimit-Bucket`.
    pub bucket: Option<String>,
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<u32>,
    /// `X-RateLimit-Reset-After`.
    pub reset_after: Option<Duration>,
    /// For a 429: how long to wait (the larger of `Retry-After` and the body's `retry_after`).
    pub retry_after: Option<Duration>,
    /// For a 429: `X-RateLimit-Global` (or `"global": true` in the body).
    pub global: bool,
}

/// Most (bucket, guild) holds kept; expired ones are dropped past this.
const MAX_HOLDS: usize = 10_000;

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
        Pacer(Mutex::new(Cells {
            global_interval,
            global: None,
            guilds: HashMap::new(),
            paused_until: None,
            buckets: HashMap::new(),
            holds: HashMap::new(),
        }))
    }

    /// Waits until a request for `guild` may be sent on `route` (a name for the route, e.g.
    /// `"member-role"`; see [`Pacer::observe`]).
    pub async fn wait(&self, guild: u64, route: &'static str) {
        loop {
            let (at, reserved) = {
                let mut cells = self.0.lock().await;
                let now = Instant::now();
                let bucket = cells.buckets.get(route).map_or(route, String::as_str);
                let held = cells.holds.get(&(bucket.to_owned(), guild)).copied();
                match cells.paused_until.into_iter().chain(held).filter(|t| *t > now).max() {
                    // Held: wait it out, then take a slot as usual.
                    Some(until) => (until, false),
                    None => {
                        let interval = cells.global_interval;
                        let global = reserve(&mut cells.global, now, interval, GLOBAL_BURST);
                        let local =
                            reserve(cells.guilds.entry(guild).or_default(), now, GUILD_INTERVAL, GUILD_BURST);
                        if cells.guilds.len() > 10_000 {
                            cells.guilds.retain(|_, t| t.is_some_and(|t| t > now));
                        }
                        (global.max(local), true)
                    }
                }
            };
            tokio::time::sleep_until(at).await;
            if reserved {
                return;
            }
        }
    }

    /// Applies what a response on `route` for `guild` said (see the module docs).
    pub async fn observe(&self, guild: u64, route: &'static str, limit: &RateLimit) {
        let mut cells = self.0.lock().await;
        let now = Instant::now();
        if let Some(bucket) = &limit.bucket {
            cells.buckets.insert(route, bucket.clone());
        }
        let bucket = cells.buckets.get(route).map_or_else(|| route.to_owned(), Clone::clone);
        let hold = match (limit.retry_after, limit.remaining, limit.reset_after) {
            (Some(wait), ..) if limit.global => {
                cells.paused_until = Some(cells.paused_until.map_or(now + wait, |p| p.max(now + wait)));
                None
            }
            (Some(wait), ..) => Some(now + wait),
            (None, Some(0), Some(reset)) => Some(now + reset),
            _ => None,
        };
        if let Some(until) = hold {
            if cells.holds.len() >= MAX_HOLDS {
                cells.holds.retain(|_, t| *t > now);
            }
            let slot = cells.holds.entry((bucket, guild)).or_insert(until);
            *slot = (*slot).max(until);
        }
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
            pacer.wait(1, "r").await;
        }
        assert_eq!(Instant::now() - start, Duration::ZERO, "a burst goes at once");
        for _ in 0..5 {
            pacer.wait(1, "r").await;
        }
        assert_eq!(Instant::now() - start, GUILD_INTERVAL * 5, "then 10 per second");
    }

    #[tokio::test(start_paused = true)]
    async fn the_global_limit_holds_across_guilds() {
        let pacer = Pacer::default();
        let start = Instant::now();
        for guild in 0..100 {
            pacer.wait(guild, "r").await;
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
            pacer.wait(guild, "r").await;
        }
        // A burst of 10, then 90 at 450 per second: a tenth of the default's two seconds.
        let elapsed = Instant::now() - start;
        let interval = Duration::from_secs(1) / 450;
        assert!(elapsed >= interval * 89 && elapsed <= interval * 91, "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn m2_an_empty_bucket_holds_its_routes_for_that_guild_only() {
        let pacer = Pacer::default();
        let start = Instant::now();
        let empty = RateLimit {
            bucket: Some("b1".into()),
            remaining: Some(0),
            reset_after: Some(Duration::from_secs(3)),
            ..RateLimit::default()
        };
        pacer.observe(1, "member-role", &empty).await;
        // Another route Discord puts in the same bucket is held too, once it is known.
        pacer
            .observe(
                1,
                "member-role-delete",
                &RateLimit { bucket: Some("b1".into()), ..RateLimit::default() },
            )
            .await;
        pacer.wait(2, "member-role").await;
        assert_eq!(Instant::now() - start, Duration::ZERO, "another guild's bucket is not held");
        pacer.wait(1, "member-role-delete").await;
        assert_eq!(Instant::now() - start, Duration::from_secs(3), "held until the bucket resets");
    }

    #[tokio::test(start_paused = true)]
    async fn m2_a_global_429_pauses_every_request_for_retry_after() {
        let pacer = Pacer::default();
        let start = Instant::now();
        let global =
            RateLimit { retry_after: Some(Duration::from_secs(20)), global: true, ..RateLimit::default() };
        pacer.observe(1, "member-role", &global).await;
        pacer.wait(99, "member").await;
        assert_eq!(Instant::now() - start, Duration::from_secs(20));
    }
}
