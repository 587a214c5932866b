//! `ingest_webhook`: verify → parse → record the delivery, apply its events and enqueue role
//! jobs in one atomic commit → acknowledge.
//!
//! A successful return means the delivery is durable; the HTTP edge answers 2xx only then. No
//! Discord call happens here: role changes are the worker's job.

use sha2::{Digest, Sha256};

use crate::domain::{
    DeliveryId, EventId, EventOutcome, Guild, GuildId, ProviderName, Timestamp, WebhookEvent,
};
use crate::ports::{
    CatalogRepo, CheckoutRepo, Clock, Commit, EntitlementRepo, GuildCatalog, Headers, Ledger, ParseError,
    ParsedWebhook, PaymentProvider, Recorded, StoreError, VerifyError,
};

use super::retry::MAX_CONFLICT_RETRIES;

mod plan;
mod unresolved;

pub use plan::CHECKOUT_GRACE;
pub use unresolved::Unresolved;

/// What happened to an authenticated delivery. Every variant is acknowledged with a 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Applied; `jobs` role jobs were enqueued (wake the worker if > 0).
    Processed { jobs: usize },
    /// Already recorded: nothing changed.
    Duplicate,
    /// Valid but not about access; stored as ignored.
    Ignored { note: String },
    /// Stored in the failure inbox with the reason, for an operator to fix and replay.
    Failed { reason: Unresolved },
    /// Stored; it must be read from the provider's API first, which the resolver does after
    /// the acknowledgement (wake it).
    Deferred { why: String },
}

impl IngestOutcome {
    /// A lower-case label for metrics, logs and the admin API: `processed`, `duplicate`,
    /// `ignored`, `failed`.
    pub fn label(&self) -> &'static str {
        match self {
            IngestOutcome::Processed { .. } => "processed",
            IngestOutcome::Duplicate => "duplicate",
            IngestOutcome::Ignored { .. } => "ignored",
            IngestOutcome::Failed { .. } => "failed",
            IngestOutcome::Deferred { .. } => "deferred",
        }
    }
}

/// The report of one ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestReport {
    pub event_id: EventId,
    pub outcome: IngestOutcome,
}

