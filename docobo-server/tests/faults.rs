//! The server process stopped in the middle of a burst of webhooks, as an operator (SIGTERM) or
//! the kernel (SIGKILL) would: every delivery that got a 2xx must be in the database, none
//! half-written; after a restart and the providers' redeliveries nothing is lost and no role is
//! granted twice.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use docobo_adapters::seaorm::SeaOrmRepo;
use docobo_adapters::simulator::discord::FakeDiscord;
use docobo_core::domain::*;
use docobo_core::ports::*;
use time::OffsetDateTime;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const GUILD: u64 = 987_654_321_098_765_432;
const ROLE: u64 = 700_000_000_000_000_008;
const SEPAY_KEY: &str = "sepay-api-key";
/// Deliveries in one burst, and how many run at once.
const BURST: u64 = 120;
const CONCURRENCY: usize = 16;
/// The process is stopped once this many deliveries were acknowledged.
const STOP_AFTER: usize = 30;

fn user(i: u64) -> u64 {
    100_000_000_000_000_000 + i
}

fn code(i: u64) -> String {
    format!("DCBF{i:04}")
}

struct Setup {
    dir: PathBuf,
    database_url: String,
    discord: FakeDiscord,
}

/// A SQLite database with one guild selling a 30-day role by SePay and one open checkout per
/// member; a fake Discord where every member has joined.
async fn setup() -> Setup {
    let n = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let dir = std::env::temp_dir().join(format!("docobo-faults-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let database_url = format!("sqlite://{}?mode=rwc", dir.join("faults.db").display());
    let repo = SeaOrmRepo::connect(&database_url, Some(KEY)).await.expect("connect");
    repo.migrate().await.expect("migrate");
    let guild = GuildId::new(GUILD).expect("id");
    repo.put_guild(&Guild::new(guild, "Faults")).await.expect("guild");
    let price = Money::parse("100000", Currency::Vnd).expect("price");
    let mut role = PaidRole::new(
        guild,
        RoleId::new(ROLE).expect("id"),
        "30 days",
        price,
        Term::fixed(30).expect("term"),
    )
    .expect("role");
    role.sepay = true;
    repo.put_paid_role(&role).await.expect("role");
    let mut creds = ProviderCredentials::new(Secret::new(SEPAY_KEY));
    creds.settings.insert("bank".into(), "MBBank".into());
    creds.settings.insert("account".into(), "0123499999".into());
    repo.put_credentials(guild, ProviderKind::Sepay, &creds).await.expect("creds");
    let discord = FakeDiscord::start(555).await.expect("fake discord");
    discord.add_guild(GUILD);
    discord.add_role(GUILD, ROLE, "30 days", 4);
    let now = OffsetDateTime::now_utc();
    for i in 0..BURST {
        discord.join(GUILD, user(i));
        let checkout = Checkout {
            reference: code(i).parse().expect("code"),
            guild,
            user: UserId::new(user(i)).expect("id"),
            role: RoleId::new(ROLE).expect("id"),
            provider: ProviderKind::Sepay,
            expected: price,
            created_at: now,
            expires_at: now + time::Duration::hours(1),
        };
        repo.put_checkout(&checkout).await.expect("checkout");
    }
    Setup { dir, database_url, discord }
}

/// Starts `docobo-server` on the database; returns the process and its address.
fn start(s: &Setup) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_docobo-server"))
        .current_dir(&s.dir)
        .env_clear()
        .env("DOCOBO_LISTEN", "127.0.0.1:0")
        .env("DOCOBO_DATABASE_URL", &s.database_url)
        .env("DOCOBO_SECRET_KEY", KEY)
        .env("DISCORD_BOT_TOKEN", "fake-token")
        .env("DOCOBO_DISCORD_API_URL", &s.discord.base_url)
        .env("DOCOBO_GATEWAY", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("reads");
    let addr = line.trim().strip_prefix("docobo-server listening on ").unwrap_or_default().to_owned();
    assert!(!addr.is_empty(), "unexpected first line {line:?}");
    (child, addr)
}

fn transfer(i: u64) -> String {
    serde_json::json!({
        "id": 50_000 + i, "gateway": "MBBank", "transactionDate": "2026-11-20 09:15:00",
        "accountNumber": "0123499999", "code": code(i), "content": format!("{} chuyen tien", code(i)),
        "transferType": "in", "transferAmount": 100_000, "accumulated": 0, "subAccount": null,
        "referenceCode": "FT1", "description": ""
    })
    .to_string()
}

/// Delivers every transfer (up to [`CONCURRENCY`] at once) and runs `stop` once [`STOP_AFTER`]
/// were acknowledged. Returns which deliveries got a 2xx.
async fn burst(base: &str, stop: impl FnOnce() + Send + 'static) -> BTreeMap<u64, bool> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let acked = Arc::new(AtomicUsize::new(0));
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let stop = Arc::new(std::sync::Mutex::new(Some(stop)));
    let mut tasks = Vec::new();
    for i in 0..BURST {
        let (http, acked, permits, stop) = (http.clone(), acked.clone(), permits.clone(), stop.clone());
        let url = format!("{base}/webhooks/sepay/{GUILD}");
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore");
            let sent = http
                .post(url)
                .header("authorization", format!("Apikey {SEPAY_KEY}"))
                .body(transfer(i))
                .send();
            let ok = sent.await.is_ok_and(|r| r.status().is_success());
            if ok
                && acked.fetch_add(1, Ordering::SeqCst) + 1 == STOP_AFTER
                && let Some(stop) = stop.lock().expect("lock").take()
            {
                stop();
            }
            (i, ok)
        }));
    }
    let mut results = BTreeMap::new();
    for task in tasks {
        let (i, ok) = task.await.expect("task");
        results.insert(i, ok);
    }
    results
}

