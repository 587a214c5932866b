//! Webhooks end to end: the real server on 127.0.0.1:0, a fresh SQLite file or PostgreSQL schema,
//! deliveries signed exactly as Polar and SePay sign them, fixtures built from Polar's schemas.

use docobo_adapters::polar::signature;
use docobo_core::domain::*;
use docobo_core::machine::Status;
use docobo_core::ports::*;
use docobo_core::service::expire_due;
use docobo_core::testing::ManualClock;
use docobo_server::{Application, Config};

use crate::common::eventually;
use time::{Duration, OffsetDateTime, macros::datetime};
use tokio::sync::oneshot;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const POLAR_SECRET: &str = "whsec_ovyN6cPrTv56AApvzCaJno08SSmGJmgbWilb33N2JuK";
const SEPAY_KEY: &str = "sepay-api-key-0123456789abcdef01234";
const PRODUCT: &str = "d1e2f3a4-0000-4000-8000-000000000002";
const PERIOD_END: OffsetDateTime = datetime!(2026-11-01 11:59:50 UTC);

fn guild() -> GuildId {
    "987654321098765432".parse().expect("id")
}
fn user() -> UserId {
    "123456789012345678".parse().expect("id")
}
fn vip() -> RoleId {
    "700000000000000007".parse().expect("id")
}
fn bank_role() -> RoleId {
    "700000000000000008".parse().expect("id")
}

