//! The notice outbox and members' notice preferences (migration m0007).

use async_trait::async_trait;
use docobo_core::domain::{
    GuildId, MemberNotices, Notice, NoticeId, NoticeState, PlannedNotice, Timestamp, UserId,
};
use docobo_core::ports::{NoticeRepo, NoticeSettlement, StoreError};
use sea_orm::sea_query::{
    Expr, ExprTrait, InsertStatement, LockBehavior, LockType, OnConflict, Order, Query,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QueryTrait, TransactionTrait,
};

use super::SeaOrmRepo;
use super::convert::{
    from_micros, guild_id, micros, opt_from_micros, parse, role_id, sf, storable, store_err, user_id,
};
use super::entities::{member_notice, notice};
use super::execute::Execute;

fn notice_from(m: notice::Model) -> Result<Notice, StoreError> {
    Ok(Notice {
        id: NoticeId(m.id),
        planned: PlannedNotice {
            guild: guild_id(m.guild_id)?,
            user: user_id(m.user_id)?,
            role: role_id(m.role_id)?,
            provider: parse("provider", &m.provider)?,
            external_ref: parse("external reference", &m.external_ref)?,
            kind: parse("notice kind", &m.kind)?,
            lead: m.lead_seconds.map(time::Duration::seconds),
            about: opt_from_micros(m.about)?,
            send_at: from_micros(m.send_at)?,
        },
        state: parse("notice state", &m.state)?,
        attempts: u32::try_from(m.attempts).unwrap_or_default(),
        note: m.note,
        locked_until: opt_from_micros(m.locked_until)?,
        settled_at: opt_from_micros(m.settled_at)?,
    })
}

/// Records the notices whose key is new, inside the caller's transaction; how many were.
pub(super) async fn plan<E: Execute>(
    conn: &E,
    notices: &[PlannedNotice],
    now: Timestamp,
) -> Result<usize, StoreError> {
    if notices.is_empty() {
        return Ok(0);
    }
    let added = conn.execute(conn.backend().build(&record(notices, now))).await?;
    Ok(usize::try_from(added).unwrap_or(usize::MAX))
}

/// Inserts each of `notices` (not empty) unless a notice with its key was planned before.
pub(super) fn record(notices: &[PlannedNotice], now: Timestamp) -> InsertStatement {
    let rows = notices.iter().map(|n| notice::ActiveModel {
        id: Default::default(),
        key: Set(n.key()),
        guild_id: Set(sf(n.guild.get())),
        user_id: Set(sf(n.user.get())),
        role_id: Set(sf(n.role.get())),
        provider: Set(n.provider.as_str().to_owned()),
        external_ref: Set(n.external_ref.as_str().to_owned()),
        kind: Set(n.kind.as_str().to_owned()),
        lead_seconds: Set(n.lead.map(|l| l.whole_seconds())),
        about: Set(n.about.map(micros)),
        send_at: Set(micros(n.send_at)),
        state: Set(NoticeState::Pending.as_str().to_owned()),
        attempts: Set(0),
        note: Set(None),
        locked_until: Set(None),
        created_at: Set(micros(now)),
        settled_at: Set(None),
    });
    let first = OnConflict::column(notice::Column::Key).do_nothing().to_owned();
    notice::Entity::insert_many(rows).on_conflict(first).into_query()
}

#[async_trait]
impl NoticeRepo for SeaOrmRepo {
    async fn plan_notices(&self, notices: &[PlannedNotice], now: Timestamp) -> Result<usize, StoreError> {
        let added = plan(&self.db, notices, now).await?;
        if added > 0 {
            self.notices.notify_one();
        }
        Ok(added)
    }

    async fn claim_notices(
        &self,
        now: Timestamp,
        lease: time::Duration,
        limit: usize,
    ) -> Result<Vec<Notice>, StoreError> {
        use notice::Column as C;
        // One statement, as role jobs are claimed (`queue.rs`): the update takes the rows the
        // subquery picks (locked, skipping rows another replica holds, on PostgreSQL) and
        // returns them. `send_at` is the caller's time (it planned it); the lease is judged on
        // the lease clock, as the role jobs'.
        let lease_now = self.lease_clock(now);
        let lease = i64::try_from(lease.whole_microseconds()).unwrap_or(i64::MAX);
        let due = Query::select()
            .column(C::Id)
            .from(notice::Entity)
            .and_where(C::State.eq(NoticeState::Pending.as_str()))
            .and_where(C::SendAt.lte(micros(now)))
            .cond_where(
                Condition::any()
                    .add(C::LockedUntil.is_null())
                    .add(Expr::col(C::LockedUntil).lte(lease_now.clone())),
            )
            .order_by(C::SendAt, Order::Asc)
            .order_by(C::Id, Order::Asc)
            .limit(u64::try_from(limit).unwrap_or(u64::MAX))
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        let mut rows = notice::Entity::update_many()
            .col_expr(C::LockedUntil, lease_now.add(lease))
            .filter(C::Id.in_subquery(due))
            .exec_with_returning(&self.db)
            .await
            .map_err(store_err)?;
        // RETURNING follows no order: the claim's is the outbox's.
        rows.sort_by_key(|r| (r.send_at, r.id));
        rows.into_iter().map(notice_from).collect()
    }

