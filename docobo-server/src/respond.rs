//! [`refuse`]: the one shape of every refusal the server answers.

use poem::http::StatusCode;
use poem::web::Json;
use poem::{IntoResponse, Response};
use serde_json::json;

/// `{"error": message}` with `code`, and `Retry-After` in seconds when given: every refusal the
/// server answers looks the same.
pub fn refuse(code: StatusCode, message: &str, retry_after_s: Option<u64>) -> Response {
    let mut response = Json(json!({ "error": message })).with_status(code).into_response();
    if let Some(after) = retry_after_s {
        response.headers_mut().insert("retry-after", poem::http::HeaderValue::from(after));
    }
    response
}
