//! The Polar adapter against fixtures built from Polar's own OpenAPI schemas
//! (`fixtures/polar/generate.py` validates every one with `jsonschema`).

use docobo_adapters::polar::{Polar, parse::parse, signature};
use docobo_core::domain::{ProviderName, Secret, UserId};
use docobo_core::machine::EventKind;
use docobo_core::ports::{Headers, PaymentProvider, ProviderCredentials, VerifyError};
use proptest::prelude::*;
use time::macros::datetime;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/polar/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn kinds(name: &str) -> Vec<EventKind> {
    let parsed = parse("wh_1".parse().expect("id"), &fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    parsed.events.iter().map(|e| e.event.kind).collect()
}

fn note(name: &str) -> String {
    let parsed = parse("wh_1".parse().expect("id"), &fixture(name)).expect("parses");
    assert!(parsed.events.is_empty(), "{name}: {:?}", parsed.events);
    parsed.note.expect("an ignored delivery says why")
}

const PERIOD_END: time::OffsetDateTime = datetime!(2026-11-01 11:59:50 UTC);

#[test]
fn every_fixture_parses() {
    let dir = format!("{}/tests/fixtures/polar", env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for entry in std::fs::read_dir(dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let body = std::fs::read(&path).expect("reads");
            let result = parse("wh_1".parse().expect("id"), &body);
            let expect_failure = path.ends_with("subscription_no_member.json");
            assert!(result.is_ok() || expect_failure, "{}: {result:?}", path.display());
            count += 1;
        }
    }
    assert!(count >= 20, "only {count} fixtures");
}

#[test]
fn an_active_subscription_grants_until_the_period_end() {
    assert_eq!(
        kinds("subscription_active"),
        [EventKind::PaymentSucceeded { access_until: Some(PERIOD_END) }, EventKind::CancelUndone]
    );
    assert_eq!(kinds("subscription_trialing"), kinds("subscription_active"));
    let parsed = parse("wh_1".parse().expect("id"), &fixture("subscription_active")).expect("parses");
    let e = &parsed.events[0];
    assert_eq!(e.entitlement_ref.as_ref().map(|r| r.as_str()), Some("7f3c9e1a-2b4d-4c8e-9f10-0a1b2c3d4e5f"));
    assert_eq!(e.subject.user, "123456789012345678".parse::<UserId>().ok());
    assert_eq!(e.subject.product.as_deref(), Some("d1e2f3a4-0000-4000-8000-000000000002"));
    assert_eq!(e.event.version.at(), datetime!(2026-10-01 12:00:03.1 UTC), "versioned by modified_at");
}

#[test]
fn a_cancellation_keeps_access_until_ends_at() {
    assert_eq!(
        kinds("subscription_canceled_at_period_end"),
        [
            EventKind::PaymentSucceeded { access_until: Some(PERIOD_END) },
            EventKind::CancelScheduled { access_until: PERIOD_END }
        ]
    );
    assert_eq!(kinds("subscription_uncanceled")[1], EventKind::CancelUndone);
}

#[test]
fn revocation_past_due_pause_and_incomplete_map_by_status() {
    assert_eq!(kinds("subscription_revoked"), [EventKind::Revoked]);
    assert_eq!(kinds("subscription_revoked_unpaid"), [EventKind::Revoked]);
    assert_eq!(kinds("subscription_past_due")[1], EventKind::PaymentFailed);
    assert_eq!(
        kinds("subscription_paused"),
        [EventKind::CancelScheduled { access_until: datetime!(2026-10-20 00:00 UTC) }]
    );
    assert_eq!(kinds("subscription_created_incomplete"), [EventKind::PaymentPending]);
    let renewed = kinds("subscription_updated_renewed");
    assert_eq!(
        renewed[0],
        EventKind::PaymentSucceeded { access_until: Some(datetime!(2026-12-01 11:59:50 UTC)) }
    );
}

#[test]
fn paid_and_refunded_orders_report_their_money_and_subscriptions_and_pending_orders_none() {
    use docobo_core::domain::{Currency, Money};
    let payment = |name: &str| parse("wh_1".parse().expect("id"), &fixture(name)).expect("parses").payment;
    let usd = |minor| Money { minor, currency: Currency::Usd };
    let paid = payment("order_paid_one_time").expect("a paid order is money received");
    assert_eq!(paid.reference.as_str(), "0a0a0a0a-0000-4000-8000-00000000000a");
    assert_eq!((paid.amount, paid.refunded), (usd(500), usd(0)), "net_amount, before taxes");
    assert_eq!(paid.at, datetime!(2026-10-01 11:59:51 UTC));
    let partial = payment("order_refunded_partial").expect("still money received");
    assert_eq!((partial.amount, partial.refunded), (usd(500), usd(200)));
    // A renewal order grants nothing itself, but its money is recorded, with who paid for what.
    let renewal = payment("order_paid_subscription_cycle").expect("renewal revenue");
    assert_eq!(renewal.subject.user, "123456789012345678".parse::<UserId>().ok());
    assert_eq!(renewal.subject.product.as_deref(), Some("d1e2f3a4-0000-4000-8000-000000000002"));
    assert_eq!(payment("order_created_pending"), None);
    assert_eq!(payment("subscription_active"), None, "subscriptions carry access, orders carry money");
}

#[test]
fn only_a_paid_one_time_order_grants_and_only_a_full_refund_revokes() {
    assert_eq!(kinds("order_paid_one_time"), [EventKind::PaymentSucceeded { access_until: None }]);
    assert_eq!(kinds("order_created_pending"), [EventKind::PaymentPending]);
    assert_eq!(kinds("order_refunded_full"), [EventKind::Refunded { full: true }]);
    assert_eq!(kinds("order_refunded_partial"), [EventKind::Refunded { full: false }]);
    assert!(note("order_paid_subscription_cycle").contains("subscription"));
}

#[test]
fn m3_a_one_time_order_says_it_never_renews_and_a_subscription_does_not() {
    let one_time = |name: &str| {
        let parsed = parse("wh_1".parse().expect("id"), &fixture(name)).expect("parses");
        parsed.events.iter().map(|e| e.subject.one_time).collect::<Vec<_>>()
    };
    assert_eq!(one_time("order_paid_one_time"), [true]);
    assert!(one_time("subscription_active").iter().all(|t| !t));
}

#[test]
fn unknown_types_are_ignored_with_a_note() {
    assert!(note("checkout_created").contains("checkout.created"));
    assert!(note("benefit_grant_created").contains("does not affect access"));
}

#[test]
fn metadata_may_hold_integers_and_null_modified_at_falls_back() {
    let parsed =
        parse("wh_1".parse().expect("id"), &fixture("subscription_integer_user_id")).expect("parses");
    assert_eq!(parsed.events[0].subject.user, "123456789012345678".parse::<UserId>().ok());
    let parsed =
        parse("wh_1".parse().expect("id"), &fixture("subscription_modified_at_null")).expect("parses");
    assert_eq!(parsed.events[0].event.version.at(), datetime!(2026-10-01 11:59:50.001 UTC));
}

#[test]
fn a_subscription_without_a_member_parses_and_leaves_identification_to_ingest() {
    let parsed = parse("wh_1".parse().expect("id"), &fixture("subscription_no_member")).expect("parses");
    assert_eq!(parsed.events[0].subject.user, None);
}

#[test]
fn the_provider_reads_the_delivery_id_from_webhook_id() {
    let body = fixture("subscription_active");
    let secret = "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
    let now = datetime!(2026-10-01 12:00:05 UTC);
    let ts = now.unix_timestamp();
    let key = signature::keys(secret).remove(0);
    let headers = Headers::new()
        .with("webhook-id", "1b4e28ba-2fa1-11d2-883f-0016d3cca427")
        .with("webhook-timestamp", ts.to_string())
        .with("webhook-signature", signature::sign(&key, "1b4e28ba-2fa1-11d2-883f-0016d3cca427", ts, &body));
    let creds = ProviderCredentials::new(Secret::new(secret));
    let polar = Polar::default();
    assert_eq!(polar.name(), ProviderName::POLAR);
    assert_eq!(polar.verify(&headers, &body, &creds, now), Ok(()));
    let parsed = polar.parse(&headers, &body, &creds).expect("parses");
    assert_eq!(parsed.event_id.as_str(), "1b4e28ba-2fa1-11d2-883f-0016d3cca427");
    let wrong = ProviderCredentials::new(Secret::new("whsec_someone_else"));
    assert_eq!(polar.verify(&headers, &body, &wrong, now), Err(VerifyError::Mismatch));
}

proptest! {
    #[test]
    fn arbitrary_bytes_and_headers_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..512),
        id in "\\PC{0,40}",
        ts in "\\PC{0,20}",
        sig in "\\PC{0,120}",
        secret in "\\PC{0,60}",
    ) {
        let headers = Headers::new().with("webhook-id", id).with("webhook-timestamp", ts).with("webhook-signature", sig);
        let creds = ProviderCredentials::new(Secret::new(secret));
        let polar = Polar::default();
        let _ = polar.verify(&headers, &body, &creds, datetime!(2026-10-01 12:00 UTC));
        let _ = polar.parse(&headers, &body, &creds);
    }

    #[test]
    fn arbitrary_json_shapes_never_panic(kind in "(subscription|order|checkout)\\.[a-z_]{1,10}", data in "\\PC{0,200}") {
        let body = format!(r#"{{"type":"{kind}","timestamp":"2026-10-01T12:00:00Z","data":{data}}}"#);
        let _ = parse("wh_1".parse().expect("id"), body.as_bytes());
    }
}
