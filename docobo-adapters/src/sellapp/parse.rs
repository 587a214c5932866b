//! Sell.app deliveries into provider-neutral events (reference `sellapp-relay-dm.md` §A2).
//!
//! The envelope is `{"event", "data", "store"}` (plus `event_id`/`version` on the newer
//! channels). An order object in `data` with its line items and the buyer's Discord id is applied
//! at once; anything less (`{"data":{"id":236}}`) is deferred and read from the API. One line
//! item is one purchase (`{order}-{line}`), paid once however many events report it, and a
//! quantity of N pays N fixed terms. A subscription is one purchase too (`sub-{id}`), matched by
//! its variant and following the recurring rules; the order that starts one grants nothing.

use docobo_core::domain::{CheckoutRef, Currency, EventId, ExternalRef, Money, UserId};
use docobo_core::machine::{Event, EventKind, Version};
use docobo_core::ports::{ParseError, ParsedWebhook, PaymentFact, ProviderEvent, Subject};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Statuses in which an order's money is Sell.app's to keep.
const PAID: [&str; 2] = ["PAID", "COMPLETED"];
/// Statuses in which the money went back: access ends as for a refund.
const RETURNED: [&str; 3] = ["REFUNDED", "REVERSED", "VOIDED"];
/// Events that report a payment.
const GRANTS: [&str; 3] = ["order.completed", "order.paid", "order.manual_payment_completed"];
/// Most units of one line item honoured; a larger quantity is refused rather than looped over.
pub const MAX_QUANTITY: u32 = 120;

#[derive(Deserialize)]
struct Envelope {
    event: String,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    data: Value,
}

/// What Docobo reads of an order, from a webhook or `GET /v2/orders/{id}` (+ deliverables).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Order {
    pub id: u64,
    #[serde(default, deserialize_with = "status")]
    pub status: Option<String>,
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    #[serde(default)]
    pub totals: Option<Totals>,
    #[serde(default)]
    pub timeline: Vec<Stamp>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    /// The buyer's answers to the product's custom fields (`{key, label, value}`), wherever
    /// Sell.app puts them: here, or per variant in the deliverables.
    #[serde(default)]
    pub additional_information: Vec<Answer>,
    #[serde(default)]
    pub customer_information: Option<Value>,
}

/// What Docobo reads of a subscription, from a webhook or `GET /v2/subscriptions/{id}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Subscription {
    pub id: u64,
    #[serde(default, deserialize_with = "status")]
    pub status: Option<String>,
    #[serde(default)]
    pub current_period_start: Option<String>,
    #[serde(default)]
    pub current_period_end: Option<String>,
    #[serde(default)]
    pub cancel_at_period_end: bool,
    #[serde(default)]
    pub canceled_immediately_at: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub product_variant_id: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    /// `{id, email, external_id, name, metadata}`: the buyer's Discord id is read from
    /// `metadata.discord_user_id`, else from an `external_id` that is a snowflake.
    #[serde(default)]
    pub customer: Option<Value>,
}

impl Subscription {
    pub fn buyer(&self) -> Option<UserId> {
        let customer = self.customer.as_ref()?;
        let named = customer.pointer("/metadata/discord_user_id").and_then(Value::as_str);
        named.or_else(|| customer.get("external_id").and_then(Value::as_str))?.trim().parse().ok()
    }

    fn complete(&self) -> bool {
        self.status.is_some() && self.current_period_end.is_some() && self.buyer().is_some()
    }
}

