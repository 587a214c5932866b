//! Entitlements, and the event log with its atomic commit (the commit's statements and their
//! rules are in `steps.rs`; the group committer that runs them in `writer.rs`).

use async_trait::async_trait;
use docobo_core::domain::{
    DeliveryId, Entitlement, EntitlementId, EventId, EventOutcome, ExternalRef, GuildId, ProviderName,
    RoleJobKey, Timestamp, UserId, WebhookEvent,
};
use docobo_core::ports::{Commit, EntitlementRepo, GuildRevision, Ledger, Recorded, StoreError};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::SeaOrmRepo;
use super::convert::{
    from_micros, guild_id, micros, opt_from_micros, parse, role_id, sf, storable, store_err, user_id,
};
use super::entities::{entitlement, payment, webhook_event};
use super::writer::Write;

fn entitlement_from(m: entitlement::Model) -> Result<Entitlement, StoreError> {
    Ok(Entitlement {
        id: EntitlementId(m.id),
        guild: guild_id(m.guild_id)?,
        user: user_id(m.user_id)?,
        role: role_id(m.role_id)?,
        provider: parse("provider", &m.provider)?,
        external_ref: parse("external reference", &m.external_ref)?,
        standing: serde_json::from_str(&m.standing)
            .map_err(|e| StoreError::Corrupt(format!("standing of entitlement {}: {e}", m.id)))?,
        deadline: opt_from_micros(m.deadline)?,
        revision: u64::try_from(m.revision).unwrap_or_default(),
        created_at: from_micros(m.created_at)?,
        updated_at: from_micros(m.updated_at)?,
    })
}

fn event_from(m: webhook_event::Model) -> Result<WebhookEvent, StoreError> {
    let outcome = parse("event outcome", &m.outcome)?;
    Ok(WebhookEvent {
        id: DeliveryId(m.id),
        provider: parse("provider", &m.provider)?,
        guild: guild_id(m.guild_id)?,
        external_id: parse("event id", &m.external_id)?,
        body: m.body,
        received_at: from_micros(m.received_at)?,
        outcome,
        attempts: u32::try_from(m.attempts).unwrap_or_default(),
        last_error: m.last_error,
        retry_at: m.retry_at.map(from_micros).transpose()?,
    })
}

#[async_trait]
impl Ledger for SeaOrmRepo {
    /// Handed to the group committer (`seaorm/writer.rs`): answered once the batch that holds it
    /// is durable.
    async fn commit(&self, commit: Commit) -> Result<Recorded, StoreError> {
        self.write(Write::Commit(commit)).await?.recorded()
    }

    async fn webhook_event(
        &self,
        provider: ProviderName,
        guild: GuildId,
        id: &EventId,
    ) -> Result<Option<WebhookEvent>, StoreError> {
        use webhook_event::Column as C;
        let row = webhook_event::Entity::find()
            .filter(C::Provider.eq(provider.as_str()))
            .filter(C::GuildId.eq(sf(guild.get())))
            .filter(C::ExternalId.eq(id.as_str()))
            .one(&self.db)
            .await
            .map_err(store_err)?;
        row.map(event_from).transpose()
    }

    async fn webhook_event_by_id(&self, id: DeliveryId) -> Result<Option<WebhookEvent>, StoreError> {
        let row = webhook_event::Entity::find_by_id(id.0).one(&self.db).await.map_err(store_err)?;
        row.map(event_from).transpose()
    }

    async fn events(
        &self,
        outcome: Option<EventOutcome>,
        limit: usize,
    ) -> Result<Vec<WebhookEvent>, StoreError> {
        use webhook_event::Column as C;
        self.list_events(outcome, limit, |q| q.order_by_asc(C::ReceivedAt).order_by_asc(C::Id)).await
    }

    async fn recent_events(
        &self,
        outcome: Option<EventOutcome>,
        before: Option<DeliveryId>,
        limit: usize,
    ) -> Result<Vec<WebhookEvent>, StoreError> {
        use webhook_event::Column as C;
        self.list_events(outcome, limit, |q| match before {
            Some(before) => q.filter(C::Id.lt(before.0)).order_by_desc(C::Id),
            None => q.order_by_desc(C::Id),
        })
        .await
    }

