//! The server process stopped in the middle of a burst of webhooks, as an operator (SIGTERM) or
//! the kernel (SIGKILL) would: every delivery that got a 2xx must be in the database, none
//! half-written; after a restart and the providers' redeliveries nothing is lost and no role is
//! granted twice.

use std::collections::BTreeMap;
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
const SEPAY_KEY: &str = "sepay-api-key-0123456789abcdef01234";
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

/// A SQLite database (or the PostgreSQL one at `database_url`) with one guild selling a 30-day
/// role by SePay and one open checkout per member; a fake Discord where every member has joined.
async fn setup(database_url: Option<String>) -> Setup {
    let n = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let dir = std::env::temp_dir().join(format!("docobo-faults-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let database_url =
        database_url.unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("faults.db").display()));
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
    role.link(ProductLink::to(ProviderName::SEPAY));
    repo.put_paid_role(&role).await.expect("role");
    let mut creds = ProviderCredentials::new(Secret::new(SEPAY_KEY));
    creds.settings.insert("bank".into(), "MBBank".into());
    creds.settings.insert("account".into(), "0123499999".into());
    repo.put_credentials(guild, ProviderName::SEPAY, &creds).await.expect("creds");
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
            provider: ProviderName::SEPAY,
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
    start_with(s, &[])
}

