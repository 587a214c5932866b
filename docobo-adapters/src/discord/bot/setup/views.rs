//! The wizard's screens and forms, and reading what an owner typed into them.

use std::collections::BTreeMap;

use docobo_core::domain::{
    Currency, GuildId, Locale, Money, NoticeSettings, PaidRole, ProductLink, ProviderName, Reminders, RoleId,
    Term,
};
use docobo_core::ports::{PaymentProvider, ProviderRegistry, SetupField};
use docobo_core::service::NoticeChange;
use docobo_core::service::catalog::{link_problems, sale_problems};
use serenity::all::{
    ActionRowComponent, ButtonStyle, CreateActionRow, CreateButton, CreateInputText, CreateModal,
    CreateSelectMenu, CreateSelectMenuKind, InputTextStyle, ModalInteractionData,
};

use super::super::View;

/// Where owners get help, shown with every refusal.
pub(super) const HELP: &str = "`/help`, or the README's \"Selling a role\" section";
/// At most this many roles per guild through the wizard (four rows of five buttons).
pub(super) const MAX_ROLES: u8 = 20;

pub(super) fn button(id: &str, label: &str, style: ButtonStyle) -> CreateButton {
    CreateButton::new(format!("setup:{id}")).label(label).style(style)
}

pub(super) fn with_notice(notice: Option<&str>, body: String) -> String {
    match notice {
        Some(n) => format!("{n}\n\n{body}"),
        None => body,
    }
}

pub(super) fn step1(notice: Option<&str>) -> View {
    let select = CreateSelectMenu::new("setup:roles", CreateSelectMenuKind::Role { default_roles: None })
        .placeholder("Roles to sell")
        .min_values(1)
        .max_values(MAX_ROLES);
    View {
        content: with_notice(
            notice,
            "**Setup 1/3 — roles to sell.** Pick the roles members can buy. The bot's own role must sit \
             above them in Server Settings → Roles."
                .to_owned(),
        ),
        rows: vec![CreateActionRow::SelectMenu(select)],
        embed: None,
    }
}

pub(super) fn describe(role: &PaidRole) -> String {
    let mut how: Vec<&str> = Vec::new();
    for link in &role.links {
        if !how.contains(&link.provider.title()) {
            how.push(link.provider.title());
        }
    }
    let how = if how.is_empty() { "no provider yet".to_owned() } else { how.join(", ") };
    format!("{} · {} · {how}", role.price, role.term)
}

/// The id of the price form's field for a product at `provider`.
fn product_field(provider: ProviderName) -> String {
    format!("product:{provider}")
}

/// The providers whose links name a product, as many as fit in the price form.
pub(super) fn product_providers(providers: &ProviderRegistry) -> impl Iterator<Item = ProviderName> + '_ {
    providers.iter().filter(|p| p.sells().needs_product).map(|p| p.name()).take(SetupField::MAX - 3)
}

/// The form for one role's price, pre-filled from what is saved: price, currency, term, and a
/// product id for each provider that sells by product.
pub(super) fn price_form(
    role: RoleId,
    name: &str,
    saved: Option<&PaidRole>,
    providers: &ProviderRegistry,
) -> CreateModal {
    let input = |label: &str, id: &str, value: Option<String>, placeholder: &str, required: bool| {
        let input = CreateInputText::new(InputTextStyle::Short, label, id)
            .placeholder(placeholder)
            .required(required)
            .max_length(100);
        CreateActionRow::InputText(match value {
            Some(v) => input.value(v),
            None => input,
        })
    };
    let title: String = format!("Price for {name}").chars().take(45).collect();
    let mut fields = vec![
        input("Price", "price", saved.map(|r| r.price.amount()), "5.00 (or 100000 for VND)", true),
        input("Currency", "currency", saved.map(|r| r.price.currency.to_string()), "USD, EUR, VND, …", true),
        input("Term", "term", saved.map(|r| r.term.to_string()), "recurring, lifetime, or 30d", true),
    ];
    for provider in product_providers(providers) {
        let label: String =
            format!("{} product (or product/variant)", provider.title()).chars().take(45).collect();
        let saved = saved.and_then(|r| r.link_to(provider)).and_then(|l| match (&l.product, &l.variant) {
            (Some(p), Some(v)) => Some(format!("{p}/{v}")),
            (p, _) => p.clone(),
        });
        fields.push(input(&label, &product_field(provider), saved, "empty: not sold there", false));
    }
    CreateModal::new(format!("setup:price:{role}"), title).components(fields)
}

/// `provider`'s credentials form, from what it declares ([`PaymentProvider::setup_form`]).
pub(super) fn provider_form(provider: &dyn PaymentProvider) -> CreateModal {
    let name = provider.name();
    let title: String = format!("{} credentials", name.title()).chars().take(45).collect();
    let fields = provider.setup_form().iter().take(SetupField::MAX).map(|f| {
        CreateActionRow::InputText(
            CreateInputText::new(InputTextStyle::Short, f.label, f.id)
                .placeholder(f.placeholder)
                .required(f.required),
        )
    });
    CreateModal::new(format!("setup:provider:{name}"), title).components(fields.collect())
}

