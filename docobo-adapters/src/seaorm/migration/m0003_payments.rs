//! Money received (orders, transfers), for revenue figures and exports.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_integer_null, big_pk_auto, string};

use super::index;

#[derive(DeriveIden)]
enum Payments {
    Table,
    Id,
    Provider,
    GuildId,
    Reference,
    UserId,
    RoleId,
    AmountMinor,
    RefundedMinor,
    Currency,
    PaidAt,
}

/// Money received (orders, transfers), for revenue figures and exports; unique per provider
/// reference, so a redelivered or re-sent order is one payment.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_payments"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Payments::Table)
                .if_not_exists()
                .col(big_pk_auto(Payments::Id))
                .col(string(Payments::Provider))
                .col(big_integer(Payments::GuildId))
                .col(string(Payments::Reference))
                .col(big_integer_null(Payments::UserId))
                .col(big_integer_null(Payments::RoleId))
                .col(big_integer(Payments::AmountMinor))
                .col(big_integer(Payments::RefundedMinor))
                .col(string(Payments::Currency))
                .col(big_integer(Payments::PaidAt))
                .take(),
        )
        .await?;
        m.create_index(
            index(
                "payments_reference",
                Payments::Table,
                [Payments::Provider, Payments::GuildId, Payments::Reference],
            )
            .unique()
            .take(),
        )
        .await?;
        m.create_index(
            index("payments_guild_paid_at", Payments::Table, [Payments::GuildId, Payments::PaidAt]).take(),
        )
        .await
    }
}
