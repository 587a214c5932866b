//! What a mirror looks like: a signal becomes one or more [`MirrorPart`]s within Discord's
//! limits (2,000 characters of content, 10 rich embeds and 6,000 embed characters, 10 files per
//! message), mentions made inert, attachments re-uploaded when they fit the target and linked
//! when they do not.

use crate::domain::{Attachment, Relay, SourceMessage};
use crate::ports::MirrorPart;

/// Characters of content per message.
pub const MAX_CONTENT: usize = 2000;
/// Rich embeds per message.
pub const MAX_EMBEDS: usize = 10;
/// Embed characters (titles, descriptions, fields, footers, authors) per message.
pub const MAX_EMBED_CHARS: usize = 6000;
/// Files per message.
pub const MAX_FILES: usize = 10;
/// The per-file upload limit of a server without boosts: what a target is assumed to accept.
pub const DEFAULT_UPLOAD_LIMIT: u64 = 10 * 1024 * 1024;

/// File types never re-uploaded: a paid channel must not become a way to spread programs.
const EXECUTABLE: &[&str] = &[
    "exe", "msi", "bat", "cmd", "com", "scr", "pif", "ps1", "vbs", "js", "jar", "apk", "dll", "sh", "app",
    "dmg", "deb", "rpm", "lnk",
];

/// Whether `name` is a program by its extension.
pub fn is_executable(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(_, ext)| EXECUTABLE.iter().any(|e| ext.eq_ignore_ascii_case(e)))
}

/// The parts of `message` for `relay`, in order; never empty. `upload_limit` is the largest
/// file the target accepts.
pub fn render(message: &SourceMessage, relay: &Relay, upload_limit: u64) -> Vec<MirrorPart> {
    let mut content = plain_mentions(&message.content);
    let (files, linked): (Vec<&Attachment>, Vec<&Attachment>) = message
        .attachments
        .iter()
        .partition(|a| a.stored.is_some() && a.size <= upload_limit && !is_executable(&a.name));
    for a in linked {
        let line = if is_executable(&a.name) {
            format!("📎 {} (a program: not relayed)", a.name)
        } else {
            format!("📎 {}: {}", a.name, a.url)
        };
        content = if content.is_empty() { line } else { format!("{content}\n{line}") };
    }
    if let Some(role) = relay.ping_role {
        content = format!("<@&{role}> {content}");
    }
    let texts = split_text(&content, MAX_CONTENT);
    let embeds = group_embeds(message);
    let files: Vec<Vec<Attachment>> =
        files.chunks(MAX_FILES).map(|c| c.iter().map(|a| (*a).clone()).collect()).collect();
    let count = texts.len().max(embeds.len()).max(files.len()).max(1);
    (0..count)
        .map(|i| MirrorPart {
            content: match texts.get(i) {
                Some(text) => text.clone(),
                None if i == 0 && embeds.is_empty() && files.is_empty() => {
                    "*(a message with nothing Docobo can relay, such as a sticker or a poll)*".to_owned()
                }
                None => String::new(),
            },
            embeds: embeds.get(i).cloned().unwrap_or_default(),
            files: files.get(i).cloned().unwrap_or_default(),
            ping: relay.ping_role.filter(|_| i == 0),
        })
        .collect()
}

