//! [`ProviderName`]: which payment provider took the money, as stored rows, webhook URLs and the
//! provider registry spell it.
//!
//! The set is open: Docobo ships `polar`, `sepay` and `manual`, and an embedder registers its own
//! providers under names of its choosing. A name is a few bytes kept inline, so it is `Copy` and
//! costs nothing to pass around or compare.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::catalog::CatalogError;

/// A payment provider's name: 1 to [`ProviderName::MAX_LEN`] bytes of `a-z`, `0-9`, `-` and
/// `_`, starting with a letter (so it is safe in a URL path, a metric label and a log line).
///
/// Fields are ordered so that the derived `Ord` is the alphabetical order of the names (the
/// unused tail is zeros, which sort before any letter).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderName {
    bytes: [u8; ProviderName::MAX_LEN],
    len: u8,
}

impl ProviderName {
    /// Longest name accepted.
    pub const MAX_LEN: usize = 24;
    /// Polar: cards and subscriptions.
    pub const POLAR: ProviderName = ProviderName::known("polar");
    /// SePay: Vietnamese bank transfers.
    pub const SEPAY: ProviderName = ProviderName::known("sepay");
    /// Access decided by hand (`docobo grant`), not a payment.
    pub const MANUAL: ProviderName = ProviderName::known("manual");

    /// A name fixed at compile time. Panics (at compile time, in a `const`) when it is invalid.
    pub const fn known(name: &'static str) -> Self {
        match Self::parse(name.as_bytes()) {
            Some(parsed) => parsed,
            None => panic!("invalid provider name"),
        }
    }

    /// A name given at run time: a stored row, a URL segment, a command-line argument.
    pub fn new(name: &str) -> Result<Self, CatalogError> {
        Self::parse(name.as_bytes())
            .ok_or_else(|| CatalogError::BadProviderName(name.chars().take(32).collect()))
    }

    const fn parse(name: &[u8]) -> Option<Self> {
        if name.is_empty() || name.len() > Self::MAX_LEN || !name[0].is_ascii_lowercase() {
            return None;
        }
        let mut bytes = [0u8; Self::MAX_LEN];
        let mut i = 0;
        while i < name.len() {
            let b = name[i];
            if !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_') {
                return None;
            }
            bytes[i] = b;
            i += 1;
        }
        Some(ProviderName { bytes, len: name.len() as u8 })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored, so this never falls back.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// The name people know it by, for messages: `Polar`, `SePay`, `manual`, or the name itself
    /// for a provider Docobo does not ship.
    pub fn title(&self) -> &str {
        match *self {
            ProviderName::POLAR => "Polar",
            ProviderName::SEPAY => "SePay",
            _ => self.as_str(),
        }
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProviderName({:?})", self.as_str())
    }
}

impl FromStr for ProviderName {
    type Err = CatalogError;

    fn from_str(s: &str) -> Result<Self, CatalogError> {
        ProviderName::new(s)
    }
}

impl TryFrom<String> for ProviderName {
    type Error = CatalogError;

    fn try_from(s: String) -> Result<Self, CatalogError> {
        ProviderName::new(&s)
    }
}

impl From<ProviderName> for String {
    fn from(name: ProviderName) -> String {
        name.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_alphabetically() {
        for name in ["polar", "sepay", "manual", "sellapp", "my-shop_2", "a"] {
            let parsed: ProviderName = name.parse().expect(name);
            assert_eq!(parsed.as_str(), name);
            assert_eq!(parsed.to_string().parse(), Ok(parsed));
            let json = serde_json::to_string(&parsed).expect("json");
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<ProviderName>(&json).expect("back"), parsed);
        }
        assert_eq!("polar".parse(), Ok(ProviderName::POLAR));
        let mut names: Vec<ProviderName> =
            ["sepay", "polar", "pol", "manual"].iter().map(|n| n.parse().expect("name")).collect();
        names.sort();
        assert_eq!(
            names.iter().map(ProviderName::as_str).collect::<Vec<_>>(),
            ["manual", "pol", "polar", "sepay"]
        );
    }

    #[test]
    fn names_that_are_not_safe_everywhere_are_refused() {
        let long = "a".repeat(ProviderName::MAX_LEN + 1);
        for bad in ["", "Polar", "1shop", "-x", "po lar", "polar/x", "pölar", "sepay\n", long.as_str()] {
            assert!(bad.parse::<ProviderName>().is_err(), "{bad:?} must be refused");
        }
        assert!(serde_json::from_str::<ProviderName>("\"Stripe!\"").is_err());
        assert!("a".repeat(ProviderName::MAX_LEN).parse::<ProviderName>().is_ok());
    }
}
