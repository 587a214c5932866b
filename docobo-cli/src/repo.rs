//! What most commands need first: the database (migrated), a registered guild, the providers.

use std::sync::Arc;

use docobo_adapters::polar::Polar;
use docobo_adapters::seaorm::SeaOrmRepo;
use docobo_adapters::sellapp::Sellapp;
use docobo_adapters::sepay::Sepay;
use docobo_core::domain::{Guild, GuildId};
use docobo_core::ports::{CatalogRepo, ProviderRegistry};

use crate::error::Failure;

/// Opens and migrates the database, with `DOCOBO_SECRET_KEY` (and `_OLD` while rotating).
pub(crate) async fn open(url: &str) -> Result<SeaOrmRepo, Failure> {
    let var = |name: &str| std::env::var(name).ok().filter(|k| !k.is_empty());
    let (key, old) = (var("DOCOBO_SECRET_KEY"), var("DOCOBO_SECRET_KEY_OLD"));
    let repo = SeaOrmRepo::connect_rotating(url, key.as_deref(), old.as_deref()).await?;
    repo.migrate().await?;
    Ok(repo)
}

/// The guild, or a failure that says how to register it.
pub(crate) async fn registered(repo: &SeaOrmRepo, guild: GuildId) -> Result<Guild, Failure> {
    repo.guild(guild).await?.ok_or_else(|| {
        Failure::Other(format!("guild {guild} is not registered; run `docobo guild add {guild}` first"))
    })
}

/// The providers this binary runs, as the server registers them (their APIs at `POLAR_API_URL`
/// and `SELLAPP_API_URL`, for checking keys and replaying).
pub(crate) fn providers() -> ProviderRegistry {
    let polar = std::env::var("POLAR_API_URL").map_or_else(|_| Polar::default(), Polar::new);
    let sellapp = std::env::var("SELLAPP_API_URL").map_or_else(|_| Sellapp::default(), Sellapp::new);
    ProviderRegistry::new().with(Arc::new(polar)).with(Arc::new(Sepay)).with(Arc::new(sellapp))
}
