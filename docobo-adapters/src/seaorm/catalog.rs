//! Guilds, paid roles, sealed credentials and checkouts.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use docobo_core::domain::{
    Checkout, CheckoutRef, Guild, GuildId, Money, NoticeSettings, PaidRole, ProviderName, RoleId, Secret,
};
use docobo_core::ports::{CatalogRepo, CheckoutRepo, GuildCatalog, ProviderCredentials, StoreError};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QueryTrait, Statement, TransactionTrait,
};
use serde_json::{Value, json};

use super::SeaOrmRepo;
use super::convert::{from_micros, guild_id, micros, parse, role_id, sf, store_err, user_id};
use super::entities::{catalog_revision, checkout, credential, guild, paid_role};

/// The catalogs ingest read, per guild and provider, each carrying the revision it was read
/// under. Only guilds that exist are kept, so its size is bounded by the catalog, not by requests.
#[derive(Default)]
pub(super) struct KeptCatalogs(Mutex<HashMap<(GuildId, ProviderName), Arc<GuildCatalog>>>);

impl std::fmt::Debug for KeptCatalogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("KeptCatalogs").field("kept", &kept).finish()
    }
}

impl KeptCatalogs {
    /// The kept catalog, at whatever revision it was read.
    fn latest(&self, key: (GuildId, ProviderName)) -> Option<Arc<GuildCatalog>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&key).cloned()
    }

    fn keep(&self, key: (GuildId, ProviderName), catalog: Arc<GuildCatalog>) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(key, catalog);
    }
}

fn guild_from(m: guild::Model) -> Result<Guild, StoreError> {
    let notices = match m.notices {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("notice settings of guild {}: {e}", m.id)))?,
        None => NoticeSettings::default(),
    };
    Ok(Guild { id: guild_id(m.id)?, name: m.name, grace: time::Duration::seconds(m.grace_seconds), notices })
}

fn role_from(m: paid_role::Model) -> Result<PaidRole, StoreError> {
    let currency = parse("currency", &m.currency)?;
    Ok(PaidRole {
        guild: guild_id(m.guild_id)?,
        role: role_id(m.role_id)?,
        name: m.name,
        price: Money::from_minor(m.price_minor, currency).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        term: parse("term", &m.term)?,
        links: serde_json::from_str(&m.links)
            .map_err(|e| StoreError::Corrupt(format!("paid role links: {e}")))?,
    })
}

fn checkout_from(m: checkout::Model) -> Result<Checkout, StoreError> {
    let currency = parse("currency", &m.currency)?;
    Ok(Checkout {
        reference: parse("checkout reference", &m.reference)?,
        guild: guild_id(m.guild_id)?,
        user: user_id(m.user_id)?,
        role: role_id(m.role_id)?,
        provider: parse("provider", &m.provider)?,
        expected: Money::from_minor(m.expected_minor, currency)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: from_micros(m.created_at)?,
        expires_at: from_micros(m.expires_at)?,
    })
}

/// What the sealed credentials are bound to: a row copied elsewhere does not decrypt.
fn context(guild: GuildId, provider: ProviderName) -> Vec<u8> {
    format!("docobo-credentials:{guild}:{provider}").into_bytes()
}

fn credentials_json(c: &ProviderCredentials) -> Vec<u8> {
    json!({
        "webhook_secret": c.webhook_secret.expose(),
        "api_token": c.api_token.as_ref().map(Secret::expose),
        "settings": c.settings,
    })
    .to_string()
    .into_bytes()
}

fn credentials_from_json(bytes: &[u8]) -> Option<ProviderCredentials> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let settings: BTreeMap<String, String> = serde_json::from_value(v.get("settings")?.clone()).ok()?;
    Some(ProviderCredentials {
        webhook_secret: Secret::new(v.get("webhook_secret")?.as_str()?),
        api_token: v.get("api_token").and_then(Value::as_str).map(Secret::new),
        settings,
    })
}

#[async_trait]
impl CatalogRepo for SeaOrmRepo {
    async fn put_guild(&self, g: &Guild) -> Result<(), StoreError> {
        let row = guild::ActiveModel {
            id: Set(sf(g.id.get())),
            name: Set(g.name.clone()),
            grace_seconds: Set(g.grace.whole_seconds()),
            notices: Set(Some(
                serde_json::to_string(&g.notices)
                    .unwrap_or_else(|_| unreachable!("settings always serialize")),
            )),
        };
        let upsert = guild::Entity::insert(row).on_conflict(
            OnConflict::column(guild::Column::Id)
                .update_columns([guild::Column::Name, guild::Column::GraceSeconds, guild::Column::Notices])
                .to_owned(),
        );
        self.write_catalog(g.id, upsert.build(self.backend())).await.map(drop)
    }

