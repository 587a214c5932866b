//! Polar's REST API, as far as Docobo uses it: creating checkouts for `/join`, and checking an
//! organization access token for `/setup`. Every call times out after 10 s.

use std::time::Duration;

use docobo_core::domain::{ProviderName, Secret};
use docobo_core::ports::{CheckoutError, CheckoutLink, CheckoutRequest, CredentialError};
use serde_json::{Value, json};

/// Per-request timeout: `/join` must answer within Discord's deadline even when Polar is slow.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("docobo/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Polar's error detail, if the body has one, cut short.
async fn detail(response: reqwest::Response) -> String {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("detail").map(|d| d.to_string()))
        .unwrap_or(text);
    format!("HTTP {status}: {}", detail.chars().take(300).collect::<String>())
}

/// `POST {base}/v1/checkouts/` for the role's product, carrying who is buying what in the
/// metadata that Polar copies to the order and subscription.
pub async fn create_checkout(
    client: &reqwest::Client,
    base: &str,
    token: &Secret,
    request: &CheckoutRequest,
) -> Result<CheckoutLink, CheckoutError> {
    let role = &request.paid_role;
    let product = role.product_at(ProviderName::POLAR).ok_or_else(|| {
        CheckoutError::NotConfigured(format!(
            "role {} has no Polar product (docobo role add ... --polar-product)",
            role.role
        ))
    })?;
    let c = &request.checkout;
    let body = json!({
        "products": [product],
        "metadata": {
            "discord_user_id": c.user.to_string(),
            "guild_id": c.guild.to_string(),
            "paid_role_id": c.role.to_string(),
            "checkout_ref": c.reference.as_str(),
        },
        "external_customer_id": format!("discord:{}", c.user),
    });
    let response = client
        .post(format!("{}/v1/checkouts/", base.trim_end_matches('/')))
        .bearer_auth(token.expose())
        .json(&body)
        .send()
        .await
        .map_err(|e| CheckoutError::Unavailable(format!("Polar did not answer: {}", without_url(&e))))?;
    let status = response.status();
    if status.is_success() {
        let created: Value = response
            .json()
            .await
            .map_err(|e| CheckoutError::Unavailable(format!("unreadable answer: {e}")))?;
        let url = created
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| CheckoutError::Unavailable("Polar's answer has no checkout url".to_owned()))?;
        let instructions = format!("Pay {} for {} on Polar's checkout page.", c.expected, role.name);
        return Ok(CheckoutLink::page(url, instructions));
    }
    let why = detail(response).await;
    Err(match status.as_u16() {
        401 | 403 => CheckoutError::Rejected(format!(
            "Polar refused the access token ({why}); check its checkouts:write scope"
        )),
        400..=499 => CheckoutError::Rejected(why),
        _ => CheckoutError::Unavailable(why),
    })
}

/// `GET {base}/v1/checkouts/?limit=1`: does Polar accept this token?
pub async fn check_token(
    client: &reqwest::Client,
    base: &str,
    token: &Secret,
) -> Result<(), CredentialError> {
    let response = client
        .get(format!("{}/v1/checkouts/?limit=1", base.trim_end_matches('/')))
        .bearer_auth(token.expose())
        .send()
        .await
        .map_err(|e| CredentialError::Unavailable(format!("Polar did not answer: {}", without_url(&e))))?;
    match response.status().as_u16() {
        200..=299 => Ok(()),
        401 | 403 => Err(CredentialError::Invalid(format!(
            "Polar refused the access token ({})",
            detail(response).await
        ))),
        _ => Err(CredentialError::Unavailable(detail(response).await)),
    }
}

/// reqwest's message without the URL it adds (which may carry query parameters).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    kind.to_owned()
}
