//! Member notices end to end on SQLite and PostgreSQL: a 30-day SePay purchase paid by signed
//! transfers, the server's own notifier sending DMs to the fake Discord, the clock moved by hand.
//! Each step also runs a second sender, as a restarted process or another replica would, which
//! must find nothing left to send.

use std::sync::Arc;

use crate::common::*;
use docobo_adapters::discord::DiscordRoles;
use docobo_core::domain::*;
use docobo_core::ports::{
    CatalogRepo, CheckoutRepo, Clock, JobQueue, NoticeRepo, ProviderCredentials, ProviderRegistry,
};
use docobo_core::service::{Pace, Sender, expire_due, plan_reminders, send_due_notices};
use docobo_core::testing::ManualClock;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime, UtcOffset};

const SEPAY_KEY: &str = "sepay-key-for-tests-0123456789abcdef";
const POLAR_SECRET: &str = "whsec_ovyN6cPrTv56AApvzCaJno08SSmGJmgbWilb33N2JuK";
const VIP_PRODUCT: &str = "d1e2f3a4-0000-4000-8000-000000000002";
/// A second member, whose DMs are closed.
const CLOSED: &str = "222222222222222222";
const DAY: Duration = Duration::DAY;

struct World {
    app: App,
    clock: Arc<ManualClock>,
    start: OffsetDateTime,
    transfers: u64,
}

fn ids(user: &str) -> (GuildId, UserId) {
    (GUILD.parse().expect("id"), user.parse().expect("id"))
}

impl World {
    async fn start(database_url: Option<String>) -> World {
        let start = OffsetDateTime::now_utc().replace_nanosecond(0).expect("whole seconds");
        let clock = Arc::new(ManualClock::new(start));
        let app = spawn_built(
            |c| {
                c.notice_interval = Duration::milliseconds(5);
                if let Some(url) = database_url {
                    c.database_url = url;
                }
            },
            |b| b.clock(clock.clone()),
        )
        .await;
        let (guild, _) = ids(USER);
        app.repo.put_guild(&Guild::new(guild, "Signals")).await.expect("guild");
        let price = Money::parse("250000", Currency::Vnd).expect("price");
        let mut bank =
            PaidRole::new(guild, BANK.parse().expect("id"), "Bank", price, Term::Fixed { days: 30 })
                .expect("role")
                .with_link(ProductLink::to(ProviderName::SEPAY));
        bank.name = "Bank tier".to_owned();
        app.repo.put_paid_role(&bank).await.expect("role");
        let creds = sepay_credentials(SEPAY_KEY);
        app.repo.put_credentials(guild, ProviderName::SEPAY, &creds).await.expect("creds");
        let usd = Money::parse("5.00", Currency::Usd).expect("price");
        let vip = PaidRole::new(guild, VIP.parse().expect("id"), "VIP", usd, Term::Recurring)
            .expect("role")
            .with_link(ProductLink::product(ProviderName::POLAR, VIP_PRODUCT));
        app.repo.put_paid_role(&vip).await.expect("role");
        let mut polar = ProviderCredentials::new(Secret::new(POLAR_SECRET));
        polar.api_token = Some(Secret::new(POLAR_TOKEN));
        app.repo.put_credentials(guild, ProviderName::POLAR, &polar).await.expect("creds");
        app.discord.join(guild.get(), CLOSED.parse().expect("id"));
        app.discord.close_dms(CLOSED.parse().expect("id"));
        World { app, clock, start, transfers: 0 }
    }

    /// `/join`'s checkout for `user`, then their bank transfer with its code, signed as SePay does.
    async fn buy(&mut self, user: &str, code: &str) {
        let (guild, user_id) = ids(user);
        let checkout = Checkout {
            reference: code.parse().expect("ref"),
            guild,
            user: user_id,
            role: BANK.parse().expect("id"),
            provider: ProviderName::SEPAY,
            expected: Money::parse("250000", Currency::Vnd).expect("amount"),
            created_at: self.clock.now(),
            expires_at: self.clock.now() + Duration::HOUR,
        };
        self.app.repo.put_checkout(&checkout).await.expect("checkout");
        self.transfer(code).await;
    }

    /// A transfer of 250,000 VND with `code`, booked at the clock's time (Vietnam's).
    async fn transfer(&mut self, code: &str) {
        self.transfers += 1;
        let booked = self.clock.now().to_offset(UtcOffset::from_hms(7, 0, 0).expect("offset"));
        let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        let body = json!({
            "id": 90_000 + self.transfers, "gateway": "MBBank", "transactionDate": booked.format(&format).expect("date"),
            "accountNumber": "0123499999", "code": code, "content": format!("{code} chuyen tien"),
            "transferType": "in", "transferAmount": 250000, "accumulated": 0, "subAccount": null,
            "referenceCode": format!("FT{}", self.transfers), "description": "",
        });
        let response = self
            .app
            .http
            .post(format!("{}/webhooks/sepay/{GUILD}", self.app.base))
            .header("authorization", format!("Apikey {SEPAY_KEY}"))
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
    }

