//! The use cases against the in-memory adapters, with mockall mocks of the role gateway where a
//! failure has to be scripted precisely.

use std::collections::BTreeSet;

use time::{Duration, OffsetDateTime, macros::datetime};

use super::*;
use crate::domain::*;
use crate::machine::Status;
use crate::ports::*;
use crate::testing::{Call, FakeRoles, ManualClock, MemoryRepo, ToyProvider};

mod hardening;

const SECRET: &str = "toy-secret";
const LEASE: Duration = Duration::seconds(30);
const START: OffsetDateTime = datetime!(2026-11-01 00:00 UTC);

fn guild() -> GuildId {
    GuildId::new(900).expect("id")
}
fn user() -> UserId {
    UserId::new(42).expect("id")
}
fn role() -> RoleId {
    RoleId::new(7).expect("id")
}
fn key() -> RoleJobKey {
    RoleJobKey { guild: guild(), user: user(), role: role() }
}
fn secs(at: OffsetDateTime) -> String {
    at.unix_timestamp().to_string()
}

/// The lines of a toy webhook; tests push the member and product fields they need.
fn webhook(id: &str, kind: &str, reference: &str, at: OffsetDateTime) -> Vec<(&'static str, String)> {
    vec![
        ("id", id.to_owned()),
        ("kind", kind.to_owned()),
        ("ref", reference.to_owned()),
        ("version", secs(at)),
    ]
}

struct World {
    repo: MemoryRepo,
    clock: ManualClock,
    provider: ToyProvider,
    discord: FakeRoles,
}

impl World {
    async fn new(term: Term) -> World {
        let repo = MemoryRepo::new();
        repo.put_guild(&Guild::new(guild(), "Test guild")).await.expect("guild");
        let price = Money::parse("5.00", Currency::Usd).expect("price");
        let mut paid = PaidRole::new(guild(), role(), "VIP", price, term).expect("role");
        paid.link(ProductLink::product(ProviderName::POLAR, "prod_vip"));
        repo.put_paid_role(&paid).await.expect("role");
        let creds = ProviderCredentials::new(Secret::new(SECRET));
        repo.put_credentials(guild(), ProviderName::POLAR, &creds).await.expect("creds");
        let discord = FakeRoles::new();
        discord.join(guild(), user());
        World {
            repo,
            clock: ManualClock::new(START),
            provider: ToyProvider::named(ProviderName::POLAR),
            discord,
        }
    }

    async fn deliver(&self, lines: &[(&str, String)]) -> Result<IngestReport, IngestError> {
        let body: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let headers = ToyProvider::headers(SECRET, body.as_bytes());
        ingest_webhook(&self.repo, &self.provider, &self.clock, guild(), &headers, body.as_bytes()).await
    }

    /// A subscription event for `sub_1` bought by `user()` through product `prod_vip`.
    async fn sub_event(
        &self,
        id: &str,
        kind: &str,
        version: OffsetDateTime,
        until: Option<OffsetDateTime>,
    ) -> IngestOutcome {
        let mut lines = webhook(id, kind, "sub_1", version);
        lines.extend([("user", user().to_string()), ("product", "prod_vip".to_owned())]);
        if let Some(until) = until {
            lines.push(("until", secs(until)));
        }
        self.deliver(&lines).await.expect("ingests").outcome
    }

    async fn work(&self) -> WorkReport {
        run_due_jobs(&self.repo, &self.discord, &self.clock, LEASE, 100).await.expect("works")
    }

    fn has_role(&self) -> bool {
        self.discord.roles(guild(), user()).is_some_and(|r| r.contains(&role()))
    }

    fn status(&self) -> Status {
        let all = self.repo.entitlements();
        assert_eq!(all.len(), 1, "expected one entitlement, got {all:?}");
        all[0].status()
    }
}

// ----- ingest -----

