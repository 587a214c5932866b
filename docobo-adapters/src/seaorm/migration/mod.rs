//! The schema, as sea-orm-migration migrations that run unchanged on SQLite and PostgreSQL, one
//! file per migration, oldest first. Keep them additive (create tables and indexes, add columns,
//! copy data): SQLite cannot alter or drop columns through sea-query. Uniqueness that the ports
//! rely on lives here, as constraints, never as a read before a write.

use sea_orm_migration::prelude::*;

mod m0001_initial;
mod m0002_setup_progress;
mod m0003_payments;
mod m0004_product_links;
mod m0005_deferred_deliveries;
mod m0006_provider_cursors;
mod m0007_notices;
mod m0008_relay;
mod m0009_sessions;
mod m0010_relay_access;
mod m0011_catalog_revisions;

/// Every migration, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_initial::Migration),
            Box::new(m0002_setup_progress::Migration),
            Box::new(m0003_payments::Migration),
            Box::new(m0004_product_links::Migration),
            Box::new(m0005_deferred_deliveries::Migration),
            Box::new(m0006_provider_cursors::Migration),
            Box::new(m0007_notices::Migration),
            Box::new(m0008_relay::Migration),
            Box::new(m0009_sessions::Migration),
            Box::new(m0010_relay_access::Migration),
            Box::new(m0011_catalog_revisions::Migration),
        ]
    }
}

/// An index named `name` on `columns` of `table`, created only if missing.
fn index(
    name: &str,
    table: impl IntoIden,
    columns: impl IntoIterator<Item = impl IntoIden>,
) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table).if_not_exists();
    for column in columns {
        index.col(column);
    }
    index
}