    /// A Polar subscription webhook for `USER`'s VIP, signed as Polar does, at the clock's time.
    async fn polar(&self, delivery: &str, kind: &str) {
        let meta = json!({ "discord_user_id": USER, "guild_id": GUILD, "paid_role_id": VIP });
        let now = self.clock.now();
        let body = docobo_adapters::simulator::polar::event(kind, &meta, VIP_PRODUCT, now).expect("sample");
        let ts = now.unix_timestamp();
        let response = self
            .app
            .http
            .post(format!("{}/webhooks/polar/{GUILD}", self.app.base))
            .header("webhook-id", delivery)
            .header("webhook-timestamp", ts.to_string())
            .header(
                "webhook-signature",
                docobo_adapters::polar::signature::sign(POLAR_SECRET.as_bytes(), delivery, ts, &body),
            )
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{kind}");
    }

    fn dms(&self) -> Vec<Value> {
        self.app.discord.dms(USER.parse().expect("id"))
    }

    /// Moves the clock to `at` and runs what the workers run there: the reminder pass and the
    /// expirer (as any replica might), then waits for the server's notifier to settle every due
    /// notice, then runs a second sender that must find nothing. Returns the new DMs.
    async fn step(&self, at: OffsetDateTime) -> Vec<Value> {
        let before = self.dms().len();
        self.clock.set(at);
        plan_reminders(&self.app.repo, self.clock.as_ref()).await.expect("plans");
        expire_due(&self.app.repo, self.clock.as_ref(), 100).await.expect("expires");
        let settled = || async {
            let mut all = Vec::new();
            for user in [USER, CLOSED] {
                let (guild, user) = ids(user);
                all.extend(self.app.repo.member_notice_log(guild, user).await.expect("log"));
            }
            all.iter().all(|n| n.state != NoticeState::Pending || n.planned.send_at > at)
        };
        // The notifier paces DMs by this clock: let it tick while we wait.
        let settling = || async {
            self.clock.advance(Duration::milliseconds(5));
            settled().await
        };
        eventually("the server's notifier settles every due notice", settling).await;
        // A restarted process (another replica): fresh DM cache, fresh pace; nothing left.
        let dms = DiscordRoles::new("fake-token", &self.app.discord.base_url);
        let providers = ProviderRegistry::new();
        let sender =
            Sender { dms: &dms, providers: &providers, clock: self.clock.as_ref(), entropy: &|| [7; 6] };
        let again = send_due_notices(&self.app.repo, &sender, &mut Pace::default()).await.expect("sends");
        assert!(again.is_empty(), "a second sender found {again:?} at {at}");
        self.dms()[before..].to_vec()
    }

    /// A signed interaction, at the server's (moved) time.
    async fn interact(&self, body: &Value) -> String {
        let response = self.app.post_at(body, self.clock.now().unix_timestamp(), false).await;
        assert_eq!(response.status(), 200);
        content(&response.json().await.expect("json"))
    }

    async fn log(&self, user: &str) -> Vec<Notice> {
        let (guild, user) = ids(user);
        self.app.repo.member_notice_log(guild, user).await.expect("log")
    }
}

fn text(dm: &Value) -> &str {
    dm["content"].as_str().unwrap_or_default()
}

/// `/notify` with its `state` option, from `USER`.
fn notify(state: &str) -> Value {
    let mut c = command("notify", 0);
    c["data"]["options"] = json!([{ "name": "state", "type": 3, "value": state }]);
    c
}

