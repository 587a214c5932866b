//! Polar (polar.sh): cards and subscriptions.
//!
//! - [`signature`]: Standard Webhooks verification with both of Polar's key derivations.
//! - [`parse`]: payloads → neutral events, decided by each object's state.
//! - [`Polar`]: the [`PaymentProvider`] that ties them together.

pub mod parse;
pub mod signature;

use async_trait::async_trait;
use docobo_core::domain::{ProviderKind, Timestamp};
use docobo_core::ports::{
    CheckoutError, CheckoutLink, CheckoutRequest, CredentialError, Headers, ParseError, ParsedWebhook,
    PaymentProvider, ProviderCredentials, VerifyError,
};

/// The Polar provider. `api_url` is `POLAR_API_URL` (production, sandbox or a local fake).
#[derive(Debug, Clone)]
pub struct Polar {
    pub api_url: String,
}

impl Default for Polar {
    fn default() -> Self {
        Polar { api_url: "https://api.polar.sh".to_owned() }
    }
}

#[async_trait]
impl PaymentProvider for Polar {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Polar
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
        _request: &CheckoutRequest,
        _credentials: &ProviderCredentials,
    ) -> Result<CheckoutLink, CheckoutError> {
        Err(CheckoutError::NotConfigured("creating Polar checkouts is not built yet".to_owned()))
    }

    async fn check_credentials(&self, _credentials: &ProviderCredentials) -> Result<(), CredentialError> {
        Err(CredentialError::Unavailable("checking Polar credentials is not built yet".to_owned()))
    }
}
