//! [`ToyProvider`]: a small payment provider with signed webhooks, for tests and examples.
//!
//! A delivery is `key=value` lines; the `x-toy-signature` header is the hex SHA-256 of the secret
//! followed by the body. Keys: `id` (delivery id, required), `kind` (an [`EventKind`] name, or
//! `ignored`), `ref` (purchase id), `version` and `until` (unix seconds), `user`, `role`,
//! `guild`, `product`, `variant`, `checkout`, `paid` (`5.00 USD`), `one_time` (`true`: a payment that never renews),
//! `paid_once` (`true`: the payment is the whole purchase), `units` (terms bought), `defer` (only a
//! hint: see [`ToyProvider`]).

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::domain::{Money, ProviderName, Secret, Timestamp};
use crate::machine::{Event, EventKind, Version};
use crate::ports::{
    CheckoutError, CheckoutLink, CheckoutRequest, CredentialError, Headers, ParseError, ParsedWebhook,
    PaymentFact, PaymentProvider, ProviderCredentials, ProviderEvent, ResolveError, Sells, Subject,
    VerifyError,
};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-toy-signature";

/// A toy provider registered as `name` (so one application can run several in tests), selling
/// what `sells` says. A delivery with `defer=why` is only a hint: `parse` defers it, and
/// `resolve` (its "API", down while `api_down`) parses the rest of the body.
#[derive(Debug, Clone, Copy)]
pub struct ToyProvider {
    pub name: ProviderName,
    pub sells: Sells,
    pub api_down: bool,
}

impl ToyProvider {
    /// A toy provider called `name` that sells anything.
    pub fn named(name: ProviderName) -> Self {
        ToyProvider { name, sells: Sells::ANYTHING, api_down: false }
    }

    /// A toy provider called `name` that sells like a bank transfer: one-off VND payments.
    pub fn bank_transfer(name: ProviderName) -> Self {
        let sells = Sells {
            renewals: false,
            only_currency: Some(crate::domain::Currency::Vnd),
            needs_product: false,
        };
        ToyProvider { name, sells, api_down: false }
    }