async fn scenario(database_url: Option<String>) {
    let mut w = World::start(database_url).await;
    w.buy(USER, "DCBE2E001").await;
    w.buy(CLOSED, "DCBE2E002").await;
    let end = w.start + 30 * DAY;

    assert!(w.step(end - 3 * DAY - Duration::SECOND).await.is_empty(), "a reminder before its moment");
    let three = w.step(end - 3 * DAY).await;
    assert_eq!(three.len(), 1, "{three:?}");
    let first = text(&three[0]);
    assert!(first.contains("Your access to **Bank tier** in **Signals** ends in 3 days"), "{first}");
    // SePay pays by transfer: the renewal is the transfer /join would ask for, code and QR.
    assert!(first.contains("DCB") && three[0]["embeds"][0]["image"]["url"].is_string(), "{}", three[0]);
    assert_eq!(three[0]["allowed_mentions"], json!({ "parse": [] }));

    // The member whose DMs are closed was tried once and is marked.
    let (guild, closed) = ids(CLOSED);
    assert!(w.app.repo.member_notices(guild, closed).await.expect("read").unreachable_at.is_some());
    let status = w.interact(&as_member(command("status", 0), CLOSED, &[], 0)).await;
    assert!(status.contains("not reaching you"), "{status}");

    // A renewal two days before the end moves the end by 30 days: the old 1-day reminder is gone.
    w.clock.set(end - 2 * DAY);
    w.transfer("DCBE2E001").await;
    assert!(w.step(end - DAY).await.is_empty(), "a reminder for the old end");
    assert!(w.step(end).await.is_empty(), "ended although renewed");
    let new_end = end + 30 * DAY;
    let three = w.step(new_end - 3 * DAY).await;
    assert_eq!(three.len(), 1);
    assert!(text(&three[0]).contains("ends in 3 days"), "{}", text(&three[0]));

    // `/notify off` stops the next one; `/notify on` lets the ended notice through.
    assert!(w.interact(&notify("off")).await.contains("**off**"));
    assert!(w.step(new_end - DAY).await.is_empty(), "a reminder after /notify off");
    assert!(w.interact(&notify("on")).await.contains("**on**"));
    let ended = w.step(new_end).await;
    assert_eq!(ended.len(), 1);
    assert!(text(&ended[0]).contains("has ended"), "{}", text(&ended[0]));
    assert!(w.step(new_end + DAY).await.is_empty());

    let states = |log: Vec<Notice>| log.iter().map(|n| (n.planned.kind, n.state)).collect::<Vec<_>>();
    assert_eq!(
        states(w.log(USER).await),
        [
            (NoticeKind::EndingSoon, NoticeState::Sent),
            (NoticeKind::EndingSoon, NoticeState::Sent),
            (NoticeKind::EndingSoon, NoticeState::Skipped),
            (NoticeKind::Ended, NoticeState::Sent),
        ]
    );
    // The closed member: one attempt, then nothing tried (their 1-day reminder and ended).
    assert_eq!(
        states(w.log(CLOSED).await),
        [
            (NoticeKind::EndingSoon, NoticeState::Failed),
            (NoticeKind::EndingSoon, NoticeState::Skipped),
            (NoticeKind::Ended, NoticeState::Skipped),
        ]
    );
    assert!(w.app.discord.dms(CLOSED.parse().expect("id")).is_empty());
}

async fn failed_renewal(database_url: Option<String>) {
    let postgres = database_url.is_some();
    let w = World::start(database_url).await;
    w.polar("wh_1", "subscription_active").await;
    let (guild, user) = ids(USER);
    let held = || async {
        w.app.discord.roles(guild.get(), user.get()).is_some_and(|r| r.contains(&VIP.parse().expect("id")))
    };
    eventually("VIP is granted", held).await;
    let end = w.start + 30 * DAY;
    assert!(w.step(end - 4 * DAY).await.is_empty(), "an active subscription is not reminded");
    w.clock.set(end);
    // The failure's notice is due at once, so the server's notifier may send it before `step`
    // looks: count from before the delivery.
    let before = w.dms().len();
    w.polar("wh_2", "subscription_past_due").await;
    // A redelivery of the failure tells nothing new.
    w.polar("wh_2b", "subscription_past_due").await;
    w.step(end).await;
    let failed = w.dms()[before..].to_vec();
    assert_eq!(failed.len(), 1, "{failed:?}");
    let grace_end = end + Guild::DEFAULT_GRACE;
    let said = text(&failed[0]);
    assert!(said.starts_with("Your payment for **VIP** in **Signals** did not go through"), "{said}");
    assert!(said.contains(&format!("until <t:{}:f>", grace_end.unix_timestamp())), "{said}");
    assert!(failed[0]["components"][0]["components"][0]["url"].is_string(), "a button to pay: {}", failed[0]);
    // The 3-day reminder would repeat it; the 1-day one and the ended notice go.
    assert!(w.step(grace_end - 2 * DAY).await.is_empty());
    assert!(text(&w.step(grace_end - DAY).await[0]).contains("ends in 1 day"));
    assert!(text(&w.step(grace_end).await[0]).contains("has ended"));
    // And the role goes with it, though Polar reported the next period's end with the failure:
    // the expirer queued its job.
    let key = RoleJobKey { guild, user, role: VIP.parse().expect("id") };
    let mut jobs = w.app.repo.jobs(JobState::Pending, 100).await.expect("jobs");
    jobs.extend(w.app.repo.jobs(JobState::Done, 100).await.expect("jobs"));
    let job = jobs.iter().find(|j| j.key == key).expect("VIP's job");
    assert!(job.cause.as_deref().is_some_and(|c| c.contains("elapsed")), "{job:?}");
    if !postgres {
        // On PostgreSQL the role worker judges due jobs by the database's clock, which this test
        // cannot move; on SQLite it runs on the moved clock and the role goes.
        let gone = || async {
            w.app.discord.roles(guild.get(), user.get()).is_some_and(|r| !r.contains(&key.role.get()))
        };
        eventually("VIP is removed when the grace period ends", gone).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_polar_renewal_sends_payment_failed_with_the_grace_deadline_on_sqlite() {
    failed_renewal(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_polar_renewal_sends_payment_failed_with_the_grace_deadline_on_postgres() {
    let Some(url) = fresh_postgres().await else { return };
    failed_renewal(Some(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_day_sepay_purchase_is_reminded_renewed_muted_and_ended_on_sqlite() {
    scenario(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_day_sepay_purchase_is_reminded_renewed_muted_and_ended_on_postgres() {
    let Some(url) = fresh_postgres().await else { return };
    scenario(Some(url)).await;
}
