//! Sell.app verification against the reference's test vectors, and parsing of full orders and
//! hints.

use docobo_core::machine::EventKind;
use proptest::prelude::*;
use time::macros::datetime;

use super::*;

/// `sellapp-relay-dm.md` §A1's test vectors.
const SECRET: &str = "sellapp-test-signing-secret-0123456789";
const BODY: &str = r#"{"event":"order.completed","version":1,"data":{"id":236},"store":1}"#;

fn creds() -> ProviderCredentials {
    ProviderCredentials::new(Secret::new(SECRET))
}

#[test]
fn both_signature_schemes_verify_and_anything_else_is_refused() {
    let sellapp = Sellapp::default();
    let now = datetime!(2025-01-01 00:00 UTC);
    let legacy =
        Headers::new().with("Signature", "f897ad99943cb32f212ef0e887daed27ec2565e1a89bdbd65a92171445da3555");
    assert_eq!(
        signature(SECRET, BODY.as_bytes()),
        "f897ad99943cb32f212ef0e887daed27ec2565e1a89bdbd65a92171445da3555"
    );
    assert_eq!(sellapp.verify(&legacy, BODY.as_bytes(), &creds(), now), Ok(()));
    let standard = Headers::new()
        .with("webhook-id", "01992b31-c8bd-75b5-b02d-6ae0aa418940")
        .with("webhook-timestamp", "1735689600")
        .with("webhook-signature", "v1,X6CHBOcJcCYDG0Adk/KhrYzMLBQYsl5YpL1l6QJQExM=");
    assert_eq!(sellapp.verify(&standard, BODY.as_bytes(), &creds(), now), Ok(()));

    let tampered = BODY.replace("236", "237");
    assert_eq!(sellapp.verify(&legacy, tampered.as_bytes(), &creds(), now), Err(VerifyError::Mismatch));
    assert_eq!(sellapp.verify(&standard, tampered.as_bytes(), &creds(), now), Err(VerifyError::Mismatch));
    let stale = now + time::Duration::minutes(6);
    assert!(matches!(
        sellapp.verify(&standard, BODY.as_bytes(), &creds(), stale),
        Err(VerifyError::Stale { .. })
    ));
    assert_eq!(
        sellapp.verify(&Headers::new(), BODY.as_bytes(), &creds(), now),
        Err(VerifyError::MissingHeader("signature"))
    );
}

/// A full `order.completed`: two units of the 30-day variant, bought by a member who typed their
/// Discord id into the custom field.
fn full(status: &str, event: &str) -> String {
    serde_json::json!({
        "event": event, "store": 1,
        "data": {
            "id": 236, "status": status,
            "line_items": [{ "id": 1, "product_id": 77, "product_variant_id": 301, "quantity": 2 }],
            "totals": { "currency": "USD", "total_cents": 2000 },
            "timeline": [{ "status": "COMPLETED", "set_at": "2026-11-01T10:00:00Z" },
                         { "status": "REFUNDED", "set_at": "2026-11-03T10:00:00Z" }],
            "additional_information": [{ "key": "discord_user_id", "label": "Discord ID", "value": "123456789012345678" }]
        }
    })
    .to_string()
}

#[test]
fn a_full_order_is_applied_at_once_one_event_per_line_with_its_units() {
    let parsed = parse::parse(full("COMPLETED", "order.completed").as_bytes(), None).expect("parses");
    assert_eq!(parsed.event_id.as_str(), "order.completed:236:completed");
    assert_eq!(parsed.deferred, None);
    let [event] = parsed.events.as_slice() else { panic!("{parsed:?}") };
    assert_eq!(event.entitlement_ref.as_ref().map(|r| r.as_str()), Some("236-1"));
    assert_eq!(event.event.kind, EventKind::PaymentSucceeded { access_until: None });
    assert_eq!(event.event.version.at(), datetime!(2026-11-01 10:00 UTC));
    let s = &event.subject;
    assert_eq!(
        (s.user.map(|u| u.get()), s.product.as_deref(), s.variant.as_deref()),
        (Some(123456789012345678), Some("77"), Some("301"))
    );
    assert!(s.one_time && s.paid_once && s.units == 2);
    assert_eq!(parsed.payment.map(|p| p.amount.to_string()), Some("20.00 USD".to_owned()));
}

