//! `subs show`, `grant`, `revoke`, `export`, `check` and `completions`, run as a user would.

use std::process::Command;

use super::{KEY, json, run, temp_db};

const GUILD: &str = "987654321098765432";
const USER: &str = "111111111111111111";
const ROLE: &str = "700000000000000007";

fn guild_with_a_role(db: &str, term: &str) {
    assert_eq!(run(&["guild", "add", GUILD, "--name", "My server"], db).0, 0);
    let (code, _, err) =
        run(&["role", "add", GUILD, ROLE, "--price", "5.00", "--currency", "USD", "--term", term], db);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_manual_grant_is_listed_shown_with_its_reason_and_revoked() {
    let db = temp_db();
    guild_with_a_role(&db, "30d");
    let (code, out, err) = run(&["grant", GUILD, USER, ROLE, "--reason", "conference speaker"], &db);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("granted role") && out.contains("until 20"), "{out}");

    let list = json(&run(&["subs", "list", "--json"], &db).1);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!((list[0]["provider"].as_str(), list[0]["status"].as_str()), (Some("manual"), Some("active")));
    let id = list[0]["id"].to_string();

    let shown = json(&run(&["subs", "show", &id, "--json"], &db).1);
    assert_eq!(shown["user_id"], USER);
    assert_eq!(shown["audit"][0]["action"], "manual_grant");
    assert_eq!(shown["audit"][0]["reason"], "conference speaker");
    let (code, human, _) = run(&["subs", "show", &id], &db);
    assert_eq!(code, 0);
    assert!(human.contains("manual_grant") && human.contains("conference speaker"), "{human}");

    let (code, out, err) = run(&["revoke", GUILD, USER, ROLE, "--reason", "left the programme"], &db);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked role"), "{out}");
    let shown = json(&run(&["subs", "show", &id, "--json"], &db).1);
    assert_eq!(shown["status"], "revoked");
    assert_eq!(shown["audit"][1]["action"], "manual_revoke");

    // Nothing left to revoke: a failure, with the reason.
    let (code, _, err) = run(&["revoke", GUILD, USER, ROLE, "--reason", "again"], &db);
    assert_eq!(code, 1);
    assert!(err.contains("holds no access"), "{err}");
}

#[test]
fn overrides_without_a_reason_or_a_paid_role_are_refused_and_write_nothing() {
    let db = temp_db();
    guild_with_a_role(&db, "lifetime");
    let (code, _, err) = run(&["grant", GUILD, USER, ROLE], &db);
    assert_eq!(code, 2, "clap requires --reason: {err}");
    let (code, _, err) = run(&["grant", GUILD, USER, ROLE, "--reason", "  "], &db);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("reason"), "{err}");
    let (code, _, err) = run(&["grant", GUILD, USER, "700000000000000008", "--reason", "x"], &db);
    assert_eq!(code, 1);
    assert!(err.contains("not for sale"), "{err}");
    let (code, _, err) = run(&["subs", "show", "42"], &db);
    assert_eq!(code, 1);
    assert!(err.contains("no entitlement 42"), "{err}");
    assert_eq!(json(&run(&["subs", "list", "--json"], &db).1), serde_json::json!([]));
}

#[test]
fn export_writes_one_csv_row_per_entitlement() {
    let db = temp_db();
    guild_with_a_role(&db, "lifetime");
    for user in [USER, "222222222222222222"] {
        assert_eq!(run(&["grant", GUILD, user, ROLE, "--reason", "comp"], &db).0, 0);
    }
    let (code, out, err) = run(&["export", "--guild", GUILD, "--format", "csv"], &db);
    assert_eq!(code, 0, "{err}");
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let headers = reader.headers().expect("header row").clone();
    assert_eq!(&headers[2], "user_id");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!((&rows[0][2], &rows[0][4], &rows[0][6]), (USER, "manual", "active"));
    assert_eq!(&rows[0][7], "", "a lifetime grant has no end");
    let (code, _, err) = run(&["export", "--guild", GUILD, "--format", "xlsx"], &db);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["export", "--guild", "1"], &db);
    assert_eq!(code, 1);
    assert!(err.contains("not registered"), "{err}");
}

