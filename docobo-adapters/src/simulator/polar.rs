//! A fake Polar API: `POST /v1/checkouts/` and `GET /v1/checkouts/`, checking the bearer token
//! like Polar does, recording every request, and able to fail on demand.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};

use super::http::{Request, serve};

#[derive(Debug, Default)]
struct State {
    requests: Vec<Request>,
    /// Statuses to answer the next requests with, before any real handling.
    failures: Vec<u16>,
}

/// A running fake Polar API on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct FakePolar {
    /// Pass this as `POLAR_API_URL`.
    pub base_url: String,
    /// The organization access token it accepts.
    pub token: String,
    state: Arc<Mutex<State>>,
}

impl FakePolar {
    /// Starts the fake; it accepts `token` as the organization access token.
    pub async fn start(token: &str) -> std::io::Result<FakePolar> {
        let state = Arc::new(Mutex::new(State::default()));
        let (accepted, shared) = (format!("Bearer {token}"), state.clone());
        let addr = serve(move |request: Request| {
            let (accepted, state) = (accepted.clone(), shared.clone());
            async move { respond(&accepted, &state, request) }
        })
        .await?;
        Ok(FakePolar { base_url: format!("http://{addr}"), token: token.to_owned(), state })
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).requests.clone()
    }

    /// The next request is answered with `status` (say 500 or 429).
    pub fn fail_next(&self, status: u16) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).failures.push(status);
    }
}

fn respond(accepted: &str, state: &Mutex<State>, request: Request) -> (u16, String) {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    state.requests.push(request.clone());
    let n = state.requests.len();
    if !state.failures.is_empty() {
        let status = state.failures.remove(0);
        return (status, json!({ "detail": "injected failure" }).to_string());
    }
    if request.headers.get("authorization").map(String::as_str) != Some(accepted) {
        return (401, json!({ "detail": "invalid_token" }).to_string());
    }
    match (request.method.as_str(), request.path.split('?').next().unwrap_or_default()) {
        ("POST", "/v1/checkouts/") => {
            let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
                return (422, json!({ "detail": "body is not JSON" }).to_string());
            };
            if body["products"].as_array().is_none_or(Vec::is_empty) {
                return (
                    422,
                    json!({ "detail": [{ "loc": ["body", "products"], "msg": "required" }] }).to_string(),
                );
            }
            let id = format!("chk_{n}");
            let checkout = json!({
                "id": id,
                "url": format!("https://sandbox.polar.sh/checkout/{id}"),
                "status": "open",
                "metadata": body["metadata"],
                "products": body["products"],
            });
            (201, checkout.to_string())
        }
        ("GET", "/v1/checkouts/") => {
            (200, json!({ "items": [], "pagination": { "total_count": 0 } }).to_string())
        }
        _ => (404, json!({ "detail": "Not Found" }).to_string()),
    }
}

/// A Polar webhook body for the demo and the load harness, built from the schema-validated
/// fixtures: `kind` is one of `subscription_active`, `subscription_canceled_at_period_end`,
/// `order_paid_one_time`, `order_refunded_full`. `metadata` replaces the checkout metadata,
/// `product` the product id; the object is stamped as modified at `now`, and a subscription's
/// period (and a scheduled cancellation) runs from `now` for 30 days.
pub fn event(kind: &str, metadata: &Value, product: &str, now: time::OffsetDateTime) -> Option<Vec<u8>> {
    let fixture = match kind {
        "subscription_active" => include_str!("../../tests/fixtures/polar/subscription_active.json"),
        "subscription_canceled_at_period_end" => {
            include_str!("../../tests/fixtures/polar/subscription_canceled_at_period_end.json")
        }
        "order_paid_one_time" => include_str!("../../tests/fixtures/polar/order_paid_one_time.json"),
        "order_refunded_full" => include_str!("../../tests/fixtures/polar/order_refunded_full.json"),
        "subscription_past_due" => include_str!("../../tests/fixtures/polar/subscription_past_due.json"),
        _ => return None,
    };
    let stamp = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).ok();
    let mut body: Value = serde_json::from_str(fixture).ok()?;
    let data = body.get_mut("data")?;
    data["metadata"] = metadata.clone();
    data["product_id"] = json!(product);
    data["modified_at"] = json!(stamp(now)?);
    if data.get("current_period_end").is_some_and(|v| !v.is_null()) {
        let end = json!(stamp(now + time::Duration::days(30))?);
        data["current_period_start"] = json!(stamp(now)?);
        data["current_period_end"] = end.clone();
        if data.get("ends_at").is_some_and(|v| !v.is_null()) {
            data["ends_at"] = end;
        }
    }
    serde_json::to_vec(&body).ok()
}
