//! The contract cases. Each takes any implementation of the repository ports and checks one
//! promise that the ports' documentation makes.

use std::collections::BTreeMap;

use docobo_core::domain::*;
use docobo_core::machine::{self, Event, EventKind, Standing, Version};
use docobo_core::ports::*;
use docobo_core::service::{ingest_webhook, run_due_jobs};
use docobo_core::testing::{FakeRoles, ManualClock, ToyProvider};
use time::{Duration, OffsetDateTime, macros::datetime};

pub use crate::relay_cases::*;

pub const T0: OffsetDateTime = datetime!(2026-11-01 00:00 UTC);
const LEASE: Duration = Duration::seconds(30);

pub fn guild() -> GuildId {
    GuildId::new(900_000_000_000_000_001).expect("id")
}
pub fn user(n: u64) -> UserId {
    UserId::new(100_000_000_000_000_000 + n).expect("id")
}
pub fn role() -> RoleId {
    RoleId::new(700_000_000_000_000_007).expect("id")
}
pub fn key(n: u64) -> RoleJobKey {
    RoleJobKey { guild: guild(), user: user(n), role: role() }
}

pub fn event(id: &str, outcome: EventOutcome) -> WebhookEvent {
    WebhookEvent {
        id: DeliveryId(0),
        provider: ProviderName::POLAR,
        guild: guild(),
        external_id: id.parse().expect("id"),
        body: format!("body of {id}").into_bytes(),
        received_at: T0,
        outcome,
        attempts: 1,
        last_error: (outcome == EventOutcome::Failed).then(|| "no member".to_owned()),
        retry_at: (outcome == EventOutcome::Deferred).then_some(T0),
    }
}

fn paid_standing(term: Term, until: OffsetDateTime) -> Standing {
    let e = Event { kind: EventKind::PaymentSucceeded { access_until: Some(until) }, version: Version(T0) };
    machine::apply(&Standing::new(term), &e, T0).expect("applies").standing
}

pub fn insert(n: u64, reference: &str, deadline: Option<OffsetDateTime>) -> EntitlementWrite {
    EntitlementWrite::Insert {
        guild: guild(),
        user: user(n),
        role: role(),
        provider: ProviderName::POLAR,
        external_ref: reference.parse().expect("ref"),
        standing: paid_standing(Term::Recurring, T0 + Duration::days(30)),
        deadline,
    }
}

pub fn commit(event: Option<WebhookEvent>, writes: Vec<EntitlementWrite>, jobs: Vec<RoleJobKey>) -> Commit {
    Commit { event, writes, jobs, cause: "polar evt".to_owned(), ..Commit::new(T0) }
}

pub async fn setup<R: SubscriptionRepo>(repo: &R) {
    repo.put_guild(&Guild::new(guild(), "Contract guild")).await.expect("guild");
    let price = Money::parse("5.00", Currency::Usd).expect("price");
    let mut vip = PaidRole::new(guild(), role(), "VIP", price, Term::Recurring).expect("role");
    vip.link(ProductLink::product(ProviderName::POLAR, "prod_vip"));
    repo.put_paid_role(&vip).await.expect("role");
}

pub async fn guilds_and_paid_roles_round_trip<R: SubscriptionRepo>(repo: &R) {
    assert_eq!(repo.guild(guild()).await.expect("read"), None);
    setup(repo).await;
    let mut g = Guild::new(guild(), "Renamed");
    g.grace = Duration::days(7);
    repo.put_guild(&g).await.expect("upsert");
    assert_eq!(repo.guild(guild()).await.expect("read"), Some(g));

    let price = Money::parse("250000", Currency::Vnd).expect("price");
    let mut vip =
        PaidRole::new(guild(), role(), "VIP (30 days)", price, Term::Fixed { days: 30 }).expect("role");
    vip.link(ProductLink::to(ProviderName::SEPAY));
    vip.link(ProductLink::product(ProviderName::POLAR, "prod_vip"));
    repo.put_paid_role(&vip).await.expect("upsert");
    assert_eq!(repo.paid_role(guild(), role()).await.expect("read"), Some(vip.clone()));
    assert_eq!(repo.paid_roles(guild()).await.expect("read"), vec![vip.clone()]);
    let by_product = |provider: ProviderName, product: &'static str, variant: Option<&'static str>| async move {
        let catalog = repo.catalog(guild(), provider).await.expect("read").expect("a guild");
        catalog.sold_as(provider, Some(product), variant).cloned()
    };
    assert_eq!(by_product(ProviderName::POLAR, "prod_vip", None).await, Some(vip.clone()));
    assert_eq!(by_product(ProviderName::POLAR, "prod_other", None).await, None);
    let shop = ProviderName::known("shop");
    assert_eq!(by_product(shop, "prod_vip", None).await, None, "another provider's product");

    // Links are generic: any provider name, a product, one variant of it; and they are replaced
    // as a whole on update.
    vip.unlink(ProviderName::POLAR);
    vip.link(ProductLink::product(shop, "42").variant("7"));
    repo.put_paid_role(&vip).await.expect("upsert");
    assert_eq!(repo.paid_role(guild(), role()).await.expect("read"), Some(vip.clone()));
    assert_eq!(by_product(ProviderName::POLAR, "prod_vip", None).await, None, "unlinked");
    assert_eq!(by_product(shop, "42", Some("7")).await, Some(vip.clone()));
    assert_eq!(by_product(shop, "42", Some("8")).await, None, "another variant");
    let other = GuildId::new(5).expect("id");
    assert!(repo.paid_roles(other).await.expect("read").is_empty());
}

pub async fn credentials_round_trip<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    assert_eq!(repo.credentials(guild(), ProviderName::SEPAY).await.expect("read"), None);
    let mut creds = ProviderCredentials::new(Secret::new("sepay-api-key"));
    creds.api_token = Some(Secret::new("token"));
    creds.settings =
        BTreeMap::from([("bank".to_owned(), "MBBank".to_owned()), ("account".to_owned(), "0123".to_owned())]);
    repo.put_credentials(guild(), ProviderName::SEPAY, &creds).await.expect("store");
    assert_eq!(repo.credentials(guild(), ProviderName::SEPAY).await.expect("read"), Some(creds.clone()));
    let rotated = ProviderCredentials::new(Secret::new("rotated"));
    repo.put_credentials(guild(), ProviderName::SEPAY, &rotated).await.expect("replace");
    assert_eq!(repo.credentials(guild(), ProviderName::SEPAY).await.expect("read"), Some(rotated));
}

