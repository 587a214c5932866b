//! Planning one delivery: resolving each event to its entitlement (stored, in this delivery,
//! or new — identified by metadata, a checkout, or a linked product), checking what a payment
//! must cover, and applying the state machine. The result is one `Commit`, written atomically by
//! the caller.

use std::collections::BTreeMap;

use crate::domain::{
    EntitlementId, ExternalRef, Guild, IdError, Money, PaidRole, Payment, ProviderName, RoleId, RoleJobKey,
    Timestamp, UserId,
};
use crate::machine::{self, Effect, EventKind, Standing};
use crate::ports::{
    Commit, EntitlementWrite, GuildCatalog, ParsedWebhook, PaymentFact, ProviderEvent, StoreError, Subject,
};

use super::{IngestOutcome, IngestRepo, Unresolved};
use crate::service::notices::{Purchase, on_change};

/// How late after its checkout expired a payment may have been made and still count: bank
/// transfers are booked with the bank's own clock, which may lag.
pub const CHECKOUT_GRACE: time::Duration = time::Duration::minutes(15);

/// An entitlement as the plan is building it.
struct Planned {
    key: RoleJobKey,
    existing: Option<(EntitlementId, u64)>,
    standing: Standing,
    sync: bool,
    /// The stored standing before this delivery.
    before: Option<Standing>,
}

/// Resolves every event to its entitlement and applies it. Any event that cannot be resolved or
/// applied fails the whole delivery (nothing is written but the failed record), so a replay after
/// a fix applies it exactly once.
pub(super) async fn plan<R: IngestRepo + ?Sized>(
    repo: &R,
    catalog: &GuildCatalog,
    kind: ProviderName,
    parsed: &ParsedWebhook,
    now: Timestamp,
) -> Result<(Commit, IngestOutcome), StoreError> {
    let guild = &catalog.guild;
    if parsed.events.is_empty() {
        let note = parsed.note.clone().unwrap_or_else(|| "no access-relevant facts".to_owned());
        // A renewal order changes no access but is still money received.
        let mut commit = Commit::new(now);
        if let Some(fact) = &parsed.payment {
            let role = fact.subject.role.or_else(|| sold_as(catalog, kind, &fact.subject).map(|r| r.role));
            commit.payments.push(payment(guild, kind, fact, fact.subject.user, role));
        }
        return Ok((commit, IngestOutcome::Ignored { note }));
    }
    let mut planned: BTreeMap<ExternalRef, Planned> = BTreeMap::new();
    for event in &parsed.events {
        let resolved = match resolve(repo, catalog, kind, event, now, &mut planned).await? {
            Ok(r) => r,
            Err(reason) => return Ok((Commit::new(now), IngestOutcome::Failed { reason })),
        };
        if let (EventKind::PaymentSucceeded { .. }, Some(paid), Some(expected)) =
            (event.event.kind, event.subject.paid, resolved.expected)
            && !paid.covers(&expected)
        {
            let reason = Unresolved::Underpaid { paid, expected };
            return Ok((Commit::new(now), IngestOutcome::Failed { reason }));
        }
        let Some(entry) = planned.get_mut(&resolved.reference) else {
            unreachable!("resolve inserts what it returns")
        };
        if let EventKind::PaymentSucceeded { .. } = event.event.kind
            && event.subject.one_time
            && !entry.standing.term.one_payment_suffices()
        {
            let reason = Unresolved::OneTimeForRecurring { provider: kind };
            return Ok((Commit::new(now), IngestOutcome::Failed { reason }));
        }
        // A payment for N units is N payments (each adds a fixed term); a purchase that is paid
        // once, and was paid, is not paid again.
        let times = match event.event.kind {
            EventKind::PaymentSucceeded { .. }
                if event.subject.paid_once && entry.before.as_ref().is_some_and(|b| b.paid) =>
            {
                0
            }
            EventKind::PaymentSucceeded { .. } => event.subject.units.max(1),
            _ => 1,
        };
        for _ in 0..times {
            match machine::apply(&entry.standing, &event.event, now) {
                Ok(t) => {
                    entry.sync |= t.effects.contains(&Effect::SyncRole);
                    entry.standing = t.standing;
                }
                Err(e) => return Ok((Commit::new(now), IngestOutcome::Failed { reason: e.into() })),
            }
        }
    }
    // Who paid and for which role: the purchase the delivery is about.
    let buyer = planned.values().next().map(|p| p.key);
    let mut commit = Commit::new(now);
    for (external_ref, p) in planned {
        if p.sync {
            commit.jobs.push(p.key);
        }
        let purchase = Purchase { key: p.key, provider: kind, external_ref: &external_ref };
        commit.notices.extend(on_change(guild, purchase, p.before.as_ref(), &p.standing, now));
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
    if let Some(fact) = &parsed.payment {
        commit.payments.push(payment(guild, kind, fact, buyer.map(|k| k.user), buyer.map(|k| k.role)));
    }
    let jobs = commit.jobs.len();
    Ok((commit, IngestOutcome::Processed { jobs }))
}

fn payment(
    guild: &Guild,
    kind: ProviderName,
    fact: &PaymentFact,
    user: Option<UserId>,
    role: Option<RoleId>,
) -> Payment {
    Payment {
        provider: kind,
        guild: guild.id,
        reference: fact.reference.clone(),
        user,
        role,
        amount: fact.amount,
        refunded: fact.refunded,
        paid_at: fact.at,
    }
}

/// Why a delivery about a purchase of `role` must not be applied as is: its product is now sold
/// as another role (a member switched plans in the provider's portal). Access is not moved
/// between roles by itself: the delivery goes to the failure inbox, where an owner sees it.
fn product_moved(
    catalog: &GuildCatalog,
    kind: ProviderName,
    subject: &Subject,
    role: RoleId,
) -> Option<Unresolved> {
    let product = subject.product.as_ref()?;
    let sold = sold_as(catalog, kind, subject)?;
    (sold.role != role).then(|| Unresolved::ProductMoved {
        role,
        product: product.clone(),
        sold_as: sold.role,
    })
}

/// The paid role linked to the subject's product (and variant) at `kind`, if any.
fn sold_as<'c>(catalog: &'c GuildCatalog, kind: ProviderName, subject: &Subject) -> Option<&'c PaidRole> {
    catalog.sold_as(kind, subject.product.as_deref(), subject.variant.as_deref())
}

