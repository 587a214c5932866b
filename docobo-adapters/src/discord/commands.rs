//! The slash commands Docobo offers, and their registration (`docobo commands register`).
//!
//! Registration overwrites the whole set in one request (`PUT /applications/{id}/commands`, or
//! the guild-scoped route, which applies at once and suits development), so running it again is
//! harmless.

use docobo_core::domain::GuildId;
use docobo_core::ports::GatewayError;
use serenity::all::{
    ApplicationId, Command, CommandOptionType, CreateCommand, CreateCommandOption, InteractionContext,
    Permissions,
};

/// `/help`, `/status`, `/join`, `/notify on|off`, and `/setup` (only for members who can manage
/// the server).
pub fn definitions() -> Vec<CreateCommand> {
    let in_guild = || vec![InteractionContext::Guild];
    vec![
        CreateCommand::new("help").description("What Docobo does and how to use it").contexts(in_guild()),
        CreateCommand::new("status")
            .description("What you have bought here and until when")
            .contexts(in_guild()),
        CreateCommand::new("join").description("Buy a role in this server").contexts(in_guild()),
        CreateCommand::new("notify")
            .description("Turn this server's direct messages to you (reminders before access ends) on or off")
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "state", "on or off")
                    .required(true)
                    .add_string_choice("on", "on")
                    .add_string_choice("off", "off"),
            )
            .contexts(in_guild()),
        CreateCommand::new("setup")
            .description("Choose roles to sell, prices and payment providers")
            .default_member_permissions(Permissions::MANAGE_GUILD)
            .contexts(in_guild()),
    ]
}

/// Registers [`definitions`] globally, or in one guild; returns the registered names.
pub async fn register(
    token: &str,
    api_base: &str,
    application_id: u64,
    guild: Option<GuildId>,
) -> Result<Vec<String>, GatewayError> {
    let application = ApplicationId::new(application_id);
    let http = super::rest_client(token, api_base);
    http.set_application_id(application);
    let registered = match guild {
        Some(g) => serenity::all::GuildId::new(g.get()).set_commands(&http, definitions()).await,
        None => Command::set_global_commands(&http, definitions()).await,
    };
    let registered = registered.map_err(|e| super::classify(&e, "registering commands"))?;
    Ok(registered.into_iter().map(|c| c.name).collect())
}