pub async fn checkout_references_are_unique<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    let c = Checkout {
        reference: "DCB7K2Q".parse().expect("ref"),
        guild: guild(),
        user: user(1),
        role: role(),
        provider: ProviderName::SEPAY,
        expected: Money::parse("250000", Currency::Vnd).expect("amount"),
        created_at: T0,
        expires_at: T0 + Duration::hours(1),
    };
    repo.put_checkout(&c).await.expect("store");
    assert!(matches!(repo.put_checkout(&c).await, Err(StoreError::AlreadyExists(_))));
    assert_eq!(repo.checkout(guild(), &c.reference).await.expect("read"), Some(c));
    assert_eq!(repo.checkout(guild(), &"OTHER".parse().expect("ref")).await.expect("read"), None);
}

pub async fn a_commit_writes_event_entitlement_and_job_together<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    let e = event("evt_1", EventOutcome::Processed);
    let recorded = repo.commit(commit(Some(e.clone()), vec![insert(1, "sub_1", None)], vec![key(1)])).await;
    assert_eq!(recorded, Ok(Recorded::Committed));
    let stored = repo.webhook_event(ProviderName::POLAR, guild(), &e.external_id).await.expect("read");
    let stored = stored.expect("recorded");
    assert!(stored.id > DeliveryId(0), "the store assigns an id");
    assert_eq!(stored, WebhookEvent { id: stored.id, ..e });
    let found =
        repo.entitlement(ProviderName::POLAR, guild(), &"sub_1".parse().expect("ref")).await.expect("read");
    let found = found.expect("inserted");
    assert_eq!((found.user, found.revision, found.status()), (user(1), 1, machine::Status::Active));
    assert_eq!(found.created_at, T0);
    assert_eq!(repo.entitlements_for(key(1)).await.expect("read"), vec![found.clone()]);
    assert_eq!(repo.member_entitlements(guild(), user(1)).await.expect("read"), vec![found.clone()]);
    assert_eq!(repo.guild_entitlements(guild()).await.expect("read"), vec![found]);
    let jobs = repo.jobs(JobState::Pending, 10).await.expect("read");
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].key, jobs[0].run_at, jobs[0].cause.as_deref()), (key(1), T0, Some("polar evt")));
}

pub async fn a_repeated_event_id_is_a_duplicate_and_writes_nothing<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    repo.commit(commit(Some(event("evt_1", EventOutcome::Processed)), vec![], vec![])).await.expect("first");
    let again =
        commit(Some(event("evt_1", EventOutcome::Failed)), vec![insert(1, "sub_1", None)], vec![key(1)]);
    assert_eq!(repo.commit(again).await, Ok(Recorded::Duplicate));
    assert!(repo.guild_entitlements(guild()).await.expect("read").is_empty());
    assert!(repo.jobs(JobState::Pending, 10).await.expect("read").is_empty());
    let stored =
        repo.webhook_event(ProviderName::POLAR, guild(), &"evt_1".parse().expect("id")).await.expect("read");
    assert_eq!(stored.map(|e| e.outcome), Some(EventOutcome::Processed), "the first record stays");
    // The same id from another provider or guild is a different event.
    let mut sepay = event("evt_1", EventOutcome::Processed);
    sepay.provider = ProviderName::SEPAY;
    assert_eq!(repo.commit(commit(Some(sepay), vec![], vec![])).await, Ok(Recorded::Committed));
}

pub async fn a_failing_write_rolls_back_the_whole_commit<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    // The event is recorded first; the stale update after it fails; nothing may remain.
    let stale = EntitlementWrite::Update {
        id: EntitlementId(999_999),
        expected_revision: 1,
        standing: Standing::new(Term::Recurring),
        deadline: None,
    };
    let c = commit(
        Some(event("evt_1", EventOutcome::Processed)),
        vec![insert(1, "sub_1", None), stale],
        vec![key(1)],
    );
    assert_eq!(repo.commit(c).await, Err(StoreError::Conflict));
    assert_eq!(
        repo.webhook_event(ProviderName::POLAR, guild(), &"evt_1".parse().expect("id")).await.expect("read"),
        None
    );
    assert!(repo.guild_entitlements(guild()).await.expect("read").is_empty());
    assert!(repo.jobs(JobState::Pending, 10).await.expect("read").is_empty());
    // The provider's retry then succeeds, once.
    let retry =
        commit(Some(event("evt_1", EventOutcome::Processed)), vec![insert(1, "sub_1", None)], vec![key(1)]);
    assert_eq!(repo.commit(retry).await, Ok(Recorded::Committed));
    let again =
        commit(Some(event("evt_1", EventOutcome::Processed)), vec![insert(1, "sub_1", None)], vec![key(1)]);
    assert_eq!(repo.commit(again).await, Ok(Recorded::Duplicate));
    assert_eq!(repo.guild_entitlements(guild()).await.expect("read").len(), 1);
}

pub async fn concurrent_inserts_of_one_purchase_conflict<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    repo.commit(commit(
        Some(event("evt_1", EventOutcome::Processed)),
        vec![insert(1, "sub_1", None)],
        vec![],
    ))
    .await
    .expect("first");
    let second =
        commit(Some(event("evt_2", EventOutcome::Processed)), vec![insert(1, "sub_1", None)], vec![]);
    assert_eq!(repo.commit(second).await, Err(StoreError::Conflict));
    assert_eq!(
        repo.webhook_event(ProviderName::POLAR, guild(), &"evt_2".parse().expect("id")).await.expect("read"),
        None
    );
}

pub async fn stale_revisions_conflict_and_updates_bump_the_revision<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    repo.commit(commit(None, vec![insert(1, "sub_1", None)], vec![])).await.expect("insert");
    let e = repo.entitlements_for(key(1)).await.expect("read").remove(0);
    let cancelled = machine::apply(
        &e.standing,
        &Event {
            kind: EventKind::CancelScheduled { access_until: T0 + Duration::days(30) },
            version: Version(T0 + Duration::hours(1)),
        },
        T0,
    )
    .expect("applies")
    .standing;
    let deadline = Some(T0 + Duration::days(30));
    let update = |revision| EntitlementWrite::Update {
        id: e.id,
        expected_revision: revision,
        standing: cancelled.clone(),
        deadline,
    };
    let later = Commit { at: T0 + Duration::hours(1), ..commit(None, vec![update(1)], vec![]) };
    assert_eq!(repo.commit(later).await, Ok(Recorded::Committed));
    let after = repo.entitlements_for(key(1)).await.expect("read").remove(0);
    assert_eq!((after.revision, after.status(), after.deadline), (2, machine::Status::Cancelled, deadline));
    assert_eq!((after.created_at, after.updated_at), (T0, T0 + Duration::hours(1)));
    assert_eq!(repo.commit(commit(None, vec![update(1)], vec![])).await, Err(StoreError::Conflict));
}

