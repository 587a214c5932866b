//! Resumable `/setup` progress.

use async_trait::async_trait;
use docobo_core::domain::{GuildId, SetupProgress};
use docobo_core::ports::{SetupRepo, StoreError};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};

use super::SeaOrmRepo;
use super::convert::{from_micros, guild_id, micros, sf, store_err, user_id};
use super::entities::setup_progress::{self, Column as C};

#[async_trait]
impl SetupRepo for SeaOrmRepo {
    async fn put_setup(&self, p: &SetupProgress) -> Result<(), StoreError> {
        let row = setup_progress::ActiveModel {
            guild_id: Set(sf(p.guild.get())),
            user_id: Set(sf(p.user.get())),
            step: Set(i16::from(p.step)),
            draft: Set(p.draft.clone()),
            updated_at: Set(micros(p.updated_at)),
        };
        setup_progress::Entity::insert(row)
            .on_conflict(
                OnConflict::column(C::GuildId)
                    .update_columns([C::UserId, C::Step, C::Draft, C::UpdatedAt])
                    .to_owned(),
            )
            .exec(&self.db)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn setup(&self, guild: GuildId) -> Result<Option<SetupProgress>, StoreError> {
        let row =
            setup_progress::Entity::find_by_id(sf(guild.get())).one(&self.db).await.map_err(store_err)?;
        row.map(|m| {
            Ok(SetupProgress {
                guild: guild_id(m.guild_id)?,
                user: user_id(m.user_id)?,
                step: u8::try_from(m.step)
                    .map_err(|_| StoreError::Corrupt(format!("setup step {}", m.step)))?,
                draft: m.draft,
                updated_at: from_micros(m.updated_at)?,
            })
        })
        .transpose()
    }

    async fn clear_setup(&self, guild: GuildId) -> Result<(), StoreError> {
        setup_progress::Entity::delete_by_id(sf(guild.get())).exec(&self.db).await.map_err(store_err)?;
        Ok(())
    }
}
