//! Every repository port on SeaORM, over SQLite (the embedded default) and PostgreSQL, from one
//! set of migrations.
//!
//! - Deduplication and "one row per key" are unique constraints, never a read before a write.
//! - [`Ledger::commit`](docobo_core::ports::Ledger::commit) is atomic: the event insert (`ON
//!   CONFLICT DO NOTHING` reports a duplicate), the entitlement writes (optimistic: `WHERE
//!   revision = ?`), the job upserts, payments, audit and notices. On SQLite concurrent commits
//!   share one transaction, each in its own savepoint (`seaorm/writer.rs`: group commit), and each is
//!   answered only once that transaction is durable; on PostgreSQL each has its own, in parallel.
//! - Jobs are claimed with a lease: `FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas never
//!   claim the same job; on SQLite the pool has a single connection, so every transaction runs
//!   alone (the single-writer path), with WAL and a busy timeout for other processes.
//! - In-process workers are woken through [`SeaOrmRepo::job_signal`] the moment a commit or
//!   enqueue adds work, so webhook → worker takes milliseconds, not a poll interval.
//! - Provider credentials are sealed with [`crypto::SecretBox`] under `DOCOBO_SECRET_KEY`.

mod audit;
mod catalog;
mod convert;
pub mod crypto;
mod cursors;
pub mod entities;
mod execute;
mod ledger;
pub mod migration;
mod notices;
mod payments;
mod pool;
mod queue;
mod reads;
mod relay;
mod sessions;
mod setup;
mod steps;
mod warm;
mod writer;

pub use writer::{CommitStats, MAX_BATCH};

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait;
use tokio::sync::Notify;

use self::crypto::{KeyError, SecretBox};
use self::migration::Migrator;

/// Read connections on a SQLite file, beside the one writer.
const READERS: u32 = 2;

/// Connections to PostgreSQL per process. More only add backends competing for the same cores:
/// on 2 cores shared with the database, 8 against 16 gave fewer refusals, a lower accepted
/// p99 and faster 503s under overload, and a lower p99 at 1,000/s (docs/PERFORMANCE.md §4.7).
/// Webhooks past the pool wait for a connection; past the webhook cap they are refused.
const POSTGRES_CONNECTIONS: u32 = 8;

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot open the database: {0}")]
    Connect(#[source] DbErr),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[source] DbErr),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// The repository over one database.
#[derive(Debug, Clone)]
pub struct SeaOrmRepo {
    db: DatabaseConnection,
    /// Where reads that must not wait behind the writer's batch go (a catalog not kept,
    /// entitlements, the WAL checkpoints): on a SQLite file, connections of their own (WAL lets
    /// readers run beside the one writer); elsewhere the same pool as `db`. On a SQLite file the
    /// three reads every webhook makes go through `direct` instead.
    read: DatabaseConnection,
    secrets: Option<Arc<SecretBox>>,
    wake: Arc<Notify>,
    /// Notified when a commit stores a deferred delivery, for the resolver.
    deferred: Arc<Notify>,
    /// Notified when notices are planned, for the sender.
    notices: Arc<Notify>,
    /// Notified when mirror jobs become due, for the relay worker.
    mirrors: Arc<Notify>,
    /// Whose clock stamps and judges role-job leases.
    lease_clock: LeaseClock,
    /// The group committer every `Ledger::commit` goes through ([`writer`]).
    writer: writer::Writer,
    /// Each guild's catalog as ingest last read it ([`catalog`]).
    catalogs: Arc<catalog::KeptCatalogs>,
    /// On a SQLite file opened here, the webhook path's reads without sqlx's threads ([`reads`]).
    direct: Option<Arc<reads::DirectReads>>,
    /// A SQLite file opened here: automatic WAL checkpoints are off and the writer runs them on
    /// a read connection instead (`writer/checkpoint.rs`).
    wal_checkpoints: bool,
}

/// Whose clock stamps and judges role-job leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseClock {
    /// PostgreSQL's (`clock_timestamp()`), shared by every replica, so one whose clock runs
    /// ahead cannot take over leases early. The default; SQLite has one host and so one clock,
    /// and uses the caller's.
    Database,
    /// The `now` each caller passes, for tests that move time by hand.
    Caller,
}

/// The credential sealer for `DOCOBO_SECRET_KEY` (and `DOCOBO_SECRET_KEY_OLD` while rotating).
fn sealing(
    secret_key: Option<&str>,
    previous_key: Option<&str>,
) -> Result<Option<Arc<SecretBox>>, ConnectError> {
    Ok(match (secret_key, previous_key) {
        (Some(key), previous) => {
            let secrets = SecretBox::from_base64(key)?;
            Some(Arc::new(match previous {
                Some(previous) => secrets.with_previous(previous)?,
                None => secrets,
            }))
        }
        (None, Some(_)) => return Err(ConnectError::Key(KeyError::OldWithoutNew)),
        (None, None) => None,
    })
}

impl SeaOrmRepo {
    /// Opens `url` (`sqlite://docobo.db?mode=rwc`, `sqlite::memory:`, `postgres://…`).
    /// `secret_key` is `DOCOBO_SECRET_KEY`; without it credentials can be neither stored nor read.
    /// Does not migrate: call [`SeaOrmRepo::migrate`].
    pub async fn connect(url: &str, secret_key: Option<&str>) -> Result<Self, ConnectError> {
        Self::connect_rotating(url, secret_key, None).await
    }

