//! The web dashboard over HTTP: "Log in with Discord" through the fake Discord's OAuth2 (state,
//! PKCE, the code exchanged once), the session cookie's flags, `/me` showing the member's
//! purchase and why a role is missing, logout guarded by the CSRF token and the request's
//! origin, the operator pages (only for the guild's owner; a failed delivery replayed from the
//! inbox reaches Discord), and the dashboard off without its credentials.

use docobo_core::domain::{
    Currency, Guild, GuildId, JobState, Money, PaidRole, ProductLink, ProviderName, RoleId, RoleJobKey,
    Secret, Term,
};
use docobo_core::ports::{CatalogRepo, CheckoutRepo, JobQueue, Ledger};
use docobo_core::testing::purchase;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use time::{Duration, OffsetDateTime};

use crate::common::{
    ADMINS, App, BANK, GUILD, PUBLIC_URL, SEPAY_KEY, USER, VIP, bank_checkout, eventually,
    sell_bank_by_sepay, spawn_configured,
};

const CLIENT_ID: &str = "900000000000000001";
const CLIENT_SECRET: &str = "oauth-client-secret-0123456789";

pub(crate) async fn dashboard() -> App {
    let app = spawn_configured(|c| {
        c.discord_client_id = Some(CLIENT_ID.to_owned());
        c.discord_client_secret = Some(Secret::new(CLIENT_SECRET));
    })
    .await;
    app.discord.set_oauth_app(CLIENT_ID, CLIENT_SECRET);
    app.discord.log_in_as(USER.parse().expect("id"), "Buyer");
    app
}

pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// The `name=value` of each Set-Cookie, with its attributes.
fn cookies(response: &reqwest::Response) -> Vec<String> {
    response.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
}

/// The CSRF token a page's forms carry.
pub(crate) fn csrf_of(html: &str) -> String {
    html.split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a csrf token")
        .to_owned()
}

