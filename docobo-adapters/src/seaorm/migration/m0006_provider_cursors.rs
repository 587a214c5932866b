//! `provider_cursors`: where Docobo stopped reading a provider's event journal (Sell.app's
//! 30-day journal), per guild, so the reconciler resumes instead of re-reading it all.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string, text};

#[derive(DeriveIden)]
enum ProviderCursors {
    Table,
    GuildId,
    Provider,
    Cursor,
    UpdatedAt,
}

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0006_provider_cursors"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ProviderCursors::Table)
                .if_not_exists()
                .col(big_integer(ProviderCursors::GuildId))
                .col(string(ProviderCursors::Provider))
                .col(text(ProviderCursors::Cursor))
                .col(big_integer(ProviderCursors::UpdatedAt))
                .primary_key(Index::create().col(ProviderCursors::GuildId).col(ProviderCursors::Provider))
                .take(),
        )
        .await
    }
}
