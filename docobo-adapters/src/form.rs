//! Percent-encoding for OAuth2's query strings and forms (RFC 3986 unreserved characters kept),
//! shared by the dashboard's login and the fake Discord that answers it.

/// `s` with every byte but `A–Z a–z 0–9 - _ . ~` percent-encoded.
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