#[tokio::test]
async fn a_signed_payment_activates_the_entitlement_and_queues_one_role_job() {
    let w = World::new(Term::Recurring).await;
    let outcome = w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    assert_eq!(outcome, IngestOutcome::Processed { jobs: 1 });
    assert_eq!(w.status(), Status::Active);
    let jobs = w.repo.all_jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].key, jobs[0].state), (key(), JobState::Pending));
    assert_eq!(jobs[0].cause.as_deref(), Some("polar evt_1"));
    assert!(w.discord.calls().is_empty(), "ingest must not call Discord");
}

#[tokio::test]
async fn a_duplicate_delivery_produces_no_second_job_and_no_second_row() {
    let w = World::new(Term::Recurring).await;
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    let before = w.repo.all_jobs();
    let again = w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    assert_eq!(again, IngestOutcome::Duplicate);
    assert_eq!(w.repo.all_jobs(), before, "the job row must be untouched");
    assert_eq!(w.repo.events().len(), 1);
    assert_eq!(w.repo.entitlements()[0].revision, 1);
}

#[tokio::test]
async fn a_stale_event_is_recorded_but_does_not_regress_the_state() {
    let w = World::new(Term::Recurring).await;
    w.sub_event("evt_new", "cancel_undone", START + Duration::hours(2), None).await;
    w.sub_event("evt_pay", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    assert_eq!(w.status(), Status::Active);
    let stale = w
        .sub_event(
            "evt_old",
            "cancel_scheduled",
            START + Duration::hours(1),
            Some(START + Duration::days(30)),
        )
        .await;
    assert_eq!(stale, IngestOutcome::Processed { jobs: 0 });
    assert_eq!(w.status(), Status::Active);
    assert_eq!(w.repo.events().len(), 3, "the stale event is still recorded");
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_nothing_is_stored() {
    let w = World::new(Term::Recurring).await;
    let body = b"id=evt_1\nkind=payment_succeeded\nref=sub_1\nversion=1\nuser=42\nproduct=prod_vip\n";
    for headers in [ToyProvider::headers("wrong-secret", body), Headers::new()] {
        let err = ingest_webhook(&w.repo, &w.provider, &w.clock, guild(), &headers, body)
            .await
            .expect_err("refused");
        assert!(matches!(err, IngestError::Unauthorized(_)), "{err:?}");
    }
    let mut tampered = body.to_vec();
    tampered[0] = b'I';
    let err = ingest_webhook(
        &w.repo,
        &w.provider,
        &w.clock,
        guild(),
        &ToyProvider::headers(SECRET, body),
        &tampered,
    )
    .await
    .expect_err("refused");
    assert!(matches!(err, IngestError::Unauthorized(VerifyError::Mismatch)), "{err:?}");
    assert!(w.repo.events().is_empty() && w.repo.entitlements().is_empty() && w.repo.all_jobs().is_empty());
}

#[tokio::test]
async fn unknown_guilds_and_unconfigured_providers_are_told_apart() {
    let w = World::new(Term::Recurring).await;
    let other = GuildId::new(1).expect("id");
    let err =
        ingest_webhook(&w.repo, &w.provider, &w.clock, other, &Headers::new(), b"").await.expect_err("404");
    assert_eq!(err, IngestError::UnknownGuild(other));
    let sepay = ToyProvider::named(ProviderName::SEPAY);
    let err =
        ingest_webhook(&w.repo, &sepay, &w.clock, guild(), &Headers::new(), b"").await.expect_err("404");
    assert_eq!(err, IngestError::NotConfigured { guild: guild(), provider: ProviderName::SEPAY });
}

#[tokio::test]
async fn an_event_whose_member_is_unknown_goes_to_the_failure_inbox() {
    let w = World::new(Term::Recurring).await;
    let mut lines = webhook("evt_1", "payment_succeeded", "sub_1", START);
    lines.push(("product", "prod_vip".to_owned()));
    let report = w.deliver(&lines).await.expect("acknowledged");
    let IngestOutcome::Failed { reason } = report.outcome else {
        panic!("expected a failure, got {report:?}")
    };
    assert!(reason.contains("which Discord member"), "{reason}");
    let inbox = w.repo.failed_events(10).await.expect("inbox");
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].last_error.as_deref(), Some(reason.as_str()));
    assert!(w.repo.entitlements().is_empty() && w.repo.all_jobs().is_empty());
}