pub async fn due_entitlements_come_oldest_deadline_first<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    let writes = vec![
        insert(1, "late", Some(T0 + Duration::days(3))),
        insert(2, "never", None),
        insert(3, "early", Some(T0 + Duration::days(1))),
        insert(4, "future", Some(T0 + Duration::days(9))),
    ];
    repo.commit(commit(None, writes, vec![])).await.expect("insert");
    let due = repo.due_entitlements(T0 + Duration::days(3), 10).await.expect("read");
    let refs: Vec<&str> = due.iter().map(|e| e.external_ref.as_str()).collect();
    assert_eq!(refs, ["early", "late"]);
    assert_eq!(repo.due_entitlements(T0 + Duration::days(3), 1).await.expect("read").len(), 1);
    assert!(repo.due_entitlements(T0, 10).await.expect("read").is_empty());
}

pub async fn the_failure_inbox_lists_failed_events_only<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    for (id, outcome) in
        [("a", EventOutcome::Processed), ("b", EventOutcome::Failed), ("c", EventOutcome::Ignored)]
    {
        repo.commit(commit(Some(event(id, outcome)), vec![], vec![])).await.expect("record");
    }
    let failed = repo.failed_events(10).await.expect("read");
    assert_eq!(failed.len(), 1);
    assert_eq!((failed[0].external_id.as_str(), failed[0].last_error.as_deref()), ("b", Some("no member")));
    assert_eq!(failed[0].body, b"body of b");
}

/// L13: the admin inbox pages newest first, so new failures are never hidden behind old ones.
pub async fn recent_events_page_newest_first_without_gaps<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    for n in 0..5 {
        let outcome = if n % 2 == 0 { EventOutcome::Failed } else { EventOutcome::Processed };
        repo.commit(commit(Some(event(&format!("e{n}"), outcome)), vec![], vec![])).await.expect("record");
    }
    let ids = |page: &[docobo_core::domain::WebhookEvent]| {
        page.iter().map(|e| e.external_id.as_str().to_owned()).collect::<Vec<_>>()
    };
    let first = repo.recent_events(None, None, 2).await.expect("read");
    assert_eq!(ids(&first), ["e4", "e3"]);
    let second = repo.recent_events(None, Some(first[1].id), 2).await.expect("read");
    assert_eq!(ids(&second), ["e2", "e1"]);
    let failed = repo.recent_events(Some(EventOutcome::Failed), Some(second[0].id), 10).await.expect("read");
    assert_eq!(ids(&failed), ["e0"]);
    // One guild's, newest first, without bodies.
    let elsewhere =
        WebhookEvent { guild: GuildId::new(5).expect("id"), ..event("x1", EventOutcome::Processed) };
    repo.commit(commit(Some(elsewhere), vec![], vec![])).await.expect("record");
    let listed = repo.guild_deliveries(guild(), 3).await.expect("read");
    assert_eq!(ids(&listed), ["e4", "e3", "e2"]);
    assert!(listed.iter().all(|e| e.body.is_empty() && e.guild == guild()));
    assert_eq!((listed[1].outcome, listed[1].attempts), (first[1].outcome, first[1].attempts));
    assert!(!first[0].body.is_empty(), "the full read keeps the body");
}

/// L13: a job is found by its id in any state, without scanning a listing.
pub async fn a_job_is_found_by_id_and_by_key<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    repo.enqueue(&[key(1)], "c", T0).await.expect("enqueue");
    let claimed = repo.claim_due(T0, Duration::seconds(30), 1).await.expect("claim").remove(0);
    repo.settle(&claimed, Settlement::Park { reason: "above the bot".into() }, vec![], T0)
        .await
        .expect("settle");
    let found = repo.job(claimed.id).await.expect("read").expect("exists");
    assert_eq!((found.key, found.state), (key(1), JobState::Parked));
    assert!(repo.job(docobo_core::domain::JobId(claimed.id.0 + 1000)).await.expect("read").is_none());
    assert_eq!(repo.job_for(key(1)).await.expect("read"), Some(found));
    assert_eq!(repo.job_for(key(2)).await.expect("read"), None);
}

pub async fn enqueue_keeps_one_row_per_key<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    repo.enqueue(&[key(1)], "first", T0 + Duration::minutes(5)).await.expect("enqueue");
    repo.enqueue(&[key(1)], "second", T0).await.expect("enqueue");
    repo.enqueue(&[key(1)], "third", T0 + Duration::minutes(9)).await.expect("enqueue");
    let jobs = repo.jobs(JobState::Pending, 10).await.expect("read");
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].run_at, jobs[0].generation, jobs[0].cause.as_deref()), (T0, 3, Some("third")));
    repo.commit(commit(None, vec![], vec![key(1), key(2)])).await.expect("commit");
    assert_eq!(repo.jobs(JobState::Pending, 10).await.expect("read").len(), 2);
}

pub async fn claims_lease_jobs_and_expired_leases_are_taken_over<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    repo.enqueue(&[key(1), key(2)], "test", T0).await.expect("enqueue");
    repo.enqueue(&[key(3)], "later", T0 + Duration::minutes(1)).await.expect("enqueue");
    let first = repo.claim_due(T0, LEASE, 10).await.expect("claim");
    assert_eq!(first.len(), 2, "only due jobs");
    assert!(first.iter().all(|j| j.locked_until == Some(T0 + LEASE)));
    assert!(repo.claim_due(T0 + Duration::seconds(29), LEASE, 10).await.expect("claim").is_empty());
    let limited = repo.claim_due(T0 + LEASE, Duration::minutes(5), 1).await.expect("claim");
    assert_eq!(limited.len(), 1, "the limit holds");
    let rest = repo.claim_due(T0 + Duration::minutes(1), LEASE, 10).await.expect("claim");
    assert_eq!(rest.len(), 2, "the other expired lease and the newly due job");
}

