//! Webhook acknowledged → role request received at Discord, through the real server.
//!
//! Starts `docobo-server` in-process on 127.0.0.1:0 with a fresh SQLite file (or PostgreSQL when
//! `DOCOBO_BENCH_POSTGRES_URL` is set) and the fake Discord, then sends signed Polar
//! `subscription.active` webhooks for distinct members of one guild, 350 ms apart, and measures
//! (a) the HTTP acknowledgement and (b) the time from the acknowledgement to the `PUT …/roles/…`
//! arriving at the fake. Prints percentiles. `cargo bench --bench webhook_to_role` (DESIGN §6
//! target: p99 ≤ 50 ms).
//!
//! Then the same for Sell.app webhooks that name only an order (`N_SELLAPP` of them): each is
//! acknowledged at once and read from the fake Sell.app API afterwards, so (b) includes the
//! resolver's API read.
//!
//! The spacing matters: a role job makes three Discord requests (read, change, verify) and the
//! gateway paces one guild at 10 requests per second after a burst of 5, so back-to-back
//! purchases in one guild queue behind each other at ~300 ms each. That is the pacing working,
//! not the pipeline; 350 ms apart measures the pipeline.

mod support;

use std::time::{Duration, Instant};

use docobo::adapters::polar::signature;
use docobo::adapters::sellapp::Sellapp;
use docobo::adapters::simulator::discord::FakeDiscord;
use docobo::adapters::simulator::sellapp::FakeSellapp;
use docobo::core::domain::{
    Currency, Guild, GuildId, Money, PaidRole, ProductLink, ProviderName, RoleId, Secret, Term,
};
use docobo::core::ports::{CatalogRepo, ProviderCredentials};
use docobo_server::{Application, Config};

const N: usize = 100;
const N_SELLAPP: usize = 50;
const SELLAPP_SECRET: &str = "sellapp-bench-signing-secret-0123";
const SELLAPP_KEY: &str = "sellapp-bench-api-key";
const SPACING: Duration = Duration::from_millis(350);
const SECRET: &str = "whsec_bench_secret";
const GUILD: u64 = 987_654_321_098_765_432;
const ROLE: u64 = 700_000_000_000_000_007;
const PRODUCT: &str = "d1e2f3a4-0000-4000-8000-000000000002";

