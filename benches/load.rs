//! The open-loop load harness: the real `docobo-server` under a fixed rate of signed webhooks.
//!
//! `cargo bench --bench load` (a few minutes on 2 cores). For each database (SQLite, and
//! PostgreSQL when `DOCOBO_TEST_POSTGRES_URL` is set) and each rate (100, 500 and 1,000 webhooks
//! per second, each for 10 s):
//!
//! 1. a fresh database with 200 guilds, each selling a Polar subscription role and a 30-day SePay
//!    role, and one open SePay checkout per SePay purchase to come;
//! 2. a PostgreSQL `CHECKPOINT` when `DOCOBO_TEST_POSTGRES_URL` is set, whichever database the
//!    phase measures, so that no phase runs beside the last one's flushing;
//! 3. the server as a child process (this binary run again with `DOCOBO_LOAD_SERVE=1`, which
//!    calls `docobo_server::serve` exactly as `docobo-server` does), so its peak RSS is its own;
//! 4. requests sent on a fixed schedule whatever the answers (open loop: a slow answer does not
//!    delay the next request, and latency is measured from the scheduled send time, so queueing
//!    is not hidden): 40% new Polar subscriptions, 20% SePay transfers, 20% redeliveries of an
//!    earlier delivery, and 20% stale Polar events (an older version of a subscription that
//!    already arrived, with a delivery id of its own); a 503 is a refusal by admission control
//!    (`DOCOBO_WEBHOOKS_IN_FLIGHT`), which a provider redelivers, counted and timed apart from
//!    the accepted deliveries and from errors;
//! 5. a local fake Discord records every role request; webhook → role is the time from a new
//!    purchase's acknowledgement to the first `PUT` of its role.
//!
//! Discord's global limit is 50 requests per second per bot; at the default pacing of 45 a bot
//! grants about 15 roles per second, far below these rates. The harness sets
//! `DOCOBO_DISCORD_RATE=100000` (what Discord grants large bots on request, and more), so the
//! figures measure Docobo's pipeline, not Discord's budget; the per-guild pacing (10 per second)
//! stays, and 200 guilds keep each below it. The per-IP limit (`DOCOBO_RATE_LIMIT`) is off: every
//! request comes from 127.0.0.1.
//!
//! After the configured rates, each database gets one more phase at twice the highest rate it
//! sustained (the offered rate of a phase with no errors and at most 1% refused, less the share
//! it refused), unless a configured rate was already that high: issue 15's overload row. Then,
//! on each database, the cost of one ingest (verify, parse, read, commit) next to a bare one-row
//! durable insert, both sequential; and last, issue 15's targets, each with what this run
//! measured and whether it was met.
//!
//! Knobs: `DOCOBO_LOAD_RATES=100,500`, `DOCOBO_LOAD_SECONDS=5`, `DOCOBO_LOAD_OVERLOAD=0` (no
//! overload phase). `DOCOBO_LOAD_RECOVERY=100` follows each phase, on the same server, with 5 s
//! at 100/s and prints the accepted deliveries' ack p99 for each of those seconds: how soon the
//! server is back to normal after a burst. `DOCOBO_LOAD_BY_SECOND=1` prints the same for each
//! second of every phase. `DOCOBO_WEBHOOKS_IN_FLIGHT` reaches the server (the admission cap to
//! measure; its default otherwise). `DOCOBO_LOAD_PERF=DIR` also samples the server with `perf record`
//! (call graphs from DWARF) while the traffic runs, into `DIR/<database>-<rate>.perf.data`;
//! `benches/flamegraph.sh` runs that and draws the flame graphs.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use docobo::adapters::polar::{Polar, signature};
use docobo::adapters::seaorm::SeaOrmRepo;
use docobo::adapters::simulator::discord::FakeDiscord;
use docobo::core::domain::{
    Checkout, Currency, Guild, GuildId, Money, PaidRole, ProductLink, ProviderName, RoleId, Secret, Term,
    UserId,
};
use docobo::core::ports::{CatalogRepo, CheckoutRepo, Headers, ProviderCredentials, SystemClock};
use docobo::core::service::ingest_webhook;
use sea_orm::{ConnectionTrait, DbBackend};
use serde_json::json;
use time::OffsetDateTime;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const POLAR_SECRET: &str = "whsec_load_secret";
const SEPAY_KEY: &str = "sepay-load-key-0123456789abcdef0123";
const GUILDS: u64 = 200;
const GUILD_BASE: u64 = 900_000_000_000_000_000;
const VIP: u64 = 700_000_000_000_000_001;
const BANK: u64 = 700_000_000_000_000_002;
const PRODUCT: &str = "d1e2f3a4-0000-4000-8000-000000000002";
const USER_BASE: u64 = 100_000_000_000_000_000;