/// What the resolver read from the API for a deferred delivery.
#[derive(Debug, Clone)]
pub enum Fetched {
    Order(Order),
    Subscription(Subscription),
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LineItem {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default, deserialize_with = "text")]
    pub product_id: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub product_variant_id: Option<String>,
    #[serde(default = "one")]
    pub quantity: u32,
    /// Set on the order that starts or renews a subscription: access follows the
    /// subscription's own events, so the line grants nothing itself.
    #[serde(default)]
    pub subscription_id: Option<Value>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Totals {
    pub currency: String,
    pub total_cents: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Stamp {
    pub status: String,
    pub set_at: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Answer {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub value: Option<String>,
}

/// A string or a number, as text.
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// `"PAID"`, or the invoice shape `{"status": "PAID"}` (one or two levels deep).
fn status<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    let inner = |v: &Value| v.get("status").cloned();
    let found = match &v {
        Value::String(_) => Some(v.clone()),
        _ => inner(&v).and_then(|s| if s.is_string() { Some(s) } else { inner(&s) }),
    };
    Ok(found.and_then(|s| s.as_str().map(str::to_ascii_uppercase)))
}

impl Order {
    /// The reference of the checkout `/join` made for it (the custom field `docobo_checkout`).
    fn checkout(&self) -> Option<CheckoutRef> {
        let answer =
            self.additional_information.iter().find(|a| a.key.as_deref() == Some("docobo_checkout"))?;
        answer.value.as_deref()?.trim().parse().ok()
    }

    /// Everything needed to apply it: line items, a status, and who bought it.
    fn complete(&self) -> bool {
        !self.line_items.is_empty() && self.status.is_some() && self.buyer().is_some()
    }

    /// The buyer's Discord id: the custom field `discord_user_id` (or labelled "Discord ID" /
    /// "Discord User ID"), else the invoice's `customer_information.discord_data.id`.
    pub fn buyer(&self) -> Option<UserId> {
        let named = |a: &&Answer| {
            a.key.as_deref() == Some("discord_user_id")
                || a.label.as_deref().is_some_and(|l| {
                    let l = l.trim().to_ascii_lowercase();
                    l == "discord id" || l == "discord user id"
                })
        };
        let answered = self
            .additional_information
            .iter()
            .filter(named)
            .find_map(|a| a.value.as_deref()?.trim().parse().ok());
        answered.or_else(|| {
            let data = self.customer_information.as_ref()?.get("discord_data")?;
            let id = data.get("id").or_else(|| data.get("user_id"))?;
            id.as_str().map(str::to_owned).or_else(|| id.as_u64().map(|n| n.to_string()))?.parse().ok()
        })
    }

    /// When it first reached one of `statuses`, else when it last changed (its latest timeline
    /// entry, `updated_at`, `created_at`).
    fn when(&self, statuses: &[&str]) -> Option<OffsetDateTime> {
        let at = |s: &str| OffsetDateTime::parse(s, &Rfc3339).ok();
        let stamps =
            || self.timeline.iter().filter_map(|s| Some((s.status.to_ascii_uppercase(), at(&s.set_at)?)));
        stamps()
            .filter(|(status, _)| statuses.contains(&status.as_str()))
            .map(|(_, t)| t)
            .min()
            .or_else(|| stamps().map(|(_, t)| t).max())
            .or_else(|| self.updated_at.as_deref().and_then(at))
            .or_else(|| self.created_at.as_deref().and_then(at))
    }
}

/// The delivery id: Sell.app's event id when it sent one, else the event, the order and its
/// status, so that a redelivery is a duplicate and a later status is not.
fn delivery_id(envelope: &Envelope, order_id: Option<u64>, status: Option<&str>) -> Result<EventId, String> {
    let raw = match (&envelope.event_id, order_id) {
        (Some(id), _) if id.starts_with("evt_") => id.clone(),
        (_, Some(order)) => {
            format!("{}:{order}:{}", envelope.event, status.unwrap_or("hint").to_ascii_lowercase())
        }
        (_, None) => return Err("the webhook names no order id".to_owned()),
    };
    raw.parse().map_err(|e| format!("delivery id: {e}"))
}

/// Parses a delivery. `resolved` is what the API said, for a deferred one.
pub fn parse(body: &[u8], resolved: Option<Fetched>) -> Result<ParsedWebhook, ParseError> {
    let fail = |event_id: Option<EventId>, reason: String| ParseError { event_id, reason };
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| fail(None, format!("not a Sell.app webhook: {e}")))?;
    let kind = envelope.event.as_str();
    let sent: Option<Order> = serde_json::from_value(envelope.data.clone()).ok();
    let order_id = sent.as_ref().map(|o| o.id).or_else(|| envelope.data.get("id").and_then(Value::as_u64));
    let event_id = delivery_id(&envelope, order_id, sent.as_ref().and_then(|o| o.status.as_deref()))
        .map_err(|e| fail(None, e))?;
    if kind.starts_with("subscription.") {
        let sent: Option<Subscription> = serde_json::from_value(envelope.data.clone()).ok();
        let sub = match (resolved, sent) {
            (Some(Fetched::Subscription(sub)), _) => sub,
            (None, Some(sub)) if sub.complete() => sub,
            _ => {
                let why = format!(
                    "{kind} carries no period end or Discord id: subscription {} is read from Sell.app's API",
                    order_id.unwrap_or(0)
                );
                return Ok(ParsedWebhook::deferred(event_id, why));
            }
        };
        return subscription_events(kind, &sub, event_id.clone())
            .map_err(|reason| fail(Some(event_id), reason));
    }
    if !kind.starts_with("order.") {
        return Ok(ParsedWebhook::ignored(event_id, format!("{kind} does not affect access")));
    }
    let order = match (resolved, sent) {
        (Some(Fetched::Order(order)), _) => order,
        (None, Some(order)) if order.complete() => order,
        _ => {
            let why = format!(
                "{kind} carries no line items or Discord id: order {} is read from Sell.app's API",
                order_id.unwrap_or(0)
            );
            return Ok(ParsedWebhook::deferred(event_id, why));
        }
    };
    order_events(kind, &order, event_id.clone()).map_err(|reason| fail(Some(event_id), reason))
}

