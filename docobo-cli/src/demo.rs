//! `docobo demo`: the whole flow on this machine, with nothing configured — a temporary SQLite
//! database, the real server on loopback, a local fake Discord and fake Polar — printing a
//! timeline with the measured acknowledgement and webhook → Discord latencies.
//!
//! Story: a member buys VIP by card (Polar subscription) and gets the role; buys 30 days by bank
//! transfer (SePay) and gets that role; buys 30 days of Signals in a Sell.app store, whose webhook
//! names only the order (acknowledged at once, read from a fake Sell.app API after); buys a
//! lifetime supporter role and is refunded, which removes it; cancels VIP, which keeps the role
//! until the period ends; 27 days later gets "your access ends in 3 days" DMs with a renew
//! button; and 30 days later the fixed terms and the cancelled VIP run out, each with an "ended"
//! DM. Beside it, the signal relay: a signal with a chart is mirrored into two paid channels,
//! edited and deleted there ([`crate::demo_relay`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use docobo_adapters::discord::DiscordRoles;
use docobo_adapters::polar::{Polar, signature};
use docobo_adapters::seaorm::SeaOrmRepo;
use docobo_adapters::sellapp::{self, Sellapp};
use docobo_adapters::sepay::{Sepay, SepaySettings};
use docobo_adapters::simulator::discord::FakeDiscord;
use docobo_adapters::simulator::gateway::FakeGateway;
use docobo_adapters::simulator::polar::{FakePolar, event};
use docobo_adapters::simulator::sellapp::FakeSellapp;
use docobo_core::domain::{
    Currency, Guild, GuildId, Money, PaidRole, ProductLink, ProviderName, RoleId, RoleJobKey, Secret, Term,
    UserId,
};
use docobo_core::ports::{CatalogRepo, Clock, JobQueue, ProviderCredentials, ProviderRegistry};
use docobo_core::service::{Pace, Sender, expire_due, plan_reminders, send_due_notices, start_checkout};
use docobo_server::{Application, Config};
use serde_json::json;
use time::OffsetDateTime;

use crate::error::Failure;

const GUILD: u64 = 987_654_321_098_765_432;
const MEMBER: u64 = 123_456_789_012_345_678;
const BOT: u64 = 555_000_000_000_000_001;
const VIP: u64 = 700_000_000_000_000_007;
const MONTH: u64 = 700_000_000_000_000_008;
const SUPPORTER: u64 = 700_000_000_000_000_009;
const SIGNALS: u64 = 700_000_000_000_000_010;
const SELLAPP_SECRET: &str = "demo-sellapp-signing-secret-0123";
const SELLAPP_KEY: &str = "demo-sellapp-api-key";
const POLAR_SECRET: &str = "whsec_ovyN6cPrTv56AApvzCaJno08SSmGJmgbWilb33N2JuK";
const POLAR_TOKEN: &str = "polar_oat_demo";
const SEPAY_KEY: &str = "demo-sepay-key-0123456789abcdef0123";
/// A fixed key is fine for a database that is deleted when the demo ends.
const DEMO_KEY: &str = "ZGVtby1rZXktZGVtby1rZXktZGVtby1rZXktMTIzNDU=";
const VIP_PRODUCT: &str = "d1e2f3a4-0000-4000-8000-000000000002";
const SUPPORTER_PRODUCT: &str = "d1e2f3a4-0000-4000-8000-000000000009";

fn id<T: std::str::FromStr>(n: u64) -> Result<T, Failure> {
    n.to_string().parse().map_err(|_| Failure::Other(format!("bad demo id {n}")))
}

/// The running demo: where things are, and the clock of the timeline.
struct Demo {
    base: String,
    discord: FakeDiscord,
    http: reqwest::Client,
    started: Instant,
    acks: Vec<Duration>,
    to_discord: Vec<Duration>,
}

impl Demo {
    fn line(&self, text: &str) {
        println!("  +{:>7.3}s  {text}", self.started.elapsed().as_secs_f64());
    }

