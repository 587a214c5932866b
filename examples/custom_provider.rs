//! A payment provider of your own, plugged into Docobo's ingest: "Tipjar", a made-up service
//! that posts one JSON webhook per tip and signs nothing but a shared token header.
//!
//! Implementing [`PaymentProvider`] is all it takes: `verify` authenticates the raw body,
//! `parse` turns it into provider-neutral events (here: each tip pays for 30 more days of a
//! role), and Docobo's ingest does the rest — deduplication, the state machine, the durable role
//! job, and the worker that converges Discord. Run it with `cargo run --example custom_provider`;
//! everything is in memory.

use std::error::Error;
use std::sync::Arc;

use async_trait::async_trait;
use docobo::core::domain::{
    Currency, EventId, ExternalRef, Guild, GuildId, Money, PaidRole, ProductLink, ProviderName, RoleId,
    Secret, Term, Timestamp, UserId,
};
use docobo::core::machine::{Event, EventKind, Version};
use docobo::core::ports::{
    CatalogRepo, CheckoutError, CheckoutLink, CheckoutRequest, Clock, CredentialError, Headers, ParseError,
    ParsedWebhook, PaymentFact, PaymentProvider, ProviderCredentials, ProviderEvent, ProviderRegistry,
    Subject, SystemClock, VerifyError,
};
use docobo::core::service::{IngestOutcome, ingest_webhook, run_due_jobs, sell_role, set_credentials};
use docobo::core::testing::{FakeRoles, MemoryRepo};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

/// The Tipjar provider. It holds nothing: credentials come from the repository per guild.
struct Tipjar;

impl Tipjar {
    /// The name it is registered, routed (`/webhooks/tipjar/{guild}`) and stored under.
    const NAME: ProviderName = ProviderName::known("tipjar");
}

/// One tip, as Tipjar posts it.
#[derive(Deserialize)]
struct Tip {
    id: String,
    /// The Discord user id the supporter linked.
    supporter: String,
    /// The role the tip is for.
    role: String,
    amount_cents: i64,
    currency: String,
    at: String,
}

fn tip(body: &[u8]) -> Result<Tip, String> {
    serde_json::from_slice(body).map_err(|e| format!("not a Tipjar tip: {e}"))
}

#[async_trait]
impl PaymentProvider for Tipjar {
    fn name(&self) -> ProviderName {
        Tipjar::NAME
    }

    fn verify(
        &self,
        headers: &Headers,
        _body: &[u8],
        credentials: &ProviderCredentials,
        _now: Timestamp,
    ) -> Result<(), VerifyError> {
        let token = headers.get("x-tipjar-token").ok_or(VerifyError::MissingHeader("x-tipjar-token"))?;
        // `Secret::matches` compares in constant time.
        if credentials.webhook_secret.matches(token) { Ok(()) } else { Err(VerifyError::Mismatch) }
    }

    fn parse(
        &self,
        _headers: &Headers,
        body: &[u8],
        _credentials: &ProviderCredentials,
    ) -> Result<ParsedWebhook, ParseError> {
        let tip = tip(body).map_err(|reason| ParseError { event_id: None, reason })?;
        let fail = |reason: String| ParseError { event_id: tip.id.parse().ok(), reason };
        let event_id: EventId = tip.id.parse().map_err(|e| fail(format!("id: {e}")))?;
        let at = Timestamp::parse(&tip.at, &Rfc3339).map_err(|e| fail(format!("at: {e}")))?;
        let currency: Currency = tip.currency.parse().map_err(|e| fail(format!("currency: {e}")))?;
        let amount =
            Money::from_minor(tip.amount_cents, currency).map_err(|e| fail(format!("amount: {e}")))?;
        let user: UserId = tip.supporter.parse().map_err(|e| fail(format!("supporter: {e}")))?;
        let role: RoleId = tip.role.parse().map_err(|e| fail(format!("role: {e}")))?;
        let reference: ExternalRef = tip.id.parse().map_err(|e| fail(format!("id: {e}")))?;
        // Each tip is its own purchase; the role's fixed term makes each one add 30 days.
        let mut subject = Subject::member(user, role);
        subject.paid = Some(amount);
        let paid = Event { kind: EventKind::PaymentSucceeded { access_until: None }, version: Version(at) };
        let event = ProviderEvent::new(Some(reference.clone()), paid, subject);
        let payment = PaymentFact::new(reference, amount, at);
        Ok(ParsedWebhook::new(event_id, vec![event]).with_payment(payment))
    }

    async fn create_checkout(
        &self,
        request: &CheckoutRequest,
        _credentials: &ProviderCredentials,
    ) -> Result<CheckoutLink, CheckoutError> {
        let c = &request.checkout;
        let url = format!("https://tipjar.invalid/tip?user={}&role={}&ref={}", c.user, c.role, c.reference);
        let instructions =
            format!("Tip at least {} to get {}", request.paid_role.price, request.paid_role.name);
        Ok(CheckoutLink::page(url, instructions))
    }

    async fn check_credentials(&self, credentials: &ProviderCredentials) -> Result<(), CredentialError> {
        if credentials.webhook_secret.expose().len() < 16 {
            return Err(CredentialError::Invalid("the Tipjar token has at least 16 characters".to_owned()));
        }
        Ok(())
    }
}

const TOKEN: &str = "tipjar-shared-token-123";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let repo = MemoryRepo::new();
    let discord = FakeRoles::new();
    let guild: GuildId = "900000000000000001".parse()?;
    let role: RoleId = "700000000000000007".parse()?;
    let user: UserId = "123456789012345678".parse()?;
    repo.put_guild(&Guild::new(guild, "Tip-funded server")).await?;
    let price = Money::parse("3.00", Currency::Usd)?;
    let providers = ProviderRegistry::new().with(Arc::new(Tipjar));
    let supporter = PaidRole::new(guild, role, "Supporter", price, Term::fixed(30)?)?
        .with_link(ProductLink::to(Tipjar::NAME));
    sell_role(&repo, &providers, &supporter).await?;
    set_credentials(&repo, &providers, guild, Tipjar::NAME, &ProviderCredentials::new(Secret::new(TOKEN)))
        .await?;
    discord.join(guild, user);

    let now = SystemClock.now().format(&Rfc3339)?;
    let body = format!(
        r#"{{"id":"tip_1","supporter":"{user}","role":"{role}","amount_cents":500,"currency":"usd","at":"{now}"}}"#
    );
    let deliver = |token: &str| {
        let headers = Headers::new().with("x-tipjar-token", token);
        let body = body.clone();
        let repo = &repo;
        async move { ingest_webhook(repo, &Tipjar, &SystemClock, guild, &headers, body.as_bytes()).await }
    };

    match deliver("forged-token-000000000").await {
        Err(e) => println!("forged tip refused: {e}"),
        Ok(report) => return Err(format!("a forged tip was accepted: {report:?}").into()),
    }
    let report = deliver(TOKEN).await?;
    println!("tip_1 ingested: {:?}", report.outcome);
    let again = deliver(TOKEN).await?;
    assert_eq!(again.outcome, IngestOutcome::Duplicate);
    println!("tip_1 redelivered: recorded once ({:?})", again.outcome);

    let work = run_due_jobs(&repo, &discord, &SystemClock, time::Duration::seconds(30), 10).await?;
    let holds = discord.roles(guild, user).is_some_and(|r| r.contains(&role));
    println!(
        "worker: {} role change(s); the supporter {} the Supporter role",
        work.changed,
        if holds { "HAS" } else { "lacks" }
    );
    if !holds {
        return Err("the role was not granted".into());
    }
    Ok(())
}
