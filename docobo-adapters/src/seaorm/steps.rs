//! A ledger commit as the statements that write it, each with the rule it must keep: the
//! catalog must still be at the revision the commit was planned on (when it names one), the
//! delivery's record must be new, an entitlement update must find the revision it was planned
//! on. The statements are built once, with SeaORM's query builders, and run either one by one
//! inside a transaction ([`apply`]: SQLite's group commit; on PostgreSQL, replays and commits
//! that repeat an upsert's key) or, on PostgreSQL, as one statement (`seaorm/writer/as_one.rs`),
//! which keeps the same rules.

use docobo_core::domain::{EventOutcome, WebhookEvent};
use docobo_core::machine::Standing;
use docobo_core::ports::{Commit, EntitlementWrite, Recorded, StoreError};
use sea_orm::sea_query::{
    Expr, ExprTrait, Func, InsertStatement, OnConflict, Query, SimpleExpr, UpdateStatement,
};
use sea_orm::{ActiveValue::Set, ColumnTrait, DbBackend, EntityTrait, QueryFilter, QueryTrait, Statement};

use super::convert::{micros, sf, storable};
use super::entities::{audit_entry, catalog_revision, entitlement, webhook_event};
use super::execute::Execute;

/// One built statement of a commit.
#[derive(Debug, Clone)]
pub(super) enum Built {
    Insert(InsertStatement),
    Update(UpdateStatement),
    /// A condition that writes nothing: 1 when it holds, 0 when not.
    Check(SimpleExpr),
}

impl Built {
    pub fn statement(&self, backend: DbBackend) -> Statement {
        match self {
            Built::Insert(q) => backend.build(q),
            Built::Update(q) => backend.build(q),
            Built::Check(e) => backend.build(Query::select().expr(e.clone())),
        }
    }
}

/// What a step must change for its commit to stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rule {
    /// The catalog the commit was planned on is still current (a [`Built::Check`]): if not, the
    /// delivery may have been verified under replaced credentials; [`StoreError::Conflict`],
    /// and the commit writes nothing.
    Catalog,
    /// The delivery's record: no row changed means it was recorded before, and the commit is a
    /// duplicate that writes nothing.
    Record,
    /// An update planned on a revision: no row changed means the plan was stale
    /// ([`StoreError::Conflict`]), and the commit writes nothing.
    Revision,
    /// A notice, counted when new (its worker is woken).
    Notice,
    /// Anything else (an insert whose unique violation is a [`StoreError::Conflict`], or an
    /// upsert).
    Any,
}

/// One statement of a commit and its rule.
#[derive(Debug, Clone)]
pub(super) struct Step {
    pub built: Built,
    pub rule: Rule,
}

fn step(built: Built, rule: Rule) -> Step {
    Step { built, rule }
}

/// The statements that write `commit`, in order: the catalog's check, then the record, so a
/// duplicate stops before anything else runs.
pub(super) fn steps(commit: &Commit) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(check) = catalog_unmoved(commit) {
        steps.push(step(Built::Check(check), Rule::Catalog));
    }
    if let Some(e) = &commit.event {
        steps.push(step(record(e, commit.replay), Rule::Record));
    }
    entitlement_writes(commit, &mut steps);
    for key in &commit.jobs {
        steps.push(step(Built::Insert(super::queue::job_upsert(*key, &commit.cause, commit.at)), Rule::Any));
    }
    for p in &commit.payments {
        steps.push(step(Built::Insert(super::payments::upsert(p)), Rule::Any));
    }
    if !commit.audit.is_empty() {
        let rows = commit.audit.iter().map(super::audit::audit_row);
        steps.push(step(Built::Insert(audit_entry::Entity::insert_many(rows).into_query()), Rule::Any));
    }
    if !commit.notices.is_empty() {
        steps.push(step(Built::Insert(super::notices::record(&commit.notices, commit.at)), Rule::Notice));
    }
    steps
}

/// 1 when the guild's catalog is still at the revision `commit` was planned on (0 before the
/// guild's first catalog write), else 0; `None` when the commit names no revision.
pub(super) fn catalog_unmoved(commit: &Commit) -> Option<SimpleExpr> {
    use catalog_revision::Column as C;
    let (guild, revision) = commit.catalog?;
    let current = Query::select()
        .column(C::Revision)
        .from(catalog_revision::Entity)
        .and_where(C::GuildId.eq(sf(guild.get())))
        .to_owned();
    let current = Func::coalesce([SimpleExpr::SubQuery(None, Box::new(current.into())), 0.into()]);
    let planned = i64::try_from(revision).unwrap_or(i64::MAX);
    Some(Expr::case(Expr::expr(current).eq(planned), 1).finally(0).into())
}

