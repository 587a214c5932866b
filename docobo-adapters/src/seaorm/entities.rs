//! The tables, as SeaORM entities. Every timestamp is a `BIGINT` of microseconds since the Unix
//! epoch (SQLite would store `timestamptz` as text, which sorts wrongly across formats); every
//! snowflake an `i64` (Discord ids are below 2^63); money is integer minor units.

pub mod guild {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "guilds")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i64,
        pub name: String,
        pub grace_seconds: i64,
        /// `NoticeSettings` as JSON; null for the defaults.
        pub notices: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod paid_role {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "paid_roles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub guild_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub role_id: i64,
        pub name: String,
        pub price_minor: i64,
        pub currency: String,
        pub term: String,
        /// The provider links, a JSON array (migration m0004).
        pub links: String,
        /// Written as a mirror of the Polar link for binaries older than m0004; never read.
        pub polar_product: Option<String>,
        /// Written as a mirror of the SePay link for binaries older than m0004; never read.
        pub sepay: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod credential {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "provider_credentials")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub guild_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub provider: String,
        /// XChaCha20-Poly1305: 24-byte nonce followed by the sealed JSON of the credentials.
        pub sealed: Vec<u8>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Migration m0011: raised by every write to a guild's catalog.
pub mod catalog_revision {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "catalog_revisions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub guild_id: i64,
        pub revision: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod checkout {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "checkouts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub guild_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub reference: String,
        pub user_id: i64,
        pub role_id: i64,
        pub provider: String,
        pub expected_minor: i64,
        pub currency: String,
        pub created_at: i64,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod entitlement {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "entitlements")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub guild_id: i64,
        pub user_id: i64,
        pub role_id: i64,
        pub provider: String,
        pub external_ref: String,
        /// Derived from `standing`, stored for queries and for people reading the table.
        pub status: String,
        /// The state machine's registers, as JSON.
        pub standing: String,
        pub deadline: Option<i64>,
        pub revision: i64,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod webhook_event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub provider: String,
        pub guild_id: i64,
        pub external_id: String,
        pub body: Vec<u8>,
        pub received_at: i64,
        pub outcome: String,
        pub attempts: i32,
        pub last_error: Option<String>,
        /// When the resolver next tries a deferred delivery (migration m0005).
        pub retry_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod role_job {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "role_jobs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub guild_id: i64,
        pub user_id: i64,
        pub role_id: i64,
        pub state: String,
        pub attempts: i32,
        pub generation: i64,
        pub run_at: i64,
        pub locked_until: Option<i64>,
        pub last_error: Option<String>,
        pub cause: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod audit_entry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_entries")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub guild_id: i64,
        pub user_id: i64,
        pub role_id: i64,
        pub action: String,
        pub reason: String,
        pub cause: Option<String>,
        pub at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod setup_progress {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "setup_progress")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub guild_id: i64,
        pub user_id: i64,
        pub step: i16,
        pub draft: String,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod payment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "payments")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub provider: String,
        pub guild_id: i64,
        pub reference: String,
        pub user_id: Option<i64>,
        pub role_id: Option<i64>,
        pub amount_minor: i64,
        pub refunded_minor: i64,
        pub currency: String,
        pub paid_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod provider_cursor {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "provider_cursors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub guild_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub provider: String,
        pub cursor: String,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod notice {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "notices")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub key: String,
        pub guild_id: i64,
        pub user_id: i64,
        pub role_id: i64,
        pub provider: String,
        pub external_ref: String,
        pub kind: String,
        pub lead_seconds: Option<i64>,
        pub about: Option<i64>,
        pub send_at: i64,
        pub state: String,
        pub attempts: i32,
        pub note: Option<String>,
        pub locked_until: Option<i64>,
        pub created_at: i64,
        pub settled_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod member_notice {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "member_notices")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub guild_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        pub muted_at: Option<i64>,
        pub unreachable_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod relay {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "relays")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub source_guild_id: i64,
        pub source_channel_id: i64,
        pub target_guild_id: i64,
        pub target_channel_id: i64,
        pub via: String,
        pub name: Option<String>,
        pub ping_role_id: Option<i64>,
        pub access_role_id: Option<i64>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod signal {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "signals")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub guild_id: i64,
        pub channel_id: i64,
        pub message_id: i64,
        pub author_name: String,
        pub author_avatar: Option<String>,
        pub content: String,
        /// The rich embeds, a JSON array of `Embed`.
        pub embeds: String,
        /// The attachment references, a JSON array of `Attachment`.
        pub attachments: String,
        pub edited_at: Option<i64>,
        pub version: i64,
        pub deleted: bool,
        pub created_at: i64,
        pub changed_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod mirror {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "mirrors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub signal_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub relay_id: i64,
        pub position: i64,
        pub state: String,
        pub wanted: i64,
        pub mirrored: i64,
        /// The target messages, a JSON array of `PostedMessage`.
        pub posted: String,
        pub attempts: i32,
        pub run_at: i64,
        pub locked_until: Option<i64>,
        pub tried_at: Option<i64>,
        /// Content digests attempted, a JSON array of strings.
        pub tried: String,
        pub last_error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod session {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        /// SHA-256 (hex) of the cookie's token.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: i64,
        pub name: String,
        pub csrf: String,
        pub created_at: i64,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
