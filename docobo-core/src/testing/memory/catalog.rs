//! The catalog side of [`MemoryRepo`]: guilds, paid roles, credentials, checkouts, entitlements.

use std::sync::Arc;

use async_trait::async_trait;

use super::{MemoryRepo, lock};
use crate::domain::{
    Checkout, CheckoutRef, Entitlement, EntitlementId, ExternalRef, Guild, GuildId, PaidRole, ProviderName,
    RoleId, RoleJobKey, Timestamp, UserId,
};
use crate::ports::{
    CatalogRepo, CheckoutRepo, EntitlementRepo, GuildCatalog, ProviderCredentials, StoreError,
};

#[async_trait]
impl CatalogRepo for MemoryRepo {
    async fn put_guild(&self, guild: &Guild) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        state.guilds.insert(guild.id, guild.clone());
        state.catalog_changed(guild.id);
        Ok(())
    }

    async fn guild(&self, id: GuildId) -> Result<Option<Guild>, StoreError> {
        self.read(|s| s.guilds.get(&id).cloned())
    }

    async fn guilds(&self) -> Result<Vec<Guild>, StoreError> {
        self.read(|s| s.guilds.values().cloned().collect())
    }

    async fn remove_paid_role(&self, guild: GuildId, role: RoleId) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        state.catalog_changed(guild);
        Ok(state.roles.remove(&(guild, role)).is_some())
    }

    async fn put_paid_role(&self, role: &PaidRole) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        state.roles.insert((role.guild, role.role), role.clone());
        state.catalog_changed(role.guild);
        Ok(())
    }

    async fn paid_role(&self, guild: GuildId, role: RoleId) -> Result<Option<PaidRole>, StoreError> {
        self.read(|s| s.roles.get(&(guild, role)).cloned())
    }

    async fn paid_roles(&self, guild: GuildId) -> Result<Vec<PaidRole>, StoreError> {
        self.read(|s| s.roles.values().filter(|r| r.guild == guild).cloned().collect())
    }

    async fn put_credentials(
        &self,
        guild: GuildId,
        provider: ProviderName,
        credentials: &ProviderCredentials,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        state.credentials.insert((guild, provider), credentials.clone());
        state.catalog_changed(guild);
        Ok(())
    }

    async fn credentials(
        &self,
        guild: GuildId,
        provider: ProviderName,
    ) -> Result<Option<ProviderCredentials>, StoreError> {
        self.read(|s| s.credentials.get(&(guild, provider)).cloned())
    }

    async fn catalog(
        &self,
        guild: GuildId,
        provider: ProviderName,
    ) -> Result<Option<Arc<GuildCatalog>>, StoreError> {
        let state = lock(&self.state);
        let revision = state.catalog_revision(guild);
        let mut kept = lock(&self.kept);
        if let Some(catalog) = kept.get(&(guild, provider)).filter(|c| c.revision == Some(revision)) {
            return Ok(Some(catalog.clone()));
        }
        let Some(found) = state.guilds.get(&guild) else { return Ok(None) };
        let catalog = Arc::new(GuildCatalog {
            guild: found.clone(),
            credentials: state.credentials.get(&(guild, provider)).cloned(),
            roles: state.roles.values().filter(|r| r.guild == guild).cloned().collect(),
            revision: Some(revision),
        });
        kept.insert((guild, provider), catalog.clone());
        Ok(Some(catalog))
    }

    async fn kept_catalog(
        &self,
        guild: GuildId,
        provider: ProviderName,
    ) -> Result<Option<Arc<GuildCatalog>>, StoreError> {
        Ok(lock(&self.kept).get(&(guild, provider)).cloned())
    }
}

#[async_trait]
impl CheckoutRepo for MemoryRepo {
    async fn put_checkout(&self, checkout: &Checkout) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let key = (checkout.guild, checkout.reference.clone());
        if state.checkouts.contains_key(&key) {
            return Err(StoreError::AlreadyExists(format!("checkout {}", checkout.reference)));
        }
        state.checkouts.insert(key, checkout.clone());
        Ok(())
    }

    async fn checkout(
        &self,
        guild: GuildId,
        reference: &CheckoutRef,
    ) -> Result<Option<Checkout>, StoreError> {
        self.read(|s| s.checkouts.get(&(guild, reference.clone())).cloned())
    }
}

#[async_trait]
impl EntitlementRepo for MemoryRepo {
    async fn entitlement(
        &self,
        provider: ProviderName,
        guild: GuildId,
        external_ref: &ExternalRef,
    ) -> Result<Option<Entitlement>, StoreError> {
        self.read(|s| {
            s.by_ref
                .get(&(provider, guild, external_ref.clone()))
                .and_then(|id| s.entitlements.get(id))
                .cloned()
        })
    }

    async fn entitlement_by_id(&self, id: EntitlementId) -> Result<Option<Entitlement>, StoreError> {
        self.read(|s| s.entitlements.get(&id).cloned())
    }

    async fn entitlements_for(&self, key: RoleJobKey) -> Result<Vec<Entitlement>, StoreError> {
        self.read(|s| s.entitlements.values().filter(|e| e.job_key() == key).cloned().collect())
    }

    async fn member_entitlements(
        &self,
        guild: GuildId,
        user: UserId,
    ) -> Result<Vec<Entitlement>, StoreError> {
        self.read(|s| {
            s.entitlements.values().filter(|e| e.guild == guild && e.user == user).cloned().collect()
        })
    }

    async fn guild_entitlements(&self, guild: GuildId) -> Result<Vec<Entitlement>, StoreError> {
        self.read(|s| s.entitlements.values().filter(|e| e.guild == guild).cloned().collect())
    }

    async fn guild_revision(&self, guild: GuildId) -> Result<crate::ports::GuildRevision, StoreError> {
        self.read(|s| {
            let mut at = crate::ports::GuildRevision::default();
            for e in s.entitlements.values().filter(|e| e.guild == guild) {
                at.entitlements += 1;
                at.revisions += i64::try_from(e.revision).unwrap_or(i64::MAX);
            }
            for p in s.payments.values().filter(|p| p.guild == guild) {
                at.payments += 1;
                at.refunded += p.refunded.minor;
            }
            at
        })
    }

    async fn due_entitlements(&self, now: Timestamp, limit: usize) -> Result<Vec<Entitlement>, StoreError> {
        self.read(|s| {
            let mut due: Vec<Entitlement> =
                s.entitlements.values().filter(|e| e.deadline.is_some_and(|d| d <= now)).cloned().collect();
            due.sort_by_key(|e| (e.deadline, e.id));
            due.truncate(limit);
            due
        })
    }

    async fn deadlines_after(
        &self,
        after: (Timestamp, EntitlementId),
        until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Entitlement>, StoreError> {
        self.read(|s| {
            let mut page: Vec<Entitlement> = s
                .entitlements
                .values()
                .filter(|e| e.deadline.is_some_and(|d| (d, e.id) > after && d <= until))
                .cloned()
                .collect();
            page.sort_by_key(|e| (e.deadline, e.id));
            page.truncate(limit);
            page
        })
    }
}
