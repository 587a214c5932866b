//! The guild summary and the work report.

use super::*;

#[tokio::test]
async fn the_guild_summary_counts_each_entitled_member_once_per_role() {
    let w = World::new(Term::Recurring).await;
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    grant_manually(&w.repo, &w.clock, key(), "second purchase line").await.expect("grants");
    let other = RoleJobKey { user: UserId::new(43).expect("id"), ..key() };
    grant_manually(&w.repo, &w.clock, other, "comp").await.expect("grants");
    revoke_manually(&w.repo, &w.clock, other, "changed my mind").await.expect("revokes");
    let summary = guild_summary(&w.repo, guild(), START).await.expect("reads").expect("registered");
    assert_eq!(summary.roles.len(), 1);
    let vip = &summary.roles[0];
    assert_eq!((vip.role, vip.name.as_deref(), vip.active_members), (role(), Some("VIP"), 1));
    assert_eq!(vip.by_status.get(&Status::Active), Some(&2));
    assert_eq!(vip.by_status.get(&Status::Revoked), Some(&1));
    assert!(guild_summary(&w.repo, GuildId::new(1).expect("id"), START).await.expect("reads").is_none());
    assert!(summary.revenue.is_empty(), "a subscription event and manual grants are not payments");
}

#[tokio::test]
async fn the_guild_summary_adds_up_payments_by_month_and_currency() {
    let w = World::new(Term::fixed(30).expect("term")).await;
    let pay = |id: &str, reference: &str, at: OffsetDateTime, amount: &str| {
        let mut lines = webhook(id, "payment_succeeded", reference, at);
        lines.extend([
            ("user", user().to_string()),
            ("product", "prod_vip".to_owned()),
            ("paid", amount.to_owned()),
        ]);
        lines
    };
    let december = datetime!(2026-12-03 00:00 UTC);
    for lines in [
        pay("evt_1", "ord_1", START, "5.00 USD"),
        pay("evt_2", "ord_2", START + Duration::days(2), "7.50 USD"),
        pay("evt_3", "ord_3", december, "5.00 USD"),
    ] {
        assert!(matches!(w.deliver(&lines).await.expect("ingests").outcome, IngestOutcome::Processed { .. }));
    }
    // An underpayment is not applied, so it is not revenue.
    w.deliver(&pay("evt_4", "ord_4", december, "1.00 USD")).await.expect("ingests");
    let summary = guild_summary(&w.repo, guild(), december).await.expect("reads").expect("registered");
    let months: Vec<(&str, i64, usize)> =
        summary.revenue.iter().map(|m| (m.month.as_str(), m.gross.minor, m.payments)).collect();
    assert_eq!(months, [("2026-11", 1250, 2), ("2026-12", 500, 1)]);
    assert!(summary.revenue.iter().all(|m| m.currency == Currency::Usd && m.refunded.minor == 0));
}

#[tokio::test]
async fn the_work_report_times_each_change_from_when_its_job_became_due() {
    let w = World::new(Term::Recurring).await;
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    w.clock.advance(Duration::milliseconds(40));
    let report = w.work().await;
    assert_eq!(report.change_latencies, vec![Duration::milliseconds(40)]);
    w.sub_event("evt_2", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    assert!(w.work().await.change_latencies.is_empty(), "nothing changed, nothing timed");
}

#[tokio::test]
async fn the_kept_summary_answers_what_a_fresh_one_would_through_changes_and_time() {
    let w = World::new(Term::Recurring).await;
    let cache = SummaryCache::default();
    let same = async |at: OffsetDateTime| {
        let kept = cache.summary(&w.repo, guild(), at).await.expect("reads");
        assert_eq!(kept, guild_summary(&w.repo, guild(), at).await.expect("reads"), "at {at}");
        kept.expect("registered").roles[0].active_members
    };
    assert_eq!(same(START).await, 0);
    // A purchase is a change: the kept fold is not used again.
    let ends = START + Duration::days(30);
    w.sub_event("evt_1", "payment_succeeded", START, Some(ends)).await;
    assert_eq!(same(START).await, 1);
    assert_eq!(same(START + Duration::days(1)).await, 1, "kept: nothing changed");
    // Cancelled: access until the period ends, then none, with nothing written in between.
    w.sub_event("evt_2", "cancel_scheduled", START + Duration::days(2), Some(ends)).await;
    assert_eq!(same(START + Duration::days(3)).await, 1);
    assert_eq!(same(ends - Duration::seconds(1)).await, 1);
    assert_eq!(same(ends).await, 0, "the period ended by time alone");
    // Another member's comp, then its revocation.
    let other = RoleJobKey { user: UserId::new(43).expect("id"), ..key() };
    grant_manually(&w.repo, &w.clock, other, "comp").await.expect("grants");
    assert_eq!(same(ends).await, 1);
    revoke_manually(&w.repo, &w.clock, other, "changed my mind").await.expect("revokes");
    assert_eq!(same(ends).await, 0);
    // A grace period changed by the owner is a change too.
    let mut g = w.repo.guild(guild()).await.expect("reads").expect("guild");
    g.grace = Duration::days(9);
    w.repo.put_guild(&g).await.expect("guild");
    assert_eq!(same(ends).await, 0);
}
