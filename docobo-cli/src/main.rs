//! `docobo`: will be the command line for migrating, configuring, inspecting and replaying (the
//! operability issue). It has no commands yet and says so.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("docobo {}: no commands are built yet; see README.md", env!("CARGO_PKG_VERSION"));
    ExitCode::FAILURE
}