    async fn guild(&self, id: GuildId) -> Result<Option<Guild>, StoreError> {
        let row = guild::Entity::find_by_id(sf(id.get())).one(&self.db).await.map_err(store_err)?;
        row.map(guild_from).transpose()
    }

    async fn guilds(&self) -> Result<Vec<Guild>, StoreError> {
        let rows =
            guild::Entity::find().order_by_asc(guild::Column::Id).all(&self.db).await.map_err(store_err)?;
        rows.into_iter().map(guild_from).collect()
    }

    async fn remove_paid_role(&self, guild: GuildId, role: RoleId) -> Result<bool, StoreError> {
        let delete = paid_role::Entity::delete_by_id((sf(guild.get()), sf(role.get())));
        Ok(self.write_catalog(guild, delete.build(self.backend())).await? > 0)
    }

    async fn put_paid_role(&self, r: &PaidRole) -> Result<(), StoreError> {
        use paid_role::Column as C;
        let row = paid_role::ActiveModel {
            guild_id: Set(sf(r.guild.get())),
            role_id: Set(sf(r.role.get())),
            name: Set(r.name.clone()),
            price_minor: Set(r.price.minor),
            currency: Set(r.price.currency.code().to_owned()),
            term: Set(r.term.to_string()),
            links: Set(serde_json::to_string(&r.links).map_err(|e| StoreError::Corrupt(e.to_string()))?),
            polar_product: Set(r.product_at(ProviderName::POLAR).map(str::to_owned)),
            sepay: Set(r.link_to(ProviderName::SEPAY).is_some()),
        };
        let upsert = paid_role::Entity::insert(row).on_conflict(
            OnConflict::columns([C::GuildId, C::RoleId])
                .update_columns([
                    C::Name,
                    C::PriceMinor,
                    C::Currency,
                    C::Term,
                    C::Links,
                    C::PolarProduct,
                    C::Sepay,
                ])
                .to_owned(),
        );
        self.write_catalog(r.guild, upsert.build(self.backend())).await.map(drop)
    }

    async fn paid_role(&self, guild: GuildId, role: RoleId) -> Result<Option<PaidRole>, StoreError> {
        let row = paid_role::Entity::find_by_id((sf(guild.get()), sf(role.get())))
            .one(&self.db)
            .await
            .map_err(store_err)?;
        row.map(role_from).transpose()
    }

    async fn paid_roles(&self, guild: GuildId) -> Result<Vec<PaidRole>, StoreError> {
        let rows = paid_role::Entity::find()
            .filter(paid_role::Column::GuildId.eq(sf(guild.get())))
            .order_by_asc(paid_role::Column::RoleId)
            .all(&self.read)
            .await
            .map_err(store_err)?;
        rows.into_iter().map(role_from).collect()
    }

    async fn put_credentials(
        &self,
        guild: GuildId,
        provider: ProviderName,
        credentials: &ProviderCredentials,
    ) -> Result<(), StoreError> {
        let secrets = self.secrets.as_ref().ok_or_else(|| {
            StoreError::Unavailable(
                "DOCOBO_SECRET_KEY is not set, so provider credentials cannot be stored encrypted".to_owned(),
            )
        })?;
        let row = credential::ActiveModel {
            guild_id: Set(sf(guild.get())),
            provider: Set(provider.as_str().to_owned()),
            sealed: Set(secrets.seal(&credentials_json(credentials), &context(guild, provider))),
        };
        let upsert = credential::Entity::insert(row).on_conflict(
            OnConflict::columns([credential::Column::GuildId, credential::Column::Provider])
                .update_column(credential::Column::Sealed)
                .to_owned(),
        );
        self.write_catalog(guild, upsert.build(self.backend())).await.map(drop)
    }

