//! The fake Discord's OAuth2, for the dashboard's "Log in with Discord": `GET /oauth2/authorize`
//! approves at once as the user a test chose and redirects back with a code; `POST
//! /api/oauth2/token` exchanges it (form-encoded, once, checking the client's credentials, the
//! redirect URI and the PKCE S256 verifier, as Discord does); `GET /api/v10/users/@me` with the
//! bearer token answers who logged in.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::http::Request;
use crate::form::encode;

#[derive(Debug, Clone)]
struct Grant {
    user: u64,
    challenge: String,
    redirect: String,
}

#[derive(Debug, Default)]
pub(super) struct Oauth {
    /// The application's id and secret.
    pub(super) client: Option<(String, String)>,
    /// Who approves the next authorization: (user id, name).
    pub(super) user: Option<(u64, String)>,
    codes: BTreeMap<String, Grant>,
    tokens: BTreeMap<String, (u64, String)>,
    counter: u64,
    /// Token exchanges refused, for tests that forge callbacks.
    pub(super) refused: usize,
}

/// `application/x-www-form-urlencoded` (a query string or a form body) as pairs.
fn form(raw: &str) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = |b: u8| char::from(b).to_digit(16);
            match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
            {
                (b'%', Some(h), Some(l)) => {
                    out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                    i += 3;
                }
                (b, ..) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    raw.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

fn refuse(error: &str) -> (u16, String) {
    (400, json!({ "error": error }).to_string())
}

impl Oauth {
    /// The user a bearer token belongs to.
    pub(super) fn user_of(&self, token: &str) -> Option<(u64, String)> {
        self.tokens.get(token).cloned()
    }

    /// Answers the OAuth routes, or `None` for a route that is not theirs. A redirect is
    /// `(302, location)`.
    pub(super) fn respond(&mut self, request: &Request, parts: &[&str]) -> Option<(u16, String)> {
        let query = request.path.split_once('?').map_or("", |(_, q)| q);
        Some(match (request.method.as_str(), parts) {
            ("GET", ["oauth2", "authorize"]) => {
                let q = form(query);
                let Some((user, _)) = self.user.clone() else {
                    return Some(refuse("no user is logged in to Discord"));
                };
                let client_ok = self.client.as_ref().is_some_and(|(id, _)| q.get("client_id") == Some(id));
                if !client_ok || q.get("response_type").map(String::as_str) != Some("code") {
                    return Some(refuse("invalid_request"));
                }
                if q.get("code_challenge_method").map(String::as_str) != Some("S256") {
                    return Some(refuse("invalid_request: PKCE S256 required"));
                }
                let (Some(redirect), Some(challenge)) = (q.get("redirect_uri"), q.get("code_challenge"))
                else {
                    return Some(refuse("invalid_request"));
                };
                self.counter += 1;
                let code = format!("code-{}", self.counter);
                let grant = Grant { user, challenge: challenge.clone(), redirect: redirect.clone() };
                self.codes.insert(code.clone(), grant);
                let state = q.get("state").map(|s| format!("&state={}", encode(s))).unwrap_or_default();
                (302, format!("{redirect}?code={code}{state}"))
            }
            ("POST", ["api", "oauth2", "token"]) => {
                let f = form(&String::from_utf8_lossy(&request.body));
                let client_ok = self.client.as_ref().is_some_and(|(id, secret)| {
                    f.get("client_id") == Some(id) && f.get("client_secret") == Some(secret)
                });
                let grant = f.get("code").and_then(|c| self.codes.remove(c));
                let verified = grant.as_ref().is_some_and(|g| {
                    let verifier = f.get("code_verifier").map(String::as_str).unwrap_or_default();
                    let digest = Sha256::digest(verifier.as_bytes());
                    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
                    challenge == g.challenge
                        && f.get("redirect_uri") == Some(&g.redirect)
                        && verifier.len() >= 43
                });
                match grant {
                    Some(g)
                        if client_ok
                            && verified
                            && f.get("grant_type").map(String::as_str) == Some("authorization_code") =>
                    {
                        self.counter += 1;
                        let token = format!("token-{}", self.counter);
                        let name =
                            self.user.as_ref().map_or_else(|| format!("user{}", g.user), |(_, n)| n.clone());
                        self.tokens.insert(token.clone(), (g.user, name));
                        let body = json!({ "access_token": token, "token_type": "Bearer", "expires_in": 604_800,
                                           "refresh_token": "unused", "scope": "identify" });
                        (200, body.to_string())
                    }
                    _ => {
                        self.refused += 1;
                        refuse("invalid_grant")
                    }
                }
            }
            _ => return None,
        })
    }
}
