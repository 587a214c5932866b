//! Verify + parse of one webhook per provider: the CPU cost of authenticating and understanding a
//! delivery before any database work. `cargo bench --bench providers`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use docobo::adapters::polar::{Polar, signature};
use docobo::adapters::sellapp;
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

/// Review finding H1: the worst Polar request an unauthenticated sender can make (a 1 MiB body
/// and a `webhook-signature` header full of `v1,` entries) next to an ordinary 1 MiB one. Before
/// the fix, each entry cost one HMAC over the body per key: `polar/one_mac_1mib` × 2 keys ×
/// 95,000 entries. Now a flooded header is refused before any MAC, and the most a header can cost
/// is eight entries under two keys: two MACs.
fn polar_worst_case(c: &mut Criterion) {
    let secret = "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
    let creds = ProviderCredentials::new(Secret::new(secret));
    let body = vec![b'x'; 1 << 20];
    let now = OffsetDateTime::now_utc();
    let ts = now.unix_timestamp();
    let headers = |signature: String| {
        Headers::new()
            .with("webhook-id", "m")
            .with("webhook-timestamp", ts.to_string())
            .with("webhook-signature", signature)
    };
    let key = signature::keys(secret).remove(0);
    let ordinary = headers(signature::sign(&key, "m", ts, &body));
    let flood = headers("v1, ".repeat(95_000));
    let widest =
        headers(std::iter::repeat_n("v1,AAAA", signature::MAX_SIGNATURES).collect::<Vec<_>>().join(" "));
    let provider = Polar::default();
    let mut group = c.benchmark_group("polar_1mib");
    group.sample_size(20);
    group.bench_function("one_mac_1mib", |b| b.iter(|| signature::sign(&key, "m", ts, black_box(&body))));
    group
        .bench_function("ordinary", |b| b.iter(|| provider.verify(black_box(&ordinary), &body, &creds, now)));
    group.bench_function("flooded_header", |b| {
        b.iter(|| provider.verify(black_box(&flood), &body, &creds, now))
    });
    group.bench_function("eight_wrong_entries", |b| {
        b.iter(|| provider.verify(black_box(&widest), &body, &creds, now))
    });
    group.finish();
}

fn sepay(c: &mut Criterion) {
    let body = br#"{"id":92704,"gateway":"MBBank","transactionDate":"2026-11-20 09:15:00","accountNumber":"0123499999","code":null,"content":"DCB7K2Q chuyen tien","transferType":"in","transferAmount":250000,"accumulated":0,"subAccount":null,"referenceCode":"FT123","description":""}"#;
    let mut creds = ProviderCredentials::new(Secret::new("sepay-api-key-0123456789abcdef01234"));
    creds.settings.insert("account".into(), "0123499999".into());
    let headers = Headers::new().with("authorization", "Apikey sepay-api-key-0123456789abcdef01234");
    let now = OffsetDateTime::now_utc();
    c.bench_function("sepay/apikey", |b| {
        b.iter(|| {
            Sepay.verify(black_box(&headers), black_box(body), &creds, now).expect("verifies");
            Sepay.parse(&headers, black_box(body), &creds).expect("parses")
        })
    });
}

fn sellapp(c: &mut Criterion) {
    let secret = "sellapp-webhook-signing-secret-0123";
    let body = serde_json::json!({
        "event": "order.completed", "store": 1,
        "data": {
            "id": 236, "status": "COMPLETED",
            "line_items": [{ "id": 1, "product_id": 77, "product_variant_id": 301, "quantity": 1 }],
            "totals": { "currency": "USD", "total_cents": 1000 },
            "timeline": [{ "status": "COMPLETED", "set_at": "2026-11-10T11:59:00Z" }],
            "additional_information": [{ "key": "discord_user_id", "value": "123456789012345678" }]
        }
    })
    .to_string()
    .into_bytes();
    let now = OffsetDateTime::now_utc();
    let headers = Headers::new().with("signature", sellapp::signature(secret, &body));
    let creds = ProviderCredentials::new(Secret::new(secret));
    let provider = sellapp::Sellapp::default();
    c.bench_function("sellapp/full_order", |b| {
        b.iter(|| {
            provider.verify(black_box(&headers), black_box(&body), &creds, now).expect("verifies");
            provider.parse(&headers, black_box(&body), &creds).expect("parses")
        })
    });
}

criterion_group!(providers, polar, polar_worst_case, sepay, sellapp);
criterion_main!(providers);
