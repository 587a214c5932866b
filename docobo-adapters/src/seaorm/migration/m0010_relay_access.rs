//! For the dashboard: who may read a relay (`relays.access_role_id`, the paid role that opens the
//! target channel; null: no one reads it there), and the indexes its live feeds read by: the
//! signals changed in the last few seconds, and a guild's latest audit entries and deliveries.

use sea_orm_migration::prelude::*;

use super::index;

#[derive(DeriveIden)]
enum Relays {
    Table,
    AccessRoleId,
}

#[derive(DeriveIden)]
enum AuditEntries {
    Table,
    GuildId,
    Id,
}

#[derive(DeriveIden)]
enum WebhookEvents {
    Table,
    GuildId,
    Id,
}

#[derive(DeriveIden)]
enum Signals {
    Table,
    ChangedAt,
}

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0010_relay_access"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if !m.has_column("relays", "access_role_id").await? {
            m.alter_table(
                Table::alter()
                    .table(Relays::Table)
                    .add_column(ColumnDef::new(Relays::AccessRoleId).big_integer().null())
                    .take(),
            )
            .await?;
        }
        m.create_index(index("signals_changed", Signals::Table, [Signals::ChangedAt]).take()).await?;
        m.create_index(
            index("audit_guild", AuditEntries::Table, [AuditEntries::GuildId, AuditEntries::Id]).take(),
        )
        .await?;
        let deliveries = [WebhookEvents::GuildId, WebhookEvents::Id];
        m.create_index(index("webhook_events_guild", WebhookEvents::Table, deliveries).take()).await
    }
}
