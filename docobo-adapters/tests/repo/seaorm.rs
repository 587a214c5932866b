//! What only the SeaORM adapter has: migrations, encryption at rest, the worker wake-up.

use docobo_adapters::seaorm::SeaOrmRepo;
use docobo_adapters::seaorm::entities::credential;
use docobo_adapters::seaorm::migration::Migrator;
use docobo_core::domain::{ProductLink, ProviderName, Secret};
use docobo_core::ports::{CatalogRepo, ProviderCredentials, StoreError};
use sea_orm::EntityTrait;
use sea_orm_migration::MigratorTrait;

use crate::backends::{SECRET_KEY, fresh_schema_url, postgres_url, temp_path};
use crate::cases::{guild, setup};

const OTHER_KEY: &str = "HxoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwIBAB8eHRw=";

async fn urls() -> Vec<String> {
    let mut urls = vec![format!("sqlite://{}?mode=rwc", temp_path("db").display())];
    if let Some(pg) = postgres_url() {
        urls.push(fresh_schema_url(&pg).await);
    }
    urls
}

#[tokio::test]
async fn migrating_twice_is_harmless() {
    for url in urls().await {
        let repo = SeaOrmRepo::connect(&url, None).await.expect("connects");
        repo.migrate().await.expect("first");
        repo.migrate().await.expect("second");
        let again = SeaOrmRepo::connect(&url, None).await.expect("reconnects");
        again.migrate().await.expect("third, from a new connection");
        assert!(Migrator::get_pending_migrations(again.connection()).await.expect("status").is_empty());
    }
}

/// A guild written as the first schema's columns, which every later schema keeps.
async fn old_guild(repo: &SeaOrmRepo, name: &str) {
    use sea_orm::ConnectionTrait;
    let sql =
        format!("INSERT INTO guilds (id, name, grace_seconds) VALUES ({}, '{name}', 259200)", guild().get());
    repo.connection().execute_unprepared(&sql).await.expect("old schema has guilds");
}

/// m0004 moved the per-provider columns into generic links: roles stored before it keep where
/// they were sold.
#[tokio::test]
async fn roles_stored_before_product_links_keep_their_polar_product_and_sepay() {
    use sea_orm::ConnectionTrait;
    for url in urls().await {
        let repo = SeaOrmRepo::connect(&url, None).await.expect("connects");
        Migrator::up(repo.connection(), Some(3)).await.expect("up to m0003");
        old_guild(&repo, "old").await;
        repo.connection()
            .execute_unprepared(&format!(
                "INSERT INTO paid_roles (guild_id, role_id, name, price_minor, currency, term, polar_product, sepay) \
                 VALUES ({g}, 7, 'Both', 250000, 'VND', '30d', 'prod_old', TRUE), \
                        ({g}, 8, 'Bank', 250000, 'VND', '30d', NULL, TRUE), \
                        ({g}, 9, 'None', 500, 'USD', 'recurring', NULL, FALSE)",
                g = guild().get()
            ))
            .await
            .expect("legacy rows");
        repo.migrate().await.expect("upgrades");
        let links: Vec<Vec<ProductLink>> =
            repo.paid_roles(guild()).await.expect("read").into_iter().map(|r| r.links).collect();
        assert_eq!(
            links,
            [
                vec![
                    ProductLink::product(ProviderName::POLAR, "prod_old"),
                    ProductLink::to(ProviderName::SEPAY)
                ],
                vec![ProductLink::to(ProviderName::SEPAY)],
                vec![],
            ]
        );
    }
}

/// An embedder's own SeaORM connection carries Docobo's tables.
#[tokio::test]
async fn an_existing_connection_is_wrapped_and_migrated() {
    for url in urls().await {
        let connection = sea_orm::Database::connect(&url).await.expect("the embedder's pool");
        let repo = SeaOrmRepo::from_connection(connection, Some(SECRET_KEY)).expect("wraps");
        repo.migrate().await.expect("migrates");
        setup(&repo).await;
        let creds = ProviderCredentials::new(Secret::new("whsec_embedded"));
        repo.put_credentials(guild(), ProviderName::POLAR, &creds).await.expect("sealed with the key");
        assert_eq!(repo.credentials(guild(), ProviderName::POLAR).await.expect("read"), Some(creds));
    }
    assert!(SeaOrmRepo::from_connection(sea_orm::DatabaseConnection::default(), Some("not base64")).is_err());
}