fn guild_of(i: usize) -> u64 {
    GUILD_BASE + (i as u64 % GUILDS)
}

fn code(i: usize) -> String {
    format!("DCBL{i:06}")
}

/// One planned delivery.
struct Delivery {
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// The (guild, user, role) whose first grant this delivery causes, if it is a new purchase.
    grants: Option<(u64, u64, u64)>,
}

fn polar_delivery(i: usize, user: u64, id: String, modified: OffsetDateTime) -> Delivery {
    let guild = guild_of(i);
    let metadata = json!({ "discord_user_id": user.to_string(), "paid_role_id": VIP.to_string() });
    let mut body: serde_json::Value = serde_json::from_slice(
        &docobo::adapters::simulator::polar::event("subscription_active", &metadata, PRODUCT, modified)
            .expect("fixture"),
    )
    .expect("json");
    body["data"]["id"] = json!(format!("sub-{user}"));
    let body = serde_json::to_vec(&body).expect("json");
    let ts = OffsetDateTime::now_utc().unix_timestamp();
    let sig = signature::sign(POLAR_SECRET.as_bytes(), &id, ts, &body);
    Delivery {
        url: format!("/webhooks/polar/{guild}"),
        headers: vec![("webhook-id", id), ("webhook-timestamp", ts.to_string()), ("webhook-signature", sig)],
        body,
        grants: None,
    }
}

fn sepay_delivery(i: usize) -> Delivery {
    let body = json!({
        "id": 1_000_000 + i, "gateway": "MBBank", "transactionDate": "2026-11-20 09:15:00",
        "accountNumber": "0123499999", "code": code(i), "content": format!("{} chuyen tien", code(i)),
        "transferType": "in", "transferAmount": 100_000, "accumulated": 0, "subAccount": null,
        "referenceCode": "FT1", "description": ""
    });
    Delivery {
        url: format!("/webhooks/sepay/{}", guild_of(i)),
        headers: vec![("authorization", format!("Apikey {SEPAY_KEY}"))],
        body: serde_json::to_vec(&body).expect("json"),
        grants: None,
    }
}

/// The schedule: `n` deliveries in the mix described at the top, and the SePay checkouts the
/// new transfers pay.
fn plan(n: usize) -> (Vec<Delivery>, Vec<usize>) {
    let now = OffsetDateTime::now_utc();
    let (mut deliveries, mut sepay, mut polar_members): (Vec<Delivery>, Vec<usize>, Vec<usize>) =
        (Vec::with_capacity(n), Vec::new(), Vec::new());
    for i in 0..n {
        let user = USER_BASE + i as u64;
        let delivery = match i % 10 {
            // A redelivery of an earlier delivery: same id, same body.
            6 | 7 if i >= 10 => {
                let earlier = &deliveries[i - 7];
                Delivery {
                    url: earlier.url.clone(),
                    headers: earlier.headers.clone(),
                    body: earlier.body.clone(),
                    grants: None,
                }
            }
            // An older version of a subscription that already arrived.
            8 | 9 if !polar_members.is_empty() => {
                let member = polar_members[polar_members.len() - 1 - (i % polar_members.len().min(5))];
                let stale = now - time::Duration::minutes(5);
                polar_delivery(member, USER_BASE + member as u64, format!("stale-{i}"), stale)
            }
            4 | 5 => {
                sepay.push(i);
                Delivery { grants: Some((guild_of(i), user, BANK)), ..sepay_delivery(i) }
            }
            _ => {
                polar_members.push(i);
                Delivery {
                    grants: Some((guild_of(i), user, VIP)),
                    ..polar_delivery(i, user, format!("new-{i}"), now)
                }
            }
        };
        deliveries.push(delivery);
    }
    (deliveries, sepay)
}

