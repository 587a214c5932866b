//! `docobo check`: the effective configuration (secrets redacted), the catalog under the rules of
//! the registered providers (each paid role sellable, each of its providers configured), then
//! Discord as the server will see it — the token, the bot in each registered server, and each
//! paid role within its reach, and each relay: the bot's permissions in its source and target
//! channels, and a target every member can read (paid signals leaking).
//! Every problem is printed with what to fix; the exit code is 1 when there is any.

use docobo_adapters::discord::DiscordRoles;
use docobo_adapters::seaorm::SeaOrmRepo;
use docobo_core::domain::PaidRole;
use docobo_core::ports::{CatalogRepo, Manageable, RelayRepo, RoleGateway};
use docobo_core::service::sale_problems;
use docobo_server::Config;

use crate::error::Failure;

pub async fn check(repo: &SeaOrmRepo) -> Result<(), Failure> {
    let config = Config::from_env().map_err(|e| Failure::Other(e.to_string()))?;
    println!("configuration (environment over docobo.toml over defaults):");
    for (key, value) in config.describe() {
        println!("  {key:<23} {value}");
    }
    let mut problems = 0usize;
    let mut report = |ok: bool, line: String| {
        problems += usize::from(!ok);
        println!("  [{}] {line}", if ok { "ok" } else { "FAIL" });
    };
    println!("catalog:");
    let providers = crate::repo::providers();
    for guild in repo.guilds().await? {
        for role in repo.paid_roles(guild.id).await? {
            let mut found = sale_problems(&role, &providers);
            if role.links.is_empty() {
                found.push("no provider sells it, so /join does not offer it".to_owned());
            }
            for link in &role.links {
                let name = link.provider;
                match repo.credentials(guild.id, name).await {
                    Ok(Some(_)) => {}
                    Ok(None) => found.push(format!(
                        "{} is not configured in this server (docobo provider set {} {name} ...)",
                        name.title(),
                        guild.id
                    )),
                    Err(e) => found.push(format!("{} credentials cannot be read: {e}", name.title())),
                }
            }
            let what = format!("server {} role {} ({})", guild.id, role.role, role.name);
            if found.is_empty() {
                report(true, format!("{what}: on sale through {}", links(&role)));
            } else {
                report(false, format!("{what}: {}", found.join("; ")));
            }
        }
    }
    println!("discord:");
    let Some(token) = &config.discord_bot_token else {
        report(false, "DISCORD_BOT_TOKEN is not set: paid roles are recorded but never granted".to_owned());
        return summary(problems);
    };
    let discord =
        DiscordRoles::new(token.expose(), &config.discord_api_url).with_timeout(config.discord_timeout);
    match discord.bot_name().await {
        Ok(name) => report(true, format!("the bot token works (bot user {name})")),
        Err(e) => {
            report(false, format!("the bot token does not work: {e}"));
            return summary(problems);
        }
    }
    let guilds = repo.guilds().await?;
    if guilds.is_empty() {
        println!("  no servers registered yet (`docobo guild add`, or invite the bot and run /setup)");
    }
    for guild in guilds {
        if let Err(e) = discord.bot_in_guild(guild.id).await {
            report(
                false,
                format!("server {} ({}): the bot is not in it or cannot see it: {e}", guild.id, guild.name),
            );
            continue;
        }
        report(true, format!("server {} ({}): the bot is a member", guild.id, guild.name));
        for role in repo.paid_roles(guild.id).await? {
            match discord.bot_can_manage(guild.id, role.role).await {
                Ok(Manageable::Yes) => {
                    report(true, format!("  role {} ({}): the bot can grant it", role.role, role.name))
                }
                Ok(Manageable::No { why, fix }) => {
                    report(false, format!("  role {} ({}): {why}; fix: {fix}", role.role, role.name))
                }
                Err(e) => report(false, format!("  role {} ({}): {e}", role.role, role.name)),
            }
        }
    }
    let relays = repo.relays().await?;
    if !relays.is_empty() {
        println!(
            "relays (the bot also needs the Message Content intent, under Bot in the Developer Portal):"
        );
    }
    for relay in relays {
        let what = format!(
            "relay {}: channel {} → channel {} via {}",
            relay.id, relay.source_channel, relay.target_channel, relay.via
        );
        if let Some(role) = relay.access_role
            && repo.paid_role(relay.target_guild, role).await?.is_none()
        {
            report(
                false,
                format!(
                    "{what}: --role {role} is not a paid role in server {}, so no one reads this relay on the \
                     dashboard; sell it (`docobo role add`) or add the relay again with the role that opens the target",
                    relay.target_guild
                ),
            );
        }
        match discord.relay_problems(&relay).await {
            Ok(found) if found.is_empty() => report(
                true,
                format!(
                    "{what}: the bot reads the source and posts in a target only members with access can read"
                ),
            ),
            Ok(found) => {
                for problem in found {
                    report(false, format!("{what}: {problem}"));
                }
            }
            Err(e) => report(false, format!("{what}: {e}")),
        }
    }
    summary(problems)
}

fn links(role: &PaidRole) -> String {
    role.links.iter().map(|l| l.provider.title()).collect::<Vec<_>>().join(", ")
}

fn summary(problems: usize) -> Result<(), Failure> {
    match problems {
        0 => {
            println!("everything checks out");
            Ok(())
        }
        n => Err(Failure::Other(format!("{n} problem(s) found; see above"))),
    }
}
