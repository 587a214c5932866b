//! Money in integer minor units, never floats.
//!
//! A price such as `5.00 USD` is stored as `Money { minor: 500, currency: Usd }`; `50000 VND` as
//! `Money { minor: 50000, currency: Vnd }` because the đồng has no minor unit. The parser is
//! deliberately strict: what an owner types in `/setup` or on the command line either means exactly
//! one amount or is refused with a reason.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The ISO 4217 currencies Docobo prices in, with their number of decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Currency {
    Usd,
    Eur,
    Gbp,
    Cad,
    Aud,
    Sgd,
    Chf,
    Jpy,
    Krw,
    Vnd,
}

impl Currency {
    pub const ALL: [Currency; 10] = [
        Currency::Usd,
        Currency::Eur,
        Currency::Gbp,
        Currency::Cad,
        Currency::Aud,
        Currency::Sgd,
        Currency::Chf,
        Currency::Jpy,
        Currency::Krw,
        Currency::Vnd,
    ];

    /// Number of digits after the decimal point (ISO 4217 "minor unit").
    pub fn decimals(self) -> u32 {
        match self {
            Currency::Jpy | Currency::Krw | Currency::Vnd => 0,
            _ => 2,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
            Currency::Gbp => "GBP",
            Currency::Cad => "CAD",
            Currency::Aud => "AUD",
            Currency::Sgd => "SGD",
            Currency::Chf => "CHF",
            Currency::Jpy => "JPY",
            Currency::Krw => "KRW",
            Currency::Vnd => "VND",
        }
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    /// Case-insensitive ISO code (`usd`, `USD`); Polar sends lower case.
    fn from_str(s: &str) -> Result<Self, MoneyError> {
        Currency::ALL
            .into_iter()
            .find(|c| c.code().eq_ignore_ascii_case(s))
            .ok_or_else(|| MoneyError::UnknownCurrency(s.chars().take(16).collect()))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency {0:?}; use one of USD, EUR, GBP, CAD, AUD, SGD, CHF, JPY, KRW, VND")]
    UnknownCurrency(String),
    #[error("amount is empty")]
    Empty,
    #[error("amount {0:?} is negative; prices and payments are never below zero")]
    Negative(String),
    #[error("amount {input:?} is not a plain decimal number like 5 or 5.00")]
    NotDecimal { input: String },
    #[error("amount {input:?} has more than {decimals} decimal places, which {currency} does not have")]
    TooPrecise { input: String, currency: Currency, decimals: u32 },
    #[error("amount {input:?} is above the largest accepted amount ({max})")]
    TooLarge { input: String, max: Money },
}

/// An amount in the currency's minor units (cents for USD, đồng for VND).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    /// 10^12 minor units: ten billion dollars, or about forty million dollars' worth of đồng. Far
    /// above any Discord role price, far below overflow; larger input is a typo or an attack.
    pub const MAX_MINOR: i64 = 1_000_000_000_000;

    /// Builds an amount from minor units, refusing negatives and absurd values.
    pub fn from_minor(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if minor < 0 {
            return Err(MoneyError::Negative(minor.to_string()));
        }
        let money = Money { minor, currency };
        if minor > Self::MAX_MINOR {
            return Err(MoneyError::TooLarge {
                input: money.to_string(),
                max: Money { minor: Self::MAX_MINOR, currency },
            });
        }
        Ok(money)
    }

    /// Parses an amount typed by a person in major units: `5`, `5.0`, `5.00` for USD; `50000` for
    /// VND. Refuses signs, exponents, `NaN`/`inf`, thousands separators, spaces, more decimals than
    /// the currency has, and amounts above [`Money::MAX_MINOR`].
    pub fn parse(input: &str, currency: Currency) -> Result<Self, MoneyError> {
        if input.is_empty() {
            return Err(MoneyError::Empty);
        }
        if input.starts_with('-') {
            return Err(MoneyError::Negative(input.to_owned()));
        }
        let not_decimal = || MoneyError::NotDecimal { input: input.chars().take(40).collect() };
        let (whole, frac) = match input.split_once('.') {
            Some((w, f)) if !f.is_empty() => (w, f),
            Some(_) => return Err(not_decimal()),
            None => (input, ""),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (!frac.is_empty() && !digits(frac)) {
            return Err(not_decimal());
        }
        let decimals = currency.decimals();
        let frac = frac.trim_end_matches('0');
        if frac.len() > decimals as usize {
            return Err(MoneyError::TooPrecise { input: input.to_owned(), currency, decimals });
        }
        let too_large = || MoneyError::TooLarge {
            input: input.chars().take(40).collect(),
            max: Money { minor: Self::MAX_MINOR, currency },
        };
        let scale = 10_i64.pow(decimals);
        let whole: i64 = whole
            .trim_start_matches('0')
            .parse()
            .or_else(|_| if whole.bytes().all(|b| b == b'0') { Ok(0) } else { Err(too_large()) })?;
        let frac_minor = if frac.is_empty() {
            0
        } else {
            let padded = format!("{frac:0<width$}", width = decimals as usize);
            padded.parse::<i64>().map_err(|_| not_decimal())?
        };
        let minor = whole
            .checked_mul(scale)
            .and_then(|m| m.checked_add(frac_minor))
            .filter(|m| *m <= Self::MAX_MINOR)
            .ok_or_else(too_large)?;
        Ok(Money { minor, currency })
    }

    /// `true` when both amounts are in the same currency and `self` covers `expected`.
    pub fn covers(&self, expected: &Money) -> bool {
        self.currency == expected.currency && self.minor >= expected.minor
    }
}

impl Money {
    /// The amount without the currency, as [`Money::parse`] reads it: `5.00`, `50000`.
    pub fn amount(&self) -> String {
        let decimals = self.currency.decimals();
        if decimals == 0 {
            return self.minor.to_string();
        }
        let scale = 10_u64.pow(decimals);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = decimals as usize)
    }
}

impl fmt::Display for Money {
    /// `5.00 USD`, `50000 VND`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(s: &str) -> Result<Money, MoneyError> {
        Money::parse(s, Currency::Usd)
    }

