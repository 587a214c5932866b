//! The role-job queue: one row per (guild, user, role), claimed under a lease.
//!
//! Claiming is one statement on both databases, `UPDATE … WHERE id IN (due subquery)
//! RETURNING`, which stamps `locked_until` on the rows it picks. On PostgreSQL the subquery
//! selects them `FOR UPDATE SKIP LOCKED`, so concurrent workers and replicas skip each other's
//! rows instead of waiting; on SQLite claims are written in the group committer's batches
//! (`writer.rs`), one at a time. Settling is a
//! conditional update on the lease the worker holds, so a worker whose lease ran out cannot
//! overwrite the job another worker took over.
//!
//! On PostgreSQL leases are stamped and compared with the database's clock, not the claiming
//! replica's: a replica whose clock runs ahead would otherwise see every other replica's lease
//! as already over and claim the same jobs. (On SQLite there is one host and so one clock.)

use async_trait::async_trait;
use docobo_core::domain::{JobId, JobState, RoleJob, RoleJobKey, Timestamp};
use docobo_core::ports::{JobQueue, Settled, Settlement, StoreError};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::sea_query::{
    InsertStatement, LockBehavior, LockType, OnConflict, Order, Query, UpdateStatement,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
};

use super::SeaOrmRepo;
use super::audit::audit_row;
use super::convert::{
    from_micros, guild_id, micros, opt_from_micros, parse, role_id, sf, storable, store_err, user_id,
};
use super::entities::role_job::{self, Column as C};
use super::execute::Execute;
use super::writer::{Settle, Write};

fn job_from(m: role_job::Model) -> Result<RoleJob, StoreError> {
    let state = parse("job state", &m.state)?;
    Ok(RoleJob {
        id: JobId(m.id),
        key: RoleJobKey {
            guild: guild_id(m.guild_id)?,
            user: user_id(m.user_id)?,
            role: role_id(m.role_id)?,
        },
        state,
        attempts: u32::try_from(m.attempts).unwrap_or_default(),
        generation: u64::try_from(m.generation).unwrap_or_default(),
        run_at: from_micros(m.run_at)?,
        locked_until: opt_from_micros(m.locked_until)?,
        last_error: m.last_error,
        cause: m.cause,
    })
}

/// Asks for `key` to run at `now` (see `JobQueue::enqueue` for the rules) in one statement:
/// `INSERT … ON CONFLICT (guild, user, role) DO UPDATE`, so concurrent enqueues neither duplicate
/// the row nor lose a generation bump.
pub(super) async fn upsert_job<E: Execute>(
    conn: &E,
    key: RoleJobKey,
    cause: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.execute(conn.backend().build(&job_upsert(key, cause, now))).await?;
    Ok(())
}

/// The statement [`upsert_job`] runs.
pub(super) fn job_upsert(key: RoleJobKey, cause: &str, now: Timestamp) -> InsertStatement {
    let now = micros(now);
    let existing = |c: C| Expr::col((role_job::Entity, c));
    let pending = || existing(C::State).eq(JobState::as_str(JobState::Pending));
    let row = role_job::ActiveModel {
        id: Default::default(),
        guild_id: Set(sf(key.guild.get())),
        user_id: Set(sf(key.user.get())),
        role_id: Set(sf(key.role.get())),
        state: Set(JobState::as_str(JobState::Pending).to_owned()),
        attempts: Set(0),
        generation: Set(1),
        run_at: Set(now),
        locked_until: Set(None),
        last_error: Set(None),
        cause: Set(Some(cause.to_owned())),
    };
    // In DO UPDATE the existing row is named by the table (PostgreSQL rejects bare names as
    // ambiguous with `excluded`).
    let on_conflict = OnConflict::columns([C::GuildId, C::UserId, C::RoleId])
        .value(
            C::RunAt,
            Expr::case(pending().and(existing(C::RunAt).lt(now)), existing(C::RunAt)).finally(now),
        )
        .value(C::Attempts, Expr::case(pending(), existing(C::Attempts)).finally(0))
        .value(C::LastError, Expr::case(pending(), existing(C::LastError)).finally(Expr::null()))
        .value(C::State, JobState::as_str(JobState::Pending))
        .value(C::Generation, existing(C::Generation).add(1))
        .value(C::Cause, cause)
        .to_owned();
    role_job::Entity::insert(row).on_conflict(on_conflict).into_query()
}

/// The jobs a claim may take at `now` (a value, or the database's clock in SQL): pending, due,
/// and not under a lease that has yet to run out.
fn due(now: Expr) -> Condition {
    let locked_until = || Expr::col((role_job::Entity, C::LockedUntil));
    Condition::all()
        .add(Expr::col((role_job::Entity, C::State)).eq(JobState::as_str(JobState::Pending)))
        .add(Expr::col((role_job::Entity, C::RunAt)).lte(now.clone()))
        .add(Condition::any().add(locked_until().is_null()).add(locked_until().lte(now)))
}

