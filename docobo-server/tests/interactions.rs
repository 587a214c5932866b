//! `POST /interactions` end to end: the real server, requests signed with a test Ed25519 key as
//! Discord signs them.

use std::sync::Arc;

use docobo_core::domain::*;
use docobo_core::machine::{self, Event, EventKind, Standing, Version};
use docobo_core::ports::*;
use docobo_server::{Config, bind, local_addr, prepare, run};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

const GUILD: &str = "987654321098765432";
const USER: &str = "123456789012345678";
const ROLE: &str = "700000000000000007";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct App {
    base: String,
    key: SigningKey,
    repo: docobo_adapters::seaorm::SeaOrmRepo,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn spawn(with_key: bool) -> App {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let dir = std::env::temp_dir().join(format!("docobo-interactions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join(format!("{}.db", OffsetDateTime::now_utc().unix_timestamp_nanos()));
    let mut vars = vec![
        ("DOCOBO_DATABASE_URL", format!("sqlite://{}?mode=rwc", db.display())),
        ("DOCOBO_LISTEN", "127.0.0.1:0".to_owned()),
    ];
    if with_key {
        vars.push(("DISCORD_PUBLIC_KEY", hex(key.verifying_key().as_bytes())));
    }
    let config =
        Config::from_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).expect("config");
    let state = prepare(&config).await.expect("prepares");
    let acceptor = bind(config.listen).await.expect("binds");
    let base = format!("http://{}", local_addr(&acceptor).expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let repo = state.repo.clone();
    tokio::spawn(run(Arc::clone(&state), acceptor, async move {
        let _ = stopped.await;
    }));
    App { base, key, repo, http: reqwest::Client::new(), _stop: stop }
}

impl App {
    async fn post(&self, body: &Value, timestamp: i64, tamper: bool) -> reqwest::Response {
        let body = body.to_string();
        let ts = timestamp.to_string();
        let signature = hex(&self.key.sign(&[ts.as_bytes(), body.as_bytes()].concat()).to_bytes());
        let sent = if tamper { body.replace("\"type\":", "\"type\" :") } else { body };
        self.http
            .post(format!("{}/interactions", self.base))
            .header("x-signature-ed25519", signature)
            .header("x-signature-timestamp", ts)
            .header("content-type", "application/json")
            .body(sent)
            .send()
            .await
            .expect("request")
    }
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn ping() -> Value {
    json!({ "id": "1", "application_id": "2", "type": 1, "token": "t", "version": 1 })
}

fn command(name: &str) -> Value {
    json!({
        "id": "1", "application_id": "2", "type": 2, "token": "t", "version": 1,
        "channel_id": "3", "guild_id": GUILD, "locale": "en-US", "entitlements": [], "attachment_size_limit": 8_388_608,
        "data": { "id": "4", "name": name, "type": 1 },
        "member": {
            "user": { "id": USER, "username": "buyer", "discriminator": "0", "global_name": null, "avatar": null },
            "roles": [], "deaf": false, "mute": false, "flags": 0, "joined_at": "2026-01-01T00:00:00+00:00",
            "permissions": "0"
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_ping_gets_a_pong() {
    let app = spawn(true).await;
    let response = app.post(&ping(), now(), false).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.expect("json")["type"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_missing_or_stale_signatures_get_401() {
    let app = spawn(true).await;
    assert_eq!(app.post(&ping(), now(), true).await.status(), 401, "tampered body");
    assert_eq!(app.post(&ping(), now() - 400, false).await.status(), 401, "stale timestamp");
    assert_eq!(app.post(&ping(), now() + 400, false).await.status(), 401, "future timestamp");
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
    let role: RoleId = ROLE.parse().expect("id");
    app.repo.put_guild(&Guild::new(guild, "Server")).await.expect("guild");
    let price = Money::parse("5", Currency::Usd).expect("price");
    app.repo
        .put_paid_role(&PaidRole::new(guild, role, "VIP", price, Term::Recurring).expect("role"))
        .await
        .expect("role");
    let empty = app.post(&command("status"), now(), false).await.json::<Value>().await.expect("json");
    assert!(empty["data"]["content"].as_str().is_some_and(|c| c.contains("no purchases")), "{empty}");

    let until = OffsetDateTime::now_utc() + Duration::days(20);
    let paid = Event {
        kind: EventKind::PaymentSucceeded { access_until: Some(until) },
        version: Version(OffsetDateTime::now_utc()),
    };
    let standing = machine::apply(&Standing::new(Term::Recurring), &paid, OffsetDateTime::now_utc())
        .expect("applies")
        .standing;
    let write = EntitlementWrite::Insert {
        guild,
        user: USER.parse().expect("id"),
        role,
        provider: ProviderKind::Polar,
        external_ref: "sub_1".parse().expect("ref"),
        standing,
        deadline: None,
    };
    let commit = Commit {
        event: None,
        replay: false,
        writes: vec![write],
        jobs: vec![],
        cause: "test".into(),
        at: OffsetDateTime::now_utc(),
    };
    app.repo.commit(commit).await.expect("commit");

    let status = app.post(&command("status"), now(), false).await.json::<Value>().await.expect("json");
    assert_eq!(status["type"], 4);
    assert_eq!(status["data"]["flags"], 64, "only the member sees it");
    let text = status["data"]["content"].as_str().unwrap_or_default();
    assert!(text.contains("VIP") && text.contains("active") && text.contains("until"), "{text}");
    let help = app.post(&command("help"), now(), false).await.json::<Value>().await.expect("json");
    assert!(
        help["data"]["content"].as_str().is_some_and(|c| c.contains("/join") && c.contains("/status")),
        "{help}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_public_key_interactions_are_not_served() {
    let app = spawn(false).await;
    assert_eq!(app.post(&ping(), now(), false).await.status(), 404);
}
