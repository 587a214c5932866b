//! Member notices: the direct messages that tell a member their access ends soon, a renewal
//! failed, access ended, or welcome them. A guild's [`NoticeSettings`] say which are sent; a
//! [`PlannedNotice`] is one of them, recorded under its [`PlannedNotice::key`] before it is sent,
//! so it is sent once.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::Duration;

use super::Timestamp;
use super::ids::{ExternalRef, GuildId, RoleId, UserId};
use super::provider::ProviderName;

/// A store-assigned notice id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NoticeId(pub i64);

impl fmt::Display for NoticeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a notice tells the member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// Access ends by the clock (a fixed term, a cancellation, a grace period) within a lead time.
    EndingSoon,
    /// A renewal failed; access lasts until the grace deadline.
    PaymentFailed,
    /// Access ended by the clock.
    Ended,
    /// The first payment of a purchase went through.
    Welcome,
}

names!(NoticeKind {
    EndingSoon => "ending_soon",
    PaymentFailed => "payment_failed",
    Ended => "ended",
    Welcome => "welcome",
});

/// Where a notice is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeState {
    /// Waiting for `send_at`, or claimed by a sender until `locked_until`.
    Pending,
    Sent,
    /// Not sent, deliberately (outdated, turned off); the note says why.
    Skipped,
    /// Not sent and never will be (DMs closed, attempts used up); the note says why.
    Failed,
}

names!(NoticeState { Pending => "pending", Sent => "sent", Skipped => "skipped", Failed => "failed" });

/// The language of a guild's notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    #[default]
    En,
    Vi,
}

names!(Locale { En => "en", Vi => "vi" });

impl Locale {
    /// The locale for a guild whose Discord `preferred_locale` is `preferred` (`vi`, `en-US`, …):
    /// Vietnamese for `vi`, English otherwise.
    pub fn from_discord(preferred: &str) -> Self {
        if preferred.eq_ignore_ascii_case("vi") || preferred.to_ascii_lowercase().starts_with("vi-") {
            Locale::Vi
        } else {
            Locale::En
        }
    }
}

/// The lead times of *ending soon* reminders, longest first: `3d,1d` by default, `none` for no
/// reminders.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reminders(Vec<Duration>);

impl Reminders {
    /// Most lead times a guild may set.
    pub const MAX: usize = 4;
    /// Longest lead time: a reminder further ahead is noise.
    pub const LONGEST: Duration = Duration::days(30);
    /// Shortest lead time.
    pub const SHORTEST: Duration = Duration::hours(1);

    /// The lead times, longest first.
    pub fn leads(&self) -> &[Duration] {
        &self.0
    }

    /// The longest lead time, or zero without reminders.
    pub fn longest(&self) -> Duration {
        self.0.first().copied().unwrap_or(Duration::ZERO)
    }
}

impl Default for Reminders {
    fn default() -> Self {
        Reminders(vec![Duration::days(3), Duration::days(1)])
    }
}

/// Why a notice setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeSettingError {
    #[error(
        "reminder lead {0:?} is not a number of days or hours between 1h and 30d (e.g. 3d, 12h); \
         separate several with commas, or write none"
    )]
    BadLead(String),
    #[error("at most {} reminder lead times", Reminders::MAX)]
    TooMany,
}

impl FromStr for Reminders {
    type Err = NoticeSettingError;

    /// `3d,1d`, `12h`, or `none` (or nothing) for no reminders. Repeats are merged.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("none") {
            return Ok(Reminders(Vec::new()));
        }
        let mut leads = Vec::new();
        for part in s.split(',').map(str::trim) {
            let bad = || NoticeSettingError::BadLead(part.chars().take(16).collect());
            let (number, unit) = part.split_at(part.len().saturating_sub(1));
            let n: i64 =
                number.parse().ok().filter(|_| number.bytes().all(|b| b.is_ascii_digit())).ok_or_else(bad)?;
            let lead = match unit {
                "d" => Duration::days(n),
                "h" => Duration::hours(n),
                _ => return Err(bad()),
            };
            if !(Self::SHORTEST..=Self::LONGEST).contains(&lead) {
                return Err(bad());
            }
            leads.push(lead);
        }
        leads.sort_unstable_by(|a, b| b.cmp(a));
        leads.dedup();
        if leads.len() > Self::MAX {
            return Err(NoticeSettingError::TooMany);
        }
        Ok(Reminders(leads))
    }
}

impl fmt::Display for Reminders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, lead) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write_lead(f, *lead)?;
        }
        Ok(())
    }
}

