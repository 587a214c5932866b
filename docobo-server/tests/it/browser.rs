//! The dashboard in a real browser: Debian's Chromium, headless, driven over WebDriver
//! (`chromedriver`) against the real server and the fake Discord. A member logs in through the
//! fake Discord's OAuth2, sees their purchase with a countdown that moves, replays a failed
//! delivery from their server's inbox and sees the role reach Discord, cannot log out with a
//! forged request, watches a signal posted at the fake gateway appear on `/me/signals`, then its
//! edit, then its deletion, without a reload, and logs out; someone without the paid role sees
//! no signal. Each page is checked with axe-core (vendored) for serious or
//! critical WCAG violations, and a screenshot of it is saved under
//! `target/dashboard-screenshots/` (compare structure, not pixels).
//!
//! Runs when `DOCOBO_TEST_CHROMEDRIVER` names the driver (`.ci/run` installs `chromium` and
//! `chromium-driver` and sets it); without it the test says so and passes, like the PostgreSQL
//! suite; with it set and the driver missing, it fails.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use docobo_adapters::simulator::gateway::FakeGateway;
use docobo_core::domain::{ChannelId, GuildId, NewRelay, Secret, Via};
use docobo_core::ports::RelayRepo;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::common::{BOT, USER, eventually, spawn_with_gateway_configured};

const SOURCE_GUILD: u64 = 111_000_000_000_000_001;
const SOURCE: u64 = 111_000_000_000_000_100;
const TARGET: u64 = 222_000_000_000_000_101;
const ANALYST: u64 = 444_000_000_000_000_001;
const LURKER: u64 = 300_000_000_000_000_077;

/// Whether the newest signal of the source channel says `content`.
async fn recorded(app: &crate::common::App, content: &str) -> bool {
    let channel = ChannelId::new(SOURCE).expect("id");
    app.repo.recent_signals(&[channel], 1).await.is_ok_and(|s| s.iter().any(|s| s.message.content == content))
}

/// Dispatches `event` at the gateway until the open page shows `shown` (the server reads the
/// relays' source channels every few seconds, so a first dispatch may come before it knows this
/// one; a repeated event changes nothing).
async fn shows_live(
    client: &Client,
    gateway: &FakeGateway,
    (kind, payload): (&str, &serde_json::Value),
    what: &str,
    shown: impl Fn(&str) -> bool,
) {
    for _ in 0..20 {
        gateway.dispatch(kind, payload.clone());
        for _ in 0..10 {
            if client.source().await.is_ok_and(|html| shown(&html)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!("{what} never appeared on the open page: {}", client.source().await.unwrap_or_default());
}

const CLIENT_ID: &str = "900000000000000001";
const CLIENT_SECRET: &str = "oauth-client-secret-0123456789";

/// `chromedriver` on a free port, killed on drop.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The driver and a headless Chromium session, or `None` when the suite is not asked to run.
async fn browser() -> Option<(Driver, Client)> {
    let Some(path) = std::env::var("DOCOBO_TEST_CHROMEDRIVER").ok().filter(|p| !p.is_empty()) else {
        eprintln!("DOCOBO_TEST_CHROMEDRIVER is not set: browser tests not run (.ci/run always sets it)");
        return None;
    };
    let port = free_port();
    let child = Command::new(&path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("DOCOBO_TEST_CHROMEDRIVER={path} cannot start: {e} (apt install chromium chromium-driver)")
        });
    let driver = Driver(child, port);
    let chrome = std::env::var("DOCOBO_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chrome,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"],
        }
    });
    let capabilities = capabilities.as_object().cloned().unwrap_or_default();
    let mut client = None;
    for _ in 0..100 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let attempt = ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.1))
            .await;
        match attempt {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Some((driver, client.expect("chromedriver answers within 10 s")))
}

/// axe-core 4.14.1, vendored (`tests/assets/fetch-axe.sh` refreshes it and checks its sha256).
const AXE: &str = include_str!("../assets/axe.min.js");

/// The serious and critical accessibility violations axe-core finds on the current page
/// (WCAG 2.0–2.2 A and AA rules).
async fn violations(client: &Client) -> Vec<String> {
    client.execute(&format!("{AXE}\nreturn true;"), vec![]).await.expect("axe loads");
    let found = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] })
               .then(r => done(r.violations
                 .filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ': ' + v.help + ' (' + v.nodes.length + ')')))
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .expect("axe runs");
    serde_json::from_value(found).unwrap_or_else(|e| vec![format!("unreadable axe result: {e}")])
}

