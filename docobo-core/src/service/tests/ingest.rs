//! Ingest: signatures, deduplication, ordering, the failure inbox, checkouts and transfers.

use super::*;

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
    assert_eq!(reason, Unresolved::UnknownMember);
    let inbox = w.repo.failed_events(10).await.expect("inbox");
    assert_eq!(inbox.len(), 1);
    let stored = inbox[0].last_error.as_deref().unwrap_or_default();
    assert!(stored == reason.to_string() && stored.contains("which Discord member"), "{stored}");
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
    let unlinked =
        Unresolved::UnlinkedProduct { provider: ProviderName::POLAR, product: Some("prod_other".into()) };
    assert_eq!(reason, unlinked);
    assert!(
        reason.to_string().contains("prod_other") && reason.to_string().contains("--polar-product"),
        "{reason}"
    );
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

#[tokio::test]
async fn an_underpaid_transfer_grants_nothing_and_says_why() {
    let w = World::new(Term::Fixed { days: 30 }).await;
    open_checkout(&w, "DCB123", "5.00").await;
    let report = w.deliver(&transfer("tx_1", "DCB123", "4.99", START)).await.expect("acknowledged");
    let IngestOutcome::Failed { reason } = report.outcome else { panic!("{report:?}") };
    let (paid, expected) = (Money::parse("4.99", Currency::Usd), Money::parse("5.00", Currency::Usd));
    assert_eq!(
        reason,
        Unresolved::Underpaid { paid: paid.expect("money"), expected: expected.expect("money") }
    );
    assert!(reason.to_string().contains("underpaid: received 4.99 USD, expected 5.00 USD"), "{reason}");
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
    assert!(matches!(reason, Unresolved::ExpiredCheckout { .. }), "{reason}");
}

#[tokio::test]
async fn a_purchase_paid_once_buys_its_units_once_however_often_it_is_reported() {
    let w = World::new(Term::Fixed { days: 30 }).await;
    let order = |id: &str| {
        let mut lines = webhook(id, "payment_succeeded", "order_236-1", START);
        lines.extend([
            ("user", user().to_string()),
            ("product", "prod_vip".to_owned()),
            ("one_time", "true".to_owned()),
            ("paid_once", "true".to_owned()),
            ("units", "2".to_owned()),
        ]);
        lines
    };
    w.deliver(&order("order.completed:236")).await.expect("paid");
    assert_eq!(
        w.repo.entitlements()[0].access_until(),
        Some(START + Duration::days(60)),
        "two units, 60 days"
    );
    w.clock.advance(Duration::days(1));
    let again = w.deliver(&order("order.paid:236")).await.expect("reported again");
    assert!(matches!(again.outcome, IngestOutcome::Processed { jobs: 0 }), "{again:?}");
    assert_eq!(w.repo.entitlements()[0].access_until(), Some(START + Duration::days(60)), "not paid twice");
}

/// Signs `lines` with `secret` and ingests them.
async fn signed_with(w: &World, secret: &str, lines: &[(&str, String)]) -> Result<IngestReport, IngestError> {
    let body: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let headers = ToyProvider::headers(secret, body.as_bytes());
    ingest_webhook(&w.repo, &w.provider, &w.clock, guild(), &headers, body.as_bytes()).await
}

#[tokio::test]
async fn after_the_secret_is_replaced_only_deliveries_signed_with_the_new_one_are_accepted() {
    let w = World::new(Term::Recurring).await;
    // The first delivery leaves the catalog, with the old secret, kept.
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    let creds = ProviderCredentials::new(Secret::new("new-secret"));
    w.repo.put_credentials(guild(), ProviderName::POLAR, &creds).await.expect("creds");
    let old = webhook("evt_old", "revoked", "sub_1", START + Duration::hours(1));
    let err = signed_with(&w, SECRET, &old).await.expect_err("the replaced secret is refused");
    assert!(matches!(err, IngestError::Unauthorized(_)), "{err:?}");
    assert_eq!((w.repo.events().len(), w.status()), (1, Status::Active), "nothing of it is stored");
    let new = webhook("evt_new", "revoked", "sub_1", START + Duration::hours(1));
    let report = signed_with(&w, "new-secret", &new).await.expect("the new secret is accepted");
    assert_eq!(report.outcome, IngestOutcome::Processed { jobs: 1 });
    assert_eq!(w.status(), Status::Revoked);
}

#[tokio::test]
async fn a_product_linked_after_the_catalog_was_kept_is_sold_to_the_next_delivery() {
    let w = World::new(Term::Recurring).await;
    w.sub_event("evt_1", "payment_succeeded", START, Some(START + Duration::days(30))).await;
    let mut paid = w.repo.paid_role(guild(), role()).await.expect("read").expect("sold");
    paid.link(ProductLink::product(ProviderName::POLAR, "prod_new"));
    w.repo.put_paid_role(&paid).await.expect("linked");
    let mut lines = webhook("evt_2", "payment_succeeded", "sub_2", START);
    lines.extend([("user", "77".to_owned()), ("product", "prod_new".to_owned())]);
    let report = w.deliver(&lines).await.expect("ingests");
    assert_eq!(report.outcome, IngestOutcome::Processed { jobs: 1 }, "planned on the catalog with the link");
}
