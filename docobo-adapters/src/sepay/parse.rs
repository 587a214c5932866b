//! SePay's transaction payload → a payment event, matched to a checkout by its code.

use docobo_core::domain::{CheckoutRef, Currency, EventId, IdError, Money};
use docobo_core::machine::{Event, EventKind, Version};
use docobo_core::ports::{ParseError, ParsedWebhook, PaymentFact, ProviderEvent, Subject};
use serde::Deserialize;
use serde_json::Value;
use time::PrimitiveDateTime;
use time::macros::{format_description, offset};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Transfer {
    id: Value,
    transaction_date: String,
    #[serde(default)]
    account_number: Option<String>,
    #[serde(default)]
    sub_account: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    content: Option<String>,
    transfer_type: String,
    transfer_amount: i64,
}

/// The transaction id, which SePay sends as a number (and newer APIs as a string).
fn transaction_id(id: &Value) -> Option<EventId> {
    match id {
        Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string().parse().ok(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Codes in the memo: whole words that start with `prefix` (any case) and go on with letters or
/// digits. "DCB7K2Q chuyen tien" finds `DCB7K2Q`; "ABCDCB7K2Q" finds nothing.
pub fn codes_in(content: &str, prefix: &str) -> Vec<CheckoutRef> {
    content
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| word.len() > prefix.len() && word[..prefix.len()].eq_ignore_ascii_case(prefix))
        .filter_map(|word| word.to_ascii_uppercase().parse().ok())
        .collect()
}

pub fn parse(body: &[u8], account: Option<&str>, prefix: &str) -> Result<ParsedWebhook, ParseError> {
    let id_only: Option<EventId> =
        serde_json::from_slice::<Value>(body).ok().and_then(|v| transaction_id(v.get("id")?));
    let fail = |reason: String| ParseError { event_id: id_only.clone(), reason };
    let t: Transfer =
        serde_json::from_slice(body).map_err(|e| fail(format!("not a SePay transaction: {e}")))?;
    let event_id = transaction_id(&t.id)
        .ok_or_else(|| fail("the transaction id is neither a number nor a string".to_owned()))?;
    if t.transfer_type.eq_ignore_ascii_case("out") {
        return Ok(ParsedWebhook::ignored(event_id, "outgoing transfer"));
    }
    if let Some(expected) = account {
        let received = [t.account_number.as_deref(), t.sub_account.as_deref()];
        if !received.iter().flatten().any(|a| a.trim() == expected) {
            let got = t.account_number.as_deref().unwrap_or("(none)");
            return Err(fail(format!(
                "transfer to account {got}, but this guild's SePay account is {expected}"
            )));
        }
    }
    let mut codes: Vec<CheckoutRef> =
        t.code.as_deref().and_then(|c| c.trim().to_ascii_uppercase().parse().ok()).into_iter().collect();
    for found in codes_in(t.content.as_deref().unwrap_or_default(), prefix) {
        if !codes.contains(&found) {
            codes.push(found);
        }
    }
    if codes.is_empty() {
        let note = format!("no payment code starting with {prefix} in the transfer");
        return Ok(ParsedWebhook::ignored(event_id, note));
    }
    let paid = Money::from_minor(t.transfer_amount, Currency::Vnd)
        .map_err(|e| fail(format!("transferAmount: {e}")))?;
    // The bank's local time, Vietnam (UTC+7).
    let at = PrimitiveDateTime::parse(
        &t.transaction_date,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .map_err(|_| fail(format!("transactionDate {:?} is not YYYY-MM-DD HH:MM:SS", t.transaction_date)))?
    .assume_offset(offset!(+7));
    let mut subject = Subject::default();
    (subject.checkout_refs, subject.paid, subject.one_time) = (codes, Some(paid), true);
    let version = Version(at.to_offset(offset!(UTC)));
    let event = Event { kind: EventKind::PaymentSucceeded { access_until: None }, version };
    let reference = event_id.as_str().parse().map_err(|e: IdError| fail(format!("transaction id: {e}")))?;
    let payment = PaymentFact::new(reference, paid, version.at());
    Ok(ParsedWebhook::new(event_id, vec![ProviderEvent::new(None, event, subject)]).with_payment(payment))
}
