//! The member's signal feed over HTTP: `/me/signals` shows the signals of relays the member's
//! purchase opens and nothing to anyone else; the stream sends the list, then each new signal,
//! edit and deletion; attachments are served to entitled members only (images inline,
//! programs never); a stream ends when its session does.

use std::time::Duration;

use docobo_core::domain::{
    Attachment, Author, ChannelId, GuildId, MessageId, NewRelay, RoleId, SourceEdit, SourceEvent,
    SourceMessage, Via,
};
use docobo_core::ports::{RelayRepo, SystemClock};
use docobo_core::service::record_source_event;
use reqwest::header::COOKIE;

use crate::common::{App, GUILD, VIP};
use crate::dashboard::{dashboard, log_in, page, seed_purchase};

const SOURCE_GUILD: u64 = 111_000_000_000_000_001;
const SOURCE: u64 = 111_000_000_000_000_100;
const TARGET: u64 = 222_000_000_000_000_101;
const OTHER: u64 = 300_000_000_000_000_077;
const FEED: &str = "/me/signals/stream";

async fn relayed() -> App {
    let app = dashboard().await;
    seed_purchase(&app).await;
    let relay = NewRelay {
        source_guild: GuildId::new(SOURCE_GUILD).expect("id"),
        source_channel: ChannelId::new(SOURCE).expect("id"),
        target_guild: GUILD.parse().expect("id"),
        target_channel: ChannelId::new(TARGET).expect("id"),
        via: Via::Webhook,
        name: Some("BTC desk".into()),
        ping_role: None,
        access_role: Some(VIP.parse::<RoleId>().expect("id")),
    };
    app.repo.add_relay(&relay, time::OffsetDateTime::now_utc()).await.expect("relay");
    app
}

fn message(n: u64, content: &str) -> SourceMessage {
    SourceMessage {
        guild: GuildId::new(SOURCE_GUILD).expect("id"),
        channel: ChannelId::new(SOURCE).expect("id"),
        id: MessageId::new(1_300_000_000_000_000_000 + n).expect("id"),
        author: Author { name: "analyst".into(), avatar_url: None },
        content: content.into(),
        embeds: Vec::new(),
        attachments: Vec::new(),
        edited_at: None,
    }
}

async fn record(app: &App, event: SourceEvent) {
    assert!(record_source_event(&app.repo, &SystemClock, &event).await.expect("recorded"));
}

fn edit(n: u64, content: &str) -> SourceEvent {
    let m = message(n, "");
    SourceEvent::Edited(SourceEdit {
        guild: m.guild,
        channel: m.channel,
        id: m.id,
        author: None,
        content: Some(content.into()),
        embeds: None,
        attachments: None,
        edited_at: Some(time::OffsetDateTime::now_utc()),
    })
}

/// An open event stream, read as text.
pub(crate) struct Stream(reqwest::Response, String);

impl Stream {
    /// `GET path` with the session cookie: an event stream.
    pub(crate) async fn open(app: &App, cookie: &str, path: &str) -> Stream {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", app.base))
            .header(COOKIE, cookie)
            .send()
            .await
            .expect("stream");
        assert_eq!(response.status(), 200);
        let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Stream(response, String::new())
    }

