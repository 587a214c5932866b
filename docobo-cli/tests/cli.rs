//! The `docobo` binary, run as a user would: against a temporary database, checking output and
//! exit codes.

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
