//! `/help` and `/status`: answered at once, visible only to the member who asked.

use docobo_core::ports::{StoreError, SubscriptionRepo};
use docobo_core::service::{StatusLine, member_status};
use time::format_description::well_known::Rfc3339;

use super::Caller;

pub(super) const HELP: &str = "**Docobo** sells roles in this server.\n\
    • `/join` — buy a role (card via Polar, or a Vietnamese bank transfer via SePay)\n\
    • `/status` — what you have bought and until when\n\
    • `/setup` — for server managers: choose roles, prices and payment providers\n\
    Paid roles are granted moments after payment and removed when access ends.";

/// The member's purchases here, entitled ones first.
pub(super) async fn text(repo: &dyn SubscriptionRepo, who: Caller) -> Result<String, StoreError> {
    Ok(render(&member_status(repo, who.guild, who.user, who.at).await?))
}

fn render(lines: &[StatusLine]) -> String {
    if lines.is_empty() {
        return "You have no purchases in this server yet. `/join` shows what is for sale.".to_owned();
    }
    let mut text = String::from("Your purchases here:\n");
    for l in lines {
        let name = l.role_name.clone().unwrap_or_else(|| format!("role {}", l.role));
        let until = l.access_until.and_then(|t| t.format(&Rfc3339).ok());
        let when = match (l.entitled, until) {
            (true, Some(t)) => format!(" — until {t}"),
            (true, None) => String::new(),
            (false, _) => " — no access".to_owned(),
        };
        text.push_str(&format!("• **{name}**: {}{when}\n", l.status));
    }
    text
}
