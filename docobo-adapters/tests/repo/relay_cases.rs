//! The relay's contract cases: relays, signals and mirror jobs as `RelayRepo` promises them.

use std::sync::Arc;

use docobo_core::domain::*;
use docobo_core::ports::*;
use docobo_core::service::{deliver_due_mirrors, record_source_event};
use docobo_core::testing::{FakeMirrors, ManualClock};
use time::Duration;

use crate::cases::{T0, guild};

fn channel(n: u64) -> ChannelId {
    ChannelId::new(800_000_000_000_000_000 + n).expect("id")
}

fn relay_to(target: u64) -> NewRelay {
    NewRelay {
        source_guild: guild(),
        source_channel: channel(1),
        target_guild: GuildId::new(900_000_000_000_000_100 + target).expect("id"),
        target_channel: channel(target),
        via: Via::Webhook,
        name: Some("vip".into()),
        ping_role: Some(RoleId::new(700_000_000_000_000_001).expect("id")),
        access_role: Some(RoleId::new(700_000_000_000_000_002).expect("id")),
    }
}

fn message(n: u64, content: &str) -> SourceMessage {
    SourceMessage {
        guild: guild(),
        channel: channel(1),
        id: MessageId::new(1_200_000_000_000_000_000 + n).expect("id"),
        author: Author {
            name: "analyst ✓".into(),
            avatar_url: Some("https://cdn.discordapp.com/a.png".into()),
        },
        content: content.into(),
        embeds: vec![Embed { json: r#"{"title":"chart","type":"rich"}"#.into(), chars: 5 }],
        attachments: vec![Attachment {
            id: "55".into(),
            name: "chart.png".into(),
            content_type: Some("image/png".into()),
            size: 1234,
            url: "https://cdn.discordapp.com/attachments/1/55/chart.png".into(),
            stored: Some("ab".repeat(32)),
        }],
        edited_at: None,
    }
}

pub async fn relays_are_unique_per_pair_and_removed_with_their_jobs<R: SubscriptionRepo>(repo: &R) {
    let first = repo.add_relay(&relay_to(2), T0).await.expect("adds");
    assert_eq!((first.via, first.name.as_deref(), first.created_at), (Via::Webhook, Some("vip"), T0));
    assert_eq!(first.access_role, relay_to(2).access_role);
    let again = repo.add_relay(&relay_to(2), T0).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists(_))), "{again:?}");
    let second =
        repo.add_relay(&NewRelay { via: Via::Bot, ping_role: None, ..relay_to(3) }, T0).await.expect("adds");
    assert_eq!(repo.relays().await.expect("lists"), vec![first.clone(), second.clone()]);
    repo.record_signal(&SignalWrite::Insert { message: message(1, "BTC"), deleted: false }, T0)
        .await
        .expect("records");
    let signal = repo.signal(channel(1), message(1, "").id).await.expect("reads").expect("stored");
    assert_eq!(repo.mirrors_of(signal.id).await.expect("jobs").len(), 2);
    assert!(repo.remove_relay(first.id).await.expect("removes"));
    assert!(!repo.remove_relay(first.id).await.expect("removes"));
    let left = repo.mirrors_of(signal.id).await.expect("jobs");
    assert_eq!(left.iter().map(|j| j.relay).collect::<Vec<_>>(), vec![second.id]);
}

pub async fn a_signal_and_its_jobs_are_recorded_together_and_changes_repend_them<R: SubscriptionRepo>(
    repo: &R,
) {
    let relay = repo.add_relay(&relay_to(2), T0).await.expect("adds");
    let write = SignalWrite::Insert { message: message(1, "BTC long"), deleted: false };
    repo.record_signal(&write, T0).await.expect("records");
    assert_eq!(repo.record_signal(&write, T0).await, Err(StoreError::Conflict));
    let signal = repo.signal(channel(1), message(1, "").id).await.expect("reads").expect("stored");
    assert_eq!((signal.version, signal.deleted, &signal.message), (1, false, &message(1, "BTC long")));
    assert_eq!(repo.signal_by_id(signal.id).await.expect("reads"), Some(signal.clone()));
    assert_eq!(repo.last_signal(channel(1)).await.expect("reads"), Some(message(1, "").id));
    let jobs = repo.mirrors_of(signal.id).await.expect("jobs");
    assert_eq!(jobs, vec![MirrorJob::new(signal.id, relay.id, message(1, "").id, T0)]);

    // A tombstone for a message never seen queues nothing.
    let tomb = SignalWrite::Insert { message: message(2, ""), deleted: true };
    repo.record_signal(&tomb, T0).await.expect("records");
    let tomb = repo.signal(channel(1), message(2, "").id).await.expect("reads").expect("stored");
    assert!(tomb.deleted && repo.mirrors_of(tomb.id).await.expect("jobs").is_empty());

    // Mirror it, then edit: the job is pending again and wants version 2.
    let claimed = repo.claim_mirrors(T0, Duration::seconds(30), 10).await.expect("claims");
    let posted = vec![PostedMessage { id: MessageId::new(9).expect("id"), webhook: Some(5) }];
    let done = MirrorSettlement::Mirrored { version: 1, posted: posted.clone() };
    assert!(repo.settle_mirror(&claimed[0], done, T0).await.expect("settles"));
    let later = T0 + Duration::minutes(1);
    let mut edited = message(1, "BTC long, stop 60k");
    edited.edited_at = Some(later);
    let stale =
        SignalWrite::Update { id: signal.id, expected_version: 7, message: edited.clone(), deleted: false };
    assert_eq!(repo.record_signal(&stale, later).await, Err(StoreError::Conflict));
    let update =
        SignalWrite::Update { id: signal.id, expected_version: 1, message: edited.clone(), deleted: false };
    repo.record_signal(&update, later).await.expect("records");
    let signal = repo.signal_by_id(signal.id).await.expect("reads").expect("stored");
    assert_eq!((signal.version, &signal.message, signal.changed_at), (2, &edited, later));
    let job = &repo.mirrors_of(signal.id).await.expect("jobs")[0];
    assert_eq!((job.state, job.wanted, job.mirrored, &job.posted), (JobState::Pending, 2, 1, &posted));
}

