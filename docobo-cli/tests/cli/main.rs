//! The `docobo` binary, run as a user would: against a temporary database, checking output and
//! exit codes.

mod manage;

use std::process::Command;

fn docobo(args: &[&str], database: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_docobo"))
        .args(args)
        .env("DOCOBO_DATABASE_URL", database)
        .output()
        .expect("the binary runs")
}

fn temp_db() -> String {
    let dir = std::env::temp_dir().join(format!("docobo-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("sqlite://{}?mode=rwc", dir.join(format!("{n}.db")).display())
}

#[test]
fn migrate_creates_the_schema_and_is_idempotent() {
    let db = temp_db();
    for _ in 0..2 {
        let out = docobo(&["migrate"], &db);
        assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("database is up to date"));
    }
}

#[test]
fn migrate_takes_the_database_url_flag_over_the_environment() {
    let db = temp_db();
    let out = Command::new(env!("CARGO_BIN_EXE_docobo"))
        .args(["migrate", "--database-url", &db])
        .env("DOCOBO_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .expect("runs");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_typo_prints_usage_and_exits_2() {
    let out = docobo(&["migrat"], &temp_db());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Usage") && stderr.contains("migrate"), "{stderr}");
}

#[test]
fn an_unreachable_database_exits_1_with_the_reason_and_no_password() {
    let out = docobo(&["migrate"], "postgres://app:hunter2@127.0.0.1:1/docobo");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot open the database"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Runs `docobo` with DOCOBO_SECRET_KEY set; returns (exit code, stdout, stderr).
fn run(args: &[&str], db: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_docobo"))
        .args(args)
        .env("DOCOBO_DATABASE_URL", db)
        .env("DOCOBO_SECRET_KEY", KEY)
        .output()
        .expect("runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn configuring_a_guild_end_to_end() {
    let db = temp_db();
    assert_eq!(run(&["guild", "add", "987654321098765432", "--name", "My server"], &db).0, 0);
    let (code, out, _) = run(&["guild", "list", "--json"], &db);
    assert_eq!(code, 0);
    assert_eq!(json(&out)[0]["guild_id"], "987654321098765432");
    assert_eq!(json(&out)[0]["name"], "My server");

    let (code, out, err) =
        run(&["provider", "set", "987654321098765432", "polar", "--webhook-secret", "whsec_abc"], &db);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/webhooks/polar/987654321098765432"), "{out}");
    assert!(!out.contains("whsec_abc"), "the secret was echoed");
    let sepay = [
        "provider",
        "set",
        "987654321098765432",
        "sepay",
        "--api-key",
        "k0123456789abcdef0123456789abcdef",
        "--bank",
        "MBBank",
        "--account",
        "0123",
    ];
    assert_eq!(run(&sepay, &db).0, 0);

    let add = [
        "role",
        "add",
        "987654321098765432",
        "700000000000000007",
        "--price",
        "5.00",
        "--currency",
        "USD",
        "--polar-product",
        "prod_1",
    ];
    assert_eq!(run(&add, &db).0, 0);
    let bank = [
        "role",
        "add",
        "987654321098765432",
        "700000000000000008",
        "--price",
        "250000",
        "--currency",
        "VND",
        "--term",
        "30d",
        "--sepay",
    ];
    assert_eq!(run(&bank, &db).0, 0);
    let (_, out, _) = run(&["role", "list", "987654321098765432", "--json"], &db);
    let roles = json(&out);
    assert_eq!(roles.as_array().map(Vec::len), Some(2));
    assert_eq!(roles[0]["price"], "5.00 USD");
    assert_eq!(roles[1]["term"], "30d");
    let (_, table, _) = run(&["role", "list", "987654321098765432"], &db);
    assert!(table.starts_with("ROLE_ID") && table.contains("250000 VND"), "{table}");

    assert_eq!(run(&["role", "remove", "987654321098765432", "700000000000000008"], &db).0, 0);
    assert_eq!(run(&["role", "remove", "987654321098765432", "700000000000000008"], &db).0, 1);
    let (_, out, _) = run(&["subs", "list", "--json"], &db);
    assert_eq!(json(&out), serde_json::json!([]));
}

#[test]
fn impossible_combinations_are_usage_errors_and_missing_things_are_failures() {
    let db = temp_db();
    run(&["guild", "add", "987654321098765432"], &db);
    let recurring_bank =
        ["role", "add", "987654321098765432", "7", "--price", "5", "--currency", "VND", "--sepay"];
    let (code, _, err) = run(&recurring_bank, &db);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--term"), "{err}");
    let bad_price = ["role", "add", "987654321098765432", "7", "--price", "5.001", "--currency", "USD"];
    let (code, _, err) = run(&bad_price, &db);
    assert_eq!(code, 2);
    assert!(err.contains("decimal places"), "{err}");
    let (code, _, err) =
        run(&["role", "add", "987654321098765432", "7", "--price", "5", "--currency", "XYZ"], &db);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["role", "add", "1", "7", "--price", "5", "--currency", "USD"], &db);
    assert_eq!(code, 1);
    assert!(err.contains("docobo guild add 1"), "{err}");
    let (code, _, err) = run(&["guild", "add", "not-a-snowflake"], &db);
    assert_eq!(code, 2, "{err}");
    let no_key = Command::new(env!("CARGO_BIN_EXE_docobo"))
        .args(["provider", "set", "987654321098765432", "polar", "--webhook-secret", "whsec_x"])
        .env("DOCOBO_DATABASE_URL", &db)
        .env_remove("DOCOBO_SECRET_KEY")
        .output()
        .expect("runs");
    assert_eq!(no_key.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("DOCOBO_SECRET_KEY"));
}

#[test]
fn a_failed_event_is_listed_and_replayed_after_the_fix() {
    use docobo_adapters::polar::{Polar, signature};
    use docobo_adapters::seaorm::SeaOrmRepo;
    use docobo_core::domain::{ProviderName, Secret};
    use docobo_core::ports::{CatalogRepo, Headers, ProviderCredentials};
    use docobo_core::service::ingest_webhook;
    use docobo_core::testing::ManualClock;

    const GUILD: &str = "987654321098765432";
    const PRODUCT: &str = "d1e2f3a4-0000-4000-8000-000000000002";
    let db = temp_db();
    run(&["guild", "add", GUILD], &db);
    run(&["role", "add", GUILD, "700000000000000007", "--price", "5", "--currency", "USD"], &db);
    // A signed Polar delivery for a product nobody linked yet lands in the failure inbox.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let repo = SeaOrmRepo::connect(&db, Some(KEY)).await.expect("connects");
        let guild = GUILD.parse().expect("id");
        let secret = "whsec_cli_test";
        repo.put_credentials(guild, ProviderName::POLAR, &ProviderCredentials::new(Secret::new(secret)))
            .await
            .expect("creds");
        let path = format!(
            "{}/../docobo-adapters/tests/fixtures/polar/subscription_active.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let body = std::fs::read(path).expect("fixture");
        let now = time::OffsetDateTime::now_utc();
        let headers = Headers::new()
            .with("webhook-id", "wh_cli_1")
            .with("webhook-timestamp", now.unix_timestamp().to_string())
            .with(
                "webhook-signature",
                signature::sign(secret.as_bytes(), "wh_cli_1", now.unix_timestamp(), &body),
            );
        ingest_webhook(&repo, &Polar::default(), &ManualClock::new(now), guild, &headers, &body)
            .await
            .expect("stored");
    });
    let (_, out, _) = run(&["events", "list", "--status", "failed", "--json"], &db);
    let failed = json(&out);
    assert_eq!(failed[0]["event_id"], "wh_cli_1");
    assert!(failed[0]["last_error"].as_str().is_some_and(|e| e.contains(PRODUCT)), "{failed}");
    let id = failed[0]["id"].to_string();

    // The owner links the product, then replays: the purchase is applied once.
    let link = [
        "role",
        "add",
        GUILD,
        "700000000000000007",
        "--price",
        "5",
        "--currency",
        "USD",
        "--polar-product",
        PRODUCT,
    ];
    assert_eq!(run(&link, &db).0, 0);
    let (code, out, err) = run(&["events", "replay", &id], &db);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Processed"), "{out}");
    let (_, out, _) = run(&["subs", "list", "--guild", GUILD, "--json"], &db);
    let subs = json(&out);
    assert_eq!(subs.as_array().map(Vec::len), Some(1));
    assert_eq!(
        (subs[0]["user_id"].as_str(), subs[0]["status"].as_str()),
        (Some("123456789012345678"), Some("active"))
    );
    assert_eq!(subs[0]["provider"], "polar");
    assert_eq!(subs[0]["access_until"], "2026-11-01T11:59:50Z");
    let (code, _, err) = run(&["events", "replay", &id], &db);
    assert_eq!(code, 1, "a processed event is not replayed again");
    assert!(err.contains("failure inbox"), "{err}");
    let (code, _, err) = run(&["events", "replay", "999"], &db);
    assert_eq!(code, 1);
    assert!(err.contains("no event 999"), "{err}");
}

#[test]
fn reconcile_needs_a_bot_token_and_queues_fixes_for_drift() {
    let db = temp_db();
    run(&["guild", "add", "987654321098765432"], &db);
    let out = Command::new(env!("CARGO_BIN_EXE_docobo"))
        .args(["reconcile"])
        .env("DOCOBO_DATABASE_URL", &db)
        .env_remove("DISCORD_BOT_TOKEN")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DISCORD_BOT_TOKEN"));
    // With a token (pointed at a closed loopback port) and no members, there is nothing to read.
    let out = Command::new(env!("CARGO_BIN_EXE_docobo"))
        .args(["reconcile", "--guild", "987654321098765432"])
        .env("DOCOBO_DATABASE_URL", &db)
        .env("DISCORD_BOT_TOKEN", "fake-token")
        .env("DOCOBO_DISCORD_API_URL", "http://127.0.0.1:1")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 members checked"));
}

#[test]
fn commands_register_needs_the_bot_token_and_the_application_id() {
    let db = temp_db();
    let out = Command::new(env!("CARGO_BIN_EXE_docobo"))
        .args(["commands", "register"])
        .env("DOCOBO_DATABASE_URL", &db)
        .env_remove("DISCORD_BOT_TOKEN")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DISCORD_BOT_TOKEN"));
    let out = Command::new(env!("CARGO_BIN_EXE_docobo"))
        .args(["commands", "register", "--guild", "987654321098765432"])
        .env("DOCOBO_DATABASE_URL", &db)
        .env("DISCORD_BOT_TOKEN", "fake-token")
        .env("DOCOBO_DISCORD_API_URL", "http://127.0.0.1:1")
        .env_remove("DISCORD_CLIENT_ID")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DISCORD_CLIENT_ID"));
}

#[test]
fn commands_register_puts_the_five_commands_in_one_guild() {
    use docobo_adapters::simulator::discord::FakeDiscord;
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let fake = rt.block_on(FakeDiscord::start(555)).expect("fake");
    let out = Command::new(env!("CARGO_BIN_EXE_docobo"))
        .args(["commands", "register", "--guild", "987654321098765432"])
        .env("DOCOBO_DATABASE_URL", temp_db())
        .env("DISCORD_BOT_TOKEN", "fake-token")
        .env("DISCORD_CLIENT_ID", "42")
        .env("DOCOBO_DISCORD_API_URL", &fake.base_url)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("/help, /status, /join, /notify, /setup"));
    assert_eq!(fake.commands(Some(987654321098765432)), ["help", "status", "join", "notify", "setup"]);
}

#[test]
fn demo_runs_the_whole_flow_and_prints_a_timeline_with_grants_and_removals() {
    let db = temp_db();
    let out = Command::new(env!("CARGO_BIN_EXE_docobo"))
        .arg("demo")
        .env("DOCOBO_DATABASE_URL", &db)
        .env_remove("DISCORD_BOT_TOKEN")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for line in [
        "Discord: role VIP granted",
        "Discord: role 30 days granted",
        "Discord: role Supporter removed",
        "Discord: role VIP removed",
        "the member now holds: no paid role",
        "webhook acknowledged",
        "27 days later (simulated clock): 3 reminder(s) planned, 3 DM(s) sent",
        "ends in 3 days",
        "and 3 \"your access has ended\" DM(s)",
        "mirrored in both paid channels, 2 chart(s) re-uploaded",
        "both mirrors edited",
        "both mirrors deleted",
        "source event → mirror request",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    let configured = db.trim_start_matches("sqlite://").split('?').next().unwrap_or_default().to_owned();
    assert!(!std::path::Path::new(&configured).exists(), "the demo touched the configured database");
}

#[test]
fn l9_secrets_rotate_reseals_every_credential_under_the_new_key() {
    const NEW: &str = "HxoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwIBAB8eHRw=";
    let db = temp_db();
    assert_eq!(run(&["guild", "add", "987654321098765432"], &db).0, 0);
    let polar = ["provider", "set", "987654321098765432", "polar", "--webhook-secret", "whsec_abc"];
    assert_eq!(run(&polar, &db).0, 0);
    let rotate = |key: &str, old: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_docobo"));
        cmd.args(["secrets", "rotate"]).env("DOCOBO_DATABASE_URL", &db).env("DOCOBO_SECRET_KEY", key);
        if let Some(old) = old {
            cmd.env("DOCOBO_SECRET_KEY_OLD", old);
        }
        let out = cmd.output().expect("runs");
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = rotate(NEW, Some(KEY));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("re-sealed 1 credential"), "{out}");
    assert_eq!(rotate(NEW, None).0, 0, "the new key alone opens everything now");
    assert_eq!(rotate(KEY, None).0, 1, "the old key alone no longer does");
}

#[test]
fn m3_the_cli_refuses_sepay_for_a_recurring_role_with_the_core_rule() {
    let db = temp_db();
    assert_eq!(run(&["guild", "add", "987654321098765432"], &db).0, 0);
    let add = |term: &str| {
        let args = [
            "role",
            "add",
            "987654321098765432",
            "700000000000000008",
            "--price",
            "250000",
            "--currency",
            "VND",
            "--term",
            term,
            "--sepay",
        ];
        run(&args, &db)
    };
    let (code, _, err) = add("recurring");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("never renew"), "{err}");
    assert_eq!(add("30d").0, 0);
}

