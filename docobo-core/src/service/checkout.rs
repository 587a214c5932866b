//! `/join`: what a member can buy, and starting a payment for it.
//!
//! A checkout is stored *before* the provider is asked for a payment page, under a short random
//! reference (`DCB7K2QXM`): SePay transfers carry only that code in their memo, and Polar carries it
//! back in the checkout metadata, so it is the one link between money and member. A checkout takes
//! its first payment for [`CHECKOUT_TTL`]; later payments of the same purchase are renewals.

use time::Duration;

use crate::domain::{Checkout, CheckoutRef, GuildId, PaidRole, ProviderName, RoleId, Timestamp, UserId};
use crate::ports::{
    CatalogRepo, CheckoutError, CheckoutLink, CheckoutRepo, CheckoutRequest, PaymentProvider,
    ProviderRegistry, StoreError,
};

use super::catalog::sold_through;

/// How long a new checkout accepts its first payment.
pub const CHECKOUT_TTL: Duration = Duration::hours(24);

/// The reference prefix when the provider's settings name none (`code_prefix`).
pub const DEFAULT_REF_PREFIX: &str = "DCB";

/// Letters and digits that cannot be misread for one another (no 0/O, 1/I/L), for references a
/// member may type into a bank app by hand.
const REF_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// One thing `/join` offers: a paid role through one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub role: PaidRole,
    pub provider: ProviderName,
}

