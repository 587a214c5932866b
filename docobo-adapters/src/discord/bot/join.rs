//! `/join`: one select menu listing every (role, provider) on offer; choosing one stores a
//! checkout and shows how to pay. A provider that builds its answer locally (SePay's QR) is shown
//! at once; one that must be asked (Polar's checkout page) is answered after a deferral. A
//! provider that needs the buyer's email first (Sell.app with an API key) gets a one-field form
//! before the checkout starts.

use docobo_core::domain::{GuildId, ProviderName, RoleId, UserId};
use docobo_core::ports::CheckoutLink;
use docobo_core::service::{JoinError, offers, start_checkout};
use serenity::all::{
    ActionRowComponent, ComponentInteractionData, ComponentInteractionDataKind, CreateActionRow,
    CreateButton, CreateEmbed, CreateInputText, CreateInteractionResponse, CreateInteractionResponseMessage,
    CreateModal, CreateSelectMenu, CreateSelectMenuKind, CreateSelectMenuOption, InputTextStyle,
    ModalInteractionData,
};

use super::{Bot, Caller, Reply, View, unavailable};
use docobo_core::ports::StoreError;

/// Discord's limit on select menu options.
const MAX_OPTIONS: usize = 25;

/// What the member sees once a checkout exists, or why it does not.
fn outcome(result: Result<(String, CheckoutLink), JoinError>) -> Result<View, StoreError> {
    let (role, link) = match result {
        Ok(ok) => ok,
        Err(JoinError::Store(e)) => return Err(e),
        Err(e) => {
            return Ok(View {
                content: format!(
                    "Docobo could not start this payment: {e}. Try again later, or ask a server manager."
                ),
                rows: Vec::new(),
                embed: None,
            });
        }
    };
    let after = "The role arrives moments after the payment goes through; `/status` shows it.";
    let content = format!("**{role}** — {}\n{after}", link.instructions);
    let embed = link.qr_image_url.map(|qr| {
        CreateEmbed::new().title(format!("Scan to pay for {role}")).description(&link.instructions).image(qr)
    });
    let button = link.url.map(|url| CreateButton::new_link(url).label("Open the payment page"));
    let rows = button.into_iter().map(|b| CreateActionRow::Buttons(vec![b])).collect();
    Ok(View { content, rows, embed })
}

impl Bot {
    /// The menu of offers.
    pub(super) async fn join_menu(&self, who: Caller) -> Result<Reply, StoreError> {
        let offers = offers(&*self.repo, &self.providers, who.guild).await?;
        if offers.is_empty() {
            return Ok(Reply::text(
                "Nothing is for sale in this server yet. Server managers can start with `/setup`.",
            ));
        }
        let options = offers
            .iter()
            .take(MAX_OPTIONS)
            .map(|o| {
                let label = format!("{} — {} ({})", o.role.name, o.role.price, o.role.term);
                CreateSelectMenuOption::new(label, format!("{}:{}", o.role.role, o.provider)).description(
                    self.provider(o.provider).map(|p| p.payment_method().to_owned()).unwrap_or_default(),
                )
            })
            .collect();
        let menu = CreateSelectMenu::new("join:offer", CreateSelectMenuKind::String { options })
            .placeholder("Choose a role and how to pay");
        Ok(Reply::message(
            CreateInteractionResponseMessage::new()
                .content("What would you like to buy?")
                .components(vec![CreateActionRow::SelectMenu(menu)]),
        ))
    }

    /// A choice from the menu: `"{role}:{provider}"`.
    pub(super) async fn join_choice(
        &self,
        who: Caller,
        data: &ComponentInteractionData,
    ) -> Result<Reply, StoreError> {
        let chosen = match &data.kind {
            ComponentInteractionDataKind::StringSelect { values } => values.first().and_then(|v| {
                let (role, provider) = v.split_once(':')?;
                Some((role.parse::<RoleId>().ok()?, provider.parse::<ProviderName>().ok()?))
            }),
            _ => None,
        };
        let Some((role, provider)) = chosen.and_then(|(role, name)| Some((role, self.provider(name)?)))
        else {
            return Ok(Reply::text("That choice is no longer on offer. Run `/join` again."));
        };
        let credentials = self.repo.credentials(who.guild, provider.name()).await?;
        if credentials.as_ref().is_some_and(|c| provider.needs_email(c)) {
            return Ok(Reply::new(CreateInteractionResponse::Modal(email_form(role, provider.name()))));
        }
        self.checkout(who, role, provider, None).await
    }