pub async fn settling_applies_requeues_or_drops_by_lease_and_generation<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    repo.enqueue(&[key(1)], "test", T0).await.expect("enqueue");
    let audit = |action| AuditEntry {
        guild: guild(),
        user: user(1),
        role: role(),
        action,
        reason: "Docobo: test".to_owned(),
        cause: Some("test".to_owned()),
        at: T0,
    };
    // Applied.
    let claimed = repo.claim_due(T0, LEASE, 10).await.expect("claim").remove(0);
    let s = repo.settle(&claimed, Settlement::Done, vec![audit(AuditAction::RoleAdded)], T0).await;
    assert_eq!(s, Ok(Settled::Applied));
    assert_eq!(repo.jobs(JobState::Done, 10).await.expect("read").len(), 1);
    // Requeued: enqueued again while a worker held it.
    repo.enqueue(&[key(1)], "again", T0).await.expect("enqueue");
    let claimed = repo.claim_due(T0, LEASE, 10).await.expect("claim").remove(0);
    repo.enqueue(&[key(1)], "meanwhile", T0 + Duration::seconds(1)).await.expect("enqueue");
    let s = repo.settle(&claimed, Settlement::Done, vec![], T0 + Duration::seconds(2)).await;
    assert_eq!(s, Ok(Settled::Requeued));
    let pending = repo.jobs(JobState::Pending, 10).await.expect("read");
    assert_eq!((pending.len(), pending[0].locked_until), (1, None));
    // Lease lost: another worker took the job over; the late settlement changes nothing but the
    // audit entry (what happened on Discord did happen) is kept.
    let slow = repo.claim_due(T0 + Duration::seconds(2), LEASE, 10).await.expect("claim").remove(0);
    let fast = repo.claim_due(T0 + Duration::minutes(5), LEASE, 10).await.expect("claim").remove(0);
    let s = repo
        .settle(&slow, Settlement::Park { reason: "late".into() }, vec![audit(AuditAction::RoleRemoved)], T0)
        .await;
    assert_eq!(s, Ok(Settled::LeaseLost));
    assert!(repo.jobs(JobState::Parked, 10).await.expect("read").is_empty());
    assert_eq!(repo.settle(&fast, Settlement::Done, vec![], T0).await, Ok(Settled::Applied));
    let trail: Vec<AuditAction> =
        repo.audit_trail(guild(), user(1)).await.expect("read").iter().map(|a| a.action).collect();
    assert_eq!(trail, [AuditAction::RoleAdded, AuditAction::RoleRemoved]);
}

pub async fn retry_and_park_are_recorded<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    repo.enqueue(&[key(1)], "test", T0).await.expect("enqueue");
    let claimed = repo.claim_due(T0, LEASE, 10).await.expect("claim").remove(0);
    let retry = Settlement::Retry { at: T0 + Duration::seconds(40), error: "429".to_owned() };
    assert_eq!(repo.settle(&claimed, retry, vec![], T0).await, Ok(Settled::Applied));
    let job = repo.jobs(JobState::Pending, 10).await.expect("read").remove(0);
    assert_eq!(
        (job.attempts, job.run_at, job.last_error.as_deref()),
        (1, T0 + Duration::seconds(40), Some("429"))
    );
    assert!(repo.claim_due(T0 + Duration::seconds(39), LEASE, 10).await.expect("claim").is_empty());
    let claimed = repo.claim_due(T0 + Duration::seconds(40), LEASE, 10).await.expect("claim").remove(0);
    let park = Settlement::Park { reason: "Missing Permissions".to_owned() };
    assert_eq!(repo.settle(&claimed, park, vec![], T0).await, Ok(Settled::Applied));
    let parked = repo.jobs(JobState::Parked, 10).await.expect("read");
    assert_eq!(parked[0].last_error.as_deref(), Some("Missing Permissions"));
    assert!(repo.claim_due(T0 + Duration::days(1), LEASE, 10).await.expect("claim").is_empty());
    // New facts revive a parked job, with a clean slate.
    repo.enqueue(&[key(1)], "member rejoined", T0 + Duration::days(1)).await.expect("enqueue");
    let revived = repo.jobs(JobState::Pending, 10).await.expect("read").remove(0);
    assert_eq!((revived.attempts, revived.last_error), (0, None));
}

pub async fn next_due_names_the_earliest_run_or_lease_end<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    assert_eq!(repo.next_due().await, Ok(None));
    repo.enqueue(&[key(1)], "a", T0 + Duration::minutes(10)).await.expect("enqueue");
    repo.enqueue(&[key(2)], "b", T0).await.expect("enqueue");
    assert_eq!(repo.next_due().await, Ok(Some(T0)));
    repo.claim_due(T0, LEASE, 1).await.expect("claim");
    assert_eq!(repo.next_due().await, Ok(Some(T0 + LEASE)));
}

pub async fn a_webhook_flows_through_to_the_role<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    repo.put_credentials(guild(), ProviderName::POLAR, &ProviderCredentials::new(Secret::new("s3cret")))
        .await
        .expect("creds");
    let clock = ManualClock::new(T0);
    let provider = ToyProvider::named(ProviderName::POLAR);
    let body = format!(
        "id=evt_1\nkind=payment_succeeded\nref=sub_1\nversion={}\nuser={}\nproduct=prod_vip\nuntil={}\n",
        T0.unix_timestamp(),
        user(1),
        (T0 + Duration::days(30)).unix_timestamp()
    );
    let headers = ToyProvider::headers("s3cret", body.as_bytes());
    let report =
        ingest_webhook(repo, &provider, &clock, guild(), &headers, body.as_bytes()).await.expect("ingest");
    assert_eq!(report.outcome, docobo_core::service::IngestOutcome::Processed { jobs: 1 });
    let discord = FakeRoles::new();
    discord.join(guild(), user(1));
    let work = run_due_jobs(repo, &discord, &clock, LEASE, 10).await.expect("work");
    assert_eq!(work.changed, 1);
    assert!(discord.roles(guild(), user(1)).is_some_and(|r| r.contains(&role())));
    let again =
        ingest_webhook(repo, &provider, &clock, guild(), &headers, body.as_bytes()).await.expect("ingest");
    assert_eq!(again.outcome, docobo_core::service::IngestOutcome::Duplicate);
}

pub async fn setup_progress_is_kept_per_guild<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    assert_eq!(repo.setup(guild()).await.expect("read"), None);
    let mut progress =
        SetupProgress { guild: guild(), user: user(1), step: 1, draft: "{}".to_owned(), updated_at: T0 };
    repo.put_setup(&progress).await.expect("store");
    progress.step = 2;
    progress.draft = r#"{"roles":["7"]}"#.to_owned();
    repo.put_setup(&progress).await.expect("replace");
    assert_eq!(repo.setup(guild()).await.expect("read"), Some(progress));
    repo.clear_setup(guild()).await.expect("clear");
    assert_eq!(repo.setup(guild()).await.expect("read"), None);
    repo.clear_setup(guild()).await.expect("clearing twice is fine");
}

