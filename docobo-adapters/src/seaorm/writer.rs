//! Group commit on SQLite: every [`Ledger::commit`](docobo_core::ports::Ledger::commit), every
//! role job's [`claim`](docobo_core::ports::JobQueue::claim_due) and
//! [`settle`](docobo_core::ports::JobQueue::settle) of one [`SeaOrmRepo`] (a [`Write`];
//! "commit" below means any of them) goes to one writer task, which takes what is waiting (up
//! to [`MAX_BATCH`]) and writes it as **one transaction**, each commit in its own savepoint,
//! so the role worker's claims and settlements share the webhooks' fsyncs instead of taking
//! the one connection for a transaction each, and a commit that fails
//! (a stale revision, a constraint) is rolled back alone and the others stand. Every caller is
//! answered only once the transaction holding its commit is durable, so a 2xx still means
//! durable; if the transaction itself fails, every commit of the batch fails with it. The batch
//! runs on one blocking thread over the writer connection's own handle ([`direct`]), not a
//! statement at a time through sqlx's worker thread.
//!
//! One fsync then covers a whole batch: under load, throughput is no longer one commit per
//! fsync. Nothing waits to fill a batch: a commit that finds the writer idle is written at once,
//! alone and without a savepoint; a batch forms only from commits that arrive while the previous
//! one is written.
//!
//! PostgreSQL has no writer task: each commit is written on its own, in parallel over the pool.
//! PostgreSQL already groups concurrent commits into one WAL flush, and a single writer there
//! serialises every round trip on one connection: measured with `cargo bench --bench load`
//! (docs/PERFORMANCE.md §4), one writer took SQLite from 682 to 896 webhooks/s at 1,000/s
//! offered, and PostgreSQL from 999 down to 755. A ledger commit or a settlement there is
//! **one statement** ([`as_one`]): one round trip instead of `BEGIN`, one per statement and
//! `COMMIT`. A replay, and a commit that repeats an upsert's key, keep a transaction of their
//! own ([`write_alone`]).

mod as_one;
mod checkpoint;
mod direct;

pub(super) use direct::values;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use docobo_core::domain::{AuditEntry, RoleJob, Timestamp};
use docobo_core::ports::{Commit, Recorded, Settled, Settlement, StoreError};
use sea_orm::sqlx::SqlitePool;
use sea_orm::{DatabaseConnection, DbBackend, TransactionTrait};
use tokio::sync::{Notify, mpsc, oneshot};

use super::SeaOrmRepo;
use super::convert::store_err;
use super::execute::Execute;
use super::queue::{Claim, claim_on, settle_on};
use super::steps::{Wake, apply};

/// Most commits written in one transaction.
pub const MAX_BATCH: usize = 64;
/// Commits waiting for the writer before callers wait to hand theirs over.
const QUEUE: usize = 4 * MAX_BATCH;

/// One durable write the writer takes.
#[derive(Debug)]
pub(super) enum Write {
    Commit(Commit),
    Settle(Settle),
    /// A role-job claim (on SQLite only: PostgreSQL claims on its own, `queue.rs`).
    Claim(Claim),
}

/// A role job's settlement, as [`JobQueue::settle`](docobo_core::ports::JobQueue::settle) takes it.
#[derive(Debug)]
pub(super) struct Settle {
    pub claimed: RoleJob,
    pub settlement: Settlement,
    pub audit: Vec<AuditEntry>,
    pub now: Timestamp,
}

/// What a [`Write`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Done {
    Recorded(Recorded),
    Settled(Settled),
    Claimed(Vec<RoleJob>),
}

impl Done {
    /// The answer to a [`Write::Commit`].
    pub fn recorded(self) -> Result<Recorded, StoreError> {
        match self {
            Done::Recorded(recorded) => Ok(recorded),
            other => Err(mismatched("commit", &other)),
        }
    }

    /// The answer to a [`Write::Settle`].
    pub fn settled(self) -> Result<Settled, StoreError> {
        match self {
            Done::Settled(settled) => Ok(settled),
            other => Err(mismatched("settlement", &other)),
        }
    }

    /// The answer to a [`Write::Claim`].
    pub fn claimed(self) -> Result<Vec<RoleJob>, StoreError> {
        match self {
            Done::Claimed(jobs) => Ok(jobs),
            other => Err(mismatched("claim", &other)),
        }
    }
}

fn mismatched(asked: &str, answer: &Done) -> StoreError {
    StoreError::Corrupt(format!("the writer answered a {asked} with {answer:?}"))
}

type Answer = oneshot::Sender<Result<Done, StoreError>>;

/// Each write's result, in the batch's order, and whom to wake once they are durable.
type Written = (Vec<Result<Done, StoreError>>, Wake);

/// Applies `write` on `conn` without committing; what it did, and whom to wake once durable.
async fn apply_write<E: Execute>(conn: &E, write: &Write) -> Result<(Done, Wake), StoreError> {
    match write {
        Write::Commit(commit) => {
            apply(conn, commit).await.map(|(recorded, wake)| (Done::Recorded(recorded), wake))
        }
        Write::Settle(settle) => settle_on(conn, settle).await.map(settled),
        Write::Claim(claim) => claim_on(conn, claim).await.map(|jobs| (Done::Claimed(jobs), Wake::default())),
    }
}

/// A settlement's answer, and whom it wakes: the role worker, if the job was put back to pending.
fn settled(settled: Settled) -> (Done, Wake) {
    (Done::Settled(settled), Wake { jobs: settled == Settled::Requeued, ..Wake::default() })
}

