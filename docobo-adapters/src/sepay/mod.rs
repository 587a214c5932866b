//! SePay (sepay.vn): Vietnamese bank-transfer notifications, and VietQR checkouts.
//!
//! A member pays by bank transfer with a short code in the memo; SePay posts one webhook per
//! transaction (reference `providers.md` §2). The code is the only link between money and member,
//! so `/join` stores a checkout under it before showing the QR.
//!
//! Credentials: [`SepaySettings`] (the API key or HMAC secret, the bank, the account, the code
//! prefix and the authentication mode).

mod parse;
mod settings;

pub use settings::{SepayAuth, SepaySettings};

use std::collections::BTreeMap;

use async_trait::async_trait;
use docobo_core::domain::{Currency, ProviderName, Secret, Timestamp};
use docobo_core::ports::{
    CheckoutError, CheckoutLink, CheckoutRequest, CredentialError, Headers, ParseError, ParsedWebhook,
    PaymentProvider, ProviderCredentials, Sells, SetupField, VerifyError,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The code prefix when a guild has not chosen one.
pub const DEFAULT_CODE_PREFIX: &str = "DCB";

/// How far `X-SePay-Timestamp` may be from now in HMAC mode.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// The SePay provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sepay;

/// `sha256=<hex>` of `{timestamp}.{body}`, SePay's HMAC mode.
pub fn hmac_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("any key length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn verify_hmac(headers: &Headers, body: &[u8], secret: &Secret, now: Timestamp) -> Result<(), VerifyError> {
    let ts = headers.get("x-sepay-timestamp").ok_or(VerifyError::MissingHeader("x-sepay-timestamp"))?;
    let signature =
        headers.get("x-sepay-signature").ok_or(VerifyError::MissingHeader("x-sepay-signature"))?;
    let sent: i64 = ts.trim().parse().map_err(|_| VerifyError::MalformedHeader("x-sepay-timestamp"))?;
    let skew = now.unix_timestamp().saturating_sub(sent);
    if skew.abs() > TOLERANCE_SECONDS {
        return Err(VerifyError::Stale { skew_seconds: skew });
    }
    let expected = Secret::new(hmac_signature(secret.expose(), ts.trim(), body));
    if expected.matches(signature.trim()) { Ok(()) } else { Err(VerifyError::Mismatch) }
}

/// The shortest API key or HMAC secret accepted: 32 characters (128 bits as hex).
pub const MIN_KEY_CHARS: usize = 32;

fn verify_api_key(headers: &Headers, secret: &Secret) -> Result<(), VerifyError> {
    let auth = headers.get("authorization").ok_or(VerifyError::MissingHeader("authorization"))?;
    let (scheme, key) = auth.trim().split_once(' ').ok_or(VerifyError::MalformedHeader("authorization"))?;
    if !scheme.eq_ignore_ascii_case("apikey") {
        return Err(VerifyError::MalformedHeader("authorization"));
    }
    if secret.matches(key.trim()) { Ok(()) } else { Err(VerifyError::Mismatch) }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The VietQR image for paying `amount` đồng to the guild's account with `code` as the memo.
pub fn qr_image_url(bank: &str, account: &str, amount: i64, code: &str) -> String {
    format!(
        "https://qr.sepay.vn/img?acc={}&bank={}&amount={amount}&des={}",
        encode(account),
        encode(bank),
        encode(code)
    )
}

#[async_trait]
impl PaymentProvider for Sepay {
    fn name(&self) -> ProviderName {
        ProviderName::SEPAY
    }

    /// Bank transfers in đồng, each a one-off payment matched to its checkout by code.
    fn sells(&self) -> Sells {
        Sells { renewals: false, only_currency: Some(Currency::Vnd), needs_product: false }
    }

    fn payment_method(&self) -> &str {
        "Vietnamese bank transfer (VietQR), via SePay"
    }

    fn works_offline(&self) -> bool {
        true
    }

    /// SePay retries and raises incidents unless it reads exactly this.
    fn acknowledgement(&self) -> Option<&'static str> {
        Some(r#"{"success":true}"#)
    }

    fn setup_form(&self) -> &[SetupField] {
        &settings::FORM
    }

    fn credentials_from_form(
        &self,
        values: &BTreeMap<String, String>,
    ) -> Result<ProviderCredentials, CredentialError> {
        SepaySettings::from_form(values).map(|s| s.credentials())
    }

    fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        credentials: &ProviderCredentials,
        now: Timestamp,
    ) -> Result<(), VerifyError> {
        match SepaySettings::read(credentials).auth {
            SepayAuth::Hmac => verify_hmac(headers, body, &credentials.webhook_secret, now),
            SepayAuth::ApiKey => verify_api_key(headers, &credentials.webhook_secret),
        }
    }

    fn parse(
        &self,
        _headers: &Headers,
        body: &[u8],
        credentials: &ProviderCredentials,
    ) -> Result<ParsedWebhook, ParseError> {
        let settings = SepaySettings::read(credentials);
        let account = Some(settings.account.as_str()).filter(|a| !a.is_empty());
        parse::parse(body, account, &settings.code_prefix)
    }

    async fn create_checkout(
        &self,
        request: &CheckoutRequest,
        credentials: &ProviderCredentials,
    ) -> Result<CheckoutLink, CheckoutError> {
        let SepaySettings { bank, account, .. } = SepaySettings::read(credentials);
        if bank.is_empty() || account.is_empty() {
            return Err(CheckoutError::NotConfigured("SePay needs the bank and account number".to_owned()));
        }
        let c = &request.checkout;
        if c.expected.currency != Currency::Vnd {
            return Err(CheckoutError::Rejected(format!(
                "bank transfers are in VND, not {}",
                c.expected.currency
            )));
        }
        let instructions = format!(
            "Transfer {} to {bank} account {account} with the memo {} (exactly this code).",
            c.expected, c.reference
        );
        Ok(CheckoutLink::qr(
            qr_image_url(&bank, &account, c.expected.minor, c.reference.as_str()),
            instructions,
        ))
    }

    async fn check_credentials(&self, credentials: &ProviderCredentials) -> Result<(), CredentialError> {
        let settings = SepaySettings::read(credentials);
        let mut missing = Vec::new();
        let key = settings.key.expose().trim();
        if key.is_empty() {
            missing.push("the API key");
        }
        for (value, what) in [(&settings.bank, "the bank"), (&settings.account, "the account number")] {
            if value.is_empty() {
                missing.push(what);
            }
        }
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("missing {}", missing.join(", ")));
        }
        let length = key.chars().count();
        if length > 0 && length < MIN_KEY_CHARS {
            // SePay lets the owner type any key; a short one can be guessed, and with it anyone
            // can forge transfers.
            problems.push(format!(
                "the API key has {length} characters; use at least {MIN_KEY_CHARS} random ones \
                 (e.g. `openssl rand -hex 24`) and set the same key in SePay"
            ));
        }
        if !problems.is_empty() {
            return Err(CredentialError::Invalid(problems.join("; ")));
        }
        let p = &settings.code_prefix;
        if !(2..=5).contains(&p.len()) || !p.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(CredentialError::Invalid(format!(
                "the code prefix {p:?} must be 2 to 5 capital letters"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
