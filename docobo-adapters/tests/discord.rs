//! The serenity role gateway against the fake Discord on loopback: the production code path
//! (proxy + our pacing), real HTTP, Discord's error codes.

use std::time::Duration;

use docobo_adapters::discord::DiscordRoles;
use docobo_adapters::simulator::discord::FakeDiscord;
use docobo_core::domain::{GuildId, RoleId, UserId};
use docobo_core::ports::{GatewayError, Manageable, RoleGateway};

const BOT: u64 = 555_000_000_000_000_001;

#[path = "discord/relay.rs"]
mod relay;
const G: u64 = 900_000_000_000_000_001;
const U: u64 = 123_456_789_012_345_678;
const VIP: u64 = 700_000_000_000_000_007;

fn ids() -> (GuildId, UserId, RoleId) {
    (GuildId::new(G).expect("id"), UserId::new(U).expect("id"), RoleId::new(VIP).expect("id"))
}

async fn discord() -> (FakeDiscord, DiscordRoles) {
    let fake = FakeDiscord::start(BOT).await.expect("fake");
    fake.add_guild(G);
    fake.add_role(G, VIP, "VIP", 5);
    fake.join(G, U);
    let gateway = DiscordRoles::new("fake-token", &fake.base_url);
    (fake, gateway)
}

#[tokio::test]
async fn roles_are_read_added_and_removed_with_an_audit_reason() {
    let (fake, gateway) = discord().await;
    let (g, u, r) = ids();
    assert!(gateway.member_roles(g, u).await.expect("reads").is_empty());
    gateway.add_role(g, u, r, "Docobo: polar evt_1").await.expect("adds");
    assert_eq!(fake.roles(G, U), Some([VIP].into()));
    assert!(gateway.member_roles(g, u).await.expect("reads").contains(&r));
    assert_eq!(fake.count("PUT", &format!("/api/v10/guilds/{G}/members/{U}/roles/{VIP}")), 1);
    gateway.remove_role(g, u, r, "Docobo: refund").await.expect("removes");
    assert_eq!(fake.roles(G, U), Some([].into()));
    assert_eq!(fake.count("DELETE", "/roles/"), 1);
    let reasons = fake.audit_reasons();
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[0], "Docobo%3A%20polar%20evt%5F1", "percent-encoded as Discord expects");
}

#[tokio::test]
async fn discord_errors_are_classified_for_the_worker() {
    let (fake, gateway) = discord().await;
    let (g, u, r) = ids();
    fake.inject(429, Duration::ZERO);
    assert!(matches!(gateway.add_role(g, u, r, "x").await, Err(GatewayError::Retryable { .. })));
    fake.inject(502, Duration::ZERO);
    assert!(matches!(gateway.member_roles(g, u).await, Err(GatewayError::Retryable { .. })));
    fake.add_role(G, 42, "Above the bot", 20);
    let above = RoleId::new(42).expect("id");
    let err = gateway.add_role(g, u, above, "x").await.expect_err("hierarchy");
    assert!(
        matches!(&err, GatewayError::Forbidden { why } if why.contains("50013") && why.contains("above")),
        "{err:?}"
    );
    let stranger = UserId::new(99).expect("id");
    assert_eq!(gateway.member_roles(g, stranger).await, Err(GatewayError::MemberGone));
    assert_eq!(gateway.add_role(g, stranger, r, "x").await, Err(GatewayError::MemberGone));
    let deleted = RoleId::new(43).expect("id");
    assert!(matches!(gateway.add_role(g, u, deleted, "x").await, Err(GatewayError::NotFound { .. })));
}

#[tokio::test]
async fn a_hanging_discord_times_out_as_retryable() {
    let (fake, gateway) = discord().await;
    let gateway = gateway.with_timeout(Duration::from_millis(200));
    let (g, u, _) = ids();
    fake.inject(200, Duration::from_secs(3));
    let err = gateway.member_roles(g, u).await.expect_err("times out");
    assert!(matches!(&err, GatewayError::Retryable { why, .. } if why.contains("in time")), "{err:?}");
}