async fn seed(url: &str, fake: &FakeDiscord, deliveries: &[Delivery], sepay: &[usize]) -> SeaOrmRepo {
    let repo = SeaOrmRepo::connect(url, Some(KEY)).await.expect("connects");
    repo.migrate().await.expect("migrates");
    for g in 0..GUILDS {
        let id = GuildId::new(GUILD_BASE + g).expect("id");
        repo.put_guild(&Guild::new(id, format!("load {g}"))).await.expect("guild");
        let usd = Money::parse("5", Currency::Usd).expect("price");
        let mut vip =
            PaidRole::new(id, RoleId::new(VIP).expect("id"), "VIP", usd, Term::Recurring).expect("role");
        vip.link(ProductLink::product(ProviderName::POLAR, PRODUCT));
        repo.put_paid_role(&vip).await.expect("role");
        let vnd = Money::parse("100000", Currency::Vnd).expect("price");
        let term = Term::fixed(30).expect("term");
        let mut bank = PaidRole::new(id, RoleId::new(BANK).expect("id"), "30 days", vnd, term).expect("role");
        bank.link(ProductLink::to(ProviderName::SEPAY));
        repo.put_paid_role(&bank).await.expect("role");
        let polar = ProviderCredentials::new(Secret::new(POLAR_SECRET));
        repo.put_credentials(id, ProviderName::POLAR, &polar).await.expect("creds");
        let mut creds = ProviderCredentials::new(Secret::new(SEPAY_KEY));
        creds.settings.insert("bank".into(), "MBBank".into());
        creds.settings.insert("account".into(), "0123499999".into());
        repo.put_credentials(id, ProviderName::SEPAY, &creds).await.expect("creds");
        fake.add_guild(GUILD_BASE + g);
        fake.add_role(GUILD_BASE + g, VIP, "VIP", 4);
        fake.add_role(GUILD_BASE + g, BANK, "30 days", 3);
    }
    let now = OffsetDateTime::now_utc();
    for &i in sepay {
        repo.put_checkout(&Checkout {
            reference: code(i).parse().expect("code"),
            guild: GuildId::new(guild_of(i)).expect("id"),
            user: UserId::new(USER_BASE + i as u64).expect("id"),
            role: RoleId::new(BANK).expect("id"),
            provider: ProviderName::SEPAY,
            expected: Money::parse("100000", Currency::Vnd).expect("price"),
            created_at: now,
            expires_at: now + time::Duration::hours(1),
        })
        .await
        .expect("checkout");
    }
    for (guild, user, _) in deliveries.iter().filter_map(|d| d.grants) {
        fake.join(guild, user);
    }
    repo
}