/// Why a delivery was not accepted. Nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("guild {0} is not registered")]
    UnknownGuild(GuildId),
    #[error("{provider} is not configured for guild {guild}")]
    NotConfigured { guild: GuildId, provider: ProviderName },
    #[error("authentication failed: {0}")]
    Unauthorized(#[from] VerifyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The repository ports ingest needs.
pub trait IngestRepo: CatalogRepo + CheckoutRepo + EntitlementRepo + Ledger {}
impl<T: CatalogRepo + CheckoutRepo + EntitlementRepo + Ledger + ?Sized> IngestRepo for T {}

/// Ingests one delivery for `guild` from `provider`.
pub async fn ingest_webhook<R: IngestRepo + ?Sized>(
    repo: &R,
    provider: &dyn PaymentProvider,
    clock: &dyn Clock,
    guild: GuildId,
    headers: &Headers,
    body: &[u8],
) -> Result<IngestReport, IngestError> {
    accept(repo, provider, clock, guild, headers, body, true).await
}

/// Ingests a delivery Docobo fetched itself from the provider's API (Sell.app's event journal):
/// authenticated by the API key that fetched it, so not verified again; otherwise exactly as
/// [`ingest_webhook`], deduplicated against the webhooks by the same delivery ids.
pub async fn ingest_fetched<R: IngestRepo + ?Sized>(
    repo: &R,
    provider: &dyn PaymentProvider,
    clock: &dyn Clock,
    guild: GuildId,
    body: &[u8],
) -> Result<IngestReport, IngestError> {
    accept(repo, provider, clock, guild, &Headers::new(), body, false).await
}

async fn accept<R: IngestRepo + ?Sized>(
    repo: &R,
    provider: &dyn PaymentProvider,
    clock: &dyn Clock,
    guild: GuildId,
    headers: &Headers,
    body: &[u8],
    verify: bool,
) -> Result<IngestReport, IngestError> {
    let kind = provider.name();
    let catalog = repo.catalog(guild, kind).await?.ok_or(IngestError::UnknownGuild(guild))?;
    let Some(credentials) = &catalog.credentials else {
        return Err(IngestError::NotConfigured { guild, provider: kind });
    };
    let now = clock.now();
    if verify {
        provider.verify(headers, body, credentials, now)?;
    }
    let parsed = provider.parse(headers, body, credentials);
    commit_delivery(repo, kind, &catalog, body, parsed, now, None).await
}

/// Plans and commits one parsed delivery, re-planning when a concurrent delivery for the same
/// purchase commits first. `previous` is the stored failed delivery being replayed, if any.
pub(super) async fn commit_delivery<R: IngestRepo + ?Sized>(
    repo: &R,
    kind: ProviderName,
    catalog: &GuildCatalog,
    body: &[u8],
    parsed: Result<ParsedWebhook, ParseError>,
    now: Timestamp,
    previous: Option<&WebhookEvent>,
) -> Result<IngestReport, IngestError> {
    let event_id = match (&parsed, previous) {
        (_, Some(p)) => p.external_id.clone(),
        (Ok(p), None) => p.event_id.clone(),
        (Err(e), None) => e.event_id.clone().unwrap_or_else(|| body_id(body)),
    };
    let report = |outcome| IngestReport { event_id: event_id.clone(), outcome };
    // Redeliveries are recognised by the commit's unique constraint, not by a read first: a read
    // would cost every new event a round trip to save one on the rare duplicate.
    for _ in 0..MAX_CONFLICT_RETRIES {
        let (commit, outcome) = match &parsed {
            Ok(ParsedWebhook { deferred: Some(why), .. }) => {
                (Commit::new(now), IngestOutcome::Deferred { why: why.clone() })
            }
            Ok(parsed) => plan::plan(repo, catalog, kind, parsed, now).await?,
            Err(e) => {
                (Commit::new(now), IngestOutcome::Failed { reason: Unresolved::Unreadable(e.reason.clone()) })
            }
        };
        let mut event = record(kind, &catalog.guild, &event_id, body, now, &outcome);
        if let Some(p) = previous {
            event = WebhookEvent { id: p.id, received_at: p.received_at, attempts: p.attempts + 1, ..event };
        }
        let commit = Commit { replay: previous.is_some(), ..commit.with_event(event) };
        match repo.commit(commit).await {
            Ok(Recorded::Committed) => return Ok(report(outcome)),
            Ok(Recorded::Duplicate) => return Ok(report(IngestOutcome::Duplicate)),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// A stable id for a delivery whose own id could not be read, so redeliveries still dedupe.
fn body_id(body: &[u8]) -> EventId {
    let digest = Sha256::digest(body);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}").parse().unwrap_or_else(|_| unreachable!("a hex digest is a valid event id"))
}

fn record(
    kind: ProviderName,
    guild: &Guild,
    id: &EventId,
    body: &[u8],
    now: Timestamp,
    outcome: &IngestOutcome,
) -> WebhookEvent {
    let (outcome, last_error) = match outcome {
        IngestOutcome::Processed { .. } | IngestOutcome::Duplicate => (EventOutcome::Processed, None),
        IngestOutcome::Ignored { note } => (EventOutcome::Ignored, Some(note.clone())),
        IngestOutcome::Failed { reason } => (EventOutcome::Failed, Some(reason.to_string())),
        IngestOutcome::Deferred { why } => (EventOutcome::Deferred, Some(why.clone())),
    };
    let retry_at = (outcome == EventOutcome::Deferred).then_some(now);
    WebhookEvent {
        id: DeliveryId(0),
        provider: kind,
        guild: guild.id,
        external_id: id.clone(),
        body: body.to_vec(),
        received_at: now,
        outcome,
        attempts: 1,
        last_error,
        retry_at,
    }
}

impl Commit {
    fn with_event(mut self, event: WebhookEvent) -> Self {
        self.cause = format!("{} {}", event.provider, event.external_id);
        self.event = Some(event);
        self
    }
}
