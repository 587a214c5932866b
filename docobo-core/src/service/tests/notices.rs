//! Member notices against the in-memory adapters, with the clock moved by hand: what is sent
//! when, once, and what is not.

use super::*;
use crate::service::notices::{NOTICE_LEASE, Pace, Sender, plan_reminders, send_due_notices};
use crate::testing::FakeDms;

const DAY: Duration = Duration::DAY;

struct Notices {
    w: World,
    dms: FakeDms,
    providers: ProviderRegistry,
}

/// Distinct bytes on every call, as random ones would be.
fn entropy() -> [u8; 6] {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_le_bytes();
    [n[0], n[1], n[2] % 31, n[0] / 31, n[1] / 31, 0]
}

impl Notices {
    async fn new(term: Term) -> Notices {
        let w = World::new(term).await;
        let providers =
            ProviderRegistry::new().with(std::sync::Arc::new(ToyProvider::named(ProviderName::POLAR)));
        Notices { w, dms: FakeDms::new(), providers }
    }

    /// A payment by `user` for purchase `reference` at the clock's time.
    async fn pay(&self, id: &str, reference: &str, user: UserId) {
        let mut lines = webhook(id, "payment_succeeded", reference, self.w.clock.now());
        lines.extend([("user", user.to_string()), ("product", "prod_vip".to_owned())]);
        let report = self.w.deliver(&lines).await.expect("ingests");
        assert!(matches!(report.outcome, IngestOutcome::Processed { .. }), "{report:?}");
    }

    /// Everything the workers do at `at`, as a freshly started process would (a new pace): plan
    /// reminders, expire, send. Returns the kinds sent in this step.
    async fn step(&self, at: OffsetDateTime) -> Vec<NoticeKind> {
        self.w.clock.set(at);
        let before = self.dms.sent().len();
        plan_reminders(&self.w.repo, &self.w.clock).await.expect("plans");
        expire_due(&self.w.repo, &self.w.clock, 100).await.expect("expires");
        self.send(&mut Pace::default()).await;
        self.dms.sent()[before..].iter().map(|(_, m)| kind_of(&m.text)).collect()
    }

    async fn send(&self, pace: &mut Pace) -> Vec<(NoticeKind, NoticeOutcome)> {
        let sender =
            Sender { dms: &self.dms, providers: &self.providers, clock: &self.w.clock, entropy: &entropy };
        send_due_notices(&self.w.repo, &sender, pace).await.expect("sends")
    }

    async fn log(&self) -> Vec<Notice> {
        self.w.repo.member_notice_log(guild(), user()).await.expect("log")
    }
}

/// Which notice a text is, by its English wording.
fn kind_of(text: &str) -> NoticeKind {
    match text {
        t if t.contains(" ends in ") => NoticeKind::EndingSoon,
        t if t.contains("did not go through") => NoticeKind::PaymentFailed,
        t if t.contains("has ended") => NoticeKind::Ended,
        t if t.starts_with("Welcome") => NoticeKind::Welcome,
        t => panic!("unknown notice: {t}"),
    }
}

#[tokio::test]
async fn a_thirty_day_purchase_gets_the_three_and_one_day_reminders_and_one_ended_each_once() {
    let n = Notices::new(Term::Fixed { days: 30 }).await;
    n.pay("evt_1", "code_1", user()).await;
    let end = START + 30 * DAY;
    let mut sent = Vec::new();
    // Every step twice, as a restarted process would run it: nothing goes out twice.
    for at in [
        START,
        end - 3 * DAY - Duration::SECOND,
        end - 3 * DAY,
        end - 2 * DAY,
        end - DAY,
        end - Duration::HOUR,
        end,
        end + DAY,
    ] {
        let first = n.step(at).await;
        let again = n.step(at).await;
        assert!(again.is_empty(), "sent again at {at}: {again:?}");
        sent.extend(first.into_iter().map(|k| (at, k)));
    }
    assert_eq!(
        sent,
        [
            (end - 3 * DAY, NoticeKind::EndingSoon),
            (end - DAY, NoticeKind::EndingSoon),
            (end, NoticeKind::Ended)
        ]
    );
    let messages = n.dms.sent();
    assert!(messages[0].1.text.contains("ends in 3 days"), "{}", messages[0].1.text);
    assert!(messages[1].1.text.contains("ends in 1 day"), "{}", messages[1].1.text);
    // The renew button is the checkout /join makes.
    let (_, url) = messages[0].1.button.clone().expect("a renew button");
    assert!(url.starts_with("https://toy.invalid/pay/DCB"), "{url}");
    assert!(messages.iter().all(|(to, _)| *to == user()));
    assert!(n.log().await.iter().all(|notice| notice.state == NoticeState::Sent));
}

