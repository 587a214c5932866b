//! A ledger commit, and a role job's settlement, as **one statement** on PostgreSQL: one round
//! trip and one implicit transaction instead of `BEGIN`, a statement per step and `COMMIT`.
//!
//! Every step of the commit ([`steps`]) becomes a data-modifying common table expression,
//! `s0 AS (INSERT … RETURNING 1)`, and the statement's own `SELECT` checks the steps' rules:
//! for the delivery's record and each entitlement update it divides by the number of rows the
//! step changed. PostgreSQL runs every data-modifying CTE to completion whether or not it is
//! read, and a statement that fails writes nothing, so a step that changed no row (the
//! delivery was recorded before, or the entitlement moved past the revision the plan read)
//! aborts the whole commit with `division_by_zero` (SQLSTATE 22012), and so does a catalog
//! that moved past the revision the commit names (`1 / <1 if unmoved, else 0>`); nothing else
//! in these statements divides. Which rule it was is then read, on that rare path only: the
//! catalog moved ([`StoreError::Conflict`], the caller plans again on the current catalog),
//! else the delivery's record exists (a duplicate, [`Recorded::Duplicate`]) or it does not (a
//! stale plan, [`StoreError::Conflict`], which the caller re-plans). A unique violation, a
//! concurrent insert of the same purchase, is a `Conflict` as on the statement-at-a-time path.
//!
//! All the CTEs see one snapshot and share one command, so two upserts of the same row in one
//! statement would fail ("cannot affect row a second time"); a commit that repeats a job, a
//! payment or a notice key, and a replay (whose record is an update), take the
//! statement-at-a-time path instead ([`fits`]).

use std::collections::BTreeSet;

use docobo_core::domain::WebhookEvent;
use docobo_core::ports::{Commit, Recorded, Settled, StoreError};
use sea_orm::sea_query::{
    Alias, CommonTableExpression, Expr, ExprTrait, Query, ReturningClause, SubQueryStatement, WithClause,
    WithQuery,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect,
    RuntimeErr,
};

use super::super::convert::{sf, store_err};
use super::super::entities::webhook_event;
use super::super::execute::Execute;
use super::super::queue::Settling;
use super::super::steps::{Built, Rule, Step, Wake, catalog_unmoved, steps};
use super::Settle;

/// PostgreSQL's SQLSTATE for a division by zero: here, a step that broke its rule.
const BROKE_A_RULE: &str = "22012";

/// Whether `commit` can be written as one statement (see the module docs).
pub(super) fn fits(commit: &Commit) -> bool {
    fn distinct<T: Ord>(items: impl ExactSizeIterator<Item = T>) -> bool {
        let len = items.len();
        items.collect::<BTreeSet<_>>().len() == len
    }
    !commit.replay
        && distinct(commit.jobs.iter())
        && distinct(commit.payments.iter().map(|p| (p.provider, p.guild, &p.reference)))
        && distinct(commit.notices.iter().map(|n| n.key()))
}

/// Writes `commit` durably in one statement; what it did, and whom to wake.
pub(super) async fn write(db: &DatabaseConnection, commit: &Commit) -> Result<(Recorded, Wake), StoreError> {
    let steps = steps(commit);
    if steps.is_empty() {
        return Ok((Recorded::Committed, Wake::after(commit, 0)));
    }
    let statement = db.get_database_backend().build(&statement(steps));
    match db.query_one_raw(statement).await {
        Ok(row) => {
            let notices: i64 = match row {
                Some(row) => row.try_get_by_index(0).map_err(store_err)?,
                None => 0,
            };
            Ok((Recorded::Committed, Wake::after(commit, u64::try_from(notices).unwrap_or_default())))
        }
        Err(e) if broke_a_rule(&e) => match &commit.event {
            _ if moved(db, commit).await? => Err(StoreError::Conflict),
            Some(e) if recorded(db, e).await? => Ok((Recorded::Duplicate, Wake::default())),
            _ => Err(StoreError::Conflict),
        },
        Err(e) => Err(store_err(e)),
    }
}

/// `WITH s0 AS (… RETURNING 1), … SELECT <new notices>, 1 / <rows s0 changed>, …`.
fn statement(steps: Vec<Step>) -> WithQuery {
    let changed = |i: usize| format!("(SELECT count(*) FROM s{i})");
    let mut with = WithClause::new();
    let mut notices = vec!["0::bigint".to_owned()];
    let mut checks = Vec::new();
    for (i, step) in steps.into_iter().enumerate() {
        let query: SubQueryStatement = match step.built {
            Built::Insert(mut q) => {
                q.returning(one());
                q.into()
            }
            Built::Update(mut q) => {
                q.returning(one());
                q.into()
            }
            Built::Check(holds) => {
                checks.push(Expr::value(1).div(holds));
                continue;
            }
        };
        with.cte(cte(&format!("s{i}"), query));
        match step.rule {
            Rule::Record | Rule::Revision => checks.push(Expr::cust(format!("1 / {}", changed(i)))),
            Rule::Notice => notices.push(changed(i)),
            Rule::Catalog | Rule::Any => {}
        }
    }
    let mut select = Query::select();
    select.expr(Expr::cust(notices.join(" + ")));
    select.exprs(checks);
    with.query(select)
}

/// `RETURNING 1`: each CTE's rows are only counted.
fn one() -> ReturningClause {
    Query::returning().expr(Expr::cust("1"))
}

fn cte(name: &str, query: impl Into<SubQueryStatement>) -> CommonTableExpression {
    CommonTableExpression::new().table_name(Alias::new(name)).query(query).to_owned()
}

