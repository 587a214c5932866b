//! Embedding Docobo in a serenity bot you already run, with a database of Docobo's own.
//!
//! The bot keeps its own event handler (`Greeter` here) and gains Docobo's beside it on the same
//! serenity `Client`: Docobo registers guilds, re-grants paid roles when members rejoin, and
//! answers `/join`, `/status`, `/setup` and `/help`. Payments come in through
//! [`ingest_webhook`], which you call from whatever HTTP server the bot already has; a worker
//! task converges Discord roles.
//!
//! `cargo run --example serenity_bot` runs offline: serenity talks to Docobo's local fake Discord
//! (REST and gateway on loopback), and the example plays a guild joining, a signed Polar
//! purchase, and the member leaving and rejoining. With `DISCORD_BOT_TOKEN` set it connects to
//! Discord for real and runs until Ctrl-C (use a test server).

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use docobo::adapters::polar::signature;
use docobo::adapters::simulator::discord::FakeDiscord;
use docobo::adapters::simulator::gateway::{FakeGateway, guild_create, member_add};
use docobo::prelude::*;
use serenity::all::{Context, EventHandler, GatewayIntents, Member};
use serenity::client::ClientBuilder;

/// The bot you already have. Docobo does not replace it; it runs beside it.
struct Greeter;

#[serenity::async_trait]
impl EventHandler for Greeter {
    async fn guild_member_addition(&self, _: Context, member: Member) {
        println!("[your bot] welcome, {}!", member.user.name);
    }
}

const GUILD: u64 = 987_654_321_098_765_432;
const USER: u64 = 123_456_789_012_345_678;
const VIP: u64 = 700_000_000_000_000_007;
const BOT: u64 = 555_000_000_000_000_001;
const POLAR_SECRET: &str = "whsec_ovyN6cPrTv56AApvzCaJno08SSmGJmgbWilb33N2JuK";
const PRODUCT: &str = "d1e2f3a4-0000-4000-8000-000000000002";
/// Not a secret: only for the offline run.
const DEMO_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // Docobo's tables live in their own database, next to whatever the bot already stores.
    let db = std::env::temp_dir().join(format!("docobo-serenity-example-{}.db", std::process::id()));
    // Provider credentials are stored encrypted under DOCOBO_SECRET_KEY (base64 of 32 bytes); the
    // offline run uses a throwaway one.
    let key = std::env::var("DOCOBO_SECRET_KEY").unwrap_or_else(|_| DEMO_KEY.to_owned());
    let repo = SeaOrmRepo::connect(&format!("sqlite://{}?mode=rwc", db.display()), Some(&key)).await?;
    repo.migrate().await?;

    let real_token = std::env::var("DISCORD_BOT_TOKEN").ok().filter(|t| !t.is_empty());
    let fakes = match real_token {
        Some(_) => None,
        None => Some(offline_discord().await?),
    };
    let (token, api) = match (&real_token, &fakes) {
        (Some(token), _) => (token.clone(), "https://discord.com".to_owned()),
        (None, Some((discord, _))) => ("fake-token".to_owned(), discord.base_url.clone()),
        (None, None) => unreachable!("fakes start when there is no token"),
    };

    let roles: Arc<dyn RoleGateway> = Arc::new(DiscordRoles::new(&token, &api));
    let polar = Polar::default();
    let providers = ProviderRegistry::new().with(Arc::new(polar.clone()));
    let shared = Arc::new(repo.clone());
    let bot = Bot::new(shared.clone(), Some(roles.clone()), providers, "https://bot.example.org");
    let docobo = GatewayEvents { bot, repo: shared, clock: Arc::new(SystemClock) };

    // One client, two handlers: yours and Docobo's. Docobo needs GUILDS and GUILD_MEMBERS. Your
    // bot's client keeps serenity's own rate limiter (Docobo paces its role calls separately);
    // only offline, against the local fakes, does it use Docobo's proxied client, because
    // serenity's limiter would talk to discord.com.
    let intents = INTENTS | GatewayIntents::GUILDS;
    let builder = match &real_token {
        Some(token) => ClientBuilder::new(token, intents),
        None => ClientBuilder::new_with_http(rest_client(&token, &api), intents),
    };
    let mut client = builder.event_handler(Greeter).event_handler(docobo).await?;
    let shards = client.shard_manager.clone();
    tokio::spawn(async move {
        if let Err(e) = client.start().await {
            eprintln!("gateway: {e}");
        }
    });
    // Docobo's role worker, from the library: woken by each commit, every 5 s at the latest.
    let (_running, stop) = tokio::sync::watch::channel(false);
    let lease = lease_and_batch(CALL_TIMEOUT);
    tokio::spawn(role_worker(repo.clone(), roles, Arc::new(SystemClock), lease, stop, |pass| match pass {
        Ok(report) if report.changed > 0 => println!("[docobo] {} role change(s) on Discord", report.changed),
        Ok(_) => {}
        Err(e) => eprintln!("[docobo] storage unavailable: {e}"),
    }));

    match fakes {
        None => {
            println!("connected to Discord; Ctrl-C to stop");
            tokio::signal::ctrl_c().await?;
        }
        Some((discord, gateway)) => play(&repo, &polar, &discord, &gateway).await?,
    }
    shards.shutdown_all().await;
    let _ = std::fs::remove_file(&db);
    Ok(())
}