#[tokio::test]
async fn a_database_at_any_older_migration_upgrades() {
    let total = Migrator::migrations().len();
    for applied in 0..total {
        for url in urls().await {
            let repo = SeaOrmRepo::connect(&url, None).await.expect("connects");
            Migrator::up(repo.connection(), Some(u32::try_from(applied).expect("small")))
                .await
                .expect("partial");
            assert_eq!(
                Migrator::get_pending_migrations(repo.connection()).await.expect("status").len(),
                total - applied
            );
            if applied > 0 {
                // Rows written under the older schema survive the upgrade.
                old_guild(&repo, "before the upgrade").await;
            }
            repo.migrate().await.expect("upgrades");
            assert!(Migrator::get_pending_migrations(repo.connection()).await.expect("status").is_empty());
            if applied > 0 {
                let kept = repo.guild(guild()).await.expect("read").map(|g| g.name);
                assert_eq!(kept.as_deref(), Some("before the upgrade"));
            }
        }
    }
}

#[tokio::test]
async fn credentials_are_sealed_and_a_wrong_key_is_an_error_not_garbage() {
    for url in urls().await {
        let repo = SeaOrmRepo::connect(&url, Some(SECRET_KEY)).await.expect("connects");
        repo.migrate().await.expect("migrates");
        setup(&repo).await;
        let creds = ProviderCredentials::new(Secret::new("whsec_very_secret_value"));
        repo.put_credentials(guild(), ProviderName::POLAR, &creds).await.expect("store");
        let rows = credential::Entity::find().all(repo.connection()).await.expect("raw rows");
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].sealed.windows(11).any(|w| w == b"very_secret"), "the secret is stored in clear");

        let wrong = SeaOrmRepo::connect(&url, Some(OTHER_KEY)).await.expect("connects");
        let err = wrong.credentials(guild(), ProviderName::POLAR).await.expect_err("wrong key");
        assert!(matches!(&err, StoreError::Corrupt(m) if m.contains("DOCOBO_SECRET_KEY")), "{err:?}");
        let err = wrong.guild_and_credentials(guild(), ProviderName::POLAR).await.expect_err("wrong key");
        assert!(matches!(&err, StoreError::Corrupt(m) if m.contains("DOCOBO_SECRET_KEY")), "{err:?}");
        let keyless = SeaOrmRepo::connect(&url, None).await.expect("connects");
        assert!(matches!(
            keyless.credentials(guild(), ProviderName::POLAR).await,
            Err(StoreError::Corrupt(_))
        ));
        let err = keyless.put_credentials(guild(), ProviderName::POLAR, &creds).await.expect_err("no key");
        assert!(err.to_string().contains("DOCOBO_SECRET_KEY"), "{err}");
    }
}

#[tokio::test]
async fn a_malformed_secret_key_is_refused_at_connect() {
    let err = SeaOrmRepo::connect("sqlite::memory:", Some("too-short")).await.expect_err("refused");
    assert!(err.to_string().contains("DOCOBO_SECRET_KEY"), "{err}");
}

#[tokio::test]
async fn a_commit_with_jobs_wakes_a_sleeping_worker_and_one_without_does_not() {
    use docobo_core::ports::{Commit, Ledger};
    use std::time::Duration as StdDuration;

    let repo = crate::backends::sqlite_memory().await.expect("sqlite");
    let signal = repo.job_signal();
    let quiet = Commit { cause: "none".into(), ..Commit::new(crate::cases::T0) };
    repo.commit(quiet.clone()).await.expect("commit");
    assert!(
        tokio::time::timeout(StdDuration::from_millis(50), signal.notified()).await.is_err(),
        "woken for nothing"
    );
    repo.commit(Commit { jobs: vec![crate::cases::key(1)], ..quiet }).await.expect("commit");
    // `notify_one` leaves a permit, so a worker that was busy when the commit landed still sees it.
    tokio::time::timeout(StdDuration::from_secs(5), signal.notified()).await.expect("the worker is woken");
}

#[tokio::test]
async fn job_counts_group_the_queue_by_state() {
    use docobo_core::domain::JobState;
    use docobo_core::ports::{JobQueue, Settlement};
    for url in urls().await {
        let repo = SeaOrmRepo::connect(&url, None).await.expect("connects");
        repo.migrate().await.expect("migrates");
        let t0 = crate::cases::T0;
        repo.enqueue(&[crate::cases::key(1), crate::cases::key(2), crate::cases::key(3)], "c", t0)
            .await
            .expect("enqueues");
        let claimed = repo.claim_due(t0, time::Duration::seconds(30), 1).await.expect("claims");
        let park = Settlement::Park { reason: "role above the bot".into() };
        repo.settle(&claimed[0], park, vec![], t0).await.expect("settles");
        let counts = repo.job_counts().await.expect("counts");
        assert_eq!(counts, vec![(JobState::Pending, 2), (JobState::Parked, 1), (JobState::Done, 0)], "{url}");
    }
}

