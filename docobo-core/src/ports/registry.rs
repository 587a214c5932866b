//! [`ProviderRegistry`]: the payment providers an application runs, found by name.
//!
//! Adding a provider to an application is one `with` here: the webhook route
//! (`/webhooks/{provider}/{guild}`), replay, `/join`'s offers and `/setup` all look providers up
//! in the registry instead of matching on their kind.

use std::sync::Arc;

use crate::domain::ProviderKind;

use super::PaymentProvider;

/// The providers an application runs, at most one per kind.
#[derive(Clone, Default)]
pub struct ProviderRegistry(Vec<Arc<dyn PaymentProvider>>);

impl std::fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|p| p.kind().as_str())).finish()
    }
}

impl ProviderRegistry {
    pub fn new() -> Self {
        ProviderRegistry(Vec::new())
    }

    /// Adds `provider`, replacing one of the same kind.
    #[must_use]
    pub fn with(mut self, provider: Arc<dyn PaymentProvider>) -> Self {
        self.0.retain(|p| p.kind() != provider.kind());
        self.0.push(provider);
        self
    }

    /// The provider of this kind, if the application runs one.
    pub fn get(&self, kind: ProviderKind) -> Option<Arc<dyn PaymentProvider>> {
        self.0.iter().find(|p| p.kind() == kind).cloned()
    }

    /// The provider whose name (`ProviderKind::as_str`, e.g. `polar`) is `name`.
    pub fn named(&self, name: &str) -> Option<Arc<dyn PaymentProvider>> {
        self.0.iter().find(|p| p.kind().as_str() == name).cloned()
    }

    /// Every provider, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn PaymentProvider>> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ToyProvider;

    #[test]
    fn providers_are_found_by_name_and_kind_and_one_per_kind() {
        let registry = ProviderRegistry::new()
            .with(Arc::new(ToyProvider { kind: ProviderKind::Polar }))
            .with(Arc::new(ToyProvider { kind: ProviderKind::Sepay }))
            .with(Arc::new(ToyProvider { kind: ProviderKind::Polar }));
        assert_eq!(registry.iter().count(), 2, "a second polar replaces the first");
        assert!(registry.named("sepay").is_some_and(|p| p.kind() == ProviderKind::Sepay));
        assert!(registry.get(ProviderKind::Polar).is_some());
        assert!(registry.named("nope").is_none() && registry.get(ProviderKind::Custom).is_none());
    }
}
