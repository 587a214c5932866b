//! Out-of-order and concurrent delivery: 1,000 random permutations of subscription histories,
//! each delivered concurrently (with redeliveries) through the real ingest use case, must leave
//! the member with exactly the roles and status that in-order delivery leaves.

use std::sync::Arc;

use docobo_core::domain::*;
use docobo_core::machine::Status;
use docobo_core::ports::*;
use docobo_core::service::{ingest_webhook, run_due_jobs};
use docobo_core::testing::{FakeRoles, ManualClock, MemoryRepo, ToyProvider};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const SECRET: &str = "toy-secret";
const START: OffsetDateTime = datetime!(2026-11-01 00:00 UTC);
/// When the deliveries arrive: inside the second paid period.
const NOW: OffsetDateTime = datetime!(2026-12-15 00:00 UTC);

fn ids() -> (GuildId, UserId, RoleId) {
    (GuildId::new(900).expect("id"), UserId::new(42).expect("id"), RoleId::new(7).expect("id"))
}

/// Histories of one subscription, as (kind, days after START, access-until days).
const HISTORIES: [&[(&str, i64, Option<i64>)]; 3] = [
    // Renewed after a failed payment, cancellation scheduled then undone: active.
    &[
        ("payment_succeeded", 0, Some(30)),
        ("payment_failed", 30, None),
        ("payment_succeeded", 31, Some(61)),
        ("cancel_scheduled", 40, Some(61)),
        ("cancel_undone", 41, None),
    ],
    // Cancelled at the end of a period that is still running: keeps access.
    &[
        ("payment_succeeded", 0, Some(30)),
        ("payment_succeeded", 30, Some(60)),
        ("cancel_scheduled", 35, Some(60)),
    ],
    // Revoked after renewals: no access.
    &[
        ("payment_succeeded", 0, Some(30)),
        ("payment_succeeded", 30, Some(60)),
        ("revoked", 44, None),
        ("payment_failed", 40, None),
    ],
];

fn body(n: usize, (kind, day, until): (&str, i64, Option<i64>)) -> String {
    let (_, user, role) = ids();
    let at = |d: i64| (START + Duration::days(d)).unix_timestamp();
    let mut text =
        format!("id=evt_{n}\nkind={kind}\nref=sub_1\nversion={}\nuser={user}\nrole={role}\n", at(day));
    if let Some(u) = until {
        text.push_str(&format!("until={}\n", at(u)));
    }
    text
}

/// Delivers `order` (indexes into `history`, repeats allowed) concurrently, converges the role
/// job, and returns (status, member holds the role).
async fn deliver(history: &[(&str, i64, Option<i64>)], order: &[usize]) -> (Status, bool) {
    let (guild, user, role) = ids();
    let repo = Arc::new(MemoryRepo::new());
    repo.put_guild(&Guild::new(guild, "Perm")).await.expect("guild");
    let price = Money::parse("5.00", Currency::Usd).expect("price");
    repo.put_paid_role(&PaidRole::new(guild, role, "VIP", price, Term::Recurring).expect("role"))
        .await
        .expect("role");
    repo.put_credentials(guild, ProviderName::POLAR, &ProviderCredentials::new(Secret::new(SECRET)))
        .await
        .expect("creds");
    let clock = Arc::new(ManualClock::new(NOW));
    let tasks: Vec<_> = order
        .iter()
        .map(|&i| {
            let (repo, clock) = (repo.clone(), clock.clone());
            let text = body(i, history[i]);
            tokio::spawn(async move {
                let headers = ToyProvider::headers(SECRET, text.as_bytes());
                let toy = ToyProvider::named(ProviderName::POLAR);
                ingest_webhook(&*repo, &toy, &*clock, guild, &headers, text.as_bytes()).await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("ingested");
    }
    let discord = FakeRoles::new();
    discord.join(guild, user);
    while run_due_jobs(&*repo, &discord, &*clock, Duration::seconds(30), 50).await.expect("jobs").claimed > 0
    {
    }
    let entitlement = repo
        .entitlement(ProviderName::POLAR, guild, &"sub_1".parse().expect("ref"))
        .await
        .expect("read")
        .expect("one");
    let holds = discord.roles(guild, user).is_some_and(|r| r.contains(&role));
    (entitlement.status(), holds)
}

#[test]
fn a_thousand_concurrent_permutations_end_with_the_in_order_roles() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let expected: Vec<(Status, bool)> =
        HISTORIES.iter().map(|h| runtime.block_on(deliver(h, &(0..h.len()).collect::<Vec<_>>()))).collect();
    assert_eq!(
        expected,
        [(Status::Active, true), (Status::Cancelled, true), (Status::Revoked, false)],
        "in-order delivery is the reference"
    );
    let mut runner = TestRunner::new(Config { cases: 1000, failure_persistence: None, ..Config::default() });
    let strategy = (0..HISTORIES.len()).prop_flat_map(|h| {
        let n = HISTORIES[h].len();
        // A permutation, plus up to 3 redeliveries of random events.
        (Just(h), Just((0..n).collect::<Vec<_>>()).prop_shuffle(), proptest::collection::vec(0..n, 0..=3))
    });
    runner
        .run(&strategy, |(h, mut order, repeats)| {
            order.extend(repeats);
            let got = runtime.block_on(deliver(HISTORIES[h], &order));
            prop_assert_eq!(got, expected[h], "history {} delivered as {:?}", h, order);
            Ok(())
        })
        .expect("every permutation converges to the in-order result");
}
