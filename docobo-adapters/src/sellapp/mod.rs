//! Sell.app (sell.app): storefront orders as fixed-term access (reference `sellapp-relay-dm.md`
//! part A, `providers.md` §3).
//!
//! - **Verification** accepts either of Sell.app's schemes: `Signature`, the lowercase hex
//!   HMAC-SHA256 of the raw body under the webhook secret (documented), or the Standard Webhooks
//!   set (`webhook-id`, `webhook-timestamp` within ±5 min, `webhook-signature: v1,<base64>`)
//!   keyed with the secret's UTF-8 bytes (UNCONFIRMED: seen in third-party code, fits the SDK's
//!   hints). Both compare in constant time.
//! - **The buyer**, first match wins: the checkout `/join` made (the order's `docobo_checkout`
//!   answer), the `discord_user_id` custom field (or a "Discord ID" label), the invoice's
//!   `discord_data`; for a subscription, the customer's metadata `discord_user_id`.
//! - **Parsing** ([`parse`]): an order object with line items and the buyer's Discord id is
//!   applied at once; a webhook that only names the order is deferred, and [`Sellapp::resolve`]
//!   reads it from the API after the acknowledgement ([`api`]).
//! - **Credentials**: the webhook secret, the API key (`api_token`, needed to resolve hints and
//!   to read the event journal) and the store slug (setting `store`).
//! - **Reconciliation** ([`journal`]): Sell.app's 30-day event journal, read from a stored
//!   cursor, catches lost webhooks and refunds (for which Sell.app sends no webhook).

pub mod api;
#[cfg(feature = "seaorm")]
pub mod journal;
pub mod parse;

use std::collections::BTreeMap;

use async_trait::async_trait;
use docobo_core::domain::{ProviderName, Secret, Timestamp};
use docobo_core::ports::{
    CheckoutError, CheckoutLink, CheckoutRequest, CredentialError, Headers, ParseError, ParsedWebhook,
    PaymentProvider, ProviderCredentials, ResolveError, Sells, SetupField, VerifyError,
};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// The Sell.app provider, reading its API at `api_url` (`SELLAPP_API_URL`).
#[derive(Debug, Clone)]
pub struct Sellapp {
    api_url: String,
    client: reqwest::Client,
}

impl Sellapp {
    pub const NAME: ProviderName = ProviderName::known("sellapp");

    pub fn new(api_url: impl Into<String>) -> Self {
        Sellapp { api_url: api_url.into(), client: api::client() }
    }
}

impl Default for Sellapp {
    fn default() -> Self {
        Sellapp::new("https://sell.app/api")
    }
}

