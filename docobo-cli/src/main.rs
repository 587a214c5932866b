//! `docobo`: the command line. Each command loads what it needs, calls an adapter or a use case,
//! and prints the result. Exit codes: 0 success, 2 usage error (clap), 1 any other failure, with
//! the reason on stderr.
//!
//! Only `migrate` exists so far; the configuring, inspecting and replaying commands of the
//! external contract arrive with the payments and operability issues.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use docobo_adapters::seaorm::SeaOrmRepo;

#[derive(Debug, Parser)]
#[command(name = "docobo", version, about = "Paid community access on Discord")]
struct Cli {
    /// The database: a SQLite file (the default) or postgres://user@host/db.
    #[arg(long, global = true, env = "DOCOBO_DATABASE_URL", default_value = "sqlite://docobo.db?mode=rwc")]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the database schema, or bring an older one up to date. Safe to run repeatedly.
    Migrate,
}

async fn run(cli: Cli) -> Result<String, Box<dyn std::error::Error>> {
    match cli.command {
        Command::Migrate => {
            let repo = SeaOrmRepo::connect(&cli.database_url, None).await?;
            repo.migrate().await?;
            Ok(format!("database is up to date ({})", redact(&cli.database_url)))
        }
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("docobo: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("docobo: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("postgres://app:hunter2@db:5432/docobo"), "postgres://app:***@db:5432/docobo");
        assert_eq!(redact("sqlite://docobo.db?mode=rwc"), "sqlite://docobo.db?mode=rwc");
    }
}