pub async fn guilds_are_listed_and_roles_withdrawn<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    let other = Guild::new(GuildId::new(5).expect("id"), "Other");
    repo.put_guild(&other).await.expect("guild");
    let ids: Vec<GuildId> = repo.guilds().await.expect("read").iter().map(|g| g.id).collect();
    assert_eq!(ids, [other.id, guild()]);
    assert!(repo.remove_paid_role(guild(), role()).await.expect("remove"));
    assert!(!repo.remove_paid_role(guild(), role()).await.expect("again"));
    assert_eq!(repo.paid_role(guild(), role()).await.expect("read"), None);
}

pub async fn a_failed_event_is_replayed_exactly_once<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    repo.commit(commit(Some(event("evt_f", EventOutcome::Failed)), vec![], vec![])).await.expect("record");
    repo.commit(commit(Some(event("evt_ok", EventOutcome::Processed)), vec![], vec![]))
        .await
        .expect("record");
    let failed = repo.failed_events(10).await.expect("inbox").remove(0);
    assert_eq!(repo.webhook_event_by_id(failed.id).await.expect("read").as_ref(), Some(&failed));
    assert_eq!(repo.events(None, 10).await.expect("read").len(), 2);
    let fixed =
        WebhookEvent { outcome: EventOutcome::Processed, last_error: None, attempts: 2, ..failed.clone() };
    let replay =
        Commit { replay: true, ..commit(Some(fixed.clone()), vec![insert(1, "sub_1", None)], vec![key(1)]) };
    assert_eq!(repo.commit(replay.clone()).await, Ok(Recorded::Committed));
    let stored = repo.webhook_event_by_id(failed.id).await.expect("read").expect("kept");
    assert_eq!((stored.outcome, stored.attempts, stored.last_error), (EventOutcome::Processed, 2, None));
    assert_eq!(repo.commit(replay).await, Ok(Recorded::Duplicate), "a second replay applies nothing");
    assert_eq!(repo.guild_entitlements(guild()).await.expect("read").len(), 1);
    assert!(repo.events(Some(EventOutcome::Failed), 10).await.expect("read").is_empty());
    let processed = repo.events(Some(EventOutcome::Processed), 10).await.expect("read");
    let ok = processed.iter().find(|e| e.external_id.as_str() == "evt_ok").expect("stored");
    let replay_ok = Commit { replay: true, ..commit(Some(ok.clone()), vec![], vec![]) };
    assert_eq!(repo.commit(replay_ok).await, Ok(Recorded::Duplicate), "only failures are replayed");
}

pub async fn deferred_deliveries_come_due_are_put_off_and_resolve_once<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    for (id, at) in [("evt_later", T0 + Duration::minutes(5)), ("evt_now", T0)] {
        let deferred = WebhookEvent { retry_at: Some(at), ..event(id, EventOutcome::Deferred) };
        repo.commit(commit(Some(deferred), vec![], vec![])).await.expect("record");
    }
    repo.commit(commit(Some(event("evt_done", EventOutcome::Processed)), vec![], vec![]))
        .await
        .expect("record");
    let due = repo.due_deferred(T0, 10).await.expect("due");
    assert_eq!(due.iter().map(|e| e.external_id.as_str()).collect::<Vec<_>>(), ["evt_now"]);
    let later = repo.due_deferred(T0 + Duration::minutes(5), 10).await.expect("due");
    assert_eq!(later.iter().map(|e| e.external_id.as_str()).collect::<Vec<_>>(), ["evt_now", "evt_later"]);

    let now = due[0].clone();
    assert!(repo.defer_again(now.id, T0 + Duration::seconds(10), "api down").await.expect("defer"));
    let stored = repo.webhook_event_by_id(now.id).await.expect("read").expect("kept");
    assert_eq!(
        (stored.attempts, stored.retry_at, stored.last_error.as_deref()),
        (2, Some(T0 + Duration::seconds(10)), Some("api down"))
    );
    assert!(repo.due_deferred(T0, 10).await.expect("due").is_empty(), "put off");

    let resolved =
        WebhookEvent { outcome: EventOutcome::Processed, last_error: None, retry_at: None, ..stored };
    let apply = Commit {
        replay: true,
        ..commit(Some(resolved.clone()), vec![insert(1, "sub_1", None)], vec![key(1)])
    };
    assert_eq!(repo.commit(apply.clone()).await, Ok(Recorded::Committed));
    assert_eq!(repo.commit(apply).await, Ok(Recorded::Duplicate), "a second resolver applies nothing");
    assert!(!repo.defer_again(resolved.id, T0, "late").await.expect("defer"), "settled rows stay settled");
    let stored = repo.webhook_event_by_id(resolved.id).await.expect("read").expect("kept");
    assert_eq!((stored.outcome, stored.retry_at, stored.attempts), (EventOutcome::Processed, None, 3));
    assert_eq!(repo.guild_entitlements(guild()).await.expect("read").len(), 1);
}

pub async fn a_commit_writes_its_audit_entries_only_when_it_lands<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    let audit = AuditEntry {
        guild: guild(),
        user: user(1),
        role: role(),
        action: AuditAction::ManualGrant,
        reason: "comped".to_owned(),
        cause: Some("manual grant".to_owned()),
        at: T0,
    };
    let granted =
        Commit { audit: vec![audit.clone()], ..commit(None, vec![insert(1, "manual-1", None)], vec![]) };
    assert_eq!(repo.commit(granted.clone()).await, Ok(Recorded::Committed));
    assert_eq!(repo.audit_trail(guild(), user(1)).await.expect("read"), vec![audit.clone()]);
    let later = AuditEntry { user: user(2), at: T0 + Duration::seconds(1), ..audit.clone() };
    let second =
        Commit { audit: vec![later.clone()], ..commit(None, vec![insert(2, "manual-2", None)], vec![]) };
    assert_eq!(repo.commit(second).await, Ok(Recorded::Committed));
    assert_eq!(repo.recent_audit(guild(), 10).await.expect("read"), vec![later.clone(), audit.clone()]);
    assert_eq!(repo.recent_audit(guild(), 1).await.expect("read"), vec![later]);
    let elsewhere = GuildId::new(guild().get() + 1).expect("id");
    assert!(repo.recent_audit(elsewhere, 10).await.expect("read").is_empty());
    // The same insert again conflicts: nothing of it, its audit entry included, is kept.
    assert_eq!(repo.commit(granted).await, Err(StoreError::Conflict));
    assert_eq!(repo.audit_trail(guild(), user(1)).await.expect("read").len(), 1);
    assert_eq!(repo.recent_audit(guild(), 10).await.expect("read").len(), 2);
}

/// Member 1's payment of 5.00 USD for the paid role, `refunded` minor units of it refunded.
fn paid(reference: &str, refunded: i64, at: OffsetDateTime) -> Payment {
    let usd = |minor| Money { minor, currency: Currency::Usd };
    Payment {
        provider: ProviderName::POLAR,
        guild: guild(),
        reference: reference.parse().expect("ref"),
        user: Some(user(1)),
        role: Some(role()),
        amount: usd(500),
        refunded: usd(refunded),
        paid_at: at,
    }
}