/// [`start`] with extra configuration.
fn start_with(s: &Setup, extra: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_docobo-server"))
        .current_dir(&s.dir)
        .env_clear()
        .envs(extra.iter().copied())
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
    let addr = crate::announced(&mut child);
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
        let event = repo.webhook_event(ProviderName::SEPAY, guild, &id).await.expect("read");
        assert!(!ok || event.is_some(), "delivery {i} was acknowledged but is not stored");
        let reference: ExternalRef = code(*i).parse().expect("ref");
        let entitlement = repo.entitlement(ProviderName::SEPAY, guild, &reference).await.expect("read");
        assert_eq!(event.is_some(), entitlement.is_some(), "delivery {i} is half-written");
        stored += usize::from(event.is_some());
    }
    stored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_keeps_every_acknowledged_delivery_and_nothing_half_written() {
    let s = setup(None).await;
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

/// The value of an unlabelled metric in the server's `/metrics`, if it answers.
async fn metric(http: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    let text = http.get(format!("{base}/metrics")).send().await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// SIGKILL mid-burst while the writer is committing batches of several deliveries (group commit:
/// the kill waits until at least 8 commits rode in shared transactions), then restart and
/// redelivery: every acknowledged delivery is whole, nothing is lost, and each role is granted
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_burst_while_batches_commit_then_restart_and_redelivery_loses_nothing_and_grants_once() {
    let s = setup(None).await;
    let (child, addr) = start(&s);
    let child = Arc::new(std::sync::Mutex::new(child));
    let (killer, base) = (child.clone(), addr.clone());
    let watcher = tokio::spawn(async move {
        let http = reqwest::Client::new();
        for _ in 0..2000 {
            let commits = metric(&http, &base, "docobo_ledger_commits").await.unwrap_or(0.0);
            let transactions = metric(&http, &base, "docobo_ledger_transactions").await.unwrap_or(0.0);
            if commits - transactions >= 8.0 {
                let _ = killer.lock().expect("lock").kill();
                return true;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        false
    });
    let results = burst(&addr, || {}).await;
    assert!(watcher.await.expect("watcher"), "no batch of several commits formed during the burst");
    let _ = child.lock().expect("lock").wait();
    assert!(results.values().any(|ok| !ok), "the kill happened mid-burst");
    assert_acknowledged_are_durable(&s, &results).await;

    let (restarted, addr) = start(&s);
    redeliver_and_converge(&s, restarted, &addr).await;
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// The providers redeliver whatever was not acknowledged (SePay retries; here, everything): every
/// redelivery is accepted, every member ends with the role, granted by exactly one request.
/// Stops `server` afterwards.
async fn redeliver_and_converge(s: &Setup, mut server: Child, addr: &str) {
    let again = burst(addr, || {}).await;
    assert!(again.values().all(|ok| *ok), "every redelivery is accepted (new or duplicate): {again:?}");
    // A job whose settlement was lost (a killed process, a cut connection) waits for its 60 s
    // lease to run out, then runs again.
    for _ in 0..4500 {
        if (0..BURST).all(|i| s.discord.roles(GUILD, user(i)).is_some_and(|r| r.contains(&ROLE))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = server.kill();
    let _ = server.wait();
    for i in 0..BURST {
        assert!(
            s.discord.roles(GUILD, user(i)).is_some_and(|r| r.contains(&ROLE)),
            "member {i} lost the role"
        );
        let puts = s.discord.count("PUT", &format!("/members/{}/roles/{ROLE}", user(i)));
        assert_eq!(puts, 1, "member {i} was granted the role {puts} times");
    }
}

/// A PostgreSQL schema of its own, and the URL of it whose connections carry `application_name`
/// so they can be cut without touching anyone else's; `None` without `DOCOBO_TEST_POSTGRES_URL`.
pub(crate) async fn postgres_schema(application_name: &str) -> Option<(String, String)> {
    use sea_orm::ConnectionTrait;
    let Some(url) = std::env::var("DOCOBO_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("DOCOBO_TEST_POSTGRES_URL is not set: PostgreSQL case not run (.ci/run always sets it)");
        return None;
    };
    let schema = format!("docobo_faults_{application_name}");
    let admin = sea_orm::Database::connect(&url).await.expect("PostgreSQL reachable");
    admin.execute_unprepared(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await.expect("drop");
    admin.execute_unprepared(&format!("CREATE SCHEMA {schema}")).await.expect("create");
    let sep = if url.contains('?') { '&' } else { '?' };
    Some((
        url.clone(),
        format!("{url}{sep}options=-c%20search_path%3D{schema}&application_name={application_name}"),
    ))
}

/// Terminates every PostgreSQL connection named `application_name`, as a failover or a restarted
/// database would; returns how many were cut.
async fn cut_connections(admin_url: &str, application_name: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let admin = sea_orm::Database::connect(admin_url).await.expect("PostgreSQL reachable");
    let sql =
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE application_name = $1";
    let row = admin
        .query_one_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            sql,
            [application_name.into()],
        ))
        .await
        .expect("terminate")
        .expect("a row");
    row.try_get::<i64>("", "n").expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_cut_mid_burst_then_redelivery_loses_nothing_and_grants_once() {
    let name = format!("docobo_cut_{}", std::process::id());
    let Some((admin_url, url)) = postgres_schema(&name).await else { return };
    let s = setup(Some(url.clone())).await;
    let (server, addr) = start(&s);
    // Cut every connection of the server three times, 150 ms apart, starting mid-burst.
    let cuts = Arc::new(AtomicUsize::new(0));
    let (cut_admin, cut_name, cut_count) = (admin_url.clone(), name.clone(), cuts.clone());
    let cutting = Arc::new(std::sync::Mutex::new(None));
    let handle = cutting.clone();
    let results = burst(&addr, move || {
        *handle.lock().expect("lock") = Some(tokio::spawn(async move {
            for _ in 0..3 {
                let n = cut_connections(&cut_admin, &cut_name).await;
                cut_count.fetch_add(usize::try_from(n).unwrap_or(0), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }));
    })
    .await;
    let task = cutting.lock().expect("lock").take().expect("the cut started");
    task.await.expect("cuts");
    assert!(cuts.load(Ordering::SeqCst) > 0, "no connection was cut");
    let refused = results.values().filter(|ok| !**ok).count();
    eprintln!("{} connections cut; {refused} of {BURST} deliveries refused", cuts.load(Ordering::SeqCst));
    // Every 2xx is durable and whole; a refused delivery may or may not have been stored.
    assert_acknowledged_are_durable(&s, &results).await;
    redeliver_and_converge(&s, server, &addr).await;
    let admin = sea_orm::Database::connect(&admin_url).await.expect("PostgreSQL reachable");
    let _ = sea_orm::ConnectionTrait::execute_unprepared(
        &admin,
        &format!("DROP SCHEMA docobo_faults_{name} CASCADE"),
    )
    .await;
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_5xx_429_and_hang_storms_delay_roles_but_every_job_converges_with_bounded_requests() {
    const MEMBERS: u64 = 30;
    const INJECTED: usize = 20 + 10 + 20;
    let s = setup(None).await;
    // The next 50 requests fail: 20 server errors, 10 hangs longer than the call timeout, 20
    // rate limits (retry_after 1 s). Whichever jobs they hit fail and back off.
    for _ in 0..20 {
        s.discord.inject(500, Duration::ZERO);
    }
    for _ in 0..10 {
        s.discord.inject(503, Duration::from_secs(3));
    }
    for _ in 0..20 {
        s.discord.inject(429, Duration::ZERO);
    }
    let (mut server, addr) = start_with(&s, &[("DOCOBO_DISCORD_TIMEOUT", "0.5")]);
    let http = reqwest::Client::new();
    for i in 0..MEMBERS {
        let response = http
            .post(format!("{addr}/webhooks/sepay/{GUILD}"))
            .header("authorization", format!("Apikey {SEPAY_KEY}"))
            .body(transfer(i))
            .send()
            .await
            .expect("delivered");
        assert!(
            response.status().is_success(),
            "a Discord outage never fails a webhook: {}",
            response.status()
        );
    }
    let granted =
        |s: &Setup| (0..MEMBERS).all(|i| s.discord.roles(GUILD, user(i)).is_some_and(|r| r.contains(&ROLE)));
    // Backoff after the 1st and 2nd failure is at most 5 s and 10 s; pacing one guild at 10
    // requests per second adds ~9 s for 30 members. Converged: every role is there and no job
    // is waiting (a job whose check after the change failed runs once more).
    let repo = SeaOrmRepo::connect(&s.database_url, Some(KEY)).await.expect("connect");
    let mut waiting = None;
    for _ in 0..600 {
        waiting = repo.next_due().await.expect("read");
        if waiting.is_none() && granted(&s) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(granted(&s), "every member got the role after Discord recovered");
    assert_eq!(waiting, None, "no job is still waiting");
    assert!(repo.jobs(JobState::Parked, 10).await.expect("read").is_empty(), "no job was parked");
    // Requests stay bounded: a failure costs one request and the job's next attempt at most
    // three more (read, change, verify); nothing retries in a tight loop.
    let requests = s.discord.requests().len();
    let bound = 3 * (MEMBERS as usize + INJECTED) + 5;
    assert!(
        requests <= bound,
        "{requests} Discord requests for {MEMBERS} members and {INJECTED} failures (bound {bound})"
    );
    assert!(requests > 3 * MEMBERS as usize, "the storm was hit: only {requests} requests");
    let _ = std::fs::remove_dir_all(&s.dir);
}
