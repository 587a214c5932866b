//! What a guild sells: its settings, its paid roles and how long each purchase lasts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::Duration;

use super::ids::{GuildId, RoleId};
use super::money::{Money, MoneyError};

/// Who took the money (or, for `Manual`, who decided access by hand).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Polar,
    Sepay,
    Manual,
    /// A [`PaymentProvider`](crate::ports::PaymentProvider) that an embedding application
    /// implements itself (`examples/custom_provider.rs`). Docobo's own server never offers it.
    Custom,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 4] =
        [ProviderKind::Polar, ProviderKind::Sepay, ProviderKind::Manual, ProviderKind::Custom];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Polar => "polar",
            ProviderKind::Sepay => "sepay",
            ProviderKind::Manual => "manual",
            ProviderKind::Custom => "custom",
        }
    }

    /// The name people know it by, for messages: `Polar`, `SePay`, `manual`.
    pub fn title(self) -> &'static str {
        match self {
            ProviderKind::Polar => "Polar",
            ProviderKind::Sepay => "SePay",
            ProviderKind::Manual => "manual",
            ProviderKind::Custom => "custom provider",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderKind {
    type Err = CatalogError;

    fn from_str(s: &str) -> Result<Self, CatalogError> {
        ProviderKind::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| CatalogError::UnknownProvider(s.chars().take(32).collect()))
    }
}

/// How long one purchase grants access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Term {
    /// The provider renews and tells us the period (Polar subscriptions).
    Recurring,
    /// Each successful payment extends access by `days` (SePay transfers).
    Fixed { days: u16 },
    /// Paid once, kept until revoked or refunded.
    Lifetime,
}

impl Term {
    /// Longest fixed term accepted: ten years.
    pub const MAX_FIXED_DAYS: u16 = 3650;

    pub fn fixed(days: u16) -> Result<Self, CatalogError> {
        if (1..=Self::MAX_FIXED_DAYS).contains(&days) {
            Ok(Term::Fixed { days })
        } else {
            Err(CatalogError::BadTerm(format!("{days}d")))
        }
    }

    /// Whether one payment that never renews (a bank transfer, a one-time order) can pay for
    /// this term. A recurring term needs a subscription: one transfer would otherwise grant
    /// access with no end, since no provider ever says such a payment ran out.
    pub fn one_payment_suffices(self) -> bool {
        !matches!(self, Term::Recurring)
    }

    /// The extension one payment buys, for fixed terms.
    pub fn extension(self) -> Option<Duration> {
        match self {
            Term::Fixed { days } => Some(Duration::days(i64::from(days))),
            _ => None,
        }
    }
}

impl FromStr for Term {
    type Err = CatalogError;

    /// `recurring`, `lifetime`, or a number of days such as `30d`.
    fn from_str(s: &str) -> Result<Self, CatalogError> {
        let bad = || CatalogError::BadTerm(s.chars().take(32).collect());
        match s {
            "recurring" => Ok(Term::Recurring),
            "lifetime" => Ok(Term::Lifetime),
            _ => {
                let days =
                    s.strip_suffix('d').filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
                let days = days.and_then(|d| d.parse::<u16>().ok()).ok_or_else(bad)?;
                Term::fixed(days).map_err(|_| bad())
            }
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Recurring => f.write_str("recurring"),
            Term::Lifetime => f.write_str("lifetime"),
            Term::Fixed { days } => write!(f, "{days}d"),
        }
    }
}

/// Why a catalog value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("unknown provider {0:?}; use polar, sepay or manual")]
    UnknownProvider(String),
    #[error("term {0:?} is not recurring, lifetime or a number of days from 1d to 3650d")]
    BadTerm(String),
    #[error("price must be above zero")]
    FreeRole,
    #[error("display name must be 1 to 100 characters")]
    BadName,
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// A server that sells roles, with its access policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guild {
    pub id: GuildId,
    pub name: String,
    /// How long a member keeps a role after a renewal fails (`PastDue`). Default 3 days.
    pub grace: Duration,
}

impl Guild {
    pub const DEFAULT_GRACE: Duration = Duration::days(3);

    pub fn new(id: GuildId, name: impl Into<String>) -> Self {
        Guild { id, name: name.into(), grace: Self::DEFAULT_GRACE }
    }
}

/// A Discord role that is for sale in one guild.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidRole {
    pub guild: GuildId,
    pub role: RoleId,
    /// What members see in `/join` and `/status`.
    pub name: String,
    pub price: Money,
    pub term: Term,
    /// The Polar product whose orders and subscriptions grant this role.
    pub polar_product: Option<String>,
    /// Whether `/join` offers a SePay bank transfer for this role.
    pub sepay: bool,
}