/// M5: leases used to be stamped and judged with each replica's own clock, so a replica an hour
/// ahead saw every lease as over and claimed jobs another replica was running. On PostgreSQL
/// they now follow the database's clock, for role jobs and member notices alike.
#[tokio::test]
async fn m5_a_replica_whose_clock_runs_ahead_cannot_take_over_a_lease() {
    use docobo_core::domain::NoticeKind;
    use docobo_core::ports::{JobQueue, NoticeRepo};
    let Some(pg) = postgres_url() else { return };
    let repo = SeaOrmRepo::connect(&fresh_schema_url(&pg).await, None).await.expect("connects");
    repo.migrate().await.expect("migrates");
    let now = time::OffsetDateTime::now_utc();
    repo.enqueue(&[crate::cases::key(1)], "c", now).await.expect("enqueues");
    let lease = time::Duration::seconds(60);
    let held = repo.claim_due(now, lease, 10).await.expect("replica B claims");
    assert_eq!(held.len(), 1);
    let ahead = now + time::Duration::hours(1);
    assert!(
        repo.claim_due(ahead, lease, 10).await.expect("replica A claims").is_empty(),
        "a replica an hour ahead does not take over a lease with a minute left"
    );
    let until = held[0].locked_until.expect("leased");
    assert!(
        (until - now - lease).abs() < time::Duration::seconds(5),
        "stamped from the database's clock: {until}"
    );

    crate::cases::setup(&repo).await;
    let planned = crate::cases::notice(1, NoticeKind::EndingSoon, now);
    repo.plan_notices(&[planned], now).await.expect("plans");
    let held = repo.claim_notices(now, lease, 10).await.expect("replica B claims the notice");
    assert_eq!(held.len(), 1);
    assert!(
        repo.claim_notices(ahead, lease, 10).await.expect("replica A claims").is_empty(),
        "a replica an hour ahead does not take over a notice's lease with a minute left"
    );
    let until = held[0].locked_until.expect("leased");
    assert!((until - now - lease).abs() < time::Duration::seconds(5), "the notice's too: {until}");
}

