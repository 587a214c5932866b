//! `/setup`: the owners' wizard, one ephemeral message that each click rewrites.
//!
//! 1/3 roles — a role select; every chosen role is checked with Discord (`bot_can_manage`, a
//!   deferred answer) and the whole choice is refused, with what/why/fix/help, if one cannot be
//!   sold.
//! 2/3 prices — a button per role opens a form (price, currency, term, and a product id for each
//!   provider that sells by product, e.g. Polar); saving it puts the paid role on sale, under the
//!   catalog rules of `docobo_core::service::catalog`. A provider that needs no product (SePay) is
//!   linked wherever its rules allow: VND prices with a fixed term or lifetime (a bank transfer
//!   never renews, so it cannot pay for a recurring role).
//! 3/3 providers — the form each registered provider declares (`PaymentProvider::setup_form`),
//!   checked by the provider (deferred when that needs its API); the webhook URL to paste into
//!   each dashboard is shown. "Notices" opens the member-notices form (on/off, reminder lead
//!   times, welcome, language). "Finish" shows a summary.
//!
//! Progress (the step and the chosen roles) is stored per guild, so `/setup` resumes where it
//! stopped. Every click checks Manage Server again: the command's default permission is only a
//! default that owners can change.
//!
//! Putting a role on sale lets the seller obtain it, so nobody may sell a role Discord would not
//! let them assign themselves: choosing roles (step 1) and saving a price (step 2) check, with
//! Discord, that the caller is the owner or holds Manage Roles and ranks above the role
//! (`member_can_assign`), and roles that carry moderation or administration permissions are
//! never sold (`bot_can_manage`). Provider credentials decide where the money goes and which
//! webhooks are believed, so changing them needs the owner or Administrator.

mod views;

use std::sync::Arc;

use docobo_core::domain::{GuildId, ProviderName, RoleId, SetupProgress};
use docobo_core::ports::{Manageable, PaymentProvider, ProviderCredentials, StoreError};
use docobo_core::service::{CatalogRefusal, configure_notices, register_guild, set_credentials};
use serde::{Deserialize, Serialize};
use serenity::all::{
    ButtonStyle, ComponentInteractionData, ComponentInteractionDataKind, CreateActionRow, CreateEmbed,
    CreateInteractionResponse, ModalInteractionData, Permissions,
};

use self::views::{
    button, describe, describe_notices, notices_form, parse_notices, parse_price, price_form, provider_form,
    refusal, step1, values, with_notice,
};
use super::{Bot, Caller, Reply, View, unavailable};

/// The wizard's unsaved state: the roles chosen in step 1, with their names.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Draft {
    roles: Vec<(RoleId, String)>,
}

impl Bot {
    fn draft(progress: Option<&SetupProgress>) -> Draft {
        progress.and_then(|p| serde_json::from_str(&p.draft).ok()).unwrap_or_default()
    }

    async fn save_progress(&self, who: &Caller, step: u8, draft: &Draft) -> Result<(), StoreError> {
        let progress = SetupProgress {
            guild: who.guild,
            user: who.user,
            step,
            draft: serde_json::to_string(draft).unwrap_or_default(),
            updated_at: who.at,
        };
        self.repo.put_setup(&progress).await
    }

    async fn step2(&self, guild: GuildId, draft: &Draft, notice: Option<&str>) -> Result<View, StoreError> {
        let saved = self.repo.paid_roles(guild).await?;
        let mut lines = Vec::new();
        let mut buttons = Vec::new();
        for (role, name) in &draft.roles {
            let paid = saved.iter().find(|p| p.role == *role);
            lines.push(match paid {
                Some(p) => format!("✅ **{name}** — {}", describe(p)),
                None => format!("▫️ **{name}** — no price yet"),
            });
            let label: String = format!("Price: {name}").chars().take(80).collect();
            let style = if paid.is_some() { ButtonStyle::Secondary } else { ButtonStyle::Primary };
            buttons.push(button(&format!("price:{role}"), &label, style));
        }
        let all_priced = draft.roles.iter().all(|(r, _)| saved.iter().any(|p| p.role == *r));
        let mut rows: Vec<_> = buttons.chunks(5).map(|c| CreateActionRow::Buttons(c.to_vec())).collect();
        rows.push(CreateActionRow::Buttons(vec![
            button("step1", "◀ Roles", ButtonStyle::Secondary),
            button("step3", "Next: payment providers ▶", ButtonStyle::Success).disabled(!all_priced),
        ]));
        let content = format!(
            "**Setup 2/3 — prices.** Set a price for each role. A provider's product id lets members pay \
             through it; bank transfers (SePay) are offered for roles priced in VND with a fixed term or \
             lifetime.\n{}",
            lines.join("\n")
        );
        Ok(View { content: with_notice(notice, content), rows, embed: None })
    }

