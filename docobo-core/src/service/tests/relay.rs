//! The relay against the in-memory repository and target channels: every semantic the issue
//! names, and a property over random interleavings.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::service::relay::{deliver_due_mirrors, readable_relays, record_source_event};
use crate::testing::{FakeMirrors, TargetMessage};

const SOURCE: u64 = 100;
const TARGETS: [u64; 3] = [201, 202, 203];

struct Relayed {
    repo: MemoryRepo,
    clock: Arc<ManualClock>,
    discord: FakeMirrors,
}

fn channel(id: u64) -> ChannelId {
    ChannelId::new(id).expect("id")
}

fn message(id: u64, content: &str) -> SourceMessage {
    SourceMessage {
        guild: guild(),
        channel: channel(SOURCE),
        id: MessageId::new(id).expect("id"),
        author: Author { name: "analyst".into(), avatar_url: Some("https://cdn/a.png".into()) },
        content: content.into(),
        embeds: Vec::new(),
        attachments: Vec::new(),
        edited_at: None,
    }
}

fn edit(id: u64, content: &str, minute: i64) -> SourceEvent {
    SourceEvent::Edited(SourceEdit {
        guild: guild(),
        channel: channel(SOURCE),
        id: MessageId::new(id).expect("id"),
        author: None,
        content: Some(content.into()),
        embeds: None,
        attachments: None,
        edited_at: Some(START + Duration::minutes(minute)),
    })
}

fn delete(id: u64) -> SourceEvent {
    SourceEvent::Deleted { guild: guild(), channel: channel(SOURCE), id: MessageId::new(id).expect("id") }
}

impl Relayed {
    async fn new(via: Via) -> Self {
        let clock = Arc::new(ManualClock::new(START));
        let repo = MemoryRepo::new();
        for target in TARGETS {
            let relay = NewRelay {
                source_guild: guild(),
                source_channel: channel(SOURCE),
                target_guild: GuildId::new(target * 10).expect("id"),
                target_channel: channel(target),
                via,
                name: None,
                ping_role: None,
                access_role: None,
            };
            repo.add_relay(&relay, START).await.expect("relay");
        }
        let discord = FakeMirrors::new(clock.clone());
        Relayed { repo, clock, discord }
    }

    async fn event(&self, event: SourceEvent) -> bool {
        record_source_event(&self.repo, &*self.clock, &event).await.expect("recorded")
    }

    /// Runs the worker until nothing is due, moving the clock past retries; how many passes.
    async fn settle(&self) -> usize {
        let mut passes = 0;
        while let Some(due) = self.repo.next_mirror_due().await.expect("due") {
            if due > self.clock.now() {
                self.clock.set(due);
            }
            deliver_due_mirrors(&self.repo, &self.discord, &*self.clock, Duration::seconds(30), 50)
                .await
                .expect("delivered");
            passes += 1;
            assert!(passes < 200, "the relay never settled");
        }
        passes
    }

    fn target(&self, target: u64) -> Vec<TargetMessage> {
        self.discord.messages(channel(target))
    }

    fn contents(&self, target: u64) -> Vec<String> {
        self.target(target).into_iter().map(|m| m.content).collect()
    }
}

#[tokio::test]
async fn a_signal_is_mirrored_once_per_target_with_its_author_and_a_redelivery_adds_nothing() {
    let w = Relayed::new(Via::Webhook).await;
    assert!(w.event(SourceEvent::Posted(message(1, "BTC long 64k"))).await);
    w.settle().await;
    assert!(!w.event(SourceEvent::Posted(message(1, "BTC long 64k"))).await, "a redelivery is no change");
    w.settle().await;
    for target in TARGETS {
        let messages = w.target(target);
        assert_eq!(messages.len(), 1, "target {target}");
        assert_eq!(messages[0].content, "BTC long 64k");
        assert_eq!(messages[0].author.name, "analyst");
        assert!(messages[0].webhook.is_some());
    }
    assert_eq!(w.discord.requests(), 3);
}

#[tokio::test]
async fn edits_propagate_coalesce_and_unfurls_do_not() {
    let w = Relayed::new(Via::Webhook).await;
    w.event(SourceEvent::Posted(message(1, "BTC long"))).await;
    w.settle().await;
    assert!(!w.event(edit(1, "BTC long", 1)).await, "same body: an unfurl or a pin");
    let mut unfurl = edit(1, "BTC long", 0);
    if let SourceEvent::Edited(e) = &mut unfurl {
        e.edited_at = None;
    }
    assert!(!w.event(unfurl).await);
    w.event(edit(1, "BTC long, stop 60k", 2)).await;
    w.event(edit(1, "BTC long, stop 61k", 3)).await;
    w.settle().await;
    for target in TARGETS {
        let messages = w.target(target);
        assert_eq!((messages.len(), messages[0].content.as_str()), (1, "BTC long, stop 61k"));
        assert_eq!(messages[0].edits, 1, "two rapid edits become one, newest wins");
    }
    assert_eq!(w.discord.requests(), 6);
}

