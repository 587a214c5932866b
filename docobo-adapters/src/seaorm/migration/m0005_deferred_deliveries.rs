//! Deferred deliveries: `webhook_events.retry_at`, when the resolver next reads a stored hint
//! (a Sell.app webhook that carries only an order id) from the provider's API, indexed with the
//! outcome so a pass finds what is due without a scan.

use sea_orm_migration::prelude::*;

use super::index;

#[derive(DeriveIden)]
enum WebhookEvents {
    Table,
    Outcome,
    RetryAt,
}

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0005_deferred_deliveries"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if !m.has_column("webhook_events", "retry_at").await? {
            m.alter_table(
                Table::alter()
                    .table(WebhookEvents::Table)
                    .add_column(ColumnDef::new(WebhookEvents::RetryAt).big_integer().null())
                    .take(),
            )
            .await?;
        }
        m.create_index(
            index(
                "webhook_events_deferred",
                WebhookEvents::Table,
                [WebhookEvents::Outcome, WebhookEvents::RetryAt],
            )
            .take(),
        )
        .await
    }
}