    async fn settle_notice(
        &self,
        claimed: &Notice,
        settlement: NoticeSettlement,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        use notice::Column as C;
        let txn = self.db.begin().await.map_err(store_err)?;
        let mut update = notice::Entity::update_many().col_expr(C::LockedUntil, Expr::value(None::<i64>));
        let unreachable = settlement == NoticeSettlement::Unreachable;
        update = match settlement {
            NoticeSettlement::Retry { at, error } => update
                .col_expr(C::SendAt, Expr::value(micros(at)))
                .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
                .col_expr(C::Note, Expr::value(storable(&error))),
            settled => {
                let (state, note) = match settled {
                    NoticeSettlement::Sent => (NoticeState::Sent, None),
                    NoticeSettlement::Skipped { why } => (NoticeState::Skipped, Some(why)),
                    NoticeSettlement::Failed { why } => (NoticeState::Failed, Some(why)),
                    _ => (NoticeState::Failed, Some(NoticeSettlement::UNREACHABLE.to_owned())),
                };
                update
                    .col_expr(C::State, Expr::value(state.as_str()))
                    .col_expr(C::Note, Expr::value(note.as_deref().map(storable)))
                    .col_expr(C::SettledAt, Expr::value(micros(now)))
            }
        };
        let updated = update
            .filter(C::Id.eq(claimed.id.0))
            .filter(C::State.eq(NoticeState::Pending.as_str()))
            .filter(C::LockedUntil.eq(claimed.locked_until.map(micros)))
            .exec(&txn)
            .await
            .map_err(store_err)?;
        if updated.rows_affected != 1 {
            return Ok(false);
        }
        if unreachable {
            let p = &claimed.planned;
            upsert_member(
                &txn,
                (p.guild, p.user),
                None,
                Some(micros(now)),
                [member_notice::Column::UnreachableAt],
            )
            .await?;
        }
        txn.commit().await.map_err(store_err)?;
        Ok(true)
    }

    async fn member_notice_log(&self, guild: GuildId, user: UserId) -> Result<Vec<Notice>, StoreError> {
        use notice::Column as C;
        let rows = notice::Entity::find()
            .filter(C::GuildId.eq(sf(guild.get())))
            .filter(C::UserId.eq(sf(user.get())))
            .order_by_asc(C::Id)
            .all(&self.db)
            .await
            .map_err(store_err)?;
        rows.into_iter().map(notice_from).collect()
    }

    async fn member_notices(&self, guild: GuildId, user: UserId) -> Result<MemberNotices, StoreError> {
        let row = member_notice::Entity::find_by_id((sf(guild.get()), sf(user.get())))
            .one(&self.db)
            .await
            .map_err(store_err)?;
        let Some(row) = row else { return Ok(MemberNotices::default()) };
        Ok(MemberNotices {
            muted_at: opt_from_micros(row.muted_at)?,
            unreachable_at: opt_from_micros(row.unreachable_at)?,
        })
    }

    async fn set_member_notices(
        &self,
        guild: GuildId,
        user: UserId,
        on: bool,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        use member_notice::Column as C;
        if on {
            upsert_member(&self.db, (guild, user), None, None, [C::MutedAt, C::UnreachableAt]).await
        } else {
            upsert_member(&self.db, (guild, user), Some(micros(now)), None, [C::MutedAt]).await
        }
    }

    async fn next_notice_due(&self) -> Result<Option<Timestamp>, StoreError> {
        use notice::Column as C;
        let row = notice::Entity::find()
            .filter(C::State.eq(NoticeState::Pending.as_str()))
            .order_by_asc(C::SendAt)
            .one(&self.db)
            .await
            .map_err(store_err)?;
        row.map(|r| from_micros(r.locked_until.map_or(r.send_at, |l| Ord::max(l, r.send_at)))).transpose()
    }
}

/// Writes a member's preferences row, replacing only `columns` when it exists.
async fn upsert_member<C: ConnectionTrait>(
    conn: &C,
    (guild, user): (GuildId, UserId),
    muted_at: Option<i64>,
    unreachable_at: Option<i64>,
    columns: impl IntoIterator<Item = member_notice::Column>,
) -> Result<(), StoreError> {
    use member_notice::Column as Col;
    let row = member_notice::ActiveModel {
        guild_id: Set(sf(guild.get())),
        user_id: Set(sf(user.get())),
        muted_at: Set(muted_at),
        unreachable_at: Set(unreachable_at),
    };
    member_notice::Entity::insert(row)
        .on_conflict(OnConflict::columns([Col::GuildId, Col::UserId]).update_columns(columns).to_owned())
        .exec(conn)
        .await
        .map_err(store_err)?;
    Ok(())
}
