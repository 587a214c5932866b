//! Recorded payments: written inside the ledger's commit, read for revenue and exports.

use async_trait::async_trait;
use docobo_core::domain::{GuildId, Money, Payment};
use docobo_core::ports::{PaymentLog, StoreError};
use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QueryTrait};

use super::SeaOrmRepo;
use super::convert::{from_micros, guild_id, micros, parse, role_id, sf, store_err, user_id};
use super::entities::payment::{self, Column as C};

/// Inserts `p`, or raises the stored refund of the same `(provider, guild, reference)`.
pub(super) fn upsert(p: &Payment) -> InsertStatement {
    let row = payment::ActiveModel {
        id: Default::default(),
        provider: Set(p.provider.as_str().to_owned()),
        guild_id: Set(sf(p.guild.get())),
        reference: Set(p.reference.as_str().to_owned()),
        user_id: Set(p.user.map(|u| sf(u.get()))),
        role_id: Set(p.role.map(|r| sf(r.get()))),
        amount_minor: Set(p.amount.minor),
        refunded_minor: Set(p.refunded.minor),
        currency: Set(p.amount.currency.code().to_owned()),
        paid_at: Set(micros(p.paid_at)),
    };
    let stored = Expr::col((payment::Entity, C::RefundedMinor));
    let on_conflict = OnConflict::columns([C::Provider, C::GuildId, C::Reference])
        .value(
            C::RefundedMinor,
            Expr::case(stored.clone().lt(p.refunded.minor), p.refunded.minor).finally(stored),
        )
        .to_owned();
    payment::Entity::insert(row).on_conflict(on_conflict).into_query()
}

fn payment_from(m: payment::Model) -> Result<Payment, StoreError> {
    let currency = parse("currency", &m.currency)?;
    let money = |minor| Money::from_minor(minor, currency).map_err(|e| StoreError::Corrupt(e.to_string()));
    Ok(Payment {
        provider: parse("provider", &m.provider)?,
        guild: guild_id(m.guild_id)?,
        reference: parse("payment reference", &m.reference)?,
        user: m.user_id.map(user_id).transpose()?,
        role: m.role_id.map(role_id).transpose()?,
        amount: money(m.amount_minor)?,
        refunded: money(m.refunded_minor)?,
        paid_at: from_micros(m.paid_at)?,
    })
}

#[async_trait]
impl PaymentLog for SeaOrmRepo {
    async fn payments(&self, guild: GuildId) -> Result<Vec<Payment>, StoreError> {
        let rows = payment::Entity::find()
            .filter(C::GuildId.eq(sf(guild.get())))
            .order_by_asc(C::PaidAt)
            .order_by_asc(C::Id)
            .all(&self.db)
            .await
            .map_err(store_err)?;
        rows.into_iter().map(payment_from).collect()
    }
}