fn lease_filter(job: &RoleJob) -> Condition {
    let lease = job.locked_until.map(micros);
    Condition::all().add(C::Id.eq(job.id.0)).add(match lease {
        Some(l) => C::LockedUntil.eq(l),
        None => C::LockedUntil.is_null(),
    })
}

#[async_trait]
impl JobQueue for SeaOrmRepo {
    async fn enqueue(&self, keys: &[RoleJobKey], cause: &str, now: Timestamp) -> Result<(), StoreError> {
        for key in keys {
            upsert_job(&self.db, *key, cause, now).await?;
        }
        if !keys.is_empty() {
            self.wake.notify_one();
        }
        Ok(())
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        lease: time::Duration,
        limit: usize,
    ) -> Result<Vec<RoleJob>, StoreError> {
        let claim = Claim { now: self.lease_clock(now), lease, limit };
        if self.backend() != DbBackend::Sqlite {
            return claim_on(&self.db, &claim).await;
        }
        // On SQLite the claim joins the group committer's batch: it shares the webhooks'
        // transaction and fsync instead of taking the one connection for its own.
        self.write(Write::Claim(claim)).await?.claimed()
    }

    /// Handed to the group committer (`seaorm/writer.rs`): on SQLite settlements share the
    /// webhooks' transactions instead of taking the one connection for one each.
    async fn settle(
        &self,
        claimed: &RoleJob,
        settlement: Settlement,
        audit: Vec<docobo_core::domain::AuditEntry>,
        now: Timestamp,
    ) -> Result<Settled, StoreError> {
        let settle = Settle { claimed: claimed.clone(), settlement, audit, now };
        self.write(Write::Settle(settle)).await?.settled()
    }

    async fn job(&self, id: JobId) -> Result<Option<RoleJob>, StoreError> {
        let row = role_job::Entity::find_by_id(id.0).one(&self.db).await.map_err(store_err)?;
        row.map(job_from).transpose()
    }

    async fn job_for(&self, key: RoleJobKey) -> Result<Option<RoleJob>, StoreError> {
        let row = role_job::Entity::find()
            .filter(C::GuildId.eq(sf(key.guild.get())))
            .filter(C::UserId.eq(sf(key.user.get())))
            .filter(C::RoleId.eq(sf(key.role.get())))
            .one(&self.db)
            .await
            .map_err(store_err)?;
        row.map(job_from).transpose()
    }

    async fn jobs(&self, state: JobState, limit: usize) -> Result<Vec<RoleJob>, StoreError> {
        let rows = role_job::Entity::find()
            .filter(C::State.eq(JobState::as_str(state)))
            .order_by_asc(C::RunAt)
            .order_by_asc(C::Id)
            .limit(u64::try_from(limit).unwrap_or(u64::MAX))
            .all(&self.db)
            .await
            .map_err(store_err)?;
        rows.into_iter().map(job_from).collect()
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let min_of = |column: C, locked: bool| {
            let lock = if locked {
                Condition::all().add(C::LockedUntil.is_not_null())
            } else {
                Condition::all().add(C::LockedUntil.is_null())
            };
            role_job::Entity::find()
                .select_only()
                .column_as(Expr::col(column).min(), "m")
                .filter(C::State.eq(JobState::as_str(JobState::Pending)))
                .filter(lock)
                .into_tuple::<Option<i64>>()
        };
        let free = min_of(C::RunAt, false).one(&self.db).await.map_err(store_err)?.flatten();
        // A leased job is due again when its lease ends (its worker may have died).
        let leased = min_of(C::LockedUntil, true).one(&self.db).await.map_err(store_err)?.flatten();
        [free, leased].into_iter().flatten().min().map(from_micros).transpose()
    }
}

/// A claim of up to `limit` due jobs, leased until `now + lease`; `now` is the lease clock
/// ([`SeaOrmRepo::lease_clock`]).
#[derive(Debug, Clone)]
pub(super) struct Claim {
    pub now: Expr,
    pub lease: time::Duration,
    pub limit: usize,
}

/// Claims on `conn` as one statement instead of a transaction of four or five (`BEGIN`, on
/// PostgreSQL the clock, the `SELECT … FOR UPDATE SKIP LOCKED`, the lease's `UPDATE`,
/// `COMMIT`): the update takes the rows the subquery picks and returns them. On PostgreSQL the
/// subquery also locks the rows it picks.
pub(super) async fn claim_on<E: Execute>(conn: &E, claim: &Claim) -> Result<Vec<RoleJob>, StoreError> {
    let now = claim.now.clone();
    let lease = i64::try_from(claim.lease.whole_microseconds()).unwrap_or(i64::MAX);
    let due = Query::select()
        .column(C::Id)
        .from(role_job::Entity)
        .cond_where(due(now.clone()))
        .order_by(C::RunAt, Order::Asc)
        .order_by(C::Id, Order::Asc)
        .limit(u64::try_from(claim.limit).unwrap_or(u64::MAX))
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned();
    let mut update = role_job::Entity::update_many()
        .col_expr(C::LockedUntil, now.add(lease))
        .filter(C::Id.in_subquery(due))
        .into_query();
    update.returning_all();
    let mut rows = conn.jobs(conn.backend().build(&update)).await?;
    // RETURNING follows no order: the claim's is the queue's.
    rows.sort_by_key(|r| (r.run_at, r.id));
    rows.into_iter().map(job_from).collect()
}

