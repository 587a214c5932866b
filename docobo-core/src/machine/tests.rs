//! The state machine's rules, as examples and as properties over generated event histories with
//! duplicates and reorderings.

use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use time::{Duration, OffsetDateTime};

use super::*;

const GRACE: Duration = Duration::days(3);

fn t(hours: i64) -> Timestamp {
    OffsetDateTime::UNIX_EPOCH + Duration::days(20_000) + Duration::hours(hours)
}

fn ev(kind: EventKind, version_hours: i64) -> Event {
    Event { kind, version: Version(t(version_hours)) }
}

fn paid(until_hours: i64) -> EventKind {
    EventKind::PaymentSucceeded { access_until: Some(t(until_hours)) }
}

fn cancel(until_hours: i64) -> EventKind {
    EventKind::CancelScheduled { access_until: t(until_hours) }
}

fn run(term: Term, events: &[Event], now: Timestamp) -> Standing {
    events.iter().fold(Standing::new(term), |s, e| apply(&s, e, now).expect("applies").standing)
}

// ----- examples: one per row of the tables in the module docs -----

#[test]
fn a_payment_activates_and_grants() {
    let s = run(Term::Recurring, &[ev(paid(720), 0)], t(1));
    assert_eq!(s.status(), Status::Active);
    assert_eq!(s.access_until(), Some(t(720)));
    assert!(entitled(&s, t(1), GRACE));
}

#[test]
fn a_cancellation_keeps_access_until_the_period_ends() {
    let s = run(Term::Recurring, &[ev(paid(720), 0), ev(cancel(720), 10)], t(11));
    assert_eq!(s.status(), Status::Cancelled);
    assert!(entitled(&s, t(719), GRACE));
    assert!(!entitled(&s, t(720), GRACE));
    assert_eq!(s.deadline(GRACE), Some(t(720)));
    let expired = run(
        Term::Recurring,
        &[ev(paid(720), 0), ev(cancel(720), 10), ev(EventKind::TermElapsed, 720)],
        t(720),
    );
    assert_eq!(expired.status(), Status::Expired);
    assert_eq!(expired.deadline(GRACE), None);
}

#[test]
fn past_due_keeps_access_for_the_grace_period_only() {
    let s = run(Term::Recurring, &[ev(paid(720), 0), ev(EventKind::PaymentFailed, 720)], t(721));
    assert_eq!(s.status(), Status::PastDue);
    assert_eq!(s.past_due_since(), Some(t(720)));
    assert!(entitled(&s, t(720) + GRACE - Duration::seconds(1), GRACE));
    assert!(!entitled(&s, t(720) + GRACE, GRACE));
    assert_eq!(s.deadline(GRACE), Some(t(720) + GRACE));
    let recovered = apply(&s, &ev(paid(1440), 730), t(731)).expect("applies");
    assert_eq!(recovered.standing.status(), Status::Active);
}

#[test]
fn revocation_refund_and_dispute_end_access() {
    for (kind, status) in [
        (EventKind::Revoked, Status::Revoked),
        (EventKind::Refunded { full: true }, Status::Refunded),
        (EventKind::Disputed, Status::Revoked),
    ] {
        let s = run(Term::Lifetime, &[ev(paid(0), 0), ev(kind, 5)], t(6));
        assert_eq!(s.status(), status, "{kind:?}");
        assert!(!entitled(&s, t(6), GRACE));
    }
}

#[test]
fn a_partial_refund_changes_nothing() {
    let before = run(Term::Lifetime, &[ev(EventKind::PaymentSucceeded { access_until: None }, 0)], t(1));
    let after = apply(&before, &ev(EventKind::Refunded { full: false }, 5), t(6)).expect("applies");
    assert_eq!(after.outcome, Outcome::Unchanged);
    assert!(after.effects.is_empty());
    assert!(entitled(&after.standing, t(100_000), GRACE));
}

#[test]
fn a_pending_order_after_a_failed_renewal_does_not_restore_access() {
    let s = run(
        Term::Recurring,
        &[ev(paid(720), 0), ev(EventKind::PaymentFailed, 720), ev(EventKind::PaymentPending, 721)],
        t(722),
    );
    assert_eq!(s.status(), Status::PastDue);
}