/// Runs this binary again as the server; returns it and its base URL.
fn start_server(database_url: &str, discord: &str) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env_clear()
        .env("DOCOBO_LOAD_SERVE", "1")
        .env("DOCOBO_LISTEN", "127.0.0.1:0")
        .env("DOCOBO_DATABASE_URL", database_url)
        .env("DOCOBO_SECRET_KEY", KEY)
        .env("DISCORD_BOT_TOKEN", "fake-token")
        .env("DOCOBO_DISCORD_API_URL", discord)
        .env("DOCOBO_GATEWAY", "off")
        .env("DOCOBO_DISCORD_RATE", "100000")
        .env("DOCOBO_RATE_LIMIT", "off")
        .envs(std::env::var("DOCOBO_WEBHOOKS_IN_FLIGHT").map(|cap| ("DOCOBO_WEBHOOKS_IN_FLIGHT", cap)))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("reads");
    let base = line.trim().strip_prefix("docobo-server listening on ").expect("address line").to_owned();
    (child, base)
}

/// The server half: what `docobo-server`'s main does, until SIGTERM.
fn serve_child() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let config = docobo_server::Config::from_env().expect("config");
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
        docobo_server::serve(config, async move {
            term.recv().await;
        })
        .await
        .expect("serves");
    });
}

/// Peak resident set of a process, from `/proc` (Linux).
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 =
        status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

struct Row {
    database: &'static str,
    rate: usize,
    sent: usize,
    /// Answered 503 (admission control: the provider redelivers later).
    refused: usize,
    /// Neither accepted nor refused: a 5xx other than 503, a timeout, a dropped connection.
    errors: usize,
    throughput: f64,
    /// Accepted deliveries, from the scheduled send time to the 2xx.
    ack: Vec<Duration>,
    /// Refused deliveries, from the scheduled send time to the 503.
    refusals: Vec<Duration>,
    to_role: Vec<Duration>,
    missing_roles: usize,
    duplicate_puts: usize,
    rss_mib: f64,
    /// With `DOCOBO_LOAD_RECOVERY`: each second of the calm after the phase, the accepted
    /// deliveries' ack p99 (ms) and how many were refused.
    recovery: Vec<(f64, usize)>,
    /// The same for each second of the phase itself, printed with `DOCOBO_LOAD_BY_SECOND=1`:
    /// whether a tail is the first second's cold start (new connections) or spread through it.
    during: Vec<(f64, usize)>,
}

/// The highest rate `database` kept up with: of the phases with no errors and at most 1% refused,
/// the offered rate less the share refused. (Not `done/s`: that divides by the phase's wall time,
/// which includes the last deliveries' latency, so a phase answered in full still reads a little
/// under its rate.)
fn highest_sustained(rows: &[Row], database: &str) -> f64 {
    let kept_up = |r: &&Row| r.database == database && r.errors == 0 && r.refused * 100 <= r.sent;
    let accepted = |r: &Row| r.rate as f64 * (r.sent - r.refused) as f64 / r.sent.max(1) as f64;
    rows.iter().filter(kept_up).map(accepted).fold(0.0, f64::max)
}

/// Twice the highest rate `database` sustained, to the nearest 100: issue 15's overload rate.
fn overload_rate(rows: &[Row], database: &str) -> usize {
    (highest_sustained(rows, database) * 2.0 / 100.0).round() as usize * 100
}

