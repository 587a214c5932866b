//! The ports: what the core needs from the outside world, named for their role. Each method's
//! documentation states what an adapter MUST do; `docobo_core::testing` implements every port in
//! memory, and the repository contract tests hold adapters to it.

mod clock;
mod messages;
mod provider;
mod registry;
mod relay;
mod repo;
mod roles;
mod sessions;

pub use clock::{Clock, SystemClock};
pub use messages::{DirectMessage, DirectMessages, DmError};
pub use provider::{
    CheckoutError, CheckoutLink, CheckoutRequest, CredentialError, Headers, ParseError, ParsedWebhook,
    PaymentFact, PaymentProvider, ProviderCredentials, ProviderEvent, ResolveError, Sells, SetupField,
    Subject, VerifyError,
};
pub use registry::ProviderRegistry;
pub use relay::{MirrorError, MirrorGateway, MirrorPart, MirrorSettlement, RelayRepo};
pub use repo::{
    AuditLog, CatalogRepo, CheckoutRepo, Commit, EntitlementRepo, EntitlementWrite, GuildCatalog,
    GuildRevision, JobQueue, Ledger, NoticeRepo, NoticeSettlement, PaymentLog, Recorded, Settled, Settlement,
    SetupRepo, StoreError, SubscriptionRepo,
};
#[cfg(test)]
pub use roles::MockRoleGateway;
pub use roles::{GatewayError, Manageable, RoleGateway};
pub use sessions::SessionRepo;
