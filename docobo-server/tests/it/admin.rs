//! The admin API end to end: the real server with a fake Discord, called as an operator's script
//! would, with and without the bearer token.

use crate::common::*;
use docobo_core::domain::*;
use docobo_core::ports::{CatalogRepo, CheckoutRepo};
use serde_json::{Value, json};

const TOKEN: &str = "admin-token-for-tests-0123456789";

async fn admin_app() -> App {
    let app = spawn_configured(|c| c.admin_token = Some(docobo_core::domain::Secret::new(TOKEN))).await;
    let guild: GuildId = GUILD.parse().expect("id");
    app.repo.put_guild(&Guild::new(guild, "Admin test")).await.expect("guild");
    for (role, name) in [(VIP, "VIP"), (ADMINS, "Admins")] {
        let price = Money::parse("5.00", Currency::Usd).expect("price");
        let paid =
            PaidRole::new(guild, role.parse().expect("id"), name, price, Term::Lifetime).expect("role");
        app.repo.put_paid_role(&paid).await.expect("role");
    }
    sell_bank_by_sepay(&app, guild).await;
    app
}

impl App {
    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}/admin{path}", self.base)).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.admin(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.admin(reqwest::Method::POST, path, Some(body)).await
    }

    /// Waits until the fake Discord shows `role` on the member as `held`.
    async fn wait_for_role(&self, role: &str, held: bool) {
        let (guild, user, id): (u64, u64, u64) =
            (GUILD.parse().expect("id"), USER.parse().expect("id"), role.parse().expect("id"));
        let has = || self.discord.roles(guild, user).is_some_and(|r| r.contains(&id));
        eventually(&format!("role {role} held={held}"), || async { has() == held }).await;
    }
}

fn manual(role: &str, reason: &str) -> Value {
    json!({ "guild_id": GUILD, "user_id": USER, "role_id": role, "reason": reason })
}

#[tokio::test]
async fn without_a_token_configured_the_admin_api_does_not_exist() {
    let app = spawn_configured(|_| {}).await;
    let response =
        app.http.get(format!("{}/admin/events", app.base)).bearer_auth(TOKEN).send().await.expect("request");
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("json");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("DOCOBO_ADMIN_TOKEN")), "{body}");
    let spec = app.http.get(format!("{}/admin/openapi.json", app.base)).send().await.expect("request");
    assert_eq!(spec.status(), 404);
}

#[tokio::test]
async fn every_admin_route_refuses_a_missing_or_wrong_token() {
    let app = admin_app().await;
    let routes = [
        ("GET", format!("/members/{GUILD}/{USER}")),
        ("GET", "/events?status=failed".to_owned()),
        ("POST", "/events/1/replay".to_owned()),
        ("POST", "/grants".to_owned()),
        ("POST", "/revokes".to_owned()),
        ("GET", "/jobs?state=parked".to_owned()),
        ("POST", "/jobs/1/retry".to_owned()),
        ("GET", format!("/guilds/{GUILD}/summary")),
    ];
    for (method, path) in &routes {
        let url = format!("{}/admin{path}", app.base);
        let method: reqwest::Method = method.parse().expect("method");
        let body = manual(VIP, "should not run");
        let none = app.http.request(method.clone(), &url).json(&body).send().await.expect("request");
        assert_eq!(none.status(), 401, "{method} {path} without a token");
        let wrong = app.http.request(method.clone(), &url).bearer_auth("admin-token-for-tests-0123456788");
        let wrong = wrong.json(&body).send().await.expect("request");
        assert_eq!(wrong.status(), 401, "{method} {path} with a wrong token");
    }
    // Nothing ran: no grant was written.
    let (status, member) = app.get(&format!("/members/{GUILD}/{USER}")).await;
    assert_eq!(status, 200);
    assert_eq!(member["entitlements"], json!([]));
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_the_bearer_scheme() {
    let app = admin_app().await;
    let response = app.http.get(format!("{}/admin/openapi.json", app.base)).send().await.expect("request");
    assert_eq!(response.status(), 200);
    let spec: Value = response.json().await.expect("json");
    assert!(spec["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{spec}");
    for path in [
        "/members/{guild_id}/{user_id}",
        "/events",
        "/events/{id}/replay",
        "/grants",
        "/revokes",
        "/jobs",
        "/jobs/{id}/retry",
        "/guilds/{guild_id}/summary",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} missing from {}", spec["paths"]);
    }
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["AdminToken"]["scheme"], "bearer", "{schemes}");
}

