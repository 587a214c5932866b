//! Every notice's words, in English and Vietnamese, in one place. Names are filled in as plain
//! text: nothing in a role or server name can mention anyone or break the formatting, and times
//! are Discord timestamps (`<t:…:f>`), shown in each reader's own time zone.

use time::Duration;

use crate::domain::{Locale, NoticeKind, Timestamp};
use crate::ports::{CheckoutLink, DirectMessage};

/// What a notice says about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeFacts<'a> {
    pub kind: NoticeKind,
    pub role: &'a str,
    pub guild: &'a str,
    /// When access ends or ended, or the grace deadline.
    pub about: Option<Timestamp>,
    pub now: Timestamp,
}

/// The message for `facts` in `locale`, with `link` (the checkout `/join` would make) as a button,
/// or as the payment instructions and QR when it has no page; `nonce` identifies the notice.
pub fn render(
    locale: Locale,
    facts: &NoticeFacts<'_>,
    link: Option<&CheckoutLink>,
    nonce: String,
) -> DirectMessage {
    let (role, guild) = (plain(facts.role), plain(facts.guild));
    let when = facts.about.map_or_else(String::new, |at| format!("<t:{}:f>", at.unix_timestamp()));
    let left = facts.about.map_or(Duration::ZERO, |at| at - facts.now);
    let vi = locale == Locale::Vi;
    let mut text = match (facts.kind, vi) {
        (NoticeKind::EndingSoon, false) => format!(
            "Your access to **{role}** in **{guild}** ends in {} ({when}). Renew to keep it.",
            time_left(left, false)
        ),
        (NoticeKind::EndingSoon, true) => format!(
            "Quyền truy cập **{role}** tại **{guild}** của bạn sẽ hết hạn sau {} ({when}). Hãy gia hạn để tiếp tục.",
            time_left(left, true)
        ),
        (NoticeKind::PaymentFailed, false) => format!(
            "Your payment for **{role}** in **{guild}** did not go through. You keep access until {when}; \
             pay again before then to keep it."
        ),
        (NoticeKind::PaymentFailed, true) => format!(
            "Thanh toán cho **{role}** tại **{guild}** không thành công. Bạn vẫn giữ quyền truy cập đến {when}; \
             hãy thanh toán lại trước thời điểm đó để tiếp tục."
        ),
        (NoticeKind::Ended, false) => {
            format!("Your access to **{role}** in **{guild}** has ended. You can buy it again at any time.")
        }
        (NoticeKind::Ended, true) => format!(
            "Quyền truy cập **{role}** tại **{guild}** của bạn đã kết thúc. Bạn có thể mua lại bất cứ lúc nào."
        ),
        (NoticeKind::Welcome, false) => {
            format!("Welcome to **{role}** in **{guild}**! Your access is active.")
        }
        (NoticeKind::Welcome, true) => {
            format!(
                "Chào mừng bạn đến với **{role}** tại **{guild}**! Quyền truy cập của bạn đã được kích hoạt."
            )
        }
    };
    let mut button = None;
    let mut image = None;
    match link {
        Some(CheckoutLink { url: Some(url), .. }) => {
            let label = match (facts.kind, vi) {
                (NoticeKind::Ended, false) => "Buy again",
                (NoticeKind::Ended, true) => "Mua lại",
                (_, false) => "Renew",
                (_, true) => "Gia hạn",
            };
            button = Some((label.to_owned(), url.clone()));
        }
        Some(link) => {
            text.push_str("\n\n");
            text.push_str(&link.instructions);
            image.clone_from(&link.qr_image_url);
        }
        None if facts.kind != NoticeKind::Welcome => text.push_str(&if vi {
            format!("\n\nDùng `/join` trong **{guild}** để gia hạn.")
        } else {
            format!("\n\nUse `/join` in **{guild}** to renew.")
        }),
        None => {}
    }
    text.push_str(&if vi {
        format!("\n-# Tắt các tin nhắn này bằng `/notify off` trong {guild}.")
    } else {
        format!("\n-# Turn these messages off with `/notify off` in {guild}.")
    });
    DirectMessage { text, button, image, nonce }
}

