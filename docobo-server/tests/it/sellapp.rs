//! Sell.app end to end, on SQLite and PostgreSQL: the real server, the fake Sell.app API and
//! the fake Discord; deliveries signed as Sell.app signs them (both schemes).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use crate::common::*;
use docobo_adapters::polar::signature as standard;
use docobo_adapters::sellapp::journal::{JournalReport, reconcile_journal};
use docobo_adapters::sellapp::{Sellapp, signature};
use docobo_adapters::simulator::sellapp::FakeSellapp;
use docobo_core::domain::*;
use docobo_core::ports::*;
use docobo_core::testing::ManualClock;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

const SECRET: &str = "sellapp-webhook-signing-secret-0123";
const API_KEY: &str = "sellapp-api-key";
const ADMIN: &str = "admin-token-for-sellapp-tests";

fn order(id: u64, status: &str, product: u64, quantity: u32, buyer: Option<&str>) -> (Value, Value) {
    let answers: Vec<Value> = buyer
        .iter()
        .map(|b| json!({ "key": "discord_user_id", "label": "Discord ID", "value": b }))
        .collect();
    let order = json!({
        "id": id, "status": status,
        "line_items": [{ "id": 1, "product_id": product, "product_variant_id": 301, "quantity": quantity }],
        "totals": { "currency": "USD", "total_cents": 1000 * i64::from(quantity) },
        "timeline": [{ "status": status, "set_at": "2026-11-10T11:59:00Z" }],
    });
    (order, json!([{ "product_variant_id": 301, "quantity": quantity, "additional_information": answers }]))
}

fn hint(id: u64) -> String {
    json!({ "event": "order.completed", "data": { "id": id }, "store": 1 }).to_string()
}

struct World {
    app: App,
    sellapp: FakeSellapp,
    clock: Arc<ManualClock>,
    /// When the manual clock started: now, whole seconds, so interactions signed with the real
    /// time are within Discord's window.
    start: OffsetDateTime,
}

impl World {
    async fn start(database_url: Option<String>) -> World {
        let sellapp = FakeSellapp::start(API_KEY).await.expect("fake sellapp");
        let start = OffsetDateTime::now_utc().replace_nanosecond(0).expect("whole seconds");
        let clock = Arc::new(ManualClock::new(start));
        let api = sellapp.base_url.clone();
        let app = spawn_built(
            |c| {
                c.sellapp_api_url = api;
                c.admin_token = Some(Secret::new(ADMIN));
                if let Some(url) = database_url {
                    c.database_url = url;
                }
            },
            |b| b.clock(clock.clone()),
        )
        .await;
        let g: GuildId = GUILD.parse().expect("id");
        app.repo.put_guild(&Guild::new(g, "Signals")).await.expect("guild");
        let usd = Money::parse("10.00", Currency::Usd).expect("price");
        for (role, product) in [(VIP, "77"), (BANK, "78")] {
            let paid = PaidRole::new(g, role.parse().expect("id"), "Tier", usd, Term::Fixed { days: 30 })
                .expect("role")
                .with_link(ProductLink::product(Sellapp::NAME, product).variant("301"));
            app.repo.put_paid_role(&paid).await.expect("role");
        }
        let mut credentials = ProviderCredentials::new(Secret::new(SECRET));
        credentials.api_token = Some(Secret::new(API_KEY));
        credentials.settings.insert("store".into(), "shop".into());
        app.repo.put_credentials(g, Sellapp::NAME, &credentials).await.expect("credentials");
        World { app, sellapp, clock, start }
    }