pub async fn payments_are_kept_once_per_reference_and_refunds_only_rise<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    let with = |payments: Vec<Payment>| Commit { payments, ..commit(None, vec![], vec![]) };
    repo.commit(with(vec![paid("order_2", 0, T0 + Duration::days(1))])).await.expect("commits");
    repo.commit(with(vec![paid("order_1", 0, T0)])).await.expect("commits");
    repo.commit(with(vec![paid("order_1", 200, T0)])).await.expect("commits");
    repo.commit(with(vec![paid("order_1", 0, T0)])).await.expect("commits");
    let stored = repo.payments(guild()).await.expect("reads");
    let seen: Vec<(&str, i64)> = stored.iter().map(|p| (p.reference.as_str(), p.refunded.minor)).collect();
    assert_eq!(seen, [("order_1", 200), ("order_2", 0)], "oldest first, one row per reference");
    assert_eq!(stored[0], paid("order_1", 200, T0));
    let other = GuildId::new(5).expect("id");
    assert!(repo.payments(other).await.expect("reads").is_empty());
}

pub async fn a_commit_that_names_a_job_payment_or_notice_twice_writes_each_once<R: SubscriptionRepo>(
    repo: &R,
) {
    setup(repo).await;
    let soon = notice(1, NoticeKind::EndingSoon, T0);
    let twice = Commit {
        payments: vec![paid("order_1", 0, T0), paid("order_1", 200, T0)],
        notices: vec![soon.clone(), soon],
        ..commit(
            Some(event("evt_1", EventOutcome::Processed)),
            vec![insert(1, "sub_1", None)],
            vec![key(1), key(1)],
        )
    };
    assert_eq!(repo.commit(twice).await, Ok(Recorded::Committed));
    let jobs = repo.jobs(JobState::Pending, 10).await.expect("reads");
    assert_eq!(jobs.iter().map(|j| j.key).collect::<Vec<_>>(), [key(1)]);
    let refunds: Vec<i64> =
        repo.payments(guild()).await.expect("reads").iter().map(|p| p.refunded.minor).collect();
    assert_eq!(refunds, [200], "one row, the higher refund");
    assert_eq!(repo.claim_notices(T0, LEASE, 10).await.expect("claims").len(), 1);
    assert_eq!(repo.guild_entitlements(guild()).await.expect("reads").len(), 1);
}

pub async fn the_guild_revision_moves_with_every_purchase_and_payment_change<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    let mut seen = vec![repo.guild_revision(guild()).await.expect("reads")];
    let mut moved = async |what: &str| {
        let now = repo.guild_revision(guild()).await.expect("reads");
        assert!(!seen.contains(&now), "{what}: {now:?} was seen before: {seen:?}");
        seen.push(now);
    };
    repo.commit(commit(None, vec![insert(1, "sub_1", None)], vec![])).await.expect("commits");
    moved("a purchase").await;
    let e = repo.guild_entitlements(guild()).await.expect("reads").remove(0);
    let update = EntitlementWrite::Update {
        id: e.id,
        expected_revision: e.revision,
        standing: e.standing.clone(),
        deadline: None,
    };
    repo.commit(commit(None, vec![update], vec![])).await.expect("commits");
    moved("an update").await;
    repo.commit(Commit { payments: vec![paid("order_1", 0, T0)], ..commit(None, vec![], vec![]) })
        .await
        .expect("commits");
    moved("a payment").await;
    repo.commit(Commit { payments: vec![paid("order_1", 200, T0)], ..commit(None, vec![], vec![]) })
        .await
        .expect("commits");
    moved("a refund").await;
    let before = repo.guild_revision(guild()).await.expect("reads");
    let other = GuildId::new(5).expect("id");
    assert_eq!(repo.guild_revision(other).await.expect("reads"), GuildRevision::default());
    assert_eq!(repo.guild_revision(guild()).await.expect("reads"), before, "reading changes nothing");
}

pub async fn guild_and_credentials_are_read_together<R: SubscriptionRepo>(repo: &R) {
    let polar = ProviderName::POLAR;
    assert_eq!(repo.guild_and_credentials(guild(), polar).await, Ok((None, None)));
    setup(repo).await;
    let mut stored = Guild::new(guild(), "Contract guild");
    stored.grace = Duration::days(5);
    repo.put_guild(&stored).await.expect("guild");
    assert_eq!(repo.guild_and_credentials(guild(), polar).await, Ok((Some(stored.clone()), None)));
    let mut creds = ProviderCredentials::new(Secret::new("whsec_joined"));
    creds.api_token = Some(Secret::new("polar_oat_joined"));
    repo.put_credentials(guild(), polar, &creds).await.expect("creds");
    let sepay = ProviderCredentials::new(Secret::new("sepay-key"));
    repo.put_credentials(guild(), ProviderName::SEPAY, &sepay).await.expect("creds");
    assert_eq!(repo.guild_and_credentials(guild(), polar).await, Ok((Some(stored.clone()), Some(creds))));
    assert_eq!(
        repo.guild_and_credentials(guild(), ProviderName::SEPAY).await,
        Ok((Some(stored), Some(sepay)))
    );
    let other = GuildId::new(5).expect("id");
    repo.put_credentials(other, polar, &ProviderCredentials::new(Secret::new("x"))).await.expect("creds");
    assert_eq!(repo.guild_and_credentials(other, polar).await, Ok((None, None)), "no guild, no credentials");
}

/// Ingest finds a purchase's entitlement by the provider's reference, and an adapter may read it
/// another way than the rest (the SQLite file does, without sqlx): every field comes back as
/// written, the same as read by id.
pub async fn an_entitlement_found_by_its_reference_is_the_one_stored<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    let deadline = T0 + Duration::days(33);
    let first = commit(
        Some(event("evt_ref", EventOutcome::Processed)),
        vec![insert(4, "sub_ref", Some(deadline))],
        vec![],
    );
    repo.commit(first).await.expect("commit");
    let reference = "sub_ref".parse().expect("ref");
    let found =
        repo.entitlement(ProviderName::POLAR, guild(), &reference).await.expect("read").expect("stored");
    assert_eq!((found.guild, found.user, found.role), (guild(), user(4), role()));
    assert_eq!((found.provider, &found.external_ref), (ProviderName::POLAR, &reference));
    assert_eq!(found.standing, paid_standing(Term::Recurring, T0 + Duration::days(30)));
    assert_eq!((found.deadline, found.created_at, found.updated_at), (Some(deadline), T0, T0));
    assert_eq!(repo.entitlement_by_id(found.id).await.expect("read"), Some(found.clone()));
    let other = "sub_other".parse().expect("ref");
    assert_eq!(repo.entitlement(ProviderName::POLAR, guild(), &other).await.expect("read"), None);
    assert_eq!(repo.entitlement(ProviderName::SEPAY, guild(), &reference).await.expect("read"), None);
}