/// The delivery's record: a new row, or (a replay) the stored failure or deferral updated, only
/// once: the update is conditional.
fn record(e: &WebhookEvent, replay: bool) -> Built {
    use webhook_event::Column as C;
    if replay {
        let replayable = [EventOutcome::Failed, EventOutcome::Deferred].map(EventOutcome::as_str);
        let update = webhook_event::Entity::update_many()
            .col_expr(C::Outcome, Expr::value(EventOutcome::as_str(e.outcome)))
            .col_expr(C::LastError, Expr::value(e.last_error.as_deref().map(storable)))
            .col_expr(C::RetryAt, Expr::value(e.retry_at.map(micros)))
            .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
            .filter(C::Id.eq(e.id.0))
            .filter(C::Outcome.is_in(replayable));
        return Built::Update(update.into_query());
    }
    let row = webhook_event::ActiveModel {
        id: Default::default(),
        provider: Set(e.provider.as_str().to_owned()),
        guild_id: Set(sf(e.guild.get())),
        external_id: Set(e.external_id.as_str().to_owned()),
        body: Set(e.body.clone()),
        received_at: Set(micros(e.received_at)),
        outcome: Set(EventOutcome::as_str(e.outcome).to_owned()),
        attempts: Set(i32::try_from(e.attempts).unwrap_or(i32::MAX)),
        last_error: Set(e.last_error.as_deref().map(storable)),
        retry_at: Set(e.retry_at.map(micros)),
    };
    let first = OnConflict::columns([C::Provider, C::GuildId, C::ExternalId]).do_nothing().to_owned();
    Built::Insert(webhook_event::Entity::insert(row).on_conflict(first).into_query())
}

fn standing_json(s: &Standing) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| unreachable!("a standing always serializes"))
}

/// The entitlement rows `commit` inserts, as one multi-row statement (ids follow the commit's
/// order), then one conditional update per entitlement it changes.
fn entitlement_writes(commit: &Commit, steps: &mut Vec<Step>) {
    use entitlement::Column as C;
    let at = commit.at;
    let mut rows = Vec::new();
    let mut updates = Vec::new();
    for w in &commit.writes {
        match w {
            EntitlementWrite::Insert { guild, user, role, provider, external_ref, standing, deadline } => {
                rows.push(entitlement::ActiveModel {
                    id: Default::default(),
                    guild_id: Set(sf(guild.get())),
                    user_id: Set(sf(user.get())),
                    role_id: Set(sf(role.get())),
                    provider: Set(provider.as_str().to_owned()),
                    external_ref: Set(external_ref.as_str().to_owned()),
                    status: Set(standing.status().as_str().to_owned()),
                    standing: Set(standing_json(standing)),
                    deadline: Set(deadline.map(micros)),
                    revision: Set(1),
                    created_at: Set(micros(at)),
                    updated_at: Set(micros(at)),
                });
            }
            EntitlementWrite::Update { id, expected_revision, standing, deadline } => {
                let update = entitlement::Entity::update_many()
                    .col_expr(C::Status, Expr::value(standing.status().as_str()))
                    .col_expr(C::Standing, Expr::value(standing_json(standing)))
                    .col_expr(C::Deadline, Expr::value(deadline.map(micros)))
                    .col_expr(C::Revision, Expr::col(C::Revision).add(1))
                    .col_expr(C::UpdatedAt, Expr::value(micros(at)))
                    .filter(C::Id.eq(id.0))
                    .filter(C::Revision.eq(i64::try_from(*expected_revision).unwrap_or(i64::MAX)));
                updates.push(step(Built::Update(update.into_query()), Rule::Revision));
            }
        }
    }
    if !rows.is_empty() {
        // A unique violation on (provider, guild, external_ref) is a concurrent insert: Conflict.
        steps.push(step(Built::Insert(entitlement::Entity::insert_many(rows).into_query()), Rule::Any));
    }
    steps.extend(updates);
}

/// What one applied commit asks for once it is durable: the workers to wake.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Wake {
    pub jobs: bool,
    pub notices: bool,
    pub deferred: bool,
}

impl Wake {
    /// Whom `commit` wakes once durable, `notices` of its notices having been new.
    pub fn after(commit: &Commit, notices: u64) -> Wake {
        Wake {
            jobs: !commit.jobs.is_empty(),
            notices: notices > 0,
            deferred: commit.event.as_ref().is_some_and(|e| e.outcome == EventOutcome::Deferred),
        }
    }

    pub fn or(self, other: Wake) -> Wake {
        Wake {
            jobs: self.jobs || other.jobs,
            notices: self.notices || other.notices,
            deferred: self.deferred || other.deferred,
        }
    }
}

/// Writes `commit` on `conn` (a transaction, a savepoint of one, or the SQLite writer's lent
/// handle inside its transaction) a statement at a time, without committing:
/// [`super::writer`] commits, alone or with the others of its batch.
pub(super) async fn apply<E: Execute>(conn: &E, commit: &Commit) -> Result<(Recorded, Wake), StoreError> {
    let mut notices = 0;
    for step in steps(commit) {
        let statement = step.built.statement(conn.backend());
        if let Built::Check(_) = step.built {
            if conn.number(statement).await? != 1 {
                return Err(StoreError::Conflict);
            }
            continue;
        }
        let changed = conn.execute(statement).await?;
        match step.rule {
            Rule::Record if changed != 1 => return Ok((Recorded::Duplicate, Wake::default())),
            Rule::Revision if changed != 1 => return Err(StoreError::Conflict),
            Rule::Notice => notices += changed,
            _ => {}
        }
    }
    Ok((Recorded::Committed, Wake::after(commit, notices)))
}
