//! Docobo's adapters: the ports of `docobo-core` implemented over real technology, one folder per
//! technology behind a cargo feature — `polar/`, `sepay/`, `sellapp/` (payment providers),
//! `discord/` (serenity) and `seaorm/` (SQLite and PostgreSQL) — plus `workers` (the loops an
//! application runs) and `simulator/` (local fakes of the outside world).

#[cfg(feature = "seaorm")]
pub mod seaorm;

#[cfg(feature = "discord")]
pub mod discord;
#[cfg(any(feature = "discord", feature = "simulator"))]
mod form;
#[cfg(feature = "polar")]
pub mod polar;
#[cfg(feature = "sellapp")]
pub mod sellapp;
#[cfg(feature = "sepay")]
pub mod sepay;
#[cfg(feature = "simulator")]
pub mod simulator;
#[cfg(feature = "seaorm")]
pub mod workers;
