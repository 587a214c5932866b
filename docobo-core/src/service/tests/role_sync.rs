//! The role worker: one verified change per job, backoff, parking, leases.

use super::*;

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
