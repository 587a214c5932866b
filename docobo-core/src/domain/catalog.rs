//! What a guild sells: its settings, its paid roles and how long each purchase lasts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::Duration;

use super::ids::{GuildId, RoleId};
use super::money::{Money, MoneyError};
use super::notice::NoticeSettings;
use super::provider::ProviderName;

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
    #[error("provider name {0:?} is not 1 to 24 lower-case letters, digits, '-' or '_'")]
    BadProviderName(String),
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
    /// Which notices its members get, and in which language.
    #[serde(default)]
    pub notices: NoticeSettings,
}

impl Guild {
    pub const DEFAULT_GRACE: Duration = Duration::days(3);

    pub fn new(id: GuildId, name: impl Into<String>) -> Self {
        Guild { id, name: name.into(), grace: Self::DEFAULT_GRACE, notices: NoticeSettings::default() }
    }
}

/// Where members pay for a paid role: a provider, and the provider's product (and variant) whose
/// purchases grant it. A provider that matches payments by the checkout `/join` made rather than
/// by product (SePay's bank transfer) links with no product.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProductLink {
    pub provider: ProviderName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// One variant of the product; `None` links every variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl ProductLink {
    /// A link to `provider` with no product (sold by checkout reference).
    pub fn to(provider: ProviderName) -> Self {
        ProductLink { provider, product: None, variant: None }
    }

    /// A link to `product` at `provider`, every variant.
    pub fn product(provider: ProviderName, product: impl Into<String>) -> Self {
        ProductLink { provider, product: Some(product.into()), variant: None }
    }

    #[must_use]
    pub fn variant(mut self, variant: impl Into<String>) -> Self {
        self.variant = Some(variant.into());
        self
    }

    /// Whether a purchase of `product` (and `variant`, when the provider names one) at
    /// `provider` is a purchase through this link.
    pub fn covers(&self, provider: ProviderName, product: &str, variant: Option<&str>) -> bool {
        self.provider == provider
            && self.product.as_deref() == Some(product)
            && (self.variant.is_none() || self.variant.as_deref() == variant)
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
    /// The providers (and their products) through which members pay for it. Whether a link may
    /// be sold is decided by `docobo_core::service::catalog`, with the provider's own limits.
    pub links: Vec<ProductLink>,
}

impl PaidRole {
    /// A role sold for `price`, linked to no provider yet; free roles and blank names are refused.
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
        Ok(PaidRole { guild, role, name, price, term, links: Vec::new() })
    }

    /// Adds `link`, unless the role already has it.
    #[must_use]
    pub fn with_link(mut self, link: ProductLink) -> Self {
        self.link(link);
        self
    }

    /// Adds `link`, unless the role already has it.
    pub fn link(&mut self, link: ProductLink) {
        if !self.links.contains(&link) {
            self.links.push(link);
        }
    }

    /// Removes every link to `provider`.
    pub fn unlink(&mut self, provider: ProviderName) {
        self.links.retain(|l| l.provider != provider);
    }

    /// The first link to `provider`, if the role has one.
    pub fn link_to(&self, provider: ProviderName) -> Option<&ProductLink> {
        self.links.iter().find(|l| l.provider == provider)
    }

    /// The product id the role is linked to at `provider`, if any.
    pub fn product_at(&self, provider: ProviderName) -> Option<&str> {
        self.link_to(provider).and_then(|l| l.product.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Currency;

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
}