    /// The signature header value for `body` under `secret`.
    pub fn sign(secret: &str, body: &[u8]) -> String {
        Sha256::new()
            .chain_update(secret.as_bytes())
            .chain_update(body)
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Headers that authenticate `body` under `secret`.
    pub fn headers(secret: &str, body: &[u8]) -> Headers {
        Headers::new().with(SIGNATURE_HEADER, Self::sign(secret, body))
    }
}

fn kind_named(name: &str, until: Option<Timestamp>) -> Result<Option<EventKind>, String> {
    Ok(Some(match name {
        "ignored" => return Ok(None),
        "payment_pending" => EventKind::PaymentPending,
        "payment_succeeded" => EventKind::PaymentSucceeded { access_until: until },
        "payment_failed" => EventKind::PaymentFailed,
        "cancel_scheduled" => {
            EventKind::CancelScheduled { access_until: until.ok_or("cancel_scheduled needs until=")? }
        }
        "cancel_undone" => EventKind::CancelUndone,
        "revoked" => EventKind::Revoked,
        "refunded" => EventKind::Refunded { full: true },
        "partially_refunded" => EventKind::Refunded { full: false },
        "disputed" => EventKind::Disputed,
        "term_elapsed" => EventKind::TermElapsed,
        other => return Err(format!("unknown kind {other:?}")),
    }))
}

/// Parses an optional identifier field.
fn id_field<T: std::str::FromStr<Err = crate::domain::IdError>>(
    value: Option<&str>,
) -> Result<Option<T>, String> {
    value.map(str::parse).transpose().map_err(|e: crate::domain::IdError| e.to_string())
}

fn parse_body(body: &[u8], resolving: bool) -> Result<ParsedWebhook, ParseError> {
    let fail = |event_id, reason: String| ParseError { event_id, reason };
    let text = std::str::from_utf8(body).map_err(|_| fail(None, "body is not UTF-8".to_owned()))?;
    let field = |key: &str| {
        text.lines().filter_map(|l| l.split_once('=')).find(|(k, _)| k.trim() == key).map(|(_, v)| v.trim())
    };
    let event_id = field("id").ok_or_else(|| fail(None, "missing id".to_owned()))?;
    let event_id = event_id.parse().map_err(|e: crate::domain::IdError| fail(None, e.to_string()))?;
    if let (Some(why), false) = (field("defer"), resolving) {
        return Ok(ParsedWebhook::deferred(event_id, why));
    }
    let fail = |reason: String| ParseError { event_id: Some(Clone::clone(&event_id)), reason };
    let time_of = |key: &str| -> Result<Option<Timestamp>, ParseError> {
        field(key)
            .map(|v| {
                let secs: i64 = v.parse().map_err(|_| fail(format!("{key} is not unix seconds")))?;
                OffsetDateTime::from_unix_timestamp(secs).map_err(|e| fail(format!("{key}: {e}")))
            })
            .transpose()
    };
    let kind = kind_named(field("kind").unwrap_or(""), time_of("until")?).map_err(fail)?;
    let Some(kind) = kind else {
        return Ok(ParsedWebhook::ignored(event_id, "toy event ignored"));
    };
    let version = Version(time_of("version")?.ok_or_else(|| fail("missing version".to_owned()))?);
    let subject = Subject {
        user: id_field(field("user")).map_err(fail)?,
        role: id_field(field("role")).map_err(fail)?,
        guild: id_field(field("guild")).map_err(fail)?,
        product: field("product").map(str::to_owned),
        variant: field("variant").map(str::to_owned),
        checkout_refs: id_field(field("checkout")).map_err(fail)?.into_iter().collect(),
        paid: field("paid")
            .map(|p| {
                let (amount, currency) =
                    p.split_once(' ').ok_or_else(|| fail("paid needs AMOUNT CODE".to_owned()))?;
                let currency =
                    currency.parse().map_err(|e: crate::domain::MoneyError| fail(e.to_string()))?;
                Money::parse(amount, currency).map_err(|e| fail(e.to_string()))
            })
            .transpose()?,
        one_time: field("one_time") == Some("true"),
        paid_once: field("paid_once") == Some("true"),
        units: field("units")
            .map(|u| u.parse().map_err(|_| fail(format!("units {u:?} is not a count"))))
            .transpose()?
            .unwrap_or(1),
    };
    let entitlement_ref = id_field(field("ref")).map_err(fail)?;
    // A paid amount is money received, recorded under the delivery's id.
    let payment = match subject.paid {
        Some(amount) => Some(PaymentFact {
            reference: event_id.as_str().parse().map_err(|e: crate::domain::IdError| fail(e.to_string()))?,
            amount,
            refunded: Money { minor: 0, currency: amount.currency },
            at: version.at(),
            subject: Subject::default(),
        }),
        None => None,
    };
    let mut parsed = ParsedWebhook::new(
        event_id,
        vec![ProviderEvent::new(entitlement_ref, Event { kind, version }, subject)],
    );
    parsed.payment = payment;
    Ok(parsed)
}

#[async_trait]
impl PaymentProvider for ToyProvider {
    fn name(&self) -> ProviderName {
        self.name
    }

    fn sells(&self) -> Sells {
        self.sells
    }

    fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        credentials: &ProviderCredentials,
        _now: Timestamp,
    ) -> Result<(), VerifyError> {
        let given = headers.get(SIGNATURE_HEADER).ok_or(VerifyError::MissingHeader(SIGNATURE_HEADER))?;
        let expected = Secret::new(Self::sign(credentials.webhook_secret.expose(), body));
        if expected.matches(given) { Ok(()) } else { Err(VerifyError::Mismatch) }
    }

    fn parse(
        &self,
        _headers: &Headers,
        body: &[u8],
        _credentials: &ProviderCredentials,
    ) -> Result<ParsedWebhook, ParseError> {
        parse_body(body, false)
    }

    async fn resolve(
        &self,
        _headers: &Headers,
        body: &[u8],
        _credentials: &ProviderCredentials,
    ) -> Result<ParsedWebhook, ResolveError> {
        if self.api_down {
            return Err(ResolveError::Unavailable("the toy API is down".to_owned()));
        }
        parse_body(body, true).map_err(|e| ResolveError::Unresolvable(e.reason))
    }

    async fn create_checkout(
        &self,
        request: &CheckoutRequest,
        _credentials: &ProviderCredentials,
    ) -> Result<CheckoutLink, CheckoutError> {
        let c = &request.checkout;
        Ok(CheckoutLink {
            url: Some(format!("https://toy.invalid/pay/{}", c.reference)),
            qr_image_url: None,
            instructions: format!("Pay {} with reference {}", c.expected, c.reference),
        })
    }

    async fn check_credentials(&self, credentials: &ProviderCredentials) -> Result<(), CredentialError> {
        if credentials.webhook_secret.expose().is_empty() {
            return Err(CredentialError::Invalid("the webhook secret is empty".to_owned()));
        }
        Ok(())
    }
}
