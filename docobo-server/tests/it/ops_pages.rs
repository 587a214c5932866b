//! The operator's sub-pages of a guild over HTTP: the job queue with a parked job retried, relay
//! health, the CSV exports, and the live feed of deliveries and role changes (its stream sends
//! the list again when a replay changes it). Someone who does not run the guild gets none of it.

use docobo_core::domain::{ChannelId, GuildId, JobState, NewRelay, Via};
use docobo_core::ports::{JobQueue, RelayRepo};
use reqwest::header::COOKIE;

use crate::common::{App, GUILD, PUBLIC_URL, USER, eventually};
use crate::dashboard::{
    csrf_of, dashboard, fix_checkout, location, log_in, no_redirects, page, seed_failed_transfer,
    seed_parked_job, seed_purchase,
};
use crate::signals::Stream;

const STRANGER: u64 = 222_222_222_222_222_222;

/// The stranger's session: a member of the guild who neither owns it nor holds Manage Server.
async fn stranger(app: &App) -> String {
    app.discord.join(GUILD.parse().expect("id"), STRANGER);
    app.discord.log_in_as(STRANGER, "Stranger");
    let session = log_in(app).await;
    app.discord.log_in_as(USER.parse().expect("id"), "Buyer");
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_operators_see_the_sub_pages_exports_and_streams() {
    let app = dashboard().await;
    seed_purchase(&app).await;
    let theirs = stranger(&app).await;
    for path in ["jobs", "relays", "events", "events/stream", "export.csv", "export.csv?data=payments"] {
        let (status, body) = page(&app, &theirs, &format!("/ops/{GUILD}/{path}")).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(!body.contains("sub_1"), "{path}: nothing of the guild leaks: {body}");
    }
    let (status, _) = page(&app, "", &format!("/ops/{GUILD}/jobs")).await;
    assert_eq!(status, 303, "no session: to the login");
    let refused = no_redirects()
        .get(format!("{}/ops/{GUILD}/jobs", app.base))
        .header(COOKIE, &theirs)
        .send()
        .await
        .expect("request");
    let policies: Vec<&str> =
        refused.headers().get_all("content-security-policy").iter().filter_map(|v| v.to_str().ok()).collect();
    assert!(
        policies.iter().any(|p| p.contains("style-src 'self'")),
        "the refusal is a dashboard page: {policies:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sees_the_queue_and_retries_a_parked_job() {
    let app = dashboard().await;
    seed_purchase(&app).await;
    let key = seed_parked_job(&app).await;
    let owner = log_in(&app).await;
    let (_, overview) = page(&app, &owner, &format!("/ops/{GUILD}")).await;
    assert!(
        overview.contains(&format!(r#"<a href="/ops/{GUILD}/jobs">1 parked job waits for you</a>"#)),
        "{overview}"
    );
    assert!(overview.contains("0 changes on their way to Discord"), "the queue's depth: {overview}");

    let (status, html) = page(&app, &owner, &format!("/ops/{GUILD}/jobs")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("role {} for member {}", key.role, key.user)), "{html}");
    assert!(html.contains("drag it above the paid role"), "the owner-actionable reason: {html}");
    assert!(html.contains("<td>Role changes on Discord</td><td>0</td><td>1</td>"), "queue depth: {html}");
    let job = app.repo.job_for(key).await.expect("read").expect("job");
    let retry = no_redirects()
        .post(format!("{}/ops/{GUILD}/jobs/{}/retry", app.base, job.id.0))
        .header(COOKIE, &owner)
        .header("origin", PUBLIC_URL)
        .form(&[("csrf", csrf_of(&html))])
        .send()
        .await
        .expect("retry");
    assert_eq!((retry.status().as_u16(), location(&retry)), (303, format!("/ops/{GUILD}/jobs")));
    let retried = app.repo.job_for(key).await.expect("read").expect("job");
    assert!(retried.cause.as_deref().is_some_and(|c| c.contains(&format!("{USER} retried"))), "{retried:?}");
    assert!(retried.state == JobState::Pending || retried.attempts > job.attempts, "{retried:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_health_and_csv_exports_for_the_owner() {
    let app = dashboard().await;
    seed_purchase(&app).await;
    let relay = NewRelay {
        source_guild: GuildId::new(111_000_000_000_000_001).expect("id"),
        source_channel: ChannelId::new(111_000_000_000_000_100).expect("id"),
        target_guild: GUILD.parse().expect("id"),
        target_channel: ChannelId::new(222_000_000_000_000_101).expect("id"),
        via: Via::Bot,
        name: Some("BTC desk".into()),
        ping_role: None,
        access_role: None,
    };
    app.repo.add_relay(&relay, time::OffsetDateTime::now_utc()).await.expect("relay");
    let owner = log_in(&app).await;
    let (status, html) = page(&app, &owner, &format!("/ops/{GUILD}/relays")).await;
    assert_eq!(status, 200);
    assert!(html.contains("BTC desk (via bot)") && html.contains("<td>ok</td>"), "{html}");
    assert!(html.contains("no traffic"), "{html}");

    let csv = |query: &'static str| {
        let url = format!("{}/ops/{GUILD}/export.csv{query}", app.base);
        let cookie = owner.clone();
        async move { reqwest::Client::new().get(url).header(COOKIE, cookie).send().await.expect("export") }
    };
    let entitlements = csv("").await;
    assert_eq!(entitlements.status(), 200);
    let disposition = entitlements.headers().get("content-disposition").and_then(|v| v.to_str().ok());
    assert_eq!(disposition, Some(format!("attachment; filename=\"{GUILD}-entitlements.csv\"").as_str()));
    let body = entitlements.text().await.expect("csv");
    let mut lines = body.lines();
    assert_eq!(
        lines.next(),
        Some("id,guild_id,user_id,role_id,provider,external_ref,status,access_until,created_at,updated_at")
    );
    let row = lines.next().expect("the purchase");
    assert!(row.contains(&format!(",{GUILD},{USER},")) && row.contains(",sub_1,active,"), "{row}");
    let payments = csv("?data=payments").await.text().await.expect("csv");
    assert!(
        payments.starts_with("provider,reference,user_id,role_id,amount,refunded,currency,paid_at"),
        "{payments}"
    );
    assert_eq!(csv("?data=secrets").await.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_shows_deliveries_and_role_changes_and_updates_itself() {
    let app = dashboard().await;
    let id = seed_failed_transfer(&app).await;
    let owner = log_in(&app).await;
    let (status, html) = page(&app, &owner, &format!("/ops/{GUILD}/events")).await;
    assert_eq!(status, 200);
    assert!(html.contains("SePay delivery 92704: failed") && html.contains(r#"role="log""#), "{html}");

    let mut stream = Stream::open(&app, &owner, &format!("/ops/{GUILD}/events/stream")).await;
    assert!(stream.until("event: list").await.contains("SePay delivery 92704: failed"));

    fix_checkout(&app).await;
    let (_, overview) = page(&app, &owner, &format!("/ops/{GUILD}")).await;
    let replayed = no_redirects()
        .post(format!("{}/ops/{GUILD}/events/{id}/replay", app.base))
        .header(COOKIE, &owner)
        .header("origin", PUBLIC_URL)
        .form(&[("csrf", csrf_of(&overview))])
        .send()
        .await
        .expect("replay");
    assert_eq!(replayed.status(), 303);
    let after = stream.until("SePay delivery 92704: processed").await.to_owned();
    eventually("the role given, in the feed", || async {
        page(&app, &owner, &format!("/ops/{GUILD}/events")).await.1.contains("Role given")
    })
    .await;
    assert!(after.matches("event: list").count() >= 2, "the list was sent again: {after}");
}