fn order_events(kind: &str, order: &Order, event_id: EventId) -> Result<ParsedWebhook, String> {
    let status = order.status.as_deref().unwrap_or("PENDING");
    let (event, statuses): (EventKind, &[&str]) = if RETURNED.contains(&status) {
        (EventKind::Refunded { full: true }, &RETURNED)
    } else if kind == "order.disputed" || status == "DISPUTING" {
        (EventKind::Disputed, &["DISPUTING"])
    } else if PAID.contains(&status) && GRANTS.contains(&kind)
        || PAID.contains(&status) && kind == "order.updated"
    {
        (EventKind::PaymentSucceeded { access_until: None }, &PAID)
    } else {
        return Ok(ParsedWebhook::ignored(
            event_id,
            format!("{kind} with order status {status} does not change access"),
        ));
    };
    let at = order.when(statuses).ok_or("the order carries no usable time (timeline, updated_at)")?;
    let version = Version(at);
    let Some(user) = order.buyer() else {
        return Err(format!(
            "order {} names no Discord member: add a hidden custom field with key discord_user_id to the Sell.app \
             product (or require Discord at checkout), then replay this delivery",
            order.id
        ));
    };
    let mut events = Vec::new();
    for (n, line) in order
        .line_items
        .iter()
        .enumerate()
        .filter(|(_, l)| l.subscription_id.as_ref().is_none_or(Value::is_null))
    {
        let reference: ExternalRef = format!("{}-{}", order.id, line.id.map_or(n as u64, |id| id))
            .parse()
            .map_err(|e| format!("order reference: {e}"))?;
        if line.quantity > MAX_QUANTITY {
            return Err(format!(
                "line item of order {} has quantity {}, above {MAX_QUANTITY}",
                order.id, line.quantity
            ));
        }
        let mut subject = Subject::default();
        subject.user = Some(user);
        subject.product.clone_from(&line.product_id);
        subject.variant.clone_from(&line.product_variant_id);
        subject.checkout_refs = order.checkout().into_iter().collect();
        (subject.one_time, subject.paid_once, subject.units) = (true, true, line.quantity);
        events.push(ProviderEvent::new(Some(reference), Event { kind: event, version }, subject));
    }
    if events.is_empty() {
        if order.line_items.is_empty() {
            return Err(format!("order {} has no line items", order.id));
        }
        let note = format!("{kind} for a subscription order: access follows the subscription's own events");
        return Ok(ParsedWebhook::ignored(event_id, note));
    }
    let mut parsed = ParsedWebhook::new(event_id, events);
    if let (EventKind::PaymentSucceeded { .. }, Some(totals)) = (event, &order.totals)
        && let Ok(currency) = totals.currency.parse::<Currency>()
        && let (Ok(amount), Ok(reference)) =
            (Money::from_minor(totals.total_cents, currency), order.id.to_string().parse::<ExternalRef>())
    {
        parsed = parsed.with_payment(PaymentFact::new(reference, amount, at));
    }
    Ok(parsed)
}

/// A subscription's facts, on its own purchase `sub-{id}`: active or trialing pays until the
/// period's end; a cancellation keeps access until then, an immediate one ends it; past due or
/// unpaid is a failed renewal (the guild's grace applies).
fn subscription_events(kind: &str, sub: &Subscription, event_id: EventId) -> Result<ParsedWebhook, String> {
    let at = |s: &Option<String>| s.as_deref().and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok());
    let end = at(&sub.current_period_end).ok_or("the subscription has no readable current_period_end")?;
    let version = at(&sub.updated_at).or_else(|| at(&sub.current_period_start)).unwrap_or(end);
    let status = sub.status.as_deref().unwrap_or("");
    let event = if sub.canceled_immediately_at.is_some() {
        EventKind::Revoked
    } else if sub.cancel_at_period_end || status == "CANCELED" {
        EventKind::CancelScheduled { access_until: end }
    } else if matches!(status, "PAST_DUE" | "UNPAID") {
        EventKind::PaymentFailed
    } else if matches!(status, "ACTIVE" | "TRIALING") {
        EventKind::PaymentSucceeded { access_until: Some(end) }
    } else {
        return Ok(ParsedWebhook::ignored(
            event_id,
            format!("{kind} with subscription status {status} does not change access"),
        ));
    };
    let user = sub.buyer().ok_or_else(|| {
        format!(
            "subscription {} names no Discord member: set the customer's metadata discord_user_id (or external_id), then replay",
            sub.id
        )
    })?;
    let reference: ExternalRef =
        format!("sub-{}", sub.id).parse().map_err(|e| format!("subscription reference: {e}"))?;
    let mut subject = Subject::default();
    subject.user = Some(user);
    subject.variant.clone_from(&sub.product_variant_id);
    let event =
        ProviderEvent::new(Some(reference), Event { kind: event, version: Version(version) }, subject);
    Ok(ParsedWebhook::new(event_id, vec![event]))
}
