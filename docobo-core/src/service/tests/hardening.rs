//! The security review's findings against the use cases (`reviews/security-2026-12-01.md`): each
//! test is named after its finding and failed before the fix.

use super::*;
use crate::ports::ProviderRegistry;
use crate::service::role_sync::{CALLS_PER_JOB, JOB_CONCURRENCY, lease_and_batch};
use std::sync::Arc;

/// A fixed-term purchase of `role()` by `user()`, paid at `at`.
fn fixed_payment(id: &str, at: OffsetDateTime) -> Vec<(&'static str, String)> {
    let mut lines = webhook(id, "payment_succeeded", "ord_1", at);
    lines.extend([("user", user().to_string()), ("product", "prod_vip".to_owned())]);
    lines
}

#[tokio::test]
async fn m3_a_one_time_payment_cannot_pay_for_a_recurring_role() {
    let w = World::new(Term::Recurring).await;
    let mut lines = fixed_payment("ord_evt_1", START);
    lines.push(("one_time", "true".to_owned()));
    let report = w.deliver(&lines).await.expect("acknowledged");
    let IngestOutcome::Failed { reason } = report.outcome else { panic!("{report:?}") };
    assert_eq!(reason, Unresolved::OneTimeForRecurring { provider: ProviderName::POLAR });
    assert!(reason.to_string().contains("recurring") && reason.to_string().contains("no access was granted"));
    assert!(w.repo.entitlements().is_empty(), "nothing granted");
    assert!(w.repo.all_jobs().is_empty(), "no role job");
    // A subscription payment (renews) for the same role is still fine.
    let ok = w.sub_event("evt_2", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    assert_eq!(ok, IngestOutcome::Processed { jobs: 1 });
}

#[tokio::test]
async fn m3_sepay_is_not_offered_for_a_recurring_vnd_role() {
    let w = World::new(Term::Recurring).await;
    let mut bank = PaidRole::new(
        guild(),
        RoleId::new(8).expect("id"),
        "Bank",
        Money::parse("100000", Currency::Vnd).expect("price"),
        Term::Recurring,
    )
    .expect("role");
    bank.link(ProductLink::to(ProviderName::SEPAY));
    w.repo.put_paid_role(&bank).await.expect("role");
    let creds = ProviderCredentials::new(Secret::new("a-long-enough-sepay-api-key-0123456789"));
    w.repo.put_credentials(guild(), ProviderName::SEPAY, &creds).await.expect("creds");
    let providers = ProviderRegistry::new().with(Arc::new(ToyProvider::bank_transfer(ProviderName::SEPAY)));
    let offers = offers(&w.repo, &providers, guild()).await.expect("offers");
    assert!(
        !offers.iter().any(|o| o.provider == ProviderName::SEPAY),
        "a bank transfer never renews, so it is not offered for a recurring role: {offers:?}"
    );
}

#[tokio::test]
async fn m4_a_clock_that_jumps_a_year_and_back_expires_nobody() {
    let w = World::new(Term::Fixed { days: 30 }).await;
    w.deliver(&fixed_payment("evt_1", START)).await.expect("paid");
    w.work().await;
    assert!(w.has_role());
    let mut watch = ClockWatch::default();
    let pass = |watch: &mut ClockWatch, mono: u64| {
        let (repo, clock) = (&w.repo, &w.clock);
        let mut watch = std::mem::take(watch);
        async move {
            let result =
                expire_due_watched(repo, clock, &mut watch, std::time::Duration::from_secs(mono), 100)
                    .await
                    .expect("store");
            (watch, result)
        }
    };
    let (next, first) = pass(&mut watch, 0).await;
    watch = next;
    assert_eq!(first.map(|r| r.due), Ok(0));
    // Thirty seconds later by the monotonic clock, the wall clock says a year later.
    w.clock.set(START + Duration::days(365));
    let (next, jumped) = pass(&mut watch, 30).await;
    watch = next;
    assert!(matches!(jumped, Err(ClockTrust::Stepped { .. })), "{jumped:?}");
    // And back.
    w.clock.set(START + Duration::seconds(60));
    let (_, back) = pass(&mut watch, 60).await;
    assert_eq!(back.map(|r| r.due), Ok(0));
    w.work().await;
    assert_eq!(w.status(), Status::Active, "the paid term is intact");
    assert!(w.has_role(), "the role was never removed");
}

#[tokio::test]
async fn m4_a_clock_step_that_holds_is_accepted_and_the_expiry_is_stamped_at_the_deadline() {
    let w = World::new(Term::Fixed { days: 30 }).await;
    w.deliver(&fixed_payment("evt_1", START)).await.expect("paid");
    let mut watch = ClockWatch::default();
    let mono = std::time::Duration::from_secs;
    assert_eq!(watch.check(START, mono(0)), ClockTrust::Trusted);
    let later = START + Duration::days(31);
    w.clock.set(later);
    assert!(matches!(watch.check(later, mono(30)), ClockTrust::Stepped { .. }));
    assert!(matches!(
        watch.check(later + Duration::minutes(9), mono(30 + 9 * 60)),
        ClockTrust::Stepped { .. }
    ));
    let confirmed = later + Duration::minutes(10);
    w.clock.set(confirmed);
    let report = expire_due_watched(&w.repo, &w.clock, &mut watch, mono(30 + 10 * 60), 100)
        .await
        .expect("store")
        .expect("held for ten minutes: trusted");
    assert_eq!(report.due, 1);
    let all = w.repo.entitlements();
    assert_eq!(all[0].status(), Status::Expired);
    assert_eq!(
        all[0].standing.elapsed_at,
        Some(START + Duration::days(30)),
        "stamped at the deadline, not at now"
    );
}

#[tokio::test]
async fn m6_a_payment_made_before_its_checkout_expired_is_applied_when_delivered_late() {
    let w = World::new(Term::Fixed { days: 30 }).await;
    open_checkout(&w, "DCB123", "5.00").await;
    // Paid 30 minutes into the checkout's hour; delivered (or replayed) two days later.
    w.clock.advance(Duration::days(2));
    let report =
        w.deliver(&transfer("tx_1", "DCB123", "5.00", START + Duration::minutes(30))).await.expect("ok");
    assert_eq!(report.outcome, IngestOutcome::Processed { jobs: 1 });
    assert_eq!(w.status(), Status::Active);
}

/// A gateway whose role change lands only after the worker's lease ran out and another worker
/// ("replica B") claimed the job and settled it: the race in review finding M5.
struct LateWrite<'a> {
    repo: &'a MemoryRepo,
    clock: &'a ManualClock,
    discord: &'a FakeRoles,
}