/// Ingest plans a webhook on the kept catalog without reading it first, and its commit names the
/// revision that catalog was read at: once a catalog write moves it, the commit is refused and
/// writes nothing, even for a delivery recorded before (it may have been verified under replaced
/// credentials).
pub async fn a_commit_planned_on_a_catalog_that_moved_is_refused_and_writes_nothing<R: SubscriptionRepo>(
    repo: &R,
) {
    let polar = ProviderName::POLAR;
    setup(repo).await;
    let read = repo.catalog(guild(), polar).await.expect("read").expect("a guild");
    let revision = read.revision.expect("the adapter keeps a revision");
    let kept = repo.kept_catalog(guild(), polar).await.expect("read").expect("kept once read");
    assert_eq!(kept.revision, Some(revision));
    let planned = |id: &str, n: u64, revision: u64| Commit {
        catalog: Some((guild(), revision)),
        ..commit(
            Some(event(id, EventOutcome::Processed)),
            vec![insert(n, &format!("sub_{n}"), None)],
            vec![key(n)],
        )
    };
    assert_eq!(repo.commit(planned("evt_1", 1, revision)).await, Ok(Recorded::Committed), "unmoved");

    repo.put_credentials(guild(), polar, &ProviderCredentials::new(Secret::new("new"))).await.expect("creds");
    assert_eq!(repo.commit(planned("evt_2", 2, revision)).await, Err(StoreError::Conflict));
    assert_eq!(
        repo.commit(planned("evt_1", 1, revision)).await,
        Err(StoreError::Conflict),
        "a duplicate too"
    );
    // A commit naming a job twice is written a statement at a time on PostgreSQL: refused there too.
    let twice = Commit { jobs: vec![key(2), key(2)], ..planned("evt_2", 2, revision) };
    assert_eq!(repo.commit(twice).await, Err(StoreError::Conflict), "a statement at a time");
    let evt_2 = "evt_2".parse().expect("id");
    assert_eq!(repo.webhook_event(polar, guild(), &evt_2).await.expect("read"), None);
    let sub_2 = "sub_2".parse().expect("ref");
    assert_eq!(repo.entitlement(polar, guild(), &sub_2).await.expect("read"), None);
    assert_eq!(repo.job_for(key(2)).await.expect("read"), None);

    let current = repo.catalog(guild(), polar).await.expect("read").expect("a guild").revision;
    let current = current.expect("a revision");
    assert_ne!(current, revision, "a catalog write moves the revision");
    assert_eq!(
        repo.kept_catalog(guild(), polar).await.expect("read").and_then(|c| c.revision),
        Some(current)
    );
    assert_eq!(repo.commit(planned("evt_2", 2, current)).await, Ok(Recorded::Committed));
    assert_eq!(repo.commit(planned("evt_1", 1, current)).await, Ok(Recorded::Duplicate));
}

/// Ingest reads the catalog once per delivery, and an adapter may keep it: every catalog write
/// must show in the next read all the same.
pub async fn the_catalog_follows_every_catalog_write<R: SubscriptionRepo>(repo: &R) {
    let polar = ProviderName::POLAR;
    assert_eq!(repo.catalog(guild(), polar).await, Ok(None));
    setup(repo).await;
    let read = || async { repo.catalog(guild(), polar).await.expect("read").expect("a guild") };
    let first = read().await;
    assert_eq!(first.guild.name, "Contract guild");
    assert_eq!((first.credentials.clone(), first.roles.len()), (None, 1));
    assert_eq!(first.sold_as(polar, Some("prod_vip"), None).map(|r| r.role), Some(role()));
    assert_eq!(read().await, first, "nothing changed");

    let mut renamed = first.guild.clone();
    renamed.grace = Duration::days(9);
    repo.put_guild(&renamed).await.expect("guild");
    assert_eq!(read().await.guild.grace, Duration::days(9));

    let creds = ProviderCredentials::new(Secret::new("whsec_first"));
    repo.put_credentials(guild(), polar, &creds).await.expect("creds");
    assert_eq!(read().await.credentials, Some(creds));
    let rotated = ProviderCredentials::new(Secret::new("whsec_rotated"));
    repo.put_credentials(guild(), polar, &rotated).await.expect("creds");
    assert_eq!(read().await.credentials, Some(rotated.clone()));
    let sepay = ProviderCredentials::new(Secret::new("sepay-key"));
    repo.put_credentials(guild(), ProviderName::SEPAY, &sepay).await.expect("creds");
    let bank = repo.catalog(guild(), ProviderName::SEPAY).await.expect("read").expect("a guild");
    assert_eq!(bank.credentials, Some(sepay), "each provider's own credentials");
    assert_eq!(read().await.credentials, Some(rotated));

    let mut vip = read().await.roles[0].clone();
    vip.price = Money::parse("7.00", Currency::Usd).expect("price");
    repo.put_paid_role(&vip).await.expect("role");
    let extra = RoleId::new(700_000_000_000_000_008).expect("id");
    let mut gold = PaidRole::new(guild(), extra, "Gold", vip.price, Term::Fixed { days: 30 }).expect("role");
    gold.link(ProductLink::product(polar, "prod_gold"));
    repo.put_paid_role(&gold).await.expect("role");
    let now = read().await;
    assert_eq!(now.roles, vec![vip, gold]);
    assert_eq!(now.sold_as(polar, Some("prod_gold"), None).map(|r| r.role), Some(extra));
    assert!(repo.remove_paid_role(guild(), extra).await.expect("remove"));
    assert_eq!(read().await.paid_role(extra), None);
    assert_eq!(read().await.sold_as(polar, Some("prod_gold"), None), None);
}

pub fn notice(n: u64, kind: NoticeKind, send_at: OffsetDateTime) -> PlannedNotice {
    PlannedNotice {
        guild: guild(),
        user: user(n),
        role: role(),
        provider: ProviderName::POLAR,
        external_ref: format!("sub_{n}").parse().expect("ref"),
        kind,
        lead: (kind == NoticeKind::EndingSoon).then_some(Duration::days(3)),
        about: Some(T0 + Duration::days(3)),
        send_at,
    }
}