struct App {
    base: String,
    discord: Option<docobo_adapters::simulator::discord::FakeDiscord>,
    repo: docobo_adapters::seaorm::SeaOrmRepo,
    http: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

fn temp_sqlite() -> String {
    let n = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let dir = std::env::temp_dir().join(format!("docobo-webhooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    format!("sqlite://{}?mode=rwc", dir.join(format!("{n}.db")).display())
}

/// Starts the server on a free port against `database_url`, with one guild selling a Polar
/// subscription role and a SePay 30-day role.
async fn spawn_app(database_url: String) -> App {
    spawn(database_url, false).await
}

async fn spawn_with_discord(database_url: String) -> App {
    spawn(database_url, true).await
}

/// Without Discord, role jobs wait in the queue; with it, a fake Discord on loopback gets them.
async fn spawn(database_url: String, with_discord: bool) -> App {
    use docobo_adapters::simulator::discord::FakeDiscord;
    let mut config = Config {
        database_url,
        secret_key: Some(Secret::new(KEY)),
        listen: "127.0.0.1:0".parse().expect("address"),
        ..Config::default()
    };
    let discord = if with_discord {
        let fake = FakeDiscord::start(555_000_000_000_000_001).await.expect("fake discord");
        fake.add_guild(guild().get());
        fake.add_role(guild().get(), vip().get(), "VIP", 5);
        fake.add_role(guild().get(), bank_role().get(), "VIP 30 days", 4);
        fake.join(guild().get(), user().get());
        config.discord_bot_token = Some(Secret::new("fake-token"));
        config.discord_api_url = fake.base_url.clone();
        Some(fake)
    } else {
        None
    };
    let app = Application::build(config).await.expect("builds");
    let base = app.base_url();
    let (stop, stopped) = oneshot::channel::<()>();
    let repo = app.state().repo.clone();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    repo.put_guild(&Guild::new(guild(), "E2E")).await.expect("guild");
    let mut polar_role = PaidRole::new(
        guild(),
        vip(),
        "VIP",
        Money::parse("5.00", Currency::Usd).expect("price"),
        Term::Recurring,
    )
    .expect("role");
    polar_role.link(ProductLink::product(ProviderName::POLAR, PRODUCT));
    repo.put_paid_role(&polar_role).await.expect("role");
    let mut bank = PaidRole::new(
        guild(),
        bank_role(),
        "VIP 30 days",
        Money::parse("250000", Currency::Vnd).expect("price"),
        Term::Fixed { days: 30 },
    )
    .expect("role");
    bank.link(ProductLink::to(ProviderName::SEPAY));
    repo.put_paid_role(&bank).await.expect("role");
    repo.put_credentials(guild(), ProviderName::POLAR, &ProviderCredentials::new(Secret::new(POLAR_SECRET)))
        .await
        .expect("creds");
    let mut sepay = ProviderCredentials::new(Secret::new(SEPAY_KEY));
    sepay.settings.insert("bank".into(), "MBBank".into());
    sepay.settings.insert("account".into(), "0123499999".into());
    repo.put_credentials(guild(), ProviderName::SEPAY, &sepay).await.expect("creds");
    App { base, discord, repo, http: reqwest::Client::new(), _stop: stop }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../docobo-adapters/tests/fixtures/polar/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

impl App {
    /// Posts `body` signed as Polar signs it, with delivery id `id`.
    async fn polar(&self, id: &str, body: &[u8]) -> reqwest::Response {
        self.polar_signed_with(POLAR_SECRET, id, body).await
    }

    /// Posts `body` signed as Polar signs it with `secret`, with delivery id `id`.
    async fn polar_signed_with(&self, secret: &str, id: &str, body: &[u8]) -> reqwest::Response {
        let ts = OffsetDateTime::now_utc().unix_timestamp();
        let sig = signature::sign(secret.as_bytes(), id, ts, body);
        self.http
            .post(format!("{}/webhooks/polar/{}", self.base, guild()))
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("request")
    }

    async fn sepay(&self, auth: &str, body: String) -> reqwest::Response {
        self.http
            .post(format!("{}/webhooks/sepay/{}", self.base, guild()))
            .header("authorization", auth)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    async fn entitlement(&self, provider: ProviderName, reference: &str) -> Entitlement {
        self.repo
            .entitlement(provider, guild(), &reference.parse().expect("ref"))
            .await
            .expect("read")
            .expect("exists")
    }

    async fn job_generation(&self, role: RoleId) -> Option<u64> {
        let jobs = self.repo.jobs(JobState::Pending, 100).await.expect("jobs");
        jobs.iter().find(|j| j.key.role == role && j.key.user == user()).map(|j| j.generation)
    }

    async fn counts(&self) -> (usize, usize, usize) {
        let events = self.repo.failed_events(1000).await.expect("read").len();
        let entitlements = self.repo.guild_entitlements(guild()).await.expect("read").len();
        let jobs = self.repo.jobs(JobState::Pending, 1000).await.expect("read").len();
        (events, entitlements, jobs)
    }
}

const SUB: &str = "7f3c9e1a-2b4d-4c8e-9f10-0a1b2c3d4e5f";

async fn a_signed_subscription_queues_one_role_job_and_a_redelivery_none(app: App) {
    let response = app.polar("wh_active", &fixture("subscription_active")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.expect("json")["status"], "processed");
    assert_eq!(app.entitlement(ProviderName::POLAR, SUB).await.status(), Status::Active);
    assert_eq!(app.job_generation(vip()).await, Some(1));
    let again = app.polar("wh_active", &fixture("subscription_active")).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<serde_json::Value>().await.expect("json")["status"], "duplicate");
    assert_eq!(app.job_generation(vip()).await, Some(1), "a redelivery must not ask for another job");
}

async fn a_cancellation_keeps_access_until_the_period_ends_then_the_expirer_removes_it(app: App) {
    app.polar("wh_active", &fixture("subscription_active")).await;
    assert_eq!(app.polar("wh_cancel", &fixture("subscription_canceled_at_period_end")).await.status(), 200);
    let e = app.entitlement(ProviderName::POLAR, SUB).await;
    assert_eq!((e.status(), e.access_until()), (Status::Cancelled, Some(PERIOD_END)));
    assert!(e.entitled(PERIOD_END - Duration::seconds(1), Guild::DEFAULT_GRACE));
    let generation = app.job_generation(vip()).await;
    let report = expire_due(&app.repo, &ManualClock::new(PERIOD_END), 100).await.expect("expires");
    assert_eq!((report.due, report.jobs), (1, 1));
    assert!(app.job_generation(vip()).await > generation, "a removal job was asked for");
    assert_eq!(app.entitlement(ProviderName::POLAR, SUB).await.status(), Status::Expired);
}

async fn a_full_refund_removes_access_and_a_partial_refund_does_not(app: App) {
    let order = "0a0a0a0a-0000-4000-8000-00000000000a";
    // A one-time order pays for a role sold for life, never for a recurring one (finding M3).
    let mut lifetime = app.repo.paid_role(guild(), vip()).await.expect("read").expect("vip");
    lifetime.term = Term::Lifetime;
    app.repo.put_paid_role(&lifetime).await.expect("role");
    app.polar("wh_paid", &fixture("order_paid_one_time")).await;
    assert_eq!(app.entitlement(ProviderName::POLAR, order).await.status(), Status::Active);
    let before = app.job_generation(vip()).await;
    assert_eq!(app.polar("wh_partial", &fixture("order_refunded_partial")).await.status(), 200);
    assert_eq!(app.entitlement(ProviderName::POLAR, order).await.status(), Status::Active);
    assert_eq!(app.job_generation(vip()).await, before, "a partial refund changes nothing");
    assert_eq!(app.polar("wh_full", &fixture("order_refunded_full")).await.status(), 200);
    assert_eq!(app.entitlement(ProviderName::POLAR, order).await.status(), Status::Refunded);
    assert!(app.job_generation(vip()).await > before, "a full refund asks for the role to go");
}

fn transfer(id: u64, code: &str, amount: i64) -> String {
    serde_json::json!({
        "id": id, "gateway": "MBBank", "transactionDate": "2026-11-20 09:15:00", "accountNumber": "0123499999",
        "code": null, "content": format!("{code} chuyen tien"), "transferType": "in", "transferAmount": amount,
        "accumulated": 0, "subAccount": null, "referenceCode": "FT123", "description": ""
    })
    .to_string()
}

async fn open_checkout(app: &App, code: &str) {
    let now = OffsetDateTime::now_utc();
    let checkout = Checkout {
        reference: code.parse().expect("code"),
        guild: guild(),
        user: user(),
        role: bank_role(),
        provider: ProviderName::SEPAY,
        expected: Money::parse("250000", Currency::Vnd).expect("amount"),
        created_at: now,
        expires_at: now + Duration::hours(1),
    };
    app.repo.put_checkout(&checkout).await.expect("checkout");
}

async fn a_sepay_transfer_with_the_checkout_code_grants_and_an_underpayment_does_not(app: App) {
    open_checkout(&app, "DCB7K2Q").await;
    open_checkout(&app, "DCB9ZZZ").await;
    let ok = app.sepay(&format!("Apikey {SEPAY_KEY}"), transfer(92704, "DCB7K2Q", 250_000)).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.expect("body"), r#"{"success":true}"#);
    assert_eq!(app.entitlement(ProviderName::SEPAY, "DCB7K2Q").await.status(), Status::Active);
    assert_eq!(app.job_generation(bank_role()).await, Some(1));
    let short = app.sepay(&format!("Apikey {SEPAY_KEY}"), transfer(92705, "DCB9ZZZ", 200_000)).await;
    assert_eq!(short.status(), 200, "SePay always gets 200 for an authenticated request");
    let inbox = app.repo.failed_events(10).await.expect("inbox");
    let reason = inbox.iter().find(|e| e.external_id.as_str() == "92705").and_then(|e| e.last_error.clone());
    assert!(
        reason.as_deref().is_some_and(|r| r.contains("underpaid") && r.contains("200000 VND")),
        "{reason:?}"
    );
    assert!(
        app.repo
            .entitlement(ProviderName::SEPAY, guild(), &"DCB9ZZZ".parse().expect("ref"))
            .await
            .expect("read")
            .is_none()
    );
}

async fn payments_are_recorded_once_per_order_with_refunds_and_renewals(app: App) {
    open_checkout(&app, "DCB7K2Q").await;
    open_checkout(&app, "DCB9ZZZ").await;
    app.sepay(&format!("Apikey {SEPAY_KEY}"), transfer(92704, "DCB7K2Q", 250_000)).await;
    app.sepay(&format!("Apikey {SEPAY_KEY}"), transfer(92705, "DCB9ZZZ", 200_000)).await;
    app.polar("wh_order", &fixture("order_paid_one_time")).await;
    app.polar("wh_refund", &fixture("order_refunded_partial")).await;
    // The paid order again under another delivery id: still one payment, its refund kept.
    app.polar("wh_order_again", &fixture("order_paid_one_time")).await;
    let renewal = String::from_utf8(fixture("order_paid_subscription_cycle")).expect("utf-8");
    let renewal =
        renewal.replace("0a0a0a0a-0000-4000-8000-00000000000a", "0b0b0b0b-0000-4000-8000-00000000000b");
    let response = app.polar("wh_renewal", renewal.as_bytes()).await;
    assert_eq!(response.json::<serde_json::Value>().await.expect("json")["status"], "ignored");

    let payments = app.repo.payments(guild()).await.expect("read");
    let found: Vec<(&str, i64, i64, Currency, Option<RoleId>)> = payments
        .iter()
        .map(|p| (p.reference.as_str(), p.amount.minor, p.refunded.minor, p.amount.currency, p.role))
        .collect();
    assert_eq!(
        found,
        [
            ("0a0a0a0a-0000-4000-8000-00000000000a", 500, 200, Currency::Usd, Some(vip())),
            ("0b0b0b0b-0000-4000-8000-00000000000b", 500, 0, Currency::Usd, Some(vip())),
            ("92704", 250_000, 0, Currency::Vnd, Some(bank_role())),
        ],
        "the underpaid transfer is not revenue"
    );
    assert!(payments.iter().all(|p| p.user == Some(user())), "{payments:?}");
}

async fn unauthenticated_requests_get_401_and_leave_no_rows(app: App) {
    let body = fixture("subscription_active");
    let forged = app
        .http
        .post(format!("{}/webhooks/polar/{}", app.base, guild()))
        .header("webhook-id", "wh_forged")
        .header("webhook-timestamp", OffsetDateTime::now_utc().unix_timestamp().to_string())
        .header(
            "webhook-signature",
            signature::sign(
                b"whsec_not_the_secret",
                "wh_forged",
                OffsetDateTime::now_utc().unix_timestamp(),
                &body,
            ),
        )
        .body(body.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(forged.status(), 401);
    let unsigned = app
        .http
        .post(format!("{}/webhooks/polar/{}", app.base, guild()))
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(unsigned.status(), 401);
    assert_eq!(app.sepay("Bearer sepay-api-key", transfer(1, "DCB1", 1)).await.status(), 401);
    assert_eq!(app.sepay("Apikey wrong", transfer(1, "DCB1", 1)).await.status(), 401);
    assert_eq!(app.counts().await, (0, 0, 0));
    assert!(
        app.repo
            .webhook_event(ProviderName::POLAR, guild(), &"wh_forged".parse().expect("id"))
            .await
            .expect("read")
            .is_none()
    );
}

/// The server plans each delivery on the catalog it kept from the last one, without reading it
/// first, and a catalog write does not touch what it kept (the write may come from another
/// replica or the CLI): a replaced secret must still be refused at once, and the new one
/// accepted.
async fn a_secret_replaced_elsewhere_is_refused_at_once_and_the_new_one_accepted(app: App) {
    assert_eq!(app.polar("wh_active", &fixture("subscription_active")).await.status(), 200);
    let new_secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let replaced = ProviderCredentials::new(Secret::new(new_secret));
    app.repo.put_credentials(guild(), ProviderName::POLAR, &replaced).await.expect("replaced");
    let cancel = fixture("subscription_canceled_at_period_end");

    assert_eq!(app.polar("wh_cancel", &cancel).await.status(), 401, "signed with the replaced secret");
    let cancel_id = "wh_cancel".parse().expect("id");
    let recorded = app.repo.webhook_event(ProviderName::POLAR, guild(), &cancel_id).await.expect("read");
    assert!(recorded.is_none(), "nothing of it is stored");
    assert_eq!(app.entitlement(ProviderName::POLAR, SUB).await.status(), Status::Active);

    let accepted = app.polar_signed_with(new_secret, "wh_cancel", &cancel).await;
    assert_eq!(accepted.status(), 200, "signed with the new secret");
    assert_eq!(app.entitlement(ProviderName::POLAR, SUB).await.status(), Status::Cancelled);
}

async fn unknown_guilds_oversized_bodies_and_unconfigured_providers_are_refused(app: App) {
    let other =
        app.http.post(format!("{}/webhooks/polar/1234", app.base)).body("{}").send().await.expect("request");
    assert_eq!(other.status(), 404);
    let junk = app
        .http
        .post(format!("{}/webhooks/polar/not-a-guild", app.base))
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(junk.status(), 404);
    // Providers are found by name in the registry: an unknown name is 404, like an unknown guild.
    let unknown = app
        .http
        .post(format!("{}/webhooks/stripe/{}", app.base, guild()))
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(unknown.status(), 404);
    let big = vec![b' '; docobo_server::webhooks::MAX_BODY + 1];
    let too_big = app
        .http
        .post(format!("{}/webhooks/polar/{}", app.base, guild()))
        .body(big)
        .send()
        .await
        .expect("request");
    assert_eq!(too_big.status(), 413);
    let lonely: GuildId = "555555555555555555".parse().expect("id");
    app.repo.put_guild(&Guild::new(lonely, "No providers")).await.expect("guild");
    let unconfigured = app
        .http
        .post(format!("{}/webhooks/sepay/{lonely}", app.base))
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(unconfigured.status(), 404);
}

impl App {
    /// Waits (up to 20 s) until the fake Discord shows `has` for the VIP role.
    async fn until_role(&self, has: bool) {
        let discord = self.discord.as_ref().expect("started with Discord");
        let held = || discord.roles(guild().get(), user().get()).is_some_and(|r| r.contains(&vip().get()));
        eventually(&format!("the role becomes {has}"), || async { held() == has }).await;
    }
}

async fn a_paid_subscription_reaches_discord_once_and_a_revocation_removes_it(app: App) {
    app.polar("wh_active", &fixture("subscription_active")).await;
    app.until_role(true).await;
    let discord = app.discord.as_ref().expect("discord");
    let put = format!("/guilds/{}/members/{}/roles/{}", guild(), user(), vip());
    // The duplicate delivery must not cause a second request.
    assert_eq!(app.polar("wh_active", &fixture("subscription_active")).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(discord.count("PUT", &put), 1);
    app.polar("wh_revoked", &fixture("subscription_revoked")).await;
    app.until_role(false).await;
    assert_eq!(discord.count("DELETE", &put), 1);
    // The worker records the audit entry when it settles the job, just after Discord answered.
    let actions = || async {
        let trail = app.repo.audit_trail(guild(), user()).await.expect("audit");
        trail.iter().map(|a| a.action).collect::<Vec<AuditAction>>()
    };
    eventually("both changes are audited", || async { actions().await.len() >= 2 }).await;
    assert_eq!(actions().await, [AuditAction::RoleAdded, AuditAction::RoleRemoved]);
}

/// Instantiates each scenario on SQLite and on PostgreSQL, started with `$spawn`.
macro_rules! both_databases {
    ($sqlite:ident, $postgres:ident, $spawn:ident: $($name:ident),* $(,)?) => {
        mod $sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::$spawn(super::temp_sqlite()).await).await;
                }
            )*
        }
        mod $postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(url) = crate::common::fresh_postgres().await else { return };
                    super::$name(super::$spawn(url).await).await;
                }
            )*
        }
    };
}