    /// The providers an owner can configure here: those with a `/setup` form.
    fn configurable(&self) -> impl Iterator<Item = &Arc<dyn PaymentProvider>> {
        self.providers.iter().filter(|p| !p.setup_form().is_empty())
    }

    async fn step3(&self, guild: GuildId, notice: Option<&str>) -> Result<View, StoreError> {
        let mut lines = Vec::new();
        let mut configured = 0;
        let mut buttons = vec![button("step2", "◀ Prices", ButtonStyle::Secondary)];
        for provider in self.configurable() {
            let name = provider.name();
            let done = self.repo.credentials(guild, name).await?.is_some();
            configured += usize::from(done);
            let state = if done { "✅ configured" } else { "▫️ not configured" };
            lines.push(format!(
                "**{}** {state} — webhook URL: `{}`",
                name.title(),
                self.webhook_url(name, guild)
            ));
            buttons.push(button(&format!("provider:{name}"), name.title(), ButtonStyle::Primary));
        }
        buttons.push(button("notices", "Notices", ButtonStyle::Secondary));
        buttons.push(button("done", "Finish", ButtonStyle::Success).disabled(configured == 0));
        let rows = buttons.chunks(5).map(|c| CreateActionRow::Buttons(c.to_vec())).collect();
        let notices = self.repo.guild(guild).await?.map(|g| describe_notices(&g.notices)).unwrap_or_default();
        let content = format!(
            "**Setup 3/3 — payment providers.** Configure at least one, then paste its webhook URL into \
             the provider's dashboard.\n{}\nMember DMs: {notices} (**Notices** changes them).",
            lines.join("\n")
        );
        Ok(View { content: with_notice(notice, content), rows, embed: None })
    }

    async fn summary(&self, guild: GuildId) -> Result<View, StoreError> {
        let roles = self.repo.paid_roles(guild).await?;
        let mut embed =
            CreateEmbed::new().title(format!("Docobo sells {} role(s) here", roles.len())).description(
                "Members buy with `/join` and check with `/status`. Run `/setup` again to change anything.",
            );
        for r in roles.iter().take(20) {
            embed = embed.field(&r.name, describe(r), false);
        }
        for provider in self.providers.iter() {
            let name = provider.name();
            if self.repo.credentials(guild, name).await?.is_some() {
                embed = embed.field(
                    format!("{} webhook URL", name.title()),
                    self.webhook_url(name, guild),
                    false,
                );
            }
        }
        Ok(View { content: "**Setup 3/3 — done.**".to_owned(), rows: Vec::new(), embed: Some(embed) })
    }

    /// The screen for `step`, when resuming.
    async fn resume(&self, who: &Caller, step: u8, draft: &Draft) -> Result<View, StoreError> {
        match step {
            2 if !draft.roles.is_empty() => {
                self.step2(who.guild, draft, Some("Resuming where you stopped.")).await
            }
            3 => self.step3(who.guild, Some("Resuming where you stopped.")).await,
            _ => Ok(step1(None)),
        }
    }

    /// `/setup`: registers the guild if needed and shows the current step.
    pub(super) async fn setup_start(&self, who: Caller) -> Result<Reply, StoreError> {
        if let Some(refusal) = not_a_manager(&who) {
            return Ok(refusal);
        }
        if self.repo.guild(who.guild).await?.is_none() {
            register_guild(&*self.repo, who.guild, &format!("guild {}", who.guild), None).await?;
        }
        let progress = self.repo.setup(who.guild).await?;
        let draft = Self::draft(progress.as_ref());
        let view = self.resume(&who, progress.map_or(1, |p| p.step), &draft).await?;
        Ok(Reply::message(view.message()))
    }

