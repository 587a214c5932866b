use std::collections::BTreeMap;

use docobo_core::domain::{Checkout, Currency, Money, PaidRole, ProviderName, Secret, Term};
use docobo_core::machine::EventKind;
use docobo_core::ports::{CheckoutRequest, Headers, PaymentProvider, ProviderCredentials, VerifyError};
use time::macros::datetime;

use super::parse::codes_in;
use super::*;

const BODY: &str = r#"{"id":92704,"gateway":"Vietcombank","transactionDate":"2023-03-25 14:02:37","accountNumber":"0123499999","code":"DH12345","content":"DH12345 chuyen tien","transferType":"in","transferAmount":2277000,"accumulated":19077000,"subAccount":null,"referenceCode":"MBVCB.3278907687","description":""}"#;

fn creds(settings: &[(&str, &str)]) -> ProviderCredentials {
    let mut c = ProviderCredentials::new(Secret::new("sepay-key"));
    c.settings = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();
    c
}

const NOW: time::OffsetDateTime = datetime!(2025-01-01 00:00 UTC);

#[test]
fn the_api_key_must_come_as_apikey_and_match() {
    let c = creds(&[]);
    let ok = Headers::new().with("Authorization", "Apikey sepay-key");
    assert_eq!(Sepay.verify(&ok, b"{}", &c, NOW), Ok(()));
    let wrong = Headers::new().with("Authorization", "Apikey other-key");
    assert_eq!(Sepay.verify(&wrong, b"{}", &c, NOW), Err(VerifyError::Mismatch));
    let bearer = Headers::new().with("Authorization", "Bearer sepay-key");
    assert_eq!(Sepay.verify(&bearer, b"{}", &c, NOW), Err(VerifyError::MalformedHeader("authorization")));
    assert_eq!(
        Sepay.verify(&Headers::new(), b"{}", &c, NOW),
        Err(VerifyError::MissingHeader("authorization"))
    );
    let bare = Headers::new().with("Authorization", "sepay-key");
    assert_eq!(Sepay.verify(&bare, b"{}", &c, NOW), Err(VerifyError::MalformedHeader("authorization")));
}

#[test]
fn hmac_mode_matches_the_reference_vector_and_checks_the_clock() {
    let mut c = creds(&[("auth", "hmac")]);
    c.webhook_secret = Secret::new("whsec_test_sepay_secret");
    let body = BODY.as_bytes();
    let sig = "sha256=5a10f8eeb99b1c3cc38d7b0b21c845ecf6b568b1c0c9075251f9626a9581d570";
    assert_eq!(hmac_signature("whsec_test_sepay_secret", "1735689600", body), sig);
    let h = Headers::new().with("X-SePay-Timestamp", "1735689600").with("X-SePay-Signature", sig);
    assert_eq!(Sepay.verify(&h, body, &c, NOW), Ok(()));
    assert!(matches!(
        Sepay.verify(&h, body, &c, NOW + time::Duration::seconds(301)),
        Err(VerifyError::Stale { .. })
    ));
    let mut tampered = body.to_vec();
    tampered[5] = b'8';
    assert_eq!(Sepay.verify(&h, &tampered, &c, NOW), Err(VerifyError::Mismatch));
}

#[test]
fn a_transfer_becomes_a_payment_with_its_code_amount_and_bank_time() {
    let parsed =
        Sepay.parse(&Headers::new(), BODY.as_bytes(), &creds(&[("account", "0123499999")])).expect("parses");
    assert_eq!(parsed.event_id.as_str(), "92704");
    let e = &parsed.events[0];
    assert_eq!(e.event.kind, EventKind::PaymentSucceeded { access_until: None });
    assert_eq!(e.event.version.at(), datetime!(2023-03-25 07:02:37 UTC), "UTC+7 bank time");
    assert_eq!(e.subject.paid, Some(Money { minor: 2_277_000, currency: Currency::Vnd }));
    let codes: Vec<&str> = e.subject.checkout_refs.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes, ["DH12345"]);
    assert_eq!(e.entitlement_ref, None, "the matched checkout names the purchase");
}

