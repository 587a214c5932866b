//! "Log in with Discord" for the dashboard: OAuth2's authorization-code flow with `state` and
//! PKCE (S256), scope `identify`. [`DiscordLogin::start`] makes the state, the verifier and the
//! address to send the browser to; [`DiscordLogin::finish`] exchanges the code (form-encoded,
//! with the verifier and the client's credentials) and reads who logged in. Endpoints are under
//! `DOCOBO_DISCORD_API_URL`, so tests run this against the fake Discord.
//!
//! The HTTP client follows no redirects (an OAuth token endpoint must not be redirected) and has
//! a timeout; the client secret and access token never reach a log line.

use std::time::Duration;

use base64::Engine;
use docobo_core::domain::{Secret, UserId};
use sha2::{Digest, Sha256};

use crate::form::encode;

/// A login in progress: kept in the browser's short-lived, HttpOnly login cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    pub state: String,
    pub verifier: String,
    /// Where to send the browser: Discord's consent screen.
    pub authorize_url: String,
}

/// Who logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    pub user: UserId,
    pub name: String,
}

/// Why a login did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("Discord refused the login ({0})")]
    Refused(String),
    #[error("Discord could not be reached: {0}")]
    Unavailable(String),
}

/// `n` random bytes from the OS as URL-safe base64 without padding; `None` when the OS has
/// none to give (nothing secure can be made then).
pub fn random_token(n: usize) -> Option<String> {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The PKCE S256 challenge of `verifier`.
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The dashboard's OAuth2 client.
#[derive(Clone)]
pub struct DiscordLogin {
    client_id: String,
    secret: Secret,
    /// `DOCOBO_DISCORD_API_URL` without a trailing slash.
    api_base: String,
    /// `{DOCOBO_PUBLIC_URL}/auth/callback`.
    pub redirect: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for DiscordLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordLogin").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

impl DiscordLogin {
    pub fn new(client_id: &str, secret: Secret, api_base: &str, public_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        DiscordLogin {
            client_id: client_id.to_owned(),
            secret,
            api_base: api_base.trim_end_matches('/').to_owned(),
            redirect: format!("{}/auth/callback", public_url.trim_end_matches('/')),
            http,
        }
    }

    /// A new login: a random state and verifier (43 characters), and Discord's consent address.
    pub fn start(&self) -> Result<PendingLogin, LoginError> {
        let no_randomness = || LoginError::Unavailable("the operating system gave no randomness".to_owned());
        let (state, verifier) =
            (random_token(24).ok_or_else(no_randomness)?, random_token(32).ok_or_else(no_randomness)?);
        let authorize_url = format!(
            "{}/oauth2/authorize?response_type=code&client_id={}&scope=identify&redirect_uri={}&state={}\
             &code_challenge={}&code_challenge_method=S256&prompt=none",
            self.api_base,
            encode(&self.client_id),
            encode(&self.redirect),
            encode(&state),
            challenge(&verifier),
        );
        Ok(PendingLogin { state, verifier, authorize_url })
    }

    /// Exchanges `code` (with the login's `verifier`) and reads the user.
    pub async fn finish(&self, code: &str, verifier: &str) -> Result<LoggedIn, LoginError> {
        #[derive(serde::Deserialize)]
        struct Token {
            access_token: String,
        }
        #[derive(serde::Deserialize)]
        struct User {
            id: String,
            username: String,
            global_name: Option<String>,
        }
        let unavailable = |e: reqwest::Error| LoginError::Unavailable(e.without_url().to_string());
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect),
            ("code_verifier", verifier),
            ("client_id", &self.client_id),
            ("client_secret", self.secret.expose()),
        ];
        let response = self
            .http
            .post(format!("{}/api/oauth2/token", self.api_base))
            .form(&form)
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        if !status.is_success() {
            return Err(if status.is_server_error() {
                LoginError::Unavailable(format!("HTTP {status}"))
            } else {
                LoginError::Refused(format!("HTTP {status}"))
            });
        }
        let token: Token = response.json().await.map_err(unavailable)?;
        let response = self
            .http
            .get(format!("{}/api/v10/users/@me", self.api_base))
            .bearer_auth(&token.access_token)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?;
        let user: User = response.json().await.map_err(unavailable)?;
        let id = user.id.parse().map_err(|_| LoginError::Refused("Discord named no user".to_owned()))?;
        Ok(LoggedIn { user: id, name: user.global_name.unwrap_or(user.username) })
    }
}
