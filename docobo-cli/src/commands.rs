//! Dispatch for every command of DESIGN §4, each a thin call into the adapters or the core;
//! `manage` and `check` hold the longer ones.

use docobo_adapters::discord::DiscordRoles;
use docobo_adapters::sellapp::Sellapp;
use docobo_adapters::sellapp::journal::reconcile_journal;
use docobo_adapters::sepay::{SepayAuth, SepaySettings};
use docobo_core::domain::{
    Entitlement, EventOutcome, Guild, Locale, Money, PaidRole, ProductLink, ProviderName, Secret,
};
use docobo_core::ports::{
    CatalogRepo, CredentialError, EntitlementRepo, Ledger, ProviderCredentials, SystemClock,
};
use docobo_core::service::{
    CatalogRefusal, NoticeChange, configure_notices, reconcile_guild, replay_event, resolve_deferred,
    sell_role, set_credentials,
};
use serde_json::json;

use crate::args::{
    Cli, Command, CommandsCommand, EventsCommand, GuildCommand, LocaleArg, OnOff, OutcomeArg,
    ProviderCommand, ProviderSettings, RoleCommand, SecretsCommand, SubsCommand,
};
use crate::error::Failure;
use crate::output::{print, time_text};
use crate::repo::{open, providers, registered};

/// A catalog refusal as the CLI reports it: the owner's input is wrong (exit 2), or something
/// else is (exit 1).
fn refused(e: CatalogRefusal) -> Failure {
    match e {
        CatalogRefusal::NotSellable(_) | CatalogRefusal::Credentials(CredentialError::Invalid(_)) => {
            Failure::Usage(e.to_string())
        }
        other => Failure::Other(other.to_string()),
    }
}

/// The providers a role is sold through, for tables: `polar (prod_1), sepay`.
fn providers_text(role: &PaidRole) -> String {
    let links = role.links.iter().map(|l| match (&l.product, &l.variant) {
        (Some(p), Some(v)) => format!("{} ({p}/{v})", l.provider),
        (Some(p), None) => format!("{} ({p})", l.provider),
        _ => l.provider.to_string(),
    });
    links.collect::<Vec<_>>().join(", ")
}

