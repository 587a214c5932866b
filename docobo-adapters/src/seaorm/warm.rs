//! Warming a freshly opened repository before the server listens. A replica restarted under
//! load otherwise spends its first second reading each guild's catalog on its first webhook
//! and, on PostgreSQL, opening connections and preparing each hot read on each of them: the
//! first second's tail in `docs/PERFORMANCE.md` §4.3.
//!
//! [`SeaOrmRepo::warm`] reads ahead the catalogs of up to [`CATALOGS`] (guild, provider) pairs
//! that have credentials, which is every pair that can ingest a webhook, on [`LANES`] tasks at
//! once, each also making the reads ingest makes next (an entitlement, a checkout), of a fixed
//! key whose answer is thrown away. Reading ahead changes nothing: a catalog kept here is kept
//! under the revision it was read at, exactly as one read by a webhook.

use docobo_core::domain::{CheckoutRef, ExternalRef, GuildId, ProviderName};
use docobo_core::ports::{CatalogRepo, CheckoutRepo, EntitlementRepo, StoreError};
use sea_orm::{EntityTrait, QuerySelect};

use super::SeaOrmRepo;
use super::convert::store_err;
use super::entities::credential;

/// At most this many catalogs are read ahead, so a start stays bounded however many guilds
/// there are; the rest are read by their first webhook, as without warming.
const CATALOGS: u64 = 1_000;

/// Pairs warmed at once: as many as a PostgreSQL pool holds, so that each of its connections is
/// opened and has the hot reads prepared before the first webhook needs it.
const LANES: usize = 16;

/// The entitlement and checkout key the warming reads look up.
const KEY: &str = "docobo-warm";

impl SeaOrmRepo {
    /// Reads ahead what the first webhooks after a start need (see the module docs) and returns
    /// how many catalogs it kept. A pair whose catalog cannot be read (credentials sealed under
    /// another key, say) is left for its first webhook to report; only failing to list the
    /// pairs is an error.
    pub async fn warm(&self) -> Result<usize, StoreError> {
        let rows: Vec<(i64, String)> = credential::Entity::find()
            .select_only()
            .column(credential::Column::GuildId)
            .column(credential::Column::Provider)
            .limit(CATALOGS)
            .into_tuple()
            .all(&self.read)
            .await
            .map_err(store_err)?;
        let pairs: Vec<(GuildId, ProviderName)> = rows
            .into_iter()
            .filter_map(|(guild, provider)| {
                Some((GuildId::new(u64::try_from(guild).ok()?).ok()?, provider.parse().ok()?))
            })
            .collect();
        let mut lanes = tokio::task::JoinSet::new();
        for lane in 0..LANES.min(pairs.len()) {
            let (repo, mine) =
                (self.clone(), pairs.iter().skip(lane).step_by(LANES).copied().collect::<Vec<_>>());
            lanes.spawn(async move {
                let mut kept = 0;
                for (guild, provider) in mine {
                    kept += usize::from(repo.warm_one(guild, provider).await.is_ok());
                }
                kept
            });
        }
        Ok(lanes.join_all().await.into_iter().sum())
    }

    async fn warm_one(&self, guild: GuildId, provider: ProviderName) -> Result<(), StoreError> {
        self.catalog(guild, provider).await?;
        // Only the statements matter here: what these reads find is thrown away.
        if let (Ok(entitlement), Ok(checkout)) = (KEY.parse::<ExternalRef>(), KEY.parse::<CheckoutRef>()) {
            self.entitlement(provider, guild, &entitlement).await?;
            self.checkout(guild, &checkout).await?;
        }
        Ok(())
    }
}
