//! `docobo-server`: configuration → adapters → HTTP.
//!
//! [`Application::build`] (or [`Application::builder`], to add a clock or providers) is the one
//! door: `main` (through [`serve`]), every server test, the benches and `docobo demo` start
//! Docobo through it. It opens the database and brings its schema
//! up to date, so the embedded default (a SQLite file next to the process) works with no set-up
//! at all, builds the adapters, and binds the address; [`Application::run_until`] then serves.

pub mod admin;
pub mod config;
pub mod dashboard;
pub mod guard;
pub mod heartbeats;
pub mod http;
pub mod interactions;
pub mod metrics;
pub mod rate_limit;
pub mod relay_stats;
pub mod respond;
pub mod state;
pub mod throttle;
pub mod webhooks;
pub mod workers;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use docobo_adapters::discord::attachments::AttachmentStore;
use docobo_adapters::discord::bot::Bot;
use docobo_adapters::discord::relay::DiscordMirrors;
use docobo_adapters::discord::{DiscordRoles, rest_client};
use docobo_adapters::polar::Polar;
use docobo_adapters::seaorm::{ConnectError, SeaOrmRepo};
use docobo_adapters::sellapp::Sellapp;
use docobo_adapters::sepay::Sepay;
use docobo_core::domain::Secret;
use docobo_core::ports::MirrorGateway;
use docobo_core::ports::{Clock, PaymentProvider, ProviderRegistry, RoleGateway, SystemClock};
use poem::Server;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};

pub use config::{Config, ConfigError};

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Database(#[from] ConnectError),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
}

/// The server, built and bound, ready to run (zero2prod's `Application`).
pub struct Application {
    state: Arc<state::AppState>,
    acceptor: TcpAcceptor,
    address: SocketAddr,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("address", &self.address).field("state", &self.state).finish()
    }
}

/// An [`Application`] being put together: [`Application::builder`], then `build`.
pub struct Builder {
    config: Config,
    clock: Arc<dyn Clock>,
    providers: ProviderRegistry,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder").field("providers", &self.providers).finish_non_exhaustive()
    }
}

impl Builder {
    /// The clock that webhooks, interactions, the admin API and the workers read (the system
    /// clock by default): tests pass a `ManualClock` to move time instead of sleeping.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Runs `provider` too, under its own name (`/webhooks/{name}/{guild}`, replay, `/join`,
    /// `/setup`), replacing a built-in one of the same name. Polar, SePay and Sell.app are built
    /// in.
    #[must_use]
    pub fn provider(mut self, provider: Arc<dyn PaymentProvider>) -> Self {
        self.providers = self.providers.with(provider);
        self
    }

    /// Opens and migrates the database, builds the adapters and binds `config.listen` (port 0
    /// picks a free one).
    pub async fn build(self) -> Result<Application, ServerError> {
        let state = prepare(&self.config, self.clock, self.providers).await?;
        let acceptor = bind(self.config.listen).await?;
        let address = local_addr(&acceptor).unwrap_or(self.config.listen);
        Ok(Application { state, acceptor, address })
    }
}

impl Application {
    /// The application `config` describes, with the system clock and the built-in providers.
    pub async fn build(config: Config) -> Result<Self, ServerError> {
        Self::builder(config).build().await
    }

    /// Starts an application from `config` with more than the configuration says: a clock, the
    /// embedder's own providers.
    pub fn builder(config: Config) -> Builder {
        let polar = Polar::new(config.polar_api_url.clone());
        let sellapp = Sellapp::new(config.sellapp_api_url.clone());
        let providers =
            ProviderRegistry::new().with(Arc::new(polar)).with(Arc::new(Sepay)).with(Arc::new(sellapp));
        Builder { config, clock: Arc::new(SystemClock), providers }
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://` and the address.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// What the handlers share: the repository, the bot, the metrics.
    pub fn state(&self) -> &Arc<state::AppState> {
        &self.state
    }

    /// Starts the workers and serves until `shutdown` resolves, then stops accepting, gives
    /// in-flight requests up to 10 s to finish, and lets the workers settle their current batch.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServerError> {
        run(self.state, self.acceptor, shutdown).await
    }
}