pub async fn signal_feeds_read_live_signals_newest_first_and_changes_since_a_time<R: SubscriptionRepo>(
    repo: &R,
) {
    let other = ChannelId::new(800_000_000_000_000_999).expect("id");
    for (n, at) in [(1, 0), (2, 1), (3, 2)] {
        let write = SignalWrite::Insert { message: message(n, &format!("signal {n}")), deleted: false };
        repo.record_signal(&write, T0 + Duration::seconds(at)).await.expect("records");
    }
    let elsewhere = SourceMessage { channel: other, ..message(9, "elsewhere") };
    repo.record_signal(&SignalWrite::Insert { message: elsewhere, deleted: false }, T0)
        .await
        .expect("records");
    let first = repo.signal(channel(1), message(1, "").id).await.expect("reads").expect("stored");
    let gone =
        SignalWrite::Update { id: first.id, expected_version: 1, message: message(1, ""), deleted: true };
    repo.record_signal(&gone, T0 + Duration::seconds(3)).await.expect("deletes");

    let contents = |signals: Vec<Signal>| signals.into_iter().map(|s| s.message.content).collect::<Vec<_>>();
    let recent = repo.recent_signals(&[channel(1)], 10).await.expect("reads");
    assert_eq!(contents(recent), ["signal 3", "signal 2"], "live only, newest first, this channel only");
    assert_eq!(contents(repo.recent_signals(&[channel(1)], 1).await.expect("reads")), ["signal 3"]);
    assert!(repo.recent_signals(&[], 10).await.expect("reads").is_empty());
    let both = repo.recent_signals(&[channel(1), other], 10).await.expect("reads");
    assert_eq!(contents(both).len(), 3);

    let changed = repo.signals_changed_since(T0 + Duration::seconds(1), 10).await.expect("reads");
    let seen: Vec<(String, bool)> = changed.iter().map(|s| (s.message.content.clone(), s.deleted)).collect();
    let want = [("signal 2", false), ("signal 3", false), ("", true)].map(|(c, d)| (c.to_owned(), d));
    assert_eq!(seen, want, "oldest change first, the delete included");
    assert_eq!(repo.signals_changed_since(T0 + Duration::seconds(1), 1).await.expect("reads").len(), 1);
    assert!(repo.signals_changed_since(T0 + Duration::seconds(4), 10).await.expect("reads").is_empty());
}