/// The lowercase hex HMAC-SHA256 of `body` under `secret`: what Sell.app sends as `Signature`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("any key length"));
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// The store slug, if configured.
fn store(credentials: &ProviderCredentials) -> Option<&str> {
    credentials.settings.get("store").map(|s| s.trim()).filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
struct OrderId {
    event: String,
    #[serde(default)]
    data: serde_json::Value,
}

#[async_trait]
impl PaymentProvider for Sellapp {
    fn name(&self) -> ProviderName {
        Self::NAME
    }

    /// Storefront orders, found by product (and variant).
    fn sells(&self) -> Sells {
        Sells { needs_product: true, ..Sells::ANYTHING }
    }

    fn payment_method(&self) -> &str {
        "Card, PayPal or crypto, via the Sell.app store"
    }

    fn setup_form(&self) -> &[SetupField] {
        const FORM: [SetupField; 4] = [
            SetupField {
                id: "webhook_secret",
                label: "Webhook signing secret",
                placeholder: "Store settings → Developers",
                required: true,
            },
            SetupField {
                id: "api_key",
                label: "API key (to read orders)",
                placeholder: "sell.app/user/api-tokens",
                required: false,
            },
            SetupField {
                id: "store",
                label: "Store slug",
                placeholder: "my-store (from my-store.sell.app)",
                required: false,
            },
            SetupField {
                id: "payment_method",
                label: "Payment method for /join orders",
                placeholder: "STRIPE (or PAYPAL, BTC, …)",
                required: false,
            },
        ];
        &FORM
    }

    fn credentials_from_form(
        &self,
        values: &BTreeMap<String, String>,
    ) -> Result<ProviderCredentials, CredentialError> {
        let get = |id: &str| SetupField::value(values, id);
        let mut credentials = ProviderCredentials::new(Secret::new(get("webhook_secret")));
        credentials.api_token = Some(Secret::new(get("api_key"))).filter(|k| !k.expose().is_empty());
        for key in ["store", "payment_method"] {
            if !get(key).is_empty() {
                credentials.settings.insert(key.to_owned(), get(key).to_owned());
            }
        }
        Ok(credentials)
    }

    fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        credentials: &ProviderCredentials,
        now: Timestamp,
    ) -> Result<(), VerifyError> {
        let secret = credentials.webhook_secret.expose();
        if let Some(given) = headers.get("signature") {
            let expected = Secret::new(signature(secret, body));
            return if expected.matches(given.trim()) { Ok(()) } else { Err(VerifyError::Mismatch) };
        }
        if headers.get("webhook-signature").is_some() {
            return crate::polar::signature::verify_keys(headers, body, &[secret.as_bytes().to_vec()], now);
        }
        Err(VerifyError::MissingHeader("signature"))
    }

    fn parse(
        &self,
        _headers: &Headers,
        body: &[u8],
        _credentials: &ProviderCredentials,
    ) -> Result<ParsedWebhook, ParseError> {
        parse::parse(body, None)
    }

    async fn resolve(
        &self,
        _headers: &Headers,
        body: &[u8],
        credentials: &ProviderCredentials,
    ) -> Result<ParsedWebhook, ResolveError> {
        let unreadable =
            |e: serde_json::Error| ResolveError::Unresolvable(format!("not a Sell.app webhook: {e}"));
        let hint: OrderId = serde_json::from_slice(body).map_err(unreadable)?;
        let id = hint.data.get("id").and_then(serde_json::Value::as_u64).ok_or_else(|| {
            ResolveError::Unresolvable("the webhook names no order or subscription id".to_owned())
        })?;
        let Some(key) = &credentials.api_token else {
            return Err(ResolveError::Unresolvable(format!(
                "the webhook only names {} {id}, and no Sell.app API key is configured to read it \
                 (docobo provider set <GUILD> sellapp --webhook-secret S --api-key K --store SLUG), then replay",
                hint.event.split('.').next().unwrap_or("order")
            )));
        };
        let access = api::Access {
            client: &self.client,
            base: &self.api_url,
            key: key.expose(),
            store: store(credentials),
        };
        let fetched = if hint.event.starts_with("subscription.") {
            parse::Fetched::Subscription(access.subscription(id).await?)
        } else {
            parse::Fetched::Order(access.order(id).await?)
        };
        parse::parse(body, Some(fetched)).map_err(|e| ResolveError::Unresolvable(e.reason))
    }

    fn needs_email(&self, credentials: &ProviderCredentials) -> bool {
        credentials.api_token.is_some()
    }

    /// With an API key: the order and its payment page, made through Sell.app's API with the
    /// member's email. Without one: how to buy in the store so the order names the member.
    async fn create_checkout(
        &self,
        request: &CheckoutRequest,
        credentials: &ProviderCredentials,
    ) -> Result<CheckoutLink, CheckoutError> {
        let (c, role) = (&request.checkout, &request.paid_role);
        let by_hand = || {
            CheckoutError::NotConfigured(format!(
                "buy {} in the server's Sell.app store, and enter your Discord id ({}) in the order's Discord ID field",
                role.name, c.user
            ))
        };
        let (Some(key), Some(email)) = (&credentials.api_token, &request.email) else {
            return Err(by_hand());
        };
        let Some(variant) =
            role.links.iter().find(|l| l.provider == Self::NAME).and_then(|l| l.variant.as_deref())
        else {
            return Err(by_hand());
        };
        let method = credentials.settings.get("payment_method").map_or("STRIPE", String::as_str);
        let answers = serde_json::json!({ "discord_user_id": c.user.to_string(), "docobo_checkout": c.reference.as_str() });
        let access = api::Access {
            client: &self.client,
            base: &self.api_url,
            key: key.expose(),
            store: store(credentials),
        };
        let url = access.checkout(c.reference.as_str(), email, method, variant, answers).await?;
        Ok(CheckoutLink::page(
            url,
            format!("Pay {} for {} on Sell.app's checkout page.", c.expected, role.name),
        ))
    }

    /// Checks the secret's length; with an API key, one cheap read proves it works.
    async fn check_credentials(&self, credentials: &ProviderCredentials) -> Result<(), CredentialError> {
        if credentials.webhook_secret.expose().trim().chars().count() < 16 {
            return Err(CredentialError::Invalid(
                "the webhook signing secret has fewer than 16 characters; generate one in the store's Developers settings"
                    .to_owned(),
            ));
        }
        let Some(key) = &credentials.api_token else { return Ok(()) };
        let access = api::Access {
            client: &self.client,
            base: &self.api_url,
            key: key.expose(),
            store: store(credentials),
        };
        match access.get_probe().await {
            Ok(()) => Ok(()),
            Err(ResolveError::Unavailable(why)) => Err(CredentialError::Unavailable(why)),
            Err(ResolveError::Unresolvable(why)) => Err(CredentialError::Invalid(why)),
        }
    }
}

#[cfg(test)]
mod tests;