#[test]
fn a_sellapp_store_and_a_fixed_term_variant_are_configured_from_the_command_line() {
    let db = temp_db();
    run(&["guild", "add", "987654321098765432"], &db);
    let short = ["provider", "set", "987654321098765432", "sellapp", "--webhook-secret", "short"];
    let (code, _, err) = run(&short, &db);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("16 characters"), "{err}");
    let good = [
        "provider",
        "set",
        "987654321098765432",
        "sellapp",
        "--webhook-secret",
        "sellapp-signing-secret-0123",
        "--store",
        "shop",
    ];
    let (code, out, err) = run(&good, &db);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("/webhooks/sellapp/987654321098765432") && !out.contains("sellapp-signing-secret"),
        "{out}"
    );

    let variant_alone = [
        "role",
        "add",
        "987654321098765432",
        "7",
        "--price",
        "10",
        "--currency",
        "USD",
        "--sellapp-variant",
        "301",
    ];
    assert_eq!(run(&variant_alone, &db).0, 2, "a variant needs its product");
    let add = [
        "role",
        "add",
        "987654321098765432",
        "7",
        "--price",
        "10",
        "--currency",
        "USD",
        "--term",
        "30d",
        "--sellapp-product",
        "77",
        "--sellapp-variant",
        "301",
    ];
    let (code, _, err) = run(&add, &db);
    assert_eq!(code, 0, "{err}");
    let roles = json(&run(&["role", "list", "987654321098765432", "--json"], &db).1);
    assert_eq!(
        roles[0]["links"],
        serde_json::json!([{ "provider": "sellapp", "product": "77", "variant": "301" }])
    );
    assert_eq!(roles[0]["providers"], "sellapp (77/301)");
}