#[test]
fn export_writes_recorded_payments_with_decimal_amounts() {
    use docobo_core::domain::*;
    use docobo_core::ports::{Commit, Ledger};
    let db = temp_db();
    guild_with_a_role(&db, "lifetime");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let repo = docobo_adapters::seaorm::SeaOrmRepo::connect(&db, None).await.expect("opens");
        let at = time::macros::datetime!(2026-11-05 10:00 UTC);
        let usd = |minor| Money { minor, currency: Currency::Usd };
        let payment = Payment {
            provider: ProviderName::POLAR,
            guild: GUILD.parse().expect("id"),
            reference: "ord_1".parse().expect("ref"),
            user: USER.parse().ok(),
            role: ROLE.parse().ok(),
            amount: usd(1250),
            refunded: usd(250),
            paid_at: at,
        };
        let commit = Commit { cause: "test".into(), payments: vec![payment], ..Commit::new(at) };
        repo.commit(commit).await.expect("commits");
    });
    let (code, out, err) = run(&["export", "--guild", GUILD, "--data", "payments"], &db);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!(
            "provider,reference,user_id,role_id,amount,refunded,currency,paid_at\n\
             polar,ord_1,{USER},{ROLE},12.50,2.50,USD,2026-11-05T10:00:00Z\n"
        )
    );
}

#[test]
fn check_prints_the_redacted_configuration_and_diagnoses_discord() {
    use docobo_adapters::simulator::discord::FakeDiscord;
    let db = temp_db();
    guild_with_a_role(&db, "lifetime");
    run(
        &[
            "role",
            "add",
            GUILD,
            "700000000000000009",
            "--price",
            "1",
            "--currency",
            "USD",
            "--term",
            "lifetime",
            "--polar-product",
            "prod_above",
        ],
        &db,
    );
    assert_eq!(run(&["provider", "set", GUILD, "polar", "--webhook-secret", "whsec_abc"], &db).0, 0);
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let fake = rt.block_on(FakeDiscord::start(555)).expect("fake");
    let guild: u64 = GUILD.parse().expect("id");
    fake.add_guild(guild);
    fake.add_role(guild, 700000000000000007, "VIP", 1);
    fake.add_role(guild, 700000000000000009, "Above the bot", 50);
    let check = |token: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_docobo"));
        command
            .arg("check")
            .env("DOCOBO_DATABASE_URL", &db)
            .env("DOCOBO_SECRET_KEY", KEY)
            .env("DOCOBO_DISCORD_API_URL", &fake.base_url)
            .env("DOCOBO_ADMIN_TOKEN", "admin-secret-0123456789");
        match token {
            Some(t) => command.env("DISCORD_BOT_TOKEN", t),
            None => command.env_remove("DISCORD_BOT_TOKEN"),
        };
        let out = command.output().expect("runs");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, out, _) = check(None);
    assert_eq!(code, Some(1));
    assert!(out.contains("DISCORD_BOT_TOKEN is not set"), "{out}");
    assert!(
        out.contains(&format!("[FAIL] server {GUILD} role {ROLE} (Role {ROLE}): no provider sells it")),
        "{out}"
    );
    assert!(
        out.contains("role 700000000000000009 (Role 700000000000000009): on sale through Polar"),
        "{out}"
    );

    let (code, out, err) = check(Some("bot-token-value"));
    assert_eq!(code, Some(1), "one role has no provider and one is above the bot: {out}{err}");
    assert!(out.contains("[ok] the bot token works"), "{out}");
    assert!(out.contains("the bot is a member"), "{out}");
    assert!(out.contains("[ok]   role 700000000000000007"), "{out}");
    assert!(out.contains("[FAIL]   role 700000000000000009") && out.contains("drag the bot's role"), "{out}");
    assert!(err.contains("2 problem(s) found"), "{err}");
    for secret in ["bot-token-value", "admin-secret-0123456789"] {
        assert!(!out.contains(secret) && !err.contains(secret), "{secret} printed");
    }
    assert!(out.contains("DOCOBO_ADMIN_TOKEN      [redacted]"), "{out}");
}

#[test]
fn completions_are_printed_for_each_shell_without_a_database() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(env!("CARGO_BIN_EXE_docobo"))
            .args(["completions", shell])
            .env("DOCOBO_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("docobo"), "{shell}");
    }
}