#[tokio::test]
async fn a_manual_grant_reaches_discord_shows_on_the_member_and_a_revoke_removes_it() {
    let app = admin_app().await;
    let (status, body) = app.post("/grants", manual(VIP, "conference speaker")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["access_until"], Value::Null, "a lifetime grant lasts until revoked");
    app.wait_for_role(VIP, true).await;
    // The worker audits the change when it settles the job, just after Discord shows it.
    let audited = || async {
        let (_, member) = app.get(&format!("/members/{GUILD}/{USER}")).await;
        member["audit"].as_array().is_some_and(|a| a.iter().any(|e| e["action"] == "role_added"))
    };
    eventually("the grant is audited", audited).await;

    let (status, member) = app.get(&format!("/members/{GUILD}/{USER}")).await;
    assert_eq!(status, 200, "{member}");
    assert_eq!(member["entitlements"][0]["provider"], "manual");
    assert_eq!(member["entitlements"][0]["status"], "active");
    assert!(member["discord_roles"].as_array().is_some_and(|r| r.contains(&json!(VIP))), "{member}");
    let actions: Vec<&str> =
        member["audit"].as_array().expect("audit").iter().filter_map(|a| a["action"].as_str()).collect();
    assert!(actions.contains(&"manual_grant") && actions.contains(&"role_added"), "{actions:?}");
    assert!(member["audit"].as_array().expect("audit").iter().any(|a| a["reason"] == "conference speaker"));

    let (status, summary) = app.get(&format!("/guilds/{GUILD}/summary")).await;
    assert_eq!(status, 200, "{summary}");
    let vip = summary["roles"].as_array().expect("roles").iter().find(|r| r["role_id"] == VIP).cloned();
    let vip = vip.expect("VIP in the summary");
    assert_eq!((vip["active_members"].as_u64(), vip["by_status"]["active"].as_u64()), (Some(1), Some(1)));

    let (status, body) = app.post("/revokes", manual(VIP, "left the programme")).await;
    assert_eq!(status, 200, "{body}");
    app.wait_for_role(VIP, false).await;
    let (status, body) = app.post("/revokes", manual(VIP, "again")).await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn bad_manual_requests_get_clear_errors_and_write_nothing() {
    let app = admin_app().await;
    let (status, body) = app.post("/grants", manual(VIP, "   ")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("reason")), "{body}");
    let (status, body) = app.post("/grants", manual("12", "x")).await;
    assert_eq!(status, 404, "role 12 is not for sale: {body}");
    let (status, _) =
        app.post("/grants", json!({ "guild_id": "x", "user_id": USER, "role_id": VIP, "reason": "r" })).await;
    assert_eq!(status, 400);
    let (status, _) = app.get("/members/not-a-guild/1").await;
    assert_eq!(status, 400);
    let (status, _) = app.get("/guilds/1/summary").await;
    assert_eq!(status, 404);
    let huge = manual(VIP, &"x".repeat(100 * 1024));
    let (status, _) = app.post("/grants", huge).await;
    assert_eq!(status, 413, "an admin body over 64 KiB is refused before it is parsed");
    let (_, member) = app.get(&format!("/members/{GUILD}/{USER}")).await;
    assert_eq!(member["entitlements"], json!([]));
}