    async fn post(&self, body: &str, headers: &[(&str, String)]) -> (u16, Value) {
        let mut request =
            self.app.http.post(format!("{}/webhooks/sellapp/{GUILD}", self.app.base)).body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("request");
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    /// Signed with the documented `Signature` header.
    async fn deliver(&self, body: &str) -> (u16, Value) {
        self.post(body, &[("signature", signature(SECRET, body.as_bytes()))]).await
    }

    fn holds(&self, role: &str) -> bool {
        self.app
            .discord
            .roles(GUILD.parse().expect("id"), USER.parse().expect("id"))
            .is_some_and(|r| r.contains(&role.parse().expect("id")))
    }

    async fn access_until(&self, reference: &str) -> Option<OffsetDateTime> {
        let reference: ExternalRef = reference.parse().expect("ref");
        let found = self
            .app
            .repo
            .entitlement(Sellapp::NAME, GUILD.parse().expect("id"), &reference)
            .await
            .expect("read");
        found.and_then(|e| e.access_until())
    }

    async fn event(&self, external: &str) -> WebhookEvent {
        let id: EventId = external.parse().expect("id");
        self.app
            .repo
            .webhook_event(Sellapp::NAME, GUILD.parse().expect("id"), &id)
            .await
            .expect("read")
            .expect("stored")
    }
}

async fn wait(what: &str, check: impl AsyncFn() -> bool) {
    let waited = docobo_adapters::simulator::eventually(what, StdDuration::from_secs(20), || check()).await;
    if let Err(e) = waited {
        panic!("{e}");
    }
}

async fn scenario(database_url: Option<String>) {
    let w = World::start(database_url).await;

    // Forged and unsigned deliveries: 401 and nothing stored.
    let forged =
        w.post(&hint(236), &[("signature", signature("not-the-secret-000000", hint(236).as_bytes()))]).await;
    assert_eq!(forged.0, 401);
    assert_eq!(w.post(&hint(236), &[]).await.0, 401);
    assert!(w.app.repo.recent_events(None, None, 10).await.expect("events").is_empty(), "nothing stored");

    // The API is down for the hint: it is still acknowledged and stored, then applied once it is back.
    w.sellapp.set_down(true);
    let (c, d) = order(236, "COMPLETED", 77, 2, Some(USER));
    w.sellapp.put_order(236, c, d);
    let (status, body) = w.deliver(&hint(236)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("deferred")), "{body}");
    assert_eq!(w.deliver(&hint(236)).await.1["status"], "duplicate");
    wait("the resolver tries the API", async || !w.sellapp.requests().is_empty()).await;
    assert!(!w.holds(VIP), "nothing granted while Sell.app cannot be read");
    w.sellapp.set_down(false);
    w.clock.advance(Duration::seconds(11));
    wait("the hint is resolved and VIP granted", async || w.holds(VIP)).await;
    let resolved = w.event("order.completed:236:hint").await;
    assert_eq!((resolved.outcome, resolved.attempts), (EventOutcome::Processed, 3), "{resolved:?}");
    assert_eq!(
        w.access_until("236-1").await,
        Some(w.start + Duration::seconds(11) + Duration::days(60)),
        "quantity 2 × 30 days"
    );

    // A full payload, signed the Standard Webhooks way, applies at once without reading the API.
    let reads = w.sellapp.requests().len();
    let (mut full, _) = order(237, "PAID", 78, 1, None);
    full["additional_information"] = json!([{ "label": "Discord User ID", "value": USER }]);
    let body = json!({ "event": "order.paid", "event_id": "evt_237", "data": full }).to_string();
    let ts = w.clock.now().unix_timestamp();
    let headers = standard::headers(SECRET.as_bytes(), "msg_237", ts, body.as_bytes());
    let named = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .map(|n| (n, headers.get(n).expect("header").to_owned()));
    assert_eq!(w.post(&body, &named).await.1["status"], "processed");
    wait("BANK granted from the full payload", async || w.holds(BANK)).await;
    assert_eq!(w.sellapp.requests().len(), reads, "a full payload needs no API read");

    // A dispute ends the disputed purchase's access (and only that one).
    let (mut disputed, _) = order(236, "DISPUTING", 77, 2, Some(USER));
    disputed["additional_information"] = json!([{ "key": "discord_user_id", "value": USER }]);
    let body = json!({ "event": "order.disputed", "data": disputed }).to_string();
    assert_eq!(w.deliver(&body).await.1["status"], "processed");
    wait("VIP removed after the dispute", async || !w.holds(VIP)).await;
    assert!(w.holds(BANK));

    // No Discord id: the failure inbox says how to fix it; after the fix, a replay applies it.
    let (c, d) = order(238, "COMPLETED", 78, 1, None);
    w.sellapp.put_order(238, c.clone(), d);
    w.deliver(&hint(238)).await;
    wait("order 238 lands in the failure inbox", async || {
        w.event("order.completed:238:hint").await.outcome == EventOutcome::Failed
    })
    .await;
    let failed = w.event("order.completed:238:hint").await;
    assert!(failed.last_error.as_deref().is_some_and(|e| e.contains("discord_user_id")), "{failed:?}");
    let (_, fixed) = order(238, "COMPLETED", 78, 1, Some(USER));
    w.sellapp.put_order(238, c, fixed);
    let replay = w
        .app
        .http
        .post(format!("{}/admin/events/{}/replay", w.app.base, failed.id))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("replay");
    let replayed: Value = replay.json().await.expect("json");
    assert_eq!(replayed["outcome"], "deferred", "{replayed}");
    wait("order 238 applied after the replay", async || {
        w.event("order.completed:238:hint").await.outcome == EventOutcome::Processed
    })
    .await;
    assert!(w.access_until("238-1").await.is_some());