/// `3 days`, `1 day`, `5 hours`, `less than an hour` (and in Vietnamese), rounded to the nearest
/// unit so a reminder sent a few seconds late still says "3 days".
pub fn time_left(left: Duration, vi: bool) -> String {
    let hours = (left + Duration::minutes(30)).whole_hours();
    let days = (left + Duration::hours(12)).whole_days();
    match (days, hours, vi) {
        (d, _, false) if d >= 2 => format!("{d} days"),
        (d, _, true) if d >= 2 => format!("{d} ngày"),
        (_, h, false) if h >= 24 => "1 day".to_owned(),
        (_, h, true) if h >= 24 => "1 ngày".to_owned(),
        (_, h, false) if h >= 2 => format!("{h} hours"),
        (_, h, true) if h >= 1 => format!("{h} giờ"),
        (_, 1, false) => "1 hour".to_owned(),
        (_, _, false) => "less than an hour".to_owned(),
        (_, _, true) => "chưa đầy một giờ".to_owned(),
    }
}

/// `name` as inert text: no mention (`<@…>`, `@everyone`) and no formatting survives.
fn plain(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().filter(|c| !c.is_control()) {
        match c {
            '*' | '_' | '~' | '`' | '|' | '>' | '#' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            // A zero-width space after `@` and `<` breaks every mention syntax.
            '@' | '<' => {
                out.push(c);
                out.push('\u{200b}');
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn facts(kind: NoticeKind, role: &'static str) -> NoticeFacts<'static> {
        let now = datetime!(2026-12-01 00:00 UTC);
        NoticeFacts { kind, role, guild: "Signals", about: Some(now + Duration::days(3)), now }
    }

    #[test]
    fn an_ending_soon_notice_names_role_guild_time_left_and_the_renew_button() {
        let link = CheckoutLink::page("https://pay.example/c/1", "Pay on Polar");
        let m = render(Locale::En, &facts(NoticeKind::EndingSoon, "VIP"), Some(&link), "n1".into());
        assert!(
            m.text.starts_with("Your access to **VIP** in **Signals** ends in 3 days (<t:"),
            "{}",
            m.text
        );
        assert_eq!(m.button, Some(("Renew".into(), "https://pay.example/c/1".into())));
        let vi = render(Locale::Vi, &facts(NoticeKind::EndingSoon, "VIP"), Some(&link), "n1".into());
        assert!(vi.text.contains("sẽ hết hạn sau 3 ngày"), "{}", vi.text);
        assert_eq!(vi.button.map(|b| b.0), Some("Gia hạn".into()));
    }

    #[test]
    fn names_cannot_mention_anyone() {
        let m = render(Locale::En, &facts(NoticeKind::Ended, "@everyone <@&123> **x**"), None, "n".into());
        assert!(!m.text.contains("@everyone") && !m.text.contains("<@"), "{}", m.text);
        assert!(m.text.contains("\\*\\*x\\*\\*"), "{}", m.text);
    }

    #[test]
    fn a_payment_without_a_page_shows_its_instructions_and_qr() {
        let link = CheckoutLink::qr("https://qr.example/1.png", "Transfer 250,000 VND with code DCB123");
        let m = render(Locale::Vi, &facts(NoticeKind::EndingSoon, "VIP"), Some(&link), "n".into());
        assert!(m.text.contains("DCB123") && m.button.is_none(), "{}", m.text);
        assert_eq!(m.image.as_deref(), Some("https://qr.example/1.png"));
    }

    #[test]
    fn time_left_rounds_to_the_nearest_unit() {
        let d = Duration::days;
        assert_eq!(time_left(d(3) - Duration::seconds(40), false), "3 days");
        assert_eq!(time_left(d(1), false), "1 day");
        assert_eq!(time_left(Duration::hours(5), true), "5 giờ");
        assert_eq!(time_left(Duration::minutes(10), false), "less than an hour");
    }
}
