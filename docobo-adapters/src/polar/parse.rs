//! Polar's webhook payloads → provider-neutral events (reference `providers.md` §1.3–1.4).
//!
//! Only the fields that decide access are read, leniently: unknown fields are ignored, nullable
//! fields may be null, metadata values may be strings, integers, floats or booleans. Access is
//! decided by the object's *state*, not by the event name, because Polar sends several events for
//! one change and retries break their order:
//!
//! | payload | state | events |
//! |---|---|---|
//! | `subscription.*` | `active`, `trialing` | `PaymentSucceeded{current_period_end}` + `CancelScheduled{ends_at}` if `cancel_at_period_end`, else `CancelUndone` |
//! | | `past_due` | `PaymentSucceeded` + `PaymentFailed` (it was paid before; now in grace) |
//! | | `canceled`, `unpaid`, `incomplete_expired` | `Revoked` |
//! | | `paused` | `CancelScheduled{paused_at}`: access ends, and a resume can reactivate it |
//! | | `incomplete` | `PaymentPending` |
//! | `order.paid`/`updated`/`created` (one-time) | `paid` (not for `order.created`) | `PaymentSucceeded{none}` |
//! | | `refunded` | `Refunded{full: true}` |
//! | | `partially_refunded` | `Refunded{full: false}` (recorded) |
//! | | `pending` | `PaymentPending` |
//! | `order.*` for a subscription | — | ignored: subscription events carry access, and Polar does not end a subscription's access on refund |
//! | anything else | — | ignored, with a note |
//!
//! Events are versioned by the object's `modified_at` (its `created_at` when never modified).
//!
//! A paid, refunded or partly refunded order, one-time or a subscription's, also reports the
//! money: `net_amount` (after discounts, before taxes) and `refunded_amount`, in its currency, for
//! revenue figures. It never decides access.

use std::collections::BTreeMap;

use docobo_core::domain::EventId;
use docobo_core::domain::{CheckoutRef, Currency, ExternalRef, GuildId, Money, RoleId, Timestamp, UserId};
use docobo_core::machine::{Event, EventKind, Version};
use docobo_core::ports::{ParseError, ParsedWebhook, PaymentFact, ProviderEvent, Subject};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    data: Value,
}

#[derive(Deserialize, Default)]
struct Customer {
    #[serde(default)]
    external_id: Option<String>,
}

/// The fields subscriptions and orders share: identity, version, and who bought what.
#[derive(Deserialize)]
struct Object {
    id: String,
    status: String,
    created_at: String,
    #[serde(default)]
    modified_at: Option<String>,
    #[serde(default)]
    product_id: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, Value>,
    #[serde(default)]
    customer: Option<Customer>,
}

impl Object {
    /// `modified_at`, or `created_at` for an object never modified.
    fn version(&self) -> Result<Version, String> {
        Ok(Version(time(self.modified_at.as_deref().unwrap_or(&self.created_at), "modified_at")?))
    }

    /// `kinds`, each as a fact about this object at `version`.
    fn events(&self, kinds: Vec<EventKind>, version: Version) -> Result<Vec<ProviderEvent>, String> {
        let subject = subject(&self.metadata, self.customer.as_ref(), self.product_id.as_deref())?;
        let reference = reference(&self.id)?;
        Ok(kinds
            .into_iter()
            .map(|kind| ProviderEvent::new(Some(reference.clone()), Event { kind, version }, subject.clone()))
            .collect())
    }
}

#[derive(Deserialize)]
struct Subscription {
    #[serde(flatten)]
    object: Object,
    #[serde(default)]
    current_period_end: Option<String>,
    #[serde(default)]
    cancel_at_period_end: bool,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default)]
    paused_at: Option<String>,
}

#[derive(Deserialize)]
struct Order {
    #[serde(flatten)]
    object: Object,
    #[serde(default)]
    subscription_id: Option<String>,
    /// Cents after discounts, before taxes: what the owner is paid before fees.
    #[serde(default)]
    net_amount: Option<i64>,
    #[serde(default)]
    refunded_amount: Option<i64>,
    #[serde(default)]
    currency: Option<String>,
}

impl Order {
    /// The money a paid (or since refunded) order brought in. `None` for an unpaid order, or
    /// one whose amount or currency Docobo cannot record; access does not depend on it.
    fn payment(&self) -> Option<PaymentFact> {
        if !matches!(self.object.status.as_str(), "paid" | "refunded" | "partially_refunded") {
            return None;
        }
        let currency: Currency = self.currency.as_deref()?.parse().ok()?;
        let money = |minor: i64| Money::from_minor(minor, currency).ok();
        let at = time(&self.object.created_at, "created_at").ok()?;
        let mut fact = PaymentFact::new(reference(&self.object.id).ok()?, money(self.net_amount?)?, at);
        fact.refunded = money(self.refunded_amount.unwrap_or(0))?;
        fact.subject =
            subject(&self.object.metadata, self.object.customer.as_ref(), self.object.product_id.as_deref())
                .unwrap_or_default();
        Some(fact)
    }
}