    pub(super) async fn setup_component(
        &self,
        who: Caller,
        action: &str,
        data: &ComponentInteractionData,
    ) -> Result<Reply, StoreError> {
        if let Some(refusal) = not_a_manager(&who) {
            return Ok(refusal);
        }
        let draft = Self::draft(self.repo.setup(who.guild).await?.as_ref());
        let view = match action.split_once(':') {
            Some(("price", role)) => {
                let Some((role, name)) = draft.roles.iter().find(|(r, _)| r.to_string() == role) else {
                    return Ok(Reply::update(step1(Some("That role is no longer in this setup.")).message()));
                };
                let saved = self.repo.paid_role(who.guild, *role).await?;
                let form = price_form(*role, name, saved.as_ref(), &self.providers);
                return Ok(Reply::new(CreateInteractionResponse::Modal(form)));
            }
            Some(("provider", name)) => {
                if let Some(refusal) = not_an_administrator(&who) {
                    return Ok(refusal);
                }
                let Some(provider) = self.providers.named(name).filter(|p| !p.setup_form().is_empty()) else {
                    return Ok(Reply::update(self.step3(who.guild, None).await?.message()));
                };
                return Ok(Reply::new(CreateInteractionResponse::Modal(provider_form(provider.as_ref()))));
            }
            _ => match action {
                "roles" => return Ok(self.choose_roles(who, data)),
                "notices" => {
                    let settings = self.repo.guild(who.guild).await?.map(|g| g.notices).unwrap_or_default();
                    return Ok(Reply::new(CreateInteractionResponse::Modal(notices_form(&settings))));
                }
                "step1" => step1(None),
                "step2" => {
                    self.save_progress(&who, 2, &draft).await?;
                    self.step2(who.guild, &draft, None).await?
                }
                "step3" => {
                    self.save_progress(&who, 3, &draft).await?;
                    self.step3(who.guild, None).await?
                }
                "done" => {
                    self.repo.clear_setup(who.guild).await?;
                    self.summary(who.guild).await?
                }
                _ => step1(Some("That button is from an older Docobo; start again here.")),
            },
        };
        Ok(Reply::update(view.message()))
    }

    /// Step 1's role select: checked with Discord, so deferred.
    fn choose_roles(&self, who: Caller, data: &ComponentInteractionData) -> Reply {
        let ComponentInteractionDataKind::RoleSelect { values } = &data.kind else {
            return Reply::update(step1(None).message());
        };
        let chosen: Vec<(RoleId, String)> = values
            .iter()
            .filter_map(|id| {
                let name =
                    data.resolved.roles.get(id).map_or_else(|| format!("role {id}"), |r| r.name.clone());
                Some((RoleId::new(id.get()).ok()?, name))
            })
            .collect();
        let bot = self.clone();
        Reply::deferred_update(async move {
            match bot.check_roles(who, chosen).await {
                Ok(view) => view.edit(),
                Err(e) => unavailable(&e),
            }
        })
    }

    async fn check_roles(&self, who: Caller, chosen: Vec<(RoleId, String)>) -> Result<View, StoreError> {
        let Some(roles) = &self.roles else {
            return Ok(step1(Some(&refusal(
                "Docobo cannot check roles right now.",
                "this Docobo has no Discord bot token configured (DISCORD_BOT_TOKEN)",
                "ask whoever runs Docobo to set DISCORD_BOT_TOKEN and restart it",
            ))));
        };
        let mut refused = Vec::new();
        for (role, name) in &chosen {
            let bot = roles.bot_can_manage(who.guild, *role).await;
            let checked = match bot {
                Ok(Manageable::Yes) => roles.member_can_assign(who.guild, who.user, &who.roles, *role).await,
                other => other,
            };
            if let Some(problem) = sell_refusal(name, checked) {
                refused.push(problem);
            }
        }
        if !refused.is_empty() {
            return Ok(step1(Some(&format!(
                "{}\nNothing was saved; pick the roles again.",
                refused.join("\n")
            ))));
        }
        let draft = Draft { roles: chosen };
        self.save_progress(&who, 2, &draft).await?;
        self.step2(who.guild, &draft, None).await
    }