pub async fn notices_are_planned_once_per_key_then_claimed_leased_and_settled<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    let soon = notice(1, NoticeKind::EndingSoon, T0);
    let later = notice(2, NoticeKind::EndingSoon, T0 + Duration::hours(1));
    assert_eq!(repo.plan_notices(&[soon.clone(), later.clone(), soon.clone()], T0).await.expect("plans"), 2);
    assert_eq!(repo.plan_notices(std::slice::from_ref(&soon), T0).await.expect("plans"), 0);
    // The commit that records a fact records its notices, once too.
    let failed = notice(3, NoticeKind::PaymentFailed, T0);
    let with_notices = Commit { notices: vec![failed.clone(), soon.clone()], ..commit(None, vec![], vec![]) };
    repo.commit(with_notices).await.expect("commit");
    assert_eq!(repo.next_notice_due().await.expect("reads"), Some(T0));

    let claimed = repo.claim_notices(T0, LEASE, 10).await.expect("claims");
    let kinds: Vec<_> = claimed.iter().map(|n| (n.planned.user, n.planned.kind)).collect();
    assert_eq!(kinds, [(user(1), NoticeKind::EndingSoon), (user(3), NoticeKind::PaymentFailed)]);
    assert_eq!(claimed[0].planned, soon, "stored as planned");
    assert!(repo.claim_notices(T0, LEASE, 10).await.expect("claims").is_empty(), "claimed twice");
    assert!(repo.settle_notice(&claimed[0], NoticeSettlement::Sent, T0).await.expect("settles"));
    assert!(
        !repo.settle_notice(&claimed[0], NoticeSettlement::Sent, T0).await.expect("settles"),
        "settled twice"
    );
    let retry = NoticeSettlement::Retry { at: T0 + Duration::minutes(5), error: "HTTP 429".into() };
    assert!(repo.settle_notice(&claimed[1], retry, T0).await.expect("settles"));

    // An expired lease is taken over; the first holder's settlement is then refused.
    let at = T0 + Duration::hours(1);
    let taken = repo.claim_notices(at, LEASE, 10).await.expect("claims");
    assert_eq!(taken.len(), 2, "the retry and the later one: {taken:?}");
    let retried = taken.iter().find(|n| n.planned.user == user(3)).expect("retried");
    assert_eq!((retried.attempts, retried.note.as_deref()), (1, Some("HTTP 429")));
    let over = repo.claim_notices(at + LEASE, LEASE, 10).await.expect("claims");
    assert_eq!(over.len(), 2);
    assert!(!repo.settle_notice(&taken[0], NoticeSettlement::Sent, at).await.expect("settles"));
    let why = NoticeSettlement::Skipped { why: "renewed".into() };
    assert!(repo.settle_notice(&over[0], why, at).await.expect("settles"));

    let log = repo.member_notice_log(guild(), user(1)).await.expect("log");
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].state, log[0].settled_at), (NoticeState::Sent, Some(T0)));
}

pub async fn members_mute_notices_are_marked_unreachable_and_reset_by_turning_them_on<R: SubscriptionRepo>(
    repo: &R,
) {
    setup(repo).await;
    assert_eq!(repo.member_notices(guild(), user(1)).await.expect("reads"), MemberNotices::default());
    repo.set_member_notices(guild(), user(1), false, T0).await.expect("off");
    repo.set_member_notices(guild(), user(1), false, T0 + Duration::DAY).await.expect("off again");
    let muted = repo.member_notices(guild(), user(1)).await.expect("reads");
    assert_eq!(muted.muted_at, Some(T0 + Duration::DAY));
    repo.plan_notices(&[notice(1, NoticeKind::Ended, T0)], T0).await.expect("plans");
    let claimed = repo.claim_notices(T0, LEASE, 1).await.expect("claims");
    assert!(repo.settle_notice(&claimed[0], NoticeSettlement::Unreachable, T0).await.expect("settles"));
    let marked = repo.member_notices(guild(), user(1)).await.expect("reads");
    assert_eq!((marked.muted_at, marked.unreachable_at), (Some(T0 + Duration::DAY), Some(T0)));
    let log = repo.member_notice_log(guild(), user(1)).await.expect("log");
    assert_eq!(
        (log[0].state, log[0].note.as_deref()),
        (NoticeState::Failed, Some(NoticeSettlement::UNREACHABLE))
    );
    assert_eq!(
        repo.member_notices(guild(), user(2)).await.expect("reads"),
        MemberNotices::default(),
        "per member"
    );
    repo.set_member_notices(guild(), user(1), true, T0).await.expect("on");
    assert_eq!(repo.member_notices(guild(), user(1)).await.expect("reads"), MemberNotices::default());
}

pub async fn deadlines_page_by_deadline_then_id<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    let day = |n| Some(T0 + Duration::days(n));
    let writes = vec![
        insert(1, "d2a", day(2)),
        insert(2, "d1", day(1)),
        insert(3, "d2b", day(2)),
        insert(4, "none", None),
        insert(5, "d9", day(9)),
        insert(6, "d0", day(0)),
    ];
    repo.commit(commit(None, writes, vec![])).await.expect("insert");
    let until = T0 + Duration::days(3);
    let first = repo.deadlines_after((T0, EntitlementId(i64::MIN)), until, 2).await.expect("reads");
    let refs =
        |page: &[Entitlement]| page.iter().map(|e| e.external_ref.as_str().to_owned()).collect::<Vec<_>>();
    assert_eq!(refs(&first), ["d0", "d1"]);
    let next = |page: &[Entitlement]| {
        let last = page.last().expect("a row");
        (last.deadline.expect("deadline"), last.id)
    };
    let second = repo.deadlines_after(next(&first), until, 2).await.expect("reads");
    assert_eq!(refs(&second), ["d2a", "d2b"]);
    assert!(repo.deadlines_after(next(&second), until, 2).await.expect("reads").is_empty());
}

pub async fn guild_notice_settings_round_trip<R: SubscriptionRepo>(repo: &R) {
    setup(repo).await;
    let stored = repo.guild(guild()).await.expect("reads").expect("guild");
    assert_eq!(stored.notices, NoticeSettings::default());
    let mut changed = stored.clone();
    changed.notices = NoticeSettings {
        enabled: true,
        welcome: true,
        remind: "7d,12h".parse().expect("leads"),
        locale: Locale::Vi,
    };
    repo.put_guild(&changed).await.expect("puts");
    assert_eq!(repo.guild(guild()).await.expect("reads"), Some(changed.clone()));
    let (read, _) = repo.guild_and_credentials(guild(), ProviderName::POLAR).await.expect("reads");
    assert_eq!(read, Some(changed));
}
