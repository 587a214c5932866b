//! The signal relay end to end: the real server with its gateway connected to the fake gateway,
//! the fake Discord holding the source and target channels, on SQLite and PostgreSQL. One
//! source, three targets in two guilds.

use docobo_adapters::simulator::gateway::FakeGateway;
use docobo_core::domain::Secret;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{App, BOT, eventually, fresh_postgres, spawn_with_gateway_configured};

const SOURCE_GUILD: u64 = 111_000_000_000_000_001;
const SOURCE: u64 = 111_000_000_000_000_100;
const TARGET_GUILDS: [u64; 2] = [222_000_000_000_000_001, 333_000_000_000_000_001];
/// Two targets in the first guild, one in the second.
const TARGETS: [(u64, u64); 3] = [
    (TARGET_GUILDS[0], 222_000_000_000_000_101),
    (TARGET_GUILDS[0], 222_000_000_000_000_102),
    (TARGET_GUILDS[1], 333_000_000_000_000_101),
];
const ANALYST: u64 = 444_000_000_000_000_001;
const ADMIN_TOKEN: &str = "relay-admin-token-0123456789";

struct Relayed {
    app: App,
    gateway: FakeGateway,
}

impl Relayed {
    async fn start(database_url: Option<String>) -> Relayed {
        let gateway = FakeGateway::start(BOT, 2).await.expect("fake gateway");
        let data =
            std::env::temp_dir().join(format!("docobo-relay-{}-{}", std::process::id(), rand_suffix()));
        let app = spawn_with_gateway_configured(&gateway, |c| {
            c.admin_token = Some(Secret::new(ADMIN_TOKEN));
            c.data_dir = data;
            if let Some(url) = database_url {
                c.database_url = url;
            }
        })
        .await;
        for (i, (guild, channel)) in TARGETS.iter().enumerate() {
            let mut relay = json!({
                "source_guild_id": SOURCE_GUILD.to_string(), "source_channel_id": SOURCE.to_string(),
                "target_guild_id": guild.to_string(), "target_channel_id": channel.to_string(),
            });
            if i == 2 {
                relay["name"] = json!("vip feed");
            }
            let added = app
                .http
                .post(format!("{}/admin/relays", app.base))
                .bearer_auth(ADMIN_TOKEN)
                .json(&relay)
                .send()
                .await
                .expect("request");
            assert_eq!(added.status(), 201, "{}", added.text().await.unwrap_or_default());
        }
        gateway.wait_for_identify().await.expect("the server identified at the gateway");
        Relayed { app, gateway }
    }

    /// An analyst posts in the source channel; the gateway tells the server.
    fn post(&self, content: &str, files: &[(&str, &str)]) -> Value {
        let payload = self.app.discord.source_message(SOURCE_GUILD, SOURCE, ANALYST, content, files);
        self.gateway.dispatch("MESSAGE_CREATE", payload.clone());
        payload
    }

    fn contents(&self, channel: u64) -> Vec<String> {
        self.app.discord.channel_messages(channel).into_iter().map(|m| m.content).collect()
    }

    async fn until_every_target_shows(&self, what: &str, expected: &[&str]) {
        let shown = || TARGETS.iter().all(|(_, channel)| self.contents(*channel) == expected);
        let waited =
            docobo_adapters::simulator::eventually(what, Duration::from_secs(20), || async { shown() }).await;
        if let Err(e) = waited {
            let targets: Vec<Vec<String>> = TARGETS.iter().map(|(_, c)| self.contents(*c)).collect();
            panic!("{e}; the targets show {targets:?}");
        }
    }
}

fn rand_suffix() -> i128 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos()
}

/// `message` as MESSAGE_UPDATE after an edit at `edited` (RFC 3339) to `content`.
fn edited(message: &Value, content: &str, edited: &str) -> Value {
    let mut update = message.clone();
    update["content"] = json!(content);
    update["edited_timestamp"] = json!(edited);
    update
}

