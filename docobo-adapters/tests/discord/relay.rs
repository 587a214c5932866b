//! The relay's target side ([`DiscordMirrors`]) and attachment store against the fake Discord:
//! channel webhooks found again after a restart, recreated once when deleted, bot messages with
//! an enforced nonce, uploads, and Discord's refusals turned into retry or park.

use docobo_adapters::discord::DiscordRoles;
use docobo_adapters::discord::attachments::AttachmentStore;
use docobo_adapters::discord::relay::DiscordMirrors;
use docobo_adapters::simulator::discord::FakeDiscord;
use docobo_core::domain::{Attachment, Author, ChannelId, GuildId, Relay, RelayId, RoleId, Via};
use docobo_core::ports::{MirrorError, MirrorGateway, MirrorPart};
use serde_json::json;
use time::OffsetDateTime;

use super::BOT;

const TARGET_GUILD: u64 = 222_000_000_000_000_001;
const TARGET: u64 = 222_000_000_000_000_101;

fn relay(via: Via) -> Relay {
    Relay {
        id: RelayId(1),
        source_guild: GuildId::new(111).expect("id"),
        source_channel: ChannelId::new(112).expect("id"),
        target_guild: GuildId::new(TARGET_GUILD).expect("id"),
        target_channel: ChannelId::new(TARGET).expect("id"),
        via,
        name: None,
        ping_role: None,
        access_role: None,
        created_at: OffsetDateTime::now_utc(),
    }
}

fn part(content: &str) -> MirrorPart {
    MirrorPart { content: content.into(), embeds: Vec::new(), files: Vec::new(), ping: None }
}

fn analyst() -> Author {
    Author { name: "analyst".into(), avatar_url: Some("https://cdn.discordapp.com/avatars/1/a.png".into()) }
}

