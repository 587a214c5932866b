//! Dashboard sessions: one row per logged-in browser, keyed by the SHA-256 of its cookie token,
//! so that a session can be revoked and a leaked table logs no one in.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string};

use super::index;

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    Name,
    Csrf,
    CreatedAt,
    ExpiresAt,
}

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0009_sessions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .if_not_exists()
                .col(string(Sessions::Id).primary_key())
                .col(big_integer(Sessions::UserId))
                .col(string(Sessions::Name))
                .col(string(Sessions::Csrf))
                .col(big_integer(Sessions::CreatedAt))
                .col(big_integer(Sessions::ExpiresAt))
                .take(),
        )
        .await?;
        m.create_index(index("sessions_user", Sessions::Table, [Sessions::UserId]).take()).await
    }
}
