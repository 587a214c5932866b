//! Dashboard sessions (migration m0009).

use async_trait::async_trait;
use docobo_core::domain::{Session, Timestamp, UserId};
use docobo_core::ports::{SessionRepo, StoreError};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::SeaOrmRepo;
use super::convert::{from_micros, micros, sf, storable, store_err, user_id};
use super::entities::session;

#[async_trait]
impl SessionRepo for SeaOrmRepo {
    async fn put_session(&self, s: &Session) -> Result<(), StoreError> {
        let row = session::ActiveModel {
            id: Set(s.id.clone()),
            user_id: Set(sf(s.user.get())),
            name: Set(storable(&s.name)),
            csrf: Set(s.csrf.clone()),
            created_at: Set(micros(s.created_at)),
            expires_at: Set(micros(s.expires_at)),
        };
        match session::Entity::insert(row).exec(&self.db).await.map_err(store_err) {
            Err(StoreError::Conflict) => Err(StoreError::AlreadyExists("the session".to_owned())),
            other => other.map(drop),
        }
    }

    async fn session(&self, id: &str, now: Timestamp) -> Result<Option<Session>, StoreError> {
        let row = session::Entity::find_by_id(id.to_owned())
            .filter(session::Column::ExpiresAt.gt(micros(now)))
            .one(&self.db)
            .await
            .map_err(store_err)?;
        row.map(|m| {
            Ok(Session {
                id: m.id,
                user: user_id(m.user_id)?,
                name: m.name,
                csrf: m.csrf,
                created_at: from_micros(m.created_at)?,
                expires_at: from_micros(m.expires_at)?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        let gone = session::Entity::delete_by_id(id.to_owned()).exec(&self.db).await.map_err(store_err)?;
        Ok(gone.rows_affected > 0)
    }

    async fn delete_sessions_of(&self, user: UserId) -> Result<usize, StoreError> {
        let gone = session::Entity::delete_many()
            .filter(session::Column::UserId.eq(sf(user.get())))
            .exec(&self.db)
            .await
            .map_err(store_err)?;
        Ok(usize::try_from(gone.rows_affected).unwrap_or(usize::MAX))
    }
}
