//! Shared by the interaction and admin tests: the real server on 127.0.0.1:0 with a fresh SQLite file, a
//! fake Discord and a fake Polar on loopback, and interactions signed with a test Ed25519 key as
//! Discord signs them.

#![allow(dead_code)]

use docobo_adapters::simulator::discord::FakeDiscord;
use docobo_adapters::simulator::gateway::FakeGateway;
use docobo_adapters::simulator::polar::FakePolar;
use docobo_core::domain::Secret;
use docobo_server::{Application, Builder, Config};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use time::OffsetDateTime;

pub const GUILD: &str = "987654321098765432";
pub const USER: &str = "123456789012345678";
/// Position 5, below the bot's role (10).
pub const VIP: &str = "700000000000000007";
/// Position 4.
pub const BANK: &str = "700000000000000008";
/// Position 20, above the bot's role.
pub const ADMINS: &str = "700000000000000009";
pub const BOT: u64 = 555_000_000_000_000_001;
pub const POLAR_TOKEN: &str = "polar_oat_test";
pub const SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const PUBLIC_URL: &str = "https://docobo.example.org";
/// Discord's MANAGE_GUILD permission bit.
pub const MANAGE_GUILD: u64 = 1 << 5;
/// Discord's ADMINISTRATOR permission bit.
pub const ADMINISTRATOR: u64 = 1 << 3;
/// What Discord reports as the owner's permissions in an interaction: all of them, which
/// includes Administrator. [`USER`] owns the test guild.
pub const OWNER: u64 = MANAGE_GUILD | ADMINISTRATOR;

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