#[tokio::test]
async fn the_bot_can_manage_only_roles_below_its_own() {
    let (fake, gateway) = discord().await;
    let (g, _, r) = ids();
    assert_eq!(gateway.bot_can_manage(g, r).await, Ok(Manageable::Yes));
    fake.add_role(G, 42, "Admins", 20);
    let no = gateway.bot_can_manage(g, RoleId::new(42).expect("id")).await.expect("answers");
    assert!(
        matches!(&no, Manageable::No { why, fix } if why.contains("Admins") && fix.contains("drag")),
        "{no:?}"
    );
    fake.add_managed_role(G, 44, "Server Booster", 2);
    let no = gateway.bot_can_manage(g, RoleId::new(44).expect("id")).await.expect("answers");
    assert!(matches!(&no, Manageable::No { why, .. } if why.contains("managed")), "{no:?}");
    let everyone = RoleId::new(G).expect("id");
    assert!(matches!(gateway.bot_can_manage(g, everyone).await, Ok(Manageable::No { .. })));
    let missing = gateway.bot_can_manage(g, RoleId::new(45).expect("id")).await.expect("answers");
    assert!(matches!(&missing, Manageable::No { why, .. } if why.contains("does not exist")), "{missing:?}");
    fake.revoke_manage_roles(G);
    let no = gateway.bot_can_manage(g, r).await.expect("answers");
    assert!(matches!(&no, Manageable::No { why, .. } if why.contains("Manage Roles")), "{no:?}");
}

#[tokio::test]
async fn commands_are_registered_globally_or_in_one_guild() {
    use docobo_adapters::discord::commands::register;
    let (fake, _) = discord().await;
    let names = register("fake-token", &fake.base_url, 42, None).await.expect("registers");
    assert_eq!(names, ["help", "status", "join", "notify", "setup"]);
    assert_eq!(fake.commands(None), names);
    assert_eq!(fake.count("PUT", "/applications/42/commands"), 1);
    let guild = GuildId::new(G).expect("id");
    register("fake-token", &fake.base_url, 42, Some(guild)).await.expect("registers");
    assert_eq!(fake.commands(Some(G)).len(), 5);
    assert_eq!(fake.count("PUT", &format!("/applications/42/guilds/{G}/commands")), 1);
    fake.inject(500, Duration::ZERO);
    assert!(matches!(
        register("fake-token", &fake.base_url, 42, None).await,
        Err(GatewayError::Retryable { .. })
    ));
}

/// M2: Discord's `Retry-After` and `global` flag were thrown away (serenity's error keeps only the
/// status and body), so while Discord answered 429 with `Retry-After: 20`, the same role was
/// requested again within those 20 seconds. Now the wait is the job's floor, and the pacer holds
/// the route (or, for a global limit, everything) until it is over.
#[tokio::test]
async fn m2_a_route_429_sets_the_jobs_floor_and_holds_the_route_meanwhile() {
    let (fake, gateway) = discord().await;
    let (g, u, r) = ids();
    fake.inject_rate_limit(20, false);
    let err = gateway.add_role(g, u, r, "x").await.expect_err("limited");
    assert!(
        matches!(err, GatewayError::Retryable { after: Some(a), .. } if a >= time::Duration::seconds(20)),
        "{err:?}"
    );
    let again = tokio::time::timeout(Duration::from_secs(1), gateway.add_role(g, u, r, "x")).await;
    assert!(again.is_err(), "held while the bucket is limited");
    assert_eq!(fake.count("PUT", "/roles/"), 1, "nothing more was sent");
    // Reading the member is another bucket: it goes at once.
    assert!(gateway.member_roles(g, u).await.is_ok());
}

