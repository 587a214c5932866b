//! Concurrency on the real databases: redelivery storms and competing workers.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use docobo_core::domain::{JobState, ProviderName, Secret};
use docobo_core::ports::{ProviderCredentials, Settlement, SubscriptionRepo};
use docobo_core::service::{IngestOutcome, ingest_webhook};
use docobo_core::testing::{ManualClock, ToyProvider};
use time::Duration;

use crate::cases::{T0, guild, key, setup, user};

async fn fifty_concurrent_deliveries_of_one_event_apply_once<R: SubscriptionRepo + 'static>(repo: Arc<R>) {
    setup(repo.as_ref()).await;
    repo.put_credentials(guild(), ProviderName::POLAR, &ProviderCredentials::new(Secret::new("s3cret")))
        .await
        .expect("creds");
    let body = format!(
        "id=evt_storm\nkind=payment_succeeded\nref=sub_1\nversion={}\nuser={}\nproduct=prod_vip\n",
        T0.unix_timestamp(),
        user(1)
    );
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (repo, body) = (repo.clone(), body.clone());
            tokio::spawn(async move {
                let clock = ManualClock::new(T0);
                let headers = ToyProvider::headers("s3cret", body.as_bytes());
                let provider = ToyProvider::named(ProviderName::POLAR);
                ingest_webhook(repo.as_ref(), &provider, &clock, guild(), &headers, body.as_bytes()).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("task").expect("every delivery is acknowledged").outcome);
    }
    let processed = outcomes.iter().filter(|o| matches!(o, IngestOutcome::Processed { jobs: 1 })).count();
    let duplicates = outcomes.iter().filter(|o| **o == IngestOutcome::Duplicate).count();
    assert_eq!((processed, duplicates), (1, 49), "{outcomes:?}");
    let entitlements = repo.guild_entitlements(guild()).await.expect("read");
    assert_eq!(entitlements.len(), 1);
    assert_eq!(entitlements[0].revision, 1, "exactly one state change");
    let jobs = repo.jobs(JobState::Pending, 10).await.expect("read");
    assert_eq!((jobs.len(), jobs[0].generation), (1, 1), "exactly one job request");
    assert!(
        repo.webhook_event(ProviderName::POLAR, guild(), &"evt_storm".parse().expect("id"))
            .await
            .expect("read")
            .is_some()
    );
}

async fn four_workers_process_every_job_exactly_once<R: SubscriptionRepo + 'static>(repo: Arc<R>) {
    setup(repo.as_ref()).await;
    let keys: Vec<_> = (1..=1000).map(key).collect();
    repo.enqueue(&keys, "load", T0).await.expect("enqueue");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (repo, seen) = (repo.clone(), seen.clone());
            tokio::spawn(async move {
                loop {
                    let jobs = repo.claim_due(T0, Duration::minutes(5), 25).await.expect("claim");
                    if jobs.is_empty() {
                        break;
                    }
                    for job in jobs {
                        seen.lock().expect("lock").push(job.id);
                        repo.settle(&job, Settlement::Done, vec![], T0).await.expect("settle");
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    let seen = seen.lock().expect("lock").clone();
    let unique: BTreeSet<_> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (1000, 1000), "every job once, none lost");
    assert_eq!(repo.jobs(JobState::Done, 2000).await.expect("read").len(), 1000);
    assert!(repo.jobs(JobState::Pending, 10).await.expect("read").is_empty());
}

macro_rules! concurrency {
    ($backend:ident) => {
        mod $backend {
            use std::sync::Arc;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn fifty_concurrent_deliveries_of_one_event_apply_once() {
                let Some(repo) = crate::backends::$backend().await else { return };
                super::fifty_concurrent_deliveries_of_one_event_apply_once(Arc::new(repo)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn four_workers_process_every_job_exactly_once() {
                let Some(repo) = crate::backends::$backend().await else { return };
                super::four_workers_process_every_job_exactly_once(Arc::new(repo)).await;
            }
        }
    };
}

concurrency!(memory);
concurrency!(sqlite_file);
concurrency!(postgres);
