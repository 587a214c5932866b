//! The `docobo-server` binary started as an operator would, one test binary: configuration and
//! signals (`server`), secrets never in the logs (`secrets`), and the fault tests that kill it
//! or cut its database mid-burst (`faults`).

mod faults;
mod relay;
mod secrets;
mod server;

use std::io::{BufRead, BufReader};
use std::process::Child;

/// Reads the line the server prints once it listens and returns its base URL (`http://…`).
fn announced(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("reads");
    let base = line.trim().strip_prefix("docobo-server listening on ").unwrap_or_default().to_owned();
    assert!(base.starts_with("http://"), "unexpected first line {line:?}");
    base
}
