//! Creating Polar checkouts and checking tokens, against the fake Polar API on loopback.

use docobo_adapters::polar::Polar;
use docobo_adapters::simulator::polar::FakePolar;
use docobo_core::domain::*;
use docobo_core::ports::{
    CheckoutError, CheckoutRequest, CredentialError, PaymentProvider, ProviderCredentials,
};
use time::macros::datetime;

fn request(product: Option<&str>) -> CheckoutRequest {
    let guild: GuildId = "987654321098765432".parse().expect("id");
    let role: RoleId = "700000000000000007".parse().expect("id");
    let price = Money::parse("5.00", Currency::Usd).expect("price");
    let mut paid_role = PaidRole::new(guild, role, "VIP", price, Term::Recurring).expect("role");
    if let Some(product) = product {
        paid_role.link(ProductLink::product(ProviderName::POLAR, product));
    }
    CheckoutRequest {
        checkout: Checkout {
            reference: "DCBJ0IN1".parse().expect("ref"),
            guild,
            user: "123456789012345678".parse().expect("id"),
            role,
            provider: ProviderName::POLAR,
            expected: price,
            created_at: datetime!(2026-11-22 00:00 UTC),
            expires_at: datetime!(2026-11-23 00:00 UTC),
        },
        paid_role,
        email: None,
    }
}

fn creds(token: Option<&str>) -> ProviderCredentials {
    let mut c = ProviderCredentials::new(Secret::new("whsec_abc"));
    c.api_token = token.map(Secret::new);
    c
}

#[tokio::test]
async fn a_checkout_carries_who_buys_what_to_polar() {
    let fake = FakePolar::start("polar_oat_good").await.expect("fake");
    let polar = Polar::new(&fake.base_url);
    let link = polar
        .create_checkout(&request(Some("prod_vip")), &creds(Some("polar_oat_good")))
        .await
        .expect("created");
    assert!(
        link.url.as_deref().is_some_and(|u| u.starts_with("https://sandbox.polar.sh/checkout/")),
        "{link:?}"
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/v1/checkouts/"));
    assert_eq!(sent.headers.get("authorization").map(String::as_str), Some("Bearer polar_oat_good"));
    let body: serde_json::Value = serde_json::from_slice(&sent.body).expect("json");
    assert_eq!(body["products"], serde_json::json!(["prod_vip"]));
    assert_eq!(body["metadata"]["discord_user_id"], "123456789012345678");
    assert_eq!(body["metadata"]["guild_id"], "987654321098765432");
    assert_eq!(body["metadata"]["paid_role_id"], "700000000000000007");
    assert_eq!(body["metadata"]["checkout_ref"], "DCBJ0IN1");
    assert_eq!(body["external_customer_id"], "discord:123456789012345678");
}

#[tokio::test]
async fn refusals_and_outages_are_told_apart() {
    let fake = FakePolar::start("polar_oat_good").await.expect("fake");
    let polar = Polar::new(&fake.base_url);
    let bad = polar.create_checkout(&request(Some("prod_vip")), &creds(Some("polar_oat_bad"))).await;
    assert!(matches!(&bad, Err(CheckoutError::Rejected(m)) if m.contains("access token")), "{bad:?}");
    fake.fail_next(503);
    let down = polar.create_checkout(&request(Some("prod_vip")), &creds(Some("polar_oat_good"))).await;
    assert!(matches!(down, Err(CheckoutError::Unavailable(_))), "{down:?}");
    let unlinked = polar.create_checkout(&request(None), &creds(Some("polar_oat_good"))).await;
    assert!(
        matches!(&unlinked, Err(CheckoutError::NotConfigured(m)) if m.contains("--polar-product")),
        "{unlinked:?}"
    );
    let no_token = polar.create_checkout(&request(Some("prod_vip")), &creds(None)).await;
    assert!(matches!(no_token, Err(CheckoutError::NotConfigured(_))));
    let nobody = Polar::new("http://127.0.0.1:1");
    let refused = nobody.create_checkout(&request(Some("prod_vip")), &creds(Some("polar_oat_good"))).await;
    assert!(matches!(refused, Err(CheckoutError::Unavailable(_))), "{refused:?}");
}

#[tokio::test]
async fn credentials_are_checked_against_polar() {
    let fake = FakePolar::start("polar_oat_good").await.expect("fake");
    let polar = Polar::new(&fake.base_url);
    assert_eq!(polar.check_credentials(&creds(Some("polar_oat_good"))).await, Ok(()));
    assert!(matches!(
        polar.check_credentials(&creds(Some("polar_oat_bad"))).await,
        Err(CredentialError::Invalid(_))
    ));
    let calls = fake.requests().len();
    assert_eq!(
        polar.check_credentials(&creds(None)).await,
        Ok(()),
        "webhooks only (docobo provider set polar without --access-token): nothing to ask Polar"
    );
    assert_eq!(fake.requests().len(), calls, "Polar was not called");
    let mut not_a_secret = creds(Some("polar_oat_good"));
    not_a_secret.webhook_secret = Secret::new("abc");
    assert!(
        matches!(polar.check_credentials(&not_a_secret).await, Err(CredentialError::Invalid(m)) if m.contains("whsec_"))
    );
    fake.fail_next(500);
    assert!(matches!(
        polar.check_credentials(&creds(Some("polar_oat_good"))).await,
        Err(CredentialError::Unavailable(_))
    ));
}