#[async_trait::async_trait]
impl RoleGateway for LateWrite<'_> {
    async fn member_roles(&self, guild: GuildId, user: UserId) -> Result<BTreeSet<RoleId>, GatewayError> {
        self.discord.member_roles(guild, user).await
    }
    async fn add_role(&self, g: GuildId, u: UserId, r: RoleId, why: &str) -> Result<(), GatewayError> {
        self.clock.advance(LEASE + Duration::seconds(1));
        let stolen = self.repo.claim_due(self.clock.now(), LEASE, 10).await.expect("claim");
        assert_eq!(stolen.len(), 1, "replica B claims the job once A's lease ran out");
        // B read the facts after a refund and found nothing to change: done.
        self.repo.settle(&stolen[0], Settlement::Done, vec![], self.clock.now()).await.expect("settle");
        // Then A's delayed change lands.
        self.discord.add_role(g, u, r, why).await
    }
    async fn remove_role(&self, g: GuildId, u: UserId, r: RoleId, why: &str) -> Result<(), GatewayError> {
        self.discord.remove_role(g, u, r, why).await
    }
    async fn bot_can_manage(&self, guild: GuildId, role: RoleId) -> Result<Manageable, GatewayError> {
        self.discord.bot_can_manage(guild, role).await
    }
}

#[tokio::test]
async fn m5_a_change_that_lands_after_the_lease_was_lost_is_checked_again() {
    let w = World::new(Term::Recurring).await;
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    let late = LateWrite { repo: &w.repo, clock: &w.clock, discord: &w.discord };
    let report = run_due_jobs(&w.repo, &late, &w.clock, LEASE, 10).await.expect("works");
    assert_eq!(report.superseded, 1, "{report:?}");
    let jobs = w.repo.all_jobs();
    assert_eq!(jobs[0].state, JobState::Pending, "the key is queued again, so the role is checked once more");
    // Meanwhile the purchase was refunded: the next run removes what A's late write added.
    w.sub_event("evt_2", "refunded", START + Duration::days(1), None).await;
    w.work().await;
    assert!(!w.has_role(), "the refunded member does not keep the role");
}

