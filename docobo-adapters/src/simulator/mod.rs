//! Local fakes of the services Docobo talks to, on 127.0.0.1, for tests, `docobo demo` and
//! benches (feature `simulator`). Nothing here reaches the internet.
//!
//! - [`polar::FakePolar`]: the two Polar API routes Docobo calls.
//! - [`sellapp::FakeSellapp`]: the Sell.app order reads a deferred delivery needs.
//! - [`discord::FakeDiscord`]: the Discord REST routes the role gateway and the bot call.
//! - [`gateway::FakeGateway`]: the Discord gateway (websocket) for serenity's client.
//!
//! The fake Discord's guild channels and webhooks (for the relay) live in `channels`.

mod channels;
pub mod discord;
pub mod gateway;
mod http;
mod oauth;
pub mod polar;
pub mod sellapp;

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 10 ms until it holds, for at most `within`; the error names `what`. How
/// tests, the demo and the examples wait for background work instead of sleeping a fixed time.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("not within {} ms: {what}", within.as_millis()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
