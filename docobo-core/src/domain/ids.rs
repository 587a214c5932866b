//! Identifiers: Discord snowflakes and the opaque references providers hand us.
//!
//! Raw strings become these types at the edge, so the core never handles a bare `String` or `u64`
//! whose meaning is a guess. Snowflakes serialize as strings, as Discord sends them, because
//! JavaScript clients lose precision on integers above 2^53.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must be a Discord snowflake (a positive integer), got {input:?}")]
    NotSnowflake { kind: &'static str, input: String },
    #[error("{kind} must be 1 to {max} printable characters without spaces, got {input:?}")]
    BadReference { kind: &'static str, max: usize, input: String },
}

macro_rules! snowflake {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u64);

        impl $name {
            /// Wraps a snowflake; zero is not a snowflake Discord issues.
            pub fn new(raw: u64) -> Result<Self, IdError> {
                if raw == 0 {
                    return Err(IdError::NotSnowflake { kind: $kind, input: raw.to_string() });
                }
                Ok(Self(raw))
            }

            pub fn get(self) -> u64 {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, IdError> {
                let bad = || IdError::NotSnowflake { kind: $kind, input: s.to_owned() };
                // `u64::from_str` accepts a leading '+', which no Discord id has.
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                s.parse::<u64>().map_err(|_| bad()).and_then(|raw| Self::new(raw).map_err(|_| bad()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

snowflake!(
    /// A Discord server ("guild").
    GuildId,
    "guild id"
);
snowflake!(
    /// A Discord user.
    UserId,
    "user id"
);
snowflake!(
    /// A Discord role.
    RoleId,
    "role id"
);
snowflake!(
    /// A Discord channel (a relay's source or target).
    ChannelId,
    "channel id"
);
snowflake!(
    /// A Discord message. Snowflakes grow with time, so message ids order messages as they
    /// were posted.
    MessageId,
    "message id"
);

macro_rules! reference {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Longest accepted value; longer input is refused, not truncated.
            pub const MAX_LEN: usize = $max;

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, IdError> {
                let ok = !s.is_empty()
                    && s.len() <= $max
                    && s.chars().all(|c| c.is_ascii_graphic());
                if ok {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError::BadReference { kind: $kind, max: $max, input: s.chars().take(80).collect() })
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

reference!(
    /// A provider's id for one delivery (Polar's `webhook-id`, SePay's transaction `id`). Unique per
    /// provider and guild; the deduplication key.
    EventId,
    "event id",
    200
);
reference!(
    /// A provider's id for the thing that grants access: a Polar subscription or order id, a SePay
    /// checkout code. Unique per provider and guild.
    ExternalRef,
    "external reference",
    200
);
reference!(
    /// The reference of a checkout started by `/join` (SePay's transfer code, Polar's metadata).
    CheckoutRef,
    "checkout reference",
    64
);

/// A store-assigned entitlement id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntitlementId(pub i64);

/// A store-assigned role-job id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

impl fmt::Display for EntitlementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A store-assigned id of a stored webhook delivery: what `docobo events replay <ID>` and the
/// admin API's `/events/{id}/replay` take. Not the provider's own id ([`EventId`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveryId(pub i64);

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for DeliveryId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(DeliveryId)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflakes_parse_only_positive_decimal_integers() {
        assert_eq!("123456789012345678".parse::<UserId>().map(UserId::get), Ok(123456789012345678));
        for bad in ["", "0", "+1", "-1", " 1", "1e3", "0x10", "18446744073709551616", "１２"] {
            assert!(bad.parse::<GuildId>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn snowflakes_serialize_as_strings_and_refuse_numbers() {
        let role: RoleId = "42".parse().expect("valid");
        assert_eq!(serde_json::to_string(&role).expect("serializes"), "\"42\"");
        assert_eq!(serde_json::from_str::<RoleId>("\"42\"").expect("parses"), role);
        assert!(serde_json::from_str::<RoleId>("42").is_err());
    }

    #[test]
    fn references_refuse_blank_spaced_or_oversized_input() {
        assert!("sub_123".parse::<ExternalRef>().is_ok());
        assert!("".parse::<ExternalRef>().is_err());
        assert!("a b".parse::<EventId>().is_err());
        assert!("x".repeat(65).parse::<CheckoutRef>().is_err());
        let err = "x".repeat(500).parse::<EventId>().expect_err("too long");
        assert!(err.to_string().contains("1 to 200"), "{err}");
    }
}