async fn a_role_above_the_bot_parks_the_job_with_what_to_fix(app: App) {
    let discord = app.discord.as_ref().expect("discord");
    discord.add_role(guild().get(), vip().get(), "VIP", 20);
    app.polar("wh_active", &fixture("subscription_active")).await;
    eventually("the job is parked", || async {
        !app.repo.jobs(JobState::Parked, 10).await.expect("read").is_empty()
    })
    .await;
    let parked = app.repo.jobs(JobState::Parked, 10).await.expect("read").remove(0);
    let reason = parked.last_error.unwrap_or_default();
    assert!(reason.contains("50013") && reason.contains("above"), "{reason}");
    assert_eq!(discord.roles(guild().get(), user().get()), Some([].into()));
}

async fn a_member_who_left_gets_the_role_when_they_rejoin(app: App) {
    let discord = app.discord.as_ref().expect("discord");
    discord.leave(guild().get(), user().get());
    app.polar("wh_active", &fixture("subscription_active")).await;
    eventually("the job is done", || async {
        !app.repo.jobs(JobState::Done, 10).await.expect("read").is_empty()
    })
    .await;
    assert_eq!(discord.count("PUT", "/roles/"), 0, "nobody to give the role to");
    discord.join(guild().get(), user().get());
    // What the gateway's member-join handler calls.
    docobo_core::service::on_member_join(&app.repo, &docobo_core::ports::SystemClock, guild(), user())
        .await
        .expect("enqueues");
    app.until_role(true).await;
}

