//! `GET /metrics`: Prometheus text for one server process.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `docobo_webhooks_total` | counter | `provider`, `outcome` | deliveries by answer: `processed`, `duplicate`, `ignored`, `failed` (kept in the inbox), `unauthorized`, `not_found`, `too_large`, `unavailable`, `internal`, `bad_request`, `busy` (refused by admission control: more than `DOCOBO_WEBHOOKS_IN_FLIGHT` in flight) |
//! | `docobo_webhook_ack_seconds` | histogram | `provider` | request received → answer ready |
//! | `docobo_role_jobs_total` | counter | `outcome` | settled jobs: `changed`, `unchanged`, `retried`, `parked`; and `superseded` (also counted in one of those: its settlement was dropped because the job was enqueued again or its lease ran out) |
//! | `docobo_webhook_to_role_seconds` | histogram | | job due (the webhook's commit) → role change verified on Discord |
//! | `docobo_role_jobs` | gauge | `state` | jobs `pending`, `parked`, `done`, read from the database at scrape time |
//! | `docobo_discord_errors_total` | counter | `class` | failed Discord calls: `retryable` (429, 5xx, timeouts), `member_gone`, `forbidden`, `not_found` |
//! | `docobo_ledger_commits`, `docobo_ledger_transactions` | gauge | | durable writes (ledger commits and role-job settlements) and the transactions that wrote them since start (group commit: several per transaction under load on SQLite), read at scrape time |
//! | `docobo_relay_latency_seconds` | histogram | `op` | relay: source event received → Discord's answer, for `create`, `update`, `delete` |
//! | `docobo_relay_jobs_total` | counter | `outcome` | mirror jobs run: `mirrored`, `retried`, `parked`, `waiting` (held behind an earlier signal), `lost` (the lease ran out first) |
//! | `docobo_notices_total` | counter | `kind`, `outcome` | member notices handled: `kind` `ending_soon`, `payment_failed`, `ended`, `welcome`; `outcome` `sent`, `skipped` (outdated), `muted` (turned off), `unreachable` (DMs closed), `retried`, `failed` |
//!
//! Each server has its own registry, so several in one process (tests) do not mix. The queue
//! gauge is one `GROUP BY` per scrape; everything else is in memory.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use docobo_adapters::seaorm::CommitStats;
use docobo_core::domain::{GuildId, JobState, NoticeKind, RoleId, UserId};
use docobo_core::ports::{GatewayError, Manageable, RoleGateway};
use docobo_core::service::{MirrorReport, NoticeOutcome, WorkReport};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Buckets from 1 ms to 10 s: acknowledgements sit at the low end, a role behind a 429 storm at
/// the high end.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    webhooks: IntCounterVec,
    ack_seconds: HistogramVec,
    role_jobs: IntCounterVec,
    webhook_to_role: Histogram,
    queue: IntGaugeVec,
    discord_errors: IntCounterVec,
    notices: IntCounterVec,
    relay_latency: HistogramVec,
    relay_jobs: IntCounterVec,
    ledger_commits: IntGauge,
    ledger_transactions: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let histogram =
            |name: &str, help: &str, labels: &[&str]| -> Result<HistogramVec, prometheus::Error> {
                let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()), labels)?;
                registry.register(Box::new(h.clone()))?;
                Ok(h)
            };
        let webhooks = counter(
            "docobo_webhooks_total",
            "Webhook deliveries by provider and answer.",
            &["provider", "outcome"],
        )?;
        let ack_seconds = histogram(
            "docobo_webhook_ack_seconds",
            "Webhook received to answer ready, in seconds.",
            &["provider"],
        )?;
        let role_jobs = counter("docobo_role_jobs_total", "Settled role jobs by outcome.", &["outcome"])?;
        let webhook_to_role = Histogram::with_opts(
            HistogramOpts::new(
                "docobo_webhook_to_role_seconds",
                "Role job due (the webhook's commit) to the change verified on Discord, in seconds.",
            )
            .buckets(BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(webhook_to_role.clone()))?;
        let discord_errors =
            counter("docobo_discord_errors_total", "Failed Discord calls by class.", &["class"])?;
        let queue = IntGaugeVec::new(Opts::new("docobo_role_jobs", "Role jobs by state."), &["state"])?;
        registry.register(Box::new(queue.clone()))?;
        let notices = counter(
            "docobo_notices_total",
            "Member notices handled by kind and outcome.",
            &["kind", "outcome"],
        )?;
        let relay_latency = histogram(
            "docobo_relay_latency_seconds",
            "Relay: source event received to Discord's answer, in seconds.",
            &["op"],
        )?;
        let relay_jobs = counter("docobo_relay_jobs_total", "Mirror jobs run by outcome.", &["outcome"])?;
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let ledger_commits =
            gauge("docobo_ledger_commits", "Ledger commits and role-job settlements written since start.")?;
        let ledger_transactions = gauge(
            "docobo_ledger_transactions",
            "Transactions that wrote the ledger commits and settlements (group commit).",
        )?;
        Ok(Metrics {
            registry,
            webhooks,
            ack_seconds,
            role_jobs,
            webhook_to_role,
            queue,
            discord_errors,
            notices,
            relay_latency,
            relay_jobs,
            ledger_commits,
            ledger_transactions,
        })
    }

    /// Mirror jobs one relay pass ran.
    pub fn mirrors(&self, reports: &[MirrorReport]) {
        for r in reports {
            self.relay_jobs.with_label_values(&[r.outcome]).inc();
            if let Some(latency) = r.latency {
                self.relay_latency
                    .with_label_values(&[r.op.as_str()])
                    .observe(latency.as_seconds_f64().max(0.0));
            }
        }
    }

    /// Notices one notifier pass handled.
    pub fn notices(&self, handled: &[(NoticeKind, NoticeOutcome)]) {
        for (kind, outcome) in handled {
            self.notices.with_label_values(&[kind.as_str(), outcome.as_str()]).inc();
        }
    }

    /// One webhook answered with `outcome` after `elapsed`.
    pub fn webhook(&self, provider: &str, outcome: &str, elapsed: std::time::Duration) {
        self.webhooks.with_label_values(&[provider, outcome]).inc();
        self.ack_seconds.with_label_values(&[provider]).observe(elapsed.as_secs_f64());
    }

    /// One pass of the role worker.
    pub fn jobs(&self, report: &WorkReport) {
        let unchanged = report.claimed.saturating_sub(report.changed + report.retried + report.parked);
        for (outcome, n) in [
            ("changed", report.changed),
            ("unchanged", unchanged),
            ("retried", report.retried),
            ("parked", report.parked),
            ("superseded", report.superseded),
        ] {
            self.role_jobs.with_label_values(&[outcome]).inc_by(n as u64);
        }
        for d in &report.change_latencies {
            self.webhook_to_role.observe(d.as_seconds_f64());
        }
    }

    fn discord_error(&self, error: &GatewayError) {
        let class = match error {
            GatewayError::Retryable { .. } => "retryable",
            GatewayError::MemberGone => "member_gone",
            GatewayError::Forbidden { .. } => "forbidden",
            GatewayError::NotFound { .. } => "not_found",
        };
        self.discord_errors.with_label_values(&[class]).inc();
    }

    /// The text exposition, with the queue gauge set from `counts` and the group-commit gauges
    /// from `commits`.
    pub fn render(
        &self,
        counts: &[(JobState, u64)],
        commits: CommitStats,
    ) -> Result<String, prometheus::Error> {
        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for (state, n) in counts {
            self.queue.with_label_values(&[state.as_str()]).set(int(*n));
        }
        self.ledger_commits.set(int(commits.commits));
        self.ledger_transactions.set(int(commits.batches));
        let mut text = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut text)?;
        Ok(String::from_utf8_lossy(&text).into_owned())
    }
}