/// Source mentions mean nothing in a target guild: users, roles and channels become plain text.
/// `@everyone` and `@here` stay as text; every request's `allowed_mentions` keeps them inert.
pub fn plain_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail.find('>').unwrap_or(0);
        let inner = tail.get(1..end).unwrap_or_default();
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let plain = if let Some(id) = inner.strip_prefix("@&") {
            digits(id).then_some("@role")
        } else if let Some(id) = inner.strip_prefix("@!").or_else(|| inner.strip_prefix('@')) {
            digits(id).then_some("@member")
        } else if let Some(id) = inner.strip_prefix('#') {
            digits(id).then_some("#channel")
        } else {
            None
        };
        match plain {
            Some(plain) => {
                out.push_str(plain);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('<');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `text` in pieces of at most `max` characters, cut at the last line break (else space) of each
/// window when there is one.
pub fn split_text(text: &str, max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let Some((window_end, _)) = rest.char_indices().nth(max) else {
            parts.push(rest.to_owned());
            break;
        };
        let window = &rest[..window_end];
        let cut = window.rfind('\n').or_else(|| window.rfind(' ')).filter(|&i| i > 0).unwrap_or(window_end);
        parts.push(rest[..cut].to_owned());
        rest = rest[cut..].strip_prefix(['\n', ' ']).unwrap_or(&rest[cut..]);
    }
    parts
}

/// The message's embeds in groups that each fit one message.
fn group_embeds(message: &SourceMessage) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut chars = 0;
    for embed in &message.embeds {
        let full =
            groups.last().is_none_or(|g| g.len() == MAX_EMBEDS || chars + embed.chars > MAX_EMBED_CHARS);
        if full {
            groups.push(Vec::new());
            chars = 0;
        }
        chars += embed.chars;
        if let Some(group) = groups.last_mut() {
            group.push(embed.json.clone());
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::{Author, ChannelId, Embed, GuildId, MessageId, RelayId, RoleId, Via};

    fn relay(ping: Option<u64>) -> Relay {
        Relay {
            id: RelayId(1),
            source_guild: GuildId::new(1).expect("id"),
            source_channel: ChannelId::new(2).expect("id"),
            target_guild: GuildId::new(3).expect("id"),
            target_channel: ChannelId::new(4).expect("id"),
            via: Via::Webhook,
            name: None,
            ping_role: ping.map(|r| RoleId::new(r).expect("id")),
            access_role: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn message(content: &str) -> SourceMessage {
        SourceMessage {
            guild: GuildId::new(1).expect("id"),
            channel: ChannelId::new(2).expect("id"),
            id: MessageId::new(5).expect("id"),
            author: Author::default(),
            content: content.into(),
            embeds: Vec::new(),
            attachments: Vec::new(),
            edited_at: None,
        }
    }

    fn file(name: &str, size: u64, stored: bool) -> Attachment {
        Attachment {
            id: name.into(),
            name: name.into(),
            content_type: None,
            size,
            url: format!("https://cdn.discordapp.com/attachments/1/2/{name}"),
            stored: stored.then(|| "ab".repeat(32)),
        }
    }

    #[test]
    fn files_that_fit_are_uploaded_and_the_rest_linked_but_programs_never() {
        let mut m = message("BTC long");
        m.attachments = vec![
            file("chart.png", 1_000, true),
            file("huge.mov", DEFAULT_UPLOAD_LIMIT + 1, true),
            file("lost.png", 10, false),
            file("setup.EXE", 10, true),
        ];
        let parts = render(&m, &relay(None), DEFAULT_UPLOAD_LIMIT);
        assert_eq!(parts.len(), 1);
        let names: Vec<&str> = parts[0].files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["chart.png"]);
        let content = &parts[0].content;
        assert!(
            content.contains("📎 huge.mov: https://cdn.discordapp.com/attachments/1/2/huge.mov"),
            "{content}"
        );
        assert!(content.contains("📎 lost.png: https://"), "{content}");
        assert!(
            content.contains("setup.EXE (a program: not relayed)") && !content.contains("2/setup.EXE"),
            "{content}"
        );
    }

    #[test]
    fn long_content_many_files_and_embeds_split_within_discords_limits() {
        let mut m = message(&format!("{}\n{}", "a".repeat(1500), "b".repeat(1500)));
        m.attachments = (0..12).map(|i| file(&format!("{i}.png"), 10, true)).collect();
        m.embeds = (0..11).map(|i| Embed { json: format!("{{\"title\":\"{i}\"}}"), chars: 100 }).collect();
        let parts = render(&m, &relay(Some(9)), DEFAULT_UPLOAD_LIMIT);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].content, format!("<@&9> {}", "a".repeat(1500)), "cut at the line break");
        assert_eq!(parts[1].content, "b".repeat(1500));
        assert_eq!((parts[0].files.len(), parts[1].files.len()), (10, 2));
        assert_eq!((parts[0].embeds.len(), parts[1].embeds.len()), (10, 1));
        assert_eq!((parts[0].ping, parts[1].ping), (RoleId::new(9).ok(), None), "only the first part pings");
        for part in &parts {
            assert!(part.content.chars().count() <= MAX_CONTENT);
        }
        let heavy: Vec<Embed> = (0..3).map(|_| Embed { json: "{}".into(), chars: 2500 }).collect();
        let mut m = message("x");
        m.embeds = heavy;
        let parts = render(&m, &relay(None), DEFAULT_UPLOAD_LIMIT);
        assert_eq!(
            parts.iter().map(|p| p.embeds.len()).collect::<Vec<_>>(),
            [2, 1],
            "6,000 characters per message"
        );
    }

    #[test]
    fn text_without_spaces_splits_at_the_limit_and_nothing_is_lost() {
        let text = "é".repeat(4100);
        let parts = split_text(&text, MAX_CONTENT);
        assert_eq!(parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(), [2000, 2000, 100]);
        assert_eq!(parts.concat(), text);
        assert!(split_text("", MAX_CONTENT).is_empty());
        assert!(!render(&message(""), &relay(None), 1)[0].content.is_empty(), "never an empty message");
    }

    #[test]
    fn mentions_become_plain_text_and_lookalikes_stay() {
        assert_eq!(
            plain_mentions("<@1> <@!2> <@&3> <#4> <@x> <3 a<b> <"),
            "@member @member @role #channel <@x> <3 a<b> <"
        );
    }
}
