//! Standard Webhooks signatures as Polar (and, UNCONFIRMED, Sell.app's newer webhooks) send them.
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{raw body}`; `webhook-signature` holds
//! one or more space-separated `v1,<base64 HMAC-SHA256>` entries, any of which may match. Polar
//! derives the HMAC key in one of two ways depending on when the endpoint's secret was made
//! (reference `providers.md` §1.1): the standard way, base64-decoding what follows `whsec_`, and
//! the legacy way, the UTF-8 bytes of the whole secret string. Both are tried; a secret that is not
//! valid base64 simply has no standard key.
//!
//! The cost of a check is bounded whatever the sender puts in the headers: the expected tag is
//! computed once per key (at most two MACs over the body), each candidate is compared with it in
//! constant time (`subtle`), and a `webhook-signature` longer than [`MAX_SIGNATURE_HEADER`] bytes
//! or with more than [`MAX_SIGNATURES`] entries is refused before any MAC is computed. (Standard
//! Webhooks senders put one entry per active secret: one, two during a rotation.)

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use docobo_core::domain::Timestamp;
use docobo_core::ports::{Headers, VerifyError};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far `webhook-timestamp` may be from now, either way.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;
/// Most `v1,` entries read from `webhook-signature`.
pub const MAX_SIGNATURES: usize = 8;
/// Longest `webhook-signature` accepted, in bytes: eight entries of 48 bytes with room to spare.
pub const MAX_SIGNATURE_HEADER: usize = 1024;

/// The candidate HMAC keys for a Polar secret: standard first (when it decodes), then legacy.
pub fn keys(secret: &str) -> Vec<Vec<u8>> {
    let mut keys = Vec::with_capacity(2);
    if let Some(encoded) = secret.strip_prefix("whsec_")
        && let Ok(key) = STANDARD.decode(encoded)
        && !key.is_empty()
    {
        keys.push(key);
    }
    keys.push(secret.as_bytes().to_vec());
    keys
}

fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `v1,<base64>` for `body` under `key`: what Polar puts in `webhook-signature`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1,{}", STANDARD.encode(mac(key, id, &timestamp.to_string(), body).finalize().into_bytes()))
}

/// The three headers Polar sends with `body` (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`), signed under `key`: for tests, the demo and examples that play Polar.
pub fn headers(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Headers {
    Headers::new()
        .with("webhook-id", id)
        .with("webhook-timestamp", timestamp.to_string())
        .with("webhook-signature", sign(key, id, timestamp, body))
}

/// Checks the three headers against `secret` at `now`, with Polar's two key derivations.
pub fn verify(headers: &Headers, body: &[u8], secret: &str, now: Timestamp) -> Result<(), VerifyError> {
    verify_keys(headers, body, &keys(secret), now)
}

/// Checks the three headers at `now` against HMAC keys given outright (Sell.app keys with the
/// secret's UTF-8 bytes only).
pub fn verify_keys(
    headers: &Headers,
    body: &[u8],
    keys: &[Vec<u8>],
    now: Timestamp,
) -> Result<(), VerifyError> {
    let id = headers.get("webhook-id").ok_or(VerifyError::MissingHeader("webhook-id"))?;
    let timestamp =
        headers.get("webhook-timestamp").ok_or(VerifyError::MissingHeader("webhook-timestamp"))?;
    let signatures =
        headers.get("webhook-signature").ok_or(VerifyError::MissingHeader("webhook-signature"))?;
    let sent: i64 =
        timestamp.trim().parse().map_err(|_| VerifyError::MalformedHeader("webhook-timestamp"))?;
    let skew = now.unix_timestamp().saturating_sub(sent);
    if skew.abs() > TOLERANCE_SECONDS {
        return Err(VerifyError::Stale { skew_seconds: skew });
    }
    if signatures.len() > MAX_SIGNATURE_HEADER || signatures.split_whitespace().nth(MAX_SIGNATURES).is_some()
    {
        return Err(VerifyError::MalformedHeader("webhook-signature"));
    }
    let candidates: Vec<Vec<u8>> = signatures
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .collect();
    if candidates.is_empty() {
        return Err(VerifyError::MalformedHeader("webhook-signature"));
    }
    let matched = keys.iter().any(|key| {
        let expected = mac(key, id, timestamp.trim(), body).finalize().into_bytes();
        // Every candidate is compared, so the time does not tell which entry matched.
        candidates
            .iter()
            .fold(subtle::Choice::from(0), |found, sig| found | expected.as_slice().ct_eq(sig))
            .into()
    });
    if matched { Ok(()) } else { Err(VerifyError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn at(ts: i64) -> Timestamp {
        OffsetDateTime::from_unix_timestamp(ts).expect("valid")
    }

    fn headers(id: &str, ts: i64, sig: &str) -> Headers {
        Headers::new()
            .with("webhook-id", id)
            .with("webhook-timestamp", ts.to_string())
            .with("webhook-signature", sig)
    }

    const POLAR_BODY: &[u8] =
        br#"{"type":"subscription.active","timestamp":"2025-01-01T00:00:00Z","data":{"id":"x"}}"#;
    const LEGACY: &str = "whsec_ovyN6cPrTv56AApvzCaJno08SSmGJmgbWilb33N2JuK";
    const STANDARD_SECRET: &str = "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

    #[test]
    fn the_standard_webhooks_spec_vectors_verify() {
        let body = br#"{"test": 2432232314}"#;
        let h = headers(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        );
        assert_eq!(verify(&h, body, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", at(1614265330)), Ok(()));
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let h = headers(
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        );
        assert_eq!(verify(&h, body, "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", at(1649367553)), Ok(()));
    }

    #[test]
    fn both_polar_key_derivations_verify_and_are_not_confused() {
        let legacy = headers("msg_2ZpZ7x", 1735689600, "v1,w6JWMVhS84luKvK738zemffSPEi1KN9uHyJg475gaZM=");
        assert_eq!(verify(&legacy, POLAR_BODY, LEGACY, at(1735689600)), Ok(()));
        let standard = headers("msg_2ZpZ7x", 1735689600, "v1,lqSyE7/tGLi6wmlkl9G5s7zUY67+8wB/8ABA2NTe508=");
        assert_eq!(verify(&standard, POLAR_BODY, STANDARD_SECRET, at(1735689600)), Ok(()));
        // The standard secret signed the legacy way is also what an old endpoint would send.
        let legacy_of_standard =
            headers("msg_2ZpZ7x", 1735689600, "v1,JO7uOvDA6TtqYOqShb0HLe7JWPBZP+1wN846qNJBCQ4=");
        assert_eq!(verify(&legacy_of_standard, POLAR_BODY, STANDARD_SECRET, at(1735689600)), Ok(()));
        // But one secret's signature never passes under the other secret.
        assert_eq!(verify(&standard, POLAR_BODY, LEGACY, at(1735689600)), Err(VerifyError::Mismatch));
        assert_eq!(verify(&legacy, POLAR_BODY, STANDARD_SECRET, at(1735689600)), Err(VerifyError::Mismatch));
    }

    #[test]
    fn tampering_a_wrong_secret_or_reserialized_json_fail() {
        let ok = headers("msg_2ZpZ7x", 1735689600, "v1,w6JWMVhS84luKvK738zemffSPEi1KN9uHyJg475gaZM=");
        assert_eq!(verify(&ok, POLAR_BODY, "whsec_wrong", at(1735689600)), Err(VerifyError::Mismatch));
        let mut tampered = POLAR_BODY.to_vec();
        tampered[10] ^= 1;
        assert_eq!(verify(&ok, &tampered, LEGACY, at(1735689600)), Err(VerifyError::Mismatch));
        let value: serde_json::Value = serde_json::from_slice(POLAR_BODY).expect("json");
        let reserialized = serde_json::to_vec_pretty(&value).expect("json");
        assert_eq!(verify(&ok, &reserialized, LEGACY, at(1735689600)), Err(VerifyError::Mismatch));
    }

    #[test]
    fn timestamps_more_than_five_minutes_away_are_stale() {
        let key = LEGACY.as_bytes();
        for (sent, now) in [(1735689600, 1735689600 + 301), (1735689600 + 301, 1735689600)] {
            let h = headers("m", sent, &sign(key, "m", sent, POLAR_BODY));
            assert!(
                matches!(verify(&h, POLAR_BODY, LEGACY, at(now)), Err(VerifyError::Stale { .. })),
                "{sent} vs {now}"
            );
        }
        for (sent, now) in [(1735689600, 1735689600 + 300), (1735689600 + 300, 1735689600)] {
            let h = headers("m", sent, &sign(key, "m", sent, POLAR_BODY));
            assert_eq!(verify(&h, POLAR_BODY, LEGACY, at(now)), Ok(()));
        }
    }

    #[test]
    fn missing_or_malformed_headers_are_named() {
        let full = headers("m", 1, &sign(b"k", "m", 1, b"{}"));
        for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let partial: Headers = ["webhook-id", "webhook-timestamp", "webhook-signature"]
                .into_iter()
                .filter(|h| *h != missing)
                .map(|h| (h, full.get(h).unwrap_or_default().to_owned()))
                .collect();
            assert!(
                matches!(verify(&partial, b"{}", "k", at(1)), Err(VerifyError::MissingHeader(h)) if h == missing)
            );
        }
        assert_eq!(
            verify(&headers("m", 1, "v2,abc"), b"{}", "k", at(1)),
            Err(VerifyError::MalformedHeader("webhook-signature"))
        );
        let h = Headers::new()
            .with("webhook-id", "m")
            .with("webhook-timestamp", "soon")
            .with("webhook-signature", "v1,AA==");
        assert_eq!(verify(&h, b"{}", "k", at(1)), Err(VerifyError::MalformedHeader("webhook-timestamp")));
    }

    /// H1: a header flooded with `v1,` entries (100 k of them fit in hyper's header buffer) once
    /// cost a MAC over the whole body per entry and key: minutes of CPU per request. It is now
    /// refused before any MAC, and a header within the limits costs one MAC per key.
    #[test]
    fn h1_signature_header_flood_costs_two_macs() {
        let body = vec![b'x'; 1 << 20];
        let flood = "v1, ".repeat(95_000);
        let refused = verify(&headers("m", 1, &flood), &body, STANDARD_SECRET, at(1));
        assert_eq!(refused, Err(VerifyError::MalformedHeader("webhook-signature")));
        // Eight entries (the most accepted), none matching: two MACs, one per key, not sixteen.
        let eight = std::iter::repeat_n("v1,AAAA", MAX_SIGNATURES).collect::<Vec<_>>().join(" ");
        assert_eq!(
            verify(&headers("m", 1, &eight), &body, STANDARD_SECRET, at(1)),
            Err(VerifyError::Mismatch)
        );
        let nine = format!("{eight} {}", sign(LEGACY.as_bytes(), "m", 1, &body));
        assert_eq!(
            verify(&headers("m", 1, &nine), &body, LEGACY, at(1)),
            Err(VerifyError::MalformedHeader("webhook-signature")),
            "a ninth entry is refused even when it would match"
        );
    }

    #[test]
    fn any_matching_entry_among_several_signatures_is_enough() {
        let good = sign(LEGACY.as_bytes(), "m", 1735689600, POLAR_BODY);
        let h = headers("m", 1735689600, &format!("v1,AAAA v1a,zzz {good} v1,BBBB"));
        assert_eq!(verify(&h, POLAR_BODY, LEGACY, at(1735689600)), Ok(()));
    }
}
