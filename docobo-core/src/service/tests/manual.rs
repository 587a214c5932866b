//! Manual grants and revokes, audited.

use super::*;

#[tokio::test]
async fn a_manual_grant_gives_the_role_and_audits_the_reason() {
    let w = World::new(Term::Lifetime).await;
    let report =
        grant_manually(&w.repo, &w.clock, key(), "  comped: conference speaker ").await.expect("grants");
    assert_eq!(report.access_until, None, "a lifetime grant does not end by itself");
    let all = w.repo.entitlements();
    assert_eq!((all.len(), all[0].provider, all[0].status()), (1, ProviderName::MANUAL, Status::Active));
    assert_eq!(w.work().await.changed, 1);
    assert!(w.has_role());
    let trail = w.repo.audit_trail(guild(), user()).await.expect("audit");
    let manual: Vec<_> = trail.iter().filter(|a| a.action == AuditAction::ManualGrant).collect();
    assert_eq!(manual.len(), 1, "{trail:?}");
    assert_eq!(manual[0].reason, "comped: conference speaker");
}

#[tokio::test]
async fn a_manual_grant_of_a_fixed_term_runs_its_days_from_now() {
    let w = World::new(Term::fixed(30).expect("term")).await;
    let report = grant_manually(&w.repo, &w.clock, key(), "trial").await.expect("grants");
    assert_eq!(report.access_until, Some(START + Duration::days(30)));
}

#[tokio::test]
async fn a_manual_override_needs_a_reason_a_registered_guild_and_a_paid_role() {
    let w = World::new(Term::Lifetime).await;
    let err = grant_manually(&w.repo, &w.clock, key(), "   ").await.expect_err("no reason");
    assert_eq!(err, ManualError::NoReason);
    let other = RoleJobKey { role: RoleId::new(8).expect("id"), ..key() };
    let err = grant_manually(&w.repo, &w.clock, other, "why").await.expect_err("not for sale");
    assert!(matches!(err, ManualError::NotForSale { .. }), "{err:?}");
    let stranger = RoleJobKey { guild: GuildId::new(1).expect("id"), ..key() };
    let err = revoke_manually(&w.repo, &w.clock, stranger, "why").await.expect_err("unknown guild");
    assert!(matches!(err, ManualError::UnknownGuild(_)), "{err:?}");
    let err = revoke_manually(&w.repo, &w.clock, key(), "why").await.expect_err("nothing held");
    assert!(matches!(err, ManualError::NothingToRevoke { .. }), "{err:?}");
    assert!(w.repo.entitlements().is_empty() && w.repo.all_jobs().is_empty(), "nothing written");
}

#[tokio::test]
async fn a_manual_revoke_ends_a_paid_subscription_for_good_and_removes_the_role() {
    let w = World::new(Term::Recurring).await;
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    w.work().await;
    assert!(w.has_role());
    w.clock.advance(Duration::minutes(1));
    w.repo.fail_commits_with_conflict(1);
    let report = revoke_manually(&w.repo, &w.clock, key(), "chargeback by email").await.expect("revokes");
    assert_eq!(report.references.len(), 1);
    assert_eq!(w.status(), Status::Revoked);
    w.work().await;
    assert!(!w.has_role());
    // A late renewal webhook for the same subscription does not bring access back.
    w.sub_event("evt_2", "payment_succeeded", START + Duration::days(30), Some(START + Duration::days(60)))
        .await;
    assert_eq!(w.status(), Status::Revoked);
    let trail = w.repo.audit_trail(guild(), user()).await.expect("audit");
    assert!(trail.iter().any(|a| a.action == AuditAction::ManualRevoke && a.reason == "chargeback by email"));
}