#[test]
fn the_id_may_be_a_string_and_codes_are_found_in_the_memo() {
    let body = BODY
        .replace(r#""id":92704"#, r#""id":"a1b2-c3""#)
        .replace(r#""code":"DH12345""#, r#""code":null"#)
        .replace("DH12345 chuyen tien", "thanh toan dcb7k2q cam on");
    let parsed = Sepay.parse(&Headers::new(), body.as_bytes(), &creds(&[])).expect("parses");
    assert_eq!(parsed.event_id.as_str(), "a1b2-c3");
    assert_eq!(parsed.events[0].subject.checkout_refs[0].as_str(), "DCB7K2Q");
}

#[test]
fn codes_are_word_bounded() {
    let found = |s: &str| codes_in(s, "DCB").iter().map(|c| c.as_str().to_owned()).collect::<Vec<_>>();
    assert_eq!(found("DCB7K2Q chuyen tien"), ["DCB7K2Q"]);
    assert_eq!(found("MBVCB.123.DCB7K2Q.CT"), ["DCB7K2Q"]);
    assert!(found("ABCDCB7K2Q").is_empty());
    assert!(found("DCB").is_empty());
    assert_eq!(found("dcb1 and DCB2"), ["DCB1", "DCB2"]);
}

#[test]
fn outgoing_codeless_and_foreign_account_transfers_are_not_payments() {
    let out = BODY.replace(r#""transferType":"in""#, r#""transferType":"out""#);
    assert_eq!(
        Sepay.parse(&Headers::new(), out.as_bytes(), &creds(&[])).expect("parses").note.as_deref(),
        Some("outgoing transfer")
    );
    let codeless =
        BODY.replace(r#""code":"DH12345""#, r#""code":null"#).replace("DH12345 chuyen tien", "tien nha");
    let parsed = Sepay.parse(&Headers::new(), codeless.as_bytes(), &creds(&[])).expect("parses");
    assert!(parsed.events.is_empty() && parsed.note.is_some_and(|n| n.contains("DCB")));
    let err =
        Sepay.parse(&Headers::new(), BODY.as_bytes(), &creds(&[("account", "999")])).expect_err("foreign");
    assert_eq!(err.event_id.map(|e| e.as_str().to_owned()).as_deref(), Some("92704"));
    assert!(err.reason.contains("0123499999") && err.reason.contains("999"), "{}", err.reason);
}

#[test]
fn malformed_payloads_are_errors_with_the_id_when_readable() {
    let err = Sepay.parse(&Headers::new(), b"not json", &creds(&[])).expect_err("malformed");
    assert_eq!(err.event_id, None);
    let bad_date = BODY.replace("2023-03-25 14:02:37", "yesterday");
    let err = Sepay.parse(&Headers::new(), bad_date.as_bytes(), &creds(&[])).expect_err("bad date");
    assert!(err.event_id.is_some() && err.reason.contains("transactionDate"));
}

#[tokio::test]
async fn a_checkout_is_a_vietqr_image_and_the_code() {
    let c = creds(&[("bank", "MBBank"), ("account", "0123499999")]);
    let g = "1".parse().expect("id");
    let r = "2".parse().expect("id");
    let price = Money::parse("250000", Currency::Vnd).expect("price");
    let request = CheckoutRequest {
        checkout: Checkout {
            reference: "DCB7K2Q".parse().expect("ref"),
            guild: g,
            user: "3".parse().expect("id"),
            role: r,
            provider: ProviderName::SEPAY,
            expected: price,
            created_at: NOW,
            expires_at: NOW,
        },
        paid_role: PaidRole::new(g, r, "VIP", price, Term::Fixed { days: 30 }).expect("role"),
        email: None,
    };
    let link = Sepay.create_checkout(&request, &c).await.expect("checkout");
    assert_eq!(
        link.qr_image_url.as_deref(),
        Some("https://qr.sepay.vn/img?acc=0123499999&bank=MBBank&amount=250000&des=DCB7K2Q")
    );
    assert!(link.instructions.contains("DCB7K2Q") && link.instructions.contains("250000 VND"));
    let missing = Sepay.create_checkout(&request, &creds(&[])).await.expect_err("unconfigured");
    assert!(matches!(missing, CheckoutError::NotConfigured(_)));
    let long = ProviderCredentials { webhook_secret: Secret::new("k".repeat(MIN_KEY_CHARS)), ..c.clone() };
    assert!(Sepay.check_credentials(&long).await.is_ok());
    let err = Sepay.check_credentials(&creds(&[])).await.expect_err("incomplete").to_string();
    assert!(err.contains("bank") && err.contains("account"), "{err}");
}

/// M7: any non-empty key used to be accepted, so an owner could protect every transfer with
/// "1234". A short key is now refused with how to make a good one.
#[tokio::test]
async fn m7_a_short_sepay_key_is_refused() {
    let short = creds(&[("bank", "MBBank"), ("account", "0123499999")]);
    let err = Sepay.check_credentials(&short).await.expect_err("too short").to_string();
    assert!(err.contains("at least 32") && err.contains("openssl rand"), "{err}");
    assert!(!err.contains("sepay-key"), "the key itself is not echoed: {err}");
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_and_headers_never_panic(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        auth in "\\PC{0,60}",
        ts in "\\PC{0,20}",
        sig in "\\PC{0,80}",
        hmac in proptest::prelude::any::<bool>(),
    ) {
        let c = creds(if hmac { &[("auth", "hmac"), ("account", "1")] } else { &[("account", "1")] });
        let h = Headers::new().with("authorization", auth).with("x-sepay-timestamp", ts).with("x-sepay-signature", sig);
        let _ = Sepay.verify(&h, &body, &c, NOW);
        let _ = Sepay.parse(&h, &body, &c);
    }

    #[test]
    fn arbitrary_field_values_never_panic(id in "\\PC{0,12}", date in "\\PC{0,25}", amount in proptest::prelude::any::<i64>(), content in "\\PC{0,60}") {
        let body = serde_json::json!({"id": id, "transactionDate": date, "transferType": "in", "transferAmount": amount, "content": content, "code": null});
        let _ = Sepay.parse(&Headers::new(), body.to_string().as_bytes(), &creds(&[]));
    }
}
