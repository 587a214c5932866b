//! Time and drift: expiry, grace, reference counting, reconciliation, replay, 429 storms, status.

use super::*;

#[tokio::test]
async fn a_cancelled_member_keeps_the_role_until_the_period_ends_then_loses_it() {
    let w = World::new(Term::Recurring).await;
    let end = START + Duration::days(30);
    w.sub_event("evt_1", "payment_succeeded", START, Some(end)).await;
    w.sub_event("evt_2", "cancel_scheduled", START + Duration::days(5), Some(end)).await;
    w.work().await;
    assert!(w.has_role());
    assert_eq!(w.status(), Status::Cancelled);
    w.clock.set(end - Duration::seconds(1));
    assert_eq!(expire_due(&w.repo, &w.clock, 100).await.expect("expire").due, 0);
    w.clock.set(end);
    let report = expire_due(&w.repo, &w.clock, 100).await.expect("expire");
    assert_eq!((report.due, report.jobs), (1, 1));
    w.work().await;
    assert!(!w.has_role());
    assert_eq!(w.status(), Status::Expired);
    // Nothing is due twice.
    assert_eq!(expire_due(&w.repo, &w.clock, 100).await.expect("expire").due, 0);
}

#[tokio::test]
async fn a_failed_renewal_keeps_the_role_for_the_grace_period() {
    let w = World::new(Term::Recurring).await;
    let end = START + Duration::days(30);
    w.sub_event("evt_1", "payment_succeeded", START, Some(end)).await;
    w.work().await;
    w.clock.set(end);
    w.sub_event("evt_2", "payment_failed", end, None).await;
    w.work().await;
    assert!(w.has_role(), "still within grace");
    w.clock.set(end + Guild::DEFAULT_GRACE);
    assert_eq!(expire_due(&w.repo, &w.clock, 100).await.expect("expire").jobs, 1);
    w.work().await;
    assert!(!w.has_role());
}

#[tokio::test]
async fn two_purchases_one_refunded_keep_the_role() {
    let w = World::new(Term::Lifetime).await;
    for (id, sub) in [("evt_a", "order_a"), ("evt_b", "order_b")] {
        let mut lines = webhook(id, "payment_succeeded", sub, START);
        lines.extend([("user", "42".to_owned()), ("product", "prod_vip".to_owned())]);
        w.deliver(&lines).await.expect("paid");
    }
    w.work().await;
    let refund = webhook("evt_r", "refunded", "order_a", START + Duration::hours(1));
    assert_eq!(w.deliver(&refund).await.expect("refund").outcome, IngestOutcome::Processed { jobs: 1 });
    w.work().await;
    assert!(w.has_role());
    assert_eq!(w.discord.writes(), 1);
}

#[tokio::test]
async fn reconciliation_restores_a_role_removed_by_hand() {
    let w = World::new(Term::Recurring).await;
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    w.work().await;
    w.discord.set_roles(guild(), user(), []);
    let report = reconcile_guild(&w.repo, &w.discord, &w.clock, guild()).await.expect("reconcile");
    assert_eq!(report.drift, vec![Drift { key: key(), desired: true }]);
    assert_eq!(report.members_checked, 1);
    w.work().await;
    assert!(w.has_role());
    let again = reconcile_guild(&w.repo, &w.discord, &w.clock, guild()).await.expect("reconcile");
    assert!(again.drift.is_empty());
}

#[test]
fn the_diff_skips_members_who_are_not_in_the_guild() {
    let other = UserId::new(43).expect("id");
    let desired = [(key(), true), (RoleJobKey { user: other, ..key() }, false)].into_iter().collect();
    let actual = [(user(), BTreeSet::from([role()]))].into_iter().collect();
    assert!(diff(&desired, &actual).is_empty());
    let actual = [(user(), BTreeSet::new()), (other, BTreeSet::from([role()]))].into_iter().collect();
    assert_eq!(
        diff(&desired, &actual),
        vec![
            Drift { key: key(), desired: true },
            Drift { key: RoleJobKey { user: other, ..key() }, desired: false }
        ]
    );
}

#[tokio::test]
async fn a_failed_event_is_applied_once_when_replayed_after_the_fix() {
    let w = World::new(Term::Recurring).await;
    let mut lines = webhook("evt_1", "payment_succeeded", "sub_1", START);
    lines.extend([("user", "42".to_owned()), ("product", "prod_new".to_owned())]);
    assert!(matches!(w.deliver(&lines).await.expect("stored").outcome, IngestOutcome::Failed { .. }));
    let failed = w.repo.failed_events(10).await.expect("inbox").remove(0);
    let early = replay_event(&w.repo, &w.provider, &w.clock, &failed).await.expect("replays");
    assert!(matches!(early.outcome, IngestOutcome::Failed { .. }), "still unfixable: {early:?}");
    // The owner links the product to the role, then replays.
    let mut paid = w.repo.paid_role(guild(), role()).await.expect("read").expect("role");
    paid.link(ProductLink::product(ProviderName::POLAR, "prod_new"));
    w.repo.put_paid_role(&paid).await.expect("link");
    let failed = w.repo.failed_events(10).await.expect("inbox").remove(0);
    assert_eq!(failed.attempts, 2);
    let report = replay_event(&w.repo, &w.provider, &w.clock, &failed).await.expect("replays");
    assert_eq!(report.outcome, IngestOutcome::Processed { jobs: 1 });
    assert_eq!(w.status(), Status::Active);
    assert!(w.repo.failed_events(10).await.expect("inbox").is_empty());
    let again = replay_event(&w.repo, &w.provider, &w.clock, &failed).await.expect("stale copy");
    assert_eq!(again.outcome, IngestOutcome::Duplicate);
    let stored = w.repo.webhook_event_by_id(failed.id).await.expect("read").expect("kept");
    assert_eq!(
        replay_event(&w.repo, &w.provider, &w.clock, &stored).await,
        Err(ReplayError::NotFailed(stored.id))
    );
}