#[test]
fn guild_set_changes_notice_settings_and_refuses_bad_ones_naming_them() {
    let db = temp_db();
    assert_eq!(run(&["guild", "add", GUILD, "--name", "My server"], &db).0, 0);
    let (code, out, err) =
        run(&["guild", "set", GUILD, "--remind", "7d,1d", "--welcome", "on", "--locale", "vi"], &db);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("guild {GUILD}: notices on, reminders 7d,1d, welcome on, language vi"));
    let (code, out, _) = run(&["guild", "set", GUILD, "--notices", "off"], &db);
    assert_eq!(code, 0);
    assert!(out.contains("notices off, reminders 7d,1d, welcome on"), "{out}");
    let (_, listed, _) = run(&["guild", "list", "--json"], &db);
    let listed: serde_json::Value = json(&listed);
    assert_eq!(listed[0]["remind"], "7d,1d");
    assert_eq!(listed[0]["notices"], "off");
    // Bad input: usage (exit 2) naming the value, and nothing changed.
    let (code, _, err) = run(&["guild", "set", GUILD, "--remind", "3w"], &db);
    assert_eq!(code, 2);
    assert!(err.contains("\"3w\""), "{err}");
    let (code, _, err) = run(&["guild", "set", GUILD, "--welcome", "maybe"], &db);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["guild", "set", GUILD], &db);
    assert_eq!(code, 2);
    assert!(err.contains("nothing to change"), "{err}");
    let (code, _, err) = run(&["guild", "set", "1", "--notices", "on"], &db);
    assert_eq!(code, 1);
    assert!(err.contains("not registered"), "{err}");
    let (_, listed, _) = run(&["guild", "list", "--json"], &db);
    assert!(listed.contains("\"7d,1d\""), "{listed}");
}

#[test]
fn relays_are_added_listed_checked_for_leaks_and_removed() {
    use docobo_adapters::simulator::discord::FakeDiscord;
    let db = temp_db();
    let (source_guild, target_guild) = ("111000000000000001", "222000000000000001");
    let add = ["relay", "add", source_guild, "111000000000000100", target_guild, "222000000000000101"];
    let (code, out, err) =
        run(&[&add[..], &["--name", "vip feed", "--role", "222000000000000999"]].concat(), &db);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("relay 1: channel 111000000000000100") && out.contains("via webhook"), "{out}");
    let (code, _, err) = run(&add, &db);
    assert_eq!(code, 1, "the same pair twice");
    assert!(err.contains("already exists"), "{err}");
    let same = ["relay", "add", source_guild, "111000000000000100", source_guild, "111000000000000100"];
    assert_eq!(run(&same, &db).0, 2, "a channel into itself is a usage error");
    assert_eq!(
        run(&[&add[..], &["--via", "pigeon"]].concat(), &db).0,
        2,
        "an unknown --via is a usage error"
    );
    let (_, listed, _) = run(&["relay", "list", "--json"], &db);
    let listed = json(&listed);
    assert_eq!(listed[0]["name"], "vip feed");
    assert_eq!(listed[0]["target_channel_id"], "222000000000000101");
    assert_eq!(listed[0]["access_role_id"], "222000000000000999");

    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let fake = rt.block_on(FakeDiscord::start(555)).expect("fake");
    for guild in [source_guild, target_guild] {
        let id: u64 = guild.parse().expect("id");
        fake.add_guild(id);
        // Every member views and reads history; the bot's role may manage webhooks.
        fake.set_role_permissions(id, id, (1 << 10) | (1 << 16));
        fake.set_role_permissions(id, id + 1, 1 << 29);
    }
    fake.set_channel(source_guild.parse().expect("id"), 111000000000000100, serde_json::json!([]));
    fake.set_channel(target_guild.parse().expect("id"), 222000000000000101, serde_json::json!([]));
    let out = Command::new(env!("CARGO_BIN_EXE_docobo"))
        .arg("check")
        .env("DOCOBO_DATABASE_URL", &db)
        .env("DOCOBO_DISCORD_API_URL", &fake.base_url)
        .env("DISCORD_BOT_TOKEN", "bot-token-value")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("[FAIL] relay 1: channel 111000000000000100 → channel 222000000000000101 via webhook: everyone in server 222000000000000001 can read the target channel"), "{stdout}");
    assert!(
        stdout.contains("--role 222000000000000999 is not a paid role in server 222000000000000001"),
        "{stdout}"
    );

    assert_eq!(run(&["relay", "remove", "1"], &db).0, 0);
    let (code, _, err) = run(&["relay", "remove", "1"], &db);
    assert_eq!(code, 1);
    assert!(err.contains("no relay 1"), "{err}");
}