/// Settles a role job in one statement with the rules of the statement-at-a-time path
/// (`queue::settle_on`): the audit rows; the update that applies the settlement under the lease
/// and generation; and, only if that changed nothing, the update that puts a job enqueued again
/// meanwhile back to pending. Two updates of one row in one statement would be unpredictable,
/// so the second names the first's rows (`NOT EXISTS`) rather than running after it.
pub(super) async fn settle(db: &DatabaseConnection, s: &Settle) -> Result<Settled, StoreError> {
    let Settling { audit, mut applied, mut requeued } = Settling::of(s);
    let mut with = WithClause::new();
    if let Some(mut audit) = audit {
        audit.returning(one());
        with.cte(cte("audit", audit));
    }
    applied.returning(one());
    with.cte(cte("applied", applied));
    requeued.and_where(Expr::cust("NOT EXISTS (SELECT 1 FROM applied)")).returning(one());
    with.cte(cte("requeued", requeued));
    let mut select = Query::select();
    select
        .expr(Expr::cust("(SELECT count(*) FROM applied)"))
        .expr(Expr::cust("(SELECT count(*) FROM requeued)"));
    let statement = db.get_database_backend().build(&with.query(select));
    let row = db
        .query_one_raw(statement)
        .await
        .map_err(store_err)?
        .ok_or_else(|| StoreError::Corrupt("a settlement returned no row".to_owned()))?;
    let count =
        |i| row.try_get_by_index::<i64>(i).map(|n| u64::try_from(n).unwrap_or_default()).map_err(store_err);
    Ok(Settling::outcome(count(0)?, count(1)?))
}

/// Whether the division by zero came from these statements' rule checks.
fn broke_a_rule(e: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = e else {
        return false;
    };
    match &**e {
        sea_orm::sqlx::Error::Database(e) => e.code().as_deref() == Some(BROKE_A_RULE),
        _ => false,
    }
}

/// Whether the catalog `commit` was planned on has moved since (never, when it names none).
async fn moved(db: &DatabaseConnection, commit: &Commit) -> Result<bool, StoreError> {
    match catalog_unmoved(commit) {
        Some(holds) => Ok(db.number(Built::Check(holds).statement(db.get_database_backend())).await? != 1),
        None => Ok(false),
    }
}

/// Whether `event`'s delivery id is recorded (by another delivery of it).
async fn recorded(db: &DatabaseConnection, event: &WebhookEvent) -> Result<bool, StoreError> {
    use webhook_event::Column as C;
    let found = webhook_event::Entity::find()
        .select_only()
        .column(C::Id)
        .filter(C::Provider.eq(event.provider.as_str()))
        .filter(C::GuildId.eq(sf(event.guild.get())))
        .filter(C::ExternalId.eq(event.external_id.as_str()))
        .into_tuple::<i64>()
        .one(db)
        .await
        .map_err(store_err)?;
    Ok(found.is_some())
}

#[cfg(test)]
mod tests {
    use docobo_core::domain::{
        DeliveryId, EntitlementId, EventOutcome, GuildId, ProviderName, RoleId, RoleJobKey, Term, UserId,
        WebhookEvent,
    };
    use docobo_core::machine::Standing;
    use docobo_core::ports::EntitlementWrite;
    use sea_orm::DbBackend;
    use time::OffsetDateTime;

    use super::*;

    fn delivery() -> Commit {
        let at = OffsetDateTime::UNIX_EPOCH;
        let guild = GuildId::new(1).expect("id");
        let event = WebhookEvent {
            id: DeliveryId(0),
            provider: ProviderName::POLAR,
            guild,
            external_id: "evt_1".parse().expect("id"),
            body: b"{}".to_vec(),
            received_at: at,
            outcome: EventOutcome::Processed,
            attempts: 1,
            last_error: None,
            retry_at: None,
        };
        let key = RoleJobKey { guild, user: UserId::new(2).expect("id"), role: RoleId::new(3).expect("id") };
        let update = EntitlementWrite::Update {
            id: EntitlementId(7),
            expected_revision: 4,
            standing: Standing::new(Term::Lifetime),
            deadline: None,
        };
        Commit { event: Some(event), writes: vec![update], jobs: vec![key], ..Commit::new(at) }
    }

    #[test]
    fn each_step_is_a_cte_and_the_record_and_revision_divide_by_the_rows_they_changed() {
        let sql = DbBackend::Postgres.build(&statement(steps(&delivery()))).sql;
        assert!(sql.starts_with(r#"WITH "s0" AS (INSERT INTO "webhook_events""#), "{sql}");
        assert!(sql.contains(r#""s1" AS (UPDATE "entitlements""#), "{sql}");
        assert!(sql.contains(r#""s2" AS (INSERT INTO "role_jobs""#), "{sql}");
        assert_eq!(sql.matches("RETURNING 1)").count(), 3, "{sql}");
        let checks = sql.rsplit_once(") SELECT ").map(|(_, select)| select).expect("a final select");
        assert_eq!(
            checks, "0::bigint, 1 / (SELECT count(*) FROM s0), 1 / (SELECT count(*) FROM s1)",
            "the job upsert has no rule to check"
        );
    }

    #[test]
    fn a_replay_or_a_repeated_key_is_not_written_as_one_statement() {
        assert!(fits(&delivery()));
        let replay = Commit { replay: true, ..delivery() };
        assert!(!fits(&replay));
        let mut twice = delivery();
        twice.jobs.push(twice.jobs[0]);
        assert!(!fits(&twice));
    }
}