    /// Reads until the text received so far has `wanted`; everything received.
    pub(crate) async fn until(&mut self, wanted: &str) -> &str {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !self.1.contains(wanted) {
            match tokio::time::timeout_at(deadline, self.0.chunk()).await {
                Ok(Ok(Some(chunk))) => self.1.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Ok(None)) => panic!("the stream ended before {wanted:?}: {}", self.1),
                other => panic!("no {wanted:?} within 10 s ({other:?}): {}", self.1),
            }
        }
        &self.1
    }

    /// Whether the stream ends within `within`.
    async fn ends(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.0.chunk()).await {
                Ok(Ok(Some(_))) => {}
                Ok(_) => return true,
                Err(_) => return false,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entitled_member_reads_signals_live_and_no_one_else_does() {
    let app = relayed().await;
    record(&app, SourceEvent::Posted(message(1, "BTC long 64k <@&999>"))).await;
    let member = log_in(&app).await;
    let (status, html) = page(&app, &member, "/me/signals").await;
    assert_eq!(status, 200);
    assert!(html.contains("BTC desk") && html.contains("BTC long 64k @role"), "{html}");
    assert!(html.contains(r#"role="log""#) && html.contains("data-stream"), "{html}");

    let mut stream = Stream::open(&app, &member, FEED).await;
    assert!(stream.until("event: list").await.contains("BTC long 64k @role"));
    record(&app, SourceEvent::Posted(message(2, "ETH short"))).await;
    stream.until("ETH short").await;
    record(&app, edit(2, "ETH short, stop 4k")).await;
    stream.until("ETH short, stop 4k").await;
    let signal =
        app.repo.signal(message(2, "").channel, message(2, "").id).await.expect("read").expect("stored");
    record(
        &app,
        SourceEvent::Deleted {
            guild: message(2, "").guild,
            channel: message(2, "").channel,
            id: message(2, "").id,
        },
    )
    .await;
    let seen = stream.until(&format!("data: signal-{}", signal.id.0)).await;
    assert!(seen.contains("event: gone"), "{seen}");
    let (_, html) = page(&app, &member, "/me/signals").await;
    assert!(html.contains("BTC long") && !html.contains("ETH short"), "{html}");

    // Someone without the role: no feed on the page, nothing in the stream.
    app.discord.log_in_as(OTHER, "Lurker");
    let lurker = log_in(&app).await;
    let (status, html) = page(&app, &lurker, "/me/signals").await;
    assert_eq!(status, 200);
    assert!(html.contains("None of your purchases") && !html.contains("BTC"), "{html}");
    let mut theirs = Stream::open(&app, &lurker, FEED).await;
    theirs.until("event: list").await;
    record(&app, SourceEvent::Posted(message(3, "SOL long"))).await;
    stream.until("SOL long").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let _ = tokio::time::timeout(Duration::from_millis(300), theirs.0.chunk()).await;
    assert!(!theirs.1.contains("SOL") && !theirs.1.contains("BTC"), "{}", theirs.1);

    // Logging out ends the member's stream at its next check, and no new one opens.
    let (_, me) = page(&app, &member, "/me").await;
    let csrf = me.split(r#"name="csrf" value=""#).nth(1).and_then(|r| r.split('"').next()).expect("token");
    let out = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{}/logout", app.base))
        .header(COOKIE, &member)
        .header("origin", crate::common::PUBLIC_URL)
        .form(&[("csrf", csrf)])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 303);
    let gone = reqwest::Client::new()
        .get(format!("{}/me/signals/stream", app.base))
        .header(COOKIE, &member)
        .send()
        .await
        .expect("stream");
    assert_eq!(gone.status(), 401, "a new stream needs a session");
    let recheck = docobo_server::dashboard::signals::RECHECK;
    assert!(stream.ends(recheck + Duration::from_secs(5)).await, "the open stream ends at its next check");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_served_to_entitled_members_only_images_inline_and_programs_never() {
    let app = relayed().await;
    let store = &app.state.attachments;
    let png = store.put(b"\x89PNG fake chart").await.expect("stored");
    let exe = store.put(b"MZ not really").await.expect("stored");
    let file = |id: &str, name: &str, kind: &str, stored: &str| Attachment {
        id: id.into(),
        name: name.into(),
        content_type: Some(kind.into()),
        size: 15,
        url: format!("https://cdn.discordapp.com/attachments/1/{id}/{name}"),
        stored: Some(stored.into()),
    };
    let mut signal = message(1, "chart attached");
    signal.attachments = vec![
        file("1", "chart.png", "image/png", &png),
        file("2", "setup.exe", "application/octet-stream", &exe),
        file("3", "notes.svg", "image/svg+xml", &png),
    ];
    record(&app, SourceEvent::Posted(signal)).await;
    let id =
        app.repo.signal(message(1, "").channel, message(1, "").id).await.expect("read").expect("stored").id.0;
    let member = log_in(&app).await;
    let (_, html) = page(&app, &member, "/me/signals").await;
    assert!(html.contains(&format!(r#"<img src="/me/signals/{id}/files/0" alt="chart.png""#)), "{html}");
    assert!(html.contains("setup.exe") && html.contains("a program, never offered"), "{html}");
    assert!(!html.contains(&format!("/me/signals/{id}/files/1")), "{html}");

    let get = |cookie: String, n: usize| {
        let url = format!("{}/me/signals/{id}/files/{n}", app.base);
        async move { reqwest::Client::new().get(url).header(COOKIE, cookie).send().await.expect("file") }
    };
    let image = get(member.clone(), 0).await;
    assert_eq!(image.status(), 200);
    let header = |r: &reqwest::Response, h: &str| {
        r.headers().get(h).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    };
    assert_eq!(header(&image, "content-type"), "image/png");
    assert!(header(&image, "content-disposition").starts_with("inline"));
    assert_eq!(header(&image, "x-content-type-options"), "nosniff");
    assert_eq!(image.bytes().await.expect("bytes").as_ref(), b"\x89PNG fake chart");
    assert_eq!(get(member.clone(), 1).await.status(), 403, "a program is never served");
    let svg = get(member.clone(), 2).await;
    assert_eq!(svg.status(), 200);
    assert_eq!(header(&svg, "content-type"), "application/octet-stream", "SVG is a download, not a page");
    assert!(header(&svg, "content-disposition").starts_with("attachment"));
    assert_eq!(get(member.clone(), 9).await.status(), 404);

    app.discord.log_in_as(OTHER, "Lurker");
    let lurker = log_in(&app).await;
    assert_eq!(get(lurker, 0).await.status(), 404, "not entitled: as if there were no file");
    let anonymous = reqwest::get(format!("{}/me/signals/{id}/files/0", app.base)).await.expect("file");
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_newest_stream_ends_their_oldest_past_four() {
    let app = relayed().await;
    let member = log_in(&app).await;
    let mut open = Vec::new();
    for _ in 0..5 {
        let mut stream = Stream::open(&app, &member, FEED).await;
        stream.until("event: list").await;
        open.push(stream);
    }
    assert!(open[0].ends(Duration::from_secs(5)).await, "the oldest stream ended");
    record(&app, SourceEvent::Posted(message(1, "still live"))).await;
    for stream in &mut open[1..] {
        stream.until("still live").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_end_as_shutdown_begins_instead_of_holding_it_for_its_timeout() {
    let mut app = relayed().await;
    let member = log_in(&app).await;
    let mut stream = Stream::open(&app, &member, FEED).await;
    stream.until("event: list").await;
    app.shut_down();
    // The graceful shutdown would wait 10 s for a stream that never ends by itself.
    assert!(stream.ends(Duration::from_secs(5)).await, "the stream ended with the shutdown");
}
