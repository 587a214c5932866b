//! Local fakes of the services Docobo talks to, on 127.0.0.1, for tests, `docobo demo` and
//! benches (feature `simulator`). Nothing here reaches the internet.
//!
//! - [`polar::FakePolar`]: the two Polar API routes Docobo calls.
//! - [`discord::FakeDiscord`]: the Discord REST routes the role gateway and the bot call.
//! - [`gateway::FakeGateway`]: the Discord gateway (websocket) for serenity's client.

pub mod discord;
pub mod gateway;
mod http;
pub mod polar;
