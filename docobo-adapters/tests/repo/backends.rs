//! The backends under test, each fresh and migrated.

use std::sync::atomic::{AtomicU32, Ordering};

use docobo_adapters::seaorm::{LeaseClock, SeaOrmRepo};
use docobo_core::testing::MemoryRepo;

/// A fixed test key: 32 bytes, base64.
pub const SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub async fn memory() -> Option<MemoryRepo> {
    Some(MemoryRepo::new())
}

async fn migrated(url: &str) -> SeaOrmRepo {
    // The contract moves time by hand, so leases follow the caller's clock here too.
    let repo = SeaOrmRepo::connect(url, Some(SECRET_KEY))
        .await
        .expect("connects")
        .with_lease_clock(LeaseClock::Caller);
    repo.migrate().await.expect("migrates");
    repo
}

pub async fn sqlite_memory() -> Option<SeaOrmRepo> {
    Some(migrated("sqlite::memory:").await)
}

/// A file database in a fresh temporary directory (removed when the process ends is not
/// guaranteed; the directory is under the system temp dir).
pub async fn sqlite_file() -> Option<SeaOrmRepo> {
    Some(migrated(&format!("sqlite://{}?mode=rwc", temp_path("db").display())).await)
}

pub fn temp_path(ext: &str) -> std::path::PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!("docobo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(format!("{}.{ext}", NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// `DOCOBO_TEST_POSTGRES_URL`, or `None` (with a notice) when it is not set.
pub fn postgres_url() -> Option<String> {
    match std::env::var("DOCOBO_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "DOCOBO_TEST_POSTGRES_URL is not set: PostgreSQL case not run (.ci/run always sets it)"
            );
            None
        }
    }
}

/// A migrated PostgreSQL repository in a schema of its own, so tests never see each other's rows.
pub async fn postgres() -> Option<SeaOrmRepo> {
    let url = postgres_url()?;
    Some(migrated(&fresh_schema_url(&url).await).await)
}

/// Creates an empty schema and returns a URL whose connections use it.
pub async fn fresh_schema_url(url: &str) -> String {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let pid = std::process::id();
    let schema = format!("docobo_t{pid}_{}_{}", NEXT.fetch_add(1, Ordering::Relaxed), nanos());
    let admin =
        Database::connect(url).await.expect("PostgreSQL at DOCOBO_TEST_POSTGRES_URL must be reachable");
    let mut first = false;
    SWEPT.call_once(|| first = true);
    if first {
        // Drop the schemas earlier runs left behind (cargo runs test binaries one at a time),
        // each in its own transaction: one transaction over hundreds of schemas runs out of
        // PostgreSQL's lock table.
        let left = format!(
            "SELECT schema_name FROM information_schema.schemata \
             WHERE schema_name ~ '^docobo_t[0-9]+_' AND schema_name !~ '^docobo_t{pid}_'"
        );
        let rows =
            admin.query_all_raw(Statement::from_string(DbBackend::Postgres, left)).await.expect("lists");
        for row in rows {
            let old: String = row.try_get("", "schema_name").expect("a name");
            admin
                .execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{old}\" CASCADE"))
                .await
                .expect("sweeps");
        }
    }
    admin.execute_unprepared(&format!("CREATE SCHEMA {schema}")).await.expect("creates schema");
    admin.close().await.expect("closes");
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

fn nanos() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
}
