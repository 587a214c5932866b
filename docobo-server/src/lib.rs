//! `docobo-server`: configuration → adapters → HTTP. The binary only calls [`serve`].
//!
//! On start it opens the database and brings its schema up to date, so the embedded default
//! (a SQLite file next to the process) works with no set-up at all.

pub mod config;
pub mod http;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use docobo_adapters::seaorm::{ConnectError, SeaOrmRepo};
use docobo_core::domain::Secret;
use poem::Server;
use poem::listener::{Acceptor, Listener, TcpListener};

pub use config::{Config, ConfigError};

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Database(#[from] ConnectError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
}

/// Migrates, binds, announces the address on stdout, and serves until `shutdown` resolves; then
/// stops accepting and gives in-flight requests up to 10 s to finish.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServerError> {
    let repo =
        SeaOrmRepo::connect(&config.database_url, config.secret_key.as_ref().map(Secret::expose)).await?;
    repo.migrate().await?;
    let state = Arc::new(http::AppState { repo, discord_configured: config.discord_bot_token.is_some() });
    let acceptor = TcpListener::bind(config.listen.to_string())
        .into_acceptor()
        .await
        .map_err(|source| ServerError::Listen { addr: config.listen, source })?;
    for addr in acceptor.local_addr().iter().filter_map(|a| a.as_socket_addr()) {
        println!("docobo-server listening on http://{addr}");
    }
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(http::app(state), shutdown, Some(Duration::from_secs(10)))
        .await
        .map_err(|source| ServerError::Listen { addr: config.listen, source })
}