/// L9: `DOCOBO_SECRET_KEY` could not be rotated. Now the old key is accepted for reading while
/// `reseal_credentials` re-seals every row under the new one, all or nothing.
#[tokio::test]
async fn l9_credentials_are_resealed_under_a_new_key_all_or_nothing() {
    for url in urls().await {
        let old = SeaOrmRepo::connect(&url, Some(OTHER_KEY)).await.expect("connects");
        old.migrate().await.expect("migrates");
        setup(&old).await;
        let creds = ProviderCredentials::new(Secret::new("whsec_rotate_me"));
        old.put_credentials(guild(), ProviderName::POLAR, &creds).await.expect("stored");
        assert!(
            SeaOrmRepo::connect(&url, Some(SECRET_KEY))
                .await
                .expect("connects")
                .credentials_readable()
                .await
                .is_err()
        );

        // A row that opens under neither key stops the rotation before anything changes.
        let stranger = SeaOrmRepo::connect(&url, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="))
            .await
            .expect("connects");
        stranger.put_credentials(guild(), ProviderName::SEPAY, &creds).await.expect("stored");
        let rotating =
            SeaOrmRepo::connect_rotating(&url, Some(SECRET_KEY), Some(OTHER_KEY)).await.expect("connects");
        assert!(matches!(rotating.reseal_credentials().await, Err(StoreError::Corrupt(_))));
        assert!(old.credentials(guild(), ProviderName::POLAR).await.expect("still the old seal").is_some());
        let sepay =
            credential::Entity::delete_by_id((i64::try_from(guild().get()).expect("id"), "sepay".to_owned()));
        sepay.exec(old.connection()).await.expect("delete");

        assert_eq!(rotating.reseal_credentials().await.expect("reseals"), 1);
        let new_only = SeaOrmRepo::connect(&url, Some(SECRET_KEY)).await.expect("connects");
        let read = new_only.credentials(guild(), ProviderName::POLAR).await.expect("opens").expect("stored");
        assert_eq!(read.webhook_secret.expose(), "whsec_rotate_me");
        assert!(new_only.credentials_readable().await.is_ok());
        assert!(
            old.credentials(guild(), ProviderName::POLAR).await.is_err(),
            "the old key no longer opens it"
        );
    }
}

/// L12: every webhook body (up to 1 MiB) was kept forever. Bodies of applied or ignored
/// deliveries older than the retention are emptied; failed ones stay replayable, and the rows
/// stay so that a redelivery is still a duplicate.
#[tokio::test]
async fn l12_old_bodies_of_settled_deliveries_are_pruned_and_failed_ones_kept() {
    use crate::cases::{T0, commit, event};
    use docobo_core::domain::EventOutcome;
    use docobo_core::ports::Ledger;
    for url in urls().await {
        let repo = SeaOrmRepo::connect(&url, Some(SECRET_KEY)).await.expect("connects");
        repo.migrate().await.expect("migrates");
        setup(&repo).await;
        for (id, outcome) in
            [("p", EventOutcome::Processed), ("i", EventOutcome::Ignored), ("f", EventOutcome::Failed)]
        {
            repo.commit(commit(Some(event(id, outcome)), vec![], vec![])).await.expect("record");
        }
        assert_eq!(repo.prune_event_bodies(T0).await.expect("prunes"), 0, "nothing older than the cutoff");
        assert_eq!(repo.prune_event_bodies(T0 + time::Duration::days(1)).await.expect("prunes"), 2, "{url}");
        let body = |id: &str| {
            let id = id.parse().expect("id");
            let repo = &repo;
            async move {
                repo.webhook_event(ProviderName::POLAR, guild(), &id).await.expect("read").expect("kept").body
            }
        };
        assert!(body("p").await.is_empty() && body("i").await.is_empty());
        assert_eq!(body("f").await, b"body of f", "a failed delivery stays replayable");
        assert_eq!(
            repo.prune_event_bodies(T0 + time::Duration::days(1)).await.expect("prunes"),
            0,
            "idempotent"
        );
    }
}

/// L2: PostgreSQL refuses NUL in `text`, so a failure reason quoting a provider's NUL made the
/// delivery unstorable: a 503, and the provider retrying forever. Reasons are stored with the
/// NUL replaced, on every backend.
#[tokio::test]
async fn l2_a_failure_reason_with_a_nul_is_stored() {
    use crate::cases::{commit, event};
    use docobo_core::domain::EventOutcome;
    use docobo_core::ports::{Ledger, Recorded};
    for url in urls().await {
        let repo = SeaOrmRepo::connect(&url, Some(SECRET_KEY)).await.expect("connects");
        repo.migrate().await.expect("migrates");
        setup(&repo).await;
        let mut failed = event("nul", EventOutcome::Failed);
        failed.last_error = Some("account 0123\0 does not match".to_owned());
        assert_eq!(
            repo.commit(commit(Some(failed), vec![], vec![])).await.expect("stored"),
            Recorded::Committed,
            "{url}"
        );
        let stored = repo.failed_events(10).await.expect("read").remove(0);
        assert_eq!(stored.last_error.as_deref(), Some("account 0123\u{FFFD} does not match"));
    }
}

/// Group commit: 200 concurrent commits share transactions on SQLite (fewer transactions than
/// commits), and on either database those that fail — a stale revision, a repeated delivery — fail alone: every other one
/// lands whole, and a repeated delivery lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_share_transactions_and_one_that_fails_fails_alone() {
    use std::sync::Arc;

    use crate::cases::{commit, event, insert, key};
    use docobo_core::domain::{EventOutcome, ExternalRef};
    use docobo_core::ports::{EntitlementRepo, EntitlementWrite, Ledger, Recorded};

    for url in urls().await {
        let repo = SeaOrmRepo::connect(&url, Some(SECRET_KEY)).await.expect("connects");
        repo.migrate().await.expect("migrates");
        setup(&repo).await;
        let base: ExternalRef = "base".parse().expect("ref");
        repo.commit(commit(None, vec![insert(0, "base", None)], vec![])).await.expect("base");
        let stored =
            repo.entitlement(ProviderName::POLAR, guild(), &base).await.expect("read").expect("base");
        let repo = Arc::new(repo);
        let mut tasks = Vec::new();
        for i in 1..=200u64 {
            let repo = repo.clone();
            let stale = EntitlementWrite::Update {
                id: stored.id,
                expected_revision: stored.revision + 7,
                standing: stored.standing.clone(),
                deadline: None,
            };
            tasks.push(tokio::spawn(async move {
                let c = match i % 10 {
                    0 => commit(
                        Some(event(&format!("stale_{i}"), EventOutcome::Processed)),
                        vec![stale],
                        vec![],
                    ),
                    1 => commit(
                        Some(event("repeated", EventOutcome::Processed)),
                        vec![insert(i, &format!("rep_{i}"), None)],
                        vec![],
                    ),
                    _ => commit(
                        Some(event(&format!("new_{i}"), EventOutcome::Processed)),
                        vec![insert(i, &format!("new_{i}"), None)],
                        vec![key(i)],
                    ),
                };
                (i, repo.commit(c).await)
            }));
        }
        let mut landed = 0;
        let mut repeated = Vec::new();
        for task in tasks {
            let (i, result) = task.await.expect("task");
            match (i % 10, result) {
                (0, Err(StoreError::Conflict)) => {}
                (1, Ok(Recorded::Committed)) => repeated.push(i),
                (1, Ok(Recorded::Duplicate)) => {}
                (_, Ok(Recorded::Committed)) => landed += 1,
                (_, other) => panic!("commit {i}: {other:?}"),
            }
        }
        assert_eq!(landed, 160);
        assert_eq!(repeated.len(), 1, "the repeated delivery landed {} times", repeated.len());
        for i in 1..=200u64 {
            let reference: ExternalRef =
                if i % 10 == 1 { format!("rep_{i}") } else { format!("new_{i}") }.parse().expect("ref");
            let found = repo.entitlement(ProviderName::POLAR, guild(), &reference).await.expect("read");
            let expected = match i % 10 {
                0 => false,
                1 => repeated == [i],
                _ => true,
            };
            assert_eq!(found.is_some(), expected, "commit {i}'s purchase");
        }
        let failed = repo.webhook_event(ProviderName::POLAR, guild(), &"stale_10".parse().expect("id")).await;
        assert_eq!(failed.expect("read"), None, "a failed commit left its event behind");
        let stats = repo.commit_stats();
        assert_eq!(stats.commits, 201);
        if url.starts_with("sqlite") {
            assert!(stats.batches < stats.commits, "no two commits shared a transaction: {stats:?}");
        } else {
            // PostgreSQL keeps a transaction per commit, in parallel (the writer's module docs).
            assert_eq!(stats.batches, stats.commits);
        }
    }
}

