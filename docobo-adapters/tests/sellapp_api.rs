//! Sell.app's API against the fake on loopback: checking a key with one read, and resolving a
//! webhook that names only an order.

use docobo_adapters::sellapp::Sellapp;
use docobo_adapters::simulator::sellapp::FakeSellapp;
use docobo_core::domain::Secret;
use docobo_core::ports::{CredentialError, Headers, PaymentProvider, ProviderCredentials, ResolveError};
use serde_json::json;

fn creds(key: Option<&str>) -> ProviderCredentials {
    let mut c = ProviderCredentials::new(Secret::new("sellapp-signing-secret-0123"));
    c.api_token = key.map(Secret::new);
    c
}

#[tokio::test]
async fn a_key_is_checked_with_one_read_and_a_short_secret_is_refused() {
    let fake = FakeSellapp::start("good-key").await.expect("fake");
    let sellapp = Sellapp::new(fake.base_url.clone());
    assert_eq!(sellapp.check_credentials(&creds(None)).await, Ok(()), "no key: nothing to read");
    assert!(fake.requests().is_empty());
    assert_eq!(sellapp.check_credentials(&creds(Some("good-key"))).await, Ok(()));
    assert_eq!(fake.requests().len(), 1, "one cheap read");
    assert!(matches!(
        sellapp.check_credentials(&creds(Some("bad-key"))).await,
        Err(CredentialError::Invalid(_))
    ));
    fake.set_down(true);
    assert!(matches!(
        sellapp.check_credentials(&creds(Some("good-key"))).await,
        Err(CredentialError::Unavailable(_))
    ));
    let short = ProviderCredentials::new(Secret::new("short"));
    assert!(
        matches!(sellapp.check_credentials(&short).await, Err(CredentialError::Invalid(m)) if m.contains("16"))
    );
}

#[tokio::test]
async fn a_hint_resolves_from_the_api_and_says_why_when_it_cannot() {
    let fake = FakeSellapp::start("good-key").await.expect("fake");
    let sellapp = Sellapp::new(fake.base_url.clone());
    let hint = br#"{"event":"order.completed","data":{"id":7}}"#;
    let missing = sellapp.resolve(&Headers::new(), hint, &creds(Some("good-key"))).await;
    assert!(matches!(missing, Err(ResolveError::Unresolvable(m)) if m.contains("/v2/orders/7")));
    let no_key = sellapp.resolve(&Headers::new(), hint, &creds(None)).await;
    assert!(matches!(no_key, Err(ResolveError::Unresolvable(m)) if m.contains("--api-key")));
    fake.put_order(
        7,
        json!({ "id": 7, "status": "PAID", "line_items": [{ "id": 1, "product_id": 77, "product_variant_id": 301 }],
                "timeline": [{ "status": "PAID", "set_at": "2026-11-10T12:00:00Z" }] }),
        json!([{ "additional_information": [{ "key": "discord_user_id", "value": "123456789012345678" }] }]),
    );
    let parsed = sellapp.resolve(&Headers::new(), hint, &creds(Some("good-key"))).await.expect("resolves");
    assert_eq!(parsed.events.len(), 1);
    assert_eq!(parsed.events[0].subject.user.map(|u| u.get()), Some(123456789012345678));
    fake.set_down(true);
    let down = sellapp.resolve(&Headers::new(), hint, &creds(Some("good-key"))).await;
    assert!(matches!(down, Err(ResolveError::Unavailable(_))), "{down:?}");
}
