//! The signal relay: `relays` (source channel → target channel, unique per pair), `signals`
//! (each source message as last seen, a delete as a tombstone; unique per channel and message)
//! and `mirrors` (one row per signal and relay: the job that converges the target and the map of
//! the target messages it posted).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, integer, string, string_null, text,
};

use super::index;

#[derive(DeriveIden)]
enum Relays {
    Table,
    Id,
    SourceGuildId,
    SourceChannelId,
    TargetGuildId,
    TargetChannelId,
    Via,
    Name,
    PingRoleId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Signals {
    Table,
    Id,
    GuildId,
    ChannelId,
    MessageId,
    AuthorName,
    AuthorAvatar,
    Content,
    Embeds,
    Attachments,
    EditedAt,
    Version,
    Deleted,
    CreatedAt,
    ChangedAt,
}

#[derive(DeriveIden)]
enum Mirrors {
    Table,
    SignalId,
    RelayId,
    Position,
    State,
    Wanted,
    Mirrored,
    Posted,
    Attempts,
    RunAt,
    LockedUntil,
    TriedAt,
    Tried,
    LastError,
}

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0008_relay"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Relays::Table)
                .if_not_exists()
                .col(big_pk_auto(Relays::Id))
                .col(big_integer(Relays::SourceGuildId))
                .col(big_integer(Relays::SourceChannelId))
                .col(big_integer(Relays::TargetGuildId))
                .col(big_integer(Relays::TargetChannelId))
                .col(string(Relays::Via))
                .col(string_null(Relays::Name))
                .col(big_integer_null(Relays::PingRoleId))
                .col(big_integer(Relays::CreatedAt))
                .take(),
        )
        .await?;
        m.create_index(
            index("relays_pair", Relays::Table, [Relays::SourceChannelId, Relays::TargetChannelId])
                .unique()
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Signals::Table)
                .if_not_exists()
                .col(big_pk_auto(Signals::Id))
                .col(big_integer(Signals::GuildId))
                .col(big_integer(Signals::ChannelId))
                .col(big_integer(Signals::MessageId))
                .col(string(Signals::AuthorName))
                .col(string_null(Signals::AuthorAvatar))
                .col(text(Signals::Content))
                .col(text(Signals::Embeds))
                .col(text(Signals::Attachments))
                .col(big_integer_null(Signals::EditedAt))
                .col(big_integer(Signals::Version))
                .col(boolean(Signals::Deleted))
                .col(big_integer(Signals::CreatedAt))
                .col(big_integer(Signals::ChangedAt))
                .take(),
        )
        .await?;
        m.create_index(
            index("signals_message", Signals::Table, [Signals::ChannelId, Signals::MessageId])
                .unique()
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Mirrors::Table)
                .if_not_exists()
                .col(big_integer(Mirrors::SignalId))
                .col(big_integer(Mirrors::RelayId))
                .col(big_integer(Mirrors::Position))
                .col(string(Mirrors::State))
                .col(big_integer(Mirrors::Wanted))
                .col(big_integer(Mirrors::Mirrored))
                .col(text(Mirrors::Posted))
                .col(integer(Mirrors::Attempts))
                .col(big_integer(Mirrors::RunAt))
                .col(big_integer_null(Mirrors::LockedUntil))
                .col(big_integer_null(Mirrors::TriedAt))
                .col(text(Mirrors::Tried))
                .col(string_null(Mirrors::LastError))
                .primary_key(Index::create().col(Mirrors::SignalId).col(Mirrors::RelayId))
                .take(),
        )
        .await?;
        m.create_index(
            index("mirrors_pending", Mirrors::Table, [Mirrors::State, Mirrors::RelayId, Mirrors::Position])
                .take(),
        )
        .await
    }
}
