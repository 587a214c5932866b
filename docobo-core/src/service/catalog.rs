//! Catalog and setup rules, once: which links of a paid role can be sold, and what a guild must
//! have before its roles and credentials are stored. The CLI, `/setup`, `/join` and the admin
//! API call these instead of deciding for themselves.
//!
//! The rules read what each provider says it [`Sells`]: a provider whose payments never renew
//! cannot pay for a recurring role (one bank transfer would grant access that nothing ever
//! ends), a provider that takes one currency cannot sell a price in another, and a provider that
//! identifies purchases by product needs a product id.

use crate::domain::{Guild, GuildId, Locale, PaidRole, ProductLink, ProviderName};
use crate::ports::{
    CatalogRepo, CredentialError, PaymentProvider, ProviderCredentials, ProviderRegistry, Sells, StoreError,
};

/// Why a paid role or credentials were not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogRefusal {
    #[error("guild {0} is not registered (docobo guild add, or invite the bot)")]
    UnknownGuild(GuildId),
    #[error("role not saved: {}", .0.join("; "))]
    NotSellable(Vec<String>),
    #[error("no provider named {name} runs here (available: {available})")]
    UnknownProvider { name: ProviderName, available: String },
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why `link` of `role` cannot be sold by a provider that sells `sells`; empty when it can.
pub fn link_problems(role: &PaidRole, link: &ProductLink, sells: Sells) -> Vec<String> {
    let title = link.provider.title();
    let mut problems = Vec::new();
    if let Some(currency) = sells.only_currency
        && role.price.currency != currency
    {
        problems.push(format!("{title} takes {currency} prices only, not {}", role.price.currency));
    }
    if !sells.renewals && !role.term.one_payment_suffices() {
        problems.push(format!(
            "{title} needs a fixed term or lifetime: its payments never renew, so it cannot pay for a recurring role"
        ));
    }
    match link.product.as_deref() {
        Some(p) if p.trim().is_empty() => problems.push(format!("the {title} product id is empty")),
        None if sells.needs_product => problems.push(format!("{title} needs a product id")),
        _ => {}
    }
    problems
}

/// Why `role` cannot be sold as configured, one reason per problem; empty when it can. A link
/// to a provider that is not registered here is a problem too.
pub fn sale_problems(role: &PaidRole, providers: &ProviderRegistry) -> Vec<String> {
    role.links
        .iter()
        .flat_map(|link| match providers.get(link.provider) {
            Some(p) => link_problems(role, link, p.sells()),
            None => vec![format!(
                "no provider named {} runs here (available: {})",
                link.provider,
                providers.names()
            )],
        })
        .collect()
}

/// Whether members can pay for `role` through `provider`: the role links to it and that link
/// can be sold.
pub fn sold_through(role: &PaidRole, provider: &dyn PaymentProvider) -> bool {
    let name = provider.name();
    let mut links = role.links.iter().filter(|l| l.provider == name).peekable();
    links.peek().is_some() && links.all(|l| link_problems(role, l, provider.sells()).is_empty())
}

/// Puts `role` on sale (or updates it), after checking every rule above and that its guild is
/// registered. Nothing is stored when a rule fails.
pub async fn sell_role<R: CatalogRepo + ?Sized>(
    repo: &R,
    providers: &ProviderRegistry,
    role: &PaidRole,
) -> Result<(), CatalogRefusal> {
    let problems = sale_problems(role, providers);
    if !problems.is_empty() {
        return Err(CatalogRefusal::NotSellable(problems));
    }
    if repo.guild(role.guild).await?.is_none() {
        return Err(CatalogRefusal::UnknownGuild(role.guild));
    }
    repo.put_paid_role(role).await?;
    Ok(())
}

/// Registers a guild under `name`, its notices in Vietnamese when Discord says the guild's
/// `preferred_locale` is `vi`; or renames it keeping its settings.
pub async fn register_guild<R: CatalogRepo + ?Sized>(
    repo: &R,
    id: GuildId,
    name: &str,
    preferred_locale: Option<&str>,
) -> Result<(), StoreError> {
    match repo.guild(id).await? {
        Some(g) => repo.put_guild(&Guild { name: name.to_owned(), ..g }).await,
        None => {
            let mut guild = Guild::new(id, name);
            guild.notices.locale = preferred_locale.map(Locale::from_discord).unwrap_or_default();
            repo.put_guild(&guild).await
        }
    }
}

