//! Docobo: paid community access on Discord.
//!
//! This facade re-exports the pure core ([`core`]) and the adapters ([`adapters`]) so an embedding
//! bot needs one dependency. The top-level `examples/`, `tests/` and `benches/` belong to it.

pub use docobo_adapters as adapters;
pub use docobo_core as core;

/// What an embedding bot needs, in one `use docobo::prelude::*;`: the domain's ids and money,
/// the ports, the use cases, and the default adapters (SeaORM, Discord, Polar, SePay) with the
/// library's worker loops.
pub mod prelude {
    pub use docobo_adapters::discord::bot::Bot;
    pub use docobo_adapters::discord::gateway::{GatewayEvents, INTENTS};
    pub use docobo_adapters::discord::{CALL_TIMEOUT, DiscordRoles, rest_client};
    pub use docobo_adapters::polar::Polar;
    pub use docobo_adapters::seaorm::SeaOrmRepo;
    pub use docobo_adapters::sepay::{Sepay, SepaySettings};
    pub use docobo_adapters::workers::{expirer, role_worker};
    pub use docobo_core::domain::{
        Currency, Guild, GuildId, Money, PaidRole, ProductLink, ProviderName, RoleId, Secret, Term, UserId,
    };
    pub use docobo_core::ports::{
        CatalogRepo, Clock, Headers, PaymentProvider, ProviderCredentials, ProviderRegistry, RoleGateway,
        SubscriptionRepo, SystemClock,
    };
    pub use docobo_core::service::{
        ingest_webhook, lease_and_batch, register_guild, run_due_jobs, sell_role, set_credentials,
    };
}
