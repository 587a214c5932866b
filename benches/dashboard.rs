//! Dashboard pages at size: `/me` and `/ops/{guild}` rendered by the real server for a guild
//! with [`MEMBERS`] members' purchases and [`EVENTS`] stored webhook events (1% of them in the
//! failure inbox), on a fresh SQLite database (or PostgreSQL with `DOCOBO_BENCH_POSTGRES_URL`).
//! Each page is requested [`N`] times one after another; the time is measured at the client on
//! loopback, so it is the server's time plus a loopback round trip. `cargo bench --bench
//! dashboard` (goal: p95 ≤ 20 ms).

mod support;

use std::time::{Duration, Instant};

use docobo::adapters::seaorm::entities::webhook_event;
use docobo::core::domain::{
    Currency, Guild, GuildId, Money, PaidRole, RoleId, RoleJobKey, Secret, Term, UserId,
};
use docobo::core::ports::{CatalogRepo, Ledger, SessionRepo};
use docobo::core::service::session_id;
use docobo::core::testing::purchase;
use docobo_server::{Application, Config};
use sea_orm::{ActiveValue::Set, EntityTrait};

const MEMBERS: u64 = 10_000;
const EVENTS: i64 = 100_000;
const N: usize = 200;
/// Requests of the overview each right after a change.
const COLD: usize = 50;
const GUILD: u64 = 987_654_321_098_765_432;
const ROLE: u64 = 700_000_000_000_000_007;
const OPERATOR: u64 = 123_456_789_012_345_678;

#[tokio::main]
async fn main() {
    let postgres = std::env::var("DOCOBO_BENCH_POSTGRES_URL").ok();
    let db = postgres.as_deref().map_or("sqlite", |_| "postgres");
    let operator = UserId::new(OPERATOR).expect("id");
    let config = Config {
        database_url: support::fresh_database(postgres.as_deref(), "dashboard").await,
        listen: "127.0.0.1:0".parse().expect("address"),
        discord_client_id: Some("900000000000000001".to_owned()),
        discord_client_secret: Some(Secret::new("bench-client-secret")),
        operators: vec![operator],
        // One client asks for 600 pages in a row: the per-IP limit would answer 429.
        rate_limit: None,
        ..Config::default()
    };
    let app = Application::build(config).await.expect("builds");
    let repo = app.state().repo.clone();
    let guild = GuildId::new(GUILD).expect("id");
    let role = RoleId::new(ROLE).expect("id");
    repo.put_guild(&Guild::new(guild, "Bench server")).await.expect("guild");
    let price = Money::parse("5", Currency::Usd).expect("price");
    repo.put_paid_role(&PaidRole::new(guild, role, "VIP", price, Term::Recurring).expect("role"))
        .await
        .expect("role");

    let seeding = Instant::now();
    let now = time::OffsetDateTime::now_utc();
    let members: Vec<u64> = (0..MEMBERS).map(|i| OPERATOR + i).collect();
    for chunk in members.chunks(64) {
        let commits = chunk.iter().map(|user| {
            let key = RoleJobKey { guild, user: UserId::new(*user).expect("id"), role };
            repo.commit(purchase(
                key,
                &format!("sub_{user}"),
                Term::Recurring,
                Some(now + time::Duration::days(20)),
                now,
            ))
        });
        for done in futures_util::future::join_all(commits).await {
            done.expect("commit");
        }
    }
    let rows: Vec<webhook_event::ActiveModel> = (0..EVENTS)
        .map(|i| webhook_event::ActiveModel {
            id: Default::default(),
            provider: Set("polar".to_owned()),
            guild_id: Set(i64::try_from(GUILD).expect("fits")),
            external_id: Set(format!("evt_{i}")),
            body: Set(b"{}".to_vec()),
            received_at: Set(now.unix_timestamp() * 1_000_000 + i),
            outcome: Set(if i % 100 == 0 { "failed" } else { "processed" }.to_owned()),
            attempts: Set(1),
            last_error: Set((i % 100 == 0).then(|| "no member".to_owned())),
            retry_at: Set(None),
        })
        .collect();
    for batch in rows.chunks(1_000) {
        webhook_event::Entity::insert_many(batch.to_vec()).exec(repo.connection()).await.expect("events");
    }
    let token = "bench-session-token";
    let session = docobo::core::domain::Session {
        id: session_id(token),
        user: operator,
        name: "Operator".to_owned(),
        csrf: "csrf".to_owned(),
        created_at: now,
        expires_at: now + time::Duration::days(1),
    };
    repo.put_session(&session).await.expect("session");
    println!(
        "seeded {MEMBERS} purchases and {EVENTS} events on {db} in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    // Where /ops spends its time: the summary reads and folds every purchase of the guild.
    let started = Instant::now();
    docobo::core::service::guild_summary(&repo, guild, now).await.expect("summary");
    println!("guild_summary alone: {:.2} ms", started.elapsed().as_secs_f64() * 1e3);
    let base = app.base_url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let cookie = format!("__Host-docobo_session={token}");
    let pages = [
        ("/me", "/me".to_owned()),
        ("/ops/{guild}", format!("/ops/{GUILD}")),
        ("/ops/{guild}/events", format!("/ops/{GUILD}/events")),
        ("/ops/{guild}/jobs", format!("/ops/{GUILD}/jobs")),
    ];
    for (name, path) in pages {
        let mut samples: Vec<Duration> = Vec::with_capacity(N);
        for _ in 0..N {
            let sent = Instant::now();
            let response =
                http.get(format!("{base}{path}")).header("cookie", &cookie).send().await.expect("request");
            let status = response.status();
            let body = response.bytes().await.expect("body");
            samples.push(sent.elapsed());
            assert!(status.is_success() && !body.is_empty(), "{path}: {status}");
        }
        support::report(&format!("{name} ({db})"), samples);
    }
    // The overview right after a purchase changed the guild: its kept summary no longer holds,
    // so each request folds every purchase again.
    let mut samples: Vec<Duration> = Vec::with_capacity(COLD);
    for n in 0..COLD as u64 {
        let key = RoleJobKey { guild, user: UserId::new(9_000_000 + n).expect("id"), role };
        let commit =
            purchase(key, &format!("late_{n}"), Term::Recurring, Some(now + time::Duration::days(20)), now);
        repo.commit(commit).await.expect("commit");
        let sent = Instant::now();
        let response =
            http.get(format!("{base}/ops/{GUILD}")).header("cookie", &cookie).send().await.expect("request");
        let status = response.status();
        response.bytes().await.expect("body");
        samples.push(sent.elapsed());
        assert!(status.is_success());
    }
    support::report(&format!("/ops/{{guild}} after a change ({db})"), samples);
    let _ = stop.send(());
}