#[tokio::test]
async fn an_unlinked_product_is_explained_in_the_failure_inbox() {
    let w = World::new(Term::Recurring).await;
    let mut lines = webhook("evt_1", "payment_succeeded", "sub_1", START);
    lines.extend([("user", "42".to_owned()), ("product", "prod_other".to_owned())]);
    let IngestOutcome::Failed { reason } = w.deliver(&lines).await.expect("acknowledged").outcome else {
        panic!("expected a failure")
    };
    assert!(reason.contains("prod_other") && reason.contains("--polar-product"), "{reason}");
}

#[tokio::test]
async fn an_unreadable_payload_is_kept_under_its_hash_and_deduplicated() {
    let w = World::new(Term::Recurring).await;
    let body = b"this is not a toy webhook";
    let headers = ToyProvider::headers(SECRET, body);
    let first =
        ingest_webhook(&w.repo, &w.provider, &w.clock, guild(), &headers, body).await.expect("stored");
    assert!(first.event_id.as_str().starts_with("sha256:"), "{first:?}");
    assert!(matches!(first.outcome, IngestOutcome::Failed { .. }));
    let again =
        ingest_webhook(&w.repo, &w.provider, &w.clock, guild(), &headers, body).await.expect("stored");
    assert_eq!(again.outcome, IngestOutcome::Duplicate);
    assert_eq!(w.repo.events().len(), 1);
}

#[tokio::test]
async fn an_ignored_event_is_stored_as_ignored() {
    let w = World::new(Term::Recurring).await;
    let report = w.deliver(&[("id", "evt_x".to_owned()), ("kind", "ignored".to_owned())]).await.expect("ok");
    assert!(matches!(report.outcome, IngestOutcome::Ignored { .. }));
    assert_eq!(w.repo.events()[0].outcome, EventOutcome::Ignored);
}

#[tokio::test]
async fn a_failure_before_commit_leaves_nothing_and_the_redelivery_applies_once() {
    let w = World::new(Term::Recurring).await;
    w.repo.fail_commits_after_event(1);
    let mut lines = webhook("evt_1", "payment_succeeded", "sub_1", START);
    lines.extend([("user", "42".to_owned()), ("product", "prod_vip".to_owned())]);
    let err = w.deliver(&lines).await.expect_err("not acknowledged");
    assert!(matches!(err, IngestError::Store(StoreError::Unavailable(_))), "{err:?}");
    assert!(w.repo.events().is_empty() && w.repo.entitlements().is_empty() && w.repo.all_jobs().is_empty());
    assert_eq!(w.deliver(&lines).await.expect("retried").outcome, IngestOutcome::Processed { jobs: 1 });
    assert_eq!(w.deliver(&lines).await.expect("again").outcome, IngestOutcome::Duplicate);
    assert_eq!((w.repo.events().len(), w.repo.entitlements().len(), w.repo.all_jobs().len()), (1, 1, 1));
}

#[tokio::test]
async fn a_commit_that_loses_a_race_is_replanned_and_a_lasting_conflict_is_not_acknowledged() {
    let w = World::new(Term::Recurring).await;
    w.repo.fail_commits_with_conflict(3);
    let outcome = w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    assert_eq!(outcome, IngestOutcome::Processed { jobs: 1 });
    assert_eq!((w.repo.events().len(), w.repo.all_jobs().len()), (1, 1));
    w.repo.fail_commits_with_conflict(usize::MAX);
    let lines = webhook("evt_2", "revoked", "sub_1", START);
    let err = w.deliver(&lines).await.expect_err("gives up");
    assert_eq!(err, IngestError::Store(StoreError::Conflict));
    w.repo.fail_commits_with_conflict(0);
    assert_eq!(w.repo.events().len(), 1, "nothing of the refused delivery is stored");
}