#[test]
fn m5_a_batch_fits_in_its_lease_whatever_the_call_timeout() {
    for secs in [1, 10, 30, 300] {
        let timeout = std::time::Duration::from_secs(secs);
        let (lease, batch) = lease_and_batch(timeout);
        let worst_job =
            time::Duration::try_from(timeout * CALLS_PER_JOB).expect("small") + Duration::seconds(3);
        let rounds = i32::try_from(batch.div_ceil(JOB_CONCURRENCY)).expect("small");
        assert!(
            worst_job * rounds < lease,
            "{secs} s: {batch} jobs in {rounds} rounds of {worst_job} vs {lease}"
        );
        assert!(batch >= JOB_CONCURRENCY, "{secs} s: a batch still uses every slot");
    }
}

#[tokio::test]
async fn m8_a_subscription_switched_to_another_product_is_not_kept_on_the_old_role() {
    let w = World::new(Term::Recurring).await;
    let price = Money::parse("2.00", Currency::Usd).expect("price");
    let mut basic =
        PaidRole::new(guild(), RoleId::new(8).expect("id"), "Basic", price, Term::Recurring).expect("role");
    basic.link(ProductLink::product(ProviderName::POLAR, "prod_basic"));
    w.repo.put_paid_role(&basic).await.expect("role");
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    // The member moves the same subscription to the cheaper product in the provider's portal.
    let mut lines = webhook("evt_2", "payment_succeeded", "sub_1", START + Duration::days(1));
    lines.extend([
        ("user", user().to_string()),
        ("product", "prod_basic".to_owned()),
        ("until", secs(START + Duration::days(31))),
    ]);
    let report = w.deliver(&lines).await.expect("acknowledged");
    let IngestOutcome::Failed { reason } = report.outcome else { panic!("{report:?}") };
    assert!(
        matches!(&reason, Unresolved::ProductMoved { product, .. } if product == "prod_basic"),
        "{reason}"
    );
    let all = w.repo.entitlements();
    assert_eq!(
        (all.len(), all[0].role),
        (1, role()),
        "the old purchase is unchanged, no access moved silently"
    );
    assert_eq!(
        all[0].access_until(),
        Some(START + Duration::days(30)),
        "the cheaper plan did not extend VIP"
    );
}

#[tokio::test]
async fn l15_a_purchase_made_for_another_guild_is_not_applied_here() {
    let w = World::new(Term::Recurring).await;
    let mut lines = webhook("evt_1", "payment_succeeded", "sub_1", START);
    lines.extend([
        ("user", user().to_string()),
        ("product", "prod_vip".to_owned()),
        ("guild", "901".to_owned()),
        ("until", secs(START + Duration::days(30))),
    ]);
    let report = w.deliver(&lines).await.expect("acknowledged");
    let IngestOutcome::Failed { reason } = report.outcome else { panic!("{report:?}") };
    assert!(matches!(reason, Unresolved::OtherGuild { paid_for, .. } if paid_for.get() == 901), "{reason}");
    assert!(w.repo.entitlements().is_empty());
}

#[tokio::test]
async fn l11_a_guild_that_refuses_the_bot_costs_one_request_per_reconciliation() {
    let w = World::new(Term::Recurring).await;
    for (n, member) in [(1, 42), (2, 43)] {
        let mut lines = webhook(&format!("evt_{n}"), "payment_succeeded", &format!("sub_{n}"), START);
        lines.extend([
            ("user", member.to_string()),
            ("product", "prod_vip".to_owned()),
            ("until", secs(START + Duration::days(30))),
        ]);
        w.deliver(&lines).await.expect("paid");
    }
    let mut removed = MockRoleGateway::new();
    removed
        .expect_member_roles()
        .times(1)
        .returning(|_, _| Err(GatewayError::Forbidden { why: "Missing Access (Discord 50001)".into() }));
    let report = reconcile_guild(&w.repo, &removed, &w.clock, guild()).await.expect("store");
    assert!(report.stopped.as_deref().is_some_and(|why| why.contains("50001")), "{report:?}");
    assert_eq!(report.members_checked, 0);
}
