//! The table in `relay.rs`, row by row.

use time::macros::datetime;

use super::*;

fn message(content: &str) -> SourceMessage {
    SourceMessage {
        guild: GuildId::new(1).expect("id"),
        channel: ChannelId::new(2).expect("id"),
        id: MessageId::new(3).expect("id"),
        author: Author { name: "analyst".into(), avatar_url: None },
        content: content.into(),
        embeds: Vec::new(),
        attachments: Vec::new(),
        edited_at: None,
    }
}

fn stored(content: &str) -> Signal {
    Signal {
        id: SignalId(9),
        message: message(content),
        version: 1,
        deleted: false,
        changed_at: datetime!(2026-12-06 00:00 UTC),
    }
}

fn edit(content: Option<&str>, edited_at: Option<Timestamp>) -> SourceEvent {
    let m = message("");
    SourceEvent::Edited(SourceEdit {
        guild: m.guild,
        channel: m.channel,
        id: m.id,
        author: None,
        content: content.map(str::to_owned),
        embeds: None,
        attachments: None,
        edited_at,
    })
}

const LATER: Timestamp = datetime!(2026-12-06 00:01 UTC);

#[test]
fn a_new_message_is_inserted_and_a_redelivery_changes_nothing() {
    let posted = SourceEvent::Posted(message("BTC long"));
    assert_eq!(
        decide_signal(None, &posted),
        Some(SignalWrite::Insert { message: message("BTC long"), deleted: false })
    );
    assert_eq!(decide_signal(Some(&stored("BTC long")), &posted), None);
}

#[test]
fn an_edit_counts_only_when_its_time_advanced_and_its_body_changed() {
    let s = stored("BTC long");
    let Some(SignalWrite::Update { expected_version: 1, message, deleted: false, .. }) =
        decide_signal(Some(&s), &edit(Some("BTC long, stop 60k"), Some(LATER)))
    else {
        panic!("a real edit must update")
    };
    assert_eq!((message.content.as_str(), message.edited_at), ("BTC long, stop 60k", Some(LATER)));
    // An unfurl or a pin: no new edited_timestamp.
    assert_eq!(decide_signal(Some(&s), &edit(Some("BTC long"), None)), None);
    // A newer timestamp but the same body.
    assert_eq!(decide_signal(Some(&s), &edit(Some("BTC long"), Some(LATER))), None);
    // An older edit arriving after a newer one.
    let mut newer = s.clone();
    newer.message.edited_at = Some(LATER);
    assert_eq!(
        decide_signal(Some(&newer), &edit(Some("old"), Some(datetime!(2026-12-06 00:00:30 UTC)))),
        None
    );
}

#[test]
fn a_partial_update_keeps_the_stored_fields_and_cannot_create() {
    let mut s = stored("BTC long");
    s.message.attachments.push(Attachment {
        id: "5".into(),
        name: "chart.png".into(),
        content_type: None,
        size: 1,
        url: "u".into(),
        stored: None,
    });
    let Some(SignalWrite::Update { message, .. }) = decide_signal(Some(&s), &edit(Some("new"), Some(LATER)))
    else {
        panic!("an edit")
    };
    assert_eq!(message.attachments.len(), 1);
    assert_eq!(message.author.name, "analyst");
    assert_eq!(decide_signal(None, &edit(Some("new"), Some(LATER))), None);
}

#[test]
fn a_delete_leaves_a_tombstone_and_nothing_changes_a_tombstone() {
    let deleted = SourceEvent::Deleted {
        guild: GuildId::new(1).expect("id"),
        channel: ChannelId::new(2).expect("id"),
        id: MessageId::new(3).expect("id"),
    };
    assert!(matches!(
        decide_signal(Some(&stored("x")), &deleted),
        Some(SignalWrite::Update { deleted: true, .. })
    ));
    assert!(matches!(decide_signal(None, &deleted), Some(SignalWrite::Insert { deleted: true, .. })));
    let mut tomb = stored("x");
    tomb.deleted = true;
    assert_eq!(decide_signal(Some(&tomb), &edit(Some("y"), Some(LATER))), None);
    assert_eq!(decide_signal(Some(&tomb), &SourceEvent::Posted(message("x"))), None);
    assert_eq!(decide_signal(Some(&tomb), &deleted), None);
}

fn job(relay: i64, position: u64, due: bool, posted: bool) -> MirrorJob {
    MirrorJob {
        signal: SignalId(i64::try_from(position).expect("small")),
        relay: RelayId(relay),
        position: MessageId::new(position).expect("id"),
        state: JobState::Pending,
        wanted: 1,
        mirrored: i64::from(posted),
        posted: Vec::new(),
        attempts: 0,
        run_at: if due { LATER - time::Duration::minutes(1) } else { LATER + time::Duration::minutes(1) },
        locked_until: None,
        tried_at: None,
        tried: Vec::new(),
        last_error: None,
    }
}

#[test]
fn a_waiting_create_holds_back_later_jobs_of_its_relay_only() {
    let pending = [
        job(1, 10, false, false), // waits for its retry: nothing posted yet
        job(1, 11, true, false),  // held back: it would overtake
        job(2, 12, true, false),
        job(3, 13, false, true), // an edit waiting does not hold back
        job(3, 14, true, false),
    ];
    assert_eq!(MirrorJob::claimable(&pending, LATER, 10), vec![2, 4]);
    assert_eq!(MirrorJob::claimable(&pending, LATER, 1), vec![2]);
    let mut leased = pending.clone();
    leased[0].run_at = LATER - time::Duration::minutes(1);
    leased[0].locked_until = Some(LATER + time::Duration::seconds(30));
    assert_eq!(
        MirrorJob::claimable(&leased, LATER, 10),
        vec![2, 4],
        "a create in flight elsewhere holds back too"
    );
}