/// Opens and migrates the database, and builds the shared state.
async fn prepare(
    config: &Config,
    clock: Arc<dyn Clock>,
    providers: ProviderRegistry,
) -> Result<Arc<state::AppState>, ServerError> {
    let repo = SeaOrmRepo::connect_rotating(
        &config.database_url,
        config.secret_key.as_ref().map(Secret::expose),
        config.secret_key_old.as_ref().map(Secret::expose),
    )
    .await?;
    repo.migrate().await?;
    // Before listening, so that a replica restarted under load does not spend its first
    // second reading catalogs and preparing statements; a failure only costs that second.
    match repo.warm().await {
        Ok(kept) => tracing::info!(catalogs = kept, "warmed the catalogs the first webhooks need"),
        Err(e) => tracing::warn!(error = %e, "could not warm the catalogs; the first webhooks read them"),
    }
    let discord = config.discord_bot_token.as_ref().map(|token| {
        DiscordRoles::new(token.expose(), &config.discord_api_url)
            .with_global_rate(config.discord_rate)
            .with_timeout(config.discord_timeout)
    });
    let metrics = Arc::new(metrics::Metrics::new()?);
    let heartbeats = Arc::new(heartbeats::Heartbeats::new(SystemClock.now(), config.discord_timeout));
    let roles = discord.clone().map(|d| {
        let metered = metrics::Metered {
            inner: Arc::new(d),
            metrics: metrics.clone(),
            heartbeats: Some(heartbeats.clone()),
        };
        Arc::new(metered) as Arc<dyn RoleGateway>
    });
    let discord_http = discord
        .as_ref()
        .map_or_else(|| Arc::new(rest_client("", &config.discord_api_url)), DiscordRoles::http);
    let bot = Bot::new(Arc::new(repo.clone()), roles.clone(), providers.clone(), &config.public_url);
    let attachments = AttachmentStore::new(&config.data_dir);
    Ok(Arc::new(state::AppState {
        clock,
        admin_token: config.admin_token.clone(),
        metrics,
        heartbeats,
        job_lease: docobo_core::service::lease_and_batch(config.discord_timeout),
        mirror_lease: docobo_core::service::mirror_lease(config.discord_timeout),
        limits: config.client_limits,
        event_retention: config.event_retention,
        in_flight: Arc::new(tokio::sync::Semaphore::new(http::MAX_IN_FLIGHT)),
        webhooks_in_flight: Arc::new(tokio::sync::Semaphore::new(config.webhooks_in_flight)),
        auth_failures: throttle::AuthThrottle::default(),
        rate_limit: config.rate_limit.map(rate_limit::PerIp::new),
        repo,
        roles,
        notice_interval: config.notice_interval,
        dms: discord.clone().map(|d| Arc::new(d) as Arc<dyn docobo_core::ports::DirectMessages>),
        interactions: config
            .discord_public_key
            .as_deref()
            .and_then(docobo_adapters::discord::interactions::verifier),
        providers,
        bot,
        discord_http,
        sellapp: Sellapp::new(config.sellapp_api_url.clone()),
        gateway: config
            .discord_bot_token
            .clone()
            .filter(|_| config.gateway)
            .map(|token| (token, config.discord_api_url.clone())),
        mirrors: discord
            .clone()
            .map(|d| Arc::new(DiscordMirrors::new(d, attachments.clone())) as Arc<dyn MirrorGateway>),
        attachments,
        relay_stats: Arc::default(),
        login: match (&config.discord_client_id, &config.discord_client_secret) {
            (Some(id), Some(secret)) => Some(docobo_adapters::discord::login::DiscordLogin::new(
                id,
                secret.clone(),
                &config.discord_api_url,
                &config.public_url,
            )),
            _ => None,
        },
        public_url: config.public_url.clone(),
        discord: discord.clone(),
        operators: config.operators.clone(),
        operator_cache: Default::default(),
        signal_feed: Default::default(),
        streams: Default::default(),
        summaries: Default::default(),
    }))
}

