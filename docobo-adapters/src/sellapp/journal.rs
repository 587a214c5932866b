//! Sell.app's 30-day event journal as a reconciler that needs no webhook (reference
//! `sellapp-relay-dm.md` §A1): `GET /v2/events?subject_type=order` read from a stored cursor.
//!
//! Each order event becomes the hint a webhook would have been (`{"event", "event_id",
//! "data":{"id"}}`) and goes through the same ingest path, so the order is read fresh and applied
//! by the resolver: a lost webhook is made up for, a refund (Sell.app sends no refund webhook)
//! shows as the order's `REFUNDED` status and ends access, and an order already applied is paid
//! once however often it is reported. An expired cursor (`410 cursor_expired`) restarts the read
//! from the journal's start. UNCONFIRMED: the name of the next-page cursor in the answer
//! (`meta.next_cursor` or `next_cursor` are read).

use docobo_core::domain::GuildId;
use docobo_core::ports::{CatalogRepo, Clock, StoreError};
use docobo_core::service::{IngestError, IngestOutcome, ingest_fetched};
use serde_json::{Value, json};

use super::Sellapp;
use super::api::Access;
use crate::seaorm::SeaOrmRepo;

/// Most pages one pass reads, so a pass is bounded; the cursor keeps the place.
pub const MAX_PAGES: usize = 20;

/// What one pass over a guild's journal did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalReport {
    /// Order events read.
    pub read: usize,
    /// Of those, new to Docobo (stored and resolved after).
    pub new: usize,
    /// The stored cursor had expired and the journal was read from its start.
    pub restarted: bool,
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("Sell.app's event journal: {0}")]
    Api(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One page of the journal.
struct Page {
    items: Vec<Value>,
    next: Option<String>,
}

enum Read {
    Page(Page),
    CursorExpired,
}

impl Access<'_> {
    async fn events(&self, cursor: Option<&str>) -> Result<Read, JournalError> {
        let mut request = self
            .request(reqwest::Method::GET, "/v2/events")
            .query(&[("subject_type", "order"), ("limit", "50")]);
        if let Some(cursor) = cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let response = request.send().await.map_err(|e| JournalError::Api(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        if status == 410 {
            return Ok(Read::CursorExpired);
        }
        if !(200..300).contains(&status) {
            return Err(JournalError::Api(format!("GET /v2/events answered {status}")));
        }
        let body: Value =
            response.json().await.map_err(|e| JournalError::Api(e.without_url().to_string()))?;
        let items = body.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
        let next = body
            .pointer("/meta/next_cursor")
            .or_else(|| body.get("next_cursor"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(Read::Page(Page { items, next }))
    }
}

/// The delivery a journal item stands for, if it is about an order.
fn delivery(item: &Value) -> Option<Vec<u8>> {
    let subject = item.get("subject")?;
    if subject.get("type")?.as_str()? != "order" {
        return None;
    }
    let order = subject.get("id")?;
    let order = order.as_u64().or_else(|| order.as_str()?.parse().ok())?;
    let body = json!({ "event": item.get("type")?, "event_id": item.get("id")?, "data": { "id": order } });
    serde_json::to_vec(&body).ok()
}

/// Reads `guild`'s journal from the stored cursor and ingests every order event in it. A guild
/// without a Sell.app API key is skipped (nothing to read with).
pub async fn reconcile_journal(
    repo: &SeaOrmRepo,
    sellapp: &Sellapp,
    clock: &dyn Clock,
    guild: GuildId,
) -> Result<JournalReport, JournalError> {
    let mut report = JournalReport::default();
    let Some(credentials) = repo.credentials(guild, Sellapp::NAME).await? else { return Ok(report) };
    let Some(key) = &credentials.api_token else { return Ok(report) };
    let access = Access {
        client: &sellapp.client,
        base: &sellapp.api_url,
        key: key.expose(),
        store: super::store(&credentials),
    };
    let mut cursor = repo.journal_cursor(guild, Sellapp::NAME).await?;
    for _ in 0..MAX_PAGES {
        let page = match access.events(cursor.as_deref()).await? {
            Read::Page(page) => page,
            Read::CursorExpired if !report.restarted => {
                report.restarted = true;
                cursor = None;
                repo.put_journal_cursor(guild, Sellapp::NAME, None, clock.now()).await?;
                continue;
            }
            Read::CursorExpired => {
                return Err(JournalError::Api("a fresh cursor expired at once".to_owned()));
            }
        };
        for body in page.items.iter().filter_map(delivery) {
            report.read += 1;
            match ingest_fetched(repo, sellapp, clock, guild, &body).await {
                Ok(r) if r.outcome != IngestOutcome::Duplicate => report.new += 1,
                Ok(_) => {}
                Err(IngestError::Store(e)) => return Err(e.into()),
                Err(e) => return Err(JournalError::Api(e.to_string())),
            }
        }
        match page.next {
            Some(next) if Some(&next) != cursor.as_ref() => {
                repo.put_journal_cursor(guild, Sellapp::NAME, Some(&next), clock.now()).await?;
                cursor = Some(next);
            }
            _ => break,
        }
    }
    Ok(report)
}