async fn create_edit_unfurl_delete_and_burst(database_url: Option<String>) {
    let r = Relayed::start(database_url).await;
    let discord = &r.app.discord;

    // create → exactly one mirror per target, the attachment re-uploaded, the author's name.
    let first = r.post("BTC long 64k <@&999>", &[("chart.png", "PNG-BYTES")]);
    r.until_every_target_shows("the signal in every target", &["BTC long 64k @role"]).await;
    for (_, channel) in TARGETS {
        let mirrors = discord.channel_messages(channel);
        assert_eq!(mirrors[0].files, vec![("chart.png".to_owned(), 9)], "target {channel}");
        assert_eq!(mirrors[0].username, format!("analyst{ANALYST}"));
        assert_eq!(mirrors[0].allowed_mentions, json!({ "parse": [] }));
        assert!(mirrors[0].webhook.is_some());
        assert_eq!(discord.webhooks(channel).len(), 1, "one webhook per target channel");
    }

    // edit → one edit per target.
    let edit = edited(&first, "BTC long 64k, stop 60k", "2026-12-06T10:00:00+00:00");
    r.gateway.dispatch("MESSAGE_UPDATE", edit.clone());
    r.until_every_target_shows("the edit in every target", &["BTC long 64k, stop 60k"]).await;
    assert_eq!(discord.count("PATCH", "/webhooks/"), 3);

    // An unfurl (a link embed, no new edited_timestamp) and a pin are not edits.
    let mut unfurl = edit.clone();
    unfurl["embeds"] = json!([{ "type": "article", "url": "https://example.com", "title": "Example" }]);
    r.gateway.dispatch("MESSAGE_UPDATE", unfurl);
    let mut pinned = edit.clone();
    pinned["pinned"] = json!(true);
    r.gateway.dispatch("MESSAGE_UPDATE", pinned);
    r.post("ETH short", &[]);
    r.until_every_target_shows("the next signal", &["BTC long 64k, stop 60k", "ETH short"]).await;
    assert_eq!(discord.count("PATCH", "/webhooks/"), 3, "nothing edited for an unfurl or a pin");

    // delete → every mirror deleted; an edit after the delete → nothing.
    let delete =
        json!({ "id": first["id"], "channel_id": SOURCE.to_string(), "guild_id": SOURCE_GUILD.to_string() });
    r.gateway.dispatch("MESSAGE_DELETE", delete);
    r.until_every_target_shows("the delete in every target", &["ETH short"]).await;
    assert_eq!(discord.deleted_messages().len(), 3);
    r.gateway.dispatch("MESSAGE_UPDATE", edited(&first, "resurrected?", "2026-12-06T11:00:00+00:00"));

    // 20 signals in a burst arrive in order in every target.
    let burst: Vec<String> = (1..=20).map(|n| format!("signal {n}")).collect();
    let ids: Vec<Value> = burst.iter().map(|text| r.post(text, &[])["id"].clone()).collect();
    let mut expected = vec!["ETH short"];
    expected.extend(burst.iter().map(String::as_str));
    r.until_every_target_shows("the burst, in order, in every target", &expected).await;
    assert_eq!(discord.count("PATCH", "/webhooks/"), 3, "the edit after the delete was dropped");
    assert_eq!(discord.count("POST", "/webhooks/"), 3 * 22, "one execute per signal and target");

    // A moderator bulk-deletes the first three of the burst.
    let bulk =
        json!({ "ids": ids[..3], "channel_id": SOURCE.to_string(), "guild_id": SOURCE_GUILD.to_string() });
    r.gateway.dispatch("MESSAGE_DELETE_BULK", bulk);
    let mut left = vec!["ETH short"];
    left.extend(burst[3..].iter().map(String::as_str));
    r.until_every_target_shows("the bulk delete in every target", &left).await;
    let metrics = r.app.http.get(format!("{}/metrics", r.app.base)).send().await.expect("request");
    let metrics = metrics.text().await.expect("text");
    assert!(metrics.contains("docobo_relay_jobs_total{outcome=\"mirrored\"}"), "{metrics}");
    for op in ["create", "update", "delete"] {
        assert!(
            metrics.contains(&format!("docobo_relay_latency_seconds_count{{op=\"{op}\"}}")),
            "{op}: {metrics}"
        );
    }

    // The admin API reports each relay healthy, with its latency. A target shows the bulk delete
    // a moment before the worker commits it, so wait for every job to settle.
    let relays = || async {
        let answer = r.app.http.get(format!("{}/admin/relays", r.app.base)).bearer_auth(ADMIN_TOKEN).send();
        let relays: Value = answer.await.expect("request").json().await.expect("json");
        relays.as_array().expect("a list").clone()
    };
    eventually("every relay settled", || async { relays().await.iter().all(|relay| relay["state"] == "ok") })
        .await;
    let relays = relays().await;
    assert_eq!(relays.len(), 3);
    for relay in &relays {
        assert_eq!(relay["state"], "ok", "{relay}");
        let ops: Vec<&str> =
            relay["latency"].as_array().expect("latency").iter().filter_map(|l| l["op"].as_str()).collect();
        assert_eq!(ops, ["create", "update", "delete"], "{relay}");
    }
    assert_eq!(relays[2]["name"], "vip feed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_is_mirrored_edited_and_deleted_in_three_targets_in_order_on_sqlite() {
    create_edit_unfurl_delete_and_burst(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_is_mirrored_edited_and_deleted_in_three_targets_in_order_on_postgres() {
    let Some(url) = fresh_postgres().await else { return };
    create_edit_unfurl_delete_and_burst(Some(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_without_manage_webhooks_is_parked_with_the_fix_and_delivered_when_retried() {
    let r = Relayed::start(None).await;
    let (_, denied) = TARGETS[1];
    r.app.discord.deny_webhooks(denied, true);
    r.post("BTC long", &[]);
    let admin =
        |path: &str| r.app.http.get(format!("{}/admin{path}", r.app.base)).bearer_auth(ADMIN_TOKEN).send();
    eventually("the job parked", || async {
        let jobs: Value = admin("/relays/jobs").await.expect("request").json().await.unwrap_or(Value::Null);
        jobs.as_array().is_some_and(|j| j.len() == 1)
    })
    .await;
    let jobs: Value = admin("/relays/jobs").await.expect("request").json().await.expect("json");
    let why = jobs[0]["last_error"].as_str().unwrap_or_default();
    assert!(why.contains("Manage Webhooks") && why.contains(&denied.to_string()), "{why}");
    eventually("the other targets", || async { r.contents(TARGETS[0].1) == ["BTC long"] }).await;
    assert!(r.contents(denied).is_empty());

    r.app.discord.deny_webhooks(denied, false);
    let retry =
        format!("{}/admin/relays/jobs/{}/{}/retry", r.app.base, jobs[0]["signal_id"], jobs[0]["relay_id"]);
    let retried = r.app.http.post(retry).bearer_auth(ADMIN_TOKEN).send().await.expect("request");
    assert_eq!(retried.status(), 200);
    eventually("the retried mirror", || async { r.contents(denied) == ["BTC long"] }).await;
}
