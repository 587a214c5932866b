//! The `PaymentProvider` port: turning a provider's webhook into provider-neutral events, and
//! starting checkouts.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::domain::{
    Checkout, CheckoutRef, Currency, EventId, ExternalRef, GuildId, Money, PaidRole, ProviderName, RoleId,
    Secret, Timestamp, UserId,
};
use crate::machine::Event;

/// HTTP request headers as received, looked up case-insensitively. `Debug` shows the names
/// and hides the values of those that carry credentials.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SENSITIVE: [&str; 4] = ["authorization", "cookie", "x-api-key", "signature"];
        f.debug_map()
            .entries(self.0.iter().map(|(name, value)| {
                let hidden = SENSITIVE.iter().any(|s| name.to_ascii_lowercase().contains(s));
                (name.as_str(), if hidden { "[redacted]" } else { value.as_str() })
            }))
            .finish()
    }
}

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.insert(name, value);
        self
    }

    pub fn insert(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_ascii_lowercase(), value.into()));
    }

    /// The first value of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl<K: AsRef<str>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (k, v) in iter {
            headers.insert(k.as_ref(), v);
        }
        headers
    }
}

/// What an owner configured for one provider in one guild. Stored encrypted; never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderCredentials {
    /// Polar's webhook secret, SePay's API key.
    pub webhook_secret: Secret,
    /// Polar's organization access token (checkout creation), if configured.
    pub api_token: Option<Secret>,
    /// Non-secret settings: SePay's `bank`, `account`, `code_prefix`.
    pub settings: BTreeMap<String, String>,
}

impl ProviderCredentials {
    pub fn new(webhook_secret: Secret) -> Self {
        ProviderCredentials { webhook_secret, api_token: None, settings: BTreeMap::new() }
    }
}

/// Who paid and for what, as far as the payload tells. The ingest use case resolves it against
/// stored checkouts and paid roles. Start from `Subject::default()` and set what the payload
/// says (new fields may be added).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subject {
    /// From metadata (`discord_user_id`), when present.
    pub user: Option<UserId>,
    /// From metadata (`paid_role_id`), when present.
    pub role: Option<RoleId>,
    /// The guild the purchase was made for (Polar's checkout metadata `guild_id`), when the
    /// payload says. A delivery to another guild's endpoint is not applied there.
    pub guild: Option<GuildId>,
    /// The provider's product id, mapped to a paid role by the owner's configuration
    /// ([`crate::domain::ProductLink`]).
    pub product: Option<String>,
    /// The product's variant, for providers that sell several of one product.
    pub variant: Option<String>,
    /// Checkout references found in the payload, best candidate first (SePay: the `code` field,
    /// then codes found in the transfer description).
    pub checkout_refs: Vec<CheckoutRef>,
    /// The amount actually paid, checked against the checkout (else the role's price). Set it
    /// only where the payer chooses the amount (a bank transfer); leave it `None` where the
    /// provider charged the price itself, discounts included (a card checkout).
    pub paid: Option<Money>,
    /// The payment never renews (a bank transfer, a one-time order). Such a payment cannot pay
    /// for a recurring role ([`crate::domain::Term::one_payment_suffices`]): ingest puts it in
    /// the failure inbox instead of granting access with no end.
    pub one_time: bool,
    /// The payment is the whole purchase (a Sell.app order line): a purchase is paid once, so a
    /// second report of it (`order.paid` after `order.completed`, the event journal after a
    /// webhook) adds no second fixed term.
    pub paid_once: bool,
    /// How many terms the payment buys (a quantity of N of a 30-day variant: N × 30 days);
    /// 0 and 1 both mean one.
    pub units: u32,
}

/// One provider-neutral fact from a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderEvent {
    /// The purchase the fact is about (Polar subscription or order id). `None` means "the matched
    /// checkout's reference" (SePay).
    pub entitlement_ref: Option<ExternalRef>,
    pub event: Event,
    pub subject: Subject,
}

impl Subject {
    /// A payload that names the member and the paid role outright (its metadata says).
    pub fn member(user: UserId, role: RoleId) -> Self {
        Subject { user: Some(user), role: Some(role), ..Subject::default() }
    }
}

impl ProviderEvent {
    pub fn new(entitlement_ref: Option<ExternalRef>, event: Event, subject: Subject) -> Self {
        ProviderEvent { entitlement_ref, event, subject }
    }
}

/// Money a delivery reports as received: an order, a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PaymentFact {
    /// The provider's id for it (Polar order id, SePay transaction id).
    pub reference: ExternalRef,
    pub amount: Money,
    /// Given back so far (Polar's `refunded_amount`), same currency.
    pub refunded: Money,
    pub at: Timestamp,
    /// Who paid for what, for a delivery that carries no access events (a subscription's
    /// renewal order); otherwise the member and role come from the events' entitlement.
    pub subject: Subject,
}

impl PaymentFact {
    /// `amount` received at `at` under the provider's `reference`, nothing refunded, no subject.
    pub fn new(reference: ExternalRef, amount: Money, at: Timestamp) -> Self {
        let refunded = Money { minor: 0, currency: amount.currency };
        PaymentFact { reference, amount, refunded, at, subject: Subject::default() }
    }
}