    /// Posts a webhook; returns when it was acknowledged.
    async fn deliver(&mut self, what: &str, request: reqwest::RequestBuilder) -> Result<Instant, Failure> {
        let sent = Instant::now();
        let response = request.send().await?;
        let acked = Instant::now();
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::Other(format!("{what}: the server answered {status}")));
        }
        self.acks.push(acked - sent);
        self.line(&format!("{what} → {status} in {:.1} ms", ms(acked - sent)));
        Ok(acked)
    }

    async fn polar(
        &mut self,
        delivery: &str,
        kind: &str,
        metadata: &serde_json::Value,
        product: &str,
    ) -> Result<Instant, Failure> {
        let body = event(kind, metadata, product, OffsetDateTime::now_utc())
            .ok_or_else(|| Failure::Other(format!("no sample for {kind}")))?;
        let ts = OffsetDateTime::now_utc().unix_timestamp();
        let request = self
            .http
            .post(format!("{}/webhooks/polar/{GUILD}", self.base))
            .header("webhook-id", delivery)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature::sign(POLAR_SECRET.as_bytes(), delivery, ts, &body))
            .body(body);
        self.deliver(&format!("Polar {} (signed)", kind.replace('_', " ")), request).await
    }

    /// Waits for the fake Discord to receive `method` on `role`, and prints how long after `since`.
    async fn discord(&mut self, method: &str, role: u64, name: &str, since: Instant) -> Result<(), Failure> {
        let part = format!("/roles/{role}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(at) = self.discord.first_arrival(method, &part) {
                let after = at.saturating_duration_since(since);
                self.to_discord.push(after);
                let did = if method == "PUT" { "granted" } else { "removed" };
                self.line(&format!(
                    "Discord: role {name} {did} ({:.1} ms after the acknowledgement)",
                    ms(after)
                ));
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Err(Failure::Other(format!("Discord never received {method} for {name}")))
    }
}