    pub(super) async fn setup_modal(
        &self,
        who: Caller,
        form: &str,
        data: &ModalInteractionData,
    ) -> Result<Reply, StoreError> {
        if let Some(refusal) = not_a_manager(&who) {
            return Ok(refusal);
        }
        if form.starts_with("provider:")
            && let Some(refusal) = not_an_administrator(&who)
        {
            return Ok(refusal);
        }
        if form == "notices" {
            let notice = match parse_notices(data) {
                Err(problems) => format!("⚠️ Notices were not saved: {problems}."),
                Ok(change) => match configure_notices(&*self.repo, who.guild, change).await? {
                    Some(g) => format!("✅ Member DMs: {}.", describe_notices(&g.notices)),
                    None => "⚠️ Run `/setup` again: this server is not registered yet.".to_owned(),
                },
            };
            return Ok(Reply::update(self.step3(who.guild, Some(&notice)).await?.message()));
        }
        let draft = Self::draft(self.repo.setup(who.guild).await?.as_ref());
        let view = match form.split_once(':') {
            Some(("price", role)) => {
                let Some((role, name)) = draft.roles.iter().find(|(r, _)| r.to_string() == role) else {
                    return Ok(Reply::update(step1(Some("That role is no longer in this setup.")).message()));
                };
                let paid = match parse_price(who.guild, *role, name, data, &self.providers) {
                    Ok(paid) => paid,
                    Err(problems) => {
                        let notice = format!("⚠️ **{name}** was not saved: {problems}.");
                        return Ok(Reply::update(
                            self.step2(who.guild, &draft, Some(&notice)).await?.message(),
                        ));
                    }
                };
                // Whoever saves the price puts the role on sale: checked with Discord, so deferred.
                let (bot, name) = (self.clone(), name.clone());
                return Ok(Reply::deferred_update(async move {
                    let view = async {
                        let checked = match &bot.roles {
                            Some(g) => g.member_can_assign(who.guild, who.user, &who.roles, paid.role).await,
                            None => Ok(Manageable::No {
                                why: "this Docobo has no Discord bot token configured".to_owned(),
                                fix: "ask whoever runs Docobo to set DISCORD_BOT_TOKEN".to_owned(),
                            }),
                        };
                        let notice = match sell_refusal(&name, checked) {
                            Some(refused) => format!("{refused}\nThe price was not saved."),
                            None => {
                                bot.repo.put_paid_role(&paid).await?;
                                format!("✅ Saved **{name}**: {}.", describe(&paid))
                            }
                        };
                        bot.step2(who.guild, &draft, Some(&notice)).await
                    };
                    view.await.map_or_else(|e| unavailable(&e), View::edit)
                }));
            }
            Some(("provider", name)) => {
                let Some(provider) = self.providers.named(name) else {
                    return Ok(Reply::update(step1(Some("That provider is not available here.")).message()));
                };
                let title = provider.name().title().to_owned();
                let credentials = match provider.credentials_from_form(&values(data)) {
                    Ok(credentials) => credentials,
                    Err(e) => {
                        let notice = refusal(
                            &format!("{title} was not saved."),
                            &e.to_string(),
                            "check the values and try again",
                        );
                        return Ok(Reply::update(self.step3(who.guild, Some(&notice)).await?.message()));
                    }
                };
                let (bot, offline, name) = (self.clone(), provider.works_offline(), provider.name());
                let save = async move {
                    let notice = bot.save_credentials(who.guild, name, &credentials).await?;
                    bot.step3(who.guild, Some(&notice)).await
                };
                if !offline {
                    return Ok(Reply::deferred_update(async move {
                        save.await.map_or_else(|e| unavailable(&e), View::edit)
                    }));
                }
                save.await?
            }
            _ => step1(Some("That form is from an older Docobo; start again here.")),
        };
        Ok(Reply::update(view.message()))
    }

    /// Checks credentials with the provider, then stores them; the notice says which happened.
    async fn save_credentials(
        &self,
        guild: GuildId,
        provider: ProviderName,
        credentials: &ProviderCredentials,
    ) -> Result<String, StoreError> {
        let name = provider.title();
        match set_credentials(&*self.repo, &self.providers, guild, provider, credentials).await {
            Ok(()) => Ok(format!(
                "✅ {name} saved. Paste `{}` into {name}'s webhook settings.",
                self.webhook_url(provider, guild)
            )),
            Err(CatalogRefusal::Store(e)) => Err(e),
            Err(e) => Ok(refusal(
                &format!("{name} was not saved."),
                &e.to_string(),
                "check the values and try again",
            )),
        }
    }
}

/// The four-part refusal for a role that cannot be sold, from a `bot_can_manage` or
/// `member_can_assign` answer; `None` when it can.
fn sell_refusal(name: &str, checked: Result<Manageable, docobo_core::ports::GatewayError>) -> Option<String> {
    match checked {
        Ok(Manageable::Yes) => None,
        Ok(Manageable::No { why, fix }) => {
            Some(refusal(&format!("Docobo cannot sell **{name}**."), &why, &fix))
        }
        Err(e) => Some(refusal(
            &format!("Docobo could not check **{name}**."),
            &e.to_string(),
            "try again in a minute",
        )),
    }
}

/// Provider credentials decide where money goes and which webhooks are believed: only the owner
/// (who has every permission) or an Administrator may change them.
fn not_an_administrator(who: &Caller) -> Option<Reply> {
    (!who.permissions.contains(Permissions::ADMINISTRATOR)).then(|| {
        Reply::text(refusal(
            "Only the server owner or an Administrator can change payment providers.",
            "the credentials decide where the money goes and which payments Docobo believes",
            "ask the server owner, or someone with the Administrator permission",
        ))
    })
}

fn not_a_manager(who: &Caller) -> Option<Reply> {
    let allowed = who.permissions.intersects(Permissions::MANAGE_GUILD | Permissions::ADMINISTRATOR);
    (!allowed).then(|| {
        Reply::text(refusal(
            "Only server managers can run `/setup`.",
            "it changes what this server sells and where the money goes",
            "ask someone with the Manage Server permission",
        ))
    })
}
