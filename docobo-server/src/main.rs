//! `docobo-server`: load the configuration, then serve until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use docobo_server::{Config, serve};

/// Resolves on SIGTERM or Ctrl-C. The SIGTERM handler is installed when this is called, not when
/// the future is first polled, so a SIGTERM that arrives right after start-up is a clean stop too.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async move {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! { () = ctrl_c => {}, () = term => {} }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // Logs go to stderr (stdout carries the address line); DOCOBO_LOG_FORMAT=json gives one
    // JSON object per line, for log collectors.
    if std::env::var("DOCOBO_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().init();
    } else {
        logs.init();
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("docobo-server: {e}");
            return ExitCode::from(2);
        }
    };
    match serve(config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docobo-server: {e}");
            ExitCode::FAILURE
        }
    }
}
