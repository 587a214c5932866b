//! A walk through one member's life as a paying subscriber, using only `docobo-core` and its
//! in-memory adapters: purchase → role granted → cancellation → period end → role removed →
//! a new purchase revoked by the provider.
//!
//! Run it with `cargo run --example in_memory`. Nothing touches the network: the payment
//! provider is the toy provider (signed `key=value` webhooks), Discord is an in-memory fake, and
//! time is a manual clock.

use std::error::Error;

use docobo::core::domain::{
    Currency, Guild, GuildId, Money, PaidRole, ProductLink, ProviderName, RoleId, Secret, Term, UserId,
};
use docobo::core::ports::{CatalogRepo, Clock, EntitlementRepo, ProviderCredentials};
use docobo::core::service::{expire_due, ingest_webhook, run_due_jobs};
use docobo::core::testing::{FakeRoles, ManualClock, MemoryRepo, ToyProvider};
use time::{Duration, macros::datetime};

const SECRET: &str = "whsec-example";

struct Demo {
    repo: MemoryRepo,
    discord: FakeRoles,
    clock: ManualClock,
    provider: ToyProvider,
    guild: GuildId,
    user: UserId,
    role: RoleId,
}

impl Demo {
    fn say(&self, what: impl std::fmt::Display) {
        let elapsed = self.clock.now() - datetime!(2026-11-01 00:00 UTC);
        println!("[day {:>2} {:>2}h] {what}", elapsed.whole_days(), elapsed.whole_hours() % 24);
    }

    /// Delivers a signed webhook, as the provider would.
    async fn webhook(
        &self,
        id: &str,
        kind: &str,
        purchase: &str,
        until: Option<i64>,
    ) -> Result<(), Box<dyn Error>> {
        let now = self.clock.now().unix_timestamp();
        let mut body = format!(
            "id={id}\nkind={kind}\nref={purchase}\nversion={now}\nuser={}\nproduct=prod_vip\n",
            self.user
        );
        if let Some(days) = until {
            body += &format!("until={}\n", (self.clock.now() + Duration::days(days)).unix_timestamp());
        }
        let headers = ToyProvider::headers(SECRET, body.as_bytes());
        let report =
            ingest_webhook(&self.repo, &self.provider, &self.clock, self.guild, &headers, body.as_bytes())
                .await?;
        self.say(format_args!("webhook {id} ({kind} for {purchase}) -> {:?}", report.outcome));
        Ok(())
    }

    /// One pass of the role-sync worker, then what the member holds on Discord.
    async fn work(&self) -> Result<(), Box<dyn Error>> {
        let report = run_due_jobs(&self.repo, &self.discord, &self.clock, Duration::seconds(30), 10).await?;
        let holds = self.discord.roles(self.guild, self.user).is_some_and(|r| r.contains(&self.role));
        let statuses: Vec<String> = self
            .repo
            .member_entitlements(self.guild, self.user)
            .await?
            .iter()
            .map(|e| format!("{}={}", e.external_ref, e.status()))
            .collect();
        self.say(format_args!(
            "worker: {} job(s), {} role change(s); member {} the VIP role [{}]",
            report.claimed,
            report.changed,
            if holds { "HAS" } else { "does not have" },
            statuses.join(", ")
        ));
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let demo = Demo {
        repo: MemoryRepo::new(),
        discord: FakeRoles::new(),
        clock: ManualClock::new(datetime!(2026-11-01 00:00 UTC)),
        provider: ToyProvider::named(ProviderName::POLAR),
        guild: "900000000000000001".parse()?,
        user: "123456789012345678".parse()?,
        role: "700000000000000007".parse()?,
    };
    let price = Money::parse("5.00", Currency::Usd)?;
    let mut vip = PaidRole::new(demo.guild, demo.role, "VIP", price, Term::Recurring)?;
    vip.link(ProductLink::product(ProviderName::POLAR, "prod_vip"));
    demo.repo.put_guild(&Guild::new(demo.guild, "Example server")).await?;
    demo.repo.put_paid_role(&vip).await?;
    demo.repo
        .put_credentials(demo.guild, ProviderName::POLAR, &ProviderCredentials::new(Secret::new(SECRET)))
        .await?;
    demo.discord.join(demo.guild, demo.user);
    demo.say(format_args!("server sells VIP for {price} per month; member {} joins", demo.user));

    demo.webhook("evt_1", "payment_succeeded", "sub_1", Some(30)).await?;
    demo.work().await?;
    demo.webhook("evt_1", "payment_succeeded", "sub_1", Some(30)).await?;
    demo.say("(the provider retried the same delivery: recorded once, nothing changes)");

    demo.clock.advance(Duration::days(10));
    demo.webhook("evt_2", "cancel_scheduled", "sub_1", Some(20)).await?;
    demo.work().await?;
    demo.say("(cancelled, but paid until the period ends: the role stays)");

    demo.clock.advance(Duration::days(20));
    let expired = expire_due(&demo.repo, &demo.clock, 100).await?;
    demo.say(format_args!("expirer: {} term(s) ran out, {} role job(s)", expired.due, expired.jobs));
    demo.work().await?;

    demo.clock.advance(Duration::days(5));
    demo.webhook("evt_3", "payment_succeeded", "sub_2", Some(30)).await?;
    demo.work().await?;
    demo.clock.advance(Duration::hours(6));
    demo.webhook("evt_4", "revoked", "sub_2", None).await?;
    demo.work().await?;
    demo.say(format_args!("Discord saw {} role change(s) in total", demo.discord.writes()));
    Ok(())
}