pub async fn mirror_claims_keep_source_order_and_settle_only_under_their_lease<R: SubscriptionRepo>(
    repo: &R,
) {
    let relay = repo.add_relay(&relay_to(2), T0).await.expect("adds");
    for n in 1..=3 {
        let write = SignalWrite::Insert { message: message(n, &format!("signal {n}")), deleted: false };
        repo.record_signal(&write, T0).await.expect("records");
    }
    let lease = Duration::seconds(30);
    let claimed = repo.claim_mirrors(T0, lease, 2).await.expect("claims");
    assert_eq!(
        claimed.iter().map(|j| j.position).collect::<Vec<_>>(),
        vec![message(1, "").id, message(2, "").id]
    );
    assert!(repo.claim_mirrors(T0, lease, 10).await.expect("claims").is_empty(), "3 waits behind 1 and 2");
    assert_eq!(repo.next_mirror_due().await.expect("due"), Some(T0 + lease));

    // The first fails before posting: it retries later and holds the others back.
    assert!(repo.note_mirror_attempt(&claimed[0], &["d1".to_owned()], T0).await.expect("notes"));
    let retry_at = T0 + Duration::seconds(10);
    let retry = MirrorSettlement::Retry { at: retry_at, error: "HTTP 503".into(), posted: Vec::new() };
    assert!(repo.settle_mirror(&claimed[0], retry, T0).await.expect("settles"));
    assert!(repo.settle_mirror(&claimed[1], MirrorSettlement::Released, T0).await.expect("settles"));
    assert!(
        !repo.settle_mirror(&claimed[1], MirrorSettlement::Released, T0).await.expect("settles"),
        "lease gone"
    );
    assert!(repo.claim_mirrors(T0, lease, 10).await.expect("claims").is_empty());
    assert_eq!(repo.next_mirror_due().await.expect("due"), Some(retry_at));

    let again = repo.claim_mirrors(retry_at, lease, 10).await.expect("claims");
    assert_eq!(again.len(), 3);
    let first = &again[0];
    assert_eq!((first.attempts, first.tried_at, first.tried.clone()), (1, Some(T0), vec!["d1".to_owned()]));
    assert_eq!(first.last_error.as_deref(), Some("HTTP 503"));
    // A worker whose lease ran out cannot note or settle.
    let taken = repo.claim_mirrors(retry_at + lease, lease, 1).await.expect("claims");
    assert_eq!(taken[0].signal, first.signal);
    assert!(!repo.note_mirror_attempt(first, &[], retry_at).await.expect("notes"));
    let done = MirrorSettlement::Mirrored { version: 1, posted: Vec::new() };
    assert!(!repo.settle_mirror(first, done.clone(), retry_at).await.expect("settles"));
    assert!(repo.settle_mirror(&taken[0], done, retry_at).await.expect("settles"));
    let parked = MirrorSettlement::Parked { why: "Missing Permissions".into(), posted: Vec::new() };
    assert!(repo.settle_mirror(&again[1], parked, retry_at).await.expect("settles"));
    let parked = repo.mirror_jobs(JobState::Parked, 10).await.expect("lists");
    assert_eq!(parked.len(), 1);
    assert_eq!((parked[0].relay, parked[0].last_error.as_deref()), (relay.id, Some("Missing Permissions")));
    assert!(repo.retry_mirror(parked[0].signal, relay.id, retry_at).await.expect("retries"));
    assert!(!repo.retry_mirror(parked[0].signal, relay.id, retry_at).await.expect("retries"));
    assert_eq!(repo.mirror_jobs(JobState::Done, 10).await.expect("lists").len(), 1);
}

pub async fn signals_flow_to_every_target_once_even_when_answers_are_lost<R: SubscriptionRepo>(repo: &R) {
    let clock = Arc::new(ManualClock::new(T0));
    let discord = FakeMirrors::new(clock.clone());
    for target in [2, 3] {
        repo.add_relay(&NewRelay { ping_role: None, ..relay_to(target) }, T0).await.expect("adds");
    }
    discord.lose_answers(2);
    for n in 1..=5 {
        let event = SourceEvent::Posted(message(n, &format!("signal {n}")));
        assert!(record_source_event(repo, &*clock, &event).await.expect("records"));
    }
    let edit = SourceEvent::Edited(SourceEdit {
        guild: guild(),
        channel: channel(1),
        id: message(2, "").id,
        author: None,
        content: Some("signal 2, edited".into()),
        embeds: None,
        attachments: None,
        edited_at: Some(T0 + Duration::minutes(1)),
    });
    record_source_event(repo, &*clock, &edit).await.expect("records");
    let deleted = SourceEvent::Deleted { guild: guild(), channel: channel(1), id: message(4, "").id };
    record_source_event(repo, &*clock, &deleted).await.expect("records");
    for _ in 0..50 {
        let Some(due) = repo.next_mirror_due().await.expect("due") else { break };
        clock.set(due.max(clock.now()));
        deliver_due_mirrors(repo, &discord, &*clock, Duration::seconds(30), 20).await.expect("delivers");
    }
    assert_eq!(repo.next_mirror_due().await.expect("due"), None);
    for target in [2, 3] {
        let shown: Vec<String> = discord.messages(channel(target)).into_iter().map(|m| m.content).collect();
        assert_eq!(shown, ["signal 1", "signal 2, edited", "signal 3", "signal 5"], "target {target}");
    }
}

pub async fn sessions_are_found_until_they_expire_and_revoked_one_or_all<R: SubscriptionRepo>(repo: &R) {
    let session = |id: &str, user: u64| Session {
        id: id.to_owned(),
        user: crate::cases::user(user),
        name: "buyer".into(),
        csrf: format!("csrf-{id}"),
        created_at: T0,
        expires_at: T0 + Duration::days(7),
    };
    repo.put_session(&session("a", 1)).await.expect("stores");
    repo.put_session(&session("b", 1)).await.expect("stores");
    repo.put_session(&session("c", 2)).await.expect("stores");
    assert!(matches!(repo.put_session(&session("a", 3)).await, Err(StoreError::AlreadyExists(_))));
    assert_eq!(repo.session("a", T0).await.expect("reads"), Some(session("a", 1)));
    assert_eq!(repo.session("a", T0 + Duration::days(7)).await.expect("reads"), None, "expired");
    assert_eq!(repo.session("zzz", T0).await.expect("reads"), None);
    assert!(repo.delete_session("c").await.expect("deletes"));
    assert!(!repo.delete_session("c").await.expect("deletes"));
    assert_eq!(repo.delete_sessions_of(crate::cases::user(1)).await.expect("deletes"), 2);
    assert_eq!(repo.session("b", T0).await.expect("reads"), None);
}
