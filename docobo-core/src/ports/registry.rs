//! [`ProviderRegistry`]: the payment providers an application runs, found by name.
//!
//! Adding a provider to an application is one `with` here: the webhook route
//! (`/webhooks/{provider}/{guild}`), replay, `/join`'s offers and `/setup` all look providers up
//! in the registry instead of matching on their names.

use std::sync::Arc;

use crate::domain::ProviderName;

use super::PaymentProvider;

/// The providers an application runs, at most one per name.
#[derive(Clone, Default)]
pub struct ProviderRegistry(Vec<Arc<dyn PaymentProvider>>);

impl std::fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|p| p.name())).finish()
    }
}

impl ProviderRegistry {
    pub fn new() -> Self {
        ProviderRegistry(Vec::new())
    }

    /// Adds `provider`, replacing one registered under the same name.
    #[must_use]
    pub fn with(mut self, provider: Arc<dyn PaymentProvider>) -> Self {
        self.0.retain(|p| p.name() != provider.name());
        self.0.push(provider);
        self
    }

    /// The provider registered as `name`, if the application runs one.
    pub fn get(&self, name: ProviderName) -> Option<Arc<dyn PaymentProvider>> {
        self.0.iter().find(|p| p.name() == name).cloned()
    }

    /// The provider whose name is `name` as typed (a URL segment, an argument); `None` for a
    /// name that is not registered or not a valid name at all.
    pub fn named(&self, name: &str) -> Option<Arc<dyn PaymentProvider>> {
        self.get(name.parse().ok()?)
    }

    /// Every provider, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn PaymentProvider>> {
        self.0.iter()
    }

    /// The registered names, in the order they were added, for messages (`polar, sepay`).
    pub fn names(&self) -> String {
        self.0.iter().map(|p| p.name().to_string()).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ToyProvider;

    #[test]
    fn providers_are_found_by_name_and_one_per_name() {
        let shop = ProviderName::known("shop");
        let registry = ProviderRegistry::new()
            .with(Arc::new(ToyProvider::named(ProviderName::POLAR)))
            .with(Arc::new(ToyProvider::named(shop)))
            .with(Arc::new(ToyProvider::named(ProviderName::known("other-shop"))))
            .with(Arc::new(ToyProvider::named(ProviderName::POLAR)));
        assert_eq!(registry.iter().count(), 3, "a second polar replaces the first");
        assert_eq!(registry.names(), "shop, other-shop, polar");
        assert!(registry.named("shop").is_some_and(|p| p.name() == shop));
        assert!(registry.get(ProviderName::POLAR).is_some());
        assert!(registry.named("nope").is_none() && registry.named("Not A Name").is_none());
        assert!(registry.get(ProviderName::SEPAY).is_none());
    }
}