/// Every commit of a batch of `len` failed with `e`.
fn failed(len: usize, e: StoreError) -> Written {
    ((0..len).map(|_| Err(e.clone())).collect(), Wake::default())
}

/// The handle to a repository's writer task, started on first use, and what it has written.
#[derive(Debug, Clone, Default)]
pub(super) struct Writer {
    queue: Arc<OnceLock<mpsc::Sender<(Write, Answer)>>>,
    stats: Arc<Stats>,
}

/// Commits and the transactions that wrote them, since the repository was opened.
#[derive(Debug, Default)]
struct Stats {
    commits: AtomicU64,
    batches: AtomicU64,
    claims: AtomicU64,
    checkpoints: AtomicU64,
}

/// How much group commit grouped: `commits` (ledger commits and settlements) written in
/// `batches` transactions; the role-job `claims` written in the same batches (on SQLite; a batch
/// of claims alone is not counted in `batches`); and the WAL `checkpoints` the writer ran beside
/// them (`seaorm/writer/checkpoint.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitStats {
    pub commits: u64,
    pub batches: u64,
    pub claims: u64,
    pub checkpoints: u64,
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the database writer stopped".to_owned())
}

impl SeaOrmRepo {
    /// Writes `write` durably: on SQLite through the writer task (started in the current runtime
    /// on first use), batched with whatever else is waiting; on PostgreSQL on its own, as one
    /// statement where it can be (see the module docs).
    pub(super) async fn write(&self, write: Write) -> Result<Done, StoreError> {
        let stats = self.writer.stats.clone();
        let backend = self.db.get_database_backend();
        if backend != DbBackend::Sqlite {
            let postgres = backend == DbBackend::Postgres;
            let written = match &write {
                Write::Commit(commit) if postgres && as_one::fits(commit) => as_one::write(&self.db, commit)
                    .await
                    .map(|(recorded, wake)| (Done::Recorded(recorded), wake)),
                Write::Settle(settle) if postgres => as_one::settle(&self.db, settle).await.map(settled),
                _ => write_alone(&self.db, &write).await,
            };
            stats.record(1);
            let (done, wake) = written?;
            self.wakers().wake(wake);
            return Ok(done);
        }
        let queue = self.writer.queue.get_or_init(|| {
            let (queue, commits) = mpsc::channel(QUEUE);
            let checkpoints =
                self.wal_checkpoints.then(|| checkpoint::Checkpoints::on(self.read.clone(), stats.clone()));
            tokio::spawn(write_batches(
                self.db.get_sqlite_connection_pool().clone(),
                commits,
                self.wakers(),
                stats,
                checkpoints,
            ));
            queue
        });
        let (answer, answered) = oneshot::channel();
        queue.send((write, answer)).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }

    fn wakers(&self) -> Wakers {
        Wakers { jobs: self.wake.clone(), notices: self.notices.clone(), deferred: self.deferred.clone() }
    }

    /// How many commits were written in how many transactions (for `/metrics` and tests).
    pub fn commit_stats(&self) -> CommitStats {
        let stats = &self.writer.stats;
        CommitStats {
            commits: stats.commits.load(Ordering::Relaxed),
            batches: stats.batches.load(Ordering::Relaxed),
            claims: stats.claims.load(Ordering::Relaxed),
            checkpoints: stats.checkpoints.load(Ordering::Relaxed),
        }
    }
}

impl Stats {
    fn record(&self, commits: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.commits.fetch_add(commits as u64, Ordering::Relaxed);
    }

    /// Counts `batch`: its claims apart, and its commits and transaction only if it has any.
    fn record_batch(&self, batch: &[Write]) {
        let claims = batch.iter().filter(|w| matches!(w, Write::Claim(_))).count();
        self.claims.fetch_add(claims as u64, Ordering::Relaxed);
        if claims < batch.len() {
            self.record(batch.len() - claims);
        }
    }
}

/// The workers a durable batch may have work for.
struct Wakers {
    jobs: Arc<Notify>,
    notices: Arc<Notify>,
    deferred: Arc<Notify>,
}

impl Wakers {
    fn wake(&self, wake: Wake) {
        if wake.jobs {
            self.jobs.notify_one();
        }
        if wake.notices {
            self.notices.notify_one();
        }
        if wake.deferred {
            self.deferred.notify_one();
        }
    }
}

/// The writer task: until every handle is dropped, takes what is waiting and writes it.
async fn write_batches(
    pool: SqlitePool,
    mut commits: mpsc::Receiver<(Write, Answer)>,
    wakers: Wakers,
    stats: Arc<Stats>,
    mut checkpoints: Option<checkpoint::Checkpoints>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while commits.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (batch, answers): (Vec<Write>, Vec<Answer>) = batch.drain(..).unzip();
        stats.record_batch(&batch);
        let len = batch.len();
        let (results, wake) = direct::write(&pool, batch).await;
        if let Some(checkpoints) = &mut checkpoints {
            checkpoints.after(len);
        }
        for (answer, result) in answers.into_iter().zip(results) {
            // The caller may have given up (its request was cancelled); the write stands.
            let _ = answer.send(result);
        }
        wakers.wake(wake);
    }
}

/// Writes one commit in a transaction of its own (PostgreSQL's replays and commits that repeat
/// an upsert's key, and any database but SQLite and PostgreSQL); what it did, and whom to wake.
async fn write_alone(db: &DatabaseConnection, write: &Write) -> Result<(Done, Wake), StoreError> {
    let txn = db.begin().await.map_err(store_err)?;
    let applied = apply_write(&txn, write).await?;
    txn.commit().await.map_err(store_err)?;
    Ok(applied)
}