#[test]
fn nothing_but_a_payment_grants_access() {
    let unpaid = run(
        Term::Recurring,
        &[ev(cancel(720), 1), ev(EventKind::CancelUndone, 2), ev(EventKind::PaymentPending, 3)],
        t(4),
    );
    assert_eq!(unpaid.status(), Status::Pending);
    assert!(!entitled(&unpaid, t(4), GRACE));
}

#[test]
fn a_stale_cancellation_does_not_override_a_newer_undo() {
    let s = run(
        Term::Recurring,
        &[ev(paid(720), 0), ev(EventKind::CancelUndone, 20), ev(cancel(720), 10)],
        t(21),
    );
    assert_eq!(s.status(), Status::Active);
}

#[test]
fn a_late_undo_revives_an_expired_cancellation_the_provider_withdrew() {
    // The member un-cancelled before the period ended, but the webhook arrived after the
    // expirer had already run: the provider's fact wins.
    let s = run(
        Term::Recurring,
        &[
            ev(paid(720), 0),
            ev(cancel(720), 10),
            ev(EventKind::TermElapsed, 720),
            ev(EventKind::CancelUndone, 700),
        ],
        t(721),
    );
    assert_eq!(s.status(), Status::Active);
}

#[test]
fn fixed_terms_extend_from_the_later_of_now_and_the_current_end() {
    let term = Term::Fixed { days: 30 };
    let first = run(term, &[ev(paid(0), 0)], t(0));
    assert_eq!(first.access_until(), Some(t(0) + Duration::days(30)));
    // Paying again early stacks; paying after it ran out starts from now.
    let stacked = apply(&first, &ev(paid(0), 24), t(24)).expect("applies").standing;
    assert_eq!(stacked.access_until(), Some(t(0) + Duration::days(60)));
    let late = apply(&first, &ev(paid(0), 24 * 40), t(24 * 40)).expect("applies").standing;
    assert_eq!(late.access_until(), Some(t(24 * 40) + Duration::days(30)));
    assert!(!entitled(&first, t(0) + Duration::days(30), GRACE));
}

#[test]
fn extending_past_the_representable_range_is_an_error_not_a_panic() {
    let mut s = Standing::new(Term::Fixed { days: 3650 });
    s.paid = true;
    s.fixed_until = Some(time::PrimitiveDateTime::MAX.assume_utc() - Duration::days(1));
    let err = apply(&s, &ev(paid(0), 0), t(0)).expect_err("out of range");
    assert!(err.to_string().contains("date range"), "{err}");
}

#[test]
fn reference_counting_keeps_the_role_while_any_purchase_is_entitled() {
    let active = run(Term::Recurring, &[ev(paid(720), 0)], t(1));
    let refunded = run(Term::Recurring, &[ev(paid(720), 0), ev(EventKind::Refunded { full: true }, 2)], t(3));
    assert!(role_desired([&active, &refunded], t(3), GRACE));
    assert!(!role_desired([&refunded], t(3), GRACE));
    assert!(!role_desired([], t(3), GRACE));
}

// ----- properties -----

/// Versions in a narrow band so that generated histories have ties and reorderings.
fn arb_event() -> impl Strategy<Value = Event> {
    let until = (0i64..2000).prop_map(t);
    let kind = prop_oneof![
        Just(EventKind::PaymentPending),
        proptest::option::of(until.clone())
            .prop_map(|access_until| EventKind::PaymentSucceeded { access_until }),
        Just(EventKind::PaymentFailed),
        until.prop_map(|access_until| EventKind::CancelScheduled { access_until }),
        Just(EventKind::CancelUndone),
        Just(EventKind::Revoked),
        any::<bool>().prop_map(|full| EventKind::Refunded { full }),
        Just(EventKind::Disputed),
        Just(EventKind::TermElapsed),
    ];
    (kind, 0i64..40).prop_map(|(kind, h)| ev(kind, h * 50))
}