    /// As [`SeaOrmRepo::connect`], also opening credentials sealed under `previous_key`
    /// (`DOCOBO_SECRET_KEY_OLD`, while rotating; see [`SeaOrmRepo::reseal_credentials`]).
    pub async fn connect_rotating(
        url: &str,
        secret_key: Option<&str>,
        previous_key: Option<&str>,
    ) -> Result<Self, ConnectError> {
        let secrets = sealing(secret_key, previous_key)?;
        let mut options = ConnectOptions::new(url);
        // Pinging on every checkout costs a round trip per statement; ping only connections
        // idle long enough for a proxy or the server to have dropped them.
        options
            .sqlx_logging(false)
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire_if_idle_for(Duration::from_secs(30));
        let mut readers = None;
        if url.starts_with("sqlite:") {
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            // One connection: SQLite allows one writer at a time anyway, and a single connection
            // makes every transaction run alone instead of failing with SQLITE_BUSY. It is kept
            // open for the life of the pool (an in-memory database dies with its last connection).
            options.max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None);
            options.map_sqlx_sqlite_opts(move |o| {
                let o = o.busy_timeout(Duration::from_secs(5)).foreign_keys(true);
                // FULL keeps a commit durable across power loss, which is what a 2xx promises.
                if in_memory {
                    o
                } else {
                    o.journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Full)
                        // Checkpoints run beside the writer, not inside a commit (writer/checkpoint.rs).
                        .pragma("wal_autocheckpoint", "0")
                }
            });
            if !in_memory {
                let mut read = options.clone();
                read.max_connections(READERS).min_connections(1);
                readers = Some(read);
            }
        } else {
            options.max_connections(POSTGRES_CONNECTIONS).min_connections(1);
            options.map_sqlx_postgres_before_acquire(|conn, meta| {
                Box::pin(async move {
                    if pool::suspect(meta.age) {
                        sea_orm::sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            });
        }
        let db = Database::connect(options).await.map_err(ConnectError::Connect)?;
        // Opened after the writer, which creates the file.
        let readers_opened = readers.is_some();
        let read = match readers {
            Some(options) => Database::connect(options).await.map_err(ConnectError::Connect)?,
            None => db.clone(),
        };
        let direct = if readers_opened {
            let reads = reads::DirectReads::new(url)
                .map_err(|e| ConnectError::Connect(DbErr::Custom(format!("the SQLite file's path: {e}"))))?;
            Some(Arc::new(reads))
        } else {
            None
        };
        Ok(SeaOrmRepo { read, direct, wal_checkpoints: readers_opened, ..SeaOrmRepo::over(db, secrets) })
    }

    /// Wraps a connection the embedding application already has (its own SeaORM pool, with its
    /// own options). `secret_key` is as in [`SeaOrmRepo::connect`]. Does not migrate: call
    /// [`SeaOrmRepo::migrate`], which only adds Docobo's own tables.
    pub fn from_connection(db: DatabaseConnection, secret_key: Option<&str>) -> Result<Self, ConnectError> {
        Ok(SeaOrmRepo::over(db, sealing(secret_key, None)?))
    }

    fn over(db: DatabaseConnection, secrets: Option<Arc<SecretBox>>) -> Self {
        SeaOrmRepo {
            read: db.clone(),
            db,
            secrets,
            wake: Arc::new(Notify::new()),
            deferred: Arc::new(Notify::new()),
            notices: Arc::new(Notify::new()),
            mirrors: Arc::new(Notify::new()),
            lease_clock: LeaseClock::Database,
            writer: writer::Writer::default(),
            catalogs: Arc::default(),
            direct: None,
            wal_checkpoints: false,
        }
    }

    /// Changes whose clock stamps role-job leases ([`LeaseClock::Database`] by default).
    pub fn with_lease_clock(mut self, clock: LeaseClock) -> Self {
        self.lease_clock = clock;
        self
    }

    /// Brings the schema up to date. Safe to run at every start and from several replicas.
    pub async fn migrate(&self) -> Result<(), ConnectError> {
        Migrator::up(&self.db, None).await.map_err(ConnectError::Migrate)
    }

    /// Notified whenever a commit or an enqueue adds a role job: a sleeping worker should claim.
    pub fn job_signal(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Notified whenever a commit stores a deferred delivery: a sleeping resolver should look.
    pub fn deferred_signal(&self) -> Arc<Notify> {
        self.deferred.clone()
    }

    /// Notified whenever notices are planned: a sleeping sender should look.
    pub fn notice_signal(&self) -> Arc<Notify> {
        self.notices.clone()
    }

    /// Notified whenever a signal is recorded or a mirror job is due again: a sleeping relay
    /// worker should claim.
    pub fn mirror_signal(&self) -> Arc<Notify> {
        self.mirrors.clone()
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Whether the database answers, for readiness checks.
    pub async fn ping(&self) -> Result<(), docobo_core::ports::StoreError> {
        self.db.ping().await.map_err(convert::store_err)
    }

    /// The underlying connection, for benches and tests that measure the database itself.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}