    // Sell.app sends no refund webhook: the journal shows the refunds of both BANK purchases
    // (237 and 238), and access ends.
    for id in [237, 238] {
        let (mut refunded, d) = order(id, "REFUNDED", 78, 1, Some(USER));
        refunded["timeline"] = json!([{ "status": "REFUNDED", "set_at": "2026-11-10T12:00:30Z" }]);
        w.sellapp.put_order(id, refunded, d);
    }
    w.sellapp.push_event("evt_1", "order.completed", 236);
    w.sellapp.push_event("evt_2", "order.updated", 237);
    w.sellapp.push_event("evt_3", "order.updated", 238);
    let sellapp = Sellapp::new(w.sellapp.base_url.clone());
    let g: GuildId = GUILD.parse().expect("id");
    let pass = reconcile_journal(&w.app.repo, &sellapp, w.clock.as_ref(), g).await.expect("journal");
    assert_eq!(pass, JournalReport { read: 3, new: 3, restarted: false });
    wait("BANK removed after the refund seen in the journal", async || !w.holds(BANK)).await;
    let again = reconcile_journal(&w.app.repo, &sellapp, w.clock.as_ref(), g).await.expect("journal");
    assert_eq!(again.read, 0, "the cursor keeps the place");
    w.sellapp.expire_cursors();
    w.sellapp.push_event("evt_4", "order.paid", 236);
    let restarted = reconcile_journal(&w.app.repo, &sellapp, w.clock.as_ref(), g).await.expect("journal");
    assert_eq!(
        restarted,
        JournalReport { read: 4, new: 1, restarted: true },
        "what was read before is a duplicate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sellapp_orders_end_to_end_on_sqlite() {
    scenario(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sellapp_orders_end_to_end_on_postgres() {
    let Some(url) = fresh_postgres().await else { return };
    scenario(Some(url)).await;
}

/// `/join` through Sell.app with an API key: the member is asked for an email, and the order is
/// made through Sell.app's API carrying their Discord id, so its webhook names them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_through_sellapp_asks_for_an_email_and_makes_the_order_with_the_discord_id() {
    let w = World::start(None).await;
    let menu = w.app.interact(&command("join", 0)).await;
    let values: Vec<&str> = menu["data"]["components"][0]["components"][0]["options"]
        .as_array()
        .expect("options")
        .iter()
        .filter_map(|o| o["value"].as_str())
        .collect();
    let choice = format!("{VIP}:sellapp");
    assert!(values.contains(&choice.as_str()), "{values:?}");

    let form = w.app.interact(&choose("join:offer", &choice, "j1")).await;
    let custom_id = format!("join:email:{VIP}:sellapp");
    assert_eq!(
        (form["type"].as_u64(), form["data"]["custom_id"].as_str()),
        (Some(9), Some(custom_id.as_str())),
        "{form}"
    );
    let bad = w.app.interact(&submit(&custom_id, &[("email", "not an email")], "j2")).await;
    assert!(content(&bad).contains("does not look like an email"), "{bad}");
    assert!(w.sellapp.requests().is_empty(), "no order for a bad email");

    let answer = w.app.interact(&submit(&custom_id, &[("email", "buyer@example.org")], "j3")).await;
    assert_eq!(answer["type"], 6, "Sell.app is asked after the acknowledgement");
    let edit = w.app.follow_up("j3").await;
    let url = edit["components"][0]["components"][0]["url"].as_str().unwrap_or_default().to_owned();
    assert!(url.starts_with("https://shop.sell.app/checkout/"), "{edit}");

    let requests = w.sellapp.requests();
    let create =
        requests.iter().find(|r| r.method == "POST" && r.path == "/v2/orders").expect("an order was made");
    let body: Value = serde_json::from_slice(&create.body).expect("json");
    assert_eq!(body["customer_email"], "buyer@example.org");
    assert_eq!(body["product_variants"]["301"]["additional_information"]["discord_user_id"], USER);
    let reference =
        body["product_variants"]["301"]["additional_information"]["docobo_checkout"].as_str().expect("ref");
    assert_eq!(create.headers.get("idempotency-key").map(String::as_str), Some(reference));
    assert_eq!(create.headers.get("x-store").map(String::as_str), Some("shop"));
    let stored = w
        .app
        .repo
        .checkout(GUILD.parse().expect("id"), &reference.parse().expect("ref"))
        .await
        .expect("read");
    assert!(
        stored.is_some_and(|c| c.provider == Sellapp::NAME),
        "the checkout is stored before Sell.app is asked"
    );

    // The member pays; Sell.app's webhook names the order, whose answers carry the checkout. The
    // checkout names the member first: a different id typed into the Discord field loses.
    let id = url.rsplit('/').next().and_then(|n| n.parse::<u64>().ok()).expect("order id");
    let (mut paid, _) = order(id, "COMPLETED", 77, 1, None);
    let answers = body["product_variants"]["301"]["additional_information"].clone();
    let deliverables = json!([{ "product_variant_id": 301, "additional_information": [
        { "key": "discord_user_id", "value": "999999999999999999" },
        { "key": "docobo_checkout", "value": answers["docobo_checkout"] } ] }]);
    paid["id"] = json!(id);
    w.sellapp.put_order(id, paid, deliverables);
    assert_eq!(w.deliver(&hint(id)).await.1["status"], "deferred");
    wait("VIP granted for the order /join made", async || w.holds(VIP)).await;
}

/// `/setup`'s price form links a role to one variant of a Sell.app product (`PRODUCT/VARIANT`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_links_a_role_to_a_sellapp_product_variant() {
    let w = World::start(None).await;
    w.app.interact(&command("setup", OWNER)).await;
    w.app.interact(&choose_roles(&[(VIP, "VIP")], "pick")).await;
    w.app.follow_up("pick").await;
    let form = w.app.interact(&button(&format!("setup:price:{VIP}"), "form")).await;
    assert!(form.to_string().contains("product:sellapp"), "the form asks for the Sell.app product: {form}");
    let fields = [
        ("price", "10.00"),
        ("currency", "USD"),
        ("term", "90d"),
        ("product:polar", ""),
        ("product:sellapp", "77/303"),
    ];
    w.app.interact(&submit(&format!("setup:price:{VIP}"), &fields, "save")).await;
    assert!(content(&w.app.follow_up("save").await).contains("Saved **VIP**"));
    let saved = w
        .app
        .repo
        .paid_role(GUILD.parse().expect("id"), VIP.parse().expect("id"))
        .await
        .expect("read")
        .expect("saved");
    assert_eq!(saved.links, vec![ProductLink::product(Sellapp::NAME, "77").variant("303")]);
    assert_eq!(saved.term, Term::Fixed { days: 90 });
}

/// A Sell.app subscription on a recurring role, linked by variant: created grants until the
/// period's end, a renewal read from the API (the webhook names only the id) extends it, and a
/// cancellation keeps access until the period ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sellapp_subscriptions_grant_renew_and_cancel_at_the_period_end_on_sqlite() {
    subscriptions(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sellapp_subscriptions_grant_renew_and_cancel_at_the_period_end_on_postgres() {
    let Some(url) = fresh_postgres().await else { return };
    subscriptions(Some(url)).await;
}

async fn subscriptions(database_url: Option<String>) {
    let w = World::start(database_url).await;
    let g: GuildId = GUILD.parse().expect("id");
    let role: RoleId = ADMINS.parse().expect("id");
    w.app.discord.add_role(g.get(), role.get(), "Monthly", 3);
    let usd = Money::parse("9.00", Currency::Usd).expect("price");
    let monthly = PaidRole::new(g, role, "Monthly", usd, Term::Recurring)
        .expect("role")
        .with_link(ProductLink::product(Sellapp::NAME, "90").variant("401"));
    w.app.repo.put_paid_role(&monthly).await.expect("role");
    let rfc = |t: OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).expect("time");
    let sub = |status: &str, cancel: bool, end: OffsetDateTime| {
        json!({ "id": 55, "status": status, "cancel_at_period_end": cancel, "product_variant_id": 401,
                "current_period_start": rfc(end - Duration::days(30)), "current_period_end": rfc(end),
                "updated_at": rfc(end - Duration::days(30) + Duration::seconds(1)),
                "customer": { "id": 9, "metadata": { "discord_user_id": USER } } })
    };
    let first_end = w.start + Duration::days(30);
    let created =
        json!({ "event": "subscription.created", "data": sub("ACTIVE", false, first_end) }).to_string();
    assert_eq!(w.deliver(&created).await.1["status"], "processed");
    wait("Monthly granted", async || w.holds(ADMINS)).await;
    assert_eq!(w.access_until("sub-55").await, Some(first_end));

    let second_end = first_end + Duration::days(30);
    w.sellapp.put_subscription(55, sub("ACTIVE", false, second_end));
    let renewed = json!({ "event": "subscription.renewed", "data": { "id": 55 } }).to_string();
    assert_eq!(w.deliver(&renewed).await.1["status"], "deferred");
    wait("the renewal is read from the API", async || w.access_until("sub-55").await == Some(second_end))
        .await;

    let cancelled =
        json!({ "event": "subscription.cancelled", "data": sub("ACTIVE", true, second_end) }).to_string();
    assert_eq!(w.deliver(&cancelled).await.1["status"], "processed");
    let reference: ExternalRef = "sub-55".parse().expect("ref");
    let e = w.app.repo.entitlement(Sellapp::NAME, g, &reference).await.expect("read").expect("stored");
    assert_eq!((e.status(), e.access_until()), (docobo_core::machine::Status::Cancelled, Some(second_end)));
    assert!(w.holds(ADMINS), "a cancelled subscription keeps access until the period ends");
}
