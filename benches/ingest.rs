//! What ingesting one webhook costs next to the physical floor: a bare one-row durable insert on
//! the same database. Ingest = read the guild's catalog (kept in memory: one revision read),
//! authenticate, parse, read the entitlement, and commit event + entitlement + role job in one
//! transaction (DESIGN §6 target: ≤ 2×).
//!
//! `cargo bench --bench ingest` runs SQLite (a WAL file with synchronous=FULL, the embedded
//! default) and, when `DOCOBO_TEST_POSTGRES_URL` is set, PostgreSQL. Compare the `bare_insert`
//! and `ingest` lines of each database; `guild_then_credentials` and `guild_and_credentials` time
//! what the catalog read was before it was kept (two statements, then one `LEFT JOIN`, and the
//! roles after them), `catalog_kept` what it is now.

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use docobo::adapters::seaorm::SeaOrmRepo;
use docobo::core::domain::{
    Currency, Guild, GuildId, Money, PaidRole, ProductLink, ProviderName, RoleId, Secret, Term,
};
use docobo::core::ports::{CatalogRepo, ProviderCredentials};
use docobo::core::service::ingest_webhook;
use docobo::core::testing::{ManualClock, ToyProvider};
use sea_orm::{ConnectionTrait, DbBackend};
use time::macros::datetime;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const SECRET: &str = "bench-secret";

async fn prepared(url: &str) -> SeaOrmRepo {
    let repo = SeaOrmRepo::connect(url, Some(KEY)).await.expect("connects");
    repo.migrate().await.expect("migrates");
    let guild = GuildId::new(1).expect("id");
    let role = RoleId::new(2).expect("id");
    repo.put_guild(&Guild::new(guild, "bench")).await.expect("guild");
    let price = Money::parse("5", Currency::Usd).expect("price");
    let mut vip = PaidRole::new(guild, role, "VIP", price, Term::Recurring).expect("role");
    vip.link(ProductLink::product(ProviderName::POLAR, "prod"));
    repo.put_paid_role(&vip).await.expect("role");
    repo.put_credentials(guild, ProviderName::POLAR, &ProviderCredentials::new(Secret::new(SECRET)))
        .await
        .expect("creds");
    let bare = match repo.backend() {
        DbBackend::Postgres => {
            "CREATE TABLE IF NOT EXISTS bench_bare (id BIGSERIAL PRIMARY KEY, body BYTEA NOT NULL)"
        }
        _ => {
            "CREATE TABLE IF NOT EXISTS bench_bare (id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL)"
        }
    };
    repo.connection().execute_unprepared(bare).await.expect("bare table");
    repo
}

fn bench_database(c: &mut Criterion, name: &str, url: &str) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let repo = rt.block_on(prepared(url));
    let clock = ManualClock::new(datetime!(2026-11-01 00:00 UTC));
    let provider = ToyProvider::named(ProviderName::POLAR);
    let next = AtomicU64::new(0);
    let body_of = |n: u64| {
        format!(
            "id=evt_{n}\nkind=payment_succeeded\nref=sub_{n}\nversion=1793577600\nuser={}\nproduct=prod\n",
            1_000 + n
        )
    };
    let insert = match repo.backend() {
        DbBackend::Postgres => "INSERT INTO bench_bare (body) VALUES ($1)",
        _ => "INSERT INTO bench_bare (body) VALUES (?)",
    };

    let mut group = c.benchmark_group(name);
    group.bench_function("bare_insert", |b| {
        b.to_async(&rt).iter(|| async {
            let body = body_of(next.fetch_add(1, Ordering::Relaxed)).into_bytes();
            let stmt = sea_orm::Statement::from_sql_and_values(repo.backend(), insert, [body.into()]);
            repo.connection().execute_raw(stmt).await.expect("insert");
        })
    });
    // Ingest's first read, as two statements, as one, and as it is now.
    let guild = GuildId::new(1).expect("id");
    group.bench_function("guild_then_credentials", |b| {
        b.to_async(&rt).iter(|| async {
            repo.guild(guild).await.expect("guild");
            repo.credentials(guild, ProviderName::POLAR).await.expect("credentials");
        })
    });
    group.bench_function("guild_and_credentials", |b| {
        b.to_async(&rt)
            .iter(|| async { repo.guild_and_credentials(guild, ProviderName::POLAR).await.expect("read") })
    });
    group.bench_function("catalog_kept", |b| {
        b.to_async(&rt).iter(|| async { repo.catalog(guild, ProviderName::POLAR).await.expect("read") })
    });
    group.bench_function("ingest", |b| {
        b.to_async(&rt).iter(|| async {
            let body = body_of(next.fetch_add(1, Ordering::Relaxed));
            let headers = ToyProvider::headers(SECRET, body.as_bytes());
            let guild = GuildId::new(1).expect("id");
            ingest_webhook(&repo, &provider, &clock, guild, &headers, body.as_bytes()).await.expect("ingest");
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("docobo-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    bench_database(c, "sqlite", &format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()));
    match std::env::var("DOCOBO_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            let schema = rt.block_on(async {
                let admin = sea_orm::Database::connect(&url).await.expect("PostgreSQL reachable");
                let schema = format!("docobo_bench_{}", std::process::id());
                // Benches run alone: whatever an earlier, interrupted run left can go.
                let sweep = "DO $$ DECLARE s text; BEGIN FOR s IN SELECT schema_name \
                             FROM information_schema.schemata WHERE schema_name LIKE 'docobo\\_bench\\_%' \
                             LOOP EXECUTE 'DROP SCHEMA ' || quote_ident(s) || ' CASCADE'; END LOOP; END $$";
                admin.execute_unprepared(sweep).await.expect("sweep");
                admin.execute_unprepared(&format!("CREATE SCHEMA {schema}")).await.expect("create");
                schema
            });
            let sep = if url.contains('?') { '&' } else { '?' };
            bench_database(c, "postgres", &format!("{url}{sep}options=-c%20search_path%3D{schema}"));
        }
        _ => eprintln!("DOCOBO_TEST_POSTGRES_URL is not set: PostgreSQL not benchmarked"),
    }
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(ingest, benches);
criterion_main!(ingest);