/// The catalog is kept in memory per process, so a write by another process on the same
/// database (the CLI beside the server, another replica) must show in the next read: the kept
/// copy is used only while the guild's revision in the database is the one it was read under.
#[tokio::test]
async fn a_kept_catalog_follows_writes_made_by_another_process() {
    for url in urls().await {
        let server = SeaOrmRepo::connect(&url, Some(SECRET_KEY)).await.expect("connects");
        server.migrate().await.expect("migrates");
        let cli = SeaOrmRepo::connect(&url, Some(SECRET_KEY)).await.expect("connects");
        setup(&server).await;
        let polar = ProviderName::POLAR;
        let first = server.catalog(guild(), polar).await.expect("read").expect("guild");
        let again = server.catalog(guild(), polar).await.expect("read").expect("guild");
        assert!(std::sync::Arc::ptr_eq(&first, &again), "unchanged: answered from memory ({url})");

        let secret = ProviderCredentials::new(Secret::new("whsec_from_the_cli"));
        cli.put_credentials(guild(), polar, &secret).await.expect("creds");
        let now = server.catalog(guild(), polar).await.expect("read").expect("guild");
        assert_eq!(now.credentials, Some(secret), "{url}");

        let mut role = now.roles[0].clone();
        role.link(ProductLink::product(polar, "prod_added_by_cli"));
        cli.put_paid_role(&role).await.expect("role");
        let now = server.catalog(guild(), polar).await.expect("read").expect("guild");
        assert_eq!(now.sold_as(polar, Some("prod_added_by_cli"), None).map(|r| r.role), Some(role.role));

        assert!(cli.remove_paid_role(guild(), role.role).await.expect("removed"));
        let now = server.catalog(guild(), polar).await.expect("read").expect("guild");
        assert!(now.roles.is_empty(), "{url}");
    }
}