impl PaidRole {
    /// A role sold for `price`; free roles and blank names are refused.
    pub fn new(
        guild: GuildId,
        role: RoleId,
        name: impl Into<String>,
        price: Money,
        term: Term,
    ) -> Result<Self, CatalogError> {
        let name = name.into();
        if name.trim().is_empty() || name.chars().count() > 100 {
            return Err(CatalogError::BadName);
        }
        if price.minor == 0 {
            return Err(CatalogError::FreeRole);
        }
        Ok(PaidRole { guild, role, name, price, term, polar_product: None, sepay: false })
    }

    /// Why this role cannot be sold as configured, one reason per problem; empty when it can.
    /// The one place these rules live: the CLI and `/setup` refuse what this names, and `/join`
    /// offers a provider only through [`PaidRole::sold_through`].
    pub fn sale_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.sepay && self.price.currency != super::money::Currency::Vnd {
            problems.push(format!(
                "SePay takes VND prices only (bank transfers are in đồng), not {}",
                self.price.currency
            ));
        }
        if self.sepay && !self.term.one_payment_suffices() {
            problems.push(
                "SePay needs a fixed term or lifetime: a bank transfer never renews, so it cannot pay for a recurring role"
                    .to_owned(),
            );
        }
        if self.polar_product.as_deref().is_some_and(|p| p.trim().is_empty()) {
            problems.push("the Polar product id is empty".to_owned());
        }
        problems
    }

    /// Whether members can pay for this role through `provider`.
    pub fn sold_through(&self, provider: ProviderKind) -> bool {
        let configured = match provider {
            ProviderKind::Polar => self.polar_product.is_some(),
            ProviderKind::Sepay => self.sepay,
            ProviderKind::Manual | ProviderKind::Custom => false,
        };
        configured && self.sale_problems().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Currency;

    #[test]
    fn m3_sepay_sells_only_vnd_roles_that_one_transfer_pays_for() {
        let guild = GuildId::new(1).expect("id");
        let role = RoleId::new(2).expect("id");
        let vnd = Money::parse("100000", Currency::Vnd).expect("price");
        let mut paid = PaidRole::new(guild, role, "VIP", vnd, Term::Recurring).expect("role");
        paid.sepay = true;
        assert!(
            paid.sale_problems().iter().any(|p| p.contains("never renews")),
            "{:?}",
            paid.sale_problems()
        );
        assert!(!paid.sold_through(super::ProviderKind::Sepay));
        paid.term = Term::Fixed { days: 30 };
        assert!(paid.sale_problems().is_empty());
        assert!(paid.sold_through(super::ProviderKind::Sepay));
        paid.price = Money::parse("5.00", Currency::Usd).expect("price");
        assert!(paid.sale_problems().iter().any(|p| p.contains("VND")));
    }

    #[test]
    fn terms_parse_from_what_owners_type() {
        assert_eq!("recurring".parse(), Ok(Term::Recurring));
        assert_eq!("lifetime".parse(), Ok(Term::Lifetime));
        assert_eq!("30d".parse(), Ok(Term::Fixed { days: 30 }));
        for bad in ["0d", "3651d", "d", "30", "-1d", "30 d", "month", "99999999d"] {
            assert!(bad.parse::<Term>().is_err(), "{bad:?} must be refused");
        }
        assert_eq!(Term::Fixed { days: 30 }.to_string().parse(), Ok(Term::Fixed { days: 30 }));
    }

    #[test]
    fn a_paid_role_needs_a_price_and_a_name() {
        let g = GuildId::new(1).expect("id");
        let r = RoleId::new(2).expect("id");
        let free = Money { minor: 0, currency: Currency::Usd };
        let five = Money { minor: 500, currency: Currency::Usd };
        assert_eq!(PaidRole::new(g, r, "VIP", free, Term::Recurring), Err(CatalogError::FreeRole));
        assert_eq!(PaidRole::new(g, r, "  ", five, Term::Recurring), Err(CatalogError::BadName));
        assert!(PaidRole::new(g, r, "VIP", five, Term::Recurring).is_ok());
    }

    #[test]
    fn providers_round_trip_through_their_names() {
        for p in ProviderKind::ALL {
            assert_eq!(p.to_string().parse(), Ok(p));
        }
        assert!("stripe".parse::<ProviderKind>().is_err());
    }
}
