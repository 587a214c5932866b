//! What the dashboard's live feeds (Server-Sent Events) share: a bounded number of places for
//! streams. At most [`MAX_STREAMS`] are open at once (past that, 503); a member keeps at most
//! [`MAX_STREAMS_PER_MEMBER`], and a newer one ends their oldest (most likely a closed tab,
//! which the server notices only at its next write). Every stream also ends when the server
//! stops.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use docobo_core::domain::UserId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};

/// Streams open at once, across all members and feeds.
pub const MAX_STREAMS: usize = 512;
/// Streams one member keeps open.
pub const MAX_STREAMS_PER_MEMBER: usize = 4;

/// Each member's open streams, oldest first, each with the sender that ends it when dropped.
type PerMember = HashMap<UserId, VecDeque<(u64, oneshot::Sender<()>)>>;

/// The places for streams.
#[derive(Debug)]
pub struct Streams {
    places: Arc<Semaphore>,
    per_member: Arc<Mutex<PerMember>>,
    next: AtomicU64,
    closing: watch::Sender<bool>,
}

impl Default for Streams {
    fn default() -> Self {
        Streams {
            places: Arc::new(Semaphore::new(MAX_STREAMS)),
            per_member: Arc::default(),
            next: AtomicU64::new(0),
            closing: watch::channel(false).0,
        }
    }
}

impl Streams {
    /// A place for one more stream of `user`, ending their oldest past the limit; `None` when
    /// the server has [`MAX_STREAMS`] open.
    pub fn admit(&self, user: UserId) -> Option<Place> {
        let permit = self.places.clone().try_acquire_owned().ok()?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (end, replaced) = oneshot::channel();
        let mut open = self.per_member.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = open.entry(user).or_default();
        while mine.len() >= MAX_STREAMS_PER_MEMBER {
            mine.pop_front();
        }
        mine.push_back((id, end));
        Some(Place {
            _permit: permit,
            id,
            user,
            per_member: self.per_member.clone(),
            replaced,
            closing: self.closing.subscribe(),
        })
    }

    /// Ends every stream: the server is stopping.
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }
}

/// One stream's place, given back when the stream ends.
#[derive(Debug)]
pub struct Place {
    _permit: OwnedSemaphorePermit,
    id: u64,
    user: UserId,
    per_member: Arc<Mutex<PerMember>>,
    replaced: oneshot::Receiver<()>,
    closing: watch::Receiver<bool>,
}

impl Place {
    /// Resolves when the stream must end: a newer stream of the member took its place, or the
    /// server is stopping. The stream must not wait on it again.
    pub async fn ended(&mut self) {
        tokio::select! {
            _ = &mut self.replaced => {}
            _ = self.closing.wait_for(|closing| *closing) => {}
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.per_member.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(mine) = open.get_mut(&self.user) {
            mine.retain(|(id, _)| *id != self.id);
            if mine.is_empty() {
                open.remove(&self.user);
            }
        }
    }
}