/// `DISCORD_BOT_TOKEN` and `DOCOBO_DISCORD_API_URL` (default `https://discord.com`).
fn discord_env(why: &str) -> Result<(String, String), Failure> {
    let token = std::env::var("DISCORD_BOT_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Failure::Other(format!("DISCORD_BOT_TOKEN is not set ({why})")))?;
    let base = std::env::var("DOCOBO_DISCORD_API_URL").unwrap_or_else(|_| "https://discord.com".to_owned());
    Ok((token, base))
}

pub async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Demo => return crate::demo::run_demo().await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "docobo", &mut std::io::stdout());
            return Ok(());
        }
        _ => {}
    }
    let repo = open(&cli.database_url).await?;
    match cli.command {
        Command::Subs(SubsCommand::Show { id, json }) => crate::manage::show(&repo, id, json).await?,
        Command::Grant(args) => crate::manage::manual(&repo, args, true).await?,
        Command::Revoke(args) => crate::manage::manual(&repo, args, false).await?,
        Command::Export { guild, format, data } => crate::manage::export(&repo, guild, format, data).await?,
        Command::Check => crate::check::check(&repo).await?,
        Command::Relay(command) => crate::relay::run(&repo, command).await?,
        Command::Migrate => println!("database is up to date"),
        Command::Secrets(SecretsCommand::Rotate) => {
            let count = repo.reseal_credentials().await?;
            println!(
                "re-sealed {count} credential(s) under DOCOBO_SECRET_KEY; DOCOBO_SECRET_KEY_OLD is no longer needed"
            );
        }
        Command::Guild(GuildCommand::Add { guild, name }) => {
            let existing = repo.guild(guild).await?;
            let mut g = existing.unwrap_or_else(|| Guild::new(guild, ""));
            if !name.is_empty() || g.name.is_empty() {
                g.name = if name.is_empty() { format!("Guild {guild}") } else { name };
            }
            repo.put_guild(&g).await?;
            println!("guild {guild} registered ({})", g.name);
        }
        Command::Guild(GuildCommand::List { json }) => {
            let guilds = repo.guilds().await?;
            let rows = guilds.iter().map(|g| {
                let n = &g.notices;
                json!({
                    "guild_id": g.id, "name": g.name, "grace_days": g.grace.whole_days(),
                    "notices": if n.enabled { "on" } else { "off" }, "remind": n.remind.to_string(),
                    "welcome": if n.welcome { "on" } else { "off" }, "locale": n.locale.as_str(),
                })
            });
            let columns = ["guild_id", "name", "grace_days", "notices", "remind", "welcome", "locale"];
            print(json, &columns, rows.collect());
        }
        Command::Guild(GuildCommand::Set { guild, remind, welcome, notices, locale }) => {
            let on = |v: Option<OnOff>| v.map(|v| v == OnOff::On);
            let change = NoticeChange {
                enabled: on(notices),
                welcome: on(welcome),
                remind,
                locale: locale.map(|l| if l == LocaleArg::Vi { Locale::Vi } else { Locale::En }),
            };
            if change == NoticeChange::default() {
                return Err(Failure::Usage(
                    "guild set: nothing to change; give --remind, --welcome, --notices or --locale"
                        .to_owned(),
                ));
            }
            registered(&repo, guild).await?;
            let changed = configure_notices(&repo, guild, change).await?;
            let g = changed.ok_or_else(|| Failure::Other(format!("guild {guild} was removed meanwhile")))?;
            let n = &g.notices;
            println!(
                "guild {guild}: notices {}, reminders {}, welcome {}, language {}",
                if n.enabled { "on" } else { "off" },
                n.remind,
                if n.welcome { "on" } else { "off" },
                n.locale
            );
        }
        Command::Provider(ProviderCommand::Set { guild, provider }) => {
            registered(&repo, guild).await?;
            let (name, credentials) = match provider {
                ProviderSettings::Polar { webhook_secret, access_token } => {
                    let mut c = ProviderCredentials::new(Secret::new(webhook_secret));
                    c.api_token = access_token.map(Secret::new);
                    (ProviderName::POLAR, c)
                }
                ProviderSettings::Sepay { api_key, bank, account, code_prefix, hmac } => {
                    let mut settings = SepaySettings::new(Secret::new(api_key), bank, account);
                    settings.code_prefix = code_prefix;
                    settings.auth = if hmac { SepayAuth::Hmac } else { SepayAuth::ApiKey };
                    (ProviderName::SEPAY, settings.credentials())
                }
                ProviderSettings::Sellapp { webhook_secret, api_key, store, payment_method } => {
                    let mut c = ProviderCredentials::new(Secret::new(webhook_secret));
                    c.api_token = api_key.map(Secret::new);
                    c.settings.extend(store.map(|s| ("store".to_owned(), s)));
                    c.settings.extend(
                        payment_method.map(|m| ("payment_method".to_owned(), m.to_ascii_uppercase())),
                    );
                    (Sellapp::NAME, c)
                }
            };
            set_credentials(&repo, &providers(), guild, name, &credentials).await.map_err(refused)?;
            println!("{name} credentials stored for guild {guild}; webhook path: /webhooks/{name}/{guild}");
        }
        Command::Role(RoleCommand::Add {
            guild,
            role,
            price,
            currency,
            term,
            polar_product,
            sepay,
            sellapp_product,
            sellapp_variant,
            name,
        }) => {
            let price =
                Money::parse(&price, currency).map_err(|e| Failure::Usage(format!("--price: {e}")))?;
            let name = name.unwrap_or_else(|| format!("Role {role}"));
            let mut paid =
                PaidRole::new(guild, role, name, price, term).map_err(|e| Failure::Usage(e.to_string()))?;
            if let Some(product) = polar_product {
                paid.link(ProductLink::product(ProviderName::POLAR, product));
            }
            if sepay {
                paid.link(ProductLink::to(ProviderName::SEPAY));
            }
            if let Some(product) = sellapp_product {
                let link = ProductLink::product(Sellapp::NAME, product);
                paid.link(match sellapp_variant {
                    Some(variant) => link.variant(variant),
                    None => link,
                });
            }
            registered(&repo, guild).await?;
            sell_role(&repo, &providers(), &paid).await.map_err(|e| match refused(e) {
                Failure::Usage(why) if sepay => Failure::Usage(format!(
                    "{why} (with --sepay: --currency VND and --term lifetime or a number of days)"
                )),
                other => other,
            })?;
            println!("role {role} in guild {guild} is for sale: {price}, {term}");
        }
        Command::Role(RoleCommand::List { guild, json }) => {
            let roles = repo.paid_roles(guild).await?;
            let rows = roles.iter().map(|r| {
                json!({
                    "guild_id": r.guild, "role_id": r.role, "name": r.name, "price": r.price.to_string(),
                    "term": r.term.to_string(), "providers": providers_text(r), "links": r.links,
                })
            });
            print(json, &["role_id", "name", "price", "term", "providers"], rows.collect());
        }
        Command::Role(RoleCommand::Remove { guild, role }) => {
            if !repo.remove_paid_role(guild, role).await? {
                return Err(Failure::Other(format!("role {role} is not for sale in guild {guild}")));
            }
            println!("role {role} in guild {guild} is no longer for sale (existing purchases are kept)");
        }
        Command::Subs(SubsCommand::List { guild, user, json }) => {
            let guilds = match guild {
                Some(g) => vec![g],
                None => repo.guilds().await?.iter().map(|g| g.id).collect(),
            };
            let mut all: Vec<Entitlement> = Vec::new();
            for g in guilds {
                all.extend(match user {
                    Some(u) => repo.member_entitlements(g, u).await?,
                    None => repo.guild_entitlements(g).await?,
                });
            }
            let rows = all.iter().map(crate::manage::entitlement_json);
            let columns = ["id", "guild_id", "user_id", "role_id", "provider", "status", "access_until"];
            print(json, &columns, rows.collect());
        }
        Command::Events(EventsCommand::List { status, limit, json }) => {
            let outcome = status.map(|s| match s {
                OutcomeArg::Processed => EventOutcome::Processed,
                OutcomeArg::Ignored => EventOutcome::Ignored,
                OutcomeArg::Failed => EventOutcome::Failed,
                OutcomeArg::Deferred => EventOutcome::Deferred,
            });
            let rows = repo.events(outcome, limit).await?.into_iter().map(|e| {
                json!({
                    "id": e.id, "provider": e.provider, "guild_id": e.guild, "event_id": e.external_id,
                    "outcome": e.outcome, "received_at": time_text(Some(e.received_at)),
                    "attempts": e.attempts, "last_error": e.last_error,
                })
            });
            print(
                json,
                &["id", "provider", "guild_id", "event_id", "outcome", "attempts", "last_error"],
                rows.collect(),
            );
        }
        Command::Demo | Command::Completions { .. } => {
            unreachable!("handled before the database is opened")
        }
        Command::Commands(CommandsCommand::Register { guild }) => {
            let (token, base) = discord_env("registering commands")?;
            let app = std::env::var("DISCORD_CLIENT_ID")
                .ok()
                .and_then(|id| id.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    Failure::Other(
                        "DISCORD_CLIENT_ID (the application id) is not set or not a number".to_owned(),
                    )
                })?;
            let names = docobo_adapters::discord::commands::register(&token, &base, app, guild).await?;
            let scope = guild.map_or_else(|| "globally".to_owned(), |g| format!("in guild {g}"));
            println!("registered {scope}: /{}", names.join(", /"));
        }
        Command::Reconcile { guild } => {
            let (token, base) = discord_env("reconciliation reads members from Discord")?;
            let gateway = DiscordRoles::new(&token, &base);
            let guilds = match guild {
                Some(g) => vec![registered(&repo, g).await?.id],
                None => repo.guilds().await?.iter().map(|g| g.id).collect(),
            };
            // Reading every member of a large server takes a while at Discord's pace; the bar is
            // drawn on stderr only when it is a terminal.
            let progress = indicatif::ProgressBar::new(guilds.len() as u64);
            let sellapp = std::env::var("SELLAPP_API_URL").map_or_else(|_| Sellapp::default(), Sellapp::new);
            for g in guilds {
                // Sell.app's journal first: what it turns up is applied before the roles are compared.
                let journal = reconcile_journal(&repo, &sellapp, &SystemClock, g).await?;
                if journal.read > 0 {
                    let resolved = resolve_deferred(&repo, &providers(), &SystemClock, 1000).await?;
                    progress.suspend(|| {
                        println!(
                            "guild {g}: Sell.app journal: {} order events read, {} new, {} applied now",
                            journal.read, journal.new, resolved.settled
                        )
                    });
                }
                let r = reconcile_guild(&repo, &gateway, &SystemClock, g).await?;
                progress.inc(1);
                progress.suspend(|| {
                    println!(
                        "guild {g}: {} members checked, {} gone, {} unreadable, {} fixes queued",
                        r.members_checked,
                        r.members_gone,
                        r.members_unreadable,
                        r.drift.len()
                    )
                });
            }
            progress.finish_and_clear();
        }
        Command::Events(EventsCommand::Replay { id }) => {
            let event = repo
                .webhook_event_by_id(id)
                .await?
                .ok_or_else(|| Failure::Other(format!("no event {id}")))?;
            let provider = providers().get(event.provider).ok_or_else(|| {
                Failure::Other(format!(
                    "{} events are replayed by the application that embeds their provider",
                    event.provider
                ))
            })?;
            let report = replay_event(&repo, provider.as_ref(), &SystemClock, &event).await?;
            println!("event {id} ({}): {:?}", report.event_id, report.outcome);
        }
    }
    Ok(())
}