/// Why `/join` could not start a payment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("that role is not for sale here (any more)")]
    NotForSale,
    #[error("{} payments are not set up for this role", .0.title())]
    NotOffered(ProviderName),
    #[error(transparent)]
    Checkout(#[from] CheckoutError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A reference `prefix` + 6 characters drawn from `entropy` (≈ 30 bits: collisions are refused by
/// the store, and a guild sees far fewer than 2^15 checkouts a day).
pub fn checkout_ref(prefix: &str, entropy: [u8; 6]) -> CheckoutRef {
    let code: String = prefix
        .chars()
        .chain(entropy.iter().map(|b| char::from(REF_ALPHABET[usize::from(*b) % REF_ALPHABET.len()])))
        .collect();
    code.parse().unwrap_or_else(|_| unreachable!("prefix and alphabet are valid reference characters"))
}

/// Every (role, provider) a member can pay for in `guild`: providers the application runs and
/// the guild has credentials for, and links the catalog rules allow ([`sold_through`]). By role
/// id, then in the registry's order.
pub async fn offers<R: CatalogRepo + ?Sized>(
    repo: &R,
    providers: &ProviderRegistry,
    guild: GuildId,
) -> Result<Vec<Offer>, StoreError> {
    let mut configured = Vec::new();
    for provider in providers.iter() {
        if repo.credentials(guild, provider.name()).await?.is_some() {
            configured.push(provider);
        }
    }
    let roles = repo.paid_roles(guild).await?;
    Ok(roles
        .iter()
        .flat_map(|role| {
            configured
                .iter()
                .filter(|p| sold_through(role, p.as_ref()))
                .map(|p| Offer { role: role.clone(), provider: p.name() })
        })
        .collect())
}

/// Stores a checkout for `user` buying `role` through `provider`, then asks the provider how the
/// member pays.
pub async fn start_checkout<R: CatalogRepo + CheckoutRepo + ?Sized>(
    repo: &R,
    provider: &dyn PaymentProvider,
    (guild, user, role): (GuildId, UserId, RoleId),
    entropy: [u8; 6],
    now: Timestamp,
    email: Option<&str>,
) -> Result<(Checkout, CheckoutLink), JoinError> {
    let kind = provider.name();
    let paid_role = repo.paid_role(guild, role).await?.ok_or(JoinError::NotForSale)?;
    let credentials = repo.credentials(guild, kind).await?;
    let (Some(credentials), true) = (credentials, sold_through(&paid_role, provider)) else {
        return Err(JoinError::NotOffered(kind));
    };
    let prefix = credentials.settings.get("code_prefix").map_or(DEFAULT_REF_PREFIX, String::as_str);
    let checkout = Checkout {
        reference: checkout_ref(prefix, entropy),
        guild,
        user,
        role,
        provider: kind,
        expected: paid_role.price,
        created_at: now,
        expires_at: now + CHECKOUT_TTL,
    };
    repo.put_checkout(&checkout).await?;
    let link = provider
        .create_checkout(
            &CheckoutRequest { checkout: checkout.clone(), paid_role, email: email.map(str::to_owned) },
            &credentials,
        )
        .await?;
    Ok((checkout, link))
}

/// The checkout `/join` would make to renew (or buy again) `role`: through `preferred` (the
/// purchase's own provider) when it still sells the role, else the first provider that does.
/// Providers that must ask for an email first are skipped (a DM or a dashboard button cannot
/// ask). `Ok(Ok(None))` when nothing sells it (point the member at `/join`); `Ok(Err(..))` when
/// the provider is unavailable now.
pub async fn renewal<R: CatalogRepo + CheckoutRepo + ?Sized>(
    repo: &R,
    providers: &ProviderRegistry,
    member: (GuildId, UserId, RoleId),
    preferred: ProviderName,
    entropy: &(dyn Fn() -> [u8; 6] + Send + Sync),
    now: Timestamp,
) -> Result<Result<Option<CheckoutLink>, CheckoutError>, StoreError> {
    let (guild, _, role) = member;
    let mut candidates: Vec<ProviderName> = Vec::new();
    for offer in offers(repo, providers, guild).await?.into_iter().filter(|o| o.role.role == role) {
        let Some(provider) = providers.get(offer.provider) else { continue };
        let credentials = repo.credentials(guild, offer.provider).await?;
        if credentials.is_some_and(|c| !provider.needs_email(&c)) {
            candidates.push(offer.provider);
        }
    }
    candidates.sort_by_key(|name| *name != preferred);
    let Some(provider) = candidates.first().and_then(|name| providers.get(*name)) else {
        return Ok(Ok(None));
    };
    let mut collisions = 0;
    loop {
        return match start_checkout(repo, provider.as_ref(), member, entropy(), now, None).await {
            Ok((_, link)) => Ok(Ok(Some(link))),
            // A reference drawn twice: draw again.
            Err(JoinError::Store(StoreError::AlreadyExists(_))) if collisions < 3 => {
                collisions += 1;
                continue;
            }
            Err(JoinError::Store(e)) => Err(e),
            Err(JoinError::Checkout(CheckoutError::Unavailable(why))) => {
                Ok(Err(CheckoutError::Unavailable(why)))
            }
            // Refused or not configured: retrying will not help; point at /join.
            Err(_) => Ok(Ok(None)),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::domain::{Currency, Guild, Money, ProductLink, Secret, Term};
    use crate::ports::ProviderCredentials;
    use crate::testing::{MemoryRepo, ToyProvider};
    use time::macros::datetime;

    const NOW: Timestamp = datetime!(2026-11-22 10:00 UTC);

    fn ids() -> (GuildId, UserId, RoleId) {
        (GuildId::new(900).expect("id"), UserId::new(42).expect("id"), RoleId::new(7).expect("id"))
    }

    /// A guild selling VIP for 5 USD through Polar, and Bank for 100,000 VND through SePay.
    async fn shop() -> MemoryRepo {
        let (g, _, r) = ids();
        let repo = MemoryRepo::new();
        repo.put_guild(&Guild::new(g, "Shop")).await.expect("guild");
        let mut vip =
            PaidRole::new(g, r, "VIP", Money::parse("5.00", Currency::Usd).expect("price"), Term::Recurring)
                .expect("role");
        vip.link(ProductLink::product(ProviderName::POLAR, "prod_vip"));
        repo.put_paid_role(&vip).await.expect("vip");
        let vnd = Money::parse("100000", Currency::Vnd).expect("price");
        let mut bank =
            PaidRole::new(g, RoleId::new(8).expect("id"), "Bank", vnd, Term::fixed(30).expect("term"))
                .expect("role");
        bank.link(ProductLink::to(ProviderName::SEPAY));
        repo.put_paid_role(&bank).await.expect("bank");
        repo
    }

    #[test]
    fn references_use_the_prefix_and_an_unambiguous_alphabet() {
        let r = checkout_ref("DCB", [0, 1, 30, 31, 255, 128]);
        assert_eq!(r.as_str().len(), 9);
        assert!(r.as_str().starts_with("DCB"));
        assert!(r.as_str()[3..].bytes().all(|b| REF_ALPHABET.contains(&b)), "{r}");
        assert_ne!(checkout_ref("DCB", [0; 6]), checkout_ref("DCB", [1, 0, 0, 0, 0, 0]));
    }

    #[tokio::test]
    async fn only_configured_providers_that_the_role_accepts_are_offered() {
        let (g, ..) = ids();
        let repo = shop().await;
        let providers = ProviderRegistry::new()
            .with(Arc::new(ToyProvider::named(ProviderName::POLAR)))
            .with(Arc::new(ToyProvider::bank_transfer(ProviderName::SEPAY)));
        assert!(offers(&repo, &providers, g).await.expect("offers").is_empty(), "no provider configured yet");
        let creds = ProviderCredentials::new(Secret::new("s"));
        repo.put_credentials(g, ProviderName::POLAR, &creds).await.expect("polar");
        repo.put_credentials(g, ProviderName::SEPAY, &creds).await.expect("sepay");
        let offered: Vec<_> = offers(&repo, &providers, g)
            .await
            .expect("offers")
            .into_iter()
            .map(|o| (o.role.name, o.provider))
            .collect();
        assert_eq!(
            offered,
            [("VIP".to_owned(), ProviderName::POLAR), ("Bank".to_owned(), ProviderName::SEPAY)]
        );
    }

    #[tokio::test]
    async fn a_checkout_is_stored_before_the_member_is_sent_to_pay() {
        let (g, u, r) = ids();
        let repo = shop().await;
        let mut creds = ProviderCredentials::new(Secret::new("s"));
        creds.settings.insert("code_prefix".to_owned(), "VIP".to_owned());
        repo.put_credentials(g, ProviderName::POLAR, &creds).await.expect("polar");
        let toy = ToyProvider::named(ProviderName::POLAR);
        let (checkout, link) =
            start_checkout(&repo, &toy, (g, u, r), [3; 6], NOW, None).await.expect("checkout");
        assert!(checkout.reference.as_str().starts_with("VIP"));
        assert_eq!(checkout.expected.to_string(), "5.00 USD");
        assert_eq!(checkout.expires_at, NOW + CHECKOUT_TTL);
        assert_eq!(repo.checkout(g, &checkout.reference).await.expect("read"), Some(checkout.clone()));
        assert!(link.url.expect("url").ends_with(checkout.reference.as_str()));
    }

    #[tokio::test]
    async fn roles_not_for_sale_or_not_offered_by_the_provider_are_refused() {
        let (g, u, r) = ids();
        let repo = shop().await;
        let toy = ToyProvider::named(ProviderName::POLAR);
        let bank = RoleId::new(8).expect("id");
        let unknown = RoleId::new(9).expect("id");
        let refused = start_checkout(&repo, &toy, (g, u, r), [0; 6], NOW, None).await;
        assert_eq!(refused, Err(JoinError::NotOffered(ProviderName::POLAR)), "Polar not configured");
        let creds = ProviderCredentials::new(Secret::new("s"));
        repo.put_credentials(g, ProviderName::POLAR, &creds).await.expect("polar");
        let refused = start_checkout(&repo, &toy, (g, u, bank), [0; 6], NOW, None).await;
        assert_eq!(refused, Err(JoinError::NotOffered(ProviderName::POLAR)), "Bank has no Polar product");
        let refused = start_checkout(&repo, &toy, (g, u, unknown), [0; 6], NOW, None).await;
        assert_eq!(refused, Err(JoinError::NotForSale));
    }
}
