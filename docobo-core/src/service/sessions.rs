//! Dashboard sessions: opened at login with a random cookie token (only its SHA-256 is stored),
//! read on every request, closed at logout. Expiry is [`SESSION_TTL`] after login; nothing
//! extends it, so a stolen cookie stops working within a week at the latest.

use sha2::{Digest, Sha256};
use time::Duration;

use crate::domain::{Session, UserId};
use crate::ports::{Clock, SessionRepo, StoreError};

/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::days(7);

/// What is stored for a cookie token: its SHA-256, hex.
pub fn session_id(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Opens a session for `user` under the cookie `token`, with the form token `csrf`.
pub async fn open_session(
    repo: &dyn SessionRepo,
    clock: &dyn Clock,
    (token, csrf): (&str, &str),
    user: UserId,
    name: &str,
) -> Result<Session, StoreError> {
    let now = clock.now();
    let session = Session {
        id: session_id(token),
        user,
        name: name.chars().take(100).collect(),
        csrf: csrf.to_owned(),
        created_at: now,
        expires_at: now + SESSION_TTL,
    };
    repo.put_session(&session).await?;
    Ok(session)
}

/// The live session of a cookie token.
pub async fn current_session(
    repo: &dyn SessionRepo,
    clock: &dyn Clock,
    token: &str,
) -> Result<Option<Session>, StoreError> {
    repo.session(&session_id(token), clock.now()).await
}

/// Closes the session of a cookie token; `false` when there was none.
pub async fn close_session(repo: &dyn SessionRepo, token: &str) -> Result<bool, StoreError> {
    repo.delete_session(&session_id(token)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ManualClock, MemoryRepo};

    #[tokio::test]
    async fn a_session_is_found_by_its_token_only_until_it_expires_and_not_after_logout() {
        let (repo, clock) =
            (MemoryRepo::new(), ManualClock::new(time::macros::datetime!(2026-12-06 00:00 UTC)));
        let user = UserId::new(42).expect("id");
        let opened =
            open_session(&repo, &clock, ("cookie-token", "csrf"), user, "buyer").await.expect("opens");
        assert_ne!(opened.id, "cookie-token", "only a digest is stored");
        assert_eq!(
            current_session(&repo, &clock, "cookie-token").await.expect("reads"),
            Some(opened.clone())
        );
        assert_eq!(current_session(&repo, &clock, "other").await.expect("reads"), None);
        clock.advance(SESSION_TTL);
        assert_eq!(current_session(&repo, &clock, "cookie-token").await.expect("reads"), None, "expired");
        clock.advance(-SESSION_TTL);
        assert!(close_session(&repo, "cookie-token").await.expect("closes"));
        assert_eq!(current_session(&repo, &clock, "cookie-token").await.expect("reads"), None);
    }
}
