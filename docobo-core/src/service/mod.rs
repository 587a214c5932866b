//! The use cases. Each takes ports, never concrete adapters; loops, timers and wake-ups live in
//! the binaries, which call these.

pub mod catalog;
pub mod checkout;
pub mod expirer;
pub mod export;
pub mod ingest;
pub mod manual;
pub mod notices;

pub mod reconcile;
pub mod relay;
pub mod replay;
pub mod resolve;
pub mod retry;
pub mod role_sync;
pub mod sessions;
pub mod status;
pub mod summary;

pub use catalog::{CatalogRefusal, register_guild, sale_problems, sell_role, set_credentials, sold_through};
pub use checkout::{CHECKOUT_TTL, JoinError, Offer, checkout_ref, offers, renewal, start_checkout};
pub use expirer::{ClockTrust, ClockWatch, ExpiryReport, expire_due, expire_due_watched};
pub use export::{ExportData, Table, export_table, inert};
pub use ingest::{IngestError, IngestOutcome, IngestReport, Unresolved, ingest_fetched, ingest_webhook};
pub use manual::{ManualError, ManualReport, grant_manually, revoke_manually};
pub use notices::{
    NoticeChange, NoticeOutcome, Pace, Purchase, Sender, configure_notices, on_change, on_elapsed,
    plan_reminders, send_due_notices,
};
pub use reconcile::{Drift, ReconcileReport, diff, on_member_join, reconcile_guild};
pub use relay::{
    MirrorOp, MirrorReport, RelayError, add_relay, deliver_due_mirrors, is_executable, mirror_lease,
    plain_mentions, readable_relays, record_source_event,
};
pub use replay::{ReplayError, replay_event};
pub use resolve::{RESOLVE_BACKOFF, ResolveReport, resolve_deferred};
pub use role_sync::{Verdict, WorkReport, lease_and_batch, run_due_jobs, settlement, sync_role};
pub use sessions::{SESSION_TTL, close_session, current_session, open_session, session_id};
pub use status::{StatusLine, member_status};
pub use summary::{GuildSummary, MonthRevenue, RoleSummary, SummaryCache, guild_summary};

#[cfg(test)]
mod tests;
