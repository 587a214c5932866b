//! The wizard's screens and forms, and reading what an owner typed into them.

use docobo_core::domain::{Currency, GuildId, Money, PaidRole, ProviderKind, RoleId, Term};
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
    let mut how = Vec::new();
    if role.polar_product.is_some() {
        how.push("Polar");
    }
    if role.sepay {
        how.push("SePay");
    }
    let how = if how.is_empty() { "no provider yet".to_owned() } else { how.join(", ") };
    format!("{} · {} · {how}", role.price, role.term)
}

/// The form for one role's price, pre-filled from what is saved.
pub(super) fn price_form(role: RoleId, name: &str, saved: Option<&PaidRole>) -> CreateModal {
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
    CreateModal::new(format!("setup:price:{role}"), title).components(vec![
        input("Price", "price", saved.map(|r| r.price.amount()), "5.00 (or 100000 for VND)", true),
        input("Currency", "currency", saved.map(|r| r.price.currency.to_string()), "USD, EUR, VND, …", true),
        input("Term", "term", saved.map(|r| r.term.to_string()), "recurring, lifetime, or 30d", true),
        input(
            "Polar product id (empty: no Polar)",
            "polar_product",
            saved.and_then(|r| r.polar_product.clone()),
            "from Polar → Products",
            false,
        ),
    ])
}

pub(super) fn text_input(id: &str, label: &str, placeholder: &str, required: bool) -> CreateActionRow {
    CreateActionRow::InputText(
        CreateInputText::new(InputTextStyle::Short, label, id).placeholder(placeholder).required(required),
    )
}

pub(super) fn provider_form(kind: ProviderKind) -> CreateModal {
    match kind {
        ProviderKind::Polar => CreateModal::new("setup:polar", "Polar credentials").components(vec![
            text_input("webhook_secret", "Webhook secret", "whsec_… (Polar → Settings → Webhooks)", true),
            text_input("access_token", "Organization access token", "polar_oat_… (for checkouts)", true),
        ]),
        _ => CreateModal::new("setup:sepay", "SePay bank account").components(vec![
            text_input(
                "api_key",
                "SePay API key or HMAC secret (32+ characters)",
                "openssl rand -hex 24",
                true,
            ),
            text_input(
                "auth",
                "Authentication: hmac or apikey",
                "hmac (as chosen in SePay → Webhooks)",
                false,
            ),
            text_input("bank", "Bank", "MBBank, Vietcombank, …", true),
            text_input("account", "Account number", "the account that receives transfers", true),
            text_input("code_prefix", "Transfer code prefix (optional)", "DCB", false),
        ]),
    }
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
    paid.polar_product = Some(field(data, "polar_product").to_owned()).filter(|p| !p.is_empty());
    // SePay for VND prices, wherever the role's own rules allow it (a transfer never renews).
    paid.sepay = price.currency == Currency::Vnd;
    paid.sepay = paid.sold_through(ProviderKind::Sepay);
    Ok(paid)
}

/// A refusal in four parts: what happened, why, how to fix it, where to get help.
pub(super) fn refusal(what: &str, why: &str, fix: &str) -> String {
    format!("⛔ {what}\n**Why:** {why}.\n**Fix:** {fix}.\n**Help:** {HELP}.")
}