#[tokio::test]
async fn a_minute_long_429_storm_ends_with_every_job_converged_and_few_requests() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Discord answering 429 to everything until `until`, then behaving.
    struct Storm<'a> {
        inner: &'a FakeRoles,
        clock: &'a ManualClock,
        until: OffsetDateTime,
        calls: AtomicUsize,
    }

    impl Storm<'_> {
        fn gate(&self) -> Result<(), GatewayError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            if self.clock.now() < self.until {
                Err(GatewayError::Retryable { after: Some(Duration::seconds(1)), why: "429".into() })
            } else {
                Ok(())
            }
        }
    }

    #[async_trait::async_trait]
    impl RoleGateway for Storm<'_> {
        async fn member_roles(&self, g: GuildId, u: UserId) -> Result<BTreeSet<RoleId>, GatewayError> {
            self.gate()?;
            self.inner.member_roles(g, u).await
        }
        async fn add_role(&self, g: GuildId, u: UserId, r: RoleId, why: &str) -> Result<(), GatewayError> {
            self.gate()?;
            self.inner.add_role(g, u, r, why).await
        }
        async fn remove_role(&self, g: GuildId, u: UserId, r: RoleId, why: &str) -> Result<(), GatewayError> {
            self.gate()?;
            self.inner.remove_role(g, u, r, why).await
        }
        async fn bot_can_manage(&self, g: GuildId, r: RoleId) -> Result<Manageable, GatewayError> {
            self.inner.bot_can_manage(g, r).await
        }
    }

    let w = World::new(Term::Recurring).await;
    let members: Vec<UserId> = (100..120).map(|n| UserId::new(n).expect("id")).collect();
    for (i, m) in members.iter().enumerate() {
        w.discord.join(guild(), *m);
        let mut lines = webhook(&format!("evt_{i}"), "payment_succeeded", &format!("sub_{i}"), START);
        lines.extend([("user", m.to_string()), ("product", "prod_vip".to_owned())]);
        w.deliver(&lines).await.expect("ingests");
    }
    let storm = Storm {
        inner: &w.discord,
        clock: &w.clock,
        until: START + Duration::seconds(60),
        calls: AtomicUsize::new(0),
    };
    // The worker loop, with time moved by hand to each next due moment.
    for _ in 0..200 {
        run_due_jobs(&w.repo, &storm, &w.clock, LEASE, 100).await.expect("works");
        match w.repo.next_due().await.expect("reads") {
            Some(at) => w.clock.set(at.max(w.clock.now())),
            None => break,
        }
    }
    assert!(members.iter().all(|m| w.discord.roles(guild(), *m).is_some_and(|r| r.contains(&role()))));
    assert!(w.repo.jobs(JobState::Parked, 100).await.expect("read").is_empty());
    // Backoff: about log2(60 s / 5 s) + 1 ≈ 5 failed reads per job during the storm, then a read,
    // a write and a verifying read. Far from one request per job per second.
    let calls = storm.calls.load(Ordering::Relaxed);
    assert!(calls <= members.len() * 10, "{calls} requests for {} jobs", members.len());
    assert!(w.clock.now() >= START + Duration::seconds(60));
}

#[tokio::test]
async fn status_lists_the_members_purchases_entitled_first() {
    let w = World::new(Term::Recurring).await;
    let end = START + Duration::days(30);
    w.sub_event("evt_1", "payment_succeeded", START, Some(end)).await;
    let lines =
        status::member_status(&w.repo, guild(), user(), START + Duration::days(1)).await.expect("reads");
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (lines[0].role_name.as_deref(), lines[0].status, lines[0].entitled),
        (Some("VIP"), Status::Active, true)
    );
    assert_eq!(lines[0].access_until, Some(end));
    let stranger = UserId::new(77).expect("id");
    assert!(status::member_status(&w.repo, guild(), stranger, START).await.expect("reads").is_empty());
}

/// Polar's `past_due` reports the next period's end with the failure: the grace period, not that
/// end, decides, and the role goes when the grace runs out.
#[tokio::test]
async fn a_failed_renewal_that_reports_the_next_period_end_loses_the_role_when_grace_ends() {
    let w = World::new(Term::Recurring).await;
    let end = START + Duration::days(30);
    w.sub_event("evt_1", "payment_succeeded", START, Some(end)).await;
    w.work().await;
    w.clock.set(end);
    w.sub_event("evt_2", "payment_succeeded", end, Some(end + Duration::days(30))).await;
    w.sub_event("evt_3", "payment_failed", end, None).await;
    assert_eq!(w.status(), Status::PastDue);
    w.work().await;
    assert!(w.has_role(), "within grace");
    w.clock.set(end + Guild::DEFAULT_GRACE);
    assert_eq!(expire_due(&w.repo, &w.clock, 100).await.expect("expire").jobs, 1);
    w.work().await;
    assert!(!w.has_role(), "kept the role after the grace period");
}