/// Every acknowledged delivery is stored, and each stored delivery wrote its entitlement (one
/// transaction: both or neither).
async fn assert_acknowledged_are_durable(s: &Setup, results: &BTreeMap<u64, bool>) -> usize {
    let repo = SeaOrmRepo::connect(&s.database_url, Some(KEY)).await.expect("connect");
    let guild = GuildId::new(GUILD).expect("id");
    let mut stored = 0;
    for (i, ok) in results {
        let id: EventId = (50_000 + i).to_string().parse().expect("id");
        let event = repo.webhook_event(ProviderKind::Sepay, guild, &id).await.expect("read");
        assert!(!ok || event.is_some(), "delivery {i} was acknowledged but is not stored");
        let reference: ExternalRef = code(*i).parse().expect("ref");
        let entitlement = repo.entitlement(ProviderKind::Sepay, guild, &reference).await.expect("read");
        assert_eq!(event.is_some(), entitlement.is_some(), "delivery {i} is half-written");
        stored += usize::from(event.is_some());
    }
    stored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_keeps_every_acknowledged_delivery_and_nothing_half_written() {
    let s = setup().await;
    let (mut child, addr) = start(&s);
    let pid = child.id().to_string();
    let results = burst(&addr, move || {
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
    })
    .await;
    let status = tokio::task::spawn_blocking(move || child.wait()).await.expect("join").expect("exits");
    assert!(status.success(), "a graceful stop exits 0: {status}");
    let acked = results.values().filter(|ok| **ok).count();
    assert!(acked >= STOP_AFTER, "the burst ran: {acked} acknowledged");
    assert!(acked < results.len(), "the stop happened mid-burst");
    let stored = assert_acknowledged_are_durable(&s, &results).await;
    assert!(stored >= acked);
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_burst_then_restart_and_redelivery_loses_nothing_and_grants_once() {
    let s = setup().await;
    let (child, addr) = start(&s);
    let child = Arc::new(std::sync::Mutex::new(child));
    let killer = child.clone();
    let results = burst(&addr, move || {
        let _ = killer.lock().expect("lock").kill();
    })
    .await;
    let _ = child.lock().expect("lock").wait();
    assert!(results.values().any(|ok| !ok), "the kill happened mid-burst");
    assert_acknowledged_are_durable(&s, &results).await;

    // The providers redeliver whatever was not acknowledged (SePay retries; here, everything).
    let (mut restarted, addr) = start(&s);
    let again = burst(&addr, || {}).await;
    assert!(again.values().all(|ok| *ok), "every redelivery is accepted (new or duplicate)");
    // Jobs claimed by the killed process wait for their 60 s lease to run out, then run again.
    for _ in 0..6000 {
        if (0..BURST).all(|i| s.discord.roles(GUILD, user(i)).is_some_and(|r| r.contains(&ROLE))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = restarted.kill();
    let _ = restarted.wait();
    for i in 0..BURST {
        assert!(
            s.discord.roles(GUILD, user(i)).is_some_and(|r| r.contains(&ROLE)),
            "member {i} lost the role"
        );
        let puts = s.discord.count("PUT", &format!("/members/{}/roles/{ROLE}", user(i)));
        assert_eq!(puts, 1, "member {i} was granted the role {puts} times");
    }
    let _ = std::fs::remove_dir_all(&s.dir);
}
