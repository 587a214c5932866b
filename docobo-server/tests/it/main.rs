//! The server in process, one test binary: each test starts the real HTTP server and workers
//! through `Application::build` on 127.0.0.1:0 with a database of its own, against the fake
//! Discord and Polar on loopback (`common`).

mod admin;
mod bot;
mod browser;
mod catalog;
mod common;
mod dashboard;
mod hardening;
mod interactions;
mod notices;
mod ops_pages;
mod relay;
mod sellapp;
mod signals;
mod webhooks;