/// Issue 15's targets, each from this run's rows where the run had the rate it needs.
fn print_targets(rows: &[Row], ratios: &[(&&str, (Duration, Duration))]) {
    let verdict = |met: bool| if met { "met" } else { "missed" };
    let at = |database: &str, rate: usize| rows.iter().find(|r| r.database == database && r.rate == rate);
    println!("\nissue 15 targets from this run (latencies in ms):");
    for (name, (bare, ingest)) in ratios {
        let name: &str = name;
        let ack_goal = if name == "sqlite" { 5.0 } else { 10.0 };
        if let Some(r) = at(name, 1000) {
            let p99 = percentile(&r.ack, 0.99);
            let met = p99 <= ack_goal && r.errors == 0 && r.refused == 0;
            let (refused, errors) = (r.refused, r.errors);
            println!(
                "  {name:<8} 1,000/s: ack p99 {p99:.2} (goal ≤ {ack_goal}), {refused} refused, {errors} errors: {}",
                verdict(met)
            );
        }
        let sustained = highest_sustained(rows, name);
        match name {
            "sqlite" => println!(
                "  {name:<8} highest sustained: {sustained:.0}/s (goal ≥ 2,000/s): {}",
                verdict(sustained >= 2000.0)
            ),
            _ => println!("  {name:<8} highest sustained: {sustained:.0}/s (reported)"),
        }
        let ratio = ingest.as_secs_f64() / bare.as_secs_f64();
        println!("  {name:<8} ingest vs a bare insert: {ratio:.2}× (goal ≤ 2×): {}", verdict(ratio <= 2.0));
        if let Some(r) = at(name, 500) {
            let p99 = percentile(&r.to_role, 0.99);
            println!("  {name:<8} 500/s: webhook → role p99 {p99:.2} (goal ≤ 50): {}", verdict(p99 <= 50.0));
        }
        let twice = overload_rate(rows, name);
        if let Some(r) = rows.iter().filter(|r| r.database == name && r.rate >= twice).min_by_key(|r| r.rate)
        {
            let refusal = percentile(&r.refusals, 0.99);
            let accepted = percentile(&r.ack, 0.99);
            println!(
                "  {name:<8} {}/s (≥ twice sustained): 503 p99 {refusal:.2} (goal ≤ 5): {}; accepted p99 {accepted:.2} \
                 (goal ≤ 50): {}; RSS {:.1} MiB (goal ≤ 64): {}",
                r.rate,
                verdict(r.refused == 0 || refusal <= 5.0),
                verdict(accepted <= 50.0),
                r.rss_mib,
                verdict(r.rss_mib <= 64.0)
            );
        }
    }
}