async fn open_checkout(w: &World, reference: &str, amount: &str) {
    let checkout = Checkout {
        reference: reference.parse().expect("ref"),
        guild: guild(),
        user: user(),
        role: role(),
        provider: ProviderName::POLAR,
        expected: Money::parse(amount, Currency::Usd).expect("amount"),
        created_at: START,
        expires_at: START + Duration::hours(1),
    };
    w.repo.put_checkout(&checkout).await.expect("checkout");
}

fn transfer(id: &str, code: &str, paid: &str, at: OffsetDateTime) -> Vec<(&'static str, String)> {
    vec![
        ("id", id.to_owned()),
        ("kind", "payment_succeeded".to_owned()),
        ("checkout", code.to_owned()),
        ("version", secs(at)),
        ("paid", format!("{paid} USD")),
    ]
}

#[tokio::test]
async fn an_underpaid_transfer_grants_nothing_and_says_why() {
    let w = World::new(Term::Fixed { days: 30 }).await;
    open_checkout(&w, "DCB123", "5.00").await;
    let report = w.deliver(&transfer("tx_1", "DCB123", "4.99", START)).await.expect("acknowledged");
    let IngestOutcome::Failed { reason } = report.outcome else { panic!("{report:?}") };
    assert!(
        reason.contains("underpaid") && reason.contains("4.99 USD") && reason.contains("5.00 USD"),
        "{reason}"
    );
    assert!(w.repo.entitlements().is_empty());
}

#[tokio::test]
async fn each_matched_transfer_extends_a_fixed_term_and_overpayment_is_accepted() {
    let w = World::new(Term::Fixed { days: 30 }).await;
    open_checkout(&w, "DCB123", "5.00").await;
    w.deliver(&transfer("tx_1", "DCB123", "5.00", START)).await.expect("first");
    // The second transfer reuses the code after the checkout expired: it extends the purchase.
    w.clock.advance(Duration::days(2));
    w.deliver(&transfer("tx_2", "DCB123", "6.00", START + Duration::days(2))).await.expect("second");
    let all = w.repo.entitlements();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].external_ref.as_str(), "DCB123");
    assert_eq!(all[0].access_until(), Some(START + Duration::days(60)));
    assert_eq!(all[0].deadline, Some(START + Duration::days(60)));
    // Underpaying a renewal is refused too.
    let report =
        w.deliver(&transfer("tx_3", "DCB123", "1.00", START + Duration::days(3))).await.expect("third");
    assert!(matches!(report.outcome, IngestOutcome::Failed { .. }), "{report:?}");
}

#[tokio::test]
async fn a_transfer_made_after_its_checkout_expired_cannot_start_a_purchase() {
    let w = World::new(Term::Fixed { days: 30 }).await;
    open_checkout(&w, "DCB123", "5.00").await;
    w.clock.advance(Duration::hours(2));
    let IngestOutcome::Failed { reason } =
        w.deliver(&transfer("tx_1", "DCB123", "5.00", START + Duration::hours(2))).await.expect("ok").outcome
    else {
        panic!("expected a failure")
    };
    assert!(reason.contains("expired"), "{reason}");
}

// ----- role sync -----