fn store() -> AttachmentStore {
    let dir = std::env::temp_dir().join(format!(
        "docobo-store-{}-{}",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    AttachmentStore::new(&dir)
}

async fn mirrors() -> (FakeDiscord, DiscordMirrors, AttachmentStore) {
    let fake = FakeDiscord::start(BOT).await.expect("fake");
    let store = store();
    let mirrors = DiscordMirrors::new(DiscordRoles::new("fake-token", &fake.base_url), store.clone());
    (fake, mirrors, store)
}

#[tokio::test]
async fn webhook_mirrors_upload_files_mention_no_one_and_reuse_one_webhook_after_a_restart() {
    let (fake, first, store) = mirrors().await;
    let digest = store.put(b"PNG-BYTES").await.expect("stored");
    let chart = Attachment {
        id: "55".into(),
        name: "chart.png".into(),
        content_type: Some("image/png".into()),
        size: 9,
        url: "https://cdn.discordapp.com/attachments/1/55/chart.png".into(),
        stored: Some(digest),
    };
    let with_file =
        MirrorPart { files: vec![chart], embeds: vec![r#"{"title":"levels"}"#.into()], ..part("BTC long") };
    let since = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let posted = first.post(&relay(Via::Webhook), &analyst(), &with_file, "n1").await.expect("posts");
    let shown = fake.channel_messages(TARGET);
    assert_eq!(shown.len(), 1);
    assert_eq!((shown[0].content.as_str(), shown[0].username.as_str()), ("BTC long", "analyst"));
    assert_eq!(shown[0].files, vec![("chart.png".to_owned(), 9)]);
    assert_eq!(shown[0].embeds, json!([{ "title": "levels" }]));
    assert_eq!(shown[0].allowed_mentions, json!({ "parse": [] }));
    assert_eq!(posted.webhook, shown[0].webhook);

    // A restart: a new instance finds the same webhook, and edits and deletes through it.
    let restarted = DiscordMirrors::new(DiscordRoles::new("fake-token", &fake.base_url), store);
    restarted.post(&relay(Via::Webhook), &analyst(), &part("ETH short"), "n2").await.expect("posts");
    assert_eq!(fake.webhooks(TARGET).len(), 1, "no second webhook");
    assert_eq!(fake.count("POST", &format!("/channels/{TARGET}/webhooks")), 1);
    restarted.edit(&relay(Via::Webhook), posted, &part("BTC long, stop 60k")).await.expect("edits");
    assert_eq!(fake.channel_messages(TARGET)[0].content, "BTC long, stop 60k");
    let recent = restarted.posted_since(&relay(Via::Webhook), since).await.expect("reads");
    let contents: Vec<&str> = recent.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(contents, ["BTC long, stop 60k", "ETH short"]);
    restarted.delete(&relay(Via::Webhook), posted).await.expect("deletes");
    restarted
        .delete(&relay(Via::Webhook), posted)
        .await
        .expect("a second delete finds it gone, which is fine");
    assert_eq!(fake.channel_messages(TARGET).len(), 1);
}

#[tokio::test]
async fn a_deleted_webhook_is_recreated_once_and_its_old_mirrors_are_reported_unchangeable() {
    let (fake, mirrors, _) = mirrors().await;
    let old = mirrors.post(&relay(Via::Webhook), &analyst(), &part("one"), "n1").await.expect("posts");
    fake.delete_webhooks(TARGET);
    let new = mirrors
        .post(&relay(Via::Webhook), &analyst(), &part("two"), "n2")
        .await
        .expect("recreates and posts");
    assert_ne!(old.webhook, new.webhook);
    assert_eq!(fake.webhooks(TARGET).len(), 1);
    let refused = mirrors.edit(&relay(Via::Webhook), old, &part("one, edited")).await;
    assert!(matches!(&refused, Err(MirrorError::Refused { why }) if why.contains("deleted")), "{refused:?}");
}

#[tokio::test]
async fn bot_mirrors_carry_a_nonce_so_a_repeat_returns_the_first_message_and_ping_only_their_role() {
    let (fake, mirrors, _) = mirrors().await;
    let ping = MirrorPart { ping: Some(RoleId::new(77).expect("id")), ..part("<@&77> BTC long") };
    let first = mirrors.post(&relay(Via::Bot), &analyst(), &ping, "nonce-1").await.expect("posts");
    let again = mirrors.post(&relay(Via::Bot), &analyst(), &ping, "nonce-1").await.expect("posts");
    assert_eq!(first, again);
    assert_eq!(first.webhook, None);
    let shown = fake.channel_messages(TARGET);
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].nonce.as_deref(), Some("nonce-1"));
    assert_eq!(shown[0].allowed_mentions, json!({ "parse": [], "roles": ["77"] }));
    mirrors.edit(&relay(Via::Bot), first, &part("BTC closed")).await.expect("edits");
    assert_eq!(fake.channel_messages(TARGET)[0].content, "BTC closed");
}

#[tokio::test]
async fn discords_refusals_become_a_retry_with_its_wait_or_a_park_naming_the_permission() {
    let (fake, mirrors, _) = mirrors().await;
    fake.inject_rate_limit(1, false);
    let limited = mirrors.post(&relay(Via::Bot), &analyst(), &part("x"), "n").await;
    let Err(MirrorError::Retryable { after: Some(after), .. }) = limited else { panic!("{limited:?}") };
    assert!(after >= time::Duration::seconds(1), "{after}");
    fake.inject(503, std::time::Duration::ZERO);
    assert!(matches!(
        mirrors.post(&relay(Via::Bot), &analyst(), &part("x"), "n").await,
        Err(MirrorError::Retryable { .. })
    ));
    let posted = mirrors.post(&relay(Via::Bot), &analyst(), &part("x"), "n").await.expect("posts");
    fake.inject_code(400, 30046);
    let old = mirrors.edit(&relay(Via::Bot), posted, &part("y")).await;
    let Err(MirrorError::Retryable { after: Some(after), why }) = old else { panic!("{old:?}") };
    assert!(after >= time::Duration::minutes(10) && why.contains("30046"), "{after} {why}");
    // Unknown Webhook twice in a row: recreated once, then parked.
    mirrors.post(&relay(Via::Webhook), &analyst(), &part("x"), "n").await.expect("posts");
    fake.inject_code(404, 10015); // the execute
    fake.exhaust_bucket(0); // listing the channel's webhooks again goes through
    fake.inject_code(404, 10015); // the execute through the webhook found
    let gone = mirrors.post(&relay(Via::Webhook), &analyst(), &part("x"), "n").await;
    assert!(
        matches!(&gone, Err(MirrorError::Refused { why }) if why.contains("disappeared again")),
        "{gone:?}"
    );
    let elsewhere = Relay { target_channel: ChannelId::new(TARGET + 1).expect("id"), ..relay(Via::Webhook) };
    fake.deny_webhooks(TARGET + 1, true);
    let denied = mirrors.post(&elsewhere, &analyst(), &part("x"), "n").await;
    assert!(
        matches!(&denied, Err(MirrorError::Refused { why }) if why.contains("Manage Webhooks") && why.contains(&(TARGET + 1).to_string())),
        "{denied:?}"
    );
}

#[tokio::test]
async fn attachments_are_stored_once_by_content_and_failed_downloads_say_why() {
    let fake = FakeDiscord::start(BOT).await.expect("fake");
    let store = store();
    let message = fake.source_message(1, 2, 3, "chart", &[("chart.png", "PNG-BYTES")]);
    let url = message["attachments"][0]["url"].as_str().expect("url");
    let digest = store.fetch(url, 9).await.expect("downloads");
    assert_eq!(digest, store.put(b"PNG-BYTES").await.expect("stores"), "content-addressed");
    assert_eq!(store.read(&digest).await.expect("reads"), b"PNG-BYTES");
    let missing = store.fetch(&url.replace("chart.png", "gone.png"), 9).await;
    assert!(missing.is_err_and(|why| why.contains("404")));
    let huge = store.fetch(url, 1 << 40).await;
    assert!(huge.is_err_and(|why| why.contains("cap")));
    assert!(store.read("../../etc/passwd").await.is_err(), "only digests name stored files");
}

#[tokio::test]
async fn relay_problems_name_each_missing_permission_and_a_target_everyone_can_read() {
    const VIEW: u64 = 1 << 10;
    const HISTORY: u64 = 1 << 16;
    const SEND: u64 = 1 << 11;
    const WEBHOOKS: u64 = 1 << 29;
    let fake = FakeDiscord::start(BOT).await.expect("fake");
    let (source_guild, target_guild) = (111, TARGET_GUILD);
    fake.add_guild(source_guild);
    fake.add_guild(target_guild);
    // Members see the source; the bot's role (guild id + 1) may also read history there.
    fake.set_role_permissions(source_guild, source_guild, VIEW | SEND);
    fake.set_role_permissions(source_guild, source_guild + 1, HISTORY);
    fake.set_channel(source_guild, 112, json!([]));
    // The target: everyone may view it (the leak), the bot may not manage webhooks.
    fake.set_role_permissions(target_guild, target_guild, VIEW | HISTORY);
    fake.set_channel(target_guild, TARGET, json!([]));
    let discord = DiscordRoles::new("fake-token", &fake.base_url);
    let problems = discord.relay_problems(&relay(Via::Webhook)).await.expect("checks");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("MANAGE_WEBHOOKS") || problems[0].contains("Manage Webhooks"),
        "{problems:?}"
    );
    assert!(problems[0].contains(&TARGET.to_string()));
    assert!(problems[1].contains("everyone") && problems[1].contains("leak"), "{problems:?}");

    // Fixed: @everyone denied View Channel on the target, the bot's role allowed Manage Webhooks.
    let overwrites = json!([
        { "id": target_guild.to_string(), "type": 0, "allow": "0", "deny": VIEW.to_string() },
        { "id": (target_guild + 1).to_string(), "type": 0, "allow": (VIEW | WEBHOOKS).to_string(), "deny": "0" },
    ]);
    fake.set_channel(target_guild, TARGET, overwrites);
    assert_eq!(discord.relay_problems(&relay(Via::Webhook)).await.expect("checks"), Vec::<String>::new());
    // As the bot it would also need to send, embed and attach.
    let as_bot = discord.relay_problems(&relay(Via::Bot)).await.expect("checks");
    assert_eq!(as_bot.len(), 1, "{as_bot:?}");
    // A source the bot cannot read.
    fake.set_channel(
        source_guild,
        112,
        json!([{ "id": source_guild.to_string(), "type": 0, "allow": "0", "deny": VIEW.to_string() }]),
    );
    let blind = discord.relay_problems(&relay(Via::Webhook)).await.expect("checks");
    assert!(blind.len() == 1 && blind[0].contains("source channel 112"), "{blind:?}");
}

#[tokio::test]
async fn the_upload_limit_follows_the_target_servers_boost_level() {
    let (fake, mirrors, _) = mirrors().await;
    fake.add_guild(TARGET_GUILD);
    assert_eq!(mirrors.upload_limit(&relay(Via::Webhook)).await, 10 * 1024 * 1024);
    fake.set_premium_tier(TARGET_GUILD, 2);
    assert_eq!(mirrors.upload_limit(&relay(Via::Webhook)).await, 10 * 1024 * 1024, "read once an hour");
    let fresh = DiscordMirrors::new(DiscordRoles::new("fake-token", &fake.base_url), store());
    assert_eq!(fresh.upload_limit(&relay(Via::Webhook)).await, 50 * 1024 * 1024);
    let unknown = Relay { target_guild: GuildId::new(1).expect("id"), ..relay(Via::Webhook) };
    assert_eq!(fresh.upload_limit(&unknown).await, 10 * 1024 * 1024, "the smallest when unknown");
}