    async fn guild_deliveries(&self, guild: GuildId, limit: usize) -> Result<Vec<WebhookEvent>, StoreError> {
        use sea_orm::{FromQueryResult, QuerySelect};
        use webhook_event::Column as C;
        #[derive(FromQueryResult)]
        struct Row {
            id: i64,
            provider: String,
            guild_id: i64,
            external_id: String,
            received_at: i64,
            outcome: String,
            attempts: i32,
            last_error: Option<String>,
            retry_at: Option<i64>,
        }
        let rows = webhook_event::Entity::find()
            .select_only()
            .columns([
                C::Id,
                C::Provider,
                C::GuildId,
                C::ExternalId,
                C::ReceivedAt,
                C::Outcome,
                C::Attempts,
                C::LastError,
                C::RetryAt,
            ])
            .filter(C::GuildId.eq(sf(guild.get())))
            .order_by_desc(C::Id)
            .limit(u64::try_from(limit).unwrap_or(u64::MAX))
            .into_model::<Row>()
            .all(&self.db)
            .await
            .map_err(store_err)?;
        rows.into_iter()
            .map(|r| {
                event_from(webhook_event::Model {
                    id: r.id,
                    provider: r.provider,
                    guild_id: r.guild_id,
                    external_id: r.external_id,
                    body: Vec::new(),
                    received_at: r.received_at,
                    outcome: r.outcome,
                    attempts: r.attempts,
                    last_error: r.last_error,
                    retry_at: r.retry_at,
                })
            })
            .collect()
    }

    async fn due_deferred(&self, now: Timestamp, limit: usize) -> Result<Vec<WebhookEvent>, StoreError> {
        use webhook_event::Column as C;
        self.list_events(Some(EventOutcome::Deferred), limit, |q| {
            q.filter(C::RetryAt.lte(micros(now))).order_by_asc(C::RetryAt).order_by_asc(C::Id)
        })
        .await
    }

    async fn defer_again(&self, id: DeliveryId, retry_at: Timestamp, why: &str) -> Result<bool, StoreError> {
        use webhook_event::Column as C;
        let updated = webhook_event::Entity::update_many()
            .col_expr(C::RetryAt, Expr::value(micros(retry_at)))
            .col_expr(C::LastError, Expr::value(storable(why)))
            .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
            .filter(C::Id.eq(id.0))
            .filter(C::Outcome.eq(EventOutcome::as_str(EventOutcome::Deferred)))
            .exec(&self.db)
            .await
            .map_err(store_err)?;
        Ok(updated.rows_affected == 1)
    }
}

impl SeaOrmRepo {
    /// Deliveries with `outcome` (every one without it), in the order and range `shape` gives,
    /// at most `limit`.
    async fn list_events(
        &self,
        outcome: Option<EventOutcome>,
        limit: usize,
        shape: impl FnOnce(sea_orm::Select<webhook_event::Entity>) -> sea_orm::Select<webhook_event::Entity>,
    ) -> Result<Vec<WebhookEvent>, StoreError> {
        let mut query = webhook_event::Entity::find();
        if let Some(o) = outcome {
            query = query.filter(webhook_event::Column::Outcome.eq(EventOutcome::as_str(o)));
        }
        let rows = shape(query)
            .limit(u64::try_from(limit).unwrap_or(u64::MAX))
            .all(&self.db)
            .await
            .map_err(store_err)?;
        rows.into_iter().map(event_from).collect()
    }

    /// Empties the stored bodies of deliveries received before `cutoff` that were processed or
    /// ignored (their effects are in the ledger; the row stays, so a redelivery is still a
    /// duplicate). Failed deliveries keep their bodies for replay. Returns how many were pruned.
    pub async fn prune_event_bodies(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        use sea_orm::sea_query::Expr;
        use webhook_event::Column as C;
        let done =
            [EventOutcome::as_str(EventOutcome::Processed), EventOutcome::as_str(EventOutcome::Ignored)];
        let pruned = webhook_event::Entity::update_many()
            .col_expr(C::Body, Expr::value(Vec::<u8>::new()))
            .filter(C::ReceivedAt.lt(micros(cutoff)))
            .filter(C::Outcome.is_in(done))
            .filter(Expr::cust("length(body) > 0"))
            .exec(&self.db)
            .await
            .map_err(store_err)?;
        Ok(pruned.rows_affected)
    }

    async fn entitlements_where(
        &self,
        filter: impl FnOnce(sea_orm::Select<entitlement::Entity>) -> sea_orm::Select<entitlement::Entity>,
    ) -> Result<Vec<Entitlement>, StoreError> {
        let rows = filter(entitlement::Entity::find()).all(&self.read).await.map_err(store_err)?;
        rows.into_iter().map(entitlement_from).collect()
    }
}