/// A role gateway that counts the errors of the one it wraps, by class.
pub struct Metered {
    pub inner: Arc<dyn RoleGateway>,
    pub metrics: Arc<Metrics>,
    /// Every answered call (or error) counts as the role worker making progress, so a batch
    /// behind a slow Discord is not mistaken for a stuck worker (review finding M9).
    pub heartbeats: Option<Arc<crate::heartbeats::Heartbeats>>,
}

impl std::fmt::Debug for Metered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metered").finish_non_exhaustive()
    }
}

impl Metered {
    fn seen<T>(&self, result: Result<T, GatewayError>) -> Result<T, GatewayError> {
        if let Err(e) = &result {
            self.metrics.discord_error(e);
        }
        if let Some(beats) = &self.heartbeats {
            use docobo_core::ports::{Clock, SystemClock};
            beats.beat(crate::heartbeats::Worker::RoleWorker, SystemClock.now());
        }
        result
    }
}

#[async_trait]
impl RoleGateway for Metered {
    async fn member_roles(&self, guild: GuildId, user: UserId) -> Result<BTreeSet<RoleId>, GatewayError> {
        self.seen(self.inner.member_roles(guild, user).await)
    }

    async fn add_role(
        &self,
        guild: GuildId,
        user: UserId,
        role: RoleId,
        reason: &str,
    ) -> Result<(), GatewayError> {
        self.seen(self.inner.add_role(guild, user, role, reason).await)
    }

    async fn remove_role(
        &self,
        guild: GuildId,
        user: UserId,
        role: RoleId,
        reason: &str,
    ) -> Result<(), GatewayError> {
        self.seen(self.inner.remove_role(guild, user, role, reason).await)
    }

    async fn bot_can_manage(&self, guild: GuildId, role: RoleId) -> Result<Manageable, GatewayError> {
        self.seen(self.inner.bot_can_manage(guild, role).await)
    }

    async fn member_can_assign(
        &self,
        guild: GuildId,
        user: UserId,
        roles: &BTreeSet<RoleId>,
        role: RoleId,
    ) -> Result<Manageable, GatewayError> {
        self.seen(self.inner.member_can_assign(guild, user, roles, role).await)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use docobo_core::ports::{Clock, RoleGateway, SystemClock};

    use super::Metered;
    use crate::heartbeats::{Heartbeats, Worker};

    /// M9: a batch behind a slow Discord used to beat only when the whole batch finished, so
    /// `/ready` called the worker stuck (and took the webhook intake out of rotation) while it
    /// was merely waiting on Discord. Every answered call now counts as progress.
    #[tokio::test]
    async fn m9_a_slow_discord_that_still_answers_is_not_a_stuck_worker() {
        use docobo_core::domain::{GuildId, UserId};
        let started = SystemClock.now() - time::Duration::seconds(200);
        let beats = Arc::new(Heartbeats::new(started, Duration::from_secs(10)));
        assert_eq!(beats.problems(&[Worker::RoleWorker], SystemClock.now()).len(), 1, "silent for 200 s");
        let metered = Metered {
            inner: Arc::new(docobo_core::testing::FakeRoles::new()),
            metrics: Arc::new(super::Metrics::new().expect("metrics")),
            heartbeats: Some(beats.clone()),
        };
        let gone = metered.member_roles(GuildId::new(1).expect("id"), UserId::new(2).expect("id")).await;
        assert!(gone.is_err(), "even an error is an answer");
        assert!(beats.problems(&[Worker::RoleWorker], SystemClock.now()).is_empty());
    }
}