#[tokio::test]
async fn a_queued_job_yields_exactly_one_role_grant_verified_and_audited() {
    let w = World::new(Term::Recurring).await;
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    let report = w.work().await;
    assert_eq!((report.claimed, report.changed), (1, 1));
    assert!(w.has_role());
    let adds: Vec<Call> =
        w.discord.calls().into_iter().filter(|c| matches!(c, Call::AddRole { .. })).collect();
    assert_eq!(adds.len(), 1);
    let Call::AddRole { reason, .. } = &adds[0] else { unreachable!() };
    assert_eq!(reason, "Docobo: polar evt_1");
    let trail = w.repo.audit_trail(guild(), user()).await.expect("audit");
    assert_eq!(trail.iter().map(|a| a.action).collect::<Vec<_>>(), [AuditAction::RoleAdded]);
    assert_eq!(w.repo.all_jobs()[0].state, JobState::Done);
    // Nothing is left to do: a second pass claims nothing and calls nobody.
    let calls = w.discord.calls().len();
    assert_eq!(w.work().await.claimed, 0);
    assert_eq!(w.discord.calls().len(), calls);
}

#[tokio::test]
async fn a_duplicate_webhook_causes_no_further_discord_writes() {
    let w = World::new(Term::Recurring).await;
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    w.work().await;
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    w.work().await;
    assert_eq!(w.discord.writes(), 1);
}

async fn world_with_one_job(gateway_error_on: &str) -> (World, MockRoleGateway) {
    let w = World::new(Term::Recurring).await;
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    let mut mock = MockRoleGateway::new();
    match gateway_error_on {
        "read" => {
            mock.expect_member_roles().times(1).returning(|_, _| {
                Err(GatewayError::Retryable {
                    after: Some(Duration::seconds(60)),
                    why: "429 Too Many Requests".into(),
                })
            });
        }
        "add" => {
            mock.expect_member_roles().times(1).returning(|_, _| Ok(BTreeSet::new()));
            mock.expect_add_role().times(1).returning(|_, _, _, _| {
                Err(GatewayError::Forbidden {
                    why: "Missing Permissions: move the Docobo role above VIP in Server Settings → Roles"
                        .into(),
                })
            });
        }
        _ => unreachable!(),
    }
    (w, mock)
}

#[tokio::test]
async fn a_failing_gateway_leaves_the_job_retryable_on_the_backoff_schedule() {
    let (w, mock) = world_with_one_job("read").await;
    let report = run_due_jobs(&w.repo, &mock, &w.clock, LEASE, 10).await.expect("works");
    assert_eq!(report.retried, 1);
    let job = &w.repo.all_jobs()[0];
    assert_eq!((job.state, job.attempts, job.locked_until), (JobState::Pending, 1, None));
    // Retry-After was 60 s, above the first step (2.5–5 s): Discord's floor wins.
    assert!(job.run_at >= START + Duration::seconds(60), "{}", job.run_at);
    assert_eq!(job.last_error.as_deref(), Some("429 Too Many Requests"));
    // Not due yet; due after the wait, and then it converges.
    assert_eq!(w.work().await.claimed, 0);
    w.clock.advance(Duration::seconds(61));
    assert_eq!(w.work().await.changed, 1);
    assert!(w.has_role());
}

#[tokio::test]
async fn a_forbidden_change_parks_the_job_with_a_reason_an_owner_can_act_on() {
    let (w, mock) = world_with_one_job("add").await;
    let report = run_due_jobs(&w.repo, &mock, &w.clock, LEASE, 10).await.expect("works");
    assert_eq!(report.parked, 1);
    let parked = w.repo.jobs(JobState::Parked, 10).await.expect("jobs");
    assert_eq!(parked.len(), 1);
    let reason = parked[0].last_error.as_deref().unwrap_or_default();
    assert!(reason.contains("Missing Permissions") && reason.contains("move the Docobo role"), "{reason}");
    let trail = w.repo.audit_trail(guild(), user()).await.expect("audit");
    assert_eq!(trail.iter().map(|a| a.action).collect::<Vec<_>>(), [AuditAction::JobParked]);
    // A parked job is not retried by itself...
    w.clock.advance(Duration::days(1));
    assert_eq!(w.work().await.claimed, 0);
}

