//! The repository contract suite: one set of cases, run against every implementation of the
//! repository ports — the in-memory adapter, SQLite in memory, SQLite in a file (WAL), and
//! PostgreSQL (`DOCOBO_TEST_POSTGRES_URL`, each test in its own schema).
//!
//! `.ci/run` sets `DOCOBO_TEST_POSTGRES_URL` and fails if PostgreSQL is unreachable; a local run
//! without it prints that the PostgreSQL cases were not run.

mod backends;
mod cases;
mod concurrency;
mod relay_cases;
mod seaorm;

/// Instantiates every contract case for one backend.
macro_rules! contract {
    ($backend:ident) => {
        mod $backend {
            use crate::cases;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let Some(repo) = crate::backends::$backend().await else { return };
                        cases::$name(&repo).await;
                    }
                };
            }

            case!(guilds_and_paid_roles_round_trip);
            case!(credentials_round_trip);
            case!(checkout_references_are_unique);
            case!(a_commit_writes_event_entitlement_and_job_together);
            case!(a_repeated_event_id_is_a_duplicate_and_writes_nothing);
            case!(a_failing_write_rolls_back_the_whole_commit);
            case!(concurrent_inserts_of_one_purchase_conflict);
            case!(stale_revisions_conflict_and_updates_bump_the_revision);
            case!(due_entitlements_come_oldest_deadline_first);
            case!(the_failure_inbox_lists_failed_events_only);
            case!(recent_events_page_newest_first_without_gaps);
            case!(a_job_is_found_by_id_and_by_key);
            case!(enqueue_keeps_one_row_per_key);
            case!(claims_lease_jobs_and_expired_leases_are_taken_over);
            case!(settling_applies_requeues_or_drops_by_lease_and_generation);
            case!(retry_and_park_are_recorded);
            case!(next_due_names_the_earliest_run_or_lease_end);
            case!(a_webhook_flows_through_to_the_role);
            case!(setup_progress_is_kept_per_guild);
            case!(guilds_are_listed_and_roles_withdrawn);
            case!(a_failed_event_is_replayed_exactly_once);
            case!(deferred_deliveries_come_due_are_put_off_and_resolve_once);
            case!(a_commit_writes_its_audit_entries_only_when_it_lands);
            case!(payments_are_kept_once_per_reference_and_refunds_only_rise);
            case!(a_commit_that_names_a_job_payment_or_notice_twice_writes_each_once);
            case!(the_guild_revision_moves_with_every_purchase_and_payment_change);
            case!(guild_and_credentials_are_read_together);
            case!(the_catalog_follows_every_catalog_write);
            case!(an_entitlement_found_by_its_reference_is_the_one_stored);
            case!(a_commit_planned_on_a_catalog_that_moved_is_refused_and_writes_nothing);
            case!(notices_are_planned_once_per_key_then_claimed_leased_and_settled);
            case!(members_mute_notices_are_marked_unreachable_and_reset_by_turning_them_on);
            case!(deadlines_page_by_deadline_then_id);
            case!(guild_notice_settings_round_trip);
            case!(relays_are_unique_per_pair_and_removed_with_their_jobs);
            case!(a_signal_and_its_jobs_are_recorded_together_and_changes_repend_them);
            case!(mirror_claims_keep_source_order_and_settle_only_under_their_lease);
            case!(signal_feeds_read_live_signals_newest_first_and_changes_since_a_time);
            case!(signals_flow_to_every_target_once_even_when_answers_are_lost);
            case!(sessions_are_found_until_they_expire_and_revoked_one_or_all);
        }
    };
}

contract!(memory);
contract!(sqlite_memory);
contract!(sqlite_file);
contract!(postgres);