#[async_trait]
impl EntitlementRepo for SeaOrmRepo {
    async fn entitlement(
        &self,
        provider: ProviderName,
        guild: GuildId,
        external_ref: &ExternalRef,
    ) -> Result<Option<Entitlement>, StoreError> {
        use entitlement::Column as C;
        let select = entitlement::Entity::find()
            .filter(C::Provider.eq(provider.as_str()))
            .filter(C::GuildId.eq(sf(guild.get())))
            .filter(C::ExternalRef.eq(external_ref.as_str()));
        self.hot(select, super::reads::entitlement)
            .await?
            .into_iter()
            .next()
            .map(entitlement_from)
            .transpose()
    }

    async fn entitlement_by_id(&self, id: EntitlementId) -> Result<Option<Entitlement>, StoreError> {
        use entitlement::Column as C;
        Ok(self.entitlements_where(|q| q.filter(C::Id.eq(id.0))).await?.into_iter().next())
    }

    async fn entitlements_for(&self, key: RoleJobKey) -> Result<Vec<Entitlement>, StoreError> {
        use entitlement::Column as C;
        self.entitlements_where(|q| {
            q.filter(C::GuildId.eq(sf(key.guild.get())))
                .filter(C::UserId.eq(sf(key.user.get())))
                .filter(C::RoleId.eq(sf(key.role.get())))
                .order_by_asc(C::Id)
        })
        .await
    }

    async fn member_entitlements(
        &self,
        guild: GuildId,
        user: UserId,
    ) -> Result<Vec<Entitlement>, StoreError> {
        use entitlement::Column as C;
        self.entitlements_where(|q| {
            q.filter(C::GuildId.eq(sf(guild.get()))).filter(C::UserId.eq(sf(user.get()))).order_by_asc(C::Id)
        })
        .await
    }

    async fn guild_entitlements(&self, guild: GuildId) -> Result<Vec<Entitlement>, StoreError> {
        use entitlement::Column as C;
        self.entitlements_where(|q| q.filter(C::GuildId.eq(sf(guild.get()))).order_by_asc(C::Id)).await
    }

    async fn guild_revision(&self, guild: GuildId) -> Result<GuildRevision, StoreError> {
        use sea_orm::QuerySelect;
        use sea_orm::sea_query::{Alias, Func, SimpleExpr};
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back.
        let sum = |col: SimpleExpr| {
            SimpleExpr::from(Func::cast_as(
                Func::coalesce([Func::sum(col).into(), Expr::value(0)]),
                Alias::new("BIGINT"),
            ))
        };
        let (entitlements, revisions): (i64, i64) = entitlement::Entity::find()
            .select_only()
            .column_as(Expr::col(entitlement::Column::Id).count(), "n")
            .column_as(sum(Expr::col(entitlement::Column::Revision)), "revisions")
            .filter(entitlement::Column::GuildId.eq(sf(guild.get())))
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(store_err)?
            .unwrap_or_default();
        let (payments, refunded): (i64, i64) = payment::Entity::find()
            .select_only()
            .column_as(Expr::col(payment::Column::Id).count(), "n")
            .column_as(sum(Expr::col(payment::Column::RefundedMinor)), "refunded")
            .filter(payment::Column::GuildId.eq(sf(guild.get())))
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(store_err)?
            .unwrap_or_default();
        Ok(GuildRevision { entitlements, revisions, payments, refunded })
    }

    async fn due_entitlements(&self, now: Timestamp, limit: usize) -> Result<Vec<Entitlement>, StoreError> {
        use entitlement::Column as C;
        self.entitlements_where(|q| {
            q.filter(C::Deadline.lte(micros(now)))
                .order_by_asc(C::Deadline)
                .order_by_asc(C::Id)
                .limit(u64::try_from(limit).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn deadlines_after(
        &self,
        (after, id): (Timestamp, EntitlementId),
        until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Entitlement>, StoreError> {
        use entitlement::Column as C;
        let after = micros(after);
        let later = Condition::any()
            .add(C::Deadline.gt(after))
            .add(Condition::all().add(C::Deadline.eq(after)).add(C::Id.gt(id.0)));
        self.entitlements_where(|q| {
            q.filter(later)
                .filter(C::Deadline.lte(micros(until)))
                .order_by_asc(C::Deadline)
                .order_by_asc(C::Id)
                .limit(u64::try_from(limit).unwrap_or(u64::MAX))
        })
        .await
    }
}
