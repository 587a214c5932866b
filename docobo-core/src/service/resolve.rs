//! `resolve_deferred`: the deliveries ingest stored as deferred (a Sell.app webhook carrying only
//! an order id) are read from the provider's API and applied, after the acknowledgement.
//!
//! A pass takes the deliveries whose `retry_at` has come, asks their provider to
//! [`resolve`](crate::ports::PaymentProvider::resolve) each, and commits the result exactly as
//! ingest would (conditionally on the row still being deferred, so two resolvers apply it once).
//! An API that is down is tried again after 10 s, 30 s, 1 min, 5 min, 15 min, 1 h, 3 h and
//! 6 h; after the last wait (about 10.5 hours in all) or at once for a delivery that waiting
//! cannot fix, it goes to the failure inbox with the reason, from where a replay defers it
//! again.

use time::Duration;

use crate::domain::{Timestamp, WebhookEvent};
use crate::ports::{Clock, ParseError, ProviderRegistry, ResolveError, StoreError};

use super::ingest::{IngestError, IngestOutcome, IngestRepo, Origin, commit_delivery};

/// The waits between attempts to resolve one delivery; after the last, it fails.
pub const RESOLVE_BACKOFF: [Duration; 8] = [
    Duration::seconds(10),
    Duration::seconds(30),
    Duration::minutes(1),
    Duration::minutes(5),
    Duration::minutes(15),
    Duration::hours(1),
    Duration::hours(3),
    Duration::hours(6),
];

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveReport {
    /// Deliveries taken.
    pub due: usize,
    /// Applied (or ignored, or failed for good) with the provider's answer.
    pub settled: usize,
    /// Put off: the provider's API could not answer.
    pub retried: usize,
    /// Role jobs enqueued (wake the role worker when > 0).
    pub jobs: usize,
}

/// Resolves up to `limit` due deferred deliveries.
pub async fn resolve_deferred<R: IngestRepo + ?Sized>(
    repo: &R,
    providers: &ProviderRegistry,
    clock: &dyn Clock,
    limit: usize,
) -> Result<ResolveReport, StoreError> {
    let now = clock.now();
    let due = repo.due_deferred(now, limit).await?;
    let mut report = ResolveReport { due: due.len(), ..ResolveReport::default() };
    for event in &due {
        match resolve_one(repo, providers, event, now).await {
            Ok(Some(outcome)) => {
                report.settled += 1;
                if let IngestOutcome::Processed { jobs } = outcome {
                    report.jobs += jobs;
                }
            }
            Ok(None) => report.retried += 1,
            Err(IngestError::Store(e)) => return Err(e),
            // The guild or its credentials are gone: nothing to resolve against until an owner
            // restores them; try again on the backoff.
            Err(e) => {
                if defer(repo, event, now, &e.to_string()).await? {
                    report.retried += 1;
                }
            }
        }
    }
    Ok(report)
}

/// `Some(outcome)` once settled, `None` when put off.
async fn resolve_one<R: IngestRepo + ?Sized>(
    repo: &R,
    providers: &ProviderRegistry,
    event: &WebhookEvent,
    now: Timestamp,
) -> Result<Option<IngestOutcome>, IngestError> {
    let Some(provider) = providers.get(event.provider) else {
        let why = format!("no provider named {} runs here to resolve it", event.provider);
        defer(repo, event, now, &why).await?;
        return Ok(None);
    };
    let catalog =
        repo.catalog(event.guild, event.provider).await?.ok_or(IngestError::UnknownGuild(event.guild))?;
    let Some(credentials) = &catalog.credentials else {
        return Err(IngestError::NotConfigured { guild: event.guild, provider: event.provider });
    };
    let headers = provider.replay_headers(&event.external_id);
    let parsed = match provider.resolve(&headers, &event.body, credentials).await {
        Ok(parsed) if parsed.deferred.is_none() => Ok(parsed),
        Ok(_) => Err(ParseError { event_id: None, reason: "the provider deferred it again".to_owned() }),
        Err(ResolveError::Unavailable(why)) if next_wait(event).is_some() => {
            defer(repo, event, now, &why).await?;
            return Ok(None);
        }
        Err(e) => Err(ParseError { event_id: None, reason: format!("could not be resolved: {e}") }),
    };
    let report =
        commit_delivery(repo, event.provider, &catalog, &event.body, parsed, now, Origin::Stored(event))
            .await?;
    Ok(Some(report.outcome))
}

/// How long to wait before the next attempt, or `None` when the attempts are used up.
fn next_wait(event: &WebhookEvent) -> Option<Duration> {
    let tried = usize::try_from(event.attempts).unwrap_or(usize::MAX);
    RESOLVE_BACKOFF.get(tried.saturating_sub(1)).copied()
}

async fn defer<R: IngestRepo + ?Sized>(
    repo: &R,
    event: &WebhookEvent,
    now: Timestamp,
    why: &str,
) -> Result<bool, StoreError> {
    let wait = next_wait(event).unwrap_or(RESOLVE_BACKOFF[RESOLVE_BACKOFF.len() - 1]);
    repo.defer_again(event.id, now + wait, why).await
}
