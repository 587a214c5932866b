//! Member notices: `guilds.notices` (the guild's notice settings, JSON), the `notices` outbox
//! (one row per notice key, so a notice is planned once) and `member_notices` (`/notify off`,
//! and members Discord will not DM).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_integer_null, big_pk_auto, integer, string, string_null};

use super::index;

#[derive(DeriveIden)]
enum Guilds {
    Table,
    Notices,
}

#[derive(DeriveIden)]
enum Notices {
    Table,
    Id,
    Key,
    GuildId,
    UserId,
    RoleId,
    Provider,
    ExternalRef,
    Kind,
    LeadSeconds,
    About,
    SendAt,
    State,
    Attempts,
    Note,
    LockedUntil,
    CreatedAt,
    SettledAt,
}

#[derive(DeriveIden)]
enum MemberNotices {
    Table,
    GuildId,
    UserId,
    MutedAt,
    UnreachableAt,
}

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0007_notices"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if !m.has_column("guilds", "notices").await? {
            // Null: the default settings.
            m.alter_table(
                Table::alter()
                    .table(Guilds::Table)
                    .add_column(ColumnDef::new(Guilds::Notices).text().null())
                    .take(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table(Notices::Table)
                .if_not_exists()
                .col(big_pk_auto(Notices::Id))
                .col(string(Notices::Key))
                .col(big_integer(Notices::GuildId))
                .col(big_integer(Notices::UserId))
                .col(big_integer(Notices::RoleId))
                .col(string(Notices::Provider))
                .col(string(Notices::ExternalRef))
                .col(string(Notices::Kind))
                .col(big_integer_null(Notices::LeadSeconds))
                .col(big_integer_null(Notices::About))
                .col(big_integer(Notices::SendAt))
                .col(string(Notices::State))
                .col(integer(Notices::Attempts))
                .col(string_null(Notices::Note))
                .col(big_integer_null(Notices::LockedUntil))
                .col(big_integer(Notices::CreatedAt))
                .col(big_integer_null(Notices::SettledAt))
                .take(),
        )
        .await?;
        m.create_index(index("notices_key", Notices::Table, [Notices::Key]).unique().take()).await?;
        m.create_index(index("notices_due", Notices::Table, [Notices::State, Notices::SendAt]).take())
            .await?;
        m.create_index(index("notices_member", Notices::Table, [Notices::GuildId, Notices::UserId]).take())
            .await?;
        m.create_table(
            Table::create()
                .table(MemberNotices::Table)
                .if_not_exists()
                .col(big_integer(MemberNotices::GuildId))
                .col(big_integer(MemberNotices::UserId))
                .col(big_integer_null(MemberNotices::MutedAt))
                .col(big_integer_null(MemberNotices::UnreachableAt))
                .primary_key(Index::create().col(MemberNotices::GuildId).col(MemberNotices::UserId))
                .take(),
        )
        .await
    }
}