impl SeaOrmRepo {
    /// "Now" for leases in stored microseconds, as an expression the claiming statement reads:
    /// on PostgreSQL the database's clock (`statement_timestamp()`, one instant for the whole
    /// statement, so replicas with skewed clocks agree), unless the caller's is asked for
    /// (`LeaseClock::Caller`); on SQLite the caller's `now`.
    pub(super) fn lease_clock(&self, now: Timestamp) -> Expr {
        match (self.backend(), self.lease_clock) {
            (DbBackend::Postgres, super::LeaseClock::Database) => {
                Expr::cust("(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000)::bigint")
            }
            _ => Expr::val(micros(now)),
        }
    }
}

/// A settlement's statements (see `JobQueue::settle` for the rules): its audit rows, the update
/// that applies it while the lease and generation still hold, and the update that puts the job
/// back to pending when only the generation moved (it was enqueued again while the worker ran).
pub(super) struct Settling {
    pub audit: Option<InsertStatement>,
    pub applied: UpdateStatement,
    pub requeued: UpdateStatement,
}

impl Settling {
    pub fn of(s: &Settle) -> Settling {
        let audit = (!s.audit.is_empty()).then(|| {
            let rows = s.audit.iter().map(audit_row);
            super::entities::audit_entry::Entity::insert_many(rows).into_query()
        });
        let claimed = &s.claimed;
        let generation = i64::try_from(claimed.generation).unwrap_or(i64::MAX);
        let mut update = role_job::Entity::update_many().col_expr(C::LockedUntil, Expr::null());
        update = match &s.settlement {
            Settlement::Done => update
                .col_expr(C::State, Expr::value(JobState::as_str(JobState::Done)))
                .col_expr(C::LastError, Expr::null()),
            Settlement::Retry { at, error } => update
                .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
                .col_expr(C::RunAt, Expr::value(micros(*at)))
                .col_expr(C::LastError, Expr::value(storable(error))),
            Settlement::Park { reason } => update
                .col_expr(C::State, Expr::value(JobState::as_str(JobState::Parked)))
                .col_expr(C::LastError, Expr::value(storable(reason))),
        };
        let applied = update.filter(lease_filter(claimed)).filter(C::Generation.eq(generation));
        let requeued = role_job::Entity::update_many()
            .col_expr(C::LockedUntil, Expr::null())
            .col_expr(C::State, Expr::value(JobState::as_str(JobState::Pending)))
            .col_expr(C::RunAt, Expr::value(micros(s.now)))
            .col_expr(C::Attempts, Expr::value(0))
            .filter(lease_filter(claimed));
        Settling { audit, applied: applied.into_query(), requeued: requeued.into_query() }
    }

    /// What the settlement did, from the rows its two updates changed.
    pub fn outcome(applied: u64, requeued: u64) -> Settled {
        match (applied, requeued) {
            (1, _) => Settled::Applied,
            (_, 1) => Settled::Requeued,
            _ => Settled::LeaseLost,
        }
    }
}

/// Settles `s.claimed` on `conn` without committing (see `JobQueue::settle` for the rules).
pub(super) async fn settle_on<E: Execute>(conn: &E, s: &Settle) -> Result<Settled, StoreError> {
    let Settling { audit, applied, requeued } = Settling::of(s);
    let backend = conn.backend();
    if let Some(audit) = audit {
        conn.execute(backend.build(&audit)).await?;
    }
    let applied = conn.execute(backend.build(&applied)).await?;
    // The requeue runs only when the settlement did not apply.
    let requeued = if applied == 1 { 0 } else { conn.execute(backend.build(&requeued)).await? };
    Ok(Settling::outcome(applied, requeued))
}

impl SeaOrmRepo {
    /// How many role jobs are in each state (one `GROUP BY`), for `/metrics`.
    pub async fn job_counts(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = role_job::Entity::find()
            .select_only()
            .column(C::State)
            .column_as(C::Id.count(), "n")
            .group_by(C::State)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(store_err)?;
        [JobState::Pending, JobState::Parked, JobState::Done]
            .into_iter()
            .map(|state| {
                let n = rows.iter().find(|(s, _)| s == JobState::as_str(state)).map_or(0, |(_, n)| *n);
                Ok((state, u64::try_from(n).unwrap_or_default()))
            })
            .collect()
    }
}
