//! The use cases against the in-memory adapters, with mockall mocks of the role gateway where a
//! failure has to be scripted precisely.

use std::collections::BTreeSet;

use time::{Duration, OffsetDateTime, macros::datetime};

use super::*;
use crate::domain::*;
use crate::machine::Status;
use crate::ports::*;
use crate::testing::{Call, FakeRoles, ManualClock, MemoryRepo, ToyProvider};

mod expiry;
mod hardening;
mod ingest;
mod manual;
mod notices;
mod relay;
mod resolve;
mod role_sync;
mod summary;

const SECRET: &str = "toy-secret";
const LEASE: Duration = Duration::seconds(30);
const START: OffsetDateTime = datetime!(2026-11-01 00:00 UTC);

fn guild() -> GuildId {
    GuildId::new(900).expect("id")
}
fn user() -> UserId {
    UserId::new(42).expect("id")
}
fn role() -> RoleId {
    RoleId::new(7).expect("id")
}
fn key() -> RoleJobKey {
    RoleJobKey { guild: guild(), user: user(), role: role() }
}
fn secs(at: OffsetDateTime) -> String {
    at.unix_timestamp().to_string()
}

/// The lines of a toy webhook; tests push the member and product fields they need.
fn webhook(id: &str, kind: &str, reference: &str, at: OffsetDateTime) -> Vec<(&'static str, String)> {
    vec![
        ("id", id.to_owned()),
        ("kind", kind.to_owned()),
        ("ref", reference.to_owned()),
        ("version", secs(at)),
    ]
}

struct World {
    repo: MemoryRepo,
    clock: ManualClock,
    provider: ToyProvider,
    discord: FakeRoles,
}

impl World {
    async fn new(term: Term) -> World {
        let repo = MemoryRepo::new();
        repo.put_guild(&Guild::new(guild(), "Test guild")).await.expect("guild");
        let price = Money::parse("5.00", Currency::Usd).expect("price");
        let mut paid = PaidRole::new(guild(), role(), "VIP", price, term).expect("role");
        paid.link(ProductLink::product(ProviderName::POLAR, "prod_vip"));
        repo.put_paid_role(&paid).await.expect("role");
        let creds = ProviderCredentials::new(Secret::new(SECRET));
        repo.put_credentials(guild(), ProviderName::POLAR, &creds).await.expect("creds");
        let discord = FakeRoles::new();
        discord.join(guild(), user());
        World {
            repo,
            clock: ManualClock::new(START),
            provider: ToyProvider::named(ProviderName::POLAR),
            discord,
        }
    }

    async fn deliver(&self, lines: &[(&str, String)]) -> Result<IngestReport, IngestError> {
        let body: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let headers = ToyProvider::headers(SECRET, body.as_bytes());
        ingest_webhook(&self.repo, &self.provider, &self.clock, guild(), &headers, body.as_bytes()).await
    }

    /// A subscription event for `sub_1` bought by `user()` through product `prod_vip`.
    async fn sub_event(
        &self,
        id: &str,
        kind: &str,
        version: OffsetDateTime,
        until: Option<OffsetDateTime>,
    ) -> IngestOutcome {
        let mut lines = webhook(id, kind, "sub_1", version);
        lines.extend([("user", user().to_string()), ("product", "prod_vip".to_owned())]);
        if let Some(until) = until {
            lines.push(("until", secs(until)));
        }
        self.deliver(&lines).await.expect("ingests").outcome
    }

    async fn work(&self) -> WorkReport {
        run_due_jobs(&self.repo, &self.discord, &self.clock, LEASE, 100).await.expect("works")
    }

    fn has_role(&self) -> bool {
        self.discord.roles(guild(), user()).is_some_and(|r| r.contains(&role()))
    }

    fn status(&self) -> Status {
        let all = self.repo.entitlements();
        assert_eq!(all.len(), 1, "expected one entitlement, got {all:?}");
        all[0].status()
    }
}

async fn open_checkout(w: &World, reference: &str, amount: &str) {
    let checkout = Checkout {
        reference: reference.parse().expect("ref"),
        guild: guild(),
        user: user(),
        role: role(),
        provider: ProviderName::POLAR,
        expected: Money::parse(amount, Currency::Usd).expect("amount"),
        created_at: START,
        expires_at: START + Duration::hours(1),
    };
    w.repo.put_checkout(&checkout).await.expect("checkout");
}

fn transfer(id: &str, code: &str, paid: &str, at: OffsetDateTime) -> Vec<(&'static str, String)> {
    vec![
        ("id", id.to_owned()),
        ("kind", "payment_succeeded".to_owned()),
        ("checkout", code.to_owned()),
        ("version", secs(at)),
        ("paid", format!("{paid} USD")),
    ]
}