impl Demo {
    /// Sends every notice due at `clock`'s time as DMs at the fake Discord (paced at 1 ms, not
    /// the server's one a second); the texts sent.
    async fn notices(
        &self,
        repo: &SeaOrmRepo,
        providers: &ProviderRegistry,
        clock: &Shifted,
    ) -> Result<Vec<String>, Failure> {
        let before = self.discord.dms(MEMBER).len();
        let dms = DiscordRoles::new("demo-token", &self.discord.base_url);
        let sender = Sender { dms: &dms, providers, clock, entropy: &docobo_adapters::discord::bot::entropy };
        let mut pace = Pace::every(time::Duration::milliseconds(1));
        loop {
            send_due_notices(repo, &sender, &mut pace).await?;
            if pace.next().is_none_or(|next| next <= clock.now()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let sent = self.discord.dms(MEMBER);
        Ok(sent[before..].iter().map(|dm| dm["content"].as_str().unwrap_or_default().to_owned()).collect())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(name: &str, values: &mut [Duration]) {
    values.sort();
    let at = |q: f64| values.get(((values.len() as f64 - 1.0) * q).round() as usize).map_or(0.0, |d| ms(*d));
    println!("  {name:<28} n={:<2} p50 {:>6.1} ms   max {:>6.1} ms", values.len(), at(0.5), at(1.0));
}

/// A guild selling VIP (Polar subscription), 30 days (SePay) and Supporter (Polar, lifetime).
async fn shop(repo: &impl CatalogRepo) -> Result<(), Failure> {
    let guild: GuildId = id(GUILD)?;
    repo.put_guild(&Guild::new(guild, "Demo server")).await?;
    let usd = |a: &str| Money::parse(a, Currency::Usd);
    let vip = PaidRole::new(guild, id(VIP)?, "VIP", usd("5.00")?, Term::Recurring)?
        .with_link(ProductLink::product(ProviderName::POLAR, VIP_PRODUCT));
    let vnd = Money::parse("250000", Currency::Vnd)?;
    let month = PaidRole::new(guild, id(MONTH)?, "30 days", vnd, Term::fixed(30)?)?
        .with_link(ProductLink::to(ProviderName::SEPAY));
    let supporter = PaidRole::new(guild, id(SUPPORTER)?, "Supporter", usd("20.00")?, Term::Lifetime)?
        .with_link(ProductLink::product(ProviderName::POLAR, SUPPORTER_PRODUCT));
    let signals = PaidRole::new(guild, id(SIGNALS)?, "Signals (30 days)", usd("10.00")?, Term::fixed(30)?)?
        .with_link(ProductLink::product(Sellapp::NAME, "77").variant("301"));
    for role in [vip, month, supporter, signals] {
        repo.put_paid_role(&role).await?;
    }
    let mut store = ProviderCredentials::new(Secret::new(SELLAPP_SECRET));
    store.api_token = Some(Secret::new(SELLAPP_KEY));
    repo.put_credentials(guild, Sellapp::NAME, &store).await?;
    let mut polar = ProviderCredentials::new(Secret::new(POLAR_SECRET));
    polar.api_token = Some(Secret::new(POLAR_TOKEN));
    repo.put_credentials(guild, ProviderName::POLAR, &polar).await?;
    let sepay = SepaySettings::new(Secret::new(SEPAY_KEY), "MBBank", "0123499999");
    repo.put_credentials(guild, ProviderName::SEPAY, &sepay.credentials()).await?;
    Ok(())
}

pub async fn run_demo() -> Result<(), Failure> {
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("docobo-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let database_url = format!("sqlite://{}?mode=rwc", dir.join("demo.db").display());
    let discord = FakeDiscord::start(BOT).await?;
    discord.add_guild(GUILD);
    let roles =
        [(VIP, "VIP", 5), (MONTH, "30 days", 4), (SUPPORTER, "Supporter", 3), (SIGNALS, "Signals", 2)];
    for (role, name, position) in roles {
        discord.add_role(GUILD, role, name, position);
    }
    discord.join(GUILD, MEMBER);
    let gateway = FakeGateway::start(BOT, BOT).await?;
    discord.set_gateway_url(&gateway.url);
    let polar_api = FakePolar::start(POLAR_TOKEN).await?;
    let sellapp_api = FakeSellapp::start(SELLAPP_KEY).await?;
    let config = Config {
        database_url,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        secret_key: Some(Secret::new(DEMO_KEY)),
        discord_bot_token: Some(Secret::new("demo-token")),
        discord_api_url: discord.base_url.clone(),
        polar_api_url: polar_api.base_url.clone(),
        sellapp_api_url: sellapp_api.base_url.clone(),
        gateway: true,
        data_dir: dir.join("data"),
        ..Config::default()
    };
    let app = Application::build(config).await?;
    crate::demo_relay::configure(&app.state().repo, GUILD).await?;
    let app_providers = app.state().providers.clone();
    let base = app.base_url();
    let repo = app.state().repo.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    shop(&repo).await?;
    if gateway.wait_for_identify().await.is_none() {
        return Err(Failure::Other("the server did not connect to the fake gateway".to_owned()));
    }
    println!("Docobo demo: everything runs on this machine (SQLite in {}, server {base},", dir.display());
    println!("a fake Discord, Polar and Sell.app on loopback). Nothing is sent to the internet.\n");
    let mut demo =
        Demo { base, discord, http: reqwest::Client::new(), started, acks: vec![], to_discord: vec![] };
    demo.line("server ready: schema migrated, a server selling VIP, 30 days, Supporter and Signals");
    let mut relayed = crate::demo_relay::run(&demo.discord, &gateway, |text| demo.line(&text)).await?;

    let (guild, member): (GuildId, UserId) = (id(GUILD)?, id(MEMBER)?);
    let polar = Polar::new(polar_api.base_url.clone());
    let (checkout, link) =
        start_checkout(&repo, &polar, (guild, member, id::<RoleId>(VIP)?), *b"demo01", now(), None).await?;
    demo.line(&format!(
        "/join VIP by card: checkout {} → {}",
        checkout.reference,
        link.url.unwrap_or_default()
    ));
    let vip_meta = json!({
        "discord_user_id": MEMBER.to_string(), "guild_id": GUILD.to_string(),
        "paid_role_id": VIP.to_string(), "checkout_ref": checkout.reference.as_str(),
    });
    let acked = demo.polar("wh_demo_1", "subscription_active", &vip_meta, VIP_PRODUCT).await?;
    demo.discord("PUT", VIP, "VIP", acked).await?;

    let (checkout, _) =
        start_checkout(&repo, &Sepay, (guild, member, id::<RoleId>(MONTH)?), *b"demo02", now(), None).await?;
    demo.line(&format!("/join 30 days by bank transfer: VietQR with the code {}", checkout.reference));
    let transfer = json!({
        "id": 92704, "gateway": "MBBank", "transactionDate": "2026-11-20 09:15:00", "accountNumber": "0123499999",
        "code": null, "content": format!("{} chuyen tien", checkout.reference), "transferType": "in",
        "transferAmount": 250_000, "accumulated": 0, "subAccount": null, "referenceCode": "FT1", "description": ""
    });
    let request = demo
        .http
        .post(format!("{}/webhooks/sepay/{GUILD}", demo.base))
        .header("authorization", format!("Apikey {SEPAY_KEY}"))
        .body(transfer.to_string());
    let acked = demo.deliver("SePay transfer of 250000 VND", request).await?;
    demo.discord("PUT", MONTH, "30 days", acked).await?;

    let order = json!({
        "id": 236, "status": "COMPLETED",
        "line_items": [{ "id": 1, "product_id": 77, "product_variant_id": 301, "quantity": 1 }],
        "totals": { "currency": "USD", "total_cents": 1000 },
        "timeline": [{ "status": "COMPLETED", "set_at": OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default() }],
    });
    let answers = json!([{ "product_variant_id": 301, "additional_information": [{ "key": "discord_user_id", "value": MEMBER.to_string() }] }]);
    sellapp_api.put_order(236, order, answers);
    let hint = json!({ "event": "order.completed", "data": { "id": 236 }, "store": 1 }).to_string();
    let request = demo
        .http
        .post(format!("{}/webhooks/sellapp/{GUILD}", demo.base))
        .header("signature", sellapp::signature(SELLAPP_SECRET, hint.as_bytes()))
        .body(hint);
    let acked = demo
        .deliver("Sell.app order.completed naming only order 236 (read from its API after the ack)", request)
        .await?;
    demo.discord("PUT", SIGNALS, "Signals", acked).await?;

    let supporter_meta =
        json!({ "discord_user_id": MEMBER.to_string(), "paid_role_id": SUPPORTER.to_string() });
    let acked = demo.polar("wh_demo_2", "order_paid_one_time", &supporter_meta, SUPPORTER_PRODUCT).await?;
    demo.discord("PUT", SUPPORTER, "Supporter", acked).await?;
    let acked = demo.polar("wh_demo_3", "order_refunded_full", &supporter_meta, SUPPORTER_PRODUCT).await?;
    demo.discord("DELETE", SUPPORTER, "Supporter", acked).await?;

    demo.polar("wh_demo_4", "subscription_canceled_at_period_end", &vip_meta, VIP_PRODUCT).await?;
    demo.line("VIP cancelled: the member keeps the role until the paid period ends");

    let providers = app_providers.clone();
    let reminders = Shifted(time::Duration::days(27));
    let planned = plan_reminders(&repo, &reminders).await?;
    let sent = demo.notices(&repo, &providers, &reminders).await?;
    demo.line(&format!(
        "27 days later (simulated clock): {planned} reminder(s) planned, {} DM(s) sent, e.g.",
        sent.len()
    ));
    if let Some(first) = sent.first() {
        println!("             «{}»", first.lines().next().unwrap_or_default());
    }
    let later = Shifted(time::Duration::days(30) + time::Duration::seconds(1));
    let expired = expire_due(&repo, &later, 10).await?;
    // The expirer scheduled the removals at the simulated time; bring them to the real now.
    let keys: Vec<RoleJobKey> = [VIP, MONTH, SIGNALS]
        .iter()
        .map(|r| Ok(RoleJobKey { guild, user: member, role: id(*r)? }))
        .collect::<Result<_, Failure>>()?;
    repo.enqueue(&keys, "demo: the clock jumped 30 days", now()).await?;
    let at = Instant::now();
    demo.line(&format!("30 days later (simulated clock): {} purchase(s) ran out", expired.due));
    demo.discord("DELETE", VIP, "VIP", at).await?;
    demo.discord("DELETE", MONTH, "30 days", at).await?;
    demo.discord("DELETE", SIGNALS, "Signals", at).await?;
    let ended = demo.notices(&repo, &providers, &later).await?;
    demo.line(&format!("and {} \"your access has ended\" DM(s), each saying how to buy again", ended.len()));

    let roles = demo.discord.roles(GUILD, MEMBER).unwrap_or_default();
    let names: Vec<&str> = [(VIP, "VIP"), (MONTH, "30 days"), (SUPPORTER, "Supporter"), (SIGNALS, "Signals")]
        .iter()
        .filter(|(r, _)| roles.contains(r))
        .map(|(_, n)| *n)
        .collect();
    demo.line(&format!(
        "the member now holds: {}",
        if names.is_empty() { "no paid role".to_owned() } else { names.join(", ") }
    ));
    println!("\nMeasured on this run:");
    summary("webhook acknowledged", &mut demo.acks);
    summary("ack → role request at Discord", &mut demo.to_discord);
    summary("source event → mirror request", &mut relayed);
    println!("  (role changes in one server are paced below Discord's limits, 10/s after a burst of 5,");
    println!("   so changes that follow each other closely wait their turn)");
    let _ = stop.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The clock moved on by a span, for the expirer and the notices.
struct Shifted(time::Duration);

impl Clock for Shifted {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.0
    }
}