#[test]
fn refunds_disputes_and_unpaid_statuses_map_to_access_as_they_should() {
    let refunded = parse::parse(full("REFUNDED", "order.updated").as_bytes(), None).expect("parses");
    assert_eq!(refunded.events[0].event.kind, EventKind::Refunded { full: true });
    assert_eq!(refunded.events[0].event.version.at(), datetime!(2026-11-03 10:00 UTC));
    let disputed = parse::parse(full("DISPUTING", "order.disputed").as_bytes(), None).expect("parses");
    assert_eq!(disputed.events[0].event.kind, EventKind::Disputed);
    let partial = parse::parse(full("PARTIAL", "order.partial_paid").as_bytes(), None).expect("parses");
    assert!(partial.events.is_empty() && partial.note.is_some(), "never grant on a partial payment");
    let feedback = parse::parse(br#"{"event":"feedback.created","data":{"id":9}}"#, None).expect("parses");
    assert!(feedback.events.is_empty() && feedback.note.is_some());
}

#[test]
fn a_hint_is_deferred_and_a_missing_discord_id_says_how_to_fix_it() {
    let hint = parse::parse(BODY.as_bytes(), None).expect("parses");
    assert_eq!(hint.event_id.as_str(), "order.completed:236:hint");
    assert!(hint.deferred.as_deref().is_some_and(|w| w.contains("order 236")), "{hint:?}");
    let with_evt = r#"{"event":"order.completed","event_id":"evt_01","data":{"id":236}}"#;
    assert_eq!(parse::parse(with_evt.as_bytes(), None).expect("parses").event_id.as_str(), "evt_01");

    let mut order: parse::Order = serde_json::from_value(
        serde_json::from_str::<serde_json::Value>(&full("PAID", "order.paid")).expect("json")["data"].clone(),
    )
    .expect("order");
    order.additional_information.clear();
    let failed = parse::parse(BODY.as_bytes(), Some(parse::Fetched::Order(order))).expect_err("no member");
    assert!(failed.reason.contains("discord_user_id"), "{failed}");
}

fn subscription(status: &str, cancel: bool) -> String {
    serde_json::json!({
        "event": "subscription.renewed",
        "data": {
            "id": 55, "status": status, "cancel_at_period_end": cancel, "product_variant_id": 401,
            "current_period_start": "2026-11-01T00:00:00Z", "current_period_end": "2026-12-01T00:00:00Z",
            "updated_at": "2026-11-01T00:00:05Z",
            "customer": { "id": 9, "email": "a@example.org", "metadata": { "discord_user_id": "123456789012345678" } }
        }
    })
    .to_string()
}

#[test]
fn subscriptions_follow_the_recurring_rules_on_their_own_purchase() {
    let end = datetime!(2026-12-01 00:00 UTC);
    let kind = |status: &str, cancel: bool| {
        let parsed = parse::parse(subscription(status, cancel).as_bytes(), None).expect("parses");
        parsed.events.first().map(|e| {
            assert_eq!(e.entitlement_ref.as_ref().map(|r| r.as_str()), Some("sub-55"));
            assert_eq!((e.subject.variant.as_deref(), e.subject.product.as_deref()), (Some("401"), None));
            assert!(!e.subject.one_time, "a subscription renews");
            e.event.kind
        })
    };
    assert_eq!(kind("ACTIVE", false), Some(EventKind::PaymentSucceeded { access_until: Some(end) }));
    assert_eq!(kind("TRIALING", false), Some(EventKind::PaymentSucceeded { access_until: Some(end) }));
    assert_eq!(kind("ACTIVE", true), Some(EventKind::CancelScheduled { access_until: end }));
    assert_eq!(kind("PAST_DUE", false), Some(EventKind::PaymentFailed));
    assert_eq!(kind("INCOMPLETE", false), None, "nothing paid yet");
    let hint = br#"{"event":"subscription.created","data":{"id":55}}"#;
    assert!(parse::parse(hint, None).expect("parses").deferred.is_some(), "read from the API");
    // The order that starts a subscription grants nothing itself.
    let mut order: serde_json::Value = serde_json::from_str(&full("PAID", "order.paid")).expect("json");
    order["data"]["line_items"][0]["subscription_id"] = serde_json::json!(55);
    let parsed = parse::parse(order.to_string().as_bytes(), None).expect("parses");
    assert!(parsed.events.is_empty() && parsed.note.is_some(), "{parsed:?}");
}

proptest! {
    #[test]
    fn arbitrary_bytes_and_headers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512),
                                               sig in ".{0,128}", id in ".{0,40}", ts in ".{0,20}") {
        let sellapp = Sellapp::default();
        let now = datetime!(2026-11-01 00:00 UTC);
        for headers in [Headers::new().with("signature", sig.clone()),
                        Headers::new().with("webhook-id", id.clone()).with("webhook-timestamp", ts.clone()).with("webhook-signature", sig.clone())] {
            let _ = sellapp.verify(&headers, &body, &creds(), now);
        }
        let _ = parse::parse(&body, None);
    }
}