/// Stores `credentials` for `provider` in `guild` once the provider accepts them
/// ([`PaymentProvider::check_credentials`]). Nothing is stored when it refuses.
pub async fn set_credentials<R: CatalogRepo + ?Sized>(
    repo: &R,
    providers: &ProviderRegistry,
    guild: GuildId,
    provider: ProviderName,
    credentials: &ProviderCredentials,
) -> Result<(), CatalogRefusal> {
    let Some(found) = providers.get(provider) else {
        return Err(CatalogRefusal::UnknownProvider { name: provider, available: providers.names() });
    };
    if repo.guild(guild).await?.is_none() {
        return Err(CatalogRefusal::UnknownGuild(guild));
    }
    found.check_credentials(credentials).await?;
    repo.put_credentials(guild, provider, credentials).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::{Currency, Money, RoleId, Secret, Term};
    use crate::testing::{MemoryRepo, ToyProvider};

    const BANK: ProviderName = ProviderName::known("bank");
    const CARDS: ProviderName = ProviderName::known("cards");

    fn providers() -> ProviderRegistry {
        let cards = Sells { needs_product: true, ..Sells::ANYTHING };
        ProviderRegistry::new()
            .with(Arc::new(ToyProvider::bank_transfer(BANK)))
            .with(Arc::new(ToyProvider { sells: cards, ..ToyProvider::named(CARDS) }))
    }

    fn role(price: &str, currency: Currency, term: Term) -> PaidRole {
        let (guild, role) = (GuildId::new(1).expect("id"), RoleId::new(2).expect("id"));
        PaidRole::new(guild, role, "VIP", Money::parse(price, currency).expect("price"), term).expect("role")
    }

    #[test]
    fn a_provider_whose_payments_never_renew_sells_only_terms_one_payment_pays_for() {
        let providers = providers();
        let bank = providers.get(BANK).expect("registered");
        let recurring = role("100000", Currency::Vnd, Term::Recurring).with_link(ProductLink::to(BANK));
        let problems = sale_problems(&recurring, &providers);
        assert!(problems.iter().any(|p| p.contains("never renew")), "{problems:?}");
        assert!(!sold_through(&recurring, bank.as_ref()));

        let fixed = PaidRole { term: Term::Fixed { days: 30 }, ..recurring.clone() };
        assert_eq!(sale_problems(&fixed, &providers), Vec::<String>::new());
        assert!(sold_through(&fixed, bank.as_ref()));
        let cards = providers.get(CARDS).expect("registered");
        assert!(!sold_through(&fixed, cards.as_ref()), "not linked to cards");

        let usd = PaidRole { price: Money::parse("5.00", Currency::Usd).expect("price"), ..fixed };
        assert!(sale_problems(&usd, &providers).iter().any(|p| p.contains("VND")));
    }

    #[test]
    fn product_links_need_a_product_where_the_provider_says_so_and_a_registered_provider() {
        let providers = providers();
        let base = role("5.00", Currency::Usd, Term::Recurring);
        let bare = base.clone().with_link(ProductLink::to(CARDS));
        assert!(sale_problems(&bare, &providers).iter().any(|p| p.contains("needs a product id")));
        let blank = base.clone().with_link(ProductLink::product(CARDS, " "));
        assert!(sale_problems(&blank, &providers).iter().any(|p| p.contains("empty")));
        let good = base.clone().with_link(ProductLink::product(CARDS, "prod_1"));
        assert!(sale_problems(&good, &providers).is_empty());
        let stranger = base.with_link(ProductLink::to(ProviderName::known("stripe")));
        let problems = sale_problems(&stranger, &providers);
        assert!(problems.iter().any(|p| p.contains("no provider named stripe") && p.contains("bank, cards")));
    }

    #[tokio::test]
    async fn nothing_is_stored_when_a_rule_fails() {
        let repo = MemoryRepo::new();
        let providers = providers();
        let fixed = role("100000", Currency::Vnd, Term::Fixed { days: 30 }).with_link(ProductLink::to(BANK));
        assert_eq!(
            sell_role(&repo, &providers, &fixed).await,
            Err(CatalogRefusal::UnknownGuild(fixed.guild)),
            "a role needs its guild first"
        );
        register_guild(&repo, fixed.guild, "Guild", None).await.expect("guild");
        let recurring = PaidRole { term: Term::Recurring, ..fixed.clone() };
        assert!(matches!(
            sell_role(&repo, &providers, &recurring).await,
            Err(CatalogRefusal::NotSellable(_))
        ));
        assert_eq!(repo.paid_roles(fixed.guild).await.expect("roles"), Vec::new());
        sell_role(&repo, &providers, &fixed).await.expect("sellable");
        assert_eq!(repo.paid_roles(fixed.guild).await.expect("roles"), vec![fixed.clone()]);

        let credentials = ProviderCredentials::new(Secret::new("key"));
        let unknown =
            set_credentials(&repo, &providers, fixed.guild, ProviderName::known("stripe"), &credentials);
        assert!(matches!(unknown.await, Err(CatalogRefusal::UnknownProvider { .. })));
        set_credentials(&repo, &providers, fixed.guild, BANK, &credentials).await.expect("stored");
        assert_eq!(repo.credentials(fixed.guild, BANK).await.expect("read"), Some(credentials));
    }
}