fn arb_term() -> impl Strategy<Value = Term> {
    prop_oneof![Just(Term::Recurring), Just(Term::Lifetime), (1u16..90).prop_map(|days| Term::Fixed { days })]
}

fn is_fixed_payment(term: Term, e: &Event) -> bool {
    matches!(term, Term::Fixed { .. }) && matches!(e.kind, EventKind::PaymentSucceeded { .. })
}

/// The specification the incremental machine must match: sort the distinct events into their
/// canonical order, `(version, rank)`, and run the textbook sequential machine over them, in
/// which a terminal event swallows everything after it.
fn oracle(term: Term, events: &[Event], now: Timestamp) -> (Status, Option<Timestamp>) {
    let rank = |k: &EventKind| match k {
        EventKind::PaymentPending => 0,
        EventKind::PaymentSucceeded { .. } => 1,
        EventKind::CancelUndone => 2,
        EventKind::PaymentFailed => 3,
        EventKind::CancelScheduled { .. } => 4,
        EventKind::Revoked => 5,
        EventKind::Refunded { .. } => 6,
        EventKind::Disputed => 7,
        EventKind::TermElapsed => 8,
    };
    let value = |k: &EventKind| match *k {
        EventKind::PaymentSucceeded { access_until } => access_until,
        EventKind::CancelScheduled { access_until } => Some(access_until),
        _ => None,
    };
    let mut sorted = events.to_vec();
    sorted.sort_by_key(|e| (e.version, rank(&e.kind), value(&e.kind)));
    let (mut paid, mut phase, mut period, mut fixed, mut elapsed) = (false, Status::Active, None, None, None);
    for e in &sorted {
        match e.kind {
            EventKind::Revoked | EventKind::Disputed => return (Status::Revoked, None),
            EventKind::Refunded { full: true } => return (Status::Refunded, None),
            EventKind::PaymentSucceeded { access_until } => {
                paid = true;
                phase = Status::Active;
                match term.extension() {
                    Some(d) => fixed = Some(fixed.map_or(now, |f: Timestamp| f.max(now)) + d),
                    None => period = access_until.or(period),
                }
            }
            EventKind::CancelScheduled { access_until } => {
                phase = Status::Cancelled;
                period = Some(access_until);
            }
            EventKind::CancelUndone => phase = Status::Active,
            EventKind::PaymentFailed => phase = Status::PastDue,
            EventKind::TermElapsed => elapsed = elapsed.max(Some(e.version.at())),
            EventKind::PaymentPending | EventKind::Refunded { full: false } => {}
        }
    }
    let until = if term.extension().is_some() { fixed } else { period };
    let lapsed = matches!((elapsed, until), (Some(e), Some(u)) if e >= u);
    let status = match phase {
        _ if !paid => Status::Pending,
        Status::Cancelled | Status::PastDue if lapsed => Status::Expired,
        _ if lapsed && term.extension().is_some() => Status::Expired,
        p => p,
    };
    (status, until)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn applying_an_event_twice_changes_nothing_the_second_time(
        term in arb_term(),
        history in prop::collection::vec(arb_event(), 0..12),
        event in arb_event(),
    ) {
        prop_assume!(!is_fixed_payment(term, &event));
        let now = t(1000);
        let once = apply(&run(term, &history, now), &event, now).expect("applies");
        let twice = apply(&once.standing, &event, now).expect("applies");
        prop_assert_eq!(&twice.standing, &once.standing);
        prop_assert_eq!(twice.outcome, Outcome::Unchanged);
        prop_assert!(twice.effects.is_empty());
    }

    #[test]
    fn every_permutation_of_a_history_ends_in_the_same_standing(
        term in arb_term(),
        (history, shuffled) in prop::collection::vec(arb_event(), 0..14)
            .prop_flat_map(|h| (Just(h.clone()), Just(h).prop_shuffle())),
    ) {
        let now = t(1000);
        prop_assert_eq!(run(term, &history, now), run(term, &shuffled, now));
    }

    #[test]
    fn the_machine_agrees_with_the_sequential_specification(
        term in arb_term(),
        history in prop::collection::vec(arb_event(), 0..14),
    ) {
        let now = t(1000);
        let s = run(term, &history, now);
        prop_assert_eq!((s.status(), s.access_until()), oracle(term, &history, now));
    }

    #[test]
    fn revoked_and_refunded_absorb_whatever_comes_next(
        term in arb_term(),
        history in prop::collection::vec(arb_event(), 0..8),
        later in prop::collection::vec(arb_event(), 1..8),
    ) {
        let now = t(1000);
        let before = run(term, &history, now);
        prop_assume!(matches!(before.status(), Status::Revoked | Status::Refunded));
        let mut s = before.clone();
        for e in &later {
            let step = apply(&s, e, now).expect("applies");
            prop_assert!(step.effects.is_empty(), "{:?} emitted effects on a terminal standing", e);
            s = step.standing;
            prop_assert!(!entitled(&s, now, GRACE));
        }
        prop_assert!(matches!(s.status(), Status::Revoked | Status::Refunded));
    }

    #[test]
    fn expired_absorbs_everything_but_a_reactivation(
        term in arb_term(),
        until in 0i64..1000,
        elapsed_after in 0i64..500,
        later in prop::collection::vec(arb_event(), 1..10),
    ) {
        let now = t(1000);
        // A paid purchase whose cancellation (or fixed term) ran out and was marked elapsed.
        let expiring = match term {
            Term::Fixed { .. } => vec![ev(paid(0), 0)],
            _ => vec![ev(paid(until), 0), ev(cancel(until), 1)],
        };
        let mut s = run(term, &expiring, now);
        let end = s.access_until().expect("has an end");
        s = apply(&s, &Event { kind: EventKind::TermElapsed, version: Version(end + Duration::hours(elapsed_after)) }, now)
            .expect("applies")
            .standing;
        prop_assert_eq!(s.status(), Status::Expired);
        for e in &later {
            let reactivation = matches!(
                e.kind,
                EventKind::PaymentSucceeded { .. } | EventKind::CancelUndone | EventKind::CancelScheduled { .. }
            );
            if reactivation {
                break; // the documented way out
            }
            s = apply(&s, e, now).expect("applies").standing;
            prop_assert!(matches!(s.status(), Status::Expired | Status::Revoked | Status::Refunded), "{:?} -> {:?}", e, s.status());
            prop_assert!(!entitled(&s, now, GRACE));
        }
    }

    #[test]
    fn there_is_no_access_without_a_payment(
        term in arb_term(),
        history in prop::collection::vec(arb_event(), 0..14),
        probe in 0i64..3000,
    ) {
        let unpaid: Vec<Event> = history
            .into_iter()
            .filter(|e| !matches!(e.kind, EventKind::PaymentSucceeded { .. }))
            .collect();
        let s = run(term, &unpaid, t(1000));
        prop_assert!(matches!(s.status(), Status::Pending | Status::Revoked | Status::Refunded), "{:?}", s.status());
        prop_assert!(!entitled(&s, t(probe), GRACE));
    }

    #[test]
    fn fixed_term_payments_never_shorten_access(
        days in 1u16..400,
        start in proptest::option::of(0i64..3000),
        now in 0i64..3000,
    ) {
        let term = Term::Fixed { days };
        let mut s = Standing::new(term);
        s.fixed_until = start.map(t);
        let before = s.access_until();
        let after = apply(&s, &ev(paid(0), now), t(now)).expect("applies").standing;
        let until = after.access_until().expect("a fixed payment sets an end");
        prop_assert!(before.is_none_or(|b| until >= b + Duration::days(days.into())));
        prop_assert!(until >= t(now) + Duration::days(days.into()));
    }

    #[test]
    fn a_role_is_desired_iff_one_entitlement_is_entitled(
        histories in prop::collection::vec((arb_term(), prop::collection::vec(arb_event(), 0..8)), 0..5),
        probe in 0i64..3000,
    ) {
        let standings: Vec<Standing> = histories.iter().map(|(term, h)| run(*term, h, t(1000))).collect();
        let now = t(probe);
        let desired = role_desired(&standings, now, GRACE);
        prop_assert_eq!(desired, standings.iter().filter(|s| entitled(s, now, GRACE)).count() >= 1);
        // Adding a purchase that is not entitled never takes the role away.
        let mut more = standings.clone();
        more.push(run(Term::Recurring, &[ev(paid(0), 0), ev(EventKind::Refunded { full: true }, 1)], t(1000)));
        prop_assert_eq!(role_desired(&more, now, GRACE), desired);
    }
}

