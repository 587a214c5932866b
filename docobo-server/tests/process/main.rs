//! The `docobo-server` binary started as an operator would, one test binary: configuration and
//! signals (`server`), secrets never in the logs (`secrets`), and the fault tests that kill it
//! or cut its database mid-burst (`faults`).

mod faults;
mod relay;
mod secrets;
mod server;
