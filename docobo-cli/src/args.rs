//! The command line's shape, as clap reads it: every command and flag of DESIGN §4 that exists.

use clap::{Parser, Subcommand, ValueEnum};
use docobo_core::domain::{ChannelId, Currency, DeliveryId, GuildId, Reminders, RoleId, Term, UserId, Via};

#[derive(Debug, Parser)]
#[command(name = "docobo", version, about = "Paid community access on Discord")]
pub struct Cli {
    /// The database: a SQLite file (the default) or postgres://user@host/db.
    #[arg(
        long,
        global = true,
        env = "DOCOBO_DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://docobo.db?mode=rwc"
    )]
    pub(crate) database_url: String,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the database schema, or bring an older one up to date. Safe to run repeatedly.
    Migrate,
    /// Servers that sell roles.
    #[command(subcommand)]
    Guild(GuildCommand),
    /// Payment provider credentials of a server (stored encrypted with DOCOBO_SECRET_KEY).
    #[command(subcommand)]
    Provider(ProviderCommand),
    /// Roles for sale.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Signal relays: messages in a source channel mirrored into paid target channels.
    #[command(subcommand)]
    Relay(RelayCommand),
    /// Entitlements (purchases) and their status.
    #[command(subcommand)]
    Subs(SubsCommand),
    /// Received webhooks, and the failure inbox.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Compare the roles members hold on Discord with what they paid for, and queue a fix for
    /// each difference (the server's worker applies them). Needs DISCORD_BOT_TOKEN.
    Reconcile {
        #[arg(long)]
        guild: Option<GuildId>,
    },
    /// Give a member a paid role by hand, with a reason kept in the audit trail. It lasts the
    /// role's term (a fixed term from now; otherwise until revoked).
    Grant(ManualArgs),
    /// Take a paid role away by hand, with a reason kept in the audit trail: every purchase of it
    /// that grants access now is revoked for good (cancel or refund at the provider yourself).
    Revoke(ManualArgs),
    /// Write a server's entitlements (one row each, with status and dates) or its recorded
    /// payments (`--data payments`) as CSV on stdout.
    Export {
        #[arg(long)]
        guild: GuildId,
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
        #[arg(long, value_enum, default_value_t = ExportData::Entitlements)]
        data: ExportData,
    },
    /// Print the effective configuration (secrets redacted) and check Discord: the bot token,
    /// the bot's presence in each server, Manage Roles, each paid role below the bot's, and
    /// each relay's channel permissions and whether its target leaks to every member. Exits 1
    /// when anything needs fixing.
    Check,
    /// Print a shell completion script, e.g. `docobo completions bash > /etc/bash_completion.d/docobo`.
    Completions { shell: clap_complete::Shell },
    /// Discord slash commands.
    #[command(subcommand)]
    Commands(CommandsCommand),
    /// The key that encrypts stored provider credentials.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Run the whole flow locally (temporary SQLite, the real server, fake Discord and Polar)
    /// and print a timeline with measured latencies. Touches no configured database.
    Demo,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ManualArgs {
    pub(crate) guild: GuildId,
    pub(crate) user: UserId,
    pub(crate) role: RoleId,
    /// Why; required, and kept in the audit trail.
    #[arg(long)]
    pub(crate) reason: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ExportFormat {
    Csv,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ExportData {
    Entitlements,
    Payments,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SecretsCommand {
    /// Re-seal every stored credential under DOCOBO_SECRET_KEY (the new key), reading them with
    /// it or DOCOBO_SECRET_KEY_OLD (the old one), in one transaction: all or nothing. Afterwards
    /// drop DOCOBO_SECRET_KEY_OLD everywhere. Servers running with both keys keep working
    /// throughout.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CommandsCommand {
    /// Register /help, /status, /join and /setup with Discord (globally, or in one server for
    /// testing, which applies at once). Needs DISCORD_BOT_TOKEN and DISCORD_CLIENT_ID.
    Register {
        #[arg(long)]
        guild: Option<GuildId>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum GuildCommand {
    /// Register a server.
    Add {
        guild: GuildId,
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List registered servers.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change a server's member notices (DMs before access ends, when a renewal fails, when
    /// access ended, and an optional welcome).
    Set {
        guild: GuildId,
        /// How long before access ends to remind members, e.g. `3d,1d` or `12h`; `none` for no
        /// reminders.
        #[arg(long)]
        remind: Option<Reminders>,
        /// Welcome members on their first payment.
        #[arg(long, value_enum)]
        welcome: Option<OnOff>,
        /// All of the server's notices.
        #[arg(long, value_enum)]
        notices: Option<OnOff>,
        /// The notices' language.
        #[arg(long, value_enum)]
        locale: Option<LocaleArg>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnOff {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LocaleArg {
    En,
    Vi,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProviderCommand {
    /// Store a provider's credentials for a server.
    Set {
        guild: GuildId,
        #[command(subcommand)]
        provider: ProviderSettings,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProviderSettings {
    /// Polar: the endpoint's webhook secret, and an organization access token for checkouts.
    Polar {
        #[arg(long, env = "DOCOBO_POLAR_WEBHOOK_SECRET", hide_env_values = true)]
        webhook_secret: String,
        #[arg(long, env = "DOCOBO_POLAR_ACCESS_TOKEN", hide_env_values = true)]
        access_token: Option<String>,
    },
    /// SePay: the webhook API key, and the receiving bank account.
    Sepay {
        #[arg(long, env = "DOCOBO_SEPAY_API_KEY", hide_env_values = true)]
        api_key: String,
        /// SePay's bank short name, e.g. MBBank, Vietcombank.
        #[arg(long)]
        bank: String,
        #[arg(long)]
        account: String,
        /// Transfer codes start with this (2–5 letters).
        #[arg(long, default_value = docobo_adapters::sepay::DEFAULT_CODE_PREFIX)]
        code_prefix: String,
        /// The webhook is authenticated with HMAC-SHA256 instead of the API key header.
        #[arg(long)]
        hmac: bool,
    },
    /// Sell.app: the webhook signing secret, and the API key that reads orders a webhook only
    /// names.
    Sellapp {
        #[arg(long, env = "DOCOBO_SELLAPP_WEBHOOK_SECRET", hide_env_values = true)]
        webhook_secret: String,
        #[arg(long, env = "DOCOBO_SELLAPP_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// The store's slug (`my-store` for my-store.sell.app).
        #[arg(long)]
        store: Option<String>,
        /// The payment method of orders `/join` makes (Sell.app needs one): STRIPE, PAYPAL, BTC, …
        #[arg(long)]
        payment_method: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RoleCommand {
    /// Put a role up for sale (or change its price and term).
    Add {
        guild: GuildId,
        role: RoleId,
        #[arg(long)]
        price: String,
        #[arg(long)]
        currency: Currency,
        /// recurring, lifetime, or a number of days like 30d.
        #[arg(long, default_value = "recurring")]
        term: Term,
        /// The Polar product whose purchases grant this role.
        #[arg(long)]
        polar_product: Option<String>,
        /// Offer SePay bank transfers in /join.
        #[arg(long)]
        sepay: bool,
        /// The Sell.app product whose orders grant this role.
        #[arg(long)]
        sellapp_product: Option<String>,
        /// Only this variant of the Sell.app product (say, its 30-day variant).
        #[arg(long, requires = "sellapp_product")]
        sellapp_variant: Option<String>,
        /// What members see; defaults to "Role <id>".
        #[arg(long)]
        name: Option<String>,
    },
    /// List a server's roles for sale.
    List {
        guild: GuildId,
        #[arg(long)]
        json: bool,
    },
    /// Stop selling a role (existing purchases are kept).
    Remove { guild: GuildId, role: RoleId },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SubsCommand {
    /// List entitlements.
    List {
        #[arg(long)]
        guild: Option<GuildId>,
        #[arg(long)]
        user: Option<UserId>,
        #[arg(long)]
        json: bool,
    },
    /// One entitlement in full: its status and dates, and the member's audit trail for the role.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum OutcomeArg {
    Processed,
    Ignored,
    Failed,
    /// Waiting for the provider's API (a Sell.app hint) before it can be applied.
    Deferred,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// List received webhooks, oldest first.
    List {
        #[arg(long)]
        status: Option<OutcomeArg>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Apply a failed event again, after fixing its cause.
    Replay { id: DeliveryId },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RelayCommand {
    /// Mirror every message posted in a source channel into a target channel (edits and
    /// deletions follow). The bot must be in both servers; the server needs a restart to start
    /// reading messages when this is the first relay.
    Add {
        source_guild: GuildId,
        source_channel: ChannelId,
        target_guild: GuildId,
        target_channel: ChannelId,
        /// `webhook`: under the source author's name and avatar (needs Manage Webhooks in the
        /// target); `bot`: as the bot (needs Send Messages, Embed Links, Attach Files).
        #[arg(long, default_value = "webhook", value_parser = parse_via)]
        via: Via,
        /// A label for lists.
        #[arg(long)]
        name: Option<String>,
        /// A role in the target server that each new signal pings.
        #[arg(long)]
        ping_role: Option<RoleId>,
        /// The paid role that opens the target channel: members entitled to it read the relay's
        /// signals on the web dashboard (`/me/signals`). Without it, no one reads it there.
        #[arg(long)]
        role: Option<RoleId>,
    },
    /// List relays.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop a relay (mirrors already posted stay).
    Remove { id: i64 },
}

fn parse_via(raw: &str) -> Result<Via, String> {
    raw.parse()
}