    #[test]
    fn plain_amounts_become_minor_units() {
        assert_eq!(usd("5").map(|m| m.minor), Ok(500));
        assert_eq!(usd("5.5").map(|m| m.minor), Ok(550));
        assert_eq!(usd("5.00").map(|m| m.minor), Ok(500));
        assert_eq!(usd("0.01").map(|m| m.minor), Ok(1));
        assert_eq!(usd("007.10").map(|m| m.minor), Ok(710));
        assert_eq!(Money::parse("50000", Currency::Vnd).map(|m| m.minor), Ok(50_000));
        assert_eq!(Money::parse("50000.000", Currency::Vnd).map(|m| m.minor), Ok(50_000));
    }

    #[test]
    fn nonsense_is_refused_with_a_reason() {
        assert_eq!(usd(""), Err(MoneyError::Empty));
        assert!(matches!(usd("-1"), Err(MoneyError::Negative(_))));
        for s in ["NaN", "inf", "1e3", "+5", " 5", "5 ", "1,000", "5.", ".5", "5..0", "0x10", "５"] {
            assert!(matches!(usd(s), Err(MoneyError::NotDecimal { .. })), "{s:?} -> {:?}", usd(s));
        }
        assert!(matches!(usd("5.001"), Err(MoneyError::TooPrecise { decimals: 2, .. })));
        assert!(matches!(Money::parse("5.5", Currency::Vnd), Err(MoneyError::TooPrecise { .. })));
        assert!(matches!(usd("99999999999999999999999"), Err(MoneyError::TooLarge { .. })));
        assert!(matches!(usd("10000000001"), Err(MoneyError::TooLarge { .. })));
        let msg = usd("5.001").expect_err("too precise").to_string();
        assert!(msg.contains("2 decimal places") && msg.contains("USD"), "{msg}");
    }

    #[test]
    fn currencies_parse_case_insensitively_and_unknown_ones_are_named() {
        assert_eq!("usd".parse::<Currency>(), Ok(Currency::Usd));
        assert_eq!("VND".parse::<Currency>(), Ok(Currency::Vnd));
        let err = "XYZ".parse::<Currency>().expect_err("unknown").to_string();
        assert!(err.contains("XYZ") && err.contains("USD"), "{err}");
    }

    #[test]
    fn display_uses_the_currency_decimals() {
        assert_eq!(Money { minor: 500, currency: Currency::Usd }.to_string(), "5.00 USD");
        assert_eq!(Money { minor: 7, currency: Currency::Eur }.to_string(), "0.07 EUR");
        assert_eq!(Money { minor: 50_000, currency: Currency::Vnd }.to_string(), "50000 VND");
    }

    #[test]
    fn covers_requires_the_same_currency() {
        let five = Money { minor: 500, currency: Currency::Usd };
        assert!(five.covers(&Money { minor: 500, currency: Currency::Usd }));
        assert!(!five.covers(&Money { minor: 501, currency: Currency::Usd }));
        assert!(!five.covers(&Money { minor: 1, currency: Currency::Eur }));
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(
            minor in 0..=Money::MAX_MINOR,
            currency in proptest::sample::select(Currency::ALL.to_vec()),
        ) {
            let money = Money::from_minor(minor, currency).expect("in range");
            let text = money.to_string();
            let (amount, code) = text.split_once(' ').expect("amount and code");
            let back = Money::parse(amount, code.parse().expect("code"));
            prop_assert_eq!(back, Ok(money));
        }

        #[test]
        fn arbitrary_text_never_panics_and_accepted_amounts_are_in_range(s in "\\PC{0,30}") {
            if let Ok(m) = Money::parse(&s, Currency::Usd) {
                prop_assert!((0..=Money::MAX_MINOR).contains(&m.minor));
            }
        }
    }
}
