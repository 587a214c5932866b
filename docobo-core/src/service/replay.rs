//! Replaying a delivery from the failure inbox after its cause was fixed (a product linked to a
//! role, a member identified, a bug fixed): parse the stored body again and apply it exactly once.

use crate::domain::{DeliveryId, WebhookEvent};
use crate::ports::{Clock, PaymentProvider};

use super::ingest::{IngestError, IngestRepo, IngestReport, Origin, commit_delivery};

/// Why a stored delivery was not replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("event {0} is not in the failure inbox (only failed events are replayed)")]
    NotFailed(DeliveryId),
    #[error("event {id} came from {stored}, not {given}")]
    WrongProvider { id: DeliveryId, stored: crate::domain::ProviderName, given: crate::domain::ProviderName },
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// Re-applies the stored failed delivery `event` with `provider`. Authentication is not checked
/// again: it was checked when the delivery was first stored. The stored row is updated (outcome,
/// reason, attempts), so a delivery replayed twice concurrently applies once.
pub async fn replay_event<R: IngestRepo + ?Sized>(
    repo: &R,
    provider: &dyn PaymentProvider,
    clock: &dyn Clock,
    event: &WebhookEvent,
) -> Result<IngestReport, ReplayError> {
    if event.outcome != crate::domain::EventOutcome::Failed {
        return Err(ReplayError::NotFailed(event.id));
    }
    if provider.name() != event.provider {
        return Err(ReplayError::WrongProvider {
            id: event.id,
            stored: event.provider,
            given: provider.name(),
        });
    }
    let catalog = repo
        .catalog(event.guild, event.provider)
        .await
        .map_err(IngestError::from)?
        .ok_or(IngestError::UnknownGuild(event.guild))?;
    let Some(credentials) = &catalog.credentials else {
        return Err(IngestError::NotConfigured { guild: event.guild, provider: event.provider }.into());
    };
    let headers = provider.replay_headers(&event.external_id);
    let parsed = provider.parse(&headers, &event.body, credentials);
    Ok(commit_delivery(
        repo,
        event.provider,
        &catalog,
        &event.body,
        parsed,
        clock.now(),
        Origin::Stored(event),
    )
    .await?)
}
