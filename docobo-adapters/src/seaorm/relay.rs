//! Relays, signals and mirror jobs (migration m0008).
//!
//! The claim, settle and "signal changed" rules are the core's ([`MirrorJob::claimable`],
//! [`MirrorJob::want`], [`MirrorSettlement::apply`]); this file reads rows, applies them and
//! writes the rows back in one transaction. A job's row is locked (`FOR UPDATE` on PostgreSQL;
//! SQLite's single connection runs each transaction alone) between the read and the write.
//! Claims lock the pending rows without `SKIP LOCKED`: two claimers wait for each other rather
//! than one handing out a later signal while the other holds an earlier one.

use async_trait::async_trait;
use docobo_core::domain::{
    Author, ChannelId, JobState, MessageId, MirrorJob, NewRelay, Relay, RelayId, Signal, SignalId,
    SignalWrite, SourceMessage, Timestamp,
};
use docobo_core::ports::{MirrorSettlement, RelayRepo, StoreError};
use sea_orm::sea_query::{Expr, ExprTrait, LockType, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use super::SeaOrmRepo;
use super::convert::{
    from_micros, guild_id, micros, opt_from_micros, parse, role_id, sf, storable, store_err,
};
use super::entities::{mirror, relay, signal};

/// Pending jobs read per claim: the claim rule needs each relay's earliest ones.
const PENDING_WINDOW: u64 = 2_000;

fn channel_id(raw: i64) -> Result<ChannelId, StoreError> {
    u64::try_from(raw).ok().and_then(|v| ChannelId::new(v).ok()).ok_or_else(|| corrupt(raw))
}

fn message_id(raw: i64) -> Result<MessageId, StoreError> {
    u64::try_from(raw).ok().and_then(|v| MessageId::new(v).ok()).ok_or_else(|| corrupt(raw))
}

fn corrupt(raw: i64) -> StoreError {
    StoreError::Corrupt(format!("stored id {raw} is not a snowflake"))
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

fn from_json<T: serde::de::DeserializeOwned>(column: &str, raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn relay_from(m: relay::Model) -> Result<Relay, StoreError> {
    Ok(Relay {
        id: RelayId(m.id),
        source_guild: guild_id(m.source_guild_id)?,
        source_channel: channel_id(m.source_channel_id)?,
        target_guild: guild_id(m.target_guild_id)?,
        target_channel: channel_id(m.target_channel_id)?,
        via: parse("relay via", &m.via)?,
        name: m.name,
        ping_role: m.ping_role_id.map(role_id).transpose()?,
        access_role: m.access_role_id.map(role_id).transpose()?,
        created_at: from_micros(m.created_at)?,
    })
}

fn signal_from(m: signal::Model) -> Result<Signal, StoreError> {
    Ok(Signal {
        id: SignalId(m.id),
        message: SourceMessage {
            guild: guild_id(m.guild_id)?,
            channel: channel_id(m.channel_id)?,
            id: message_id(m.message_id)?,
            author: Author { name: m.author_name, avatar_url: m.author_avatar },
            content: m.content,
            embeds: from_json("signal embeds", &m.embeds)?,
            attachments: from_json("signal attachments", &m.attachments)?,
            edited_at: opt_from_micros(m.edited_at)?,
        },
        version: m.version,
        deleted: m.deleted,
        changed_at: from_micros(m.changed_at)?,
    })
}

fn job_from(m: mirror::Model) -> Result<MirrorJob, StoreError> {
    Ok(MirrorJob {
        signal: SignalId(m.signal_id),
        relay: RelayId(m.relay_id),
        position: message_id(m.position)?,
        state: parse("mirror state", &m.state)?,
        wanted: m.wanted,
        mirrored: m.mirrored,
        posted: from_json("mirror posted", &m.posted)?,
        attempts: u32::try_from(m.attempts).unwrap_or_default(),
        run_at: from_micros(m.run_at)?,
        locked_until: opt_from_micros(m.locked_until)?,
        tried_at: opt_from_micros(m.tried_at)?,
        tried: from_json("mirror tried", &m.tried)?,
        last_error: m.last_error,
    })
}

fn job_model(j: &MirrorJob) -> mirror::Model {
    mirror::Model {
        signal_id: j.signal.0,
        relay_id: j.relay.0,
        position: sf(j.position.get()),
        state: j.state.as_str().to_owned(),
        wanted: j.wanted,
        mirrored: j.mirrored,
        posted: json(&j.posted),
        attempts: i32::try_from(j.attempts).unwrap_or(i32::MAX),
        run_at: micros(j.run_at),
        locked_until: j.locked_until.map(micros),
        tried_at: j.tried_at.map(micros),
        tried: json(&j.tried),
        last_error: j.last_error.as_deref().map(storable),
    }
}

/// Every column of `job` written back.
async fn save<C: ConnectionTrait>(conn: &C, job: &MirrorJob) -> Result<(), StoreError> {
    let active = job_model(job).into_active_model().reset_all();
    mirror::Entity::update(active).exec(conn).await.map_err(store_err).map(drop)
}

fn signal_model(message: &SourceMessage, deleted: bool, now: Timestamp) -> signal::ActiveModel {
    signal::ActiveModel {
        id: Default::default(),
        guild_id: Set(sf(message.guild.get())),
        channel_id: Set(sf(message.channel.get())),
        message_id: Set(sf(message.id.get())),
        author_name: Set(storable(&message.author.name)),
        author_avatar: Set(message.author.avatar_url.clone()),
        content: Set(storable(&message.content)),
        embeds: Set(storable(&json(&message.embeds))),
        attachments: Set(json(&message.attachments)),
        edited_at: Set(message.edited_at.map(micros)),
        version: Set(1),
        deleted: Set(deleted),
        created_at: Set(micros(now)),
        changed_at: Set(micros(now)),
    }
}

impl SeaOrmRepo {
    /// The job of (`signal`, `relay`) locked for this transaction, if it is still leased as
    /// `claimed`.
    async fn leased<C: ConnectionTrait>(
        &self,
        conn: &C,
        claimed: &MirrorJob,
    ) -> Result<Option<MirrorJob>, StoreError> {
        let row = mirror::Entity::find_by_id((claimed.signal.0, claimed.relay.0))
            .lock(LockType::Update)
            .one(conn)
            .await
            .map_err(store_err)?;
        Ok(row.map(job_from).transpose()?.filter(|j| j.leased_as(claimed)))
    }

    /// Runs `change` on the job, in one transaction, if it is still leased as `claimed`; the
    /// job as written.
    async fn change_leased(
        &self,
        claimed: &MirrorJob,
        change: impl FnOnce(&mut MirrorJob) + Send,
    ) -> Result<Option<MirrorJob>, StoreError> {
        let txn = self.db.begin().await.map_err(store_err)?;
        let Some(mut job) = self.leased(&txn, claimed).await? else { return Ok(None) };
        change(&mut job);
        save(&txn, &job).await?;
        txn.commit().await.map_err(store_err)?;
        Ok(Some(job))
    }

    /// Pending jobs by (relay, position), as the claim rule wants them.
    async fn pending_mirrors<C: ConnectionTrait>(
        &self,
        conn: &C,
        lock: bool,
    ) -> Result<Vec<MirrorJob>, StoreError> {
        use mirror::Column as C;
        let mut query = mirror::Entity::find()
            .filter(C::State.eq(JobState::Pending.as_str()))
            .order_by_asc(C::RelayId)
            .order_by_asc(C::Position)
            .limit(PENDING_WINDOW);
        if lock {
            query = query.lock(LockType::Update);
        }
        query.all(conn).await.map_err(store_err)?.into_iter().map(job_from).collect()
    }
}

#[async_trait]
impl RelayRepo for SeaOrmRepo {
    async fn add_relay(&self, new: &NewRelay, now: Timestamp) -> Result<Relay, StoreError> {
        let row = relay::ActiveModel {
            id: Default::default(),
            source_guild_id: Set(sf(new.source_guild.get())),
            source_channel_id: Set(sf(new.source_channel.get())),
            target_guild_id: Set(sf(new.target_guild.get())),
            target_channel_id: Set(sf(new.target_channel.get())),
            via: Set(new.via.as_str().to_owned()),
            name: Set(new.name.as_deref().map(storable)),
            ping_role_id: Set(new.ping_role.map(|r| sf(r.get()))),
            access_role_id: Set(new.access_role.map(|r| sf(r.get()))),
            created_at: Set(micros(now)),
        };
        let inserted = relay::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([relay::Column::SourceChannelId, relay::Column::TargetChannelId])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_with_returning(&self.db)
            .await;
        match inserted {
            Ok(model) => relay_from(model),
            Err(sea_orm::DbErr::RecordNotInserted | sea_orm::DbErr::RecordNotFound(_)) => {
                Err(StoreError::AlreadyExists(format!(
                    "a relay from channel {} to channel {}",
                    new.source_channel, new.target_channel
                )))
            }
            Err(e) => Err(store_err(e)),
        }
    }

    async fn relays(&self) -> Result<Vec<Relay>, StoreError> {
        let rows =
            relay::Entity::find().order_by_asc(relay::Column::Id).all(&self.db).await.map_err(store_err)?;
        rows.into_iter().map(relay_from).collect()
    }

    async fn remove_relay(&self, id: RelayId) -> Result<bool, StoreError> {
        let txn = self.db.begin().await.map_err(store_err)?;
        mirror::Entity::delete_many()
            .filter(mirror::Column::RelayId.eq(id.0))
            .exec(&txn)
            .await
            .map_err(store_err)?;
        let gone = relay::Entity::delete_by_id(id.0).exec(&txn).await.map_err(store_err)?.rows_affected > 0;
        txn.commit().await.map_err(store_err)?;
        Ok(gone)
    }

    async fn signal(&self, channel: ChannelId, id: MessageId) -> Result<Option<Signal>, StoreError> {
        let row = signal::Entity::find()
            .filter(signal::Column::ChannelId.eq(sf(channel.get())))
            .filter(signal::Column::MessageId.eq(sf(id.get())))
            .one(&self.db)
            .await
            .map_err(store_err)?;
        row.map(signal_from).transpose()
    }

    async fn signal_by_id(&self, id: SignalId) -> Result<Option<Signal>, StoreError> {
        let row = signal::Entity::find_by_id(id.0).one(&self.db).await.map_err(store_err)?;
        row.map(signal_from).transpose()
    }

    async fn recent_signals(&self, channels: &[ChannelId], limit: usize) -> Result<Vec<Signal>, StoreError> {
        if channels.is_empty() {
            return Ok(Vec::new());
        }
        let rows = signal::Entity::find()
            .filter(signal::Column::ChannelId.is_in(channels.iter().map(|c| sf(c.get()))))
            .filter(signal::Column::Deleted.eq(false))
            .order_by_desc(signal::Column::MessageId)
            .limit(limit as u64)
            .all(&self.db)
            .await
            .map_err(store_err)?;
        rows.into_iter().map(signal_from).collect()
    }

    async fn signals_changed_since(&self, since: Timestamp, limit: usize) -> Result<Vec<Signal>, StoreError> {
        let rows = signal::Entity::find()
            .filter(signal::Column::ChangedAt.gte(micros(since)))
            .order_by_asc(signal::Column::ChangedAt)
            .order_by_asc(signal::Column::Id)
            .limit(limit as u64)
            .all(&self.db)
            .await
            .map_err(store_err)?;
        rows.into_iter().map(signal_from).collect()
    }

    async fn last_signal(&self, channel: ChannelId) -> Result<Option<MessageId>, StoreError> {
        let row = signal::Entity::find()
            .filter(signal::Column::ChannelId.eq(sf(channel.get())))
            .order_by_desc(signal::Column::MessageId)
            .one(&self.db)
            .await
            .map_err(store_err)?;
        row.map(|r| message_id(r.message_id)).transpose()
    }

    async fn record_signal(&self, write: &SignalWrite, now: Timestamp) -> Result<(), StoreError> {
        let txn = self.db.begin().await.map_err(store_err)?;
        match write {
            SignalWrite::Insert { message, deleted } => {
                let inserted = signal::Entity::insert(signal_model(message, *deleted, now))
                    .on_conflict_do_nothing_on([signal::Column::ChannelId, signal::Column::MessageId])
                    .exec(&txn)
                    .await
                    .map_err(store_err)?;
                let sea_orm::TryInsertResult::Inserted(inserted) = inserted else {
                    return Err(StoreError::Conflict);
                };
                let id = SignalId(inserted.last_insert_id);
                if !deleted {
                    let relays = relay::Entity::find()
                        .filter(relay::Column::SourceChannelId.eq(sf(message.channel.get())))
                        .all(&txn)
                        .await
                        .map_err(store_err)?;
                    let jobs: Vec<mirror::ActiveModel> = relays
                        .iter()
                        .map(|r| {
                            job_model(&MirrorJob::new(id, RelayId(r.id), message.id, now)).into_active_model()
                        })
                        .collect();
                    if !jobs.is_empty() {
                        mirror::Entity::insert_many(jobs).exec(&txn).await.map_err(store_err)?;
                    }
                }
            }
            SignalWrite::Update { id, expected_version, message, deleted } => {
                use signal::Column as C;
                let updated = signal::Entity::update_many()
                    .col_expr(C::Version, Expr::value(expected_version + 1))
                    .col_expr(C::Deleted, Expr::value(*deleted))
                    .col_expr(C::AuthorName, Expr::value(storable(&message.author.name)))
                    .col_expr(C::AuthorAvatar, Expr::value(message.author.avatar_url.clone()))
                    .col_expr(C::Content, Expr::value(storable(&message.content)))
                    .col_expr(C::Embeds, Expr::value(storable(&json(&message.embeds))))
                    .col_expr(C::Attachments, Expr::value(json(&message.attachments)))
                    .col_expr(C::EditedAt, Expr::value(message.edited_at.map(micros)))
                    .col_expr(C::ChangedAt, Expr::value(micros(now)))
                    .filter(C::Id.eq(id.0))
                    .filter(C::Version.eq(*expected_version))
                    .exec(&txn)
                    .await
                    .map_err(store_err)?;
                if updated.rows_affected == 0 {
                    return Err(StoreError::Conflict);
                }
                let jobs = mirror::Entity::find()
                    .filter(mirror::Column::SignalId.eq(id.0))
                    .lock(LockType::Update)
                    .all(&txn)
                    .await
                    .map_err(store_err)?;
                for row in jobs {
                    let mut job = job_from(row)?;
                    job.want(expected_version + 1, now);
                    save(&txn, &job).await?;
                }
            }
        }
        txn.commit().await.map_err(store_err)?;
        self.mirrors.notify_one();
        Ok(())
    }

    async fn claim_mirrors(
        &self,
        now: Timestamp,
        lease: time::Duration,
        limit: usize,
    ) -> Result<Vec<MirrorJob>, StoreError> {
        let txn = self.db.begin().await.map_err(store_err)?;
        let pending = self.pending_mirrors(&txn, true).await?;
        let picked = MirrorJob::claimable(&pending, now, limit);
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        let until = now + lease;
        let mut which = Condition::any();
        for &i in &picked {
            which = which.add(
                mirror::Column::SignalId
                    .eq(pending[i].signal.0)
                    .and(mirror::Column::RelayId.eq(pending[i].relay.0)),
            );
        }
        mirror::Entity::update_many()
            .col_expr(mirror::Column::LockedUntil, Expr::value(micros(until)))
            .filter(which)
            .exec(&txn)
            .await
            .map_err(store_err)?;
        txn.commit().await.map_err(store_err)?;
        // Stored to the microsecond: hand out what a later settle will compare against.
        let until = from_micros(micros(until))?;
        Ok(picked
            .into_iter()
            .map(|i| MirrorJob { locked_until: Some(until), ..pending[i].clone() })
            .collect())
    }

    async fn note_mirror_attempt(
        &self,
        claimed: &MirrorJob,
        digests: &[String],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        Ok(self.change_leased(claimed, |job| job.note_attempt(digests, now)).await?.is_some())
    }

    async fn settle_mirror(
        &self,
        claimed: &MirrorJob,
        settlement: MirrorSettlement,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let Some(job) = self.change_leased(claimed, |job| settlement.apply(job, now)).await? else {
            return Ok(false);
        };
        if job.state == JobState::Pending {
            self.mirrors.notify_one();
        }
        Ok(true)
    }

    async fn mirror_jobs(&self, state: JobState, limit: usize) -> Result<Vec<MirrorJob>, StoreError> {
        use mirror::Column as C;
        let rows = mirror::Entity::find()
            .filter(C::State.eq(state.as_str()))
            .order_by_asc(C::RunAt)
            .order_by_asc(C::SignalId)
            .order_by_asc(C::RelayId)
            .limit(u64::try_from(limit).unwrap_or(u64::MAX))
            .all(&self.db)
            .await
            .map_err(store_err)?;
        rows.into_iter().map(job_from).collect()
    }

    async fn mirrors_of(&self, signal: SignalId) -> Result<Vec<MirrorJob>, StoreError> {
        let rows = mirror::Entity::find()
            .filter(mirror::Column::SignalId.eq(signal.0))
            .order_by_asc(mirror::Column::RelayId)
            .all(&self.db)
            .await
            .map_err(store_err)?;
        rows.into_iter().map(job_from).collect()
    }

    async fn retry_mirror(
        &self,
        signal: SignalId,
        relay: RelayId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        use mirror::Column as C;
        let updated = mirror::Entity::update_many()
            .col_expr(C::State, Expr::value(JobState::Pending.as_str()))
            .col_expr(C::Attempts, Expr::value(0))
            .col_expr(C::RunAt, Expr::value(micros(now)))
            .filter(C::SignalId.eq(signal.0))
            .filter(C::RelayId.eq(relay.0))
            .filter(C::State.eq(JobState::Parked.as_str()))
            .exec(&self.db)
            .await
            .map_err(store_err)?;
        if updated.rows_affected > 0 {
            self.mirrors.notify_one();
        }
        Ok(updated.rows_affected > 0)
    }

    async fn next_mirror_due(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(MirrorJob::next_due(&self.pending_mirrors(&self.db, false).await?))
    }
}
