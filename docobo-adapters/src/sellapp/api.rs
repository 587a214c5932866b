//! The two Sell.app API reads a deferred delivery needs: `GET /v2/orders/{id}` and
//! `GET /v2/orders/{id}/deliverables` (the buyer's custom-field answers), with
//! `Authorization: Bearer <key>` and `X-STORE: <slug>`, each under [`TIMEOUT`].

use std::time::Duration;

use docobo_core::ports::{CheckoutError, ResolveError};
use serde_json::{Value, json};

use super::parse::{Answer, Order, Subscription};

/// Per-request timeout.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Where and as whom to read. `Debug` leaves the key out.
pub struct Access<'a> {
    pub client: &'a reqwest::Client,
    pub base: &'a str,
    pub key: &'a str,
    pub store: Option<&'a str>,
}

impl std::fmt::Debug for Access<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").field("base", &self.base).field("store", &self.store).finish_non_exhaustive()
    }
}

impl Access<'_> {
    /// A request to `path` as this key, in this store.
    pub(super) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self
            .client
            .request(method, format!("{}{path}", self.base.trim_end_matches('/')))
            .bearer_auth(self.key);
        match self.store {
            Some(store) => request.header("X-STORE", store),
            None => request,
        }
    }

    async fn get(&self, path: &str) -> Result<Value, ResolveError> {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .map_err(|e| ResolveError::Unavailable(format!("GET {path}: {}", e.without_url())))?;
        let status = response.status().as_u16();
        let body: Value = match response.json().await {
            Ok(v) => v,
            Err(_) if status >= 500 => Value::Null,
            Err(e) => {
                return Err(ResolveError::Unavailable(format!(
                    "GET {path}: unreadable answer: {}",
                    e.without_url()
                )));
            }
        };
        match status {
            200..=299 => Ok(body.get("data").cloned().unwrap_or(body)),
            401 | 403 => Err(ResolveError::Unresolvable(format!(
                "Sell.app refused the API key ({status}) for GET {path}: give it the order abilities and this store"
            ))),
            404 => Err(ResolveError::Unresolvable(format!("Sell.app has no {path} in this store"))),
            408 | 429 | 500..=599 => {
                Err(ResolveError::Unavailable(format!("GET {path}: Sell.app answered {status}")))
            }
            _ => Err(ResolveError::Unresolvable(format!("GET {path}: Sell.app answered {status}"))),
        }
    }

    async fn post(&self, path: &str, idempotency: &str, body: &Value) -> Result<Value, CheckoutError> {
        let response = self
            .request(reqwest::Method::POST, path)
            .header("Idempotency-Key", idempotency)
            .json(body)
            .send()
            .await
            .map_err(|e| CheckoutError::Unavailable(format!("POST {path}: {}", e.without_url())))?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let said = || answer.get("message").and_then(Value::as_str).unwrap_or("no reason given").to_owned();
        match status {
            200..=299 => Ok(answer.get("data").cloned().unwrap_or(answer)),
            408 | 429 | 500..=599 => {
                Err(CheckoutError::Unavailable(format!("Sell.app answered {status}: {}", said())))
            }
            _ => Err(CheckoutError::Rejected(format!("Sell.app answered {status}: {}", said()))),
        }
    }

    /// Creates the order for one unit of `variant`, carrying the buyer's Discord id and the
    /// checkout reference in its custom fields, then its payment page (both idempotent on
    /// `reference`, so a retry after a lost answer makes no second order).
    pub async fn checkout(
        &self,
        reference: &str,
        email: &str,
        payment_method: &str,
        variant: &str,
        answers: Value,
    ) -> Result<String, CheckoutError> {
        let order = json!({
            "customer_email": email,
            "payment_method": payment_method,
            "product_variants": { variant: { "quantity": 1, "additional_information": answers } },
        });
        let created = self.post("/v2/orders", reference, &order).await?;
        let id = created
            .get("id")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .ok_or_else(|| CheckoutError::Unavailable("Sell.app's answer has no order id".to_owned()))?;
        let session =
            self.post(&format!("/v2/orders/{id}/checkout"), &format!("{reference}-pay"), &json!({})).await?;
        session
            .pointer("/payment/checkout_url")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| CheckoutError::Unavailable("Sell.app's answer has no checkout_url".to_owned()))
    }

    /// One cheap read that proves the key and store: the first page of one order.
    pub async fn get_probe(&self) -> Result<(), ResolveError> {
        self.get("/v2/orders?limit=1").await.map(|_| ())
    }

    /// The subscription.
    pub async fn subscription(&self, id: u64) -> Result<Subscription, ResolveError> {
        let raw = self.get(&format!("/v2/subscriptions/{id}")).await?;
        serde_json::from_value(raw).map_err(|e| {
            ResolveError::Unresolvable(format!("subscription {id} is not one Docobo can read: {e}"))
        })
    }

    /// The order with every custom-field answer from its deliverables.
    pub async fn order(&self, id: u64) -> Result<Order, ResolveError> {
        let raw = self.get(&format!("/v2/orders/{id}")).await?;
        let mut order: Order = serde_json::from_value(raw).map_err(|e| {
            ResolveError::Unresolvable(format!("order {id} is not an order Docobo can read: {e}"))
        })?;
        let deliverables = self.get(&format!("/v2/orders/{id}/deliverables")).await?;
        for item in deliverables.as_array().into_iter().flatten() {
            let answers = item.get("additional_information").cloned().unwrap_or(Value::Null);
            order
                .additional_information
                .extend(serde_json::from_value::<Vec<Answer>>(answers).unwrap_or_default());
        }
        Ok(order)
    }
}