#[tokio::test]
async fn a_parked_job_is_listed_with_its_reason_and_can_be_retried() {
    let app = admin_app().await;
    // Admins sits above the bot's role: Discord refuses, so the job parks for a person.
    let (status, _) = app.post("/grants", manual(ADMINS, "moderator")).await;
    assert_eq!(status, 201);
    let listed = || async { app.get("/jobs?state=parked").await.1 };
    eventually("the job parks", || async { listed().await.as_array().is_some_and(|j| !j.is_empty()) }).await;
    let parked = listed().await;
    let job = &parked[0];
    assert_eq!((job["role_id"].as_str(), job["state"].as_str()), (Some(ADMINS), Some("parked")), "{parked}");
    assert!(job["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{job}");

    let (status, retried) = app.post(&format!("/jobs/{}/retry", job["id"]), json!({})).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(
        (retried["state"].as_str(), retried["attempts"].as_u64()),
        (Some("pending"), Some(0)),
        "{retried}"
    );
    let (status, _) = app.post("/jobs/999999/retry", json!({})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_failed_delivery_is_listed_and_replayed_once_after_the_fix() {
    let app = admin_app().await;
    app.deliver_unmatched_transfer(SEPAY_KEY).await;

    let (status, failed) = app.get("/events?status=failed").await;
    assert_eq!(status, 200);
    let failed = failed.as_array().expect("list").clone();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        (failed[0]["provider"].as_str(), failed[0]["event_id"].as_str()),
        (Some("sepay"), Some("92704"))
    );
    let id = failed[0]["id"].clone();
    let (status, older) = app.get(&format!("/events?status=failed&before={id}")).await;
    assert_eq!((status, older), (200, json!([])), "the cursor pages back from the given id");

    // The fix: the checkout the member started with /join is found after all.
    let checkout = bank_checkout();
    app.repo.put_checkout(&checkout).await.expect("checkout");
    let (status, replayed) = app.post(&format!("/events/{id}/replay"), json!({})).await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["outcome"], "processed", "{replayed}");
    app.wait_for_role(BANK, true).await;
    let (status, again) = app.post(&format!("/events/{id}/replay"), json!({})).await;
    assert_eq!(status, 409, "a processed event is not replayed twice: {again}");
    let (_, failed) = app.get("/events?status=failed").await;
    assert_eq!(failed, json!([]));
    let (status, _) = app.post("/events/424242/replay", json!({})).await;
    assert_eq!(status, 404);
    // Applied at last, the transfer is revenue.
    let (status, summary) = app.get(&format!("/guilds/{GUILD}/summary")).await;
    assert_eq!(status, 200);
    assert_eq!(
        summary["revenue"],
        json!([{ "month": "2026-12", "currency": "VND", "gross": "250000", "refunded": "0", "net": "250000", "payments": 1 }])
    );
}

#[tokio::test]
async fn notice_settings_are_read_and_changed_and_bad_values_are_all_named() {
    let app = admin_app().await;
    let (status, body) = app.get(&format!("/guilds/{GUILD}/notices")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "guild_id": GUILD, "enabled": true, "welcome": false, "remind": "3d,1d", "locale": "en" })
    );
    let path = format!("/guilds/{GUILD}/notices");
    let put = |body| app.admin(reqwest::Method::PUT, &path, Some(body));
    let (status, body) = put(json!({ "remind": "5d, 12h", "welcome": true, "locale": "VI" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["remind"].as_str(), body["welcome"].as_bool(), body["locale"].as_str()),
        (Some("5d,12h"), Some(true), Some("vi"))
    );
    let (status, body) = put(json!({ "remind": "2w", "locale": "fr", "enabled": false })).await;
    assert_eq!(status, 400);
    let error = body["error"].as_str().expect("error");
    assert!(error.contains("remind") && error.contains("\"2w\"") && error.contains("locale"), "{error}");
    let (_, kept) = app.get(&format!("/guilds/{GUILD}/notices")).await;
    assert_eq!(
        (kept["enabled"].as_bool(), kept["remind"].as_str()),
        (Some(true), Some("5d,12h")),
        "half-written"
    );
    let (status, _) =
        app.admin(reqwest::Method::PUT, "/guilds/1/notices", Some(json!({ "enabled": false }))).await;
    assert_eq!(status, 404);
    let (status, _) = app
        .http
        .get(format!("{}/admin/guilds/{GUILD}/notices", app.base))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("request");
    assert_eq!(status, 401);
}