/// After heavy phases PostgreSQL's checkpointer goes on writing for minutes, and whatever runs
/// next on the shared disk is slower for it (`docs/PERFORMANCE.md` §4.4): each phase, on either
/// database, starts after a checkpoint, so phases and runs compare.
async fn checkpoint_postgres() {
    let Some(url) = std::env::var("DOCOBO_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) else { return };
    let done = match sea_orm::Database::connect(&url).await {
        Ok(admin) => admin.execute_unprepared("CHECKPOINT").await.map(drop),
        Err(e) => Err(e),
    };
    if let Err(e) = done {
        eprintln!("CHECKPOINT before the phase failed ({e}); measuring anyway");
    }
}

/// Seconds of calm traffic after a phase, with `DOCOBO_LOAD_RECOVERY`.
const RECOVERY_SECONDS: usize = 5;

async fn run_phase(
    database: &'static str,
    postgres: Option<&str>,
    rate: usize,
    seconds: usize,
    calm: Option<usize>,
) -> Row {
    let n = rate * seconds;
    let tail = calm.map_or(0, |calm| calm * RECOVERY_SECONDS);
    let fake = FakeDiscord::start(555_000_000_000_000_001).await.expect("fake discord");
    let (deliveries, sepay) = plan(n + tail);
    let url = support::fresh_database(postgres, &format!("load_{database}_{rate}")).await;
    drop(seed(&url, &fake, &deliveries, &sepay).await);
    checkpoint_postgres().await;
    let (mut child, base) = start_server(&url, &fake.base_url);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    for _ in 0..20 {
        let _ = client.get(format!("{base}/health")).send().await;
    }

    let profiler = std::env::var_os("DOCOBO_LOAD_PERF").map(|dir| {
        let out = std::path::Path::new(&dir).join(format!("{database}-{rate}.perf.data"));
        Command::new("perf")
            .args(["record", "-F", "499", "--call-graph", "dwarf,16384", "-p", &child.id().to_string(), "-o"])
            .arg(out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("perf starts")
    });
    let start = Instant::now() + Duration::from_millis(50);
    let interval = Duration::from_secs(1) / rate as u32;
    let burst_end = start + interval * n as u32;
    let calm_interval = Duration::from_secs(1) / calm.unwrap_or(1).max(1) as u32;
    let mut tasks = Vec::with_capacity(n + tail);
    for (i, d) in deliveries.iter().enumerate() {
        let scheduled =
            if i < n { start + interval * i as u32 } else { burst_end + calm_interval * (i - n) as u32 };
        tokio::time::sleep_until(scheduled.into()).await;
        let mut request = client.post(format!("{base}{}", d.url)).body(d.body.clone());
        for (name, value) in &d.headers {
            request = request.header(*name, value);
        }
        tasks.push(tokio::spawn(async move {
            let status = request.send().await.map_or(0, |r| r.status().as_u16());
            (status, Instant::now(), scheduled)
        }));
    }
    let mut answers = Vec::with_capacity(n + tail);
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    // The calm after the phase, second by second: accepted ack p99 and refusals.
    let recovery = by_second(&answers[n..], burst_end, calm.map_or(0, |_| RECOVERY_SECONDS));
    let during = by_second(&answers[..n], start, seconds);
    let phase = &answers[..n];
    let last = phase.iter().map(|(_, at, _)| *at).max().unwrap_or(start);
    let accepted = |status: u16| (200..300).contains(&status);
    let latencies = |keep: &dyn Fn(u16) -> bool| -> Vec<Duration> {
        phase
            .iter()
            .filter(|(status, _, _)| keep(*status))
            .map(|(_, at, scheduled)| at.saturating_duration_since(*scheduled))
            .collect()
    };
    let ack = latencies(&accepted);
    let refusals = latencies(&|status| status == 503);
    let errors = n - ack.len() - refusals.len();

    // Wait for every purchase's role to reach Discord (up to 60 s after the last answer).
    let expected: Vec<(usize, String)> = deliveries
        .iter()
        .enumerate()
        .filter(|(i, _)| accepted(answers[*i].0))
        .filter_map(|(i, d)| d.grants.map(|(g, u, r)| (i, format!("/guilds/{g}/members/{u}/roles/{r}"))))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let puts = loop {
        let puts: HashMap<String, (Instant, usize)> =
            fake.arrivals("PUT").into_iter().fold(HashMap::new(), |mut m, (path, at)| {
                let entry = m.entry(path.split('?').next().unwrap_or_default().to_owned()).or_insert((at, 0));
                entry.1 += 1;
                m
            });
        let done = expected.iter().all(|(_, path)| puts.keys().any(|p| p.ends_with(path.as_str())));
        if done || Instant::now() > deadline {
            break puts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if let Some(mut perf) = profiler {
        // SIGINT makes perf write out what it sampled, from the traffic and the role backlog.
        let _ = Command::new("kill").args(["-INT", &perf.id().to_string()]).status();
        let _ = perf.wait();
    }
    let rss_mib = peak_rss_mib(child.id()).unwrap_or(f64::NAN);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();

    let by_suffix: HashMap<&str, (Instant, usize)> =
        puts.iter().filter_map(|(p, v)| Some((&p[p.find("/guilds/")?..], *v))).collect();
    let mut to_role = Vec::new();
    let mut missing_roles = 0;
    for (i, path) in &expected {
        match by_suffix.get(path.as_str()) {
            Some((at, _)) => to_role.push(at.saturating_duration_since(answers[*i].1)),
            None => missing_roles += 1,
        }
    }
    Row {
        database,
        rate,
        sent: n,
        refused: refusals.len(),
        errors,
        throughput: ack.len() as f64 / last.saturating_duration_since(start).as_secs_f64(),
        ack,
        refusals,
        to_role,
        missing_roles,
        duplicate_puts: by_suffix.values().map(|(_, count)| count.saturating_sub(1)).sum(),
        rss_mib,
        recovery,
        during,
    }
}

/// For each of `seconds` seconds from `from`, by scheduled send time: the accepted deliveries'
/// ack p99 (ms) and how many were refused.
fn by_second(answers: &[(u16, Instant, Instant)], from: Instant, seconds: usize) -> Vec<(f64, usize)> {
    (0..seconds)
        .map(|second| {
            let in_window = answers.iter().filter(|(_, _, scheduled)| {
                scheduled.saturating_duration_since(from).as_secs() == second as u64
            });
            let (mut acks, mut refused) = (Vec::new(), 0);
            for (status, at, scheduled) in in_window {
                match status {
                    200..300 => acks.push(at.saturating_duration_since(*scheduled)),
                    503 => refused += 1,
                    _ => {}
                }
            }
            acks.sort();
            (percentile(&acks, 0.99), refused)
        })
        .collect()
}

/// Mean cost of a bare one-row durable insert and of one Polar ingest on the same database.
async fn ingest_ratio(url: &str) -> (Duration, Duration) {
    const N: usize = 300;
    let fake = FakeDiscord::start(1).await.expect("fake discord");
    let repo = seed(url, &fake, &[], &[]).await;
    let (bare, insert) = match repo.backend() {
        DbBackend::Postgres => (
            "CREATE TABLE IF NOT EXISTS load_bare (id BIGSERIAL PRIMARY KEY, body BYTEA NOT NULL)",
            "INSERT INTO load_bare (body) VALUES ($1)",
        ),
        _ => (
            "CREATE TABLE IF NOT EXISTS load_bare (id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL)",
            "INSERT INTO load_bare (body) VALUES (?)",
        ),
    };
    repo.connection().execute_unprepared(bare).await.expect("bare table");
    let (deliveries, _) = plan(2 * N);
    let polar = Polar::new("http://127.0.0.1:9".to_owned());
    let guild = |d: &Delivery| {
        GuildId::new(d.url.rsplit('/').next().and_then(|g| g.parse().ok()).expect("guild")).expect("id")
    };
    let fresh: Vec<&Delivery> =
        deliveries.iter().filter(|d| d.url.contains("polar") && d.grants.is_some()).collect();
    let (warm, measured) = fresh.split_at(fresh.len() / 4);
    let bare_start = Instant::now();
    for d in measured {
        let stmt = sea_orm::Statement::from_sql_and_values(repo.backend(), insert, [d.body.clone().into()]);
        repo.connection().execute_raw(stmt).await.expect("insert");
    }
    let bare_cost = bare_start.elapsed() / measured.len() as u32;
    for (round, set) in [warm, measured].into_iter().enumerate() {
        let begin = Instant::now();
        for d in set {
            let headers: Headers = d.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ingest_webhook(&repo, &polar, &SystemClock, guild(d), &headers, &d.body).await.expect("ingest");
        }
        if round == 1 {
            return (bare_cost, begin.elapsed() / set.len() as u32);
        }
    }
    unreachable!("two rounds")
}

fn main() {
    if std::env::var_os("DOCOBO_LOAD_SERVE").is_some() {
        return serve_child();
    }
    let list = |key: &str, default: &str| -> Vec<usize> {
        std::env::var(key)
            .unwrap_or_else(|_| default.to_owned())
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .collect()
    };
    let rates = list("DOCOBO_LOAD_RATES", "100,500,1000");
    let calm = list("DOCOBO_LOAD_RECOVERY", "").first().copied();
    let seconds = list("DOCOBO_LOAD_SECONDS", "10").first().copied().unwrap_or(10);
    let with_overload = std::env::var("DOCOBO_LOAD_OVERLOAD").map_or(true, |v| v != "0");
    let postgres = std::env::var("DOCOBO_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty());
    let mut databases: Vec<(&'static str, Option<&str>)> = vec![("sqlite", None)];
    match &postgres {
        Some(url) => databases.push(("postgres", Some(url))),
        None => eprintln!("DOCOBO_TEST_POSTGRES_URL is not set: PostgreSQL not measured"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mut rows = Vec::new();
        let mut ratios = Vec::new();
        for (name, pg) in &databases {
            let url = support::fresh_database(*pg, &format!("load_{name}_ratio")).await;
            ratios.push((name, ingest_ratio(&url).await));
            for &rate in &rates {
                eprintln!("{name}: {rate}/s for {seconds} s …");
                rows.push(run_phase(name, *pg, rate, seconds, calm).await);
            }
            // Issue 15's overload row: twice the highest rate this database sustained, unless a
            // configured rate already was.
            let overload = overload_rate(&rows, name);
            if with_overload && overload > 0 && rates.iter().all(|&r| r < overload) {
                eprintln!("{name}: {overload}/s (twice the highest sustained) for {seconds} s …");
                rows.push(run_phase(name, *pg, overload, seconds, calm).await);
            }
        }
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!("\nDocobo load harness: {seconds} s per rate, {GUILDS} guilds, {cores} cores, open loop");
        println!("mix: 40% new Polar, 20% new SePay, 20% redeliveries, 20% stale Polar events\n");
        println!(
            "{:<9} {:>6} {:>6} {:>6} {:>6} {:>7} | {:>7} {:>7} {:>7} {:>8} | {:>8} | {:>7} {:>7} {:>8} | {:>6} {:>5} {:>7}",
            "database", "rate/s", "sent", "503", "errors", "done/s", "ack p50", "p95", "p99", "max", "503 p99",
            "→role p50", "p95", "p99", "missing", "dups", "RSS MiB"
        );
        for r in &mut rows {
            r.ack.sort();
            r.refusals.sort();
            r.to_role.sort();
            println!(
                "{:<9} {:>6} {:>6} {:>6} {:>6} {:>7.0} | {:>7.2} {:>7.2} {:>7.2} {:>8.2} | {:>8.2} | {:>9.2} {:>7.2} {:>8.2} | {:>6} {:>5} {:>7.1}",
                r.database,
                r.rate,
                r.sent,
                r.refused,
                r.errors,
                r.throughput,
                percentile(&r.ack, 0.50),
                percentile(&r.ack, 0.95),
                percentile(&r.ack, 0.99),
                percentile(&r.ack, 1.0),
                percentile(&r.refusals, 0.99),
                percentile(&r.to_role, 0.50),
                percentile(&r.to_role, 0.95),
                percentile(&r.to_role, 0.99),
                r.missing_roles,
                r.duplicate_puts,
                r.rss_mib,
            );
        }
        println!(
            "(latencies in ms from the scheduled send time: ack of accepted deliveries, 503 of refused ones; \
             →role from the ack to the PUT at Discord; done/s and missing count accepted deliveries only)\n"
        );
        let by_second = |seconds: &[(f64, usize)]| -> String {
            let seconds: Vec<String> =
                seconds.iter().map(|(p99, refused)| format!("{p99:.1} ms ({refused} × 503)")).collect();
            seconds.join(", ")
        };
        if std::env::var_os("DOCOBO_LOAD_BY_SECOND").is_some() {
            for r in &rows {
                println!("{} at {}/s, ack p99 by second: {}", r.database, r.rate, by_second(&r.during));
            }
        }
        for r in rows.iter().filter(|r| !r.recovery.is_empty()) {
            let (database, rate, calm) = (r.database, r.rate, calm.unwrap_or_default());
            println!("{database} after {rate}/s, then {calm}/s, ack p99 by second: {}", by_second(&r.recovery));
        }
        for (name, (bare, ingest)) in &ratios {
            println!(
                "{name}: bare durable insert {:.3} ms, ingest {:.3} ms, ratio {:.2}×",
                bare.as_secs_f64() * 1000.0,
                ingest.as_secs_f64() * 1000.0,
                ingest.as_secs_f64() / bare.as_secs_f64()
            );
        }
        print_targets(&rows, &ratios);
    });
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("docobo-load-{}", std::process::id())));
}