    async fn credentials(
        &self,
        guild: GuildId,
        provider: ProviderName,
    ) -> Result<Option<ProviderCredentials>, StoreError> {
        let row = credential::Entity::find_by_id((sf(guild.get()), provider.as_str().to_owned()))
            .one(&self.db)
            .await
            .map_err(store_err)?;
        row.map(|r| self.unseal(guild, provider, &r.sealed)).transpose()
    }

    /// One `LEFT JOIN` instead of two reads: this runs on every webhook.
    async fn guild_and_credentials(
        &self,
        guild: GuildId,
        provider: ProviderName,
    ) -> Result<(Option<Guild>, Option<ProviderCredentials>), StoreError> {
        let backend = self.db.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "SELECT g.id, g.name, g.grace_seconds, g.notices, c.sealed FROM guilds g LEFT JOIN provider_credentials c \
                 ON c.guild_id = g.id AND c.provider = $2 WHERE g.id = $1"
            }
            _ => {
                "SELECT g.id, g.name, g.grace_seconds, g.notices, c.sealed FROM guilds g LEFT JOIN provider_credentials c \
                 ON c.guild_id = g.id AND c.provider = ? WHERE g.id = ?"
            }
        };
        let values: [sea_orm::Value; 2] = match backend {
            DbBackend::Postgres => [sf(guild.get()).into(), provider.as_str().into()],
            _ => [provider.as_str().into(), sf(guild.get()).into()],
        };
        let statement = Statement::from_sql_and_values(backend, sql, values);
        let Some(row) = self.read.query_one_raw(statement).await.map_err(store_err)? else {
            return Ok((None, None));
        };
        let column = |e: DbErr| StoreError::Corrupt(format!("guild {guild}: {e}"));
        let found = guild_from(guild::Model {
            id: row.try_get("", "id").map_err(column)?,
            name: row.try_get("", "name").map_err(column)?,
            grace_seconds: row.try_get("", "grace_seconds").map_err(column)?,
            notices: row.try_get("", "notices").map_err(column)?,
        })?;
        let sealed: Option<Vec<u8>> = row.try_get("", "sealed").map_err(column)?;
        let credentials = sealed.map(|s| self.unseal(guild, provider, &s)).transpose()?;
        Ok((Some(found), credentials))
    }

    /// From memory while the guild's catalog revision is the one it was read under: one small
    /// read per webhook instead of three.
    async fn catalog(
        &self,
        guild: GuildId,
        provider: ProviderName,
    ) -> Result<Option<Arc<GuildCatalog>>, StoreError> {
        let select = catalog_revision::Entity::find_by_id(sf(guild.get()));
        let revision = self.hot(select, super::reads::revision).await?.first().map_or(0, |r| r.revision);
        let revision = Some(u64::try_from(revision).unwrap_or_default());
        if let Some(kept) = self.catalogs.latest((guild, provider)).filter(|c| c.revision == revision) {
            return Ok(Some(kept));
        }
        // Read after the revision: a write landing in between leaves a newer catalog under an
        // older number, which the next read replaces; never an older catalog under a newer one.
        let Some(catalog) = GuildCatalog::read(self, guild, provider).await? else { return Ok(None) };
        let catalog = Arc::new(GuildCatalog { revision, ..catalog });
        self.catalogs.keep((guild, provider), catalog.clone());
        Ok(Some(catalog))
    }

    /// Answered from memory; the commit's check (`steps::catalog_unmoved`) makes it exact.
    async fn kept_catalog(
        &self,
        guild: GuildId,
        provider: ProviderName,
    ) -> Result<Option<Arc<GuildCatalog>>, StoreError> {
        Ok(self.catalogs.latest((guild, provider)))
    }
}

impl SeaOrmRepo {
    /// Runs `write`, a change to `guild`'s catalog, and raises the guild's catalog revision, in
    /// one transaction. Returns the rows `write` affected.
    async fn write_catalog(&self, guild: GuildId, write: Statement) -> Result<u64, StoreError> {
        use catalog_revision::Column as C;
        let txn = self.db.begin().await.map_err(store_err)?;
        let affected = txn.execute_raw(write).await.map_err(store_err)?.rows_affected();
        let first = catalog_revision::ActiveModel { guild_id: Set(sf(guild.get())), revision: Set(1) };
        let raise = OnConflict::column(C::GuildId)
            .value(C::Revision, Expr::col((catalog_revision::Entity, C::Revision)).add(1))
            .to_owned();
        catalog_revision::Entity::insert(first)
            .on_conflict(raise)
            .exec_without_returning(&txn)
            .await
            .map_err(store_err)?;
        txn.commit().await.map_err(store_err)?;
        Ok(affected)
    }