#[tokio::test]
async fn a_change_discord_accepts_but_does_not_show_is_retried() {
    let w = World::new(Term::Recurring).await;
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    let mut mock = MockRoleGateway::new();
    mock.expect_member_roles().times(2).returning(|_, _| Ok(BTreeSet::new()));
    mock.expect_add_role().times(1).returning(|_, _, _, _| Ok(()));
    let report = run_due_jobs(&w.repo, &mock, &w.clock, LEASE, 10).await.expect("works");
    assert_eq!((report.changed, report.retried), (0, 1));
}

#[tokio::test]
async fn jobs_give_up_into_the_parked_list_after_the_last_attempt() {
    let job = RoleJob {
        id: JobId(1),
        key: key(),
        state: JobState::Pending,
        attempts: retry::MAX_ATTEMPTS - 1,
        generation: 1,
        run_at: START,
        locked_until: None,
        last_error: None,
        cause: None,
    };
    let verdict = Verdict::Retry { after: None, error: "502 Bad Gateway".into() };
    let Settlement::Park { reason } = settlement(&job, &verdict, START) else { panic!("should park") };
    assert!(reason.contains("gave up after 20 attempts") && reason.contains("502"), "{reason}");
}

#[tokio::test]
async fn a_member_who_left_is_granted_again_when_they_rejoin() {
    let w = World::new(Term::Recurring).await;
    w.discord.leave(guild(), user());
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    let report = w.work().await;
    assert_eq!((report.claimed, report.retried, report.parked), (1, 0, 0));
    assert_eq!(w.discord.writes(), 0);
    w.discord.join(guild(), user());
    assert_eq!(reconcile::on_member_join(&w.repo, &w.clock, guild(), user()).await.expect("join"), 1);
    w.work().await;
    assert!(w.has_role());
}

#[tokio::test]
async fn a_revocation_after_the_member_left_is_done_without_retries() {
    let w = World::new(Term::Recurring).await;
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    w.work().await;
    w.discord.leave(guild(), user());
    w.sub_event("evt_2", "revoked", START + Duration::hours(1), None).await;
    let report = w.work().await;
    assert_eq!((report.claimed, report.retried, report.parked), (1, 0, 0));
    assert_eq!(w.repo.all_jobs()[0].state, JobState::Done);
}

#[tokio::test]
async fn a_job_enqueued_while_a_worker_holds_it_runs_again() {
    let w = World::new(Term::Recurring).await;
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    let claimed = w.repo.claim_due(START, LEASE, 10).await.expect("claim");
    // A revocation lands while the worker is busy with the stale picture.
    w.sub_event("evt_2", "revoked", START + Duration::hours(1), None).await;
    let settled = w.repo.settle(&claimed[0], Settlement::Done, vec![], START).await.expect("settle");
    assert_eq!(settled, Settled::Requeued);
    assert_eq!(w.repo.claim_due(START, LEASE, 10).await.expect("claim").len(), 1);
}

#[tokio::test]
async fn a_crashed_workers_job_is_taken_over_after_its_lease() {
    let w = World::new(Term::Recurring).await;
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    let first = w.repo.claim_due(START, LEASE, 10).await.expect("claim");
    assert_eq!(first.len(), 1);
    assert!(w.repo.claim_due(START + Duration::seconds(29), LEASE, 10).await.expect("claim").is_empty());
    let second = w.repo.claim_due(START + Duration::seconds(30), LEASE, 10).await.expect("claim");
    assert_eq!(second.len(), 1);
    let late = w
        .repo
        .settle(&first[0], Settlement::Done, vec![], START + Duration::seconds(31))
        .await
        .expect("settle");
    assert_eq!(late, Settled::LeaseLost);
    assert_eq!(w.repo.all_jobs()[0].state, JobState::Pending);
}

// ----- expiry and reconciliation -----

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

// ----- manual overrides -----

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