/// Every submitted value, by field id, trimmed.
pub(super) fn values(data: &ModalInteractionData) -> BTreeMap<String, String> {
    data.components
        .iter()
        .flat_map(|row| &row.components)
        .filter_map(|c| match c {
            ActionRowComponent::InputText(t) => {
                Some((t.custom_id.clone(), t.value.as_deref()?.trim().to_owned()))
            }
            _ => None,
        })
        .collect()
}

/// The submitted value of field `id`, trimmed.
pub(super) fn field<'a>(data: &'a ModalInteractionData, id: &str) -> &'a str {
    data.components
        .iter()
        .flat_map(|row| &row.components)
        .find_map(|c| match c {
            ActionRowComponent::InputText(t) if t.custom_id == id => t.value.as_deref(),
            _ => None,
        })
        .unwrap_or("")
        .trim()
}

/// A paid role from the price form, or every problem with it.
pub(super) fn parse_price(
    guild: GuildId,
    role: RoleId,
    name: &str,
    data: &ModalInteractionData,
    providers: &ProviderRegistry,
) -> Result<PaidRole, String> {
    let mut problems = Vec::new();
    let currency = field(data, "currency").to_ascii_uppercase().parse::<Currency>();
    let term = field(data, "term").to_ascii_lowercase().parse::<Term>();
    if let Err(e) = &term {
        problems.push(format!("term: {e}"));
    }
    let price = match &currency {
        Ok(c) => {
            Money::parse(field(data, "price"), *c).map_err(|e| problems.push(format!("price: {e}"))).ok()
        }
        Err(e) => {
            problems.push(format!("currency: {e}"));
            None
        }
    };
    let (Some(price), Ok(term), true) = (price, term, problems.is_empty()) else {
        return Err(problems.join("; "));
    };
    let mut paid = PaidRole::new(guild, role, name, price, term).map_err(|e| e.to_string())?;
    for provider in product_providers(providers) {
        // `PRODUCT`, or `PRODUCT/VARIANT` to sell one variant (Sell.app's 30, 60 or 90 days).
        let typed = field(data, &product_field(provider));
        match typed.split_once('/') {
            _ if typed.is_empty() => {}
            Some((product, variant)) => {
                paid.link(ProductLink::product(provider, product.trim()).variant(variant.trim()))
            }
            None => paid.link(ProductLink::product(provider, typed)),
        }
    }
    // A provider that needs no product (a bank transfer, matched by its code) is offered wherever
    // its rules allow: SePay for VND prices with a fixed term or lifetime.
    for provider in providers.iter().filter(|p| !p.sells().needs_product) {
        let link = ProductLink::to(provider.name());
        if link_problems(&paid, &link, provider.sells()).is_empty() {
            paid.link(link);
        }
    }
    let problems = sale_problems(&paid, providers);
    if problems.is_empty() { Ok(paid) } else { Err(problems.join("; ")) }
}

/// A refusal in four parts: what happened, why, how to fix it, where to get help.
pub(super) fn refusal(what: &str, why: &str, fix: &str) -> String {
    format!("⛔ {what}\n**Why:** {why}.\n**Fix:** {fix}.\n**Help:** {HELP}.")
}

/// The member-notices form, filled with the guild's settings.
pub(super) fn notices_form(settings: &NoticeSettings) -> CreateModal {
    let on = |b: bool| if b { "on" } else { "off" };
    let input = |label: &str, id: &str, value: String, placeholder: &str| {
        CreateActionRow::InputText(
            CreateInputText::new(InputTextStyle::Short, label, id)
                .value(value)
                .placeholder(placeholder)
                .required(true),
        )
    };
    CreateModal::new("setup:notices", "Member notices").components(vec![
        input("Notices (on or off)", "enabled", on(settings.enabled).to_owned(), "on"),
        input("Reminders before access ends", "remind", settings.remind.to_string(), "3d,1d, or none"),
        input("Welcome on first payment (on or off)", "welcome", on(settings.welcome).to_owned(), "off"),
        input("Language (en or vi)", "locale", settings.locale.to_string(), "en"),
    ])
}

/// The notices form's values as a change, or every problem with them.
pub(super) fn parse_notices(data: &ModalInteractionData) -> Result<NoticeChange, String> {
    let mut problems = Vec::new();
    let mut switch = |id: &str, label: &str| match field(data, id).to_ascii_lowercase().as_str() {
        "on" => Some(true),
        "off" => Some(false),
        other => {
            problems.push(format!("{label} must be on or off, not {other:?}"));
            None
        }
    };
    let enabled = switch("enabled", "Notices");
    let welcome = switch("welcome", "Welcome");
    let remind = field(data, "remind").parse::<Reminders>().map_err(|e| problems.push(e.to_string())).ok();
    let locale = field(data, "locale").to_ascii_lowercase().parse::<Locale>();
    let locale = locale.map_err(|_| problems.push("Language must be en or vi".to_owned())).ok();
    if problems.is_empty() {
        Ok(NoticeChange { enabled, welcome, remind, locale })
    } else {
        Err(problems.join("; "))
    }
}

/// `notices on, reminders 3d,1d before access ends, welcome off, in en`.
pub(super) fn describe_notices(settings: &NoticeSettings) -> String {
    let on = |b: bool| if b { "on" } else { "off" };
    format!(
        "notices {}, reminders {} before access ends, welcome {}, in {}",
        on(settings.enabled),
        settings.remind,
        on(settings.welcome),
        settings.locale
    )
}
