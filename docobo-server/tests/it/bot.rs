//! `/setup` and `/join` end to end through `POST /interactions`, and a complete purchase:
//! `/join` → Polar checkout at the fake Polar → signed webhook → role at the fake Discord →
//! cancellation → period end → role removed.

use crate::common::*;
use docobo_adapters::polar::signature;
use docobo_adapters::simulator::gateway::{FakeGateway, guild_create};
use docobo_core::domain::*;
use docobo_core::ports::*;
use docobo_core::service::expire_due;
use docobo_core::testing::ManualClock;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

const PRODUCT: &str = "d1e2f3a4-0000-4000-8000-000000000002";
const POLAR_SECRET: &str = "whsec_ovyN6cPrTv56AApvzCaJno08SSmGJmgbWilb33N2JuK";

fn guild() -> GuildId {
    GUILD.parse().expect("id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_walks_an_owner_through_roles_prices_and_providers() {
    let app = spawn(true).await;
    let vip: RoleId = VIP.parse().expect("id");

    let refused = app.interact(&command("setup", 0)).await;
    assert!(content(&refused).contains("Only server managers"), "{refused}");
    assert!(app.repo.guild(guild()).await.expect("read").is_none(), "nothing registered for a non-manager");

    let first = app.interact(&command("setup", MANAGE_GUILD)).await;
    assert_eq!((first["type"].as_u64(), first["data"]["flags"].as_u64()), (Some(4), Some(64)));
    assert!(content(&first).contains("Setup 1/3"), "{first}");
    assert_eq!(
        first["data"]["allowed_mentions"]["parse"],
        serde_json::json!([]),
        "replies mention nobody: {first}"
    );
    assert_eq!(first["data"]["components"][0]["components"][0]["custom_id"], "setup:roles");
    assert!(app.repo.guild(guild()).await.expect("read").is_some(), "the guild is registered");

    // A role above the bot is refused with what, why, how to fix and where to get help.
    let deferred = app.interact(&choose_roles(&[(VIP, "VIP"), (ADMINS, "Admins")], "above")).await;
    assert_eq!(deferred["type"], 6, "checking with Discord is deferred");
    let refusal = content(&app.follow_up("above").await);
    for part in
        ["cannot sell **Admins**", "**Why:**", "**Fix:**", "drag the bot's role above Admins", "**Help:**"]
    {
        assert!(refusal.contains(part), "{part:?} missing from {refusal}");
    }
    assert!(refusal.contains("Setup 1/3") && !refusal.contains("cannot sell **VIP**"), "{refusal}");
    assert!(app.repo.setup(guild()).await.expect("read").is_none(), "a refused choice saves nothing");

    app.interact(&choose_roles(&[(VIP, "VIP")], "vip")).await;
    let second = content(&app.follow_up("vip").await);
    assert!(second.contains("Setup 2/3") && second.contains("VIP** — no price yet"), "{second}");

    let form = app.interact(&button(&format!("setup:price:{VIP}"), "price")).await;
    assert_eq!(
        (form["type"].as_u64(), form["data"]["custom_id"].as_str()),
        (Some(9), Some(&*format!("setup:price:{VIP}")))
    );
    let price_form = |price: &str, currency: &str, term: &str| {
        submit(
            &format!("setup:price:{VIP}"),
            &[("price", price), ("currency", currency), ("term", term), ("product:polar", PRODUCT)],
            "form",
        )
    };
    let bad = app.interact(&price_form("5.00", "XYZ", "forever")).await;
    let text = content(&bad);
    assert!(text.contains("not saved") && text.contains("currency") && text.contains("term"), "{text}");
    assert!(app.repo.paid_role(guild(), vip).await.expect("read").is_none());
    let good = app.interact(&price_form("5.00", "usd", "recurring")).await;
    assert_eq!(good["type"], 6, "who may sell the role is checked with Discord, so deferred");
    let saved_notice = content(&app.follow_up("form").await);
    assert!(saved_notice.contains("Saved **VIP**: 5.00 USD"), "{saved_notice}");
    let saved = app.repo.paid_role(guild(), vip).await.expect("read").expect("for sale");
    assert_eq!(
        (saved.price.to_string(), saved.product_at(ProviderName::POLAR)),
        ("5.00 USD".to_owned(), Some(PRODUCT))
    );

    let third = content(&app.interact(&button("setup:step3", "next")).await);
    assert!(third.contains("Setup 3/3"), "{third}");
    assert!(third.contains(&format!("{PUBLIC_URL}/webhooks/polar/{GUILD}")), "{third}");
    let resumed = content(&app.interact(&command("setup", MANAGE_GUILD)).await);
    assert!(resumed.contains("Resuming") && resumed.contains("Setup 3/3"), "{resumed}");

    let polar = |token: &str, id: &str| {
        submit("setup:provider:polar", &[("webhook_secret", POLAR_SECRET), ("access_token", token)], id)
    };
    app.interact(&polar("polar_oat_wrong", "wrong-token")).await;
    let refused = content(&app.follow_up("wrong-token").await);
    assert!(refused.contains("Polar was not saved") && refused.contains("**Fix:**"), "{refused}");
    assert!(app.repo.credentials(guild(), ProviderName::POLAR).await.expect("read").is_none());
    app.interact(&polar(POLAR_TOKEN, "right-token")).await;
    let accepted = content(&app.follow_up("right-token").await);
    assert!(accepted.contains("Polar saved"), "{accepted}");
    let stored = app.repo.credentials(guild(), ProviderName::POLAR).await.expect("read").expect("stored");
    assert_eq!(stored.api_token.as_ref().map(Secret::expose), Some(POLAR_TOKEN));

    let sepay = submit(
        "setup:provider:sepay",
        &[("api_key", "k"), ("bank", "MBBank"), ("account", ""), ("code_prefix", "")],
        "s",
    );
    let text = content(&app.interact(&sepay).await);
    assert!(text.contains("SePay was not saved") && text.contains("account number"), "{text}");

    let done = app.interact(&button("setup:done", "done")).await;
    let embed = &done["data"]["embeds"][0];
    assert!(embed["title"].as_str().is_some_and(|t| t.contains("1 role")), "{done}");
    assert_eq!(embed["fields"][0]["name"], "VIP");
    assert!(app.repo.setup(guild()).await.expect("read").is_none(), "finished: progress forgotten");
}

/// VIP through Polar (recurring) and Bank through SePay (30 days for 250,000 VND).
async fn shop(app: &App) {
    let g = guild();
    app.repo.put_guild(&Guild::new(g, "Shop")).await.expect("guild");
    let usd = Money::parse("5.00", Currency::Usd).expect("price");
    let mut vip = PaidRole::new(g, VIP.parse().expect("id"), "VIP", usd, Term::Recurring).expect("role");
    vip.link(ProductLink::product(ProviderName::POLAR, PRODUCT));
    app.repo.put_paid_role(&vip).await.expect("vip");
    let vnd = Money::parse("250000", Currency::Vnd).expect("price");
    let mut bank = PaidRole::new(g, BANK.parse().expect("id"), "Bank", vnd, Term::fixed(30).expect("term"))
        .expect("role");
    bank.link(ProductLink::to(ProviderName::SEPAY));
    app.repo.put_paid_role(&bank).await.expect("bank");
    let mut polar = ProviderCredentials::new(Secret::new(POLAR_SECRET));
    polar.api_token = Some(Secret::new(POLAR_TOKEN));
    app.repo.put_credentials(g, ProviderName::POLAR, &polar).await.expect("polar");
    let mut sepay = ProviderCredentials::new(Secret::new("sepay-key"));
    sepay.settings.insert("bank".into(), "MBBank".into());
    sepay.settings.insert("account".into(), "0123499999".into());
    app.repo.put_credentials(g, ProviderName::SEPAY, &sepay).await.expect("sepay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_offers_each_role_and_provider_and_a_sepay_choice_shows_the_qr_and_code() {
    let app = spawn(true).await;
    let nothing = app.interact(&command("join", 0)).await;
    assert!(content(&nothing).contains("Nothing is for sale"), "{nothing}");
    shop(&app).await;

    let menu = app.interact(&command("join", 0)).await;
    let options = &menu["data"]["components"][0]["components"][0]["options"];
    let values: Vec<&str> =
        options.as_array().expect("options").iter().filter_map(|o| o["value"].as_str()).collect();
    assert_eq!(values, [format!("{VIP}:polar"), format!("{BANK}:sepay")]);

    let answer = app.interact(&choose("join:offer", &format!("{BANK}:sepay"), "bank")).await;
    assert_eq!(answer["type"], 7, "SePay answers at once");
    let qr = answer["data"]["embeds"][0]["image"]["url"].as_str().expect("a QR image");
    assert!(
        qr.starts_with("https://qr.sepay.vn/img?acc=0123499999&bank=MBBank&amount=250000&des=DCB"),
        "{qr}"
    );
    let code = qr.rsplit("des=").next().expect("code");
    assert!(content(&answer).contains(code), "the code is spelled out: {answer}");
    let checkout =
        app.repo.checkout(guild(), &code.parse().expect("ref")).await.expect("read").expect("stored");
    assert_eq!(
        (checkout.user.to_string(), checkout.expected.to_string()),
        (USER.to_owned(), "250000 VND".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_from_join_to_role_and_back_out_after_cancellation() {
    let app = spawn(true).await;
    shop(&app).await;
    let (g, u, vip): (u64, u64, u64) =
        (GUILD.parse().expect("id"), USER.parse().expect("id"), VIP.parse().expect("id"));

    // /join → Polar: deferred, then a link to the fake Polar's checkout page.
    let answer = app.interact(&choose("join:offer", &format!("{VIP}:polar"), "buy")).await;
    assert_eq!(answer["type"], 6, "Polar is asked after the acknowledgement");
    let edit = app.follow_up("buy").await;
    let link = edit["components"][0]["components"][0]["url"].as_str().expect("a link button");
    assert!(link.starts_with("https://sandbox.polar.sh/checkout/"), "{edit}");
    let requests = app.polar.requests();
    let sent: Value =
        serde_json::from_slice(&requests.last().expect("a checkout request").body).expect("json");
    let metadata = sent["metadata"].clone();
    assert_eq!(
        (metadata["discord_user_id"].as_str(), metadata["paid_role_id"].as_str()),
        (Some(USER), Some(VIP))
    );
    let reference = metadata["checkout_ref"].as_str().expect("reference");
    assert!(app.repo.checkout(guild(), &reference.parse().expect("ref")).await.expect("read").is_some());

    // Polar's webhooks carry the checkout metadata back.
    let deliver = |id: &'static str, fixture: &str| {
        let mut body: Value = serde_json::from_slice(&read_fixture(fixture)).expect("fixture");
        body["data"]["metadata"] = metadata.clone();
        let body = body.to_string();
        let ts = OffsetDateTime::now_utc().unix_timestamp();
        let sig = signature::sign(POLAR_SECRET.as_bytes(), id, ts, body.as_bytes());
        app.http
            .post(format!("{}/webhooks/polar/{GUILD}", app.base))
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body)
            .send()
    };
    assert_eq!(deliver("wh_1", "subscription_active").await.expect("sent").status(), 200);
    eventually("the role is granted", || async { app.discord.roles(g, u).is_some_and(|r| r.contains(&vip)) })
        .await;
    assert_eq!(app.discord.count("PUT", &format!("/roles/{VIP}")), 1);

    assert_eq!(deliver("wh_2", "subscription_canceled_at_period_end").await.expect("sent").status(), 200);
    assert!(app.discord.roles(g, u).is_some_and(|r| r.contains(&vip)), "kept until the period ends");
    let period_end = datetime!(2026-11-01 11:59:50 UTC);
    let expired = expire_due(&app.repo, &ManualClock::new(period_end), 10).await.expect("expires");
    assert_eq!(expired.jobs, 1);
    eventually("the role is removed", || async {
        app.discord.roles(g, u).is_some_and(|r| !r.contains(&vip))
    })
    .await;
    assert_eq!(app.discord.count("DELETE", &format!("/roles/{VIP}")), 1);
    let status = content(&app.interact(&command("status", 0)).await);
    assert!(status.contains("VIP") && status.contains("no access"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_gateway_on_the_server_registers_guilds_the_bot_joins() {
    let gateway = FakeGateway::start(BOT, 2).await.expect("fake gateway");
    let app = spawn_with_gateway(&gateway).await;
    gateway.wait_for_identify().await.expect("the server connects to the gateway");
    gateway.dispatch("GUILD_CREATE", guild_create(GUILD.parse().expect("id"), "Paid Club", 1));
    let registered =
        || async { app.repo.guild(guild()).await.expect("read").is_some_and(|g| g.name == "Paid Club") };
    eventually("the guild is registered", registered).await;
    assert_eq!(app.repo.guild(guild()).await.expect("read").expect("guild").notices.locale, Locale::En);
    // A Vietnamese server gets its member notices in Vietnamese.
    let mut vietnamese = guild_create(777_000_000_000_000_001, "Tín hiệu", 1);
    vietnamese["preferred_locale"] = json!("vi");
    gateway.dispatch("GUILD_CREATE", vietnamese);
    let id = GuildId::new(777_000_000_000_000_001).expect("id");
    let vi =
        || async { app.repo.guild(id).await.expect("read").is_some_and(|g| g.notices.locale == Locale::Vi) };
    eventually("the Vietnamese guild is registered in Vietnamese", vi).await;
}

fn read_fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../docobo-adapters/tests/fixtures/polar/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Another member of the guild, who is not its owner.
const MODERATOR: &str = "222222222222222222";
/// A moderators' role with Manage Roles at position 3, below VIP (5).
const MODS_LOW: &str = "700000000000000010";
/// A moderators' role with Manage Roles at position 6, above VIP (5).
const MODS_HIGH: &str = "700000000000000011";

/// H2: a member with Manage Server but not Manage Roles could put any role below the bot on
/// sale (Administrator roles included), price it at 1 VND, and buy it: a role Discord would
/// never let them assign.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_setup_never_sells_a_role_its_caller_could_not_assign() {
    use docobo_adapters::simulator::discord::MANAGE_ROLES;
    let app = spawn(true).await;
    let g: u64 = GUILD.parse().expect("id");
    app.discord.add_role(g, MODS_LOW.parse().expect("id"), "Mods (low)", 3);
    app.discord.set_role_permissions(g, MODS_LOW.parse().expect("id"), MANAGE_ROLES);
    app.discord.add_role(g, MODS_HIGH.parse().expect("id"), "Mods (high)", 6);
    app.discord.set_role_permissions(g, MODS_HIGH.parse().expect("id"), MANAGE_ROLES);
    app.interact(&command("setup", OWNER)).await;
    let pick = |token: &str, roles: &[&str]| {
        as_member(choose_roles(&[(VIP, "VIP")], token), MODERATOR, roles, MANAGE_GUILD)
    };
    let expect_refusal = |text: &str, why: &str| {
        for part in ["cannot sell **VIP**", why, "**Why:**", "**Fix:**", "**Help:**", "Setup 1/3"] {
            assert!(text.contains(part), "{part:?} missing from {text}");
        }
    };

    app.interact(&pick("no-manage-roles", &[])).await;
    expect_refusal(&content(&app.follow_up("no-manage-roles").await), "Manage Roles");
    app.interact(&pick("ranked-below", &[MODS_LOW])).await;
    expect_refusal(&content(&app.follow_up("ranked-below").await), "above (or level with) your highest role");
    assert!(app.repo.setup(guild()).await.expect("read").is_none(), "a refused choice saves nothing");

    // A role that carries Administrator is never sold, not even by the owner.
    app.discord.set_role_permissions(g, BANK.parse().expect("id"), 1 << 3);
    app.interact(&choose_roles(&[(BANK, "Bank")], "admin-role")).await;
    let text = content(&app.follow_up("admin-role").await);
    assert!(text.contains("cannot sell **Bank**") && text.contains("Administrator"), "{text}");

    // Ranked above VIP with Manage Roles: allowed, as Discord would.
    app.interact(&pick("ranked-above", &[MODS_HIGH])).await;
    assert!(content(&app.follow_up("ranked-above").await).contains("Setup 2/3"));

    // Provider credentials need the owner or an Administrator.
    let form = app
        .interact(&as_member(button("setup:provider:sepay", "c1"), MODERATOR, &[MODS_HIGH], MANAGE_GUILD))
        .await;
    assert!(content(&form).contains("Only the server owner or an Administrator"), "{form}");
    let fields = [
        ("api_key", "an-attackers-key-0123456789abcdef0123"),
        ("auth", "apikey"),
        ("bank", "MBBank"),
        ("account", "0123499999"),
        ("code_prefix", ""),
    ];
    let submitted = app
        .interact(&as_member(
            submit("setup:provider:sepay", &fields, "c2"),
            MODERATOR,
            &[MODS_HIGH],
            MANAGE_GUILD,
        ))
        .await;
    assert!(content(&submitted).contains("Only the server owner or an Administrator"), "{submitted}");
    assert!(
        app.repo.credentials(guild(), ProviderName::SEPAY).await.expect("read").is_none(),
        "nothing stored"
    );
}

/// M3 through `/setup`: a bank transfer never renews, so SePay is offered for a VND role only
/// when one payment covers its term.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m3_setup_offers_sepay_only_for_a_term_one_transfer_can_pay() {
    let app = spawn(true).await;
    let vip: RoleId = VIP.parse().expect("id");
    app.interact(&command("setup", OWNER)).await;
    app.interact(&choose_roles(&[(VIP, "VIP")], "pick")).await;
    app.follow_up("pick").await;
    for (term, token, sepay) in [("recurring", "recurring", false), ("30d", "fixed", true)] {
        let fields = [("price", "100000"), ("currency", "VND"), ("term", term), ("product:polar", "")];
        app.interact(&submit(&format!("setup:price:{VIP}"), &fields, token)).await;
        assert!(content(&app.follow_up(token).await).contains("Saved **VIP**"));
        let saved = app.repo.paid_role(guild(), vip).await.expect("read").expect("saved");
        assert_eq!(saved.link_to(ProviderName::SEPAY).is_some(), sepay, "{term}");
    }
}

/// M7 through `/setup`: a short SePay key is refused, and HMAC mode can be chosen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m7_setup_refuses_a_short_sepay_key_and_offers_hmac() {
    let app = spawn(true).await;
    app.interact(&command("setup", OWNER)).await;
    let sepay = |key: &str, auth: &str, token: &str| {
        let fields = [
            ("api_key", key),
            ("auth", auth),
            ("bank", "MBBank"),
            ("account", "0123499999"),
            ("code_prefix", ""),
        ];
        submit("setup:provider:sepay", &fields, token)
    };
    let short = content(&app.interact(&sepay("1234", "apikey", "short")).await);
    assert!(short.contains("SePay was not saved") && short.contains("at least 32"), "{short}");
    assert!(app.repo.credentials(guild(), ProviderName::SEPAY).await.expect("read").is_none());
    let saved = content(&app.interact(&sepay("0123456789abcdef0123456789abcdef", "HMAC", "hmac")).await);
    assert!(saved.contains("SePay saved"), "{saved}");
    let stored = app.repo.credentials(guild(), ProviderName::SEPAY).await.expect("read").expect("stored");
    assert_eq!(stored.settings.get("auth").map(String::as_str), Some("hmac"));
}

/// `/notify` with its `state` option.
fn notify(state: &str) -> Value {
    let mut c = command("notify", 0);
    c["data"]["options"] = json!([{ "name": "state", "type": 3, "value": state }]);
    c
}

#[tokio::test]
async fn notify_off_and_on_are_kept_per_member_and_shown_in_status() {
    use docobo_core::ports::NoticeRepo;
    let app = spawn(true).await;
    app.repo.put_guild(&Guild::new(guild(), "Shop")).await.expect("guild");
    assert!(content(&app.interact(&command("status", 0)).await).contains("Reminders: **on**"));
    let off = content(&app.interact(&notify("off")).await);
    assert!(off.contains("Reminders are **off**"), "{off}");
    let user: UserId = USER.parse().expect("id");
    assert!(app.repo.member_notices(guild(), user).await.expect("read").muted_at.is_some());
    assert!(content(&app.interact(&command("status", 0)).await).contains("Reminders: **off**"));
    assert!(content(&app.interact(&notify("on")).await).contains("Reminders are **on**"));
    assert_eq!(app.repo.member_notices(guild(), user).await.expect("read"), MemberNotices::default());
}

#[tokio::test]
async fn setup_changes_member_notices_and_names_every_bad_field() {
    let app = spawn(true).await;
    app.interact(&command("setup", OWNER)).await;
    let form = app.interact(&button("setup:notices", "n1")).await;
    assert_eq!(form["type"], 9, "a modal: {form}");
    assert_eq!(form["data"]["components"][1]["components"][0]["value"], "3d,1d");
    let fields = [("enabled", "on"), ("remind", "2d"), ("welcome", "ON"), ("locale", "vi")];
    let saved = content(&app.interact(&submit("setup:notices", &fields, "n2")).await);
    assert!(
        saved.contains("✅ Member DMs: notices on, reminders 2d before access ends, welcome on, in vi"),
        "{saved}"
    );
    let bad = [("enabled", "yes"), ("remind", "2w"), ("welcome", "off"), ("locale", "fr")];
    let refused = content(&app.interact(&submit("setup:notices", &bad, "n3")).await);
    for named in ["Notices must be on or off", "\"2w\"", "Language must be en or vi"] {
        assert!(refused.contains(named), "{named} not in {refused}");
    }
    let stored = app.repo.guild(guild()).await.expect("read").expect("guild");
    assert_eq!((stored.notices.remind.to_string(), stored.notices.locale), ("2d".to_owned(), Locale::Vi));
    // Members cannot change it.
    let member = as_member(submit("setup:notices", &fields, "n4"), "222222222222222222", &[], 0);
    assert!(!content(&app.interact(&member).await).contains("✅"));
}