#[tokio::test]
async fn a_renewal_moves_the_reminders_to_the_new_end_and_drops_one_planned_for_the_old() {
    let n = Notices::new(Term::Fixed { days: 30 }).await;
    n.pay("evt_1", "code_1", user()).await;
    let end = START + 30 * DAY;
    assert_eq!(n.step(end - 3 * DAY).await, [NoticeKind::EndingSoon]);
    // The 1-day reminder is planned, then the member pays before it goes out.
    n.w.clock.set(end - DAY);
    assert_eq!(plan_reminders(&n.w.repo, &n.w.clock).await.expect("plans"), 1);
    n.pay("evt_2", "code_1", user()).await;
    assert!(n.step(end - DAY).await.is_empty(), "a reminder for the old end went out");
    assert!(n.step(end).await.is_empty(), "the purchase did not end");
    let new_end = end + 30 * DAY;
    assert_eq!(n.step(new_end - 3 * DAY).await, [NoticeKind::EndingSoon]);
    assert_eq!(n.step(new_end - DAY).await, [NoticeKind::EndingSoon]);
    assert_eq!(n.step(new_end).await, [NoticeKind::Ended]);
    let skipped: Vec<_> = n.log().await.into_iter().filter(|x| x.state == NoticeState::Skipped).collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].note.as_deref(), Some("access no longer ends then (renewed or changed)"));
}

#[tokio::test]
async fn a_server_that_was_down_sends_only_the_latest_reminder_and_never_one_after_the_end() {
    let n = Notices::new(Term::Fixed { days: 30 }).await;
    n.pay("evt_1", "code_1", user()).await;
    let end = START + 30 * DAY;
    // Down from before the 3-day mark until after the 1-day mark: one reminder, the 1-day one.
    assert_eq!(n.step(end - 12 * Duration::HOUR).await, [NoticeKind::EndingSoon]);
    assert!(n.dms.sent()[0].1.text.contains("ends in 12 hours"), "{}", n.dms.sent()[0].1.text);

    // Down across the end: no reminder, one ended.
    let late = Notices::new(Term::Fixed { days: 30 }).await;
    late.pay("evt_1", "code_1", user()).await;
    assert_eq!(late.step(end + Duration::HOUR).await, [NoticeKind::Ended]);
}

#[tokio::test]
async fn notify_off_stops_notices_and_on_brings_them_back() {
    let n = Notices::new(Term::Fixed { days: 30 }).await;
    n.pay("evt_1", "code_1", user()).await;
    let end = START + 30 * DAY;
    n.w.repo.set_member_notices(guild(), user(), false, START).await.expect("off");
    assert!(n.step(end - 3 * DAY).await.is_empty());
    assert_eq!(n.log().await[0].state, NoticeState::Skipped);
    n.w.repo.set_member_notices(guild(), user(), true, START).await.expect("on");
    assert_eq!(n.step(end - DAY).await, [NoticeKind::EndingSoon]);
    assert_eq!(n.dms.attempts(), 1);
}

#[tokio::test]
async fn a_member_with_dms_closed_gets_one_attempt_and_is_marked_unreachable() {
    let n = Notices::new(Term::Fixed { days: 30 }).await;
    n.dms.close_dms(user());
    n.pay("evt_1", "code_1", user()).await;
    let end = START + 30 * DAY;
    for at in [end - 3 * DAY, end - DAY, end] {
        assert!(n.step(at).await.is_empty());
    }
    assert_eq!(n.dms.attempts(), 1, "retried a member Discord refused");
    let member = n.w.repo.member_notices(guild(), user()).await.expect("read");
    assert_eq!(member.unreachable_at, Some(end - 3 * DAY));
    let states: Vec<_> = n.log().await.iter().map(|x| x.state).collect();
    assert_eq!(states, [NoticeState::Failed, NoticeState::Skipped, NoticeState::Skipped]);
    // `/notify on` forgets it: the next notice is tried.
    n.w.repo.set_member_notices(guild(), user(), true, end).await.expect("on");
    assert_eq!(n.w.repo.member_notices(guild(), user()).await.expect("read"), MemberNotices::default());
}

