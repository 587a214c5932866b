//! Shared by the benches that start the real server: a fresh database per run, and percentiles
//! printed one line per measurement. Each bench uses part of it.

#![allow(dead_code)]

use std::time::Duration;

use sea_orm::ConnectionTrait;

/// The `p` quantile (0–1) of `sorted`, nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Prints `name` with the count, p50, p95, p99 and maximum of `samples`.
pub fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<30} n={:<5} p50={:>7.2} ms  p95={:>7.2} ms  p99={:>7.2} ms  max={:>7.2} ms",
        samples.len(),
        ms(percentile(&samples, 0.50)),
        ms(percentile(&samples, 0.95)),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().unwrap_or(&Duration::ZERO)),
    );
}

/// A fresh database named `name`: a SQLite file in a temporary directory, or a new schema
/// `docobo_{name}` on the PostgreSQL at `postgres` (dropped first if an earlier run left it).
pub async fn fresh_database(postgres: Option<&str>, name: &str) -> String {
    match postgres {
        None => {
            let dir = std::env::temp_dir().join(format!("docobo-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("dir");
            format!("sqlite://{}?mode=rwc", dir.join(format!("{name}.db")).display())
        }
        Some(url) => {
            let admin = sea_orm::Database::connect(url).await.expect("PostgreSQL reachable");
            let schema = format!("docobo_{name}");
            admin.execute_unprepared(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await.expect("drop");
            admin.execute_unprepared(&format!("CREATE SCHEMA {schema}")).await.expect("create");
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}options=-c%20search_path%3D{schema}")
        }
    }
}