// ----- the same rules as a state machine over deliveries (proptest-state-machine) -----

/// One webhook delivery: a provider event id and the event it carries. The same id may be
/// delivered again (a retry), and ids arrive in any order.
#[derive(Debug, Clone)]
struct Delivery {
    id: u8,
    event: Event,
}

#[derive(Debug, Clone)]
struct Deliveries {
    term: Term,
    /// Every delivery made so far, redeliveries included.
    log: Vec<Delivery>,
}

impl Deliveries {
    fn distinct_events(&self) -> Vec<Event> {
        let mut seen = std::collections::BTreeSet::new();
        self.log.iter().filter(|d| seen.insert(d.id)).map(|d| d.event).collect()
    }
}

struct DeliveryModel;

impl ReferenceStateMachine for DeliveryModel {
    type State = Deliveries;
    type Transition = Delivery;

    fn init_state() -> BoxedStrategy<Deliveries> {
        arb_term().prop_map(|term| Deliveries { term, log: vec![] }).boxed()
    }

    fn transitions(state: &Deliveries) -> BoxedStrategy<Delivery> {
        let fresh = (any::<u8>(), arb_event()).prop_map(|(id, event)| Delivery { id: id | 0x80, event });
        if state.log.is_empty() {
            fresh.boxed()
        } else {
            let again = proptest::sample::select(state.log.clone());
            prop_oneof![2 => fresh, 1 => again].boxed()
        }
    }

