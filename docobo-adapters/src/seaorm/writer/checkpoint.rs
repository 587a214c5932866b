//! WAL checkpoints off the commit path. By default SQLite checkpoints from inside the commit
//! that grows the WAL past 1,000 pages: that commit copies the log into the database file and
//! fsyncs it, and every webhook whose commit waits behind that batch waits for it too. So a file
//! database opened by [`SeaOrmRepo::connect`](super::super::SeaOrmRepo::connect) turns automatic
//! checkpoints off (`wal_autocheckpoint = 0`), and the writer asks for a `PASSIVE` checkpoint on
//! a read connection after every [`EVERY`] writes. A passive checkpoint waits for no reader and
//! no writer, so commits go on while it runs; once it has copied the whole log, the next commit
//! starts the log over from its beginning, so the WAL stays about [`EVERY`] writes long.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sea_orm::{ConnectionTrait, DatabaseConnection};

use super::Stats;

/// Writes between checkpoints: a few thousand WAL pages at about ten pages a commit.
pub(super) const EVERY: usize = 256;

/// The checkpoints of one writer: where they run, and whether one is running.
#[derive(Debug)]
pub(super) struct Checkpoints {
    read: DatabaseConnection,
    since: usize,
    running: Arc<AtomicBool>,
    stats: Arc<Stats>,
}

impl Checkpoints {
    /// Checkpoints on `read` (a connection beside the writer's), counting them in `stats`.
    pub fn on(read: DatabaseConnection, stats: Arc<Stats>) -> Self {
        Checkpoints { read, since: 0, running: Arc::default(), stats }
    }

    /// Notes `writes` more durable writes; starts a checkpoint in the background when enough
    /// have accumulated and none is running.
    pub fn after(&mut self, writes: usize) {
        self.since += writes;
        if self.since < EVERY || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        self.since = 0;
        let (read, running, stats) = (self.read.clone(), self.running.clone(), self.stats.clone());
        tokio::spawn(async move {
            match read.execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)").await {
                Ok(_) => {
                    stats.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; the next one tries again"),
            }
            running.store(false, Ordering::Release);
        });
    }
}