/// Warming before the server listens reads ahead every catalog a webhook can need (each pair
/// with credentials), skips one whose credentials do not open (its first webhook reports that),
/// and keeps the catalog following writes made afterwards.
#[tokio::test]
async fn warming_reads_ahead_each_readable_catalog_and_later_writes_still_show() {
    for url in urls().await {
        let server = SeaOrmRepo::connect(&url, Some(SECRET_KEY)).await.expect("connects");
        server.migrate().await.expect("migrates");
        assert_eq!(server.warm().await, Ok(0), "nothing to read ahead ({url})");
        setup(&server).await;
        let (polar, sepay) = (ProviderName::POLAR, ProviderName::SEPAY);
        for provider in [polar, sepay] {
            let secret = ProviderCredentials::new(Secret::new(format!("whsec_{provider}")));
            server.put_credentials(guild(), provider, &secret).await.expect("creds");
        }
        let other = docobo_core::domain::GuildId::new(guild().get() + 1).expect("id");
        let elsewhere = SeaOrmRepo::connect(&url, Some(OTHER_KEY)).await.expect("connects");
        elsewhere.put_guild(&docobo_core::domain::Guild::new(other, "other key")).await.expect("guild");
        let sealed_elsewhere = ProviderCredentials::new(Secret::new("whsec_other_key"));
        elsewhere.put_credentials(other, polar, &sealed_elsewhere).await.expect("creds");

        assert_eq!(server.warm().await, Ok(2), "two readable pairs of three ({url})");

        let mut role = server.paid_roles(guild()).await.expect("roles").remove(0);
        role.link(ProductLink::product(polar, "prod_after_warming"));
        elsewhere.put_paid_role(&role).await.expect("role");
        let now = server.catalog(guild(), polar).await.expect("read").expect("guild");
        assert_eq!(now.sold_as(polar, Some("prod_after_warming"), None).map(|r| r.role), Some(role.role));
    }
}

/// A SQLite file does not checkpoint its WAL inside a commit (that commit, and every webhook
/// waiting behind its batch, would wait for the copy and its fsync): automatic checkpoints are
/// off, and the writer runs them beside itself, on a read connection, as writes accumulate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_is_checkpointed_beside_the_writer_not_inside_a_commit() {
    use crate::cases::{commit, event, insert};
    use docobo_core::domain::EventOutcome;
    use docobo_core::ports::Ledger;
    use sea_orm::ConnectionTrait;

    let url = format!("sqlite://{}?mode=rwc", temp_path("db").display());
    let repo = SeaOrmRepo::connect(&url, Some(SECRET_KEY)).await.expect("connects");
    repo.migrate().await.expect("migrates");
    setup(&repo).await;
    let setting = repo
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(repo.backend(), "PRAGMA wal_autocheckpoint"))
        .await
        .expect("pragma")
        .expect("a row");
    assert_eq!(setting.try_get_by_index::<i64>(0).expect("value"), 0, "automatic checkpoints are off");

    for i in 1..=600u64 {
        let delivery = commit(
            Some(event(&format!("evt_{i}"), EventOutcome::Processed)),
            vec![insert(i, &format!("sub_{i}"), None)],
            vec![],
        );
        repo.commit(delivery).await.expect("commit");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while repo.commit_stats().checkpoints < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let stats = repo.commit_stats();
    assert!(stats.checkpoints >= 2, "600 writes, a checkpoint every 256: {stats:?}");
}

/// On SQLite a role-job claim is written by the group committer, in a batch beside the
/// webhooks' commits, instead of taking the one connection for a transaction and an fsync of
/// its own; it still leases exactly the due jobs, once.
#[tokio::test]
async fn a_sqlite_claim_is_written_by_the_group_committer() {
    use docobo_core::ports::JobQueue;
    let repo = crate::backends::sqlite_file().await.expect("sqlite");
    let t0 = crate::cases::T0;
    let lease = time::Duration::seconds(30);
    repo.enqueue(&[crate::cases::key(1), crate::cases::key(2)], "c", t0).await.expect("enqueues");
    let before = repo.commit_stats();
    let claimed = repo.claim_due(t0, lease, 10).await.expect("claims");
    assert_eq!(
        claimed.iter().map(|j| j.key).collect::<Vec<_>>(),
        [crate::cases::key(1), crate::cases::key(2)]
    );
    assert!(claimed.iter().all(|j| j.locked_until == Some(t0 + lease)), "{claimed:?}");
    let after = repo.commit_stats();
    assert_eq!(after.claims, before.claims + 1, "the claim went through the writer");
    assert_eq!(
        (after.commits, after.batches),
        (before.commits, before.batches),
        "a claim is no ledger commit"
    );
    assert!(repo.claim_due(t0, lease, 10).await.expect("claims").is_empty(), "leased once");
}
