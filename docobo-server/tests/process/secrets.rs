//! No secret reaches the logs in a full run: the `docobo-server` binary at `RUST_LOG=trace`,
//! every secret configured, a fake Discord, and real traffic — signed and forged webhooks from
//! both providers, a role granted on Discord, admin calls with good and bad tokens, a metrics
//! scrape — then SIGTERM. Every line it wrote is searched for every secret value.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use docobo_adapters::polar::signature;
use docobo_adapters::seaorm::SeaOrmRepo;
use docobo_adapters::simulator::discord::FakeDiscord;
use docobo_core::domain::*;
use docobo_core::ports::{CatalogRepo, CheckoutRepo, ProviderCredentials};
use time::OffsetDateTime;

const GUILD: u64 = 987_654_321_098_765_432;
const USER: u64 = 123_456_789_012_345_678;
const VIP: u64 = 700_000_000_000_000_007;
const BANK: u64 = 700_000_000_000_000_008;
const PRODUCT: &str = "d1e2f3a4-0000-4000-8000-000000000002";

const SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const BOT_TOKEN: &str = "MTIzNDU2.bot-token-SECRET.value";
const ADMIN_TOKEN: &str = "admin-token-SECRET-0123456789";
const POLAR_SECRET: &str = "whsec_ovyN6cPrTv56AApvzCaJno08SSmGJmgbWilb33N2JuK";
const POLAR_TOKEN: &str = "polar_oat_SECRET_access_token";
const SEPAY_KEY: &str = "sepay-api-key-SECRET-42-0123456789ab";
const WRONG: &str = "forged-SECRET-guess-9876543210";

