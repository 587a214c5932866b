//! Polar (polar.sh): cards and subscriptions.
//!
//! - [`signature`]: Standard Webhooks verification with both of Polar's key derivations.
//! - [`parse`]: payloads → neutral events, decided by each object's state.
//! - [`Polar`]: the [`PaymentProvider`] that ties them together.

pub mod api;
pub mod parse;
pub mod signature;

use std::collections::BTreeMap;

use async_trait::async_trait;
use docobo_core::domain::{ProviderName, Secret, Timestamp};
use docobo_core::ports::{
    CheckoutError, CheckoutLink, CheckoutRequest, CredentialError, Headers, ParseError, ParsedWebhook,
    PaymentProvider, ProviderCredentials, Sells, SetupField, VerifyError,
};

/// The Polar provider.
#[derive(Debug, Clone)]
pub struct Polar {
    /// `POLAR_API_URL`: production, `https://sandbox-api.polar.sh`, or a local fake.
    pub api_url: String,
    client: reqwest::Client,
}

impl Polar {
    pub fn new(api_url: impl Into<String>) -> Self {
        Polar { api_url: api_url.into(), client: api::client() }
    }
}

impl Default for Polar {
    fn default() -> Self {
        Polar::new("https://api.polar.sh")
    }
}

#[async_trait]
impl PaymentProvider for Polar {
    fn name(&self) -> ProviderName {
        ProviderName::POLAR
    }

    /// Subscriptions and one-time orders in any currency Polar takes, found by product.
    fn sells(&self) -> Sells {
        Sells { needs_product: true, ..Sells::ANYTHING }
    }

    fn payment_method(&self) -> &str {
        "Card or subscription, via Polar"
    }

    fn setup_form(&self) -> &[SetupField] {
        const FORM: [SetupField; 2] = [
            SetupField {
                id: "webhook_secret",
                label: "Webhook secret",
                placeholder: "whsec_… (Polar → Settings → Webhooks)",
                required: true,
            },
            SetupField {
                id: "access_token",
                label: "Organization access token",
                placeholder: "polar_oat_… (for checkouts)",
                required: true,
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
        credentials.api_token = Some(Secret::new(get("access_token")));
        Ok(credentials)
    }

    fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        credentials: &ProviderCredentials,
        now: Timestamp,
    ) -> Result<(), VerifyError> {
        signature::verify(headers, body, credentials.webhook_secret.expose(), now)
    }

    fn parse(
        &self,
        headers: &Headers,
        body: &[u8],
        _credentials: &ProviderCredentials,
    ) -> Result<ParsedWebhook, ParseError> {
        // Verification already required the header; its id is the delivery id.
        let id = headers.get("webhook-id").unwrap_or_default();
        let event_id =
            id.parse().map_err(|e| ParseError { event_id: None, reason: format!("webhook-id: {e}") })?;
        parse::parse(event_id, body)
    }

    fn replay_headers(&self, event_id: &docobo_core::domain::EventId) -> Headers {
        Headers::new().with("webhook-id", event_id.as_str())
    }

    async fn create_checkout(
        &self,
        request: &CheckoutRequest,
        credentials: &ProviderCredentials,
    ) -> Result<CheckoutLink, CheckoutError> {
        let token = credentials.api_token.as_ref().ok_or_else(|| {
            CheckoutError::NotConfigured(
                "Polar needs an organization access token (--access-token)".to_owned(),
            )
        })?;
        api::create_checkout(&self.client, &self.api_url, token, request).await
    }

    async fn check_credentials(&self, credentials: &ProviderCredentials) -> Result<(), CredentialError> {
        if !credentials.webhook_secret.expose().starts_with("whsec_") {
            return Err(CredentialError::Invalid("a Polar webhook secret starts with whsec_".to_owned()));
        }
        // Without a token Docobo only receives webhooks (checkouts are made elsewhere); `/setup`'s
        // form asks for one, since `/join` needs it.
        match &credentials.api_token {
            Some(token) => api::check_token(&self.client, &self.api_url, token).await,
            None => Ok(()),
        }
    }
}
