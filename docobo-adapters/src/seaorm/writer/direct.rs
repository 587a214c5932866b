//! One thread hop per batch on SQLite. sqlx runs every SQLite statement on the connection's own
//! worker thread and sends the answer back: two thread hand-offs per statement, and a commit is
//! five to eight statements. The profile (docs/PERFORMANCE.md §4.1) found most of the server's
//! CPU in those hand-offs. So the group committer borrows the writer connection's handle
//! instead, as sqlx allows (`lock_handle`: its worker makes no call on the handle until it is
//! given back), and runs the whole batch, `BEGIN` to `COMMIT`, on one blocking thread through
//! `rusqlite`.
//!
//! The statements stay SeaORM's: [`apply_write`] builds each with SeaORM's query builders and
//! hands it to an [`Execute`]; here that is [`Lent`], which runs it at once on the borrowed
//! handle, so the commit's SQL is written once for both databases.

use std::sync::Mutex;

use docobo_core::ports::StoreError;
use rusqlite::ErrorCode;
use rusqlite::types::Value as Sql;
use sea_orm::sea_query::Value;
use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::{Sqlite, SqlitePool};
use sea_orm::{DbBackend, Statement};
use tokio::runtime::Handle;

use super::super::entities::role_job;
use super::super::execute::Execute;
use super::super::reads::{self, read_error};
use super::super::steps::Wake;
use super::{Done, Write, Written, apply_write, failed};

/// Writes `batch` as one transaction on the writer connection from `pool`, on a blocking
/// thread: each commit in a savepoint when there are several, alone when it is one.
pub(super) async fn write(pool: &SqlitePool, batch: Vec<Write>) -> Written {
    let len = batch.len();
    let mut connection = match pool.acquire().await {
        Ok(connection) => connection,
        Err(e) => return failed(len, unavailable(e)),
    };
    let runtime = Handle::current();
    let done = tokio::task::spawn_blocking(move || {
        let (written, idle) = write_locked(&runtime, &mut connection, &batch);
        if !idle {
            // A failed ROLLBACK left a transaction open: sqlx must not reuse this connection.
            connection.close_on_drop();
        }
        // Given back to the pool in the runtime, not on the blocking thread.
        (written, connection)
    })
    .await;
    match done {
        Ok((written, _connection)) => written,
        Err(e) => failed(len, unavailable(format!("the database writer: {e}"))),
    }
}

/// Borrows the handle from sqlx's worker and writes `batch` on it; the result, and whether the
/// connection was left with no transaction open.
fn write_locked(
    runtime: &Handle,
    connection: &mut PoolConnection<Sqlite>,
    batch: &[Write],
) -> (Written, bool) {
    let mut locked = match runtime.block_on(connection.lock_handle()) {
        Ok(locked) => locked,
        Err(e) => return (failed(batch.len(), unavailable(e)), true),
    };
    let handle = locked.as_raw_handle().as_ptr();
    // SAFETY: `locked` keeps sqlx's worker off this handle until it is dropped, and a connection
    // made by `from_handle` does not own the handle (it never closes it). `lent` finalizes its
    // statements when it is dropped, which is before `locked` (it is declared after it).
    #[allow(unsafe_code)]
    let sqlite = match unsafe { rusqlite::Connection::from_handle(handle) } {
        Ok(sqlite) => sqlite,
        Err(e) => return (failed(batch.len(), unavailable(e)), true),
    };
    let lent = Lent(Mutex::new(sqlite));
    let written = transaction(runtime, &lent, batch);
    let idle = lent.sqlite().is_autocommit();
    (written, idle)
}

fn transaction(runtime: &Handle, lent: &Lent, batch: &[Write]) -> Written {
    let all = |e: StoreError| {
        lent.run("ROLLBACK").ok();
        failed(batch.len(), e)
    };
    if let Err(e) = lent.run("BEGIN IMMEDIATE") {
        return failed(batch.len(), e);
    }
    let mut results = Vec::with_capacity(batch.len());
    let mut wake = Wake::default();
    if let [commit] = batch {
        // Alone: no savepoint needed; a failure rolls the transaction back.
        match runtime.block_on(apply_write(lent, commit)) {
            Ok((recorded, woken)) => {
                results.push(Ok(recorded));
                wake = woken;
            }
            Err(e) => return all(e),
        }
    } else {
        for commit in batch {
            if let Err(e) = lent.run("SAVEPOINT batch") {
                return all(e);
            }
            let applied = runtime.block_on(apply_write(lent, commit));
            let rolled_back = if applied.is_ok() { Ok(()) } else { lent.run("ROLLBACK TO batch") };
            // The savepoint itself failed: the transaction cannot be trusted.
            if let Err(e) = rolled_back.and_then(|()| lent.run("RELEASE batch")) {
                return all(e);
            }
            if let Ok((_, woken)) = &applied {
                wake = wake.or(*woken);
            }
            results.push(applied.map(|(done, _): (Done, Wake)| done));
        }
    }
    match lent.run("COMMIT") {
        Ok(()) => (results, wake),
        Err(e) => all(e),
    }
}

/// The writer connection's handle, lent for one batch. (The mutex is never contended: one
/// blocking thread runs the batch; it makes the handle shareable as [`Execute`] requires.)
struct Lent(Mutex<rusqlite::Connection>);