/// How long after `acked` the fake Discord received the `PUT` of `role` for `user` (at most 10 s).
async fn role_request_after(fake: &FakeDiscord, user: u64, role: u64, acked: Instant) -> Duration {
    let part = format!("/members/{user}/roles/{role}");
    let deadline = acked + Duration::from_secs(10);
    loop {
        if let Some(at) = fake.first_arrival("PUT", &part) {
            return at.saturating_duration_since(acked);
        }
        assert!(Instant::now() < deadline, "no role request for member {user}");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

#[tokio::main]
async fn main() {
    let fake = FakeDiscord::start(555_000_000_000_000_001).await.expect("fake discord");
    fake.add_guild(GUILD);
    fake.add_role(GUILD, ROLE, "VIP", 5);
    let dir = std::env::temp_dir().join(format!("docobo-w2r-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let database = std::env::var("DOCOBO_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()));
    let sellapp = FakeSellapp::start(SELLAPP_KEY).await.expect("fake sellapp");
    let config = Config {
        sellapp_api_url: sellapp.base_url.clone(),
        database_url: database.clone(),
        listen: "127.0.0.1:0".parse().expect("address"),
        secret_key: Some(Secret::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")),
        discord_bot_token: Some(Secret::new("fake-token")),
        discord_api_url: fake.base_url.clone(),
        ..Config::default()
    };
    let app = Application::build(config).await.expect("builds");
    let state = app.state().clone();
    let guild = GuildId::new(GUILD).expect("id");
    state.repo.put_guild(&Guild::new(guild, "bench")).await.expect("guild");
    let price = Money::parse("5", Currency::Usd).expect("price");
    let mut vip =
        PaidRole::new(guild, RoleId::new(ROLE).expect("id"), "VIP", price, Term::Recurring).expect("role");
    vip.link(ProductLink::product(ProviderName::POLAR, PRODUCT));
    state.repo.put_paid_role(&vip).await.expect("role");
    state
        .repo
        .put_credentials(guild, ProviderName::POLAR, &ProviderCredentials::new(Secret::new(SECRET)))
        .await
        .expect("creds");
    let mut store = ProviderCredentials::new(Secret::new(SELLAPP_SECRET));
    store.api_token = Some(Secret::new(SELLAPP_KEY));
    state.repo.put_credentials(guild, Sellapp::NAME, &store).await.expect("creds");
    let mut signals = vip.clone();
    signals.role = RoleId::new(ROLE + 1).expect("id");
    signals.term = Term::Fixed { days: 30 };
    signals.links = vec![ProductLink::product(Sellapp::NAME, "77").variant("301")];
    state.repo.put_paid_role(&signals).await.expect("role");
    fake.add_role(GUILD, ROLE + 1, "Signals", 4);
    let base = app.base_url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    let fixture =
        concat!(env!("CARGO_MANIFEST_DIR"), "/docobo-adapters/tests/fixtures/polar/subscription_active.json");
    let template: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture).expect("fixture")).expect("json");
    let client = reqwest::Client::new();
    let (mut acks, mut to_role) = (Vec::with_capacity(N), Vec::with_capacity(N));
    for i in 0..N {
        tokio::time::sleep(SPACING).await;
        let user = 100_000_000_000_000_000 + i as u64;
        fake.join(GUILD, user);
        let mut payload = template.clone();
        payload["data"]["id"] = serde_json::json!(format!("sub-{i}"));
        payload["data"]["metadata"]["discord_user_id"] = serde_json::json!(user.to_string());
        let body = serde_json::to_vec(&payload).expect("json");
        let id = format!("wh-{i}");
        let ts = time::OffsetDateTime::now_utc().unix_timestamp();
        let sent = Instant::now();
        let response = client
            .post(format!("{base}/webhooks/polar/{GUILD}"))
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature::sign(SECRET.as_bytes(), &id, ts, &body))
            .body(body)
            .send()
            .await
            .expect("request");
        let acked = Instant::now();
        assert!(response.status().is_success(), "{}", response.status());
        acks.push(acked - sent);
        to_role.push(role_request_after(&fake, user, ROLE, acked).await);
    }
    let (mut hint_acks, mut hint_to_role) = (Vec::with_capacity(N_SELLAPP), Vec::with_capacity(N_SELLAPP));
    for i in 0..N_SELLAPP {
        tokio::time::sleep(SPACING).await;
        let user = 200_000_000_000_000_000 + i as u64;
        fake.join(GUILD, user);
        let order = 5000 + i as u64;
        let paid = serde_json::json!({
            "id": order, "status": "COMPLETED",
            "line_items": [{ "id": 1, "product_id": 77, "product_variant_id": 301, "quantity": 1 }],
            "timeline": [{ "status": "COMPLETED", "set_at": "2026-11-10T12:00:00Z" }],
        });
        let answers = serde_json::json!([{ "additional_information": [{ "key": "discord_user_id", "value": user.to_string() }] }]);
        sellapp.put_order(order, paid, answers);
        let body = serde_json::json!({ "event": "order.completed", "data": { "id": order } }).to_string();
        let sent = Instant::now();
        let response = client
            .post(format!("{base}/webhooks/sellapp/{GUILD}"))
            .header("signature", docobo::adapters::sellapp::signature(SELLAPP_SECRET, body.as_bytes()))
            .body(body)
            .send()
            .await
            .expect("request");
        let acked = Instant::now();
        assert!(response.status().is_success(), "{}", response.status());
        hint_acks.push(acked - sent);
        hint_to_role.push(role_request_after(&fake, user, ROLE + 1, acked).await);
    }
    let db = database.split(':').next().unwrap_or("?");
    println!("webhook → role on {db} ({N} Polar webhooks, {} ms apart)", SPACING.as_millis());
    support::report("acknowledgement", acks);
    support::report("ack → role request", to_role);
    println!("Sell.app webhooks naming only the order ({N_SELLAPP}; read from the fake API after the ack)");
    support::report("acknowledgement", hint_acks);
    support::report("ack → role request", hint_to_role);
    let _ = stop.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(dir);
}