pub struct App {
    pub base: String,
    pub key: SigningKey,
    pub repo: docobo_adapters::seaorm::SeaOrmRepo,
    pub http: reqwest::Client,
    pub discord: FakeDiscord,
    pub polar: FakePolar,
    /// The running server's state, for tests that hold its resources.
    pub state: std::sync::Arc<docobo_server::state::AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The server, configured for interactions (`with_key`) against a fake Discord where the guild
/// has VIP (5), Bank (4) and Admins (20) and the member has joined, and a fake Polar.
pub async fn spawn(with_key: bool) -> App {
    spawn_full(with_key, None, |_| {}, |b| b).await
}

/// As [`spawn`] (without the interactions key), with more configuration, e.g. the admin token.
pub async fn spawn_configured(configure: impl FnOnce(&mut Config)) -> App {
    spawn_full(false, None, configure, |b| b).await
}

/// As [`spawn`] (with the interactions key), with more configuration and more than
/// configuration: a clock, providers of its own.
pub async fn spawn_built(
    configure: impl FnOnce(&mut Config),
    extend: impl FnOnce(Builder) -> Builder,
) -> App {
    spawn_full(true, None, configure, extend).await
}

/// As [`spawn`], with the gateway on and connected to `gateway`.
pub async fn spawn_with_gateway(gateway: &FakeGateway) -> App {
    spawn_full(true, Some(gateway), |_| {}, |b| b).await
}

/// As [`spawn_with_gateway`], with more configuration.
pub async fn spawn_with_gateway_configured(
    gateway: &FakeGateway,
    configure: impl FnOnce(&mut Config),
) -> App {
    spawn_full(true, Some(gateway), configure, |b| b).await
}

async fn spawn_full(
    with_key: bool,
    gateway: Option<&FakeGateway>,
    configure: impl FnOnce(&mut Config),
    extend: impl FnOnce(Builder) -> Builder,
) -> App {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let discord = FakeDiscord::start(BOT).await.expect("fake discord");
    let guild: u64 = GUILD.parse().expect("id");
    discord.add_guild(guild);
    discord.add_role(guild, VIP.parse().expect("id"), "VIP", 5);
    discord.add_role(guild, BANK.parse().expect("id"), "Bank", 4);
    discord.add_role(guild, ADMINS.parse().expect("id"), "Admins", 20);
    discord.join(guild, USER.parse().expect("id"));
    discord.set_owner(guild, USER.parse().expect("id"));
    if let Some(gateway) = gateway {
        discord.set_gateway_url(&gateway.url);
    }
    let polar = FakePolar::start(POLAR_TOKEN).await.expect("fake polar");
    let dir = std::env::temp_dir().join(format!("docobo-interactions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join(format!("{}.db", OffsetDateTime::now_utc().unix_timestamp_nanos()));
    let mut config = Config {
        database_url: format!("sqlite://{}?mode=rwc", db.display()),
        listen: "127.0.0.1:0".parse().expect("address"),
        secret_key: Some(Secret::new(SECRET_KEY)),
        public_url: PUBLIC_URL.to_owned(),
        discord_bot_token: Some(Secret::new("fake-token")),
        gateway: gateway.is_some(),
        discord_api_url: discord.base_url.clone(),
        polar_api_url: polar.base_url.clone(),
        discord_public_key: with_key.then(|| hex(key.verifying_key().as_bytes())),
        data_dir: dir.join("data"),
        ..Config::default()
    };
    configure(&mut config);
    let app = extend(Application::builder(config)).build().await.expect("builds");
    let base = app.base_url();
    let repo = app.state().repo.clone();
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    App { base, key, repo, http: reqwest::Client::new(), discord, polar, state, stop: Some(stop) }
}

impl App {
    /// Begins the server's graceful shutdown, as SIGTERM does.
    pub fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Posts `body` signed at `timestamp`; `tamper` alters the body after signing.
    pub async fn post_at(&self, body: &Value, timestamp: i64, tamper: bool) -> reqwest::Response {
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

    /// Posts a correctly signed interaction and returns the JSON answer (asserting a 200).
    pub async fn interact(&self, body: &Value) -> Value {
        let response = self.post_at(body, now(), false).await;
        let status = response.status();
        let answer: Value = response.json().await.expect("json");
        assert_eq!(status, 200, "interaction not answered: {answer}");
        answer
    }

    /// The deferred answer delivered for the interaction with `token`.
    pub async fn follow_up(&self, token: &str) -> Value {
        self.discord.wait_for_edit(token).await.unwrap_or_else(|| panic!("no follow-up for {token}"))
    }
}

fn member(permissions: u64) -> Value {
    json!({
        "user": { "id": USER, "username": "buyer", "discriminator": "0", "global_name": null, "avatar": null },
        "roles": [], "deaf": false, "mute": false, "flags": 0, "joined_at": "2026-01-01T00:00:00+00:00",
        "permissions": permissions.to_string()
    })
}

fn envelope(kind: u8, token: &str, permissions: u64, data: Value) -> Value {
    json!({
        "id": "1", "application_id": "2", "type": kind, "token": token, "version": 1,
        "channel_id": "3", "guild_id": GUILD, "locale": "en-US", "entitlements": [],
        "attachment_size_limit": 8_388_608, "data": data, "member": member(permissions),
        "message": {
            "id": "10", "channel_id": "3", "content": "", "timestamp": "2026-01-01T00:00:00+00:00",
            "edited_timestamp": null, "tts": false, "mention_everyone": false, "mentions": [],
            "mention_roles": [], "attachments": [], "embeds": [], "pinned": false, "type": 0,
            "author": { "id": BOT.to_string(), "username": "docobo", "discriminator": "0", "global_name": null, "avatar": null }
        }
    })
}

pub fn ping() -> Value {
    json!({ "id": "1", "application_id": "2", "type": 1, "token": "t", "version": 1 })
}

/// A slash command from the member, with `permissions`.
pub fn command(name: &str, permissions: u64) -> Value {
    envelope(2, "t", permissions, json!({ "id": "4", "name": name, "type": 1 }))
}

/// A button click by the owner.
pub fn button(custom_id: &str, token: &str) -> Value {
    envelope(3, token, OWNER, json!({ "custom_id": custom_id, "component_type": 2 }))
}

/// The same interaction sent by another member: `user`, holding `roles`, with `permissions`.
pub fn as_member(mut interaction: Value, user: &str, roles: &[&str], permissions: u64) -> Value {
    interaction["member"]["user"]["id"] = json!(user);
    interaction["member"]["roles"] = json!(roles);
    interaction["member"]["permissions"] = json!(permissions.to_string());
    interaction
}

/// A string select choice.
pub fn choose(custom_id: &str, value: &str, token: &str) -> Value {
    let data = json!({ "custom_id": custom_id, "component_type": 3, "values": [value] });
    envelope(3, token, 0, data)
}

/// A role select choice of `roles` (id, name), resolved as Discord sends it.
pub fn choose_roles(roles: &[(&str, &str)], token: &str) -> Value {
    let resolved: serde_json::Map<String, Value> = roles
        .iter()
        .map(|(id, name)| {
            let role = json!({
                "id": id, "name": name, "color": 0, "colors": { "primary_color": 0 }, "hoist": false, "managed": false, "mentionable": false,
                "icon": null, "unicode_emoji": null, "permissions": "0", "position": 1, "flags": 0,
            });
            ((*id).to_owned(), role)
        })
        .collect();
    let values: Vec<&str> = roles.iter().map(|(id, _)| *id).collect();
    let data = json!({
        "custom_id": "setup:roles", "component_type": 6, "values": values, "resolved": { "roles": resolved },
    });
    envelope(3, token, OWNER, data)
}

/// A submitted form with `fields` (custom id, value).
pub fn submit(custom_id: &str, fields: &[(&str, &str)], token: &str) -> Value {
    let rows: Vec<Value> = fields
        .iter()
        .map(|(id, value)| json!({ "type": 1, "components": [{ "type": 4, "custom_id": id, "value": value }] }))
        .collect();
    envelope(5, token, OWNER, json!({ "custom_id": custom_id, "components": rows }))
}

/// The text of an answer (`data.content`) or of a follow-up edit (`content`).
pub fn content(answer: &Value) -> String {
    answer["data"]["content"].as_str().or_else(|| answer["content"].as_str()).unwrap_or_default().to_owned()
}

/// Waits (up to 20 s, checking every 10 ms) for `check` to hold; fails naming `what`. The one
/// way these tests wait for the server's background work.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let waited =
        docobo_adapters::simulator::eventually(what, std::time::Duration::from_secs(20), check).await;
    if let Err(e) = waited {
        panic!("never happened: {e}");
    }
}

/// The SePay key of [`sell_bank_by_sepay`].
pub const SEPAY_KEY: &str = "sepay-key-for-tests-0123456789abcdef";

/// Sells Bank (250,000 VND for 30 days) in `guild` by SePay, configured with [`SEPAY_KEY`].
pub async fn sell_bank_by_sepay(app: &App, guild: docobo_core::domain::GuildId) {
    use docobo_core::domain::{Currency, Money, PaidRole, ProductLink, ProviderName, Term};
    use docobo_core::ports::CatalogRepo;
    let price = Money::parse("250000", Currency::Vnd).expect("price");
    let mut bank =
        PaidRole::new(guild, BANK.parse().expect("id"), "Bank", price, Term::fixed(30).expect("term"))
            .expect("role");
    bank.link(ProductLink::to(ProviderName::SEPAY));
    app.repo.put_paid_role(&bank).await.expect("role");
    app.repo.put_credentials(guild, ProviderName::SEPAY, &sepay_credentials(SEPAY_KEY)).await.expect("creds");
}

/// SePay credentials with `key`, receiving on MBBank account 0123499999, references `DCB…`.
pub fn sepay_credentials(key: &str) -> docobo_core::ports::ProviderCredentials {
    let mut creds = docobo_core::ports::ProviderCredentials::new(Secret::new(key));
    creds.settings = [("account", "0123499999"), ("code_prefix", "DCB"), ("bank", "MBBank")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    creds
}

/// A fresh schema in the PostgreSQL at `DOCOBO_TEST_POSTGRES_URL`, as a database URL; `None`
/// (saying so) when the variable is not set (`.ci/run` always sets it).
pub async fn fresh_postgres() -> Option<String> {
    use sea_orm::{ConnectionTrait, Database};
    let url = std::env::var("DOCOBO_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty());
    let Some(url) = url else {
        eprintln!("DOCOBO_TEST_POSTGRES_URL is not set: PostgreSQL case not run (.ci/run always sets it)");
        return None;
    };
    let schema = format!(
        "docobo_t{}_wh_{}",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000
    );
    let admin = Database::connect(&url).await.expect("PostgreSQL reachable");
    admin.execute_unprepared(&format!("CREATE SCHEMA {schema}")).await.expect("schema");
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
}

/// A SePay transfer to the test account paying code `DCBQ7K2XM`, which no checkout matches until
/// [`bank_checkout`] is stored: it lands in the failure inbox.
pub fn unmatched_transfer() -> Value {
    json!({
        "id": 92704, "gateway": "MBBank", "transactionDate": "2026-12-01 10:00:00",
        "accountNumber": "0123499999", "code": "DCBQ7K2XM", "content": "DCBQ7K2XM chuyen tien",
        "transferType": "in", "transferAmount": 250000, "accumulated": 0, "subAccount": null,
        "referenceCode": "FT1", "description": "",
    })
}

impl App {
    /// Delivers [`unmatched_transfer`] signed with the SePay `key`; asserts the 200.
    pub async fn deliver_unmatched_transfer(&self, key: &str) {
        let response = self
            .http
            .post(format!("{}/webhooks/sepay/{GUILD}", self.base))
            .header("authorization", format!("Apikey {key}"))
            .json(&unmatched_transfer())
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
    }
}

/// The checkout [`unmatched_transfer`] pays: the member's `/join` of Bank, found after all.
pub fn bank_checkout() -> docobo_core::domain::Checkout {
    use docobo_core::domain::{Currency, Money, ProviderName};
    let now = OffsetDateTime::now_utc();
    docobo_core::domain::Checkout {
        reference: "DCBQ7K2XM".parse().expect("ref"),
        guild: GUILD.parse().expect("id"),
        user: USER.parse().expect("id"),
        role: BANK.parse().expect("id"),
        provider: ProviderName::SEPAY,
        expected: Money::parse("250000", Currency::Vnd).expect("amount"),
        created_at: now,
        expires_at: now + time::Duration::hours(24),
    }
}
