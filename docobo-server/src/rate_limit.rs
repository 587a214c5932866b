//! [`PerIp`]: the per-address rate limit (`DOCOBO_RATE_LIMIT`), checked before any work.

use docobo_core::ports::{Clock, SystemClock};

/// A per-IP rate limit (GCRA, bursts of twice the rate), with when it last purged (unix seconds).
pub struct PerIp(governor::DefaultKeyedRateLimiter<std::net::IpAddr>, std::sync::atomic::AtomicI64);

/// The key an address is limited under: itself for IPv4, its /64 for IPv6.
fn per_subscriber(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let [a, b, c, d, ..] = v6.segments();
            std::net::IpAddr::V6(std::net::Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        other => other,
    }
}

impl std::fmt::Debug for PerIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerIp").field("addresses", &self.0.len()).finish()
    }
}

impl PerIp {
    pub fn new(per_second: std::num::NonZeroU32) -> Self {
        let burst = per_second.saturating_mul(std::num::NonZeroU32::MIN.saturating_add(1));
        let limiter =
            governor::RateLimiter::keyed(governor::Quota::per_second(per_second).allow_burst(burst));
        PerIp(limiter, std::sync::atomic::AtomicI64::new(0))
    }

    /// Whether `ip` may make one more request now. IPv6 addresses count by their /64 (one
    /// subscriber's allocation), so rotating through a prefix gains nothing.
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        if self.0.len() > 10_000 {
            // Forget addresses whose allowance is full again, so memory stays bounded. At most
            // once per second, so that an attacker rotating addresses cannot make every request
            // pay for a scan of the whole table.
            let now = SystemClock.now().unix_timestamp();
            if self.1.swap(now, std::sync::atomic::Ordering::Relaxed) != now {
                self.0.retain_recent();
            }
        }
        self.0.check_key(&per_subscriber(ip)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l4_an_ipv6_prefix_shares_one_allowance() {
        let limit = PerIp::new(std::num::NonZeroU32::MIN);
        let a: std::net::IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: std::net::IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let other: std::net::IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        // A burst of two, then the same /64 is limited whichever address it uses.
        assert!(limit.allows(a) && limit.allows(b));
        assert!(!limit.allows(b) && !limit.allows(a));
        assert!(limit.allows(other), "another /64 has its own allowance");
    }
}
