//! `POST /interactions` end to end: the real server, requests signed with a test Ed25519 key as
//! Discord signs them.

use crate::common::*;
use docobo_core::domain::*;
use docobo_core::ports::*;
use docobo_core::testing::purchase;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_ping_gets_a_pong() {
    let app = spawn(true).await;
    let response = app.post_at(&ping(), now(), false).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.expect("json")["type"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_missing_or_stale_signatures_get_401() {
    let app = spawn(true).await;
    assert_eq!(app.post_at(&ping(), now(), true).await.status(), 401, "tampered body");
    assert_eq!(app.post_at(&ping(), now() - 400, false).await.status(), 401, "stale timestamp");
    assert_eq!(app.post_at(&ping(), now() + 400, false).await.status(), 401, "future timestamp");
    let unsigned = app
        .http
        .post(format!("{}/interactions", app.base))
        .body(ping().to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(unsigned.status(), 401);
    let other = SigningKey::from_bytes(&[8u8; 32]);
    let body = ping().to_string();
    let ts = now().to_string();
    let forged = hex(&other.sign(&[ts.as_bytes(), body.as_bytes()].concat()).to_bytes());
    let response = app
        .http
        .post(format!("{}/interactions", app.base))
        .header("x-signature-ed25519", forged)
        .header("x-signature-timestamp", ts)
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401, "signed by another key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_what_the_member_has_and_help_explains_the_commands() {
    let app = spawn(true).await;
    let guild: GuildId = GUILD.parse().expect("id");
    let role: RoleId = VIP.parse().expect("id");
    app.repo.put_guild(&Guild::new(guild, "Server")).await.expect("guild");
    let price = Money::parse("5", Currency::Usd).expect("price");
    app.repo
        .put_paid_role(&PaidRole::new(guild, role, "VIP", price, Term::Recurring).expect("role"))
        .await
        .expect("role");
    let empty = app.interact(&command("status", 0)).await;
    assert!(empty["data"]["content"].as_str().is_some_and(|c| c.contains("no purchases")), "{empty}");

    let until = OffsetDateTime::now_utc() + Duration::days(20);
    let key = RoleJobKey { guild, user: USER.parse().expect("id"), role };
    let commit = purchase(key, "sub_1", Term::Recurring, Some(until), OffsetDateTime::now_utc());
    app.repo.commit(commit).await.expect("commit");

    let status = app.interact(&command("status", 0)).await;
    assert_eq!(status["type"], 4);
    assert_eq!(status["data"]["flags"], 64, "only the member sees it");
    let text = status["data"]["content"].as_str().unwrap_or_default();
    assert!(text.contains("VIP") && text.contains("active") && text.contains("until"), "{text}");
    let help = app.interact(&command("help", 0)).await;
    assert!(
        help["data"]["content"].as_str().is_some_and(|c| c.contains("/join") && c.contains("/status")),
        "{help}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_public_key_interactions_are_not_served() {
    let app = spawn(false).await;
    assert_eq!(app.post_at(&ping(), now(), false).await.status(), 404);
}
