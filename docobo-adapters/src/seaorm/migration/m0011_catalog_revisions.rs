//! `catalog_revisions`: per guild, a number that every write to its catalog (the guild, its paid
//! roles, its provider credentials) raises in the same transaction. Ingest keeps each guild's
//! catalog in memory and reads only this number to know the copy is still exact. A guild with
//! no row has revision 0; rows are never deleted, so a number is never reused.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::big_integer;

#[derive(DeriveIden)]
enum CatalogRevisions {
    Table,
    GuildId,
    Revision,
}

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0011_catalog_revisions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(CatalogRevisions::Table)
                .if_not_exists()
                .col(big_integer(CatalogRevisions::GuildId).primary_key())
                .col(big_integer(CatalogRevisions::Revision))
                .take(),
        )
        .await
    }
}
