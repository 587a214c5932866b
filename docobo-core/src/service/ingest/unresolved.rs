//! [`Unresolved`]: why an authenticated delivery went to the failure inbox instead of being
//! applied. Each reason says what an operator can do about it; the stored event keeps its text.

use crate::domain::{CheckoutRef, GuildId, Money, ProviderName, RoleId, Timestamp};
use crate::machine::TransitionError;

/// Why a delivery could not be applied. Nothing but the failed record is written, so a replay
/// after the fix applies it exactly once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unresolved {
    /// The provider's parser could not read it.
    #[error("{0}")]
    Unreadable(String),
    #[error(
        "this purchase was made for guild {paid_for}, not {here}: the provider's webhook endpoint may be shared \
         between servers; nothing was applied here"
    )]
    OtherGuild { paid_for: GuildId, here: GuildId },
    #[error(
        "checkout {checkout} expired at {expired_at} and the payment was made at {paid_at}; it cannot start a new \
         purchase"
    )]
    ExpiredCheckout { checkout: CheckoutRef, expired_at: Timestamp, paid_at: Timestamp },
    #[error(
        "cannot tell which Discord member paid: no discord_user_id in the metadata and no matching checkout"
    )]
    UnknownMember,
    #[error("role {role} is not sold in guild {guild}")]
    RoleNotSold { guild: GuildId, role: RoleId },
    #[error(
        "cannot tell which paid role was bought: product {} is not linked to a role (docobo role add ... \
         --{provider}-product) and no checkout matched",
        product.as_deref().unwrap_or("(none)")
    )]
    UnlinkedProduct { provider: ProviderName, product: Option<String> },
    /// A member switched plans in the provider's portal: access is not moved between roles by
    /// itself.
    #[error(
        "product changed: this purchase grants role {role}, but its product {product} is sold as role {sold_as} \
         (the member switched plans); nothing was applied. Grant the new role and revoke the old one by hand \
         (docobo grant / docobo revoke) if the switch is right"
    )]
    ProductMoved { role: RoleId, product: String, sold_as: RoleId },
    #[error("the payload names no purchase to track (no subscription, order or checkout reference)")]
    NoPurchase,
    #[error("underpaid: received {paid}, expected {expected}; no access was granted")]
    Underpaid { paid: Money, expected: Money },
    #[error(
        "a one-time {provider} payment cannot pay for a recurring role (it would grant access with no end); no \
         access was granted: give the role a fixed term or lifetime, or sell it by subscription, then replay this \
         delivery or grant it by hand"
    )]
    OneTimeForRecurring { provider: ProviderName },
    #[error(transparent)]
    Transition(#[from] TransitionError),
}