/// A parsed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParsedWebhook {
    /// The delivery's id: the deduplication key.
    pub event_id: EventId,
    /// Empty when the delivery is valid but not about access (it is stored as ignored).
    pub events: Vec<ProviderEvent>,
    /// Why nothing is done, for an ignored delivery.
    pub note: Option<String>,
    /// The money this delivery reports, if any; recorded once the delivery is applied.
    pub payment: Option<PaymentFact>,
    /// Why the delivery cannot be applied from its body alone: it must be read from the
    /// provider's API first ([`PaymentProvider::resolve`]), after the acknowledgement.
    pub deferred: Option<String>,
}

impl ParsedWebhook {
    /// A delivery carrying `events` (and no payment: see [`ParsedWebhook::with_payment`]).
    pub fn new(event_id: EventId, events: Vec<ProviderEvent>) -> Self {
        ParsedWebhook { event_id, events, note: None, payment: None, deferred: None }
    }

    /// A delivery that only points at what happened (an order id): stored, acknowledged, and
    /// resolved later through the provider's API, for the reason `why`.
    pub fn deferred(event_id: EventId, why: impl Into<String>) -> Self {
        ParsedWebhook { event_id, events: Vec::new(), note: None, payment: None, deferred: Some(why.into()) }
    }

    /// The same delivery, also reporting `payment`.
    #[must_use]
    pub fn with_payment(mut self, payment: PaymentFact) -> Self {
        self.payment = Some(payment);
        self
    }

    /// A valid delivery with nothing for access or revenue, and why.
    pub fn ignored(event_id: EventId, note: impl Into<String>) -> Self {
        ParsedWebhook { event_id, events: Vec::new(), note: Some(note.into()), payment: None, deferred: None }
    }
}

/// The request failed authentication. Nothing is stored; the edge answers 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("malformed header {0}")]
    MalformedHeader(&'static str),
    #[error("signature or key does not match")]
    Mismatch,
    #[error("timestamp is {skew_seconds} s away from now, outside the allowed window")]
    Stale { skew_seconds: i64 },
}

/// An authenticated delivery that cannot be understood. It is stored in the failure inbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// The delivery id, when it could be read; otherwise the body's hash is used.
    pub event_id: Option<EventId>,
    pub reason: String,
}

/// What `/join` asks a provider for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    pub checkout: Checkout,
    pub paid_role: PaidRole,
    /// The buyer's email, for providers that need one before a payment page exists
    /// ([`PaymentProvider::needs_email`]).
    pub email: Option<String>,
}

/// What the member is shown to pay.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckoutLink {
    /// A page to open (Polar checkout).
    pub url: Option<String>,
    /// An image to scan (SePay VietQR).
    pub qr_image_url: Option<String>,
    /// What to type or check (the transfer code and amount).
    pub instructions: String,
}

impl CheckoutLink {
    /// A page to open, with what to do there.
    pub fn page(url: impl Into<String>, instructions: impl Into<String>) -> Self {
        CheckoutLink { url: Some(url.into()), qr_image_url: None, instructions: instructions.into() }
    }

    /// An image to scan, with what to check.
    pub fn qr(image_url: impl Into<String>, instructions: impl Into<String>) -> Self {
        CheckoutLink { url: None, qr_image_url: Some(image_url.into()), instructions: instructions.into() }
    }
}

/// Why a checkout could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckoutError {
    #[error("the provider refused the checkout: {0}")]
    Rejected(String),
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    #[error("this provider is not fully configured: {0}")]
    NotConfigured(String),
}

/// Why [`PaymentProvider::resolve`] could not read a deferred delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The provider's API is down, slow or rate-limited: the resolver tries again later.
    #[error("the provider's API is unavailable: {0}")]
    Unavailable(String),
    /// It will not resolve by waiting (the order does not exist, the API key is refused): the
    /// delivery goes to the failure inbox, from where it can be replayed after a fix.
    #[error("{0}")]
    Unresolvable(String),
}

/// Why credentials were refused in `/setup`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the credentials were refused: {0}")]
    Invalid(String),
    #[error("the provider could not be reached to check them: {0}")]
    Unavailable(String),
}

/// One field of a provider's form in `/setup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupField {
    /// The key of its value in [`PaymentProvider::credentials_from_form`].
    pub id: &'static str,
    pub label: &'static str,
    pub placeholder: &'static str,
    pub required: bool,
}

impl SetupField {
    /// Discord shows at most five fields in one form.
    pub const MAX: usize = 5;

    /// The trimmed value typed into field `id` of a submitted form; empty when it was left out.
    pub fn value<'a>(values: &'a BTreeMap<String, String>, id: &str) -> &'a str {
        values.get(id).map_or("", |v| v.trim())
    }
}