    fn preconditions(state: &Deliveries, d: &Delivery) -> bool {
        // A provider never reuses an id for a different event.
        state.log.iter().all(|seen| seen.id != d.id || seen.event == d.event)
    }

    fn apply(mut state: Deliveries, d: &Delivery) -> Deliveries {
        state.log.push(d.clone());
        state
    }
}

/// The system under test: the incremental machine behind the ledger's id deduplication.
struct DeliveredStanding {
    standing: Standing,
    recorded: std::collections::BTreeSet<u8>,
}

impl StateMachineTest for DeliveredStanding {
    type SystemUnderTest = Self;
    type Reference = DeliveryModel;

    fn init_test(reference: &Deliveries) -> Self {
        DeliveredStanding { standing: Standing::new(reference.term), recorded: Default::default() }
    }

    fn apply(mut sut: Self, _reference: &Deliveries, d: Delivery) -> Self {
        if sut.recorded.insert(d.id) {
            let before = sut.standing.status();
            let step = super::apply(&sut.standing, &d.event, t(1000)).expect("applies");
            if matches!(before, Status::Revoked | Status::Refunded) {
                let after = step.standing.status();
                assert!(matches!(after, Status::Revoked | Status::Refunded), "{before} became {after}");
                assert!(step.effects.is_empty(), "a terminal standing asked for a role job");
            }
            sut.standing = step.standing;
        }
        sut
    }

    fn check_invariants(sut: &Self, reference: &Deliveries) {
        let events = reference.distinct_events();
        let expected = oracle(reference.term, &events, t(1000));
        assert_eq!(
            (sut.standing.status(), sut.standing.access_until()),
            expected,
            "after {:?}",
            reference.log
        );
        for probe in [0, 500, 1000, 1500, 2500] {
            let spec = run(reference.term, &events, t(1000));
            assert_eq!(entitled(&sut.standing, t(probe), GRACE), entitled(&spec, t(probe), GRACE));
        }
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn deliveries_with_retries_and_reordering_converge(sequential 1..40 => DeliveredStanding);
}
