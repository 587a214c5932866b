//! Embedding Docobo in a serenity bot you already run, with a database of Docobo's own.
//!
//! Your bot keeps its own client, rate limiter and event handler (`Greeter`); Docobo's handler
//! runs beside it (registering servers, re-granting paid roles on rejoin, answering `/join`,
//! `/status`, `/setup` and `/help`), and its role worker converges Discord over your client's
//! `Http`. Payments come in through [`ingest_webhook`], called from the HTTP server you have.
//!
//! `cargo run --example serenity_bot` runs offline against Docobo's local fake Discord (REST and
//! gateway on loopback): a server appears, a member pays through Polar, leaves and rejoins. With
//! `DISCORD_BOT_TOKEN` set it connects to Discord for real until Ctrl-C (use a test server).

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use docobo::adapters::polar::signature;
use docobo::adapters::simulator::polar::event;
use docobo::adapters::simulator::{discord::FakeDiscord, eventually, gateway::*};
use docobo::prelude::*;
use serenity::all::{ClientBuilder, Context, EventHandler, Member};

/// The bot you already have.
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
/// How long the offline script waits for each step.
const STEP: Duration = Duration::from_secs(5);
const POLAR_SECRET: &str = "whsec_ovyN6cPrTv56AApvzCaJno08SSmGJmgbWilb33N2JuK";
/// A throwaway key for the offline run; set `DOCOBO_SECRET_KEY` (base64 of 32 bytes) for real.
const DEMO_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let db = std::env::temp_dir().join(format!("docobo-serenity-example-{}.db", std::process::id()));
    let key = std::env::var("DOCOBO_SECRET_KEY").unwrap_or_else(|_| DEMO_KEY.to_owned());
    let repo = SeaOrmRepo::connect(&format!("sqlite://{}?mode=rwc", db.display()), Some(&key)).await?;
    repo.migrate().await?;

    // Your client, as you build it today, with serenity's own rate limiter. Offline, it talks to
    // the fakes through a proxied `Http` (serenity's limiter would send requests to discord.com).
    let (token, api, fake) = match std::env::var("DISCORD_BOT_TOKEN") {
        Ok(token) => (token, "https://discord.com".to_owned(), None),
        Err(_) => {
            let (discord, gateway) = (FakeDiscord::start(BOT).await?, FakeGateway::start(BOT, 2).await?);
            discord.set_gateway_url(&gateway.url);
            ("fake-token".to_owned(), discord.base_url.clone(), Some((discord, gateway)))
        }
    };
    let builder = match &fake {
        None => ClientBuilder::new(&token, INTENTS),
        Some(_) => ClientBuilder::new_with_http(rest_client(&token, &api), INTENTS),
    };
    // Docobo beside your handler. Its role calls go through a client of its own, paced under
    // Discord's limits (`DiscordRoles::from_http` takes an `Arc<Http>` you already have instead).
    let roles: Arc<dyn RoleGateway> = Arc::new(DiscordRoles::new(&token, &api));
    let providers = ProviderRegistry::new().with(Arc::new(Polar::default()));
    let shared: Arc<dyn SubscriptionRepo> = Arc::new(repo.clone());
    let bot = Bot::new(shared.clone(), Some(roles.clone()), providers, "https://bot.example.org");
    let docobo = GatewayEvents { bot, repo: shared, clock: Arc::new(SystemClock), relay: None };
    let mut client = builder.event_handler(Greeter).event_handler(docobo).await?;
    let shards = client.shard_manager.clone();
    tokio::spawn(async move { client.start().await });
    let (_running, stop) = tokio::sync::watch::channel(false);
    let lease = lease_and_batch(CALL_TIMEOUT);
    tokio::spawn(role_worker(repo.clone(), roles, Arc::new(SystemClock), lease, stop, |_| {}));

    match fake {
        Some((discord, gateway)) => play(&repo, &discord, &gateway).await?,
        None => tokio::signal::ctrl_c().await?,
    }
    shards.shutdown_all().await;
    let _ = std::fs::remove_file(&db);
    Ok(())
}

/// The offline script: a server with VIP appears, a member pays, leaves and comes back.
async fn play(repo: &SeaOrmRepo, discord: &FakeDiscord, gateway: &FakeGateway) -> Result<(), Box<dyn Error>> {
    discord.add_guild(GUILD);
    discord.add_role(GUILD, VIP, "VIP", 5);
    discord.join(GUILD, USER);
    gateway.wait_for_identify().await.ok_or("serenity did not connect to the fake gateway")?;
    gateway.dispatch("GUILD_CREATE", guild_create(GUILD, "Paid Club", USER));
    let guild = GuildId::new(GUILD)?;
    let registered = || async { repo.guild(guild).await.ok().flatten().is_some() };
    eventually("Docobo registers the server", STEP, registered).await?;

    // What an owner sets up with /setup (or `docobo role add` and `docobo provider set`).
    let providers = ProviderRegistry::new().with(Arc::new(Polar::default()));
    let usd = Money::parse("5.00", Currency::Usd)?;
    let vip = PaidRole::new(guild, RoleId::new(VIP)?, "VIP", usd, Term::Recurring)?
        .with_link(ProductLink::product(ProviderName::POLAR, "prod_vip"));
    sell_role(repo, &providers, &vip).await?;
    repo.put_credentials(guild, ProviderName::POLAR, &ProviderCredentials::new(Secret::new(POLAR_SECRET)))
        .await?;

    // Your HTTP server receives Polar's webhook and hands the raw body and headers to Docobo.
    let now = time::OffsetDateTime::now_utc();
    let body = event(
        "subscription_active",
        &serde_json::json!({ "discord_user_id": USER.to_string() }),
        "prod_vip",
        now,
    )
    .ok_or("fixture")?;
    let headers = signature::headers(POLAR_SECRET.as_bytes(), "wh_1", now.unix_timestamp(), &body);
    let report = ingest_webhook(repo, &Polar::default(), &SystemClock, guild, &headers, &body).await?;
    println!("[docobo] Polar webhook: {:?} (answer the provider 2xx now)", report.outcome);
    let holds = || async { discord.roles(GUILD, USER).is_some_and(|r| r.contains(&VIP)) };
    eventually("the role is granted", STEP, holds).await?;
    println!("[docobo] member {USER} holds VIP");

    discord.leave(GUILD, USER);
    discord.join(GUILD, USER);
    gateway.dispatch("GUILD_MEMBER_ADD", member_add(GUILD, USER));
    eventually("the role is granted again on rejoin", STEP, holds).await?;
    println!("[docobo] member rejoined and got VIP back");
    Ok(())
}
