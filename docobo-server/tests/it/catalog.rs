//! The provider registry and the catalog rules through the running server: providers of an
//! embedder's own, each under its own name, and the admin API refusing what `/setup` and the CLI
//! refuse.

use std::sync::Arc;

use crate::common::*;
use docobo_core::domain::*;
use docobo_core::ports::*;
use docobo_core::testing::{ManualClock, ToyProvider};
use serde_json::{Value, json};
use time::{Duration, macros::datetime};

const SHOP_A: ProviderName = ProviderName::known("shop-a");
const SHOP_B: ProviderName = ProviderName::known("shop-b");
const TOKEN: &str = "admin-token-for-catalog-tests";

fn guild() -> GuildId {
    GUILD.parse().expect("id")
}

/// A toy delivery paying for `product`, signed with `secret`.
fn delivery(id: &str, product: &str, secret: &str) -> (String, String) {
    let body = format!(
        "id={id}\nkind=payment_succeeded\nref=ord_{id}\nversion=1780000000\nuser={USER}\nproduct={product}\n"
    );
    let signature = ToyProvider::sign(secret, body.as_bytes());
    (body, signature)
}

async fn post(app: &App, provider: &str, (body, signature): (String, String)) -> reqwest::StatusCode {
    app.http
        .post(format!("{}/webhooks/{provider}/{GUILD}", app.base))
        .header(docobo_core::testing::SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await
        .expect("request")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_providers_of_an_embedders_own_each_take_their_own_webhooks_in_one_app() {
    let start = datetime!(2026-06-01 12:00 UTC);
    let clock = Arc::new(ManualClock::new(start));
    let app = spawn_built(
        |_| {},
        |b| {
            b.clock(clock.clone())
                .provider(Arc::new(ToyProvider::named(SHOP_A)))
                .provider(Arc::new(ToyProvider::named(SHOP_B)))
        },
    )
    .await;
    let vip: RoleId = VIP.parse().expect("id");
    app.repo.put_guild(&Guild::new(guild(), "Shop")).await.expect("guild");
    let price = Money::parse("5.00", Currency::Usd).expect("price");
    let role = PaidRole::new(guild(), vip, "VIP", price, Term::Fixed { days: 30 })
        .expect("role")
        .with_link(ProductLink::product(SHOP_A, "a-vip"))
        .with_link(ProductLink::product(SHOP_B, "b-vip"));
    app.repo.put_paid_role(&role).await.expect("role");
    for (name, secret) in [(SHOP_A, "secret-a"), (SHOP_B, "secret-b")] {
        app.repo
            .put_credentials(guild(), name, &ProviderCredentials::new(Secret::new(secret)))
            .await
            .expect("creds");
    }

    assert_eq!(
        post(&app, "shop-a", delivery("b1", "a-vip", "secret-b")).await,
        401,
        "signed with B's secret"
    );
    assert_eq!(post(&app, "shop-c", delivery("c1", "a-vip", "secret-a")).await, 404, "not registered");
    assert_eq!(post(&app, "shop-a", delivery("a1", "a-vip", "secret-a")).await, 200);
    clock.advance(Duration::days(1));
    assert_eq!(post(&app, "shop-b", delivery("b1", "b-vip", "secret-b")).await, 200);
    assert_eq!(post(&app, "shop-b", delivery("b1", "b-vip", "secret-b")).await, 200, "a duplicate");

    let user: UserId = USER.parse().expect("id");
    let mut bought: Vec<(ProviderName, Timestamp)> = app
        .repo
        .member_entitlements(guild(), user)
        .await
        .expect("read")
        .iter()
        .map(|e| (e.provider, e.created_at))
        .collect();
    bought.sort();
    assert_eq!(
        bought,
        [(SHOP_A, start), (SHOP_B, start + Duration::days(1))],
        "business time is the app's clock"
    );
    let events = app.repo.recent_events(None, None, 10).await.expect("events");
    assert_eq!(events.len(), 2, "nothing stored for the forged, unknown or duplicate deliveries");
    eventually("the fake Discord grants VIP", || async {
        app.discord.roles(guild().get(), user.get()).is_some_and(|r| r.contains(&vip.get()))
    })
    .await;
}

async fn admin(app: &App, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
    let response = app
        .http
        .request(method, format!("{}/admin{path}", app.base))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// M3 through the admin API: a bank transfer never renews, so SePay cannot sell a recurring
/// role; the same rule as `/setup` and `docobo role add`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m3_the_admin_api_refuses_sepay_for_a_recurring_role_and_stores_nothing() {
    let app = spawn_configured(|c| c.admin_token = Some(Secret::new(TOKEN))).await;
    let put = reqwest::Method::PUT;
    let role = |term: &str| {
        json!({ "name": "Bank", "price": "250000", "currency": "VND", "term": term,
                "links": [{ "provider": "sepay" }] })
    };
    let path = format!("/guilds/{GUILD}/roles/{BANK}");
    let (status, body) = admin(&app, put.clone(), &path, &role("30d")).await;
    assert_eq!(status, 404, "the guild is not registered yet: {body}");
    app.repo.put_guild(&Guild::new(guild(), "Shop")).await.expect("guild");

    let (status, body) = admin(&app, put.clone(), &path, &role("recurring")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("never renew")), "{body}");
    assert!(app.repo.paid_roles(guild()).await.expect("read").is_empty(), "nothing stored");

    let stranger =
        json!({ "price": "5", "currency": "USD", "term": "recurring", "links": [{ "provider": "stripe" }] });
    let (status, body) = admin(&app, put.clone(), &path, &stranger).await;
    assert!(
        status == 400 && body["error"].as_str().is_some_and(|e| e.contains("no provider named stripe")),
        "{body}"
    );

    let (status, body) = admin(&app, put, &path, &role("30d")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["links"], json!([{ "provider": "sepay" }]));
    let (status, listed) =
        admin(&app, reqwest::Method::GET, &format!("/guilds/{GUILD}/roles"), &Value::Null).await;
    assert_eq!((status, listed[0]["term"].as_str()), (200, Some("30d")), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_stores_credentials_only_once_the_provider_accepts_them() {
    let app = spawn_configured(|c| c.admin_token = Some(Secret::new(TOKEN))).await;
    app.repo.put_guild(&Guild::new(guild(), "Shop")).await.expect("guild");
    let put = reqwest::Method::PUT;
    let sepay = |key: &str| json!({ "values": { "api_key": key, "bank": "MBBank", "account": "0123499999", "auth": "hmac" } });
    let path = format!("/guilds/{GUILD}/providers/sepay");
    let (status, body) = admin(&app, put.clone(), &path, &sepay("short")).await;
    assert!(status == 400 && body["error"].as_str().is_some_and(|e| e.contains("at least 32")), "{body}");
    assert_eq!(app.repo.credentials(guild(), ProviderName::SEPAY).await.expect("read"), None);

    let (status, body) = admin(&app, put.clone(), &path, &sepay("0123456789abcdef0123456789abcdef")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["webhook_url"], format!("{PUBLIC_URL}/webhooks/sepay/{GUILD}"));
    assert!(!body.to_string().contains("0123456789abcdef"), "the key is never echoed");
    let stored = app.repo.credentials(guild(), ProviderName::SEPAY).await.expect("read").expect("stored");
    assert_eq!(stored.settings.get("auth").map(String::as_str), Some("hmac"));

    let (status, _) = admin(&app, put, &format!("/guilds/{GUILD}/providers/stripe"), &sepay("x")).await;
    assert_eq!(status, 404);
}