    /// Re-seals every stored credential under the current key (`docobo secrets rotate`), in one
    /// transaction: all of them or none. Fails, changing nothing, when one opens under neither
    /// key. Returns how many were re-sealed.
    pub async fn reseal_credentials(&self) -> Result<usize, StoreError> {
        use sea_orm::TransactionTrait;
        let secrets = self
            .secrets
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("DOCOBO_SECRET_KEY is not set".to_owned()))?;
        let txn = self.db.begin().await.map_err(store_err)?;
        let rows = credential::Entity::find().all(&txn).await.map_err(store_err)?;
        let count = rows.len();
        for row in rows {
            let guild = super::convert::guild_id(row.guild_id)?;
            let provider: ProviderName = super::convert::parse("provider", &row.provider)?;
            let ctx = context(guild, provider);
            let plain = secrets.open(&row.sealed, &ctx).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "{provider} credentials for guild {guild} open under neither DOCOBO_SECRET_KEY nor \
                     DOCOBO_SECRET_KEY_OLD; nothing was re-sealed"
                ))
            })?;
            let resealed = credential::ActiveModel {
                guild_id: Set(row.guild_id),
                provider: Set(row.provider.clone()),
                sealed: Set(secrets.seal(&plain, &ctx)),
            };
            credential::Entity::update(resealed).exec(&txn).await.map_err(store_err)?;
        }
        txn.commit().await.map_err(store_err)?;
        Ok(count)
    }

    /// Whether stored credentials can be opened with the configured key (one row is tried), so
    /// that `/ready` can say a wrong `DOCOBO_SECRET_KEY` before every webhook fails on it.
    pub async fn credentials_readable(&self) -> Result<(), StoreError> {
        let Some(row) = credential::Entity::find().one(&self.db).await.map_err(store_err)? else {
            return Ok(());
        };
        let guild = super::convert::guild_id(row.guild_id)?;
        let provider: ProviderName = super::convert::parse("provider", &row.provider)?;
        self.unseal(guild, provider, &row.sealed).map(drop)
    }

    /// Decrypts stored credentials; `Corrupt` (never garbage) when they cannot be read.
    fn unseal(
        &self,
        guild: GuildId,
        provider: ProviderName,
        sealed: &[u8],
    ) -> Result<ProviderCredentials, StoreError> {
        let unreadable = |why: &str| {
            StoreError::Corrupt(format!(
                "{provider} credentials for guild {guild} cannot be decrypted: {why}"
            ))
        };
        let secrets = self.secrets.as_ref().ok_or_else(|| unreadable("DOCOBO_SECRET_KEY is not set"))?;
        let plain = secrets
            .open(sealed, &context(guild, provider))
            .ok_or_else(|| unreadable("DOCOBO_SECRET_KEY is not the key they were stored with"))?;
        credentials_from_json(&plain).ok_or_else(|| unreadable("the decrypted value is malformed"))
    }
}

#[async_trait]
impl CheckoutRepo for SeaOrmRepo {
    async fn put_checkout(&self, c: &Checkout) -> Result<(), StoreError> {
        let row = checkout::ActiveModel {
            guild_id: Set(sf(c.guild.get())),
            reference: Set(c.reference.as_str().to_owned()),
            user_id: Set(sf(c.user.get())),
            role_id: Set(sf(c.role.get())),
            provider: Set(c.provider.as_str().to_owned()),
            expected_minor: Set(c.expected.minor),
            currency: Set(c.expected.currency.code().to_owned()),
            created_at: Set(micros(c.created_at)),
            expires_at: Set(micros(c.expires_at)),
        };
        match checkout::Entity::insert(row).exec(&self.db).await.map_err(store_err) {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict) => Err(StoreError::AlreadyExists(format!("checkout {}", c.reference))),
            Err(e) => Err(e),
        }
    }

    async fn checkout(
        &self,
        guild: GuildId,
        reference: &CheckoutRef,
    ) -> Result<Option<Checkout>, StoreError> {
        let select = checkout::Entity::find_by_id((sf(guild.get()), reference.as_str().to_owned()));
        self.hot(select, super::reads::checkout).await?.into_iter().next().map(checkout_from).transpose()
    }
}