/// Binds `addr` (port 0 picks a free one); the acceptor knows the address it got.
async fn bind(addr: SocketAddr) -> Result<TcpAcceptor, ServerError> {
    TcpListener::bind(addr.to_string())
        .into_acceptor()
        .await
        .map_err(|source| ServerError::Listen { addr, source })
}

/// The address an acceptor is listening on.
fn local_addr(acceptor: &TcpAcceptor) -> Option<SocketAddr> {
    acceptor.local_addr().iter().find_map(|a| a.as_socket_addr().copied())
}

/// See [`Application::run_until`].
async fn run(
    state: Arc<state::AppState>,
    acceptor: TcpAcceptor,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let addr = local_addr(&acceptor).unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let clock = state.clock.clone();
    let mut workers = vec![tokio::spawn(workers::expirer(
        state.repo.clone(),
        state.heartbeats.clone(),
        clock.clone(),
        stopped.clone(),
    ))];
    let resolver =
        workers::resolver(state.repo.clone(), state.providers.clone(), clock.clone(), stopped.clone());
    workers.push(tokio::spawn(resolver));
    let journal = workers::journal(state.repo.clone(), state.sellapp.clone(), clock.clone(), stopped.clone());
    workers.push(tokio::spawn(journal));
    if let Some(retention) = state.event_retention {
        workers.push(tokio::spawn(workers::pruner(
            state.repo.clone(),
            retention,
            clock.clone(),
            stopped.clone(),
        )));
    }
    if let Some(roles) = &state.roles {
        workers.push(tokio::spawn(workers::role_worker(
            state.repo.clone(),
            roles.clone(),
            state.metrics.clone(),
            state.heartbeats.clone(),
            state.job_lease,
            clock.clone(),
            stopped.clone(),
        )));
        let reconciler =
            workers::reconciler(state.repo.clone(), roles.clone(), clock.clone(), stopped.clone());
        workers.push(tokio::spawn(reconciler));
    }
    if let Some(dms) = &state.dms {
        let notifier = workers::notifier(state.clone(), dms.clone(), clock.clone(), stopped.clone());
        workers.push(tokio::spawn(notifier));
    }
    if let Some(mirrors) = &state.mirrors {
        let relay = workers::relay_worker(state.clone(), mirrors.clone(), clock.clone(), stopped.clone());
        workers.push(tokio::spawn(relay));
    }
    if state.login.is_some() {
        let state = state.clone();
        let (clock, stopped) = (clock.clone(), stopped.clone());
        workers.push(tokio::spawn(async move { state.signal_feed.run(&state.repo, &*clock, stopped).await }));
    }
    if state.gateway.is_some() {
        workers.push(tokio::spawn(workers::gateway(state.clone(), clock, stopped)));
    }
    // Live dashboard streams never end by themselves: end them as shutdown begins, so that the
    // graceful shutdown waits for requests in flight, not for open browser tabs.
    let streams = state.clone();
    let shutdown = async move {
        shutdown.await;
        streams.streams.close();
    };
    let served = Server::new_with_acceptor(guard::GuardedAcceptor::new(acceptor, state.limits))
        .run_with_graceful_shutdown(http::app(state), shutdown, Some(Duration::from_secs(10)))
        .await
        .map_err(|source| ServerError::Listen { addr, source });
    let _ = stop.send(true);
    for worker in workers {
        let _ = tokio::time::timeout(Duration::from_secs(15), worker).await;
    }
    served
}

/// Builds the [`Application`], announces its address on stdout, and serves until `shutdown`
/// resolves: what the binary does.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServerError> {
    let app = Application::build(config).await?;
    println!("docobo-server listening on {}", app.base_url());
    app.run_until(shutdown).await
}
