//! Verify + parse of one webhook per provider: the CPU cost of authenticating and understanding a
//! delivery before any database work. `cargo bench --bench providers`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use docobo::adapters::polar::{Polar, signature};
use docobo::adapters::sepay::Sepay;
use docobo::core::domain::Secret;
use docobo::core::ports::{Headers, PaymentProvider, ProviderCredentials};
use time::OffsetDateTime;

fn polar(c: &mut Criterion) {
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/docobo-adapters/tests/fixtures/polar/subscription_active.json");
    let body = std::fs::read(path).expect("fixture");
    let now = OffsetDateTime::now_utc();
    let ts = now.unix_timestamp();
    for (name, secret) in [
        ("polar/standard_secret", "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="),
        ("polar/legacy_secret", "whsec_ovyN6cPrTv56AApvzCaJno08SSmGJmgbWilb33N2JuK"),
    ] {
        // Signed with the key Polar would use for this kind of secret.
        let key = signature::keys(secret).remove(0);
        let headers = Headers::new()
            .with("webhook-id", "1b4e28ba-2fa1-11d2-883f-0016d3cca427")
            .with("webhook-timestamp", ts.to_string())
            .with(
                "webhook-signature",
                signature::sign(&key, "1b4e28ba-2fa1-11d2-883f-0016d3cca427", ts, &body),
            );
        let creds = ProviderCredentials::new(Secret::new(secret));
        let provider = Polar::default();
        c.bench_function(name, |b| {
            b.iter(|| {
                provider.verify(black_box(&headers), black_box(&body), &creds, now).expect("verifies");
                provider.parse(&headers, black_box(&body), &creds).expect("parses")
            })
        });
    }
}

fn sepay(c: &mut Criterion) {
    let body = br#"{"id":92704,"gateway":"MBBank","transactionDate":"2026-11-20 09:15:00","accountNumber":"0123499999","code":null,"content":"DCB7K2Q chuyen tien","transferType":"in","transferAmount":250000,"accumulated":0,"subAccount":null,"referenceCode":"FT123","description":""}"#;
    let mut creds = ProviderCredentials::new(Secret::new("sepay-api-key"));
    creds.settings.insert("account".into(), "0123499999".into());
    let headers = Headers::new().with("authorization", "Apikey sepay-api-key");
    let now = OffsetDateTime::now_utc();
    c.bench_function("sepay/apikey", |b| {
        b.iter(|| {
            Sepay.verify(black_box(&headers), black_box(body), &creds, now).expect("verifies");
            Sepay.parse(&headers, black_box(body), &creds).expect("parses")
        })
    });
}

criterion_group!(providers, polar, sepay);
criterion_main!(providers);