impl Lent {
    fn sqlite(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs one statement without parameters (transaction control), prepared once a batch.
    fn run(&self, sql: &str) -> Result<(), StoreError> {
        let sqlite = self.sqlite();
        let mut prepared = sqlite.prepare_cached(sql).map_err(unavailable)?;
        prepared.raw_execute().map(drop).map_err(unavailable)
    }

    /// Runs `run` on `statement` prepared (once a batch) with its values bound as SQLite
    /// stores them.
    fn with_prepared<T>(
        &self,
        statement: &Statement,
        run: impl FnOnce(&mut rusqlite::CachedStatement<'_>, &[Sql]) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let values = values(statement)?;
        let sqlite = self.sqlite();
        let mut prepared = sqlite.prepare_cached(&statement.sql).map_err(unavailable)?;
        run(&mut prepared, &values)
    }

    fn execute_now(&self, statement: &Statement) -> Result<u64, StoreError> {
        self.with_prepared(statement, |prepared, values| {
            match prepared.execute(rusqlite::params_from_iter(values)) {
                Ok(changed) => Ok(changed as u64),
                Err(e) if unique_violation(&e) => Err(StoreError::Conflict),
                Err(e) => Err(unavailable(e)),
            }
        })
    }
}

/// `statement`'s values as SQLite stores them.
pub(in crate::seaorm) fn values(statement: &Statement) -> Result<Vec<Sql>, StoreError> {
    match &statement.values {
        Some(values) => values.0.iter().map(to_sql).collect(),
        None => Ok(Vec::new()),
    }
}

impl Execute for Lent {
    fn backend(&self) -> DbBackend {
        DbBackend::Sqlite
    }

    async fn execute(&self, statement: Statement) -> Result<u64, StoreError> {
        self.execute_now(&statement)
    }

    async fn number(&self, statement: Statement) -> Result<i64, StoreError> {
        self.with_prepared(&statement, |prepared, values| {
            prepared.query_row(rusqlite::params_from_iter(values), |row| row.get(0)).map_err(unavailable)
        })
    }

    async fn jobs(&self, statement: Statement) -> Result<Vec<role_job::Model>, StoreError> {
        self.with_prepared(&statement, |prepared, values| {
            let rows = prepared.query_map(rusqlite::params_from_iter(values), reads::role_job);
            rows.and_then(Iterator::collect).map_err(read_error)
        })
    }
}

fn unique_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_error().is_some_and(|s| {
        s.code == ErrorCode::ConstraintViolation
            && matches!(
                s.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            )
    })
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A SeaORM value as SQLite stores it.
pub(in crate::seaorm) fn to_sql(value: &Value) -> Result<Sql, StoreError> {
    fn or_null<T>(v: &Option<T>, f: impl FnOnce(&T) -> Sql) -> Sql {
        v.as_ref().map_or(Sql::Null, f)
    }
    Ok(match value {
        Value::Bool(v) => or_null(v, |b| Sql::Integer(i64::from(*b))),
        Value::TinyInt(v) => or_null(v, |n| Sql::Integer(i64::from(*n))),
        Value::SmallInt(v) => or_null(v, |n| Sql::Integer(i64::from(*n))),
        Value::Int(v) => or_null(v, |n| Sql::Integer(i64::from(*n))),
        Value::BigInt(v) => or_null(v, |n| Sql::Integer(*n)),
        Value::TinyUnsigned(v) => or_null(v, |n| Sql::Integer(i64::from(*n))),
        Value::SmallUnsigned(v) => or_null(v, |n| Sql::Integer(i64::from(*n))),
        Value::Unsigned(v) => or_null(v, |n| Sql::Integer(i64::from(*n))),
        Value::BigUnsigned(None) => Sql::Null,
        Value::BigUnsigned(Some(n)) => Sql::Integer(
            i64::try_from(*n).map_err(|_| unavailable(format!("{n} does not fit SQLite's integer")))?,
        ),
        Value::Float(v) => or_null(v, |n| Sql::Real(f64::from(*n))),
        Value::Double(v) => or_null(v, |n| Sql::Real(*n)),
        Value::String(v) => or_null(v, |s| Sql::Text(s.clone())),
        Value::Char(v) => or_null(v, |c| Sql::Text(c.to_string())),
        Value::Bytes(v) => or_null(v, |b| Sql::Blob(b.clone())),
        other => return Err(unavailable(format!("the SQLite group committer cannot bind {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_bind_as_sqlite_stores_them_and_unbindable_ones_are_refused() {
        assert_eq!(to_sql(&Value::Int(Some(-3))).ok(), Some(Sql::Integer(-3)));
        assert_eq!(to_sql(&Value::BigInt(None)).ok(), Some(Sql::Null));
        assert_eq!(to_sql(&Value::Bool(Some(true))).ok(), Some(Sql::Integer(1)));
        assert_eq!(to_sql(&Value::String(Some("a'b".into()))).ok(), Some(Sql::Text("a'b".into())));
        assert_eq!(to_sql(&Value::Bytes(Some(vec![0, 1]))).ok(), Some(Sql::Blob(vec![0, 1])));
        assert_eq!(to_sql(&Value::BigUnsigned(Some(7))).ok(), Some(Sql::Integer(7)));
        assert!(to_sql(&Value::BigUnsigned(Some(u64::MAX))).is_err(), "above i64 is refused, not wrapped");
    }
}
