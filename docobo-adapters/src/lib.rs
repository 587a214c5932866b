//! Docobo's adapters: the ports of `docobo-core` implemented over real technology, one folder per
//! technology behind a cargo feature — `polar/`, `sepay/`, `discord/` (serenity) and `seaorm/`
//! (SQLite and PostgreSQL).
//!
//! None is implemented yet: they arrive with the persistence, payments and Discord issues. Until
//! then `docobo_core::testing` provides in-memory implementations of every port.

#[cfg(feature = "seaorm")]
pub mod seaorm;

#[cfg(feature = "discord")]
pub mod discord;
#[cfg(feature = "polar")]
pub mod polar;
#[cfg(feature = "sepay")]
pub mod sepay;
#[cfg(feature = "simulator")]
pub mod simulator;
#[cfg(feature = "seaorm")]
pub mod workers;
