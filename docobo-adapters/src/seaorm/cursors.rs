//! Where a provider's event journal was last read, per guild (migration m0006).

use docobo_core::domain::{GuildId, ProviderName, Timestamp};
use docobo_core::ports::StoreError;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};

use super::SeaOrmRepo;
use super::convert::{micros, sf, store_err};
use super::entities::provider_cursor;

impl SeaOrmRepo {
    /// The stored journal cursor for `provider` in `guild`, if any.
    pub async fn journal_cursor(
        &self,
        guild: GuildId,
        provider: ProviderName,
    ) -> Result<Option<String>, StoreError> {
        let row = provider_cursor::Entity::find_by_id((sf(guild.get()), provider.as_str().to_owned()))
            .one(&self.db)
            .await
            .map_err(store_err)?;
        Ok(row.map(|r| r.cursor))
    }

    /// Stores (or replaces) the journal cursor; `None` forgets it (read from the start next time).
    pub async fn put_journal_cursor(
        &self,
        guild: GuildId,
        provider: ProviderName,
        cursor: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        use provider_cursor::Column as C;
        let key = (sf(guild.get()), provider.as_str().to_owned());
        let Some(cursor) = cursor else {
            provider_cursor::Entity::delete_by_id(key).exec(&self.db).await.map_err(store_err)?;
            return Ok(());
        };
        let row = provider_cursor::ActiveModel {
            guild_id: Set(key.0),
            provider: Set(key.1),
            cursor: Set(cursor.to_owned()),
            updated_at: Set(micros(at)),
        };
        provider_cursor::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([C::GuildId, C::Provider])
                    .update_columns([C::Cursor, C::UpdatedAt])
                    .to_owned(),
            )
            .exec(&self.db)
            .await
            .map_err(store_err)?;
        Ok(())
    }
}
