//! [`AppState`]: what every handler and worker of one server shares.

use std::sync::Arc;

use docobo_adapters::discord::bot::Bot;
use docobo_adapters::discord::interactions::Verifier;
use docobo_adapters::seaorm::SeaOrmRepo;
use docobo_core::ports::Clock;

/// What the handlers share.
pub struct AppState {
    /// `DOCOBO_ADMIN_TOKEN`: the admin API's bearer token; the API is off without it.
    pub admin_token: Option<docobo_core::domain::Secret>,
    /// Business time: what webhooks, interactions, the admin API and the workers read (a
    /// `ManualClock` in tests that move time). Liveness (heartbeats) is always the system clock.
    pub clock: Arc<dyn Clock>,
    /// When the background workers last finished a pass, for `/ready`.
    pub heartbeats: Arc<crate::heartbeats::Heartbeats>,
    /// The role worker's lease and batch size, from `DOCOBO_DISCORD_TIMEOUT`.
    pub job_lease: (time::Duration, usize),
    /// The relay worker's lease, from `DOCOBO_DISCORD_TIMEOUT`.
    pub mirror_lease: time::Duration,
    /// `DOCOBO_EVENT_RETENTION_DAYS`, for the pruner.
    pub event_retention: Option<time::Duration>,
    /// How long clients may take to send requests.
    pub limits: crate::guard::Limits,
    /// Failed webhook authentications per guild and provider.
    pub auth_failures: crate::throttle::AuthThrottle,
    /// Permits for requests in flight ([`crate::http::MAX_IN_FLIGHT`]).
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Permits for webhooks in flight (`DOCOBO_WEBHOOKS_IN_FLIGHT`).
    pub webhooks_in_flight: Arc<tokio::sync::Semaphore>,
    /// What `GET /metrics` reports.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// `DOCOBO_RATE_LIMIT`: requests per second per IP address, when on.
    pub rate_limit: Option<crate::rate_limit::PerIp>,
    pub repo: SeaOrmRepo,
    /// Discord, when a bot token is configured; without one, role jobs wait.
    pub roles: Option<Arc<dyn docobo_core::ports::RoleGateway>>,
    /// `DOCOBO_NOTICE_INTERVAL`: the pace of member-notice DMs.
    pub notice_interval: time::Duration,
    /// Member notices' DMs, over the same Discord client as `roles`.
    pub dms: Option<Arc<dyn docobo_core::ports::DirectMessages>>,
    /// Checks `POST /interactions`, when `DISCORD_PUBLIC_KEY` is set.
    pub interactions: Option<Verifier>,
    /// The payment providers this server runs, by name: `/webhooks/{provider}/…` and replay
    /// find them here.
    pub providers: docobo_core::ports::ProviderRegistry,
    /// Answers interactions from `POST /interactions` (and the gateway).
    pub bot: Bot,
    /// Delivers deferred interaction answers (webhook routes, no bot token needed).
    pub discord_http: Arc<serenity::http::Http>,
    /// Sell.app, for reading its event journal (`SELLAPP_API_URL`).
    pub sellapp: docobo_adapters::sellapp::Sellapp,
    /// The bot token and API base for the gateway connection, when `DOCOBO_GATEWAY` is on.
    pub gateway: Option<(docobo_core::domain::Secret, String)>,
    /// The relay's target side, over the same Discord client as `roles`.
    pub mirrors: Option<Arc<dyn docobo_core::ports::MirrorGateway>>,
    /// Where the relay keeps attachments (`DOCOBO_DATA_DIR`).
    pub attachments: docobo_adapters::discord::attachments::AttachmentStore,
    /// Relay latency over the last hour, for `GET /admin/relays`.
    pub relay_stats: Arc<crate::relay_stats::RelayStats>,
    /// The dashboard's "Log in with Discord", when `DISCORD_CLIENT_SECRET` is set.
    pub login: Option<docobo_adapters::discord::login::DiscordLogin>,
    /// `DOCOBO_PUBLIC_URL`, for the dashboard's same-origin check.
    pub public_url: String,
    /// Discord's REST client, for deciding who may operate a guild in the dashboard.
    pub discord: Option<docobo_adapters::discord::DiscordRoles>,
    /// `DOCOBO_OPERATORS`: users who may operate every guild.
    pub operators: Vec<docobo_core::domain::UserId>,
    /// The members' live signal feed (`/me/signals/stream`).
    pub signal_feed: crate::dashboard::signals::SignalFeed,
    /// Guild summaries kept while exact (`/ops/{g}`, `GET /admin/guilds/{g}/summary`).
    pub summaries: docobo_core::service::SummaryCache,
    /// Places for the dashboard's live streams.
    pub streams: crate::dashboard::live::Streams,
    /// Who may operate which guild, as Discord said within the last minute.
    pub operator_cache: crate::dashboard::ops::OperatorCache,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("repo", &self.repo).field("discord", &self.roles.is_some()).finish()
    }
}
