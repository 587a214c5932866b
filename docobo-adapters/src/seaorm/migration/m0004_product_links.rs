//! Paid roles link to providers generically: a `links` column holding a JSON array of
//! `{"provider", "product"?, "variant"?}` replaces one column per provider (`polar_product`,
//! `sepay`), so a provider added later (Sell.app, an embedder's own) needs no new column.
//!
//! The old columns stay (SQLite cannot drop them through sea-query) and are still written as a
//! mirror of the Polar and SePay links, so a binary from before this migration reads the same
//! catalog after a rollback. Existing rows are copied into `links` here.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;
use serde_json::{Value, json};

#[derive(DeriveIden)]
enum PaidRoles {
    Table,
    GuildId,
    RoleId,
    PolarProduct,
    Sepay,
    Links,
}

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0004_product_links"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if !m.has_column("paid_roles", "links").await? {
            m.alter_table(
                Table::alter()
                    .table(PaidRoles::Table)
                    .add_column(ColumnDef::new(PaidRoles::Links).text().not_null().default("[]"))
                    .take(),
            )
            .await?;
        }
        let db = m.get_connection();
        let select = Query::select()
            .columns([PaidRoles::GuildId, PaidRoles::RoleId, PaidRoles::PolarProduct, PaidRoles::Sepay])
            .from(PaidRoles::Table)
            .take();
        for row in db.query_all(&select).await? {
            let guild: i64 = row.try_get("", "guild_id")?;
            let role: i64 = row.try_get("", "role_id")?;
            let polar: Option<String> = row.try_get("", "polar_product")?;
            let sepay: bool = row.try_get("", "sepay")?;
            let mut links: Vec<Value> = Vec::new();
            if let Some(product) = polar {
                links.push(json!({ "provider": "polar", "product": product }));
            }
            if sepay {
                links.push(json!({ "provider": "sepay" }));
            }
            let update = Query::update()
                .table(PaidRoles::Table)
                .value(PaidRoles::Links, Value::Array(links).to_string())
                .and_where(Expr::col(PaidRoles::GuildId).eq(guild))
                .and_where(Expr::col(PaidRoles::RoleId).eq(role))
                .take();
            m.exec_stmt(update).await?;
        }
        Ok(())
    }
}