async fn a_revocation_after_the_member_left_is_done_without_retries(app: App) {
    let discord = app.discord.as_ref().expect("discord");
    app.polar("wh_active", &fixture("subscription_active")).await;
    app.until_role(true).await;
    // Let the grant job finish its verifying read and settle before counting.
    eventually("the grant job is done", || async {
        !app.repo.jobs(JobState::Done, 10).await.expect("read").is_empty()
    })
    .await;
    discord.leave(guild().get(), user().get());
    let reads_before = discord.count("GET", "/members/");
    app.polar("wh_revoked", &fixture("subscription_revoked")).await;
    eventually("the revocation job is done", || async {
        let done = app.repo.jobs(JobState::Done, 10).await.expect("read");
        done.iter().any(|j| j.generation >= 2)
            && app.repo.jobs(JobState::Pending, 10).await.expect("read").is_empty()
    })
    .await;
    assert_eq!(discord.count("DELETE", "/roles/"), 0);
    assert_eq!(discord.count("GET", "/members/") - reads_before, 1, "one read, no retries");
}

async fn reconciliation_restores_a_role_removed_by_hand(app: App) {
    let discord = app.discord.as_ref().expect("discord");
    app.polar("wh_active", &fixture("subscription_active")).await;
    app.until_role(true).await;
    discord.set_roles(guild().get(), user().get(), []);
    let gateway = docobo_adapters::discord::DiscordRoles::new("fake-token", &discord.base_url);
    let report =
        docobo_core::service::reconcile_guild(&app.repo, &gateway, &docobo_core::ports::SystemClock, guild())
            .await
            .expect("reconciles");
    assert_eq!((report.members_checked, report.drift.len()), (1, 1));
    app.until_role(true).await;
    assert_eq!(discord.count("PUT", "/roles/"), 2);
}

