//! `/help`, `/status` and `/notify`: answered at once, visible only to the member who asked.

use docobo_core::domain::MemberNotices;
use docobo_core::ports::{StoreError, SubscriptionRepo};
use docobo_core::service::{StatusLine, member_status};
use time::format_description::well_known::Rfc3339;

use super::Caller;

pub(super) const HELP: &str = "**Docobo** sells roles in this server.\n\
    • `/join` — buy a role (card via Polar, or a Vietnamese bank transfer via SePay)\n\
    • `/status` — what you have bought and until when\n\
    • `/notify on` or `/notify off` — reminders by direct message before your access ends\n\
    • `/setup` — for server managers: choose roles, prices and payment providers\n\
    Paid roles are granted moments after payment and removed when access ends.";

/// The member's purchases here, entitled ones first, and whether notices reach them.
pub(super) async fn text(repo: &dyn SubscriptionRepo, who: Caller) -> Result<String, StoreError> {
    let mut text = render(&member_status(repo, who.guild, who.user, who.at).await?);
    let enabled = repo.guild(who.guild).await?.is_some_and(|g| g.notices.enabled);
    if enabled {
        text.push('\n');
        text.push_str(notices_line(repo.member_notices(who.guild, who.user).await?));
    }
    Ok(text)
}

fn notices_line(member: MemberNotices) -> &'static str {
    match member {
        MemberNotices { muted_at: Some(_), .. } => {
            "Reminders: **off**. `/notify on` brings back direct messages before your access ends."
        }
        MemberNotices { unreachable_at: Some(_), .. } => {
            "Reminders: **not reaching you** — Discord refused my direct messages (DMs closed, or Docobo \
             blocked). Allow direct messages from this server's members, then run `/notify on`."
        }
        _ => {
            "Reminders: **on** — I send you a direct message before your access ends. `/notify off` stops them."
        }
    }
}

/// `/notify on|off`: the member's notices in this server.
pub(super) async fn notify(
    repo: &dyn SubscriptionRepo,
    who: Caller,
    on: Option<bool>,
) -> Result<String, StoreError> {
    let Some(on) = on else { return Ok("Use `/notify on` or `/notify off`.".to_owned()) };
    repo.set_member_notices(who.guild, who.user, on, who.at).await?;
    Ok(if on {
        "Reminders are **on**: I will send you a direct message before your access here ends. Make sure \
         direct messages from this server's members are allowed."
            .to_owned()
    } else {
        "Reminders are **off** for this server. `/notify on` turns them back on.".to_owned()
    })
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
