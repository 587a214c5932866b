//! `docobo-server`: will wire configuration, adapters and use cases into the HTTP server and the
//! background workers (the server issue). It has nothing to serve yet and says so.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("docobo-server {}: the HTTP server is not built yet; see README.md", env!("CARGO_PKG_VERSION"));
    ExitCode::FAILURE
}
