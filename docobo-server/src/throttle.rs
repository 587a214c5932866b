//! [`AuthThrottle`]: failed webhook authentications, counted per guild and provider.

use docobo_core::domain::{GuildId, ProviderName};

/// Failed authentications per guild and provider (review finding M7). After
/// [`AuthThrottle::LIMIT`] failures within [`AuthThrottle::WINDOW`], that guild's endpoint for that
/// provider answers 429 to everyone for [`AuthThrottle::LOCKOUT`], so a key cannot be guessed
/// faster than 20 tries a minute from any number of addresses. Providers retry a 429, so a
/// lockout delays a guild's real deliveries by a minute at most; it never loses them.
#[derive(Debug, Default)]
pub struct AuthThrottle(std::sync::Mutex<std::collections::HashMap<(GuildId, ProviderName), Window>>);

#[derive(Debug, Clone, Copy)]
struct Window {
    started: std::time::Instant,
    failures: u32,
    locked_until: Option<std::time::Instant>,
}

impl AuthThrottle {
    pub const LIMIT: u32 = 20;
    pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
    pub const LOCKOUT: std::time::Duration = std::time::Duration::from_secs(60);
    /// Most (guild, provider) pairs remembered; expired ones are forgotten past this.
    const MAX_KEYS: usize = 10_000;

    fn windows(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(GuildId, ProviderName), Window>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long the endpoint stays locked, if it is.
    pub(crate) fn locked(&self, key: (GuildId, ProviderName)) -> Option<std::time::Duration> {
        let now = std::time::Instant::now();
        self.windows()
            .get(&key)
            .and_then(|w| w.locked_until)
            .and_then(|until| until.checked_duration_since(now))
    }

    /// Counts a failure; `true` when it locks the endpoint.
    pub(crate) fn failed(&self, key: (GuildId, ProviderName)) -> bool {
        let now = std::time::Instant::now();
        let mut windows = self.windows();
        if windows.len() >= Self::MAX_KEYS {
            windows.retain(|_, w| {
                now.duration_since(w.started) < Self::WINDOW || w.locked_until.is_some_and(|u| u > now)
            });
        }
        let w = windows.entry(key).or_insert(Window { started: now, failures: 0, locked_until: None });
        if now.duration_since(w.started) >= Self::WINDOW {
            *w = Window { started: now, failures: 0, locked_until: None };
        }
        w.failures += 1;
        let locks = w.failures >= Self::LIMIT;
        if locks {
            *w = Window { started: now, failures: 0, locked_until: Some(now + Self::LOCKOUT) };
        }
        locks
    }
}
