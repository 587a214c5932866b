//! `ingest_webhook`: verify → parse → record the delivery, apply its events and enqueue role
//! jobs in one atomic commit → acknowledge.
//!
//! The catalog (credentials, roles for sale) is the one kept from an earlier delivery, not read
//! first; the commit names its revision and is refused if a catalog write moved it since, and
//! then the delivery is verified and planned again on the current catalog. So a delivery is
//! never accepted under credentials that were replaced before it was committed.
//!
//! A successful return means the delivery is durable; the HTTP edge answers 2xx only then. No
//! Discord call happens here: role changes are the worker's job.

use std::sync::Arc;

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
    let now = clock.now();
    let delivery = Delivery { provider, headers, body, verify, now };
    // First on the catalog as kept, with no read before it: the commit names the revision the
    // plan was made on, and the store refuses it if the catalog moved since. A delivery the kept
    // catalog does not authenticate, or whose commit was refused, is tried once more on the
    // current catalog: its credentials may just have changed.
    let kept = repo.kept_catalog(guild, kind).await?;
    let refused = match &kept {
        Some(kept) => match delivery.apply(repo, kept, true).await {
            Err(e @ (IngestError::Unauthorized(_) | IngestError::NotConfigured { .. })) => Some(e),
            Err(IngestError::Store(StoreError::Conflict)) => None,
            done => return done,
        },
        None => None,
    };
    let catalog = repo.catalog(guild, kind).await?.ok_or(IngestError::UnknownGuild(guild))?;
    match (refused, kept) {
        // The same catalog would refuse it the same way.
        (Some(e), Some(kept)) if Arc::ptr_eq(&kept, &catalog) => Err(e),
        _ => delivery.apply(repo, &catalog, false).await,
    }
}

/// One delivery as it arrived, to be verified, parsed and committed on a catalog.
struct Delivery<'a> {
    provider: &'a dyn PaymentProvider,
    headers: &'a Headers,
    body: &'a [u8],
    verify: bool,
    now: Timestamp,
}

impl Delivery<'_> {
    /// Verifies, parses and commits the delivery on `catalog`; with `unconfirmed`, naming the
    /// catalog's revision in the commit.
    async fn apply<R: IngestRepo + ?Sized>(
        &self,
        repo: &R,
        catalog: &GuildCatalog,
        unconfirmed: bool,
    ) -> Result<IngestReport, IngestError> {
        let kind = self.provider.name();
        let Some(credentials) = &catalog.credentials else {
            return Err(IngestError::NotConfigured { guild: catalog.guild.id, provider: kind });
        };
        if self.verify {
            self.provider.verify(self.headers, self.body, credentials, self.now)?;
        }
        let parsed = self.provider.parse(self.headers, self.body, credentials);
        let origin = Origin::Received { unconfirmed };
        commit_delivery(repo, kind, catalog, self.body, parsed, self.now, origin).await
    }
}

/// Where a delivery being committed comes from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Origin<'a> {
    /// Just received; `unconfirmed` when planned on a kept catalog that nobody has confirmed
    /// current, whose revision the commit then names.
    Received { unconfirmed: bool },
    /// The stored failed delivery, being replayed.
    Stored(&'a WebhookEvent),
}

/// Plans and commits one parsed delivery on `catalog`, re-planning when a concurrent delivery
/// for the same purchase commits first; except on an unconfirmed catalog, where a conflict is
/// returned at once for the caller to try again on the current one.
pub(super) async fn commit_delivery<R: IngestRepo + ?Sized>(
    repo: &R,
    kind: ProviderName,
    catalog: &GuildCatalog,
    body: &[u8],
    parsed: Result<ParsedWebhook, ParseError>,
    now: Timestamp,
    origin: Origin<'_>,
) -> Result<IngestReport, IngestError> {
    let (previous, planned_on) = match origin {
        Origin::Stored(p) => (Some(p), None),
        Origin::Received { unconfirmed } => {
            (None, catalog.revision.filter(|_| unconfirmed).map(|r| (catalog.guild.id, r)))
        }
    };
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
        let commit = Commit { replay: previous.is_some(), catalog: planned_on, ..commit.with_event(event) };
        match repo.commit(commit).await {
            Ok(Recorded::Committed) => return Ok(report(outcome)),
            Ok(Recorded::Duplicate) => return Ok(report(IngestOutcome::Duplicate)),
            Err(StoreError::Conflict) if planned_on.is_none() => continue,
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