#[tokio::test]
async fn a_delete_removes_every_mirror_and_a_later_edit_is_dropped() {
    let w = Relayed::new(Via::Bot).await;
    w.event(SourceEvent::Posted(message(1, &"x".repeat(4500)))).await;
    w.settle().await;
    assert_eq!(w.target(201).len(), 3, "4,500 characters take three messages");
    w.event(delete(1)).await;
    assert!(!w.event(edit(1, "too late", 5)).await);
    w.settle().await;
    for target in TARGETS {
        assert!(w.target(target).is_empty(), "target {target}");
    }
    let jobs = w.repo.mirrors_of(SignalId(4)).await.expect("jobs");
    assert!(jobs.iter().all(|j| j.posted.is_empty() && j.state == JobState::Done), "{jobs:?}");
}

#[tokio::test]
async fn a_delete_that_lands_before_the_create_is_delivered_posts_nothing() {
    let w = Relayed::new(Via::Webhook).await;
    w.event(SourceEvent::Posted(message(1, "BTC long"))).await;
    w.event(delete(1)).await;
    w.settle().await;
    assert_eq!(w.discord.requests(), 0);
    // A create seen only after its delete (events out of order) stays deleted.
    w.event(delete(2)).await;
    assert!(!w.event(SourceEvent::Posted(message(2, "late"))).await);
}

#[tokio::test]
async fn shrinking_an_edit_deletes_the_parts_it_no_longer_needs() {
    let w = Relayed::new(Via::Webhook).await;
    w.event(SourceEvent::Posted(message(1, &"word ".repeat(900)))).await;
    w.settle().await;
    assert_eq!(w.target(202).len(), 3);
    w.event(edit(1, "short now", 1)).await;
    w.settle().await;
    assert_eq!(w.contents(202), vec!["short now"]);
}

#[tokio::test]
async fn an_answer_lost_after_discord_posted_is_found_instead_of_posted_again() {
    for via in [Via::Webhook, Via::Bot] {
        let w = Relayed::new(via).await;
        w.discord.lose_answers(3);
        w.event(SourceEvent::Posted(message(1, "BTC long"))).await;
        w.settle().await;
        for target in TARGETS {
            assert_eq!(w.contents(target), vec!["BTC long"], "{via:?} target {target}");
        }
        // Later changes go through the adopted messages.
        w.event(edit(1, "BTC closed", 1)).await;
        w.settle().await;
        assert_eq!(w.contents(201), vec!["BTC closed"], "{via:?}");
    }
}

#[tokio::test]
async fn signals_arrive_in_source_order_even_when_one_create_must_wait() {
    let w = Relayed::new(Via::Webhook).await;
    w.discord.fail_next(MirrorError::Retryable { after: Some(Duration::seconds(30)), why: "429".into() });
    for id in 1..=20 {
        w.event(SourceEvent::Posted(message(id, &format!("signal {id}")))).await;
    }
    w.settle().await;
    let expected: Vec<String> = (1..=20).map(|id| format!("signal {id}")).collect();
    for target in TARGETS {
        assert_eq!(w.contents(target), expected, "target {target}");
    }
}

#[tokio::test]
async fn a_refusal_parks_the_job_with_its_reason_until_retried() {
    let w = Relayed::new(Via::Webhook).await;
    let why = "Missing Permissions (50013): give the bot Manage Webhooks in the target channel";
    w.discord.fail_next(MirrorError::Refused { why: why.into() });
    w.event(SourceEvent::Posted(message(1, "BTC long"))).await;
    w.settle().await;
    let parked = w.repo.mirror_jobs(JobState::Parked, 10).await.expect("parked");
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].last_error.as_deref(), Some(why));
    let stuck = TARGETS.iter().filter(|t| w.target(**t).is_empty()).count();
    assert_eq!(stuck, 1);
    assert!(w.repo.retry_mirror(parked[0].signal, parked[0].relay, w.clock.now()).await.expect("retry"));
    w.settle().await;
    assert!(TARGETS.iter().all(|t| w.contents(*t) == vec!["BTC long"]));
}

