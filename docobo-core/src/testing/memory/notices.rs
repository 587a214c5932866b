//! The notice outbox and member notice preferences of [`MemoryRepo`].

use async_trait::async_trait;
use time::Duration;

use super::{MemoryRepo, State, lock};
use crate::domain::{
    GuildId, MemberNotices, Notice, NoticeId, NoticeState, PlannedNotice, Timestamp, UserId,
};
use crate::ports::{NoticeRepo, NoticeSettlement, StoreError};

impl State {
    /// Records the notices whose key is new; how many were.
    pub(super) fn plan_notices(&mut self, notices: &[PlannedNotice]) -> usize {
        let mut added = 0;
        for planned in notices {
            if self.notices.contains_key(&planned.key()) {
                continue;
            }
            let notice = Notice {
                id: NoticeId(self.next_id()),
                planned: planned.clone(),
                state: NoticeState::Pending,
                attempts: 0,
                note: None,
                locked_until: None,
                settled_at: None,
            };
            self.notices.insert(planned.key(), notice);
            added += 1;
        }
        added
    }
}

fn claimable(n: &Notice, now: Timestamp) -> bool {
    n.state == NoticeState::Pending && n.planned.send_at <= now && n.locked_until.is_none_or(|l| l <= now)
}

#[async_trait]
impl NoticeRepo for MemoryRepo {
    async fn plan_notices(&self, notices: &[PlannedNotice], _now: Timestamp) -> Result<usize, StoreError> {
        Ok(lock(&self.state).plan_notices(notices))
    }

    async fn claim_notices(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Notice>, StoreError> {
        let mut state = lock(&self.state);
        let mut due: Vec<&mut Notice> = state.notices.values_mut().filter(|n| claimable(n, now)).collect();
        due.sort_by_key(|n| (n.planned.send_at, n.id));
        Ok(due
            .into_iter()
            .take(limit)
            .map(|n| {
                n.locked_until = Some(now + lease);
                n.clone()
            })
            .collect())
    }

    async fn settle_notice(
        &self,
        claimed: &Notice,
        settlement: NoticeSettlement,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        let Some(n) = state.notices.get_mut(&claimed.planned.key()) else { return Ok(false) };
        if n.state != NoticeState::Pending || n.locked_until != claimed.locked_until {
            return Ok(false);
        }
        n.locked_until = None;
        let unreachable = settlement == NoticeSettlement::Unreachable;
        let (state_now, note) = match settlement {
            NoticeSettlement::Sent => (NoticeState::Sent, None),
            NoticeSettlement::Skipped { why } => (NoticeState::Skipped, Some(why)),
            NoticeSettlement::Failed { why } => (NoticeState::Failed, Some(why)),
            NoticeSettlement::Unreachable => {
                (NoticeState::Failed, Some(NoticeSettlement::UNREACHABLE.to_owned()))
            }
            NoticeSettlement::Retry { at, error } => {
                n.attempts += 1;
                n.planned.send_at = at;
                n.note = Some(error);
                return Ok(true);
            }
        };
        n.state = state_now;
        n.note = note;
        n.settled_at = Some(now);
        let member = (n.planned.guild, n.planned.user);
        if unreachable {
            state.member_notices.entry(member).or_default().unreachable_at = Some(now);
        }
        Ok(true)
    }

    async fn member_notice_log(&self, guild: GuildId, user: UserId) -> Result<Vec<Notice>, StoreError> {
        self.read(|s| {
            let mut log: Vec<Notice> = s
                .notices
                .values()
                .filter(|n| n.planned.guild == guild && n.planned.user == user)
                .cloned()
                .collect();
            log.sort_by_key(|n| n.id);
            log
        })
    }

    async fn member_notices(&self, guild: GuildId, user: UserId) -> Result<MemberNotices, StoreError> {
        self.read(|s| s.member_notices.get(&(guild, user)).copied().unwrap_or_default())
    }

    async fn set_member_notices(
        &self,
        guild: GuildId,
        user: UserId,
        on: bool,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let prefs = state.member_notices.entry((guild, user)).or_default();
        if on {
            *prefs = MemberNotices::default();
        } else {
            prefs.muted_at = Some(now);
        }
        Ok(())
    }

    async fn next_notice_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|s| {
            s.notices
                .values()
                .filter(|n| n.state == NoticeState::Pending)
                .map(|n| n.locked_until.map_or(n.planned.send_at, |l| l.max(n.planned.send_at)))
                .min()
        })
    }
}
