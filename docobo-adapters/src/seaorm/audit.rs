//! The audit trail: every role change and manual action, with what caused it.

use async_trait::async_trait;
use docobo_core::domain::{AuditEntry, GuildId, UserId};
use docobo_core::ports::{AuditLog, StoreError};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::SeaOrmRepo;
use super::convert::{from_micros, guild_id, micros, parse, role_id, sf, store_err, user_id};
use super::entities::audit_entry;

fn audit_from(m: audit_entry::Model) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        guild: guild_id(m.guild_id)?,
        user: user_id(m.user_id)?,
        role: role_id(m.role_id)?,
        action: parse("audit action", &m.action)?,
        reason: m.reason,
        cause: m.cause,
        at: from_micros(m.at)?,
    })
}

pub(super) fn audit_row(a: &AuditEntry) -> audit_entry::ActiveModel {
    audit_entry::ActiveModel {
        id: Default::default(),
        guild_id: Set(sf(a.guild.get())),
        user_id: Set(sf(a.user.get())),
        role_id: Set(sf(a.role.get())),
        action: Set(a.action.as_str().to_owned()),
        reason: Set(a.reason.clone()),
        cause: Set(a.cause.clone()),
        at: Set(micros(a.at)),
    }
}

#[async_trait]
impl AuditLog for SeaOrmRepo {
    async fn audit_trail(&self, guild: GuildId, user: UserId) -> Result<Vec<AuditEntry>, StoreError> {
        use audit_entry::Column as C;
        let rows = audit_entry::Entity::find()
            .filter(C::GuildId.eq(sf(guild.get())))
            .filter(C::UserId.eq(sf(user.get())))
            .order_by_asc(C::Id)
            .all(&self.db)
            .await
            .map_err(store_err)?;
        rows.into_iter().map(audit_from).collect()
    }

    async fn recent_audit(&self, guild: GuildId, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        use audit_entry::Column as C;
        let rows = audit_entry::Entity::find()
            .filter(C::GuildId.eq(sf(guild.get())))
            .order_by_desc(C::Id)
            .limit(limit as u64)
            .all(&self.db)
            .await
            .map_err(store_err)?;
        rows.into_iter().map(audit_from).collect()
    }
}
