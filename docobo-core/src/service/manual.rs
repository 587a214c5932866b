//! Manual overrides: an admin grants or revokes a paid role by hand, with a reason that is kept in
//! the audit trail (`docobo grant|revoke`, `POST /admin/grants|revokes`).
//!
//! - A **grant** is a new `manual` entitlement, paid by the admin's say-so: it is the only
//!   `PaymentSucceeded` that no provider sent (DESIGN §2.2 rule 4). Its term is the paid role's:
//!   a fixed term runs its days from now, a lifetime or recurring role is held until revoked.
//! - A **revoke** applies `Revoked` to every entitlement of the member for the role that grants
//!   access now, provider purchases included. `Revoked` is terminal, so a late webhook for those
//!   purchases cannot bring access back; a *new* purchase can. It does not cancel anything at the
//!   provider: that is the owner's to do there.
//!
//! Both write the entitlements, the role job and the audit entry in one commit, and re-plan when
//! a concurrent delivery for the same purchase commits first.

use crate::domain::{
    AuditAction, AuditEntry, EntitlementId, ExternalRef, Guild, IdError, ProviderName, RoleJobKey, Timestamp,
};
use crate::machine::{self, Event, EventKind, Standing, Version};
use crate::ports::{CatalogRepo, Clock, Commit, EntitlementRepo, EntitlementWrite, Ledger, StoreError};

use super::retry::MAX_CONFLICT_RETRIES;

/// Why a manual override was refused. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManualError {
    #[error("guild {0} is not registered")]
    UnknownGuild(crate::domain::GuildId),
    #[error("role {role} is not for sale in guild {guild}; only paid roles are granted by Docobo")]
    NotForSale { guild: crate::domain::GuildId, role: crate::domain::RoleId },
    #[error("a reason is required: it is kept in the audit trail")]
    NoReason,
    #[error("member {user} holds no access to role {role} that could be revoked")]
    NothingToRevoke { user: crate::domain::UserId, role: crate::domain::RoleId },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a manual override wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualReport {
    /// The new manual entitlement's reference (grant) or the references revoked.
    pub references: Vec<ExternalRef>,
    /// When the granted access ends by itself (fixed terms), if ever.
    pub access_until: Option<Timestamp>,
}

/// The repository ports the overrides need.
pub trait ManualRepo: CatalogRepo + EntitlementRepo + Ledger {}
impl<T: CatalogRepo + EntitlementRepo + Ledger + ?Sized> ManualRepo for T {}

/// Grants `key.role` to `key.user` by hand, with `reason` audited.
pub async fn grant_manually<R: ManualRepo + ?Sized>(
    repo: &R,
    clock: &dyn Clock,
    key: RoleJobKey,
    reason: &str,
) -> Result<ManualReport, ManualError> {
    let (guild, reason) = checked(repo, key, reason).await?;
    let paid_role = repo
        .paid_role(guild.id, key.role)
        .await?
        .ok_or(ManualError::NotForSale { guild: guild.id, role: key.role })?;
    let now = clock.now();
    let paid = Event { kind: EventKind::PaymentSucceeded { access_until: None }, version: Version(now) };
    let standing = machine::apply(&Standing::new(paid_role.term), &paid, now)
        .map_err(|e| ManualError::Invalid(e.to_string()))?
        .standing;
    // One reference per grant: a grant after a revoke is a new entitlement, as a new purchase is.
    let nanos = now.unix_timestamp_nanos();
    let reference: ExternalRef = format!("manual-{}-{}-{nanos}", key.user, key.role)
        .parse()
        .map_err(|e: IdError| ManualError::Invalid(e.to_string()))?;
    let access_until = standing.access_until();
    let write = EntitlementWrite::Insert {
        guild: key.guild,
        user: key.user,
        role: key.role,
        provider: ProviderName::MANUAL,
        external_ref: reference.clone(),
        deadline: standing.deadline(guild.grace),
        standing,
    };
    let commit = override_commit(key, AuditAction::ManualGrant, reason, vec![write], now);
    repo.commit(commit).await?;
    Ok(ManualReport { references: vec![reference], access_until })
}

/// Revokes every entitlement of `key.user` that grants `key.role` now, with `reason` audited.
pub async fn revoke_manually<R: ManualRepo + ?Sized>(
    repo: &R,
    clock: &dyn Clock,
    key: RoleJobKey,
    reason: &str,
) -> Result<ManualReport, ManualError> {
    let (guild, reason) = checked(repo, key, reason).await?;
    for _ in 0..MAX_CONFLICT_RETRIES {
        let now = clock.now();
        let revoked = Event { kind: EventKind::Revoked, version: Version(now) };
        let mut writes = Vec::new();
        let mut references = Vec::new();
        for e in repo.entitlements_for(key).await? {
            if !e.entitled(now, guild.grace) {
                continue;
            }
            let standing = machine::apply(&e.standing, &revoked, now)
                .map_err(|err| ManualError::Invalid(err.to_string()))?
                .standing;
            references.push(e.external_ref.clone());
            writes.push(update(e.id, e.revision, standing, guild.grace));
        }
        if writes.is_empty() {
            return Err(ManualError::NothingToRevoke { user: key.user, role: key.role });
        }
        match repo.commit(override_commit(key, AuditAction::ManualRevoke, reason.clone(), writes, now)).await
        {
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => return Ok(ManualReport { references, access_until: None }),
        }
    }
    Err(StoreError::Conflict.into())
}

async fn checked<R: ManualRepo + ?Sized>(
    repo: &R,
    key: RoleJobKey,
    reason: &str,
) -> Result<(Guild, String), ManualError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ManualError::NoReason);
    }
    let guild = repo.guild(key.guild).await?.ok_or(ManualError::UnknownGuild(key.guild))?;
    Ok((guild, reason.to_owned()))
}

fn update(id: EntitlementId, revision: u64, standing: Standing, grace: time::Duration) -> EntitlementWrite {
    EntitlementWrite::Update { id, expected_revision: revision, deadline: standing.deadline(grace), standing }
}

fn override_commit(
    key: RoleJobKey,
    action: AuditAction,
    reason: String,
    writes: Vec<EntitlementWrite>,
    at: Timestamp,
) -> Commit {
    let cause = format!("manual {}", if action == AuditAction::ManualGrant { "grant" } else { "revoke" });
    let audit = AuditEntry {
        guild: key.guild,
        user: key.user,
        role: key.role,
        action,
        reason,
        cause: Some(cause.clone()),
        at,
    };
    Commit { writes, jobs: vec![key], cause, audit: vec![audit], ..Commit::new(at) }
}