/// What an event resolved to.
struct Resolved {
    reference: ExternalRef,
    /// What a payment for it must cover: the checkout's amount, else the role's price.
    expected: Option<Money>,
}

/// Finds (or prepares) the entitlement an event is about and adds it to `planned`. `Ok(Err(..))`
/// is why the delivery goes to the failure inbox.
async fn resolve<R: IngestRepo + ?Sized>(
    repo: &R,
    catalog: &GuildCatalog,
    kind: ProviderName,
    event: &ProviderEvent,
    now: Timestamp,
    planned: &mut BTreeMap<ExternalRef, Planned>,
) -> Result<Result<Resolved, Unresolved>, StoreError> {
    let guild = &catalog.guild;
    let subject = &event.subject;
    if let Some(other) = subject.guild.filter(|g| *g != guild.id) {
        return Ok(Err(Unresolved::OtherGuild { paid_for: other, here: guild.id }));
    }
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
                            before: Some(found.standing.clone()),
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
        if let Some(moved) = product_moved(catalog, kind, subject, role) {
            return Ok(Err(moved));
        }
        let expected = match &checkout {
            Some(c) => Some(c.expected),
            None => catalog.paid_role(role).map(|r| r.price),
        };
        return Ok(Ok(Resolved { reference, expected }));
    }
    // The checkout's expiry bounds when an offer may be paid, not when the payment is processed:
    // a transfer made in time but delivered late (an outage, the provider's retries, a replay
    // days later) still counts. The payment's own time is its event's version, never later
    // than now.
    let paid_at = event.event.version.at().min(now);
    if let Some(c) = checkout.as_ref().filter(|c| !c.is_open(paid_at.saturating_sub(CHECKOUT_GRACE))) {
        return Ok(Err(Unresolved::ExpiredCheckout {
            checkout: c.reference.clone(),
            expired_at: c.expires_at,
            paid_at,
        }));
    }
    // The checkout Docobo made names the member first; the payload's own id is the fallback.
    let Some(user) = checkout.as_ref().map(|c| c.user).or(subject.user) else {
        return Ok(Err(Unresolved::UnknownMember));
    };
    let paid_role = match (subject.role.or(checkout.as_ref().map(|c| c.role)), &subject.product) {
        (Some(role), _) => match catalog.paid_role(role) {
            Some(r) => r,
            None => return Ok(Err(Unresolved::RoleNotSold { guild: guild.id, role })),
        },
        (None, product) => {
            let Some(r) = sold_as(catalog, kind, subject) else {
                return Ok(Err(Unresolved::UnlinkedProduct { provider: kind, product: product.clone() }));
            };
            r
        }
    };
    let role = paid_role.role;
    if let Some(moved) = product_moved(catalog, kind, subject, role) {
        return Ok(Err(moved));
    }
    let Some(reference) = reference else {
        return Ok(Err(Unresolved::NoPurchase));
    };
    let expected = Some(checkout.map_or(paid_role.price, |c| c.expected));
    let key = RoleJobKey { guild: guild.id, user, role };
    planned.entry(reference.clone()).or_insert(Planned {
        key,
        existing: None,
        standing: Standing::new(paid_role.term),
        sync: false,
        before: None,
    });
    Ok(Ok(Resolved { reference, expected }))
}
