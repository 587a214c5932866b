//! Deferred deliveries: acknowledged before the provider's API is read, resolved after, once.

use super::*;

/// A hint: `sub_1` paid by `user()`, but the toy "API" must be read for it to count.
fn hint(id: &str) -> Vec<(&'static str, String)> {
    let mut lines = webhook(id, "payment_succeeded", "sub_1", START);
    lines.extend([
        ("user", user().to_string()),
        ("product", "prod_vip".to_owned()),
        ("until", secs(START + Duration::days(30))),
        ("defer", "only an order id".to_owned()),
    ]);
    lines
}

fn registry(api_down: bool) -> ProviderRegistry {
    ProviderRegistry::new()
        .with(std::sync::Arc::new(ToyProvider { api_down, ..ToyProvider::named(ProviderName::POLAR) }))
}

#[tokio::test]
async fn a_hint_is_acknowledged_before_any_api_read_then_applied_once() {
    let w = World::new(Term::Recurring).await;
    let report = w.deliver(&hint("evt_1")).await.expect("acknowledged");
    assert_eq!(report.outcome, IngestOutcome::Deferred { why: "only an order id".to_owned() });
    assert!(w.repo.entitlements().is_empty() && w.repo.all_jobs().is_empty(), "nothing applied yet");
    assert_eq!(w.deliver(&hint("evt_1")).await.expect("again").outcome, IngestOutcome::Duplicate);

    let pass = resolve_deferred(&w.repo, &registry(false), &w.clock, 10).await.expect("resolves");
    assert_eq!(pass, ResolveReport { due: 1, settled: 1, retried: 0, jobs: 1 });
    assert_eq!(w.status(), Status::Active);
    let stored = &w.repo.events()[0];
    assert_eq!((stored.outcome, stored.attempts, stored.retry_at), (EventOutcome::Processed, 2, None));
    let again = resolve_deferred(&w.repo, &registry(false), &w.clock, 10).await.expect("idle");
    assert_eq!(again.due, 0, "nothing is resolved twice");
    w.work().await;
    assert!(w.has_role());
}

#[tokio::test]
async fn an_api_that_is_down_puts_the_delivery_off_on_the_backoff_and_then_into_the_inbox() {
    let w = World::new(Term::Recurring).await;
    w.deliver(&hint("evt_1")).await.expect("acknowledged");
    let down = registry(true);
    let pass = resolve_deferred(&w.repo, &down, &w.clock, 10).await.expect("pass");
    assert_eq!((pass.due, pass.retried), (1, 1));
    let stored = w.repo.events()[0].clone();
    assert_eq!(stored.outcome, EventOutcome::Deferred);
    assert_eq!(stored.retry_at, Some(START + RESOLVE_BACKOFF[0]));
    assert!(stored.last_error.as_deref().is_some_and(|e| e.contains("down")), "{stored:?}");
    assert_eq!(resolve_deferred(&w.repo, &down, &w.clock, 10).await.expect("early").due, 0, "not due yet");

    // Every wait passes with the API still down: then it fails, with the reason.
    for wait in RESOLVE_BACKOFF {
        w.clock.advance(wait);
        resolve_deferred(&w.repo, &down, &w.clock, 10).await.expect("pass");
    }
    let failed = w.repo.events()[0].clone();
    assert_eq!(failed.outcome, EventOutcome::Failed, "{failed:?}");
    assert!(failed.last_error.as_deref().is_some_and(|e| e.contains("could not be resolved")));
    assert!(w.repo.entitlements().is_empty());

    // A replay from the inbox defers it again; with the API back, it applies once.
    let replayed = replay_event(&w.repo, &w.provider, &w.clock, &failed).await.expect("replays");
    assert!(matches!(replayed.outcome, IngestOutcome::Deferred { .. }), "{replayed:?}");
    let pass = resolve_deferred(&w.repo, &registry(false), &w.clock, 10).await.expect("resolves");
    assert_eq!((pass.settled, pass.jobs), (1, 1));
    assert_eq!(w.status(), Status::Active);
}