fn write_lead(f: &mut fmt::Formatter<'_>, lead: Duration) -> fmt::Result {
    if lead.whole_hours() % 24 == 0 {
        write!(f, "{}d", lead.whole_days())
    } else {
        write!(f, "{}h", lead.whole_hours())
    }
}

impl Serialize for Reminders {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reminders {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A guild's notice policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NoticeSettings {
    /// Whether the guild's members get notices at all.
    pub enabled: bool,
    /// Whether a first payment gets a welcome (off by default).
    pub welcome: bool,
    pub remind: Reminders,
    pub locale: Locale,
}

impl Default for NoticeSettings {
    fn default() -> Self {
        NoticeSettings { enabled: true, welcome: false, remind: Reminders::default(), locale: Locale::En }
    }
}

impl NoticeSettings {
    /// Whether a notice of `kind` is sent under these settings.
    pub fn sends(&self, kind: NoticeKind) -> bool {
        self.enabled && (kind != NoticeKind::Welcome || self.welcome)
    }
}

/// One notice to send, about one purchase (named by its `(provider, guild, external_ref)`, which
/// exists before the purchase has a store id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedNotice {
    pub guild: GuildId,
    pub user: UserId,
    pub role: RoleId,
    pub provider: ProviderName,
    pub external_ref: ExternalRef,
    pub kind: NoticeKind,
    /// For *ending soon*: how long before the end.
    pub lead: Option<Duration>,
    /// The moment the notice speaks of: when access ends (*ending soon*, *ended*) or the grace
    /// deadline (*payment failed*). A renewal that moves it makes a new notice.
    #[serde(with = "time::serde::rfc3339::option")]
    pub about: Option<Timestamp>,
    #[serde(with = "time::serde::rfc3339")]
    pub send_at: Timestamp,
}

impl PlannedNotice {
    /// What makes a notice the same notice: purchase, kind, lead time and the moment it is
    /// about. The store keeps one per key.
    pub fn key(&self) -> String {
        let lead = self.lead.map_or(0, |l| l.whole_seconds());
        let about = self.about.map_or(0, |a| a.unix_timestamp());
        format!("{}:{}:{}:{}:{lead}:{about}", self.provider, self.guild, self.external_ref, self.kind)
    }
}

/// A recorded notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub id: NoticeId,
    pub planned: PlannedNotice,
    pub state: NoticeState,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Why it was skipped or failed, or the last retryable error.
    pub note: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub locked_until: Option<Timestamp>,
    /// When it was sent, skipped or given up on.
    #[serde(with = "time::serde::rfc3339::option")]
    pub settled_at: Option<Timestamp>,
}

/// A member's notice preferences in one guild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemberNotices {
    /// Since when the member has turned the guild's notices off (`/notify off`).
    #[serde(with = "time::serde::rfc3339::option")]
    pub muted_at: Option<Timestamp>,
    /// Since when Discord refuses DMs to the member (50007: DMs closed, bot blocked, no shared
    /// server). Cleared by `/notify on`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub unreachable_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminders_parse_sort_merge_and_print_back() {
        let r: Reminders = "1d, 3d,12h,1d".parse().expect("valid");
        assert_eq!(r.leads(), [Duration::days(3), Duration::days(1), Duration::hours(12)]);
        assert_eq!(r.to_string(), "3d,1d,12h");
        assert!("none".parse::<Reminders>().expect("valid").leads().is_empty());
        assert_eq!(Reminders::default().to_string(), "3d,1d");
        for bad in ["3", "d", "-1d", "31d", "0h", "3w", "1d,,2d", "+3d"] {
            assert!(bad.parse::<Reminders>().is_err(), "{bad:?} accepted");
        }
        assert_eq!("1d,2d,3d,4d,5d".parse::<Reminders>(), Err(NoticeSettingError::TooMany));
    }

    #[test]
    fn vietnamese_guilds_get_vietnamese() {
        assert_eq!(Locale::from_discord("vi"), Locale::Vi);
        assert_eq!(Locale::from_discord("en-US"), Locale::En);
        assert_eq!(Locale::from_discord("vie"), Locale::En);
    }

    #[test]
    fn settings_without_notices_or_welcome_send_nothing_of_that_kind() {
        let mut s = NoticeSettings::default();
        assert!(s.sends(NoticeKind::EndingSoon) && !s.sends(NoticeKind::Welcome));
        s.welcome = true;
        assert!(s.sends(NoticeKind::Welcome));
        s.enabled = false;
        assert!(NoticeKind::ALL.iter().all(|k| !s.sends(*k)));
    }
}
