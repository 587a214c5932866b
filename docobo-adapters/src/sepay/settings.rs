//! [`SepaySettings`]: what an owner configures for SePay, typed. Stored as the generic
//! [`ProviderCredentials`] (the API key sealed, the rest as settings); the CLI, `/setup`, the
//! demo and the adapter all go through this type instead of spelling the keys.

use std::collections::BTreeMap;

use docobo_core::domain::Secret;
use docobo_core::ports::{CredentialError, ProviderCredentials, SetupField};

use super::DEFAULT_CODE_PREFIX;

/// How SePay authenticates its webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SepayAuth {
    /// `Authorization: Apikey <key>` (SePay's default).
    #[default]
    ApiKey,
    /// `X-SePay-Signature: sha256=<hex>` over `{timestamp}.{body}`, keyed with the secret.
    Hmac,
}

impl SepayAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            SepayAuth::ApiKey => "apikey",
            SepayAuth::Hmac => "hmac",
        }
    }
}

impl std::str::FromStr for SepayAuth {
    type Err = String;

    /// `apikey` (also `api key`, or nothing: the default) or `hmac`, in any case.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "apikey" | "api key" => Ok(SepayAuth::ApiKey),
            "hmac" => Ok(SepayAuth::Hmac),
            other => Err(format!(
                "the authentication mode {other:?} is neither `apikey` nor `hmac`; type `hmac` (recommended: signed, \
                 with a timestamp) or `apikey`, as chosen in SePay"
            )),
        }
    }
}

/// SePay's form in `/setup`.
pub(super) const FORM: [SetupField; 5] = [
    SetupField {
        id: "api_key",
        label: "SePay API key or HMAC secret (32+ characters)",
        placeholder: "openssl rand -hex 24",
        required: true,
    },
    SetupField {
        id: "auth",
        label: "Authentication: hmac or apikey",
        placeholder: "hmac (as chosen in SePay → Webhooks)",
        required: false,
    },
    SetupField { id: "bank", label: "Bank", placeholder: "MBBank, Vietcombank, …", required: true },
    SetupField {
        id: "account",
        label: "Account number",
        placeholder: "the account that receives transfers",
        required: true,
    },
    SetupField {
        id: "code_prefix",
        label: "Transfer code prefix (optional)",
        placeholder: "DCB",
        required: false,
    },
];

/// One guild's SePay configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SepaySettings {
    /// The API key (or HMAC secret) SePay sends; sealed at rest.
    pub key: Secret,
    /// The bank's short name for VietQR (`MBBank`, `Vietcombank`, …).
    pub bank: String,
    /// The account number transfers go to; transfers to another account are refused.
    pub account: String,
    /// Capital letters that start every transfer code (`DCB`).
    pub code_prefix: String,
    pub auth: SepayAuth,
}

impl SepaySettings {
    /// Settings with the default prefix and API-key authentication.
    pub fn new(key: Secret, bank: impl Into<String>, account: impl Into<String>) -> Self {
        SepaySettings {
            key,
            bank: bank.into(),
            account: account.into(),
            code_prefix: DEFAULT_CODE_PREFIX.to_owned(),
            auth: SepayAuth::ApiKey,
        }
    }

    /// Reads stored credentials; a missing setting reads as empty (and the default prefix), which
    /// [`Sepay::check_credentials`](super::Sepay) refuses before anything is stored.
    pub fn read(credentials: &ProviderCredentials) -> Self {
        let get = |key: &str| credentials.settings.get(key).map(|v| v.trim().to_owned()).unwrap_or_default();
        let prefix = get("code_prefix");
        SepaySettings {
            key: credentials.webhook_secret.clone(),
            bank: get("bank"),
            account: get("account"),
            code_prefix: if prefix.is_empty() { DEFAULT_CODE_PREFIX.to_owned() } else { prefix },
            auth: if get("auth") == SepayAuth::Hmac.as_str() { SepayAuth::Hmac } else { SepayAuth::ApiKey },
        }
    }

    /// Settings from `/setup`'s form (`FORM`).
    pub fn from_form(values: &BTreeMap<String, String>) -> Result<Self, CredentialError> {
        let get = |id: &str| SetupField::value(values, id);
        let auth = get("auth").parse().map_err(CredentialError::Invalid)?;
        let mut settings = SepaySettings::new(Secret::new(get("api_key")), get("bank"), get("account"));
        settings.auth = auth;
        if !get("code_prefix").is_empty() {
            settings.code_prefix = get("code_prefix").to_ascii_uppercase();
        }
        Ok(settings)
    }

    /// The credentials to store.
    pub fn credentials(&self) -> ProviderCredentials {
        let mut credentials = ProviderCredentials::new(self.key.clone());
        credentials.settings = BTreeMap::from([
            ("bank".to_owned(), self.bank.clone()),
            ("account".to_owned(), self.account.clone()),
            ("code_prefix".to_owned(), self.code_prefix.to_ascii_uppercase()),
            ("auth".to_owned(), self.auth.as_str().to_owned()),
        ]);
        credentials
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_through_stored_credentials() {
        let mut settings = SepaySettings::new(Secret::new("k".repeat(32)), "MBBank", "0123499999");
        settings.code_prefix = "vip".to_owned();
        settings.auth = SepayAuth::Hmac;
        let back = SepaySettings::read(&settings.credentials());
        assert_eq!(back, SepaySettings { code_prefix: "VIP".to_owned(), ..settings });
        let bare = SepaySettings::read(&ProviderCredentials::new(Secret::new("k")));
        assert_eq!(
            (bare.bank.as_str(), bare.code_prefix.as_str(), bare.auth),
            ("", "DCB", SepayAuth::ApiKey)
        );
    }
}
