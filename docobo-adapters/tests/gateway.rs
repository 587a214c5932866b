//! The gateway transport end to end: serenity's real client against the fake gateway and fake
//! REST API on loopback.

use std::sync::Arc;
use std::time::Duration;

use docobo_adapters::discord::bot::Bot;
use docobo_adapters::discord::gateway::{GatewayEvents, run};
use docobo_adapters::discord::rest_client;
use docobo_adapters::simulator::discord::FakeDiscord;
use docobo_adapters::simulator::gateway::{FakeGateway, guild_create, member_add};
use docobo_core::domain::*;
use docobo_core::ports::*;
use docobo_core::testing::{ManualClock, MemoryRepo, purchase};
use serde_json::json;
use time::macros::datetime;

const GUILD: u64 = 987_654_321_098_765_432;
const USER: u64 = 123_456_789_012_345_678;
const ROLE: u64 = 700_000_000_000_000_007;
const BOT: u64 = 555_000_000_000_000_001;
const NOW: Timestamp = datetime!(2026-11-22 10:00 UTC);

async fn until(what: &str, done: impl AsyncFn() -> bool) {
    for _ in 0..500 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 5 s");
}

/// The member bought the role, then left; their entitlement is active.
async fn repo_with_a_purchase() -> MemoryRepo {
    let repo = MemoryRepo::new();
    let key = RoleJobKey {
        guild: GuildId::new(GUILD).expect("id"),
        user: UserId::new(USER).expect("id"),
        role: RoleId::new(ROLE).expect("id"),
    };
    let commit = purchase(key, "order_1", Term::Lifetime, None, NOW);
    repo.commit(commit).await.expect("commit");
    repo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_registers_guilds_requeues_rejoining_members_and_answers_commands() {
    let discord = FakeDiscord::start(BOT).await.expect("fake discord");
    let gateway = FakeGateway::start(BOT, 2).await.expect("fake gateway");
    discord.set_gateway_url(&gateway.url);
    let repo = Arc::new(repo_with_a_purchase().await);
    let bot =
        Bot::new(repo.clone(), None, docobo_core::ports::ProviderRegistry::new(), "http://127.0.0.1:3000");
    let handler =
        GatewayEvents { bot, repo: repo.clone(), clock: Arc::new(ManualClock::new(NOW)), relay: None };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let client = tokio::spawn(run(rest_client("fake-token", &discord.base_url), handler, async move {
        let _ = stopped.await;
    }));

    let identify = gateway.wait_for_identify().await.expect("the client identifies");
    assert!(identify["token"].as_str().is_some_and(|t| t.ends_with("fake-token")), "{identify}");
    assert_eq!(identify["intents"], 3, "GUILDS | GUILD_MEMBERS");

    gateway.dispatch("GUILD_CREATE", guild_create(GUILD, "Paid Club", USER));
    let g = GuildId::new(GUILD).expect("id");
    until("guild registered", async || {
        repo.guild(g).await.ok().flatten().is_some_and(|g| g.name == "Paid Club")
    })
    .await;

    gateway.dispatch("GUILD_MEMBER_ADD", member_add(GUILD, USER));
    until("role job queued", async || !repo.jobs(JobState::Pending, 10).await.unwrap_or_default().is_empty())
        .await;
    let jobs = repo.jobs(JobState::Pending, 10).await.expect("jobs");
    assert_eq!(jobs.iter().map(|j| j.key.role.get()).collect::<Vec<_>>(), [ROLE]);

    let help = json!({
        "id": "77", "application_id": "2", "type": 2, "token": "gw-help", "version": 1, "channel_id": "3",
        "guild_id": GUILD.to_string(), "locale": "en-US", "entitlements": [], "attachment_size_limit": 8_388_608,
        "data": { "id": "4", "name": "help", "type": 1 },
        "member": { "user": { "id": USER.to_string(), "username": "buyer", "discriminator": "0", "global_name": null,
                              "avatar": null },
                    "roles": [], "deaf": false, "mute": false, "flags": 0, "joined_at": "2026-01-01T00:00:00+00:00",
                    "permissions": "0" }
    });
    gateway.dispatch("INTERACTION_CREATE", help);
    until("interaction answered", async || !discord.callbacks("gw-help").is_empty()).await;
    let answer = &discord.callbacks("gw-help")[0];
    assert_eq!(answer["type"], 4);
    assert!(answer["data"]["content"].as_str().is_some_and(|c| c.contains("/join")), "{answer}");

    let _ = stop.send(());
    let ended = tokio::time::timeout(Duration::from_secs(10), client).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "the client stops on shutdown: {ended:?}");
}