    /// The email form's answer (`email:{role}:{provider}`): the checkout, with the email.
    pub(super) async fn join_email(
        &self,
        who: Caller,
        form: &str,
        data: &ModalInteractionData,
    ) -> Result<Reply, StoreError> {
        let chosen = form.strip_prefix("email:").and_then(|rest| {
            let (role, provider) = rest.split_once(':')?;
            Some((role.parse::<RoleId>().ok()?, self.provider(provider.parse::<ProviderName>().ok()?)?))
        });
        let Some((role, provider)) = chosen else {
            return Ok(Reply::text("That choice is no longer on offer. Run `/join` again."));
        };
        let email = data
            .components
            .iter()
            .flat_map(|row| &row.components)
            .find_map(|c| match c {
                ActionRowComponent::InputText(t) if t.custom_id == "email" => t.value.as_deref(),
                _ => None,
            })
            .unwrap_or("")
            .trim();
        let plausible = email.len() <= 254
            && email.split_once('@').is_some_and(|(a, d)| !a.is_empty() && d.contains('.'));
        if !plausible {
            return Ok(Reply::text("That does not look like an email address. Run `/join` again."));
        }
        self.checkout(who, role, provider, Some(email.to_owned())).await
    }

    /// Starts the checkout (after the cooldown) and shows how to pay; deferred when the provider
    /// must be asked.
    async fn checkout(
        &self,
        who: Caller,
        role: RoleId,
        provider: std::sync::Arc<dyn docobo_core::ports::PaymentProvider>,
        email: Option<String>,
    ) -> Result<Reply, StoreError> {
        if !self.checkouts.admit((who.guild, who.user)) {
            return Ok(Reply::text(format!(
                "You just started a checkout. Use that one, or try again in {} seconds.",
                CheckoutCooldown::WAIT.as_secs()
            )));
        }
        let bot = self.clone();
        let offline = provider.works_offline();
        let checkout = async move {
            let name =
                bot.repo.paid_role(who.guild, role).await?.map_or_else(|| format!("role {role}"), |r| r.name);
            let member = (who.guild, who.user, role);
            let started =
                start_checkout(&*bot.repo, &*provider, member, super::entropy(), who.at, email.as_deref())
                    .await;
            outcome(started.map(|(_, link)| (name, link)))
        };
        if !offline {
            return Ok(Reply::deferred_update(async move {
                match checkout.await {
                    Ok(o) => o.edit(),
                    Err(e) => unavailable(&e),
                }
            }));
        }
        Ok(Reply::update(checkout.await?.message()))
    }
}

/// The form asking for the buyer's email (Sell.app needs one before its payment page exists).
fn email_form(role: RoleId, provider: ProviderName) -> CreateModal {
    let input = CreateInputText::new(InputTextStyle::Short, "Email for the receipt", "email")
        .placeholder("you@example.com")
        .required(true)
        .max_length(254);
    CreateModal::new(format!("join:email:{role}:{provider}"), format!("Pay with {}", provider.title()))
        .components(vec![CreateActionRow::InputText(input)])
}

/// At most one checkout per member every [`CheckoutCooldown::WAIT`] (review finding L12): each
/// one is a stored row and, for Polar, a call on the owner's API token and rate limit, so a member
/// clicking `/join` in a loop must not be able to spend them.
#[derive(Debug, Default)]
pub(crate) struct CheckoutCooldown(
    std::sync::Mutex<std::collections::HashMap<(GuildId, UserId), std::time::Instant>>,
);

impl CheckoutCooldown {
    pub(crate) const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

    /// Whether `member` may start a checkout now; if so, the wait starts again.
    pub(crate) fn admit(&self, member: (GuildId, UserId)) -> bool {
        let now = std::time::Instant::now();
        let mut last = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.len() > 10_000 {
            last.retain(|_, at| now.duration_since(*at) < Self::WAIT);
        }
        match last.get(&member) {
            Some(at) if now.duration_since(*at) < Self::WAIT => false,
            _ => {
                last.insert(member, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l12_a_member_gets_one_checkout_per_ten_seconds_and_others_are_not_held() {
        let cooldown = CheckoutCooldown::default();
        let (g, a, b) =
            (GuildId::new(1).expect("id"), UserId::new(2).expect("id"), UserId::new(3).expect("id"));
        assert!(cooldown.admit((g, a)));
        assert!(!cooldown.admit((g, a)), "a second click right away is refused");
        assert!(cooldown.admit((g, b)), "another member is not held up");
    }
}