#[tokio::test]
async fn mentions_become_plain_text_and_the_ping_role_leads_the_first_part() {
    let w = Relayed::new(Via::Webhook).await;
    let relay = NewRelay {
        source_guild: guild(),
        source_channel: channel(SOURCE),
        target_guild: GuildId::new(5).expect("id"),
        target_channel: channel(300),
        via: Via::Webhook,
        name: Some("vip".into()),
        ping_role: Some(RoleId::new(77).expect("id")),
        access_role: None,
    };
    w.repo.add_relay(&relay, START).await.expect("relay");
    w.event(SourceEvent::Posted(message(1, "<@123> and <@&456> see <#789> @everyone"))).await;
    w.settle().await;
    assert_eq!(w.contents(201), vec!["@member and @role see #channel @everyone"]);
    assert_eq!(w.contents(300), vec!["<@&77> @member and @role see #channel @everyone"]);
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Step {
    /// A new message (ids grow with time, as Discord's do).
    Post,
    Edit(u64, u8),
    Delete(u64),
    /// The gateway delivers an event again.
    Redeliver,
    /// The worker runs once.
    Work,
    /// The next request acts but its answer is lost.
    LoseAnswer,
    Fail,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Post),
        3 => (0u64..8, 0u8..4).prop_map(|(k, v)| Step::Edit(k, v)),
        1 => (0u64..8).prop_map(Step::Delete),
        2 => Just(Step::Redeliver),
        3 => Just(Step::Work),
        1 => Just(Step::LoseAnswer),
        1 => Just(Step::Fail),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the order of creates, edits, deletes, redeliveries, lost answers and failures,
    /// once the worker has caught up every target shows exactly the source's live messages, in
    /// order, each once, with its newest content.
    #[test]
    fn targets_converge_to_the_source(steps in proptest::collection::vec(step(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(async {
            let w = Relayed::new(Via::Webhook).await;
            // The source as Discord holds it: id → (content, edit minute, deleted).
            let mut source: BTreeMap<u64, (String, i64, bool)> = BTreeMap::new();
            let mut events: Vec<SourceEvent> = Vec::new();
            let mut minute = 0;
            for step in steps {
                minute += 1;
                let count = (source.len() as u64).max(1);
                let pick = |k: u64| (k % count) + 1;
                let event = match step {
                    Step::Post => {
                        let id = source.len() as u64 + 1;
                        source.insert(id, (format!("signal {id}"), 0, false));
                        Some(SourceEvent::Posted(message(id, &format!("signal {id}"))))
                    }
                    Step::Edit(k, v) => match source.get_mut(&pick(k)) {
                        Some((content, at, false)) => {
                            let id = pick(k);
                            *content = format!("signal {id} v{v} at {minute}");
                            *at = minute;
                            Some(edit(id, content, minute))
                        }
                        _ => None,
                    },
                    Step::Delete(k) => match source.get_mut(&pick(k)) {
                        Some((_, _, deleted @ false)) => {
                            *deleted = true;
                            Some(delete(pick(k)))
                        }
                        _ => None,
                    },
                    Step::Redeliver => events.last().cloned(),
                    Step::Work => {
                        deliver_due_mirrors(&w.repo, &w.discord, &*w.clock, Duration::seconds(30), 50).await.expect("work");
                        None
                    }
                    Step::LoseAnswer => {
                        w.discord.lose_answers(1);
                        None
                    }
                    Step::Fail => {
                        w.discord.fail_next(MirrorError::Retryable { after: None, why: "503".into() });
                        None
                    }
                };
                if let Some(event) = event {
                    w.event(event.clone()).await;
                    events.push(event);
                }
            }
            w.settle().await;
            let expected: Vec<String> =
                source.values().filter(|(_, _, deleted)| !deleted).map(|(c, _, _)| c.clone()).collect();
            for target in TARGETS {
                prop_assert_eq!(&w.contents(target), &expected, "target {}", target);
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn a_relay_is_readable_only_while_its_access_role_is_held_in_its_target_guild() {
    let repo = MemoryRepo::new();
    let open = |target: GuildId, channel_id: u64, role: Option<RoleId>| NewRelay {
        source_guild: GuildId::new(1).expect("id"),
        source_channel: channel(SOURCE),
        target_guild: target,
        target_channel: channel(channel_id),
        via: Via::Webhook,
        name: None,
        ping_role: None,
        access_role: role,
    };
    let vip = repo.add_relay(&open(guild(), TARGETS[0], Some(role())), START).await.expect("relay");
    repo.add_relay(&open(guild(), TARGETS[1], None), START)
        .await
        .expect("no access role: read on Discord only");
    let elsewhere = GuildId::new(901).expect("id");
    repo.add_relay(&open(elsewhere, TARGETS[2], Some(role())), START)
        .await
        .expect("the same role id, another guild");
    let repo = &repo;
    let readable = |at| async move { readable_relays(repo, user(), at).await.expect("reads") };
    assert!(readable(START).await.is_empty(), "no purchase, nothing readable");

    let until = START + Duration::days(30);
    let bought = crate::testing::purchase(key(), "sub_1", Term::Fixed { days: 30 }, Some(until), START);
    repo.commit(bought).await.expect("commit");
    assert_eq!(readable(START + Duration::days(1)).await, vec![vip.clone()]);
    let grace = Guild::DEFAULT_GRACE;
    assert!(readable(until + grace + Duration::minutes(1)).await.is_empty(), "access ended");
}
