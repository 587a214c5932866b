//! Where a ledger commit's statements run. The commit's SQL is built once, with SeaORM's query
//! builders, and executed either on a SeaORM connection or transaction (PostgreSQL, and every
//! write outside the ledger) or on the SQLite writer's lent handle ([`super::writer`]), which
//! runs a whole batch on one thread instead of handing each statement to sqlx's worker.

use std::future::Future;

use docobo_core::ports::StoreError;
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement};

use super::convert::store_err;
use super::entities::role_job;

/// Runs built statements; the commit reads nothing back but how many rows each changed.
pub(super) trait Execute: Sync {
    /// The database the statements are built for.
    fn backend(&self) -> DbBackend;

    /// Runs `statement`; how many rows it inserted, updated or deleted. MUST report a unique
    /// violation as [`StoreError::Conflict`].
    fn execute(&self, statement: Statement) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Runs `statement`, a select of one integer; that integer.
    fn number(&self, statement: Statement) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Runs `statement`, a role-job claim (`UPDATE … RETURNING` every column); the rows it
    /// leased.
    fn jobs(
        &self,
        statement: Statement,
    ) -> impl Future<Output = Result<Vec<role_job::Model>, StoreError>> + Send;
}

impl<C: ConnectionTrait> Execute for C {
    fn backend(&self) -> DbBackend {
        self.get_database_backend()
    }

    async fn execute(&self, statement: Statement) -> Result<u64, StoreError> {
        Ok(self.execute_raw(statement).await.map_err(store_err)?.rows_affected())
    }

    async fn number(&self, statement: Statement) -> Result<i64, StoreError> {
        let row = self.query_one_raw(statement).await.map_err(store_err)?;
        let row = row.ok_or_else(|| StoreError::Corrupt("a check returned no row".to_owned()))?;
        // An integer literal is a 32-bit integer on PostgreSQL, a 64-bit one on SQLite.
        match row.try_get_by_index::<i64>(0) {
            Ok(n) => Ok(n),
            Err(_) => row.try_get_by_index::<i32>(0).map(i64::from).map_err(store_err),
        }
    }

    async fn jobs(&self, statement: Statement) -> Result<Vec<role_job::Model>, StoreError> {
        role_job::Entity::find().from_raw_sql(statement).all(self).await.map_err(store_err)
    }
}
