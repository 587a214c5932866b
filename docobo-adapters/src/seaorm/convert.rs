//! Translations between rows and domain types, and from SeaORM's errors to the core's.

use docobo_core::domain::{GuildId, RoleId, Timestamp, UserId};
use docobo_core::ports::StoreError;

use sea_orm::{DbErr, SqlErr};
use time::OffsetDateTime;

/// A timestamp as stored: microseconds since the Unix epoch.
pub fn micros(at: Timestamp) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

pub fn from_micros(micros: i64) -> Result<Timestamp, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {micros}: {e}")))
}

pub fn opt_from_micros(micros: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    micros.map(from_micros).transpose()
}

/// A snowflake as stored. Discord's are below 2^63 (41 bits of milliseconds since 2015).
pub fn sf(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

fn snowflake<T>(raw: i64, make: fn(u64) -> Result<T, docobo_core::domain::IdError>) -> Result<T, StoreError> {
    u64::try_from(raw)
        .ok()
        .and_then(|v| make(v).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("stored id {raw} is not a snowflake")))
}

pub fn guild_id(raw: i64) -> Result<GuildId, StoreError> {
    snowflake(raw, GuildId::new)
}

pub fn user_id(raw: i64) -> Result<UserId, StoreError> {
    snowflake(raw, UserId::new)
}

pub fn role_id(raw: i64) -> Result<RoleId, StoreError> {
    snowflake(raw, RoleId::new)
}

/// Parses a stored text column with the domain's own parser.
pub fn parse<T: std::str::FromStr>(column: &str, raw: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    raw.parse().map_err(|e| StoreError::Corrupt(format!("{column} {raw:?}: {e}")))
}

/// `text` as a text column can hold it everywhere: PostgreSQL refuses NUL in `text`, and a
/// reason quoting a provider's payload could carry one, turning a storable delivery into a 503
/// its provider would retry forever (review finding L2).
pub fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// A uniqueness violation is a conflict with a concurrent writer; everything else means the
/// database is unavailable or refused, which callers may retry.
/// Any other failure makes the pool check its older connections before reusing them
/// ([`super::pool`]).
pub fn store_err(e: DbErr) -> StoreError {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::Conflict,
        _ => {
            super::pool::note_failure();
            StoreError::Unavailable(e.to_string())
        }
    }
}
