//! `docobo`: the command line. `main` parses, opens the database, runs one command and maps the
//! result to an exit code: 0 success, 2 usage error (clap, or a flag combination that cannot
//! work), 1 any other failure, with the reason on stderr.

mod args;
mod check;
mod commands;
mod demo;
mod demo_relay;
mod error;
mod manage;
mod output;
mod relay;
mod repo;

use std::process::ExitCode;

use clap::Parser;

use args::Cli;
use error::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("docobo: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("docobo: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Other(message)) => {
            eprintln!("docobo: {message}");
            ExitCode::FAILURE
        }
    }
}
