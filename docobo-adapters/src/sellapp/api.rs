//! The two Sell.app API reads a deferred delivery needs: `GET /v2/orders/{id}` and
//! `GET /v2/orders/{id}/deliverables` (the buyer's custom-field answers), with
//! `Authorization: Bearer <key>` and `X-STORE: <slug>`, each under [`TIMEOUT`].

use std::time::Duration;

use docobo_core::ports::ResolveError;
use serde_json::Value;

use super::parse::{Answer, Order};

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
    async fn get(&self, path: &str) -> Result<Value, ResolveError> {
        let mut request =
            self.client.get(format!("{}{path}", self.base.trim_end_matches('/'))).bearer_auth(self.key);
        if let Some(store) = self.store {
            request = request.header("X-STORE", store);
        }
        let response = request
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

    /// One cheap read that proves the key and store: the first page of one order.
    pub async fn get_probe(&self) -> Result<(), ResolveError> {
        self.get("/v2/orders?limit=1").await.map(|_| ())
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