/// `GET path` with the session cookie; the status and the page.
pub(crate) async fn page(app: &App, cookie: &str, path: &str) -> (u16, String) {
    let response = no_redirects()
        .get(format!("{}{path}", app.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .expect("request");
    (response.status().as_u16(), response.text().await.expect("html"))
}

pub(crate) fn location(response: &reqwest::Response) -> String {
    response.headers().get(LOCATION).and_then(|l| l.to_str().ok()).unwrap_or_default().to_owned()
}

/// Logs in through the fake Discord; the session cookie (`name=value`).
pub(crate) async fn log_in(app: &App) -> String {
    let http = no_redirects();
    let start = http.get(format!("{}/login", app.base)).send().await.expect("login");
    assert_eq!(start.status(), 303);
    let login_cookie = cookies(&start).into_iter().next().expect("a login cookie");
    assert!(login_cookie.starts_with("__Host-docobo_login="), "{login_cookie}");
    let consent = location(&start);
    assert!(consent.starts_with(&format!("{}/oauth2/authorize?", app.discord.base_url)), "{consent}");
    assert!(
        consent.contains("code_challenge_method=S256") && consent.contains("scope=identify"),
        "{consent}"
    );
    let approved = http.get(&consent).send().await.expect("authorize");
    assert_eq!(approved.status(), 302);
    let back = location(&approved);
    let path = back.strip_prefix(PUBLIC_URL).expect("back to the public URL");
    let name_value = login_cookie.split(';').next().unwrap_or_default().to_owned();
    let done =
        http.get(format!("{}{path}", app.base)).header(COOKIE, &name_value).send().await.expect("callback");
    assert_eq!(done.status(), 303, "{}", done.text().await.unwrap_or_default());
    assert_eq!(location(&done), "/me");
    let set = cookies(&done);
    let session = set.iter().find(|c| c.starts_with("__Host-docobo_session=")).expect("a session cookie");
    for flag in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(session.contains(flag), "{flag} missing: {session}");
    }
    assert!(set.iter().any(|c| c.starts_with("__Host-docobo_login=;") && c.contains("Max-Age=0")), "{set:?}");
    session.split(';').next().unwrap_or_default().to_owned()
}

pub(crate) async fn seed_purchase(app: &App) -> OffsetDateTime {
    let (guild, role): (GuildId, RoleId) = (GUILD.parse().expect("id"), VIP.parse().expect("id"));
    app.repo.put_guild(&Guild::new(guild, "Signals Club")).await.expect("guild");
    let price = Money::parse("5", Currency::Usd).expect("price");
    let vip = PaidRole::new(guild, role, "VIP", price, Term::Recurring).expect("role");
    app.repo.put_paid_role(&vip).await.expect("role");
    let until = OffsetDateTime::now_utc() + Duration::days(20);
    let key = RoleJobKey { guild, user: USER.parse().expect("id"), role };
    app.repo
        .commit(purchase(key, "sub_1", Term::Recurring, Some(until), OffsetDateTime::now_utc()))
        .await
        .expect("commit");
    until
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_logs_in_with_discord_sees_their_purchase_and_logs_out() {
    let app = dashboard().await;
    seed_purchase(&app).await;
    let http = no_redirects();
    let landing = http.get(format!("{}/", app.base)).send().await.expect("landing");
    assert_eq!(landing.status(), 200);
    let csp =
        landing.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("script-src 'self'") && csp.contains("form-action 'self'"), "{csp}");
    assert!(
        landing
            .text()
            .await
            .expect("html")
            .contains(r#"<a class="button" href="/login">Log in with Discord</a>"#)
    );
    let anonymous = http.get(format!("{}/me", app.base)).send().await.expect("me");
    assert_eq!((anonymous.status().as_u16(), location(&anonymous)), (303, "/login".to_owned()));

    let session = log_in(&app).await;
    let me = http.get(format!("{}/me", app.base)).header(COOKIE, &session).send().await.expect("me");
    assert_eq!(me.status(), 200);
    let html = me.text().await.expect("html");
    for shown in ["Signals Club", "VIP", "Active", "<time datetime=\"", "20 days", "Buyer"] {
        assert!(html.contains(shown), "{shown:?} missing from:\n{html}");
    }
    let csrf = csrf_of(&html);

    // Logging out needs the form's token and a same-origin request.
    let post = |csrf: &str| {
        http.post(format!("{}/logout", app.base)).header(COOKIE, &session).form(&[("csrf", csrf.to_owned())])
    };
    assert_eq!(post("forged").send().await.expect("logout").status(), 403, "a wrong token");
    let cross = post(&csrf).header("origin", "https://evil.example").send().await.expect("logout");
    assert_eq!(cross.status(), 403, "another origin");
    let cross = post(&csrf).header("sec-fetch-site", "cross-site").send().await.expect("logout");
    assert_eq!(cross.status(), 403, "a cross-site fetch");
    let out = post(&csrf).header("origin", PUBLIC_URL).send().await.expect("logout");
    assert_eq!((out.status().as_u16(), location(&out)), (303, "/".to_owned()));
    let after = http.get(format!("{}/me", app.base)).header(COOKIE, &session).send().await.expect("me");
    assert_eq!(after.status(), 303, "the session is gone on the server, not only in the browser");
}

/// A purchase of Admins, a role above the bot's, so that its role job parks; its key.
pub(crate) async fn seed_parked_job(app: &App) -> RoleJobKey {
    let (guild, admins): (GuildId, RoleId) = (GUILD.parse().expect("id"), ADMINS.parse().expect("id"));
    let price = Money::parse("9", Currency::Usd).expect("price");
    app.repo
        .put_paid_role(&PaidRole::new(guild, admins, "Admins", price, Term::Recurring).expect("role"))
        .await
        .expect("role");
    let key = RoleJobKey { guild, user: USER.parse().expect("id"), role: admins };
    let mut commit = purchase(key, "sub_2", Term::Recurring, None, OffsetDateTime::now_utc());
    commit.jobs = vec![key];
    app.repo.commit(commit).await.expect("commit");
    eventually("the role above the bot parked", || async {
        app.repo.job_for(key).await.ok().flatten().is_some_and(|j| j.state == JobState::Parked)
    })
    .await;
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_says_why_a_paid_role_is_not_on_discord_from_its_role_job() {
    let app = dashboard().await;
    seed_purchase(&app).await;
    seed_parked_job(&app).await;
    let session = log_in(&app).await;
    let (_, html) = page(&app, &session, "/me").await;
    assert!(html.contains("Discord refused the change, so it waits for the server&#39;s owner"), "{html}");
    assert!(html.contains("drag it above the paid role"), "the owner-actionable reason is shown: {html}");
    assert_eq!(html.matches("class=\"why\"").count(), 1, "the VIP role is fine and says nothing: {html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_with_a_forged_state_or_a_replayed_code_logs_no_one_in() {
    let app = dashboard().await;
    let http = no_redirects();
    let start = http.get(format!("{}/login", app.base)).send().await.expect("login");
    let login_cookie = cookies(&start)[0].split(';').next().unwrap_or_default().to_owned();
    let approved = http.get(location(&start)).send().await.expect("authorize");
    let path = location(&approved).strip_prefix(PUBLIC_URL).expect("public URL").to_owned();
    let code = path.split("code=").nth(1).and_then(|r| r.split('&').next()).unwrap_or_default().to_owned();

    let forged = format!("{}/auth/callback?code={code}&state=attacker", app.base);
    let refused = http.get(&forged).header(COOKIE, &login_cookie).send().await.expect("callback");
    assert_eq!(refused.status(), 400, "a state that is not the login cookie's");
    let no_cookie = http.get(format!("{}{path}", app.base)).send().await.expect("callback");
    assert_eq!(no_cookie.status(), 400, "a login not started in this browser");
    assert_eq!(app.discord.refused_token_exchanges(), 0, "neither reached Discord");

    let first =
        http.get(format!("{}{path}", app.base)).header(COOKIE, &login_cookie).send().await.expect("callback");
    assert_eq!(first.status(), 303);
    let replay =
        http.get(format!("{}{path}", app.base)).header(COOKIE, &login_cookie).send().await.expect("callback");
    assert_eq!(replay.status(), 502, "Discord takes a code once");
    assert!(cookies(&replay).iter().all(|c| !c.starts_with("__Host-docobo_session=")));
    assert_eq!(app.discord.refused_token_exchanges(), 1);

    // Each login gets a new session token.
    assert_ne!(log_in(&app).await, log_in(&app).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_oauth_secret_the_dashboard_answers_404_saying_how_to_turn_it_on() {
    let app = spawn_configured(|_| {}).await;
    for path in ["/", "/me", "/login", "/auth/callback?code=x&state=y"] {
        let response = no_redirects().get(format!("{}{path}", app.base)).send().await.expect("request");
        assert_eq!(response.status(), 404, "{path}");
        let body = response.text().await.expect("body");
        assert!(body.contains("DISCORD_CLIENT_SECRET") && body.contains("/auth/callback"), "{path}: {body}");
    }
    let health = no_redirects().get(format!("{}/health", app.base)).send().await.expect("health");
    let csp =
        health.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert_eq!(csp, "default-src 'none'; frame-ancestors 'none'", "the API keeps its strict policy");
}

/// A guild selling Bank by SePay, and a transfer that fails (no checkout matches its code); the
/// failed delivery's inbox id.
pub(crate) async fn seed_failed_transfer(app: &App) -> i64 {
    let guild: GuildId = GUILD.parse().expect("id");
    app.repo.put_guild(&Guild::new(guild, "Signals Club")).await.expect("guild");
    sell_bank_by_sepay(app, guild).await;
    app.deliver_unmatched_transfer(SEPAY_KEY).await;
    let failed = app.repo.failed_events(10).await.expect("inbox");
    assert_eq!(failed.len(), 1);
    failed[0].id.0
}

/// The fix an owner makes: the member's checkout is found after all.
pub(crate) async fn fix_checkout(app: &App) {
    app.repo.put_checkout(&bank_checkout()).await.expect("checkout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_replays_a_failed_delivery_from_the_inbox_and_others_are_refused() {
    let app = dashboard().await;
    let id = seed_failed_transfer(&app).await;
    let http = no_redirects();

    // Someone who is neither the owner nor holds Manage Server.
    let stranger: u64 = 222_222_222_222_222_222;
    app.discord.join(GUILD.parse().expect("id"), stranger);
    app.discord.log_in_as(stranger, "Stranger");
    let theirs = log_in(&app).await;
    assert!(!page(&app, &theirs, "/ops").await.1.contains("/ops/"), "no guild listed for a stranger");
    assert_eq!(page(&app, &theirs, &format!("/ops/{GUILD}")).await.0, 403);

    app.discord.log_in_as(USER.parse().expect("id"), "Buyer");
    let owner = log_in(&app).await;
    assert!(page(&app, &owner, "/ops").await.1.contains(&format!("href=\"/ops/{GUILD}\"")));
    let (status, html) = page(&app, &owner, &format!("/ops/{GUILD}")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("SePay delivery 92704") && html.contains(&format!("/ops/{GUILD}/events/{id}/replay")),
        "{html}"
    );
    let csrf = csrf_of(&html);

    let replay = |cookie: &str, csrf: &str| {
        http.post(format!("{}/ops/{GUILD}/events/{id}/replay", app.base))
            .header(COOKIE, cookie)
            .header("origin", PUBLIC_URL)
            .form(&[("csrf", csrf.to_owned())])
    };
    assert_eq!(
        replay(&theirs, &csrf).send().await.expect("replay").status(),
        403,
        "a stranger, even with a token"
    );
    assert_eq!(
        replay(&owner, "forged").send().await.expect("replay").status(),
        403,
        "without the page's token"
    );
    fix_checkout(&app).await;
    let done = replay(&owner, &csrf).send().await.expect("replay");
    assert_eq!((done.status().as_u16(), location(&done)), (303, format!("/ops/{GUILD}")));
    let (guild, user, bank): (u64, u64, u64) =
        (GUILD.parse().expect("id"), USER.parse().expect("id"), BANK.parse().expect("id"));
    eventually("the role at Discord", || async {
        app.discord.roles(guild, user).is_some_and(|r| r.contains(&bank))
    })
    .await;
    assert!(app.repo.failed_events(10).await.expect("inbox").is_empty());
    // Applied, the transfer is revenue: the month's bar is drawn on the server.
    let (_, html) = page(&app, &owner, &format!("/ops/{GUILD}")).await;
    assert!(html.contains(r#"<svg class="chart" role="img""#) && html.contains("2026-12 250000"), "{html}");
    assert!(html.contains("No failed delivery"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_opens_the_checkout_join_would_make_for_the_logged_in_member_only() {
    let app = dashboard().await;
    let until = seed_purchase(&app).await;
    assert!(until > OffsetDateTime::now_utc());
    let guild: GuildId = GUILD.parse().expect("id");
    let mut vip = app.repo.paid_role(guild, VIP.parse().expect("id")).await.expect("read").expect("role");
    vip.link(ProductLink::product(ProviderName::POLAR, "d1e2f3a4-0000-4000-8000-000000000002"));
    app.repo.put_paid_role(&vip).await.expect("role");
    let mut polar = docobo_core::ports::ProviderCredentials::new(Secret::new("whsec_dashboard"));
    polar.api_token = Some(Secret::new(crate::common::POLAR_TOKEN));
    app.repo.put_credentials(guild, ProviderName::POLAR, &polar).await.expect("credentials");

    let session = log_in(&app).await;
    let http = no_redirects();
    let (_, html) = page(&app, &session, "/me").await;
    let csrf = csrf_of(&html);
    let what =
        html.split(r#"name="what" value=""#).nth(1).and_then(|r| r.split('"').next()).expect("a renew form");
    assert_eq!(what, format!("{GUILD}/{VIP}/polar"));
    let renew = |csrf: &str| {
        http.post(format!("{}/me/renew", app.base))
            .header(COOKIE, &session)
            .header("origin", PUBLIC_URL)
            .form(&[("csrf", csrf), ("what", what)])
    };
    assert_eq!(renew("forged").send().await.expect("renew").status(), 403);
    let opened = renew(&csrf).send().await.expect("renew");
    assert_eq!(opened.status(), 303);
    assert!(location(&opened).contains("/checkout/"), "the provider's payment page: {}", location(&opened));
    let made: Vec<serde_json::Value> = app
        .polar
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("checkouts"))
        .filter_map(|r| serde_json::from_slice(&r.body).ok())
        .collect();
    assert_eq!(made.len(), 1, "one checkout made");
    assert_eq!(made[0]["metadata"]["discord_user_id"], USER, "for the logged-in member: {}", made[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_replay_shows_its_count_first_then_applies_what_was_fixed() {
    let app = dashboard().await;
    seed_failed_transfer(&app).await;
    let owner = log_in(&app).await;
    let http = no_redirects();
    let (_, html) = page(&app, &owner, &format!("/ops/{GUILD}/replay-all")).await;
    assert!(html.contains("1 failed delivery will be applied again"), "{html}");
    let csrf = csrf_of(&html);
    assert_eq!(app.repo.failed_events(10).await.expect("inbox").len(), 1, "the dry run changed nothing");
    let post = || {
        http.post(format!("{}/ops/{GUILD}/replay-all", app.base))
            .header(COOKIE, &owner)
            .header("origin", PUBLIC_URL)
            .form(&[("csrf", csrf.clone())])
    };
    let unfixed = post().send().await.expect("replay").text().await.expect("html");
    assert!(unfixed.contains("0 of 1 applied; 1 still failing"), "{unfixed}");
    fix_checkout(&app).await;
    let fixed = post().send().await.expect("replay").text().await.expect("html");
    assert!(fixed.contains("1 of 1 applied; 0 still failing"), "{fixed}");
    assert!(app.repo.failed_events(10).await.expect("inbox").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_a_members_whole_chain_and_grants_by_hand_with_a_reason() {
    let app = dashboard().await;
    seed_purchase(&app).await;
    let owner = log_in(&app).await;
    let http = no_redirects();
    let found = http
        .get(format!("{}/ops/{GUILD}/members?user={USER}", app.base))
        .header(COOKIE, &owner)
        .send()
        .await
        .expect("lookup");
    assert_eq!((found.status().as_u16(), location(&found)), (303, format!("/ops/{GUILD}/members/{USER}")));
    let (_, html) = page(&app, &owner, &format!("/ops/{GUILD}/members/{USER}")).await;
    assert!(html.contains("Polar purchase sub_1 of VIP recorded"), "{html}");
    let csrf = csrf_of(&html);
    let change = |verb: &str, reason: &str| {
        http.post(format!("{}/ops/{GUILD}/members/{USER}/{verb}", app.base))
            .header(COOKIE, &owner)
            .header("origin", PUBLIC_URL)
            .form(&[("csrf", csrf.as_str()), ("role", BANK), ("reason", reason)])
    };
    assert_eq!(change("grant", "  ").send().await.expect("grant").status(), 400, "a reason is required");
    let bank = PaidRole::new(
        GUILD.parse().expect("id"),
        BANK.parse().expect("id"),
        "Bank",
        Money::parse("1", Currency::Usd).expect("price"),
        Term::Lifetime,
    )
    .expect("role");
    app.repo.put_paid_role(&bank).await.expect("role");
    let granted = change("grant", "refund dispute settled in their favour").send().await.expect("grant");
    assert_eq!(granted.status(), 303);
    let (guild, user, role): (u64, u64, u64) =
        (GUILD.parse().expect("id"), USER.parse().expect("id"), BANK.parse().expect("id"));
    eventually("the role at Discord", || async {
        app.discord.roles(guild, user).is_some_and(|r| r.contains(&role))
    })
    .await;
    let (_, html) = page(&app, &owner, &format!("/ops/{GUILD}/members/{USER}")).await;
    assert!(
        html.contains("refund dispute settled in their favour (by"),
        "the audit trail keeps the reason and who: {html}"
    );

    // Someone else may not.
    let stranger: u64 = 222_222_222_222_222_222;
    app.discord.join(guild, stranger);
    app.discord.log_in_as(stranger, "Stranger");
    let theirs = log_in(&app).await;
    assert_eq!(page(&app, &theirs, &format!("/ops/{GUILD}/members/{USER}")).await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_everywhere_ends_every_session_of_the_member_and_no_one_elses() {
    let app = dashboard().await;
    let (laptop, phone) = (log_in(&app).await, log_in(&app).await);
    app.discord.log_in_as(222_222_222_222_222_222, "Stranger");
    let theirs = log_in(&app).await;
    let csrf = csrf_of(&page(&app, &laptop, "/me").await.1);
    let out = no_redirects()
        .post(format!("{}/logout", app.base))
        .header(COOKIE, &laptop)
        .header("origin", PUBLIC_URL)
        .form(&[("csrf", csrf.as_str()), ("everywhere", "1")])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 303);
    assert_eq!(page(&app, &laptop, "/me").await.0, 303);
    assert_eq!(page(&app, &phone, "/me").await.0, 303, "the other device is logged out too");
    assert_eq!(page(&app, &theirs, "/me").await.0, 200, "someone else stays logged in");
}
