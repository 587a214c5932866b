//! Docobo: paid community access on Discord.
//!
//! This facade re-exports the pure core ([`core`]) and the adapters ([`adapters`]) so an embedding
//! bot needs one dependency. The top-level `examples/`, `tests/` and `benches/` belong to it.

pub use docobo_adapters as adapters;
pub use docobo_core as core;
