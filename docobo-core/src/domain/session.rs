//! A dashboard session: who logged in with Discord, until when, and the token their forms must
//! carry. The cookie holds a random token; only its SHA-256 is stored, so a leaked database does
//! not log anyone in.

use super::{Timestamp, UserId};

/// A logged-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 (hex) of the cookie's token.
    pub id: String,
    pub user: UserId,
    /// The user's Discord name, for the page header.
    pub name: String,
    /// The CSRF token every POST of this session must carry.
    pub csrf: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}