async fn configured_database(url: &str) {
    let repo = SeaOrmRepo::connect(url, Some(SECRET_KEY)).await.expect("opens");
    repo.migrate().await.expect("migrates");
    let guild = GuildId::new(GUILD).expect("id");
    repo.put_guild(&Guild::new(guild, "Secrets")).await.expect("guild");
    let usd = Money::parse("5.00", Currency::Usd).expect("price");
    let mut vip =
        PaidRole::new(guild, RoleId::new(VIP).expect("id"), "VIP", usd, Term::Recurring).expect("role");
    vip.link(ProductLink::product(ProviderName::POLAR, PRODUCT));
    repo.put_paid_role(&vip).await.expect("role");
    let vnd = Money::parse("250000", Currency::Vnd).expect("price");
    let term = Term::fixed(30).expect("term");
    let mut bank = PaidRole::new(guild, RoleId::new(BANK).expect("id"), "Bank", vnd, term).expect("role");
    bank.link(ProductLink::to(ProviderName::SEPAY));
    repo.put_paid_role(&bank).await.expect("role");
    let mut polar = ProviderCredentials::new(Secret::new(POLAR_SECRET));
    polar.api_token = Some(Secret::new(POLAR_TOKEN));
    repo.put_credentials(guild, ProviderName::POLAR, &polar).await.expect("creds");
    let mut sepay = ProviderCredentials::new(Secret::new(SEPAY_KEY));
    sepay.settings = [("account", "0123499999"), ("code_prefix", "DCB"), ("bank", "MBBank")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    repo.put_credentials(guild, ProviderName::SEPAY, &sepay).await.expect("creds");
    let now = OffsetDateTime::now_utc();
    let checkout = Checkout {
        reference: "DCB7K2QXM".parse().expect("ref"),
        guild,
        user: UserId::new(USER).expect("id"),
        role: RoleId::new(BANK).expect("id"),
        provider: ProviderName::SEPAY,
        expected: vnd,
        created_at: now,
        expires_at: now + time::Duration::hours(24),
    };
    repo.put_checkout(&checkout).await.expect("checkout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_at_trace_level_logs_no_secret() {
    let n = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let dir = std::env::temp_dir().join(format!("docobo-secrets-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = format!("sqlite://{}?mode=rwc", dir.join("docobo.db").display());
    configured_database(&db).await;
    let discord = FakeDiscord::start(555_000_000_000_000_001).await.expect("fake discord");
    discord.add_guild(GUILD);
    discord.add_role(GUILD, VIP, "VIP", 5);
    discord.add_role(GUILD, BANK, "Bank", 4);
    discord.join(GUILD, USER);

    let mut child = Command::new(env!("CARGO_BIN_EXE_docobo-server"))
        .current_dir(&dir)
        .env_clear()
        .env("DOCOBO_LISTEN", "127.0.0.1:0")
        .env("DOCOBO_DATABASE_URL", &db)
        .env("DOCOBO_SECRET_KEY", SECRET_KEY)
        .env("DISCORD_BOT_TOKEN", BOT_TOKEN)
        .env("DOCOBO_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("DOCOBO_DISCORD_API_URL", &discord.base_url)
        .env("DOCOBO_GATEWAY", "off")
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    // Drain stderr as it comes, so a chatty trace log cannot fill the pipe and stall the server.
    let mut stderr = child.stderr.take().expect("stderr");
    let logs = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all);
        all
    });
    let base = crate::announced(&mut child);
    let http = reqwest::Client::new();

    let body = std::fs::read(format!(
        "{}/../docobo-adapters/tests/fixtures/polar/subscription_active.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    let polar = |id: &'static str, key: &'static str| {
        let ts = OffsetDateTime::now_utc().unix_timestamp();
        let sig = signature::sign(key.as_bytes(), id, ts, &body);
        http.post(format!("{base}/webhooks/polar/{GUILD}"))
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body.clone())
            .send()
    };
    assert_eq!(polar("wh_forged", WRONG).await.expect("request").status(), 401);
    assert_eq!(polar("wh_good", POLAR_SECRET).await.expect("request").status(), 200);
    let transfer = serde_json::json!({
        "id": 92704, "gateway": "MBBank", "transactionDate": "2026-12-01 10:00:00", "accountNumber": "0123499999",
        "code": "DCB7K2QXM", "content": "DCB7K2QXM", "transferType": "in", "transferAmount": 250000,
    });
    for (key, status) in [(WRONG, 401), (SEPAY_KEY, 200)] {
        let response = http
            .post(format!("{base}/webhooks/sepay/{GUILD}"))
            .header("authorization", format!("Apikey {key}"))
            .json(&transfer)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), status);
    }
    for (token, status) in [(WRONG, 401), (ADMIN_TOKEN, 200)] {
        let url = format!("{base}/admin/members/{GUILD}/{USER}");
        let response = http.get(url).bearer_auth(token).send().await.expect("request");
        assert_eq!(response.status(), status);
    }
    for _ in 0..500 {
        let roles = discord.roles(GUILD, USER).unwrap_or_default();
        if roles.contains(&VIP) && roles.contains(&BANK) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let roles = discord.roles(GUILD, USER).unwrap_or_default();
    assert!(roles.contains(&VIP) && roles.contains(&BANK), "both roles granted: {roles:?}");
    assert_eq!(http.get(format!("{base}/metrics")).send().await.expect("request").status(), 200);

    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let logs = logs.join().expect("log reader");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(logs.lines().count() > 20, "the trace log is suspiciously short:\n{logs}");
    assert!(logs.contains("webhook acknowledged"), "the run was logged:\n{logs}");
    // The webhook's span puts its event id on its lines, from the header (Polar) or the body (SePay).
    for id in ["wh_good", "92704"] {
        assert!(
            logs.lines().any(|l| l.contains("webhook acknowledged") && l.contains(id)),
            "no acknowledgement line carries {id}:\n{logs}"
        );
    }
    let whsec_key = POLAR_SECRET.trim_start_matches("whsec_");
    for secret in [SECRET_KEY, BOT_TOKEN, ADMIN_TOKEN, POLAR_SECRET, whsec_key, POLAR_TOKEN, SEPAY_KEY, WRONG]
    {
        let leaked: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).take(3).collect();
        assert!(leaked.is_empty(), "{secret} reached the logs:\n{}", leaked.join("\n"));
    }
}