#[tokio::test]
async fn a_failed_renewal_sends_payment_failed_with_the_grace_deadline_then_one_reminder() {
    let n = Notices::new(Term::Recurring).await;
    let end = START + 30 * DAY;
    n.w.sub_event("evt_1", "payment_succeeded", START, Some(end)).await;
    n.w.clock.set(end);
    n.w.sub_event("evt_2", "payment_failed", end, None).await;
    // A redelivery of the failure plans nothing more.
    n.w.sub_event("evt_2b", "payment_failed", end, None).await;
    let grace_end = end + Guild::DEFAULT_GRACE;
    assert_eq!(n.step(end).await, [NoticeKind::PaymentFailed]);
    let text = &n.dms.sent()[0].1.text;
    assert!(text.contains(&format!("until <t:{}:f>", grace_end.unix_timestamp())), "{text}");
    // The 3-day reminder would repeat what it said; the 1-day one goes.
    assert_eq!(n.step(grace_end - DAY).await, [NoticeKind::EndingSoon]);
    assert_eq!(n.step(grace_end).await, [NoticeKind::Ended]);
    assert_eq!(n.dms.sent().len(), 3);
}

#[tokio::test]
async fn a_thousand_purchases_ending_the_same_day_are_notified_one_per_second_none_twice() {
    let n = Notices::new(Term::Fixed { days: 30 }).await;
    for i in 0..1000u64 {
        let member = UserId::new(10_000 + i).expect("id");
        n.pay(&format!("evt_{i}"), &format!("code_{i}"), member).await;
    }
    let reminder = START + 27 * DAY;
    n.w.clock.set(reminder);
    assert_eq!(plan_reminders(&n.w.repo, &n.w.clock).await.expect("plans"), 1000);
    assert_eq!(plan_reminders(&n.w.repo, &n.w.clock).await.expect("plans"), 0);
    let mut pace = Pace::default();
    for second in 0..1000 {
        n.w.clock.set(reminder + Duration::seconds(second));
        let sent = n.send(&mut pace).await;
        assert_eq!(sent, [(NoticeKind::EndingSoon, NoticeOutcome::Sent)], "at second {second}");
        assert!(n.send(&mut pace).await.is_empty(), "a burst at second {second}");
    }
    n.w.clock.set(reminder + Duration::seconds(1000));
    assert!(n.send(&mut pace).await.is_empty());
    let users: BTreeSet<UserId> = n.dms.sent().iter().map(|(u, _)| *u).collect();
    assert_eq!((n.dms.sent().len(), users.len()), (1000, 1000));
}

#[tokio::test]
async fn a_sender_that_dies_after_discord_answered_sends_again_with_the_same_nonce() {
    let n = Notices::new(Term::Fixed { days: 30 }).await;
    n.pay("evt_1", "code_1", user()).await;
    let at = START + 27 * DAY;
    n.w.clock.set(at);
    plan_reminders(&n.w.repo, &n.w.clock).await.expect("plans");
    // A sender claims the notice and dies (Discord got the message; the record did not).
    let claimed = n.w.repo.claim_notices(at, NOTICE_LEASE, 1).await.expect("claims");
    assert_eq!(claimed.len(), 1);
    assert!(n.send(&mut Pace::default()).await.is_empty(), "claimed twice inside the lease");
    n.w.clock.set(at + NOTICE_LEASE);
    assert_eq!(n.send(&mut Pace::default()).await.len(), 1);
    assert_eq!(n.dms.sent()[0].1.nonce, format!("docobo-n{}", claimed[0].id));
    // The dead sender's late settlement is refused.
    assert!(!n.w.repo.settle_notice(&claimed[0], NoticeSettlement::Sent, at).await.expect("settles"));
}

#[tokio::test]
async fn discord_unavailable_is_retried_on_the_backoff_and_a_welcome_goes_once_when_turned_on() {
    let n = Notices::new(Term::Fixed { days: 30 }).await;
    let mut g = n.w.repo.guild(guild()).await.expect("read").expect("guild");
    g.notices.welcome = true;
    n.w.repo.put_guild(&g).await.expect("guild");
    n.dms.fail_next(DmError::Retryable { after: Some(Duration::seconds(20)), why: "HTTP 429".into() });
    n.pay("evt_1", "code_1", user()).await;
    assert!(n.step(START).await.is_empty());
    assert_eq!(n.log().await[0].attempts, 1);
    assert!(n.step(START + Duration::seconds(19)).await.is_empty(), "retried before Retry-After");
    assert_eq!(n.step(START + Duration::seconds(20)).await, [NoticeKind::Welcome]);
    // The second payment of the same purchase is a renewal, not a welcome.
    n.pay("evt_2", "code_1", user()).await;
    assert!(n.step(START + Duration::MINUTE).await.is_empty());
    assert!(n.dms.sent()[0].1.button.is_none(), "a welcome has nothing to renew");
}
