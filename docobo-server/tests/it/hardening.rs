//! What an unauthenticated client can and cannot do to the server (review findings M1 and M7),
//! against the real server on loopback.

use std::time::Duration;

use crate::common::*;
use docobo_server::guard::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Waits (at most `within`) for the server to close `stream`: a read that ends or fails.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A 408 or other answer before closing.
            Ok(Ok(_)) => {}
        }
    }
}

/// M1: a client sending a header line every few seconds, or just holding a connection open, was
/// never closed by the server (poem gives hyper no timer, and its idle timeout is reset by every
/// byte), so a few thousand of them exhausted file descriptors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m1_slow_header_clients_and_a_thousand_idle_connections_do_not_stop_health() {
    let limits = Limits {
        head: Duration::from_secs(1),
        keep_alive: Duration::from_secs(1),
        body: Duration::from_secs(1),
    };
    let app = spawn_configured(|c| c.client_limits = limits).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(TcpStream::connect(&addr).await.expect("connects"));
    }
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(&addr).await.expect("connects");
        s.write_all(b"POST /webhooks/sepay/1 HTTP/1.1\r\nHost: x\r\n").await.expect("writes");
        slow.push(s);
    }
    let trickle = tokio::spawn(async move {
        // One more header line every 300 ms, for as long as the server keeps the connection.
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            for s in &mut slow {
                let _ = s.write_all(b"X-Slow: 1\r\n").await;
            }
        }
        slow
    });
    let health = app.http.get(format!("{}/health", app.base)).send().await.expect("answers");
    assert_eq!(health.status(), 200, "liveness answers beside 1,020 hostile connections");
    let mut slow = trickle.await.expect("trickle");
    for s in &mut slow {
        assert!(closed_by_server(s, Duration::from_secs(10)).await, "a slow-header client was closed");
    }
    for s in &mut idle {
        assert!(closed_by_server(s, Duration::from_secs(10)).await, "an idle connection was closed");
    }
    // A slow body gets 408 and the connection back.
    let mut s = TcpStream::connect(&addr).await.expect("connects");
    s.write_all(b"POST /webhooks/sepay/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .await
        .expect("writes");
    let mut answer = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut answer))
        .await
        .expect("answered")
        .expect("reads");
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&answer[..n])
    );
    let ok = app.http.get(format!("{}/health", app.base)).send().await.expect("answers");
    assert_eq!(ok.status(), 200);
}

/// M1: HTTP/2 without TLS multiplexes streams the server cannot account per connection; it is
/// refused (providers and Discord speak HTTP/1.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m1_h2c_is_refused() {
    let app = spawn_configured(|_| {}).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(&addr).await.expect("connects");
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.expect("writes");
    assert!(closed_by_server(&mut s, Duration::from_secs(10)).await);
}

/// M7: failed authentications cost an attacker nothing, so a SePay key could be guessed as fast
/// as the per-IP limit allowed, from as many addresses as they had. Now twenty failures in a
/// minute lock that guild's endpoint for that provider for a minute, for everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m7_repeated_failed_authentication_locks_the_endpoint_for_a_minute() {
    use docobo_core::domain::{Guild, ProviderName, Secret};
    use docobo_core::ports::{CatalogRepo, ProviderCredentials};
    const KEY: &str = "the-real-sepay-key-0123456789abcdef";
    let app = spawn_configured(|c| c.rate_limit = None).await;
    let guild = GUILD.parse().expect("id");
    app.repo.put_guild(&Guild::new(guild, "Shop")).await.expect("guild");
    let mut creds = ProviderCredentials::new(Secret::new(KEY));
    creds.settings.insert("account".into(), "0123499999".into());
    creds.settings.insert("bank".into(), "MBBank".into());
    app.repo.put_credentials(guild, ProviderName::SEPAY, &creds).await.expect("creds");
    let send = |key: String| {
        app.http
            .post(format!("{}/webhooks/sepay/{GUILD}", app.base))
            .header("authorization", format!("Apikey {key}"))
            .body(r#"{"id":1,"gateway":"MBBank","transactionDate":"2026-11-20 09:15:00","accountNumber":"0123499999","content":"x","transferType":"in","transferAmount":1}"#)
            .send()
    };
    for guess in 0..20 {
        assert_eq!(send(format!("guess-{guess}")).await.expect("answers").status(), 401);
    }
    let locked = send(KEY.to_owned()).await.expect("answers");
    assert_eq!(locked.status(), 429, "locked, even for the right key, so a guess learns nothing");
    let wait: u64 = locked.headers()["retry-after"].to_str().expect("text").parse().expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains(r#"outcome="locked""#), "the lockout is visible in /metrics");
}

#[tokio::test]
async fn webhooks_past_the_in_flight_cap_are_refused_at_once_with_retry_after() {
    let app = spawn_configured(|c| c.webhooks_in_flight = 2).await;
    let post = || app.http.post(format!("{}/webhooks/sepay/{GUILD}", app.base)).body("{}").send();
    // Two deliveries in flight (held here): the third is refused, not queued.
    let held = app.state.webhooks_in_flight.clone().acquire_many_owned(2).await.expect("permits");
    let refused = post().await.expect("request");
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    drop(held);
    let admitted = post().await.expect("request");
    assert_ne!(admitted.status(), 503, "refused with the cap free");
    let metrics = app.http.get(format!("{}/metrics", app.base)).send().await.expect("request");
    let text = metrics.text().await.expect("text");
    assert!(text.contains(r#"docobo_webhooks_total{outcome="busy",provider="sepay"} 1"#), "{text}");
}
