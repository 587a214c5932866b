//! The webhook path's reads on a SQLite file (the catalog's revision, an entitlement, a
//! checkout), through `rusqlite` on the thread that asks. Through sqlx every read is two thread
//! hand-offs, to the connection's worker and back, and under load those cost more than the read:
//! in WAL mode a read of a few cached pages takes microseconds and never waits for the writer,
//! so it runs where it is asked, and each connection keeps its prepared statements for life.
//!
//! The statements stay SeaORM's, built for SQLite exactly as they would run through sqlx; only
//! the rows are mapped here, by column name. Anything else, and every other database, reads
//! through SeaORM ([`SeaOrmRepo::hot`]).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use docobo_core::ports::StoreError;
use rusqlite::{Connection, OpenFlags, Row};
use sea_orm::sqlx::sqlite::SqliteConnectOptions;
use sea_orm::{DbBackend, EntityTrait, QueryTrait, Select, Statement};

use super::SeaOrmRepo;
use super::convert::store_err;
use super::entities::{catalog_revision, checkout, entitlement, role_job};
use super::writer::values;

/// Connections kept open between reads: as many as reads run at once (one per runtime thread,
/// since a read never yields), with room to spare.
const KEPT: usize = 4;

/// How long a read waits for a lock it cannot have at once. In WAL mode readers take none the
/// writer holds, so this is only for the rare moments SQLite itself needs one (recovering the
/// WAL index after a crash); it blocks the asking thread, so it is short.
const BUSY: Duration = Duration::from_secs(1);

/// Read-only connections to one SQLite file, opened as needed and kept ([`KEPT`]).
#[derive(Debug)]
pub(super) struct DirectReads {
    path: PathBuf,
    kept: Mutex<Vec<Connection>>,
}

/// A row mapped to its SeaORM model.
pub(super) type MapRow<M> = fn(&Row<'_>) -> rusqlite::Result<M>;

impl DirectReads {
    /// For the SQLite file `url` names.
    pub(super) fn new(url: &str) -> Result<Self, StoreError> {
        let options =
            SqliteConnectOptions::from_str(url).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(DirectReads { path: options.get_filename().to_owned(), kept: Mutex::default() })
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&self.path, flags)?;
        connection.busy_timeout(BUSY)?;
        connection.pragma_update(None, "query_only", true)?;
        Ok(connection)
    }

    /// Runs `statement`, a `SELECT` SeaORM built for SQLite, and maps each row with `map`.
    pub(super) fn all<M>(&self, statement: &Statement, map: MapRow<M>) -> Result<Vec<M>, StoreError> {
        let values = values(statement)?;
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let connection = match kept {
            Some(connection) => connection,
            None => self.open().map_err(read_error)?,
        };
        let rows = connection.prepare_cached(&statement.sql).and_then(|mut prepared| {
            prepared.query_map(rusqlite::params_from_iter(values), map)?.collect::<Result<Vec<_>, _>>()
        });
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < KEPT {
            kept.push(connection);
        }
        rows.map_err(read_error)
    }
}

/// A value of the wrong type is a corrupt row; anything else, a database not answering.
pub(super) fn read_error(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::InvalidColumnName(_)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(format!("a stored row: {e}")),
        e => StoreError::Unavailable(e.to_string()),
    }
}

impl SeaOrmRepo {
    /// A read on the webhook path: through `rusqlite` on a SQLite file, else through SeaORM on
    /// the read connections.
    pub(super) async fn hot<E: EntityTrait>(
        &self,
        select: Select<E>,
        map: MapRow<E::Model>,
    ) -> Result<Vec<E::Model>, StoreError> {
        match &self.direct {
            Some(direct) => direct.all(&select.build(DbBackend::Sqlite), map),
            None => select.all(&self.read).await.map_err(store_err),
        }
    }
}

pub(super) fn revision(r: &Row<'_>) -> rusqlite::Result<catalog_revision::Model> {
    Ok(catalog_revision::Model { guild_id: r.get("guild_id")?, revision: r.get("revision")? })
}

pub(super) fn entitlement(r: &Row<'_>) -> rusqlite::Result<entitlement::Model> {
    Ok(entitlement::Model {
        id: r.get("id")?,
        guild_id: r.get("guild_id")?,
        user_id: r.get("user_id")?,
        role_id: r.get("role_id")?,
        provider: r.get("provider")?,
        external_ref: r.get("external_ref")?,
        status: r.get("status")?,
        standing: r.get("standing")?,
        deadline: r.get("deadline")?,
        revision: r.get("revision")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

pub(super) fn checkout(r: &Row<'_>) -> rusqlite::Result<checkout::Model> {
    Ok(checkout::Model {
        guild_id: r.get("guild_id")?,
        reference: r.get("reference")?,
        user_id: r.get("user_id")?,
        role_id: r.get("role_id")?,
        provider: r.get("provider")?,
        expected_minor: r.get("expected_minor")?,
        currency: r.get("currency")?,
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
    })
}

pub(super) fn role_job(r: &Row<'_>) -> rusqlite::Result<role_job::Model> {
    Ok(role_job::Model {
        id: r.get("id")?,
        guild_id: r.get("guild_id")?,
        user_id: r.get("user_id")?,
        role_id: r.get("role_id")?,
        state: r.get("state")?,
        attempts: r.get("attempts")?,
        generation: r.get("generation")?,
        run_at: r.get("run_at")?,
        locked_until: r.get("locked_until")?,
        last_error: r.get("last_error")?,
        cause: r.get("cause")?,
    })
}
