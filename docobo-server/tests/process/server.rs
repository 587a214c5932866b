//! The `docobo-server` binary, started as an operator would: in an empty directory, with or
//! without configuration, and stopped with SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn empty_dir() -> PathBuf {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("docobo-server-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn command(dir: &PathBuf) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_docobo-server"));
    cmd.current_dir(dir).env_clear().env("DOCOBO_LISTEN", "127.0.0.1:0");
    cmd
}

/// Starts the server and waits for the line that announces its address.
fn start(cmd: &mut Command, dir: PathBuf) -> Server {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("starts");
    let addr = crate::announced(&mut child).trim_start_matches("http://").to_owned();
    Server { child, addr, dir }
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reads");
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[test]
fn with_no_configuration_it_starts_on_sqlite_and_ready_explains_what_is_missing() {
    let dir = empty_dir();
    let server = start(&mut command(&dir), dir.clone());
    assert_eq!(get(&server.addr, "/health"), (200, r#"{"status":"ok"}"#.to_owned()));
    let (status, body) = get(&server.addr, "/ready");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("DISCORD_BOT_TOKEN"), "{body}");
    assert!(!body.contains("database"), "the database should be fine: {body}");
    assert!(dir.join("docobo.db").exists(), "the embedded database was not created");
}

#[test]
fn with_a_bot_token_it_is_ready() {
    let dir = empty_dir();
    // A loopback Discord address: nothing in a test may reach the real one.
    let mut cmd = command(&dir);
    cmd.env("DISCORD_BOT_TOKEN", "test-token").env("DOCOBO_DISCORD_API_URL", "http://127.0.0.1:1");
    cmd.env("DOCOBO_GATEWAY", "off");
    let server = start(&mut cmd, dir.clone());
    let (status, body) = get(&server.addr, "/ready");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));
}

#[test]
fn a_bad_configuration_names_every_problem_and_exits_2() {
    let dir = empty_dir();
    let out = command(&dir)
        .env("DOCOBO_LISTEN", "localhost")
        .env("DOCOBO_DATABASE_URL", "mysql://x")
        .env("DOCOBO_SECRET_KEY", "dG9vLXNob3J0")
        .output()
        .expect("runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in ["DOCOBO_LISTEN", "DOCOBO_DATABASE_URL", "DOCOBO_SECRET_KEY"] {
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
    }
    assert!(!stderr.contains("dG9vLXNob3J0"), "the secret was printed: {stderr}");
}

#[cfg(unix)]
#[test]
fn sigterm_stops_it_cleanly() {
    let dir = empty_dir();
    let mut server = start(&mut command(&dir), dir.clone());
    assert_eq!(get(&server.addr, "/health").0, 200);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs").success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("waits") {
            break status;
        }
        assert!(Instant::now() < deadline, "still running 20 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
}

#[test]
fn responses_carry_security_headers_and_json_logs_never_show_a_secret() {
    let dir = empty_dir();
    let (token, key) = ("tok-VERY-SECRET-123", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
    let mut cmd = command(&dir);
    cmd.env("DISCORD_BOT_TOKEN", token).env("DOCOBO_SECRET_KEY", key);
    cmd.env("DOCOBO_DISCORD_API_URL", "http://127.0.0.1:1").env("DOCOBO_GATEWAY", "off");
    cmd.env("DOCOBO_LOG_FORMAT", "json").env("RUST_LOG", "debug");
    let mut server = start(&mut cmd, dir.clone());
    let mut stream = TcpStream::connect(&server.addr).expect("connects");
    // A client-chosen address must not reach the logs as the client's (review finding L1).
    write!(stream, "GET /health HTTP/1.1\r\nHost: x\r\nX-Real-IP: 6.6.6.6\r\nConnection: close\r\n\r\n")
        .expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reads");
    let headers = response.to_ascii_lowercase();
    for header in ["x-content-type-options: nosniff", "x-frame-options: deny", "content-security-policy:"] {
        assert!(headers.contains(header), "{header} missing: {response}");
    }
    let _ = get(&server.addr, "/ready");
    let _ = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status();
    let _ = server.child.wait();
    let mut logs = String::new();
    server.child.stderr.take().expect("stderr").read_to_string(&mut logs).expect("reads");
    assert!(logs.lines().any(|l| l.starts_with('{') && l.contains("\"level\"")), "no JSON log lines: {logs}");
    assert!(!logs.contains(token) && !logs.contains(key), "a secret reached the logs");
    assert!(!logs.contains("6.6.6.6"), "a spoofed X-Real-IP was logged: {logs}");
    assert!(logs.contains("127.0.0.1"), "the socket's address is logged: {logs}");
}

#[test]
fn docobo_toml_configures_the_server_and_an_address_over_the_rate_limit_gets_429() {
    let dir = empty_dir();
    std::fs::write(dir.join("docobo.toml"), "DOCOBO_RATE_LIMIT = 2\n").expect("writes the file");
    let server = start(&mut command(&dir), dir.clone());
    let statuses: Vec<u16> = (0..12).map(|_| get(&server.addr, "/health").0).collect();
    // Two per second with bursts of four: the first four pass, most of the rest are refused
    // (a slow machine may earn one or two back while the loop runs).
    assert_eq!(&statuses[..4], &[200; 4], "{statuses:?}");
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused >= 5, "the limit from docobo.toml applies: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s != 200 && **s != 429).count(), 0, "{statuses:?}");

    let dir = empty_dir();
    std::fs::write(dir.join("docobo.toml"), "DOCOBO_LISTNE = \"0.0.0.0:1\"\n").expect("writes the file");
    let out = command(&dir).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown key DOCOBO_LISTNE"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
