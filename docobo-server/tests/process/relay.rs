//! The relay's exactly-once promise across a SIGKILL: the server is killed mid-burst while
//! mirrors are in flight (Discord has posted them, the answers are still on their way), more
//! signals are posted while it is down, and after a restart every signal is in every target
//! exactly once, in order: through a channel webhook (no nonce: the job's recorded attempt and a
//! read of the target find what the killed process posted) and as the bot (nonce).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use docobo_adapters::seaorm::SeaOrmRepo;
use docobo_adapters::simulator::discord::FakeDiscord;
use docobo_adapters::simulator::eventually;
use docobo_adapters::simulator::gateway::FakeGateway;
use docobo_core::domain::{ChannelId, GuildId, JobState, NewRelay, Via};
use docobo_core::ports::RelayRepo;
use time::OffsetDateTime;

const BOT: u64 = 555;
const SOURCE_GUILD: u64 = 111_000_000_000_000_001;
const SOURCE: u64 = 111_000_000_000_000_100;
const TARGET_GUILD: u64 = 222_000_000_000_000_001;
const BY_WEBHOOK: u64 = 222_000_000_000_000_101;
const BY_BOT: u64 = 222_000_000_000_000_102;
const SIGNALS: usize = 30;
/// Signals posted while the server is down.
const WHILE_DOWN: usize = 5;

fn start(dir: &std::path::Path, database_url: &str, discord: &FakeDiscord) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_docobo-server"))
        .current_dir(dir)
        .env_clear()
        .env("DOCOBO_LISTEN", "127.0.0.1:0")
        .env("DOCOBO_DATABASE_URL", database_url)
        .env("DISCORD_BOT_TOKEN", "fake-token")
        .env("DOCOBO_DISCORD_API_URL", &discord.base_url)
        .env("DOCOBO_GATEWAY", "on")
        .env("DOCOBO_DISCORD_RATE", "1000")
        // A 2 s call timeout makes the relay lease 18 s: the jobs the killed process held are
        // taken over that long after it died.
        .env("DOCOBO_DISCORD_TIMEOUT", "2")
        .env("DOCOBO_DATA_DIR", dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    crate::announced(&mut child);
    child
}

fn contents(discord: &FakeDiscord, channel: u64) -> Vec<String> {
    discord.channel_messages(channel).into_iter().map(|m| m.content).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_mirrors_in_flight_then_restart_mirrors_every_signal_exactly_once_in_order_on_sqlite() {
    kill_mid_burst(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_mirrors_in_flight_then_restart_mirrors_every_signal_exactly_once_in_order_on_postgres()
{
    let Some((_, url)) = crate::faults::postgres_schema("relay_kill").await else { return };
    kill_mid_burst(Some(url)).await;
}

async fn kill_mid_burst(postgres: Option<String>) {
    let n = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let dir = std::env::temp_dir().join(format!("docobo-relay-kill-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let database_url =
        postgres.unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("relay.db").display()));
    let repo = SeaOrmRepo::connect(&database_url, None).await.expect("connect");
    repo.migrate().await.expect("migrate");
    for (channel, via) in [(BY_WEBHOOK, Via::Webhook), (BY_BOT, Via::Bot)] {
        let relay = NewRelay {
            source_guild: GuildId::new(SOURCE_GUILD).expect("id"),
            source_channel: ChannelId::new(SOURCE).expect("id"),
            target_guild: GuildId::new(TARGET_GUILD).expect("id"),
            target_channel: ChannelId::new(channel).expect("id"),
            via,
            name: None,
            ping_role: None,
            access_role: None,
        };
        repo.add_relay(&relay, OffsetDateTime::now_utc()).await.expect("relay");
    }
    let discord = FakeDiscord::start(BOT).await.expect("fake discord");
    let gateway = FakeGateway::start(BOT, 2).await.expect("fake gateway");
    discord.set_gateway_url(&gateway.url);
    // Every post takes effect at once but is answered 300 ms later: at the kill, several are
    // on Discord without their answer recorded.
    discord.delay_answers(Duration::from_millis(300));

    let mut child = start(&dir, &database_url, &discord);
    gateway.wait_for_identify().await.expect("identified");
    let expected: Vec<String> = (1..=SIGNALS).map(|i| format!("signal {i}")).collect();
    for text in &expected[..SIGNALS - WHILE_DOWN] {
        let message = discord.source_message(SOURCE_GUILD, SOURCE, 9, text, &[]);
        gateway.dispatch("MESSAGE_CREATE", message);
    }
    let mid_burst = eventually("some mirrors posted", Duration::from_secs(30), || async {
        contents(&discord, BY_WEBHOOK).len() >= 6 && contents(&discord, BY_BOT).len() >= 6
    })
    .await;
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    mid_burst.expect("the burst was under way");
    let at_kill = contents(&discord, BY_WEBHOOK).len().min(contents(&discord, BY_BOT).len());
    assert!(at_kill < SIGNALS - WHILE_DOWN, "the kill came mid-burst ({at_kill} mirrored)");
    // Posts Discord made whose answers the killed process never recorded: what must not be
    // posted again.
    let recorded = repo.mirror_jobs(JobState::Done, 1_000).await.expect("jobs").len();
    let on_discord = contents(&discord, BY_WEBHOOK).len() + contents(&discord, BY_BOT).len();
    assert!(
        on_discord > recorded,
        "no mirror was in flight at the kill ({on_discord} posted, {recorded} recorded)"
    );

    // Posted while the server is down: no gateway event reaches anyone; the restart's
    // catch-up reads them from the source channel.
    for text in &expected[SIGNALS - WHILE_DOWN..] {
        discord.source_message(SOURCE_GUILD, SOURCE, 9, text, &[]);
    }
    discord.delay_answers(Duration::ZERO);
    let mut child = start(&dir, &database_url, &discord);
    let settled = eventually("every signal mirrored", Duration::from_secs(60), || async {
        contents(&discord, BY_WEBHOOK).len() >= SIGNALS && contents(&discord, BY_BOT).len() >= SIGNALS
    })
    .await;
    // Late duplicates would come after the last signal; give them a moment to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.kill().expect("stops");
    let _ = child.wait();
    let (by_webhook, by_bot) = (contents(&discord, BY_WEBHOOK), contents(&discord, BY_BOT));
    let _ = std::fs::remove_dir_all(&dir);
    settled.unwrap_or_else(|e| panic!("{e}: webhook target {by_webhook:?}, bot target {by_bot:?}"));
    assert_eq!(by_webhook, expected, "the webhook target");
    assert_eq!(by_bot, expected, "the bot target");
}