#[tokio::test]
async fn m2_a_global_429_pauses_every_call() {
    let (fake, gateway) = discord().await;
    let (g, u, _) = ids();
    fake.inject_rate_limit(20, true);
    let err = gateway.member_roles(g, u).await.expect_err("limited");
    assert!(matches!(err, GatewayError::Retryable { after: Some(_), .. }), "{err:?}");
    let other = GuildId::new(G + 1).expect("id");
    let held = tokio::time::timeout(Duration::from_secs(1), gateway.member_roles(other, u)).await;
    assert!(held.is_err(), "a global limit holds every guild and route");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn m2_an_empty_bucket_holds_its_routes_until_it_resets() {
    let (fake, gateway) = discord().await;
    let (g, u, r) = ids();
    fake.exhaust_bucket(20);
    gateway.add_role(g, u, r, "x").await.expect("adds: the bucket was not yet empty");
    let held = tokio::time::timeout(Duration::from_secs(1), gateway.remove_role(g, u, r, "x")).await;
    assert!(held.is_err(), "the next call on the same bucket waits for the reset");
    assert_eq!(fake.count("DELETE", "/roles/"), 0);
}

/// An embedding bot's own `Http` (here proxied to the fake, as `DOCOBO_DISCORD_API_URL` would
/// be) carries Docobo's role changes, and its proxy is where Docobo's own reads go too.
#[tokio::test]
async fn roles_go_through_a_host_bots_own_http_client() {
    let (fake, _) = discord().await;
    let (g, u, r) = ids();
    let host = std::sync::Arc::new(docobo_adapters::discord::rest_client("fake-token", &fake.base_url));
    let roles = DiscordRoles::from_http(host);
    assert_eq!(roles.bot_can_manage(g, r).await, Ok(Manageable::Yes));
    roles.add_role(g, u, r, "Docobo: polar evt_1").await.expect("adds");
    assert_eq!(fake.roles(G, U), Some([VIP].into()));
    assert!(roles.member_roles(g, u).await.expect("reads").contains(&r));
}

fn dm(text: &str, nonce: &str) -> docobo_core::ports::DirectMessage {
    docobo_core::ports::DirectMessage {
        text: text.to_owned(),
        button: Some(("Renew".to_owned(), "https://pay.example/c/1".to_owned())),
        image: None,
        nonce: nonce.to_owned(),
    }
}

#[tokio::test]
async fn a_dm_opens_its_channel_once_mentions_no_one_and_carries_the_renew_button() {
    use docobo_core::ports::DirectMessages;
    let (fake, gateway) = discord().await;
    let (_, u, _) = ids();
    gateway.send_dm(u, &dm("Your access ends in 3 days", "docobo-n1")).await.expect("sent");
    gateway.send_dm(u, &dm("Your access ends in 1 day", "docobo-n2")).await.expect("sent");
    assert_eq!(fake.count("POST", "/users/@me/channels"), 1, "the DM channel is cached");
    let sent = fake.dms(U);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["allowed_mentions"], serde_json::json!({ "parse": [] }));
    assert_eq!(
        (sent[0]["nonce"].as_str(), sent[0]["enforce_nonce"].as_bool()),
        (Some("docobo-n1"), Some(true))
    );
    assert_eq!(sent[0]["components"][0]["components"][0]["url"], "https://pay.example/c/1");
    // A repeat with the same nonce (a sender that died before recording) is not shown twice.
    gateway.send_dm(u, &dm("Your access ends in 1 day", "docobo-n2")).await.expect("answered");
    assert_eq!(fake.dms(U).len(), 2);
}

#[tokio::test]
async fn dms_closed_is_unreachable_and_discord_trouble_is_retryable() {
    use docobo_core::ports::{DirectMessages, DmError};
    let (fake, gateway) = discord().await;
    let (_, u, _) = ids();
    fake.close_dms(U);
    assert_eq!(gateway.send_dm(u, &dm("hi", "n1")).await, Err(DmError::Unreachable));
    let other = UserId::new(U + 1).expect("id");
    fake.inject_rate_limit(1, false);
    let limited = gateway.send_dm(other, &dm("hi", "n2")).await;
    assert!(
        matches!(limited, Err(DmError::Retryable { after: Some(a), .. }) if a >= time::Duration::seconds(1)),
        "{limited:?}"
    );
    fake.inject(502, Duration::ZERO);
    assert!(matches!(gateway.send_dm(other, &dm("hi", "n3")).await, Err(DmError::Retryable { .. })));
    assert!(fake.dms(U + 1).is_empty());
}