/// Saves a screenshot and checks the page with axe-core.
async fn check_page(client: &Client, name: &str) {
    screenshot(client, name).await;
    let found = violations(client).await;
    assert!(found.is_empty(), "{name}: serious or critical accessibility violations: {found:?}");
}

async fn screenshot(client: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/dashboard-screenshots");
    let png = client.screenshot().await.expect("screenshot");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_logs_in_with_discord_in_a_real_browser_and_sees_the_countdown_move() {
    let Some((_driver, client)) = browser().await else { return };
    // The browser follows Discord's redirect to the public URL, so it must be this server's.
    let port = free_port();
    let public = format!("http://localhost:{port}");
    let gateway = FakeGateway::start(BOT, 1).await.expect("fake gateway");
    let app = spawn_with_gateway_configured(&gateway, |c| {
        c.listen = format!("127.0.0.1:{port}").parse().expect("address");
        c.public_url = public.clone();
        c.discord_client_id = Some(CLIENT_ID.to_owned());
        c.discord_client_secret = Some(Secret::new(CLIENT_SECRET));
    })
    .await;
    let relay = NewRelay {
        source_guild: GuildId::new(SOURCE_GUILD).expect("id"),
        source_channel: ChannelId::new(SOURCE).expect("id"),
        target_guild: crate::common::GUILD.parse().expect("id"),
        target_channel: ChannelId::new(TARGET).expect("id"),
        via: Via::Webhook,
        name: Some("BTC desk".into()),
        ping_role: None,
        access_role: Some(crate::common::VIP.parse().expect("id")),
    };
    app.repo.add_relay(&relay, time::OffsetDateTime::now_utc()).await.expect("relay");
    app.discord.set_oauth_app(CLIENT_ID, CLIENT_SECRET);
    app.discord.log_in_as(USER.parse().expect("id"), "Buyer");
    crate::dashboard::seed_purchase(&app).await;
    crate::dashboard::seed_failed_transfer(&app).await;

    client.goto(&format!("{public}/")).await.expect("landing");
    check_page(&client, "landing").await;
    client
        .find(Locator::LinkText("Log in with Discord"))
        .await
        .expect("the login link")
        .click()
        .await
        .expect("click");
    eventually("back on /me after Discord", || async {
        client.current_url().await.is_ok_and(|u| u.path() == "/me")
    })
    .await;
    let page = client.source().await.expect("html");
    assert!(page.contains("Signals Club") && page.contains("VIP") && page.contains("Active"), "{page}");
    let countdown = client.find(Locator::Css("[data-until]")).await.expect("a countdown");
    let first = countdown.text().await.expect("text");
    assert!(first.contains(':'), "the script turned it into a live countdown: {first:?}");
    eventually("the countdown moves", || async { countdown.text().await.is_ok_and(|now| now != first) })
        .await;
    let time = client.find(Locator::Css("time[datetime]")).await.expect("a time");
    let shown = time.text().await.expect("text");
    assert!(!shown.ends_with('Z') && !shown.contains("+00:00"), "shown in the reader's zone: {shown}");
    check_page(&client, "me").await;
    // The check can fail: an image without a text alternative is a critical violation.
    client
        .execute(
            "document.body.insertAdjacentHTML('beforeend', '<img id=\"probe\" src=\"/assets/app.css\">');",
            vec![],
        )
        .await
        .expect("probe");
    assert!(violations(&client).await.iter().any(|v| v.starts_with("image-alt")), "axe sees a missing alt");
    client.execute("document.getElementById('probe').remove();", vec![]).await.expect("probe removed");

    // The member owns the server: the operator pages, and a replay from the failure inbox.
    client.goto(&format!("{public}/ops")).await.expect("ops");
    check_page(&client, "ops").await;
    client.find(Locator::LinkText("Signals Club")).await.expect("the guild").click().await.expect("click");
    client.wait().for_element(Locator::Css("form[action$='/replay'] button")).await.expect("the inbox");
    assert!(client.source().await.expect("html").contains("Revenue by month"));
    check_page(&client, "ops_guild").await;
    for sub in ["events", "jobs", "relays", "replay-all"] {
        client.goto(&format!("{public}/ops/{}/{sub}", crate::common::GUILD)).await.expect("sub-page");
        check_page(&client, &format!("ops_{sub}")).await;
    }
    client.goto(&format!("{public}/ops/{}", crate::common::GUILD)).await.expect("overview");
    crate::dashboard::fix_checkout(&app).await;
    client
        .find(Locator::Css("form[action$='/replay'] button"))
        .await
        .expect("replay")
        .click()
        .await
        .expect("click");
    let (guild, user, bank): (u64, u64, u64) = (
        crate::common::GUILD.parse().expect("id"),
        USER.parse().expect("id"),
        crate::common::BANK.parse().expect("id"),
    );
    eventually("the replayed purchase's role at Discord", || async {
        app.discord.roles(guild, user).is_some_and(|r| r.contains(&bank))
    })
    .await;
    eventually("the inbox empty", || async {
        client.source().await.is_ok_and(|html| html.contains("No failed delivery"))
    })
    .await;
    client.goto(&format!("{public}/ops/{}/members/{USER}", crate::common::GUILD)).await.expect("member");
    assert!(client.source().await.expect("html").contains("The whole chain"));
    check_page(&client, "member").await;

    // The member's signals, live: a post, its edit and its deletion at the gateway reach the
    // open page without a reload (the marker set on the page would not survive one).
    client.goto(&format!("{public}/me/signals")).await.expect("signals");
    client.execute("window.docoboMarker = 1;", vec![]).await.expect("marker");
    let posted = app.discord.source_message(SOURCE_GUILD, SOURCE, ANALYST, "BTC long 64k", &[]);
    shows_live(&client, &gateway, ("MESSAGE_CREATE", &posted), "a new signal", |html| {
        html.contains("BTC long 64k")
    })
    .await;
    check_page(&client, "signals").await;
    let mut edit = posted.clone();
    edit["content"] = json!("BTC long 64k, stop 60k");
    edit["edited_timestamp"] = json!(time::OffsetDateTime::now_utc().format(&Rfc3339).expect("time"));
    shows_live(&client, &gateway, ("MESSAGE_UPDATE", &edit), "the edit", |html| html.contains("stop 60k"))
        .await;
    let delete =
        json!({ "id": posted["id"], "channel_id": SOURCE.to_string(), "guild_id": SOURCE_GUILD.to_string() });
    shows_live(&client, &gateway, ("MESSAGE_DELETE", &delete), "the deletion", |html| {
        !html.contains("BTC long")
    })
    .await;
    let kept = client.execute("return window.docoboMarker === 1;", vec![]).await.expect("marker");
    assert_eq!(kept, json!(true), "the page was never reloaded");
    // Pause holds what arrives; Resume shows it.
    let pause = client.find(Locator::Css("button[data-pause='signals']")).await.expect("the Pause control");
    pause.click().await.expect("pause");
    assert_eq!(pause.attr("aria-pressed").await.expect("attr").as_deref(), Some("true"));
    gateway.dispatch(
        "MESSAGE_CREATE",
        app.discord.source_message(SOURCE_GUILD, SOURCE, ANALYST, "ETH short", &[]),
    );
    eventually("the signal recorded", || async { recorded(&app, "ETH short").await }).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!client.source().await.expect("html").contains("ETH short"), "held while paused");
    pause.click().await.expect("resume");
    eventually("shown on resume", || async {
        client.source().await.is_ok_and(|html| html.contains("ETH short"))
    })
    .await;
    client.goto(&format!("{public}/me")).await.expect("me");

    // A request forged by a script without the form's token is refused, and changes nothing.
    let status = client
        .execute("return fetch('/logout', { method: 'POST' }).then(r => r.status);", vec![])
        .await
        .expect("fetch");
    assert_eq!(status, json!(403));
    client.refresh().await.expect("reload");
    assert!(client.source().await.expect("html").contains("Log out"), "still logged in");

    client
        .find(Locator::Css("form[action='/logout'] button"))
        .await
        .expect("logout")
        .click()
        .await
        .expect("click");
    eventually("back on the start page", || async {
        client.current_url().await.is_ok_and(|u| u.path() == "/")
    })
    .await;
    let page = client.source().await.expect("html");
    assert!(page.contains("Log in with Discord") && !page.contains("Log out"), "logged out: {page}");

    // Someone without the paid role sees no signal, now or live.
    app.discord.log_in_as(LURKER, "Lurker");
    client.goto(&format!("{public}/login")).await.expect("login");
    eventually("on /me as the lurker", || async {
        client.current_url().await.is_ok_and(|u| u.path() == "/me")
    })
    .await;
    client.goto(&format!("{public}/me/signals")).await.expect("signals");
    let posted = app.discord.source_message(SOURCE_GUILD, SOURCE, ANALYST, "SOL long", &[]);
    gateway.dispatch("MESSAGE_CREATE", posted);
    eventually("the signal recorded", || async { recorded(&app, "SOL long").await }).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let page = client.source().await.expect("html");
    assert!(page.contains("None of your purchases") && !page.contains("SOL long"), "{page}");
    client.close().await.expect("closes");
}