/// Docobo's local fake of Discord: a server with a VIP role below the bot's, and one member.
async fn offline_discord() -> Result<(FakeDiscord, FakeGateway), Box<dyn Error>> {
    let discord = FakeDiscord::start(BOT).await?;
    let gateway = FakeGateway::start(BOT, 2).await?;
    discord.set_gateway_url(&gateway.url);
    discord.add_guild(GUILD);
    discord.add_role(GUILD, VIP, "VIP", 5);
    discord.join(GUILD, USER);
    Ok((discord, gateway))
}

/// The offline script: the bot joins a server, a member pays, leaves and comes back.
async fn play(
    repo: &SeaOrmRepo,
    polar: &Polar,
    discord: &FakeDiscord,
    gateway: &FakeGateway,
) -> Result<(), Box<dyn Error>> {
    gateway.wait_for_identify().await.ok_or("serenity did not connect to the fake gateway")?;
    gateway.dispatch("GUILD_CREATE", guild_create(GUILD, "Paid Club", USER));
    let guild = GuildId::new(GUILD)?;
    wait("Docobo registers the server", || async { repo.guild(guild).await.ok().flatten().is_some() })
        .await?;
    println!("[docobo] server registered");

    // What an owner sets up with /setup (or `docobo role add` and `docobo provider set`).
    let mut vip = PaidRole::new(
        guild,
        RoleId::new(VIP)?,
        "VIP",
        Money::parse("5.00", Currency::Usd)?,
        Term::Recurring,
    )?;
    vip.link(ProductLink::product(ProviderName::POLAR, PRODUCT));
    repo.put_paid_role(&vip).await?;
    repo.put_credentials(guild, ProviderName::POLAR, &ProviderCredentials::new(Secret::new(POLAR_SECRET)))
        .await?;

    // Your HTTP server receives Polar's webhook and hands the raw body and headers to Docobo.
    let body = subscription_active();
    let ts = time::OffsetDateTime::now_utc().unix_timestamp();
    let headers =
        Headers::new().with("webhook-id", "wh_example_1").with("webhook-timestamp", ts.to_string()).with(
            "webhook-signature",
            signature::sign(POLAR_SECRET.as_bytes(), "wh_example_1", ts, body.as_bytes()),
        );
    let report = ingest_webhook(repo, polar, &SystemClock, guild, &headers, body.as_bytes()).await?;
    println!("[docobo] Polar webhook: {:?} (answer the provider 2xx now)", report.outcome);
    let holds = || async { discord.roles(GUILD, USER).is_some_and(|r| r.contains(&VIP)) };
    wait("the role is granted", holds).await?;
    println!("[docobo] member {USER} holds VIP");

    discord.leave(GUILD, USER);
    discord.join(GUILD, USER);
    gateway.dispatch("GUILD_MEMBER_ADD", member_add(GUILD, USER));
    wait("the role is granted again on rejoin", holds).await?;
    println!("[docobo] member rejoined and got VIP back");
    Ok(())
}

async fn wait<F, Fut>(what: &str, check: F) -> Result<(), Box<dyn Error>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("{what}: not within 5 s").into())
}

/// An abbreviated Polar `subscription.active` payload (the fields Docobo reads; the full schema
/// is in Polar's OpenAPI document), bought by `USER` for `PRODUCT`.
fn subscription_active() -> String {
    let now = time::OffsetDateTime::now_utc();
    let at = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
    };
    serde_json::json!({
        "type": "subscription.active",
        "timestamp": at(now),
        "data": {
            "id": "7f3c9e1a-2b4d-4c8e-9f10-0a1b2c3d4e5f", "status": "active",
            "created_at": at(now), "modified_at": at(now),
            "current_period_start": at(now), "current_period_end": at(now + time::Duration::days(30)),
            "cancel_at_period_end": false, "ends_at": null, "product_id": PRODUCT,
            "metadata": { "discord_user_id": USER.to_string() },
        }
    })
    .to_string()
}