/// Parses a delivery whose id (the `webhook-id` header) is `event_id`.
pub fn parse(event_id: EventId, body: &[u8]) -> Result<ParsedWebhook, ParseError> {
    let fail = |reason: String| ParseError { event_id: Some(event_id.clone()), reason };
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| fail(format!("not a Polar webhook: {e}")))?;
    let ignored = |note: String| Ok(ParsedWebhook::ignored(event_id.clone(), note));
    let kind = envelope.kind.as_str();
    let (events, payment) = if kind.starts_with("subscription.") {
        let sub: Subscription = serde_json::from_value(envelope.data)
            .map_err(|e| fail(format!("{kind}: unreadable subscription: {e}")))?;
        (subscription_events(&sub).map_err(&fail)?, None)
    } else if matches!(kind, "order.paid" | "order.updated" | "order.created" | "order.refunded") {
        let order: Order = serde_json::from_value(envelope.data)
            .map_err(|e| fail(format!("{kind}: unreadable order: {e}")))?;
        if order.subscription_id.is_some() {
            // Still money received: a renewal's revenue is recorded from its order.
            let note =
                format!("{kind} for a subscription order: access follows the subscription's own events");
            let mut ignored = ParsedWebhook::ignored(event_id.clone(), note);
            ignored.payment = order.payment();
            return Ok(ignored);
        }
        (order_events(kind, &order).map_err(&fail)?, order.payment())
    } else {
        return ignored(format!("{kind} does not affect access"));
    };
    if events.is_empty() {
        return ignored(format!("{kind} in this state does not change access"));
    }
    let mut parsed = ParsedWebhook::new(event_id, events);
    parsed.payment = payment;
    Ok(parsed)
}

fn subscription_events(sub: &Subscription) -> Result<Vec<ProviderEvent>, String> {
    let version = sub.object.version()?;
    let period_end = sub.current_period_end.as_deref().map(|t| time(t, "current_period_end")).transpose()?;
    let paid = EventKind::PaymentSucceeded { access_until: period_end };
    let kinds = match sub.object.status.as_str() {
        "active" | "trialing" if sub.cancel_at_period_end => {
            let end = sub.ends_at.as_deref().map(|t| time(t, "ends_at")).transpose()?.or(period_end);
            let end = end.ok_or("a cancelled subscription has neither ends_at nor current_period_end")?;
            vec![paid, EventKind::CancelScheduled { access_until: end }]
        }
        "active" | "trialing" => vec![paid, EventKind::CancelUndone],
        "past_due" => vec![paid, EventKind::PaymentFailed],
        "canceled" | "unpaid" | "incomplete_expired" => vec![EventKind::Revoked],
        "paused" => {
            let at =
                sub.paused_at.as_deref().map(|t| time(t, "paused_at")).transpose()?.unwrap_or(version.at());
            vec![EventKind::CancelScheduled { access_until: at }]
        }
        "incomplete" => vec![EventKind::PaymentPending],
        other => return Err(format!("unknown subscription status {other:?}")),
    };
    sub.object.events(kinds, version)
}

fn order_events(kind: &str, order: &Order) -> Result<Vec<ProviderEvent>, String> {
    let event = match (kind, order.object.status.as_str()) {
        // `order.created` may describe an unpaid order; only `order.paid` (or a later update that
        // says paid) grants.
        ("order.created", _) | (_, "pending") => EventKind::PaymentPending,
        (_, "paid") => EventKind::PaymentSucceeded { access_until: None },
        (_, "refunded") => EventKind::Refunded { full: true },
        (_, "partially_refunded") => EventKind::Refunded { full: false },
        (_, "draft" | "void") => return Ok(vec![]),
        (_, other) => return Err(format!("unknown order status {other:?}")),
    };
    let mut events = order.object.events(vec![event], order.object.version()?)?;
    // A one-time order never renews (a subscription's renewal orders are ignored above).
    events.iter_mut().for_each(|e| e.subject.one_time = true);
    Ok(events)
}

fn reference(id: &str) -> Result<ExternalRef, String> {
    id.parse().map_err(|e| format!("object id: {e}"))
}

/// RFC 3339, as the schema's `date-time`; a value without an offset is taken as UTC.
fn time(raw: &str, field: &str) -> Result<Timestamp, String> {
    OffsetDateTime::parse(raw, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&format!("{raw}Z"), &Rfc3339))
        .map_err(|_| format!("{field} {raw:?} is not a date-time"))
}

/// A metadata value as text: strings as they are, integers in decimal. Floats and booleans are
/// not identifiers.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

fn subject(
    metadata: &BTreeMap<String, Value>,
    customer: Option<&Customer>,
    product: Option<&str>,
) -> Result<Subject, String> {
    let field = |key: &str| metadata.get(key).and_then(text);
    let user = match field("discord_user_id") {
        Some(raw) => Some(raw.parse::<UserId>().map_err(|e| format!("metadata discord_user_id: {e}"))?),
        // Our checkouts also set the customer's external id to `discord:<user id>`.
        None => customer.and_then(|c| c.external_id.as_deref()?.strip_prefix("discord:")?.parse().ok()),
    };
    let role = field("paid_role_id")
        .map(|raw| raw.parse::<RoleId>().map_err(|e| format!("metadata paid_role_id: {e}")))
        .transpose()?;
    let checkout_refs = field("checkout_ref")
        .map(|raw| raw.parse::<CheckoutRef>().map_err(|e| format!("metadata checkout_ref: {e}")))
        .transpose()?
        .into_iter()
        .collect();
    let guild = field("guild_id")
        .map(|raw| raw.parse::<GuildId>().map_err(|e| format!("metadata guild_id: {e}")))
        .transpose()?;
    let mut subject = Subject::default();
    (subject.user, subject.role, subject.guild) = (user, role, guild);
    subject.product = product.map(str::to_owned);
    subject.checkout_refs = checkout_refs;
    Ok(subject)
}
