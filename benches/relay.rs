//! Source event → mirror request at Discord, through the real server.
//!
//! Starts `docobo-server` in-process (fresh SQLite, or PostgreSQL when
//! `DOCOBO_BENCH_POSTGRES_URL` is set) with its gateway connected to the fake gateway, and one
//! source channel relayed into [`TARGETS`] target channels, each in its own guild. After one
//! warm-up signal (which finds or creates each target's webhook), it dispatches [`N`]
//! MESSAGE_CREATE events [`SPACING`] apart and measures, for every target, the time from the
//! dispatch to the webhook execute arriving at the fake Discord. Discord pacing is lifted
//! (`DOCOBO_DISCORD_RATE` 10,000/s), so this measures the pipeline: gateway → intake (with its
//! 15 ms reorder window) → commit → worker → request. `cargo bench --bench relay` (goal: p99 ≤
//! 50 ms).
//!
//! Then the fan-out under Discord's real global limit: the same server with the default pacing
//! (45 requests/s, bursts of 10) relays one signal into [`WIDE`] targets, and the time until
//! the last target's request is printed beside the arithmetic that explains it.

mod support;

use std::time::{Duration, Instant};

use docobo::adapters::simulator::discord::FakeDiscord;
use docobo::adapters::simulator::gateway::FakeGateway;
use docobo::core::domain::{ChannelId, GuildId, NewRelay, Secret, Via};
use docobo::core::ports::RelayRepo;
use docobo_server::{Application, Config};

const N: usize = 100;
const TARGETS: u64 = 10;
const WIDE: u64 = 100;
const SPACING: Duration = Duration::from_millis(120);
const BOT: u64 = 555_000_000_000_000_001;
const SOURCE_GUILD: u64 = 111_000_000_000_000_001;
const SOURCE: u64 = 111_000_000_000_000_100;

struct Bench {
    fake: FakeDiscord,
    gateway: FakeGateway,
    stop: tokio::sync::oneshot::Sender<()>,
    dir: std::path::PathBuf,
}

/// A server relaying the source into `targets` targets; `rate` is `DOCOBO_DISCORD_RATE`.
async fn start(targets: u64, rate: u32, database: Option<String>) -> Bench {
    let fake = FakeDiscord::start(BOT).await.expect("fake discord");
    let gateway = FakeGateway::start(BOT, 2).await.expect("fake gateway");
    fake.set_gateway_url(&gateway.url);
    let dir = std::env::temp_dir().join(format!("docobo-relay-bench-{}-{targets}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = Config {
        database_url: support::fresh_database(database.as_deref(), &format!("relay_{targets}")).await,
        listen: "127.0.0.1:0".parse().expect("address"),
        discord_bot_token: Some(Secret::new("fake-token")),
        discord_api_url: fake.base_url.clone(),
        discord_rate: rate,
        gateway: true,
        data_dir: dir.join("data"),
        ..Config::default()
    };
    let app = Application::build(config).await.expect("builds");
    for i in 0..targets {
        let relay = NewRelay {
            source_guild: GuildId::new(SOURCE_GUILD).expect("id"),
            source_channel: ChannelId::new(SOURCE).expect("id"),
            target_guild: GuildId::new(300_000_000_000_000_000 + i).expect("id"),
            target_channel: ChannelId::new(400_000_000_000_000_000 + i).expect("id"),
            via: Via::Webhook,
            name: None,
            ping_role: None,
            access_role: None,
        };
        app.state().repo.add_relay(&relay, time::OffsetDateTime::now_utc()).await.expect("relay");
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    gateway.wait_for_identify().await.expect("identified");
    Bench { fake, gateway, stop, dir }
}

impl Bench {
    fn executes(&self) -> Vec<Instant> {
        self.by_target().into_values().flatten().collect()
    }

    /// Webhook executes by webhook (one per target), in arrival order: a target receives its
    /// signals in order, so its n-th execute is the n-th signal.
    fn by_target(&self) -> std::collections::BTreeMap<String, Vec<Instant>> {
        let mut targets: std::collections::BTreeMap<String, Vec<Instant>> = Default::default();
        for (path, at) in self.fake.arrivals("POST") {
            if let Some(hook) = path.strip_suffix("?wait=true") {
                targets.entry(hook.to_owned()).or_default().push(at);
            }
        }
        targets
    }

    /// Dispatches one signal; returns when it was dispatched.
    fn signal(&self, text: &str) -> Instant {
        let message = self.fake.source_message(SOURCE_GUILD, SOURCE, 9, text, &[]);
        let at = Instant::now();
        self.gateway.dispatch("MESSAGE_CREATE", message);
        at
    }

    async fn until_executes(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.executes().len() < count {
            assert!(Instant::now() < deadline, "only {} of {count} mirrors arrived", self.executes().len());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::main]
async fn main() {
    let database = std::env::var("DOCOBO_BENCH_POSTGRES_URL").ok();
    let db = database.as_deref().map_or("sqlite", |_| "postgres");
    let bench = start(TARGETS, 10_000, database.clone()).await;
    bench.signal("warm-up");
    bench.until_executes(TARGETS as usize).await;
    let warm = bench.executes().len();
    let mut sent = Vec::with_capacity(N);
    for i in 0..N {
        sent.push(bench.signal(&format!("signal {i}")));
        tokio::time::sleep(SPACING).await;
    }
    bench.until_executes(warm + N * TARGETS as usize).await;
    let targets = bench.by_target();
    let (mut each, mut fan_out) = (Vec::new(), Vec::new());
    for (i, at) in sent.iter().enumerate() {
        // Each target's first execute was the warm-up.
        let mine: Vec<Duration> = targets.values().map(|t| t[i + 1].duration_since(*at)).collect();
        fan_out.push(mine.iter().copied().max().unwrap_or_default());
        each.extend(mine);
    }
    println!(
        "relay on {db}: {N} signals {} ms apart, each to {TARGETS} targets (Discord pacing lifted)",
        SPACING.as_millis()
    );
    support::report("source event → mirror request", each);
    support::report("source event → last of 10", fan_out);
    bench.stop();

    let wide = start(WIDE, docobo::adapters::discord::pacer::GLOBAL_RATE, database).await;
    wide.signal("warm-up");
    wide.until_executes(WIDE as usize).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let at = wide.signal("one signal, wide");
    wide.until_executes(2 * WIDE as usize).await;
    let last = wide.executes().iter().copied().max().map(|e| e.duration_since(at)).unwrap_or_default();
    let (rate, burst) =
        (docobo::adapters::discord::pacer::GLOBAL_RATE, docobo::adapters::discord::pacer::GLOBAL_BURST);
    let expected = f64::from(WIDE as u32 - burst) / f64::from(rate);
    println!(
        "fan-out of one signal to {WIDE} targets at Discord's global limit ({rate}/s, bursts of {burst}): last request \
         after {:.2} s (arithmetic: ({WIDE} - {burst}) / {rate} = {expected:.2} s)",
        last.as_secs_f64()
    );
    println!(
        "  with Discord's observed per-webhook limit (5 per 2 s) and per-channel limit (~30 per minute), one target \
         takes a new signal every 2 s at most when sustained; bursts of 5 per target go at once"
    );
    wide.stop();
}
