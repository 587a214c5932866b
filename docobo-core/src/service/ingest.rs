//! `ingest_webhook`: verify → parse → record the delivery, apply its events and enqueue role
//! jobs in one atomic commit → acknowledge.
//!
//! A successful return means the delivery is durable; the HTTP edge answers 2xx only then. No
//! Discord call happens here: role changes are the worker's job.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::domain::{
    EntitlementId, EventId, EventOutcome, ExternalRef, Guild, GuildId, IdError, Money, ProviderKind,
    RoleJobKey, Timestamp, WebhookEvent,
};
use crate::machine::{self, Effect, EventKind, Standing};
use crate::ports::ParseError;
use crate::ports::{
    CatalogRepo, CheckoutRepo, Clock, Commit, EntitlementRepo, EntitlementWrite, Headers, Ledger,
    ParsedWebhook, PaymentProvider, ProviderEvent, Recorded, StoreError, VerifyError,
};

/// How many times a delivery is re-planned when a concurrent delivery for the same purchase
/// commits first. Each retry re-reads the entitlement, so it converges quickly; past this the
/// provider gets a 5xx and redelivers.
const MAX_CONFLICT_RETRIES: usize = 8;

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
    Failed { reason: String },
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
    NotConfigured { guild: GuildId, provider: ProviderKind },
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
    let kind = provider.kind();
    let guild = repo.guild(guild).await?.ok_or(IngestError::UnknownGuild(guild))?;
    let credentials = repo
        .credentials(guild.id, kind)
        .await?
        .ok_or(IngestError::NotConfigured { guild: guild.id, provider: kind })?;
    let now = clock.now();
    provider.verify(headers, body, &credentials, now)?;

    let parsed = provider.parse(headers, body, &credentials);
    commit_delivery(repo, kind, &guild, body, parsed, now, None).await
}

/// Plans and commits one parsed delivery, re-planning when a concurrent delivery for the same
/// purchase commits first. `previous` is the stored failed delivery being replayed, if any.
pub(super) async fn commit_delivery<R: IngestRepo + ?Sized>(
    repo: &R,
    kind: ProviderKind,
    guild: &Guild,
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
            Ok(parsed) => plan(repo, guild, kind, parsed, now).await?,
            Err(e) => (Commit::empty(now), IngestOutcome::Failed { reason: e.reason.clone() }),
        };
        let mut event = record(kind, guild, &event_id, body, now, &outcome);
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
    kind: ProviderKind,
    guild: &Guild,
    id: &EventId,
    body: &[u8],
    now: Timestamp,
    outcome: &IngestOutcome,
) -> WebhookEvent {
    let (outcome, last_error) = match outcome {
        IngestOutcome::Processed { .. } | IngestOutcome::Duplicate => (EventOutcome::Processed, None),
        IngestOutcome::Ignored { note } => (EventOutcome::Ignored, Some(note.clone())),
        IngestOutcome::Failed { reason } => (EventOutcome::Failed, Some(reason.clone())),
    };
    WebhookEvent {
        id: 0,
        provider: kind,
        guild: guild.id,
        external_id: id.clone(),
        body: body.to_vec(),
        received_at: now,
        outcome,
        attempts: 1,
        last_error,
    }
}

impl Commit {
    fn empty(at: Timestamp) -> Self {
        Commit { event: None, replay: false, writes: Vec::new(), jobs: Vec::new(), cause: String::new(), at }
    }

    fn with_event(mut self, event: WebhookEvent) -> Self {
        self.cause = format!("{} {}", event.provider, event.external_id);
        self.event = Some(event);
        self
    }
}

/// An entitlement as the plan is building it.
struct Planned {
    key: RoleJobKey,
    existing: Option<(EntitlementId, u64)>,
    standing: Standing,
    sync: bool,
}

/// Resolves every event to its entitlement and applies it. Any event that cannot be resolved or
/// applied fails the whole delivery (nothing is written but the failed record), so a replay after
/// a fix applies it exactly once.
async fn plan<R: IngestRepo + ?Sized>(
    repo: &R,
    guild: &Guild,
    kind: ProviderKind,
    parsed: &ParsedWebhook,
    now: Timestamp,
) -> Result<(Commit, IngestOutcome), StoreError> {
    if parsed.events.is_empty() {
        let note = parsed.note.clone().unwrap_or_else(|| "no access-relevant facts".to_owned());
        return Ok((Commit::empty(now), IngestOutcome::Ignored { note }));
    }
    let mut planned: BTreeMap<ExternalRef, Planned> = BTreeMap::new();
    for event in &parsed.events {
        let resolved = match resolve(repo, guild, kind, event, now, &mut planned).await? {
            Ok(r) => r,
            Err(reason) => return Ok((Commit::empty(now), IngestOutcome::Failed { reason })),
        };
        if let (EventKind::PaymentSucceeded { .. }, Some(paid), Some(expected)) =
            (event.event.kind, event.subject.paid, resolved.expected)
            && !paid.covers(&expected)
        {
            let reason = format!("underpaid: received {paid}, expected {expected}; no access was granted");
            return Ok((Commit::empty(now), IngestOutcome::Failed { reason }));
        }
        let Some(entry) = planned.get_mut(&resolved.reference) else {
            unreachable!("resolve inserts what it returns")
        };
        match machine::apply(&entry.standing, &event.event, now) {
            Ok(t) => {
                entry.sync |= t.effects.contains(&Effect::SyncRole);
                entry.standing = t.standing;
            }
            Err(e) => return Ok((Commit::empty(now), IngestOutcome::Failed { reason: e.to_string() })),
        }
    }
    let mut commit = Commit::empty(now);
    for (external_ref, p) in planned {
        if p.sync {
            commit.jobs.push(p.key);
        }
        let deadline = p.standing.deadline(guild.grace);
        commit.writes.push(match p.existing {
            Some((id, revision)) => {
                EntitlementWrite::Update { id, expected_revision: revision, standing: p.standing, deadline }
            }
            None => EntitlementWrite::Insert {
                guild: p.key.guild,
                user: p.key.user,
                role: p.key.role,
                provider: kind,
                external_ref,
                standing: p.standing,
                deadline,
            },
        });
    }
    let jobs = commit.jobs.len();
    Ok((commit, IngestOutcome::Processed { jobs }))
}

