//! The first schema: guilds, paid roles, credentials, checkouts, entitlements, the event log,
//! the role-job queue and the audit trail.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, blob, boolean, integer, string, string_null, text, text_null,
};

use super::index;

#[derive(DeriveIden)]
enum Guilds {
    Table,
    Id,
    Name,
    GraceSeconds,
}

#[derive(DeriveIden)]
enum PaidRoles {
    Table,
    GuildId,
    RoleId,
    Name,
    PriceMinor,
    Currency,
    Term,
    PolarProduct,
    Sepay,
}

#[derive(DeriveIden)]
enum ProviderCredentials {
    Table,
    GuildId,
    Provider,
    Sealed,
}

#[derive(DeriveIden)]
enum Checkouts {
    Table,
    GuildId,
    Reference,
    UserId,
    RoleId,
    Provider,
    ExpectedMinor,
    Currency,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Entitlements {
    Table,
    Id,
    GuildId,
    UserId,
    RoleId,
    Provider,
    ExternalRef,
    Status,
    Standing,
    Deadline,
    Revision,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookEvents {
    Table,
    Id,
    Provider,
    GuildId,
    ExternalId,
    Body,
    ReceivedAt,
    Outcome,
    Attempts,
    LastError,
}

#[derive(DeriveIden)]
enum RoleJobs {
    Table,
    Id,
    GuildId,
    UserId,
    RoleId,
    State,
    Attempts,
    Generation,
    RunAt,
    LockedUntil,
    LastError,
    Cause,
}

#[derive(DeriveIden)]
enum AuditEntries {
    Table,
    Id,
    GuildId,
    UserId,
    RoleId,
    Action,
    Reason,
    Cause,
    At,
}

/// The first schema: guilds, paid roles, credentials, checkouts, entitlements, the event log,
/// the role-job queue and the audit trail.
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Guilds::Table)
                .if_not_exists()
                .col(big_integer(Guilds::Id).primary_key())
                .col(string(Guilds::Name))
                .col(big_integer(Guilds::GraceSeconds))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PaidRoles::Table)
                .if_not_exists()
                .col(big_integer(PaidRoles::GuildId))
                .col(big_integer(PaidRoles::RoleId))
                .col(string(PaidRoles::Name))
                .col(big_integer(PaidRoles::PriceMinor))
                .col(string(PaidRoles::Currency))
                .col(string(PaidRoles::Term))
                .col(string_null(PaidRoles::PolarProduct))
                .col(boolean(PaidRoles::Sepay))
                .primary_key(Index::create().col(PaidRoles::GuildId).col(PaidRoles::RoleId))
                .take(),
        )
        .await?;
        m.create_index(index(
            "paid_roles_product",
            PaidRoles::Table,
            [PaidRoles::GuildId, PaidRoles::PolarProduct],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(ProviderCredentials::Table)
                .if_not_exists()
                .col(big_integer(ProviderCredentials::GuildId))
                .col(string(ProviderCredentials::Provider))
                .col(blob(ProviderCredentials::Sealed))
                .primary_key(
                    Index::create().col(ProviderCredentials::GuildId).col(ProviderCredentials::Provider),
                )
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Checkouts::Table)
                .if_not_exists()
                .col(big_integer(Checkouts::GuildId))
                .col(string(Checkouts::Reference))
                .col(big_integer(Checkouts::UserId))
                .col(big_integer(Checkouts::RoleId))
                .col(string(Checkouts::Provider))
                .col(big_integer(Checkouts::ExpectedMinor))
                .col(string(Checkouts::Currency))
                .col(big_integer(Checkouts::CreatedAt))
                .col(big_integer(Checkouts::ExpiresAt))
                .primary_key(Index::create().col(Checkouts::GuildId).col(Checkouts::Reference))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Entitlements::Table)
                .if_not_exists()
                .col(big_pk_auto(Entitlements::Id))
                .col(big_integer(Entitlements::GuildId))
                .col(big_integer(Entitlements::UserId))
                .col(big_integer(Entitlements::RoleId))
                .col(string(Entitlements::Provider))
                .col(string(Entitlements::ExternalRef))
                .col(string(Entitlements::Status))
                .col(text(Entitlements::Standing))
                .col(big_integer_null(Entitlements::Deadline))
                .col(big_integer(Entitlements::Revision))
                .col(big_integer(Entitlements::CreatedAt))
                .col(big_integer(Entitlements::UpdatedAt))
                .take(),
        )
        .await?;
        m.create_index(
            index(
                "entitlements_ref",
                Entitlements::Table,
                [Entitlements::Provider, Entitlements::GuildId, Entitlements::ExternalRef],
            )
            .unique()
            .take(),
        )
        .await?;
        m.create_index(index(
            "entitlements_member_role",
            Entitlements::Table,
            [Entitlements::GuildId, Entitlements::UserId, Entitlements::RoleId],
        ))
        .await?;
        m.create_index(index("entitlements_deadline", Entitlements::Table, [Entitlements::Deadline])).await?;
        m.create_table(
            Table::create()
                .table(WebhookEvents::Table)
                .if_not_exists()
                .col(big_pk_auto(WebhookEvents::Id))
                .col(string(WebhookEvents::Provider))
                .col(big_integer(WebhookEvents::GuildId))
                .col(string(WebhookEvents::ExternalId))
                .col(blob(WebhookEvents::Body))
                .col(big_integer(WebhookEvents::ReceivedAt))
                .col(string(WebhookEvents::Outcome))
                .col(integer(WebhookEvents::Attempts))
                .col(text_null(WebhookEvents::LastError))
                .take(),
        )
        .await?;
        m.create_index(
            index(
                "webhook_events_dedup",
                WebhookEvents::Table,
                [WebhookEvents::Provider, WebhookEvents::GuildId, WebhookEvents::ExternalId],
            )
            .unique()
            .take(),
        )
        .await?;
        m.create_index(index(
            "webhook_events_outcome",
            WebhookEvents::Table,
            [WebhookEvents::Outcome, WebhookEvents::ReceivedAt],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(RoleJobs::Table)
                .if_not_exists()
                .col(big_pk_auto(RoleJobs::Id))
                .col(big_integer(RoleJobs::GuildId))
                .col(big_integer(RoleJobs::UserId))
                .col(big_integer(RoleJobs::RoleId))
                .col(string(RoleJobs::State))
                .col(integer(RoleJobs::Attempts))
                .col(big_integer(RoleJobs::Generation))
                .col(big_integer(RoleJobs::RunAt))
                .col(big_integer_null(RoleJobs::LockedUntil))
                .col(text_null(RoleJobs::LastError))
                .col(text_null(RoleJobs::Cause))
                .take(),
        )
        .await?;
        m.create_index(
            index("role_jobs_key", RoleJobs::Table, [RoleJobs::GuildId, RoleJobs::UserId, RoleJobs::RoleId])
                .unique()
                .take(),
        )
        .await?;
        m.create_index(index("role_jobs_due", RoleJobs::Table, [RoleJobs::State, RoleJobs::RunAt])).await?;
        m.create_table(
            Table::create()
                .table(AuditEntries::Table)
                .if_not_exists()
                .col(big_pk_auto(AuditEntries::Id))
                .col(big_integer(AuditEntries::GuildId))
                .col(big_integer(AuditEntries::UserId))
                .col(big_integer(AuditEntries::RoleId))
                .col(string(AuditEntries::Action))
                .col(text(AuditEntries::Reason))
                .col(text_null(AuditEntries::Cause))
                .col(big_integer(AuditEntries::At))
                .take(),
        )
        .await?;
        m.create_index(index(
            "audit_member",
            AuditEntries::Table,
            [AuditEntries::GuildId, AuditEntries::UserId],
        ))
        .await?;
        Ok(())
    }
}