/// The value of the sample of `metric` whose labels include every one of `labels`, from `text`.
fn sample(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn metrics_count_webhooks_by_outcome_jobs_discord_errors_and_time_the_role(app: App) {
    app.polar("wh_active", &fixture("subscription_active")).await;
    app.polar("wh_active", &fixture("subscription_active")).await;
    let forged = app
        .http
        .post(format!("{}/webhooks/polar/{}", app.base, guild()))
        .header("webhook-id", "wh_forged")
        .header("webhook-timestamp", OffsetDateTime::now_utc().unix_timestamp().to_string())
        .header("webhook-signature", "v1,AAAA")
        .body(fixture("subscription_active"))
        .send()
        .await
        .expect("request");
    assert_eq!(forged.status(), 401);
    let metrics = || async {
        let response = app.http.get(format!("{}/metrics", app.base)).send().await.expect("request");
        assert_eq!(response.status(), 200);
        response.text().await.expect("text")
    };
    // Settled means granted and verified; the member must still be there for the verifying read.
    eventually("the grant job settles", || async {
        sample(&metrics().await, "docobo_role_jobs_total", &["outcome=\"changed\""]) == Some(1.0)
    })
    .await;
    // The member leaves; the revocation then finds them gone on Discord.
    let discord = app.discord.as_ref().expect("discord");
    discord.leave(guild().get(), user().get());
    app.polar("wh_revoked", &fixture("subscription_revoked")).await;
    eventually("the revocation job settles", || async {
        sample(&metrics().await, "docobo_role_jobs", &["state=\"done\""]) == Some(1.0)
    })
    .await;
    let text = metrics().await;
    let polar = "provider=\"polar\"";
    for (outcome, n) in [("processed", 2.0), ("duplicate", 1.0), ("unauthorized", 1.0)] {
        let label = format!("outcome=\"{outcome}\"");
        assert_eq!(sample(&text, "docobo_webhooks_total", &[polar, &label]), Some(n), "{outcome}:\n{text}");
    }
    assert_eq!(sample(&text, "docobo_webhook_ack_seconds_count", &[polar]), Some(4.0), "{text}");
    assert_eq!(sample(&text, "docobo_role_jobs_total", &["outcome=\"changed\""]), Some(1.0), "{text}");
    assert_eq!(sample(&text, "docobo_webhook_to_role_seconds_count", &[]), Some(1.0), "{text}");
    assert!(sample(&text, "docobo_discord_errors_total", &["class=\"member_gone\""]) >= Some(1.0), "{text}");
    assert_eq!(sample(&text, "docobo_role_jobs", &["state=\"pending\""]), Some(0.0), "{text}");
    // Three deliveries went to the ledger (one a duplicate) and two role jobs were settled (the
    // grant and the revocation): five writes, in one to five transactions.
    assert_eq!(sample(&text, "docobo_ledger_commits", &[]), Some(5.0), "{text}");
    let transactions = sample(&text, "docobo_ledger_transactions", &[]).unwrap_or_default();
    assert!((1.0..=5.0).contains(&transactions), "{text}");
}

both_databases!(discord_sqlite, discord_postgres, spawn_with_discord:
    metrics_count_webhooks_by_outcome_jobs_discord_errors_and_time_the_role,
    a_paid_subscription_reaches_discord_once_and_a_revocation_removes_it,
    a_role_above_the_bot_parks_the_job_with_what_to_fix,
    a_member_who_left_gets_the_role_when_they_rejoin,
    a_revocation_after_the_member_left_is_done_without_retries,
    reconciliation_restores_a_role_removed_by_hand,
);

both_databases!(sqlite, postgres, spawn_app:
    payments_are_recorded_once_per_order_with_refunds_and_renewals,
    a_signed_subscription_queues_one_role_job_and_a_redelivery_none,
    a_cancellation_keeps_access_until_the_period_ends_then_the_expirer_removes_it,
    a_full_refund_removes_access_and_a_partial_refund_does_not,
    a_sepay_transfer_with_the_checkout_code_grants_and_an_underpayment_does_not,
    unauthenticated_requests_get_401_and_leave_no_rows,
    a_secret_replaced_elsewhere_is_refused_at_once_and_the_new_one_accepted,
    unknown_guilds_oversized_bodies_and_unconfigured_providers_are_refused,
);
