//! A fake Sell.app API: `POST /v2/orders` and `POST /v2/orders/{id}/checkout` (what `/join`
//! calls), `GET /v2/orders/{id}`, `GET /v2/orders/{id}/deliverables`, `GET /v2/subscriptions/{id}`, the
//! one-order probe `GET /v2/orders?limit=1` and the event journal `GET /v2/events` (cursor pages
//! of 50, `410 cursor_expired` for a cursor from before [`FakeSellapp::expire_cursors`]),
//! checking the bearer key like Sell.app does, recording every request, and able to be down (503)
//! on demand.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};

use super::http::{Request, serve};

#[derive(Debug, Default)]
struct State {
    requests: Vec<Request>,
    /// Order id → (order, deliverables).
    orders: BTreeMap<u64, (Value, Value)>,
    down: bool,
    /// Subscription id → the subscription.
    subscriptions: BTreeMap<u64, Value>,
    /// The journal, oldest first.
    events: Vec<Value>,
    /// Cursors name their generation; older ones are expired.
    generation: u32,
}

/// A running fake Sell.app API on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct FakeSellapp {
    /// Pass this as `SELLAPP_API_URL`.
    pub base_url: String,
    state: Arc<Mutex<State>>,
}

impl FakeSellapp {
    /// Starts the fake; it accepts `key` as the API key.
    pub async fn start(key: &str) -> std::io::Result<FakeSellapp> {
        let state = Arc::new(Mutex::new(State::default()));
        let (accepted, shared) = (format!("Bearer {key}"), state.clone());
        let addr = serve(move |request: Request| {
            let (accepted, state) = (accepted.clone(), shared.clone());
            async move { respond(&accepted, &state, request) }
        })
        .await?;
        Ok(FakeSellapp { base_url: format!("http://{addr}"), state })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores order `id` (the v2 order object) and its deliverables (the buyer's answers).
    pub fn put_order(&self, id: u64, order: Value, deliverables: Value) {
        self.state().orders.insert(id, (order, deliverables));
    }

    /// Stores subscription `id` (the v2 subscription object).
    pub fn put_subscription(&self, id: u64, subscription: Value) {
        self.state().subscriptions.insert(id, subscription);
    }

    /// While `down`, every request is answered 503.
    pub fn set_down(&self, down: bool) {
        self.state().down = down;
    }

    /// Appends `{id, type, occurred_at, subject: {type: "order", id: order}}` to the journal.
    pub fn push_event(&self, id: &str, kind: &str, order: u64) {
        let event = json!({ "id": id, "type": kind, "version": 1, "occurred_at": "2026-11-10T12:00:00Z",
                            "subject": { "type": "order", "id": order }, "data": {} });
        self.state().events.push(event);
    }

    /// Every cursor handed out so far answers `410 cursor_expired` from now on.
    pub fn expire_cursors(&self) {
        self.state().generation += 1;
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }
}

fn respond(accepted: &str, state: &Mutex<State>, request: Request) -> (u16, String) {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    state.requests.push(request.clone());
    if state.down {
        return (503, json!({ "message": "Service Unavailable" }).to_string());
    }
    if request.headers.get("authorization").map(String::as_str) != Some(accepted) {
        return (401, json!({ "message": "Unauthenticated." }).to_string());
    }
    let path = request.path.split('?').next().unwrap_or_default();
    if request.method == "GET" && path == "/v2/events" {
        return journal(&state, &request.path);
    }
    if let Some(id) = path.strip_prefix("/v2/subscriptions/") {
        return match id.parse::<u64>().ok().and_then(|id| state.subscriptions.get(&id)) {
            Some(sub) if request.method == "GET" => (200, json!({ "data": sub }).to_string()),
            _ => (404, json!({ "message": "Not found." }).to_string()),
        };
    }
    let parts: Vec<&str> =
        path.trim_start_matches("/v2/orders").split('/').filter(|p| !p.is_empty()).collect();
    let order = |id: &str| id.parse::<u64>().ok().and_then(|id| state.orders.get(&id).cloned());
    match (request.method.as_str(), path.starts_with("/v2/orders"), parts.as_slice()) {
        ("POST", true, []) => {
            let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
                return (422, json!({ "message": "The body is not JSON." }).to_string());
            };
            if body["customer_email"].as_str().is_none_or(str::is_empty)
                || body["product_variants"].as_object().is_none()
            {
                return (
                    422,
                    json!({ "message": "customer_email and product_variants are required." }).to_string(),
                );
            }
            let id = 1000 + state.orders.len() as u64;
            let order = json!({ "id": id, "status": "PENDING", "request": body });
            state.orders.insert(id, (order.clone(), json!([])));
            (201, json!({ "data": order }).to_string())
        }
        ("POST", true, [id, "checkout"]) => match order(id) {
            Some((order, _)) => {
                let url = format!("https://shop.sell.app/checkout/{}", order["id"]);
                (
                    201,
                    json!({ "data": { "id": order["id"], "payment": { "checkout_url": url } } }).to_string(),
                )
            }
            None => (404, json!({ "message": "Not found." }).to_string()),
        },
        ("GET", true, []) => (
            200,
            json!({ "data": state.orders.values().take(1).map(|o| o.0.clone()).collect::<Vec<_>>() })
                .to_string(),
        ),
        ("GET", true, [id]) => match order(id) {
            Some((order, _)) => (200, json!({ "data": order }).to_string()),
            None => (404, json!({ "message": "Not found." }).to_string()),
        },
        ("GET", true, [id, "deliverables"]) => match order(id) {
            Some((_, deliverables)) => (200, json!({ "data": deliverables }).to_string()),
            None => (404, json!({ "message": "Not found." }).to_string()),
        },
        _ => (404, json!({ "message": "Not found." }).to_string()),
    }
}

/// One page of the journal from the `cursor` in `uri` (`g{generation}-{position}`).
fn journal(state: &State, uri: &str) -> (u16, String) {
    let cursor =
        uri.split_once('?').map_or("", |(_, q)| q).split('&').find_map(|p| p.strip_prefix("cursor="));
    let start = match cursor {
        None => 0,
        Some(c) => match c.strip_prefix('g').and_then(|c| c.split_once('-')) {
            Some((g, at)) if g.parse() == Ok(state.generation) => at.parse().unwrap_or(0),
            _ => return (410, json!({ "error": "cursor_expired" }).to_string()),
        },
    };
    let page: Vec<Value> = state.events.iter().skip(start).take(50).cloned().collect();
    let next = format!("g{}-{}", state.generation, start + page.len());
    (200, json!({ "data": page, "meta": { "next_cursor": next } }).to_string())
}
