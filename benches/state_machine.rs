//! Criterion benches of the pure core: `apply` for each kind of event, the entitlement rule over
//! growing numbers of purchases, and a whole in-memory ingest for scale.
//!
//! Run with `cargo bench --bench state_machine`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use docobo::core::domain::Term;
use docobo::core::machine::{Event, EventKind, Standing, Version, apply, role_desired};
use time::{Duration, OffsetDateTime, macros::datetime};

const NOW: OffsetDateTime = datetime!(2026-11-01 00:00 UTC);

fn ev(kind: EventKind, hours: i64) -> Event {
    Event { kind, version: Version(NOW + Duration::hours(hours)) }
}

fn active(term: Term) -> Standing {
    let paid = ev(EventKind::PaymentSucceeded { access_until: Some(NOW + Duration::days(30)) }, 0);
    apply(&Standing::new(term), &paid, NOW).expect("applies").standing
}

fn bench_apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply");
    let cases = [
        (
            "payment/recurring",
            Term::Recurring,
            EventKind::PaymentSucceeded { access_until: Some(NOW + Duration::days(60)) },
        ),
        ("payment/fixed", Term::Fixed { days: 30 }, EventKind::PaymentSucceeded { access_until: None }),
        ("cancel", Term::Recurring, EventKind::CancelScheduled { access_until: NOW + Duration::days(30) }),
        ("revoke", Term::Recurring, EventKind::Revoked),
        ("stale_failure", Term::Recurring, EventKind::PaymentFailed),
    ];
    for (name, term, kind) in cases {
        let standing = active(term);
        let event = ev(kind, if name == "stale_failure" { -5 } else { 5 });
        group.bench_function(name, |b| b.iter(|| apply(black_box(&standing), black_box(&event), NOW)));
    }
    group.finish();
}

fn bench_role_desired(c: &mut Criterion) {
    let mut group = c.benchmark_group("role_desired");
    let revoked = apply(&active(Term::Recurring), &ev(EventKind::Revoked, 1), NOW).expect("applies").standing;
    for n in [1usize, 10, 100] {
        // The worst case: every purchase but the last is over, so every one is examined.
        let mut standings = vec![revoked.clone(); n - 1];
        standings.push(active(Term::Recurring));
        group.bench_with_input(BenchmarkId::from_parameter(n), &standings, |b, s| {
            b.iter(|| role_desired(black_box(s), NOW, Duration::days(3)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_apply, bench_role_desired);
criterion_main!(benches);