/// What an event resolved to.
struct Resolved {
    reference: ExternalRef,
    /// What a payment for it must cover: the checkout's amount, else the role's price.
    expected: Option<Money>,
}

/// Finds (or prepares) the entitlement an event is about and adds it to `planned`. `Ok(Err(..))`
/// is a reason to put the delivery in the failure inbox.
async fn resolve<R: IngestRepo + ?Sized>(
    repo: &R,
    guild: &Guild,
    kind: ProviderKind,
    event: &ProviderEvent,
    now: Timestamp,
    planned: &mut BTreeMap<ExternalRef, Planned>,
) -> Result<Result<Resolved, String>, StoreError> {
    let subject = &event.subject;
    // A checkout named in the payload tells who paid, for which role and how much.
    let mut checkout = None;
    for candidate in &subject.checkout_refs {
        if let Some(c) = repo.checkout(guild.id, candidate).await?.filter(|c| c.provider == kind) {
            checkout = Some(c);
            break;
        }
    }
    let reference = match (&event.entitlement_ref, &checkout) {
        (Some(r), _) => Some(r.clone()),
        (None, Some(c)) => {
            Some(c.reference.as_str().parse().map_err(|e: IdError| StoreError::Corrupt(e.to_string()))?)
        }
        (None, None) => None,
    };
    // Already part of this delivery, or already stored: the entitlement knows member and role.
    let known = match &reference {
        Some(r) => match planned.get(r) {
            Some(p) => Some((r.clone(), p.key.role)),
            None => match repo.entitlement(kind, guild.id, r).await? {
                Some(found) => {
                    let role = found.role;
                    planned.insert(
                        r.clone(),
                        Planned {
                            key: found.job_key(),
                            existing: Some((found.id, found.revision)),
                            standing: found.standing,
                            sync: false,
                        },
                    );
                    Some((r.clone(), role))
                }
                None => None,
            },
        },
        None => None,
    };
    if let Some((reference, role)) = known {
        let expected = match &checkout {
            Some(c) => Some(c.expected),
            None => repo.paid_role(guild.id, role).await?.map(|r| r.price),
        };
        return Ok(Ok(Resolved { reference, expected }));
    }
    if let Some(c) = checkout.as_ref().filter(|c| !c.is_open(now)) {
        return Ok(Err(format!(
            "checkout {} expired at {}; the payment cannot start a new purchase",
            c.reference, c.expires_at
        )));
    }
    let Some(user) = subject.user.or(checkout.as_ref().map(|c| c.user)) else {
        return Ok(Err("cannot tell which Discord member paid: no discord_user_id in the metadata and no \
                       matching checkout"
            .to_owned()));
    };
    let paid_role = match (subject.role.or(checkout.as_ref().map(|c| c.role)), &subject.product) {
        (Some(role), _) => match repo.paid_role(guild.id, role).await? {
            Some(r) => r,
            None => return Ok(Err(format!("role {role} is not sold in guild {}", guild.id))),
        },
        (None, product) => {
            let found = match product {
                Some(p) => repo.paid_role_by_product(guild.id, p).await?,
                None => None,
            };
            let Some(r) = found else {
                let product = product.as_deref().unwrap_or("(none)");
                return Ok(Err(format!(
                    "cannot tell which paid role was bought: product {product} is not linked to a role \
                     (docobo role add ... --polar-product) and no checkout matched"
                )));
            };
            r
        }
    };
    let role = paid_role.role;
    let Some(reference) = reference else {
        return Ok(Err(
            "the payload names no purchase to track (no subscription, order or checkout reference)"
                .to_owned(),
        ));
    };
    let expected = Some(checkout.map_or(paid_role.price, |c| c.expected));
    let key = RoleJobKey { guild: guild.id, user, role };
    planned.entry(reference.clone()).or_insert(Planned {
        key,
        existing: None,
        standing: Standing::new(paid_role.term),
        sync: false,
    });
    Ok(Ok(Resolved { reference, expected }))
}