/// What a provider can take payment for. The catalog rules (`service::catalog`) read it, so a
/// role is never put on sale where one payment would grant access that nothing ever ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sells {
    /// Whether payments can renew (subscriptions). A provider whose payments never renew (a bank
    /// transfer) can pay only for fixed terms and lifetime access.
    pub renewals: bool,
    /// The one currency the provider takes, if it takes only one (SePay: VND).
    pub only_currency: Option<Currency>,
    /// Whether a link must name the provider's product (Polar). `false` where payments are
    /// matched to the checkout `/join` made (SePay).
    pub needs_product: bool,
}

impl Sells {
    /// Subscriptions and one-off payments in any currency, matched by product or checkout.
    pub const ANYTHING: Sells = Sells { renewals: true, only_currency: None, needs_product: false };
}

/// A payment provider. Implemented for Polar and SePay in `docobo-adapters`; a toy one in
/// `docobo_core::testing` and `examples/`.
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// The name it is registered, stored and routed under (`/webhooks/{name}/{guild}`). MUST be
    /// the same for the life of the data it wrote.
    fn name(&self) -> ProviderName;

    /// What it can take payment for. The default takes anything.
    fn sells(&self) -> Sells {
        Sells::ANYTHING
    }

    /// How paying through it is described in `/join`'s menu.
    fn payment_method(&self) -> &str {
        "Through the server's own payment system"
    }

    /// The exact JSON body the provider expects in a 2xx to an accepted delivery (SePay retries
    /// and raises incidents unless it reads `{"success":true}`); `None`, the default, answers
    /// Docobo's own `{"status", "event_id"}`.
    fn acknowledgement(&self) -> Option<&'static str> {
        None
    }

    /// Whether `/join` must ask the member for an email before [`Self::create_checkout`] (Sell.app
    /// creates the order, which needs one, when an API key is configured). The default says no.
    fn needs_email(&self, credentials: &ProviderCredentials) -> bool {
        let _ = credentials;
        false
    }

    /// Whether [`Self::create_checkout`] and [`Self::check_credentials`] answer without a network
    /// call (SePay builds its QR locally), so `/join` and `/setup` can answer at once instead of
    /// deferring. The default says no.
    fn works_offline(&self) -> bool {
        false
    }

    /// The form `/setup` shows an owner to configure this provider in a guild, at most
    /// [`SetupField::MAX`] fields. Empty (the default): configured from the CLI or the admin API
    /// only.
    fn setup_form(&self) -> &[SetupField] {
        &[]
    }

    /// Credentials from what an owner typed into [`Self::setup_form`] (field id → trimmed
    /// value), or why they cannot be. [`Self::check_credentials`] runs afterwards, before
    /// anything is stored.
    fn credentials_from_form(
        &self,
        values: &BTreeMap<String, String>,
    ) -> Result<ProviderCredentials, CredentialError> {
        let _ = values;
        Err(CredentialError::Invalid(format!("{} is not configured through /setup", self.name())))
    }

    /// Authenticates a delivery.
    ///
    /// MUST work on the raw body bytes (never re-serialized JSON), MUST compare secrets and
    /// signatures in constant time, MUST reject timestamps outside the provider's window
    /// (relative to `now`), and MUST NOT panic on any input.
    fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        credentials: &ProviderCredentials,
        now: Timestamp,
    ) -> Result<(), VerifyError>;

    /// Parses an authenticated delivery into neutral events.
    ///
    /// MUST return the provider's delivery id when it can be read, MUST map only facts that the
    /// provider documents as affecting access (an unknown or irrelevant type parses to zero
    /// events with a `note`), MUST version events by the provider's own timestamps, and MUST NOT
    /// panic on any input.
    fn parse(
        &self,
        headers: &Headers,
        body: &[u8],
        credentials: &ProviderCredentials,
    ) -> Result<ParsedWebhook, ParseError>;

    /// Reads what a deferred delivery ([`ParsedWebhook::deferred`]) left out from the provider's
    /// API, and parses the whole. Called by the resolver, never before the acknowledgement.
    ///
    /// MUST time out, MUST report a failure that waiting may cure as
    /// [`ResolveError::Unavailable`], and MUST NOT return another deferral. The default parses
    /// the body again (for providers that never defer).
    async fn resolve(
        &self,
        headers: &Headers,
        body: &[u8],
        credentials: &ProviderCredentials,
    ) -> Result<ParsedWebhook, ResolveError> {
        self.parse(headers, body, credentials).map_err(|e| ResolveError::Unresolvable(e.reason))
    }

    /// The headers `parse` needs to re-read a stored delivery whose id is `event_id` (only the
    /// body is stored). Polar, say, reads the delivery id from `webhook-id`.
    fn replay_headers(&self, event_id: &EventId) -> Headers {
        let _ = event_id;
        Headers::new()
    }

    /// Starts a payment for `request`.
    ///
    /// MUST carry `request.checkout.reference`, the guild, the member and the paid role to the
    /// provider so that the resulting webhooks identify them, and MUST time out.
    async fn create_checkout(
        &self,
        request: &CheckoutRequest,
        credentials: &ProviderCredentials,
    ) -> Result<CheckoutLink, CheckoutError>;

    /// Checks credentials before `/setup` saves them. MUST NOT store or log them.
    async fn check_credentials(&self, credentials: &ProviderCredentials) -> Result<(), CredentialError>;
}
