//! Resumable `/setup` progress, one row per guild.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, small_integer, text};

#[derive(DeriveIden)]
enum SetupProgress {
    Table,
    GuildId,
    UserId,
    Step,
    Draft,
    UpdatedAt,
}

/// Resumable `/setup` progress, one row per guild.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0002_setup_progress"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SetupProgress::Table)
                .if_not_exists()
                .col(big_integer(SetupProgress::GuildId).primary_key())
                .col(big_integer(SetupProgress::UserId))
                .col(small_integer(SetupProgress::Step))
                .col(text(SetupProgress::Draft))
                .col(big_integer(SetupProgress::UpdatedAt))
                .take(),
        )
        .await
    }
}
