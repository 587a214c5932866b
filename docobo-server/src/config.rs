//! The server's configuration, validated once at start-up. Every problem is named in one
//! message, so an operator fixes them all in one go.
//!
//! Layers, later ones winning: the defaults, then `docobo.toml` (in the working directory, or the
//! file `DOCOBO_CONFIG` names), then the environment. The file holds the same keys as the
//! environment, e.g. `DOCOBO_LISTEN = "0.0.0.0:8080"`; an unknown key in it is reported, since
//! it is almost always a typo.

use std::net::SocketAddr;

use docobo_adapters::seaorm::crypto::SecretBox;
use docobo_core::domain::Secret;

/// Validated settings. `Debug` is [`Config::describe`]: secrets and database passwords redacted.
#[derive(Clone)]
pub struct Config {
    /// `DOCOBO_DATABASE_URL`: a SQLite file (default `sqlite://docobo.db?mode=rwc`) or PostgreSQL.
    pub database_url: String,
    /// `DOCOBO_LISTEN`, default `127.0.0.1:3000`.
    pub listen: SocketAddr,
    /// `DOCOBO_SECRET_KEY`: base64 of 32 bytes; encrypts stored provider credentials.
    pub secret_key: Option<Secret>,
    /// `DOCOBO_SECRET_KEY_OLD`: while rotating the key, credentials sealed under this one are
    /// still read (`docobo secrets rotate` re-seals them under `secret_key`).
    pub secret_key_old: Option<Secret>,
    /// `DOCOBO_ADMIN_TOKEN`: the bearer token of `/admin/*`; the admin API is off without it.
    pub admin_token: Option<Secret>,
    /// `DISCORD_BOT_TOKEN`: without it role jobs wait and `/ready` says so.
    pub discord_bot_token: Option<Secret>,
    /// `POLAR_API_URL`: production, `https://sandbox-api.polar.sh`, or a local fake.
    pub polar_api_url: String,
    /// `SELLAPP_API_URL`: Sell.app's API (`https://sell.app/api`), or a local fake.
    pub sellapp_api_url: String,
    /// `DOCOBO_DISCORD_API_URL`: `https://discord.com`, or a local fake (`/api/v10` is appended).
    pub discord_api_url: String,
    /// `DISCORD_PUBLIC_KEY`: the application's Ed25519 key (hex) for `POST /interactions`.
    pub discord_public_key: Option<String>,
    /// `DOCOBO_PUBLIC_URL`: the base of the webhook URLs `/setup` shows owners.
    pub public_url: String,
    /// `DOCOBO_GATEWAY`: connect to Discord's gateway (member joins, guild registration, and
    /// interactions without an HTTP endpoint). `on` by default when a bot token is set.
    pub gateway: bool,
    /// `DOCOBO_DISCORD_RATE`: Discord requests per second in all, default 45 (Discord's global
    /// limit is 50; it raises it for large bots on request).
    pub discord_rate: u32,
    /// `DOCOBO_DISCORD_TIMEOUT`: seconds one Discord call may take, default 10.
    pub discord_timeout: std::time::Duration,
    /// `DOCOBO_WEBHOOKS_IN_FLIGHT`: webhooks handled at once; past it a delivery is answered 503
    /// with `Retry-After` at once (providers redeliver), so accepted ones are not queued behind
    /// more than the database can write. Default 32: by Little's law the accepted deliveries
    /// wait about the cap over the throughput, and 32 keeps that under 50 ms at the 1,500–2,500
    /// webhooks/s either database writes on two cores (docs/PERFORMANCE.md §4.4).
    pub webhooks_in_flight: usize,
    /// `DOCOBO_NOTICE_INTERVAL`: seconds between two member-notice DMs, default 1 (Discord warns
    /// that a bot opening many DMs quickly may be blocked from opening more).
    pub notice_interval: time::Duration,
    /// `DOCOBO_RATE_LIMIT`: requests per second from one IP address (bursts of twice that)
    /// before answering 429, default 100; `off` disables it (behind a proxy every request comes
    /// from the proxy's address).
    pub rate_limit: Option<std::num::NonZeroU32>,
    /// `DOCOBO_EVENT_RETENTION_DAYS`: stored bodies of applied or ignored webhooks are emptied
    /// after this long (failed ones are kept for replay); `None` keeps them forever.
    pub event_retention: Option<time::Duration>,
    /// `DOCOBO_DATA_DIR`: where the relay keeps attachments it downloaded, default `./docobo-data`.
    pub data_dir: std::path::PathBuf,
    /// `DISCORD_CLIENT_ID`: the application id, for the dashboard's "Log in with Discord".
    pub discord_client_id: Option<String>,
    /// `DISCORD_CLIENT_SECRET`: the application's OAuth2 secret; the dashboard is off without it.
    pub discord_client_secret: Option<Secret>,
    /// `DOCOBO_OPERATORS`: user ids (comma-separated) who may operate every guild in the
    /// dashboard, beside each guild's owner and members with Manage Server.
    pub operators: Vec<docobo_core::domain::UserId>,
    /// How long clients may take to send a request head, a body, or nothing between requests
    /// (`crate::guard`). Not an environment key: the defaults suit any deployment; tests shorten them.
    pub client_limits: crate::guard::Limits,
}

impl Default for Config {
    /// The embedded defaults, what an empty environment gives: SQLite in the working directory,
    /// loopback, no Discord, no secrets. Tests start here and change fields.
    fn default() -> Self {
        Config {
            database_url: "sqlite://docobo.db?mode=rwc".to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            secret_key: None,
            secret_key_old: None,
            admin_token: None,
            discord_bot_token: None,
            polar_api_url: "https://api.polar.sh".to_owned(),
            sellapp_api_url: "https://sell.app/api".to_owned(),
            discord_api_url: "https://discord.com".to_owned(),
            discord_public_key: None,
            public_url: "http://127.0.0.1:3000".to_owned(),
            gateway: false,
            discord_rate: docobo_adapters::discord::pacer::GLOBAL_RATE,
            notice_interval: time::Duration::SECOND,
            webhooks_in_flight: 32,
            discord_timeout: docobo_adapters::discord::CALL_TIMEOUT,
            rate_limit: std::num::NonZeroU32::new(100),
            event_retention: Some(time::Duration::days(90)),
            data_dir: "docobo-data".into(),
            discord_client_id: None,
            discord_client_secret: None,
            operators: Vec::new(),
            client_limits: crate::guard::Limits::default(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Config");
        for (key, value) in self.describe() {
            d.field(key, &value);
        }
        d.finish()
    }
}

/// `url` with any password replaced by `[redacted]` (`postgres://user:pw@host/db`).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority_and_path, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    // The password ends at the last `@` of the authority (a password may itself contain `@`).
    let authority_end = authority_and_path.find('/').unwrap_or(authority_and_path.len());
    let (authority, path) = authority_and_path.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{user}:[redacted]@{host}")
        }
        _ => authority.to_owned(),
    };
    let query = query.map(|q| {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=[redacted]"),
                _ => pair.to_owned(),
            })
            .collect();
        format!("?{}", pairs.join("&"))
    });
    format!("{scheme}://{authority}{path}{}", query.unwrap_or_default())
}

/// Every invalid key, with how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError(pub Vec<String>);

/// Every key the configuration reads.
pub const KEYS: [&str; 22] = [
    "DOCOBO_DATABASE_URL",
    "DOCOBO_ADMIN_TOKEN",
    "DOCOBO_LISTEN",
    "DOCOBO_SECRET_KEY",
    "DOCOBO_SECRET_KEY_OLD",
    "DOCOBO_EVENT_RETENTION_DAYS",
    "DISCORD_BOT_TOKEN",
    "POLAR_API_URL",
    "SELLAPP_API_URL",
    "DOCOBO_DISCORD_API_URL",
    "DISCORD_PUBLIC_KEY",
    "DOCOBO_PUBLIC_URL",
    "DOCOBO_GATEWAY",
    "DOCOBO_DISCORD_RATE",
    "DOCOBO_DISCORD_TIMEOUT",
    "DOCOBO_NOTICE_INTERVAL",
    "DOCOBO_WEBHOOKS_IN_FLIGHT",
    "DOCOBO_RATE_LIMIT",
    "DOCOBO_DATA_DIR",
    "DISCORD_CLIENT_ID",
    "DISCORD_CLIENT_SECRET",
    "DOCOBO_OPERATORS",
];

/// A configuration file's keys and values, and every problem with it.
pub type FileValues = (std::collections::HashMap<String, String>, Vec<String>);

/// Reads a configuration file: the values of the known keys, and every problem with it.
pub fn read_file(path: &std::path::Path) -> FileValues {
    match parse_file(path) {
        Ok(values) => values,
        Err(problem) => (Default::default(), vec![problem]),
    }
}

fn parse_file(path: &std::path::Path) -> Result<FileValues, String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: cannot be read: {e}"))?;
    let table: toml::Table =
        text.parse().map_err(|e: toml::de::Error| format!("{name}: not valid TOML: {}", e.message()))?;
    let mut values = std::collections::HashMap::new();
    let mut problems = Vec::new();
    for (key, value) in table {
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => if b { "on" } else { "off" }.to_owned(),
            _ => {
                problems.push(format!("{name}: {key} must be a string or a number"));
                continue;
            }
        };
        if KEYS.contains(&key.as_str()) {
            values.insert(key, value);
        } else {
            problems.push(format!(
                "{name}: unknown key {key} (the keys are those of the environment, e.g. DOCOBO_LISTEN)"
            ));
        }
    }
    Ok((values, problems))
}

impl Config {
    /// Every key with its effective value, secrets shown as `[redacted]` (`docobo check`).
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let secret =
            |s: &Option<Secret>| s.as_ref().map_or_else(|| "(not set)".to_owned(), Secret::to_string);
        let or_unset = |s: &Option<String>| s.clone().unwrap_or_else(|| "(not set)".to_owned());
        let on = |b: bool| if b { "on" } else { "off" }.to_owned();
        vec![
            ("DOCOBO_DATABASE_URL", redact_url(&self.database_url)),
            ("DOCOBO_LISTEN", self.listen.to_string()),
            ("DOCOBO_PUBLIC_URL", self.public_url.clone()),
            ("DOCOBO_SECRET_KEY", secret(&self.secret_key)),
            ("DOCOBO_SECRET_KEY_OLD", secret(&self.secret_key_old)),
            (
                "DOCOBO_EVENT_RETENTION_DAYS",
                self.event_retention.map_or_else(|| "off".to_owned(), |d| d.whole_days().to_string()),
            ),
            ("DOCOBO_ADMIN_TOKEN", secret(&self.admin_token)),
            ("DISCORD_BOT_TOKEN", secret(&self.discord_bot_token)),
            ("DISCORD_PUBLIC_KEY", or_unset(&self.discord_public_key)),
            ("DOCOBO_DISCORD_API_URL", self.discord_api_url.clone()),
            ("DOCOBO_GATEWAY", on(self.gateway)),
            ("DOCOBO_DISCORD_RATE", self.discord_rate.to_string()),
            ("DOCOBO_DISCORD_TIMEOUT", format!("{}s", self.discord_timeout.as_secs_f64())),
            ("DOCOBO_NOTICE_INTERVAL", format!("{}s", self.notice_interval.as_seconds_f64())),
            ("DOCOBO_WEBHOOKS_IN_FLIGHT", self.webhooks_in_flight.to_string()),
            ("DOCOBO_RATE_LIMIT", self.rate_limit.map_or_else(|| "off".to_owned(), |r| r.to_string())),
            ("DOCOBO_DATA_DIR", self.data_dir.display().to_string()),
            ("DISCORD_CLIENT_ID", self.discord_client_id.clone().unwrap_or_else(|| "(unset)".to_owned())),
            ("DISCORD_CLIENT_SECRET", secret(&self.discord_client_secret)),
            (
                "DOCOBO_OPERATORS",
                self.operators.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            ),
            ("POLAR_API_URL", self.polar_api_url.clone()),
            ("SELLAPP_API_URL", self.sellapp_api_url.clone()),
        ]
    }

    /// The defaults, then `docobo.toml` (or the file `DOCOBO_CONFIG` names), then the
    /// environment. A file named by `DOCOBO_CONFIG` must exist; `docobo.toml` may not.
    pub fn from_env() -> Result<Config, ConfigError> {
        let env = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
        let file = match env("DOCOBO_CONFIG") {
            Some(path) => read_file(std::path::Path::new(&path)),
            None if std::path::Path::new("docobo.toml").exists() => {
                read_file(std::path::Path::new("docobo.toml"))
            }
            None => Default::default(),
        };
        Self::layered(env, file)
    }

    /// The environment (`env`) over a file's values; the file's problems are reported with
    /// the rest.
    pub fn layered(env: impl Fn(&str) -> Option<String>, file: FileValues) -> Result<Config, ConfigError> {
        let (values, mut problems) = file;
        let merged = Self::from_vars(|key| env(key).or_else(|| values.get(key).cloned()));
        match merged {
            Ok(config) if problems.is_empty() => Ok(config),
            Ok(_) => Err(ConfigError(problems)),
            Err(ConfigError(more)) => {
                problems.extend(more);
                Err(ConfigError(problems))
            }
        }
    }

    /// Reads from `get`, so tests need not touch the process environment.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |key: &str| get(key).filter(|v| !v.trim().is_empty());
        let mut problems = Vec::new();
        let defaults = Config::default();

        let database_url = var("DOCOBO_DATABASE_URL").unwrap_or_else(|| defaults.database_url.clone());
        if !["sqlite:", "postgres://", "postgresql://"].iter().any(|p| database_url.starts_with(p)) {
            problems.push("DOCOBO_DATABASE_URL: must start with sqlite: or postgres:// (e.g. sqlite://docobo.db?mode=rwc)".to_owned());
        }
        let listen_raw = var("DOCOBO_LISTEN").unwrap_or_else(|| defaults.listen.to_string());
        let listen = listen_raw.parse().map_err(|_| {
            problems.push(format!(
                "DOCOBO_LISTEN: {listen_raw:?} is not an address like 127.0.0.1:3000 or 0.0.0.0:8080"
            ));
        });
        let secret_key = var("DOCOBO_SECRET_KEY").map(Secret::new);
        if let Some(key) = &secret_key
            && let Err(e) = SecretBox::from_base64(key.expose())
        {
            problems.push(format!("DOCOBO_SECRET_KEY: {e}"));
        }
        let secret_key_old = var("DOCOBO_SECRET_KEY_OLD").map(Secret::new);
        match &secret_key_old {
            Some(old) if SecretBox::from_base64(old.expose()).is_err() => {
                problems
                    .push("DOCOBO_SECRET_KEY_OLD: must be standard base64 of exactly 32 bytes".to_owned());
            }
            Some(_) if secret_key.is_none() => {
                problems.push(
                    "DOCOBO_SECRET_KEY_OLD: set only while rotating, beside the new DOCOBO_SECRET_KEY"
                        .to_owned(),
                );
            }
            _ => {}
        }
        let discord_bot_token = var("DISCORD_BOT_TOKEN").map(Secret::new);
        let admin_token = var("DOCOBO_ADMIN_TOKEN").map(Secret::new);
        if admin_token.as_ref().is_some_and(|t| t.expose().trim().len() < 16) {
            problems.push(
                "DOCOBO_ADMIN_TOKEN: use at least 16 characters (e.g. `openssl rand -hex 32`)".to_owned(),
            );
        }
        let url = |key: &str, default: &str| {
            let value = var(key).unwrap_or_else(|| default.to_owned());
            (value.starts_with("https://") || value.starts_with("http://"), value)
        };
        let (ok, polar_api_url) = url("POLAR_API_URL", &defaults.polar_api_url);
        if !ok {
            problems.push(format!("POLAR_API_URL: {polar_api_url:?} is not an http(s) URL"));
        }
        let (ok, sellapp_api_url) = url("SELLAPP_API_URL", &defaults.sellapp_api_url);
        if !ok {
            problems.push(format!("SELLAPP_API_URL: {sellapp_api_url:?} is not an http(s) URL"));
        }
        let discord_public_key = var("DISCORD_PUBLIC_KEY");
        if let Some(key) = &discord_public_key
            && docobo_adapters::discord::interactions::verifier(key).is_none()
        {
            problems.push(
                "DISCORD_PUBLIC_KEY: must be the 64 hex characters shown in the Developer Portal".to_owned(),
            );
        }
        let (ok, discord_api_url) = url("DOCOBO_DISCORD_API_URL", &defaults.discord_api_url);
        if !ok {
            problems.push(format!("DOCOBO_DISCORD_API_URL: {discord_api_url:?} is not an http(s) URL"));
        }

        let (ok, public_url) = url("DOCOBO_PUBLIC_URL", &defaults.public_url);
        if !ok {
            problems.push(format!(
                "DOCOBO_PUBLIC_URL: {public_url:?} is not an http(s) URL (the address providers reach this server at)"
            ));
        }

        let gateway = match var("DOCOBO_GATEWAY").map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None => discord_bot_token.is_some(),
            Some("on") if discord_bot_token.is_none() => {
                problems.push("DOCOBO_GATEWAY: on needs DISCORD_BOT_TOKEN".to_owned());
                false
            }
            Some("on") => true,
            Some("off") => false,
            Some(other) => {
                problems.push(format!("DOCOBO_GATEWAY: {other:?} must be on or off"));
                false
            }
        };

        let discord_rate = match var("DOCOBO_DISCORD_RATE") {
            None => defaults.discord_rate,
            Some(raw) => match raw.trim().parse::<u32>() {
                Ok(rate @ 1..=100_000) => rate,
                _ => {
                    problems.push(format!(
                        "DOCOBO_DISCORD_RATE: {raw:?} must be requests per second, 1 to 100000"
                    ));
                    docobo_adapters::discord::pacer::GLOBAL_RATE
                }
            },
        };
        let discord_timeout = match var("DOCOBO_DISCORD_TIMEOUT") {
            None => defaults.discord_timeout,
            Some(raw) => match raw.trim().parse::<f64>() {
                Ok(s) if (0.1..=300.0).contains(&s) => std::time::Duration::from_secs_f64(s),
                _ => {
                    problems.push(format!("DOCOBO_DISCORD_TIMEOUT: {raw:?} must be seconds, 0.1 to 300"));
                    docobo_adapters::discord::CALL_TIMEOUT
                }
            },
        };

        let notice_interval = match var("DOCOBO_NOTICE_INTERVAL") {
            None => defaults.notice_interval,
            Some(raw) => match raw.trim().parse::<f64>() {
                Ok(s) if (0.01..=3600.0).contains(&s) => time::Duration::seconds_f64(s),
                _ => {
                    problems.push(format!(
                        "DOCOBO_NOTICE_INTERVAL: {raw:?} must be seconds between two notice DMs, 0.01 to 3600"
                    ));
                    defaults.notice_interval
                }
            },
        };

        let webhooks_in_flight = match var("DOCOBO_WEBHOOKS_IN_FLIGHT") {
            None => defaults.webhooks_in_flight,
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(n @ 1..=100_000) => n,
                _ => {
                    problems.push(format!(
                        "DOCOBO_WEBHOOKS_IN_FLIGHT: {raw:?} must be a number of webhooks, 1 to 100000"
                    ));
                    defaults.webhooks_in_flight
                }
            },
        };

        let event_retention = match var("DOCOBO_EVENT_RETENTION_DAYS").map(|v| v.trim().to_ascii_lowercase())
        {
            None => defaults.event_retention,
            Some(off) if off == "off" => None,
            Some(raw) => match raw.parse::<u16>() {
                Ok(days @ 1..=3650) => Some(time::Duration::days(i64::from(days))),
                _ => {
                    problems.push(format!(
                        "DOCOBO_EVENT_RETENTION_DAYS: {raw:?} must be days, 1 to 3650, or off"
                    ));
                    None
                }
            },
        };
        let rate_limit = match var("DOCOBO_RATE_LIMIT").map(|v| v.trim().to_ascii_lowercase()) {
            None => defaults.rate_limit,
            Some(off) if off == "off" => None,
            Some(raw) => match raw.parse::<std::num::NonZeroU32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    problems.push(format!(
                        "DOCOBO_RATE_LIMIT: {raw:?} must be requests per second per IP address (e.g. 100), or off"
                    ));
                    None
                }
            },
        };

        let discord_client_id = var("DISCORD_CLIENT_ID").map(|v| v.trim().to_owned());
        let discord_client_secret = var("DISCORD_CLIENT_SECRET").map(Secret::new);
        if discord_client_secret.is_some() && discord_client_id.is_none() {
            problems.push("DISCORD_CLIENT_ID: the dashboard's login needs the application id beside DISCORD_CLIENT_SECRET".to_owned());
        }
        let mut operators = Vec::new();
        for raw in
            var("DOCOBO_OPERATORS").iter().flat_map(|v| v.split(',')).map(str::trim).filter(|v| !v.is_empty())
        {
            match raw.parse() {
                Ok(user) => operators.push(user),
                Err(_) => problems.push(format!("DOCOBO_OPERATORS: {raw:?} is not a Discord user id")),
            }
        }

        match (problems.is_empty(), listen) {
            (true, Ok(listen)) => Ok(Config {
                database_url,
                listen,
                secret_key,
                secret_key_old,
                admin_token,
                discord_bot_token,
                polar_api_url,
                sellapp_api_url,
                discord_api_url,
                discord_public_key,
                public_url,
                gateway,
                discord_rate,
                discord_timeout,
                notice_interval,
                webhooks_in_flight,
                rate_limit,
                client_limits: defaults.client_limits,
                event_retention,
                data_dir: var("DOCOBO_DATA_DIR").map_or(defaults.data_dir, Into::into),
                discord_client_id,
                discord_client_secret,
                operators,
            }),
            _ => Err(ConfigError(problems)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_vars(|k| vars.get(k).cloned())
    }

    #[test]
    fn nothing_configured_means_the_embedded_defaults() {
        let c = config(&[]).expect("valid");
        assert_eq!(c.database_url, "sqlite://docobo.db?mode=rwc");
        assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
        assert!(c.secret_key.is_none() && c.discord_bot_token.is_none());
    }

    #[test]
    fn every_bad_key_is_named_in_one_message() {
        let err = config(&[
            ("DOCOBO_DATABASE_URL", "mysql://x"),
            ("DOCOBO_LISTEN", "localhost"),
            ("DOCOBO_SECRET_KEY", "c2hvcnQ="),
            ("DISCORD_PUBLIC_KEY", "not-hex"),
            ("DOCOBO_DISCORD_API_URL", "discord.com"),
        ])
        .expect_err("invalid");
        assert_eq!(err.0.len(), 5, "{err}");
        let text = err.to_string();
        for key in [
            "DOCOBO_DATABASE_URL",
            "DOCOBO_LISTEN",
            "DOCOBO_SECRET_KEY",
            "DISCORD_PUBLIC_KEY",
            "DOCOBO_DISCORD_API_URL",
        ] {
            assert!(text.contains(key), "{key} missing from: {text}");
        }
        assert!(!text.contains("c2hvcnQ="), "the secret's value is printed: {text}");
    }

    #[test]
    fn the_gateway_follows_the_token_unless_switched_off() {
        assert!(!config(&[]).expect("valid").gateway);
        assert!(config(&[("DISCORD_BOT_TOKEN", "t")]).expect("valid").gateway);
        assert!(!config(&[("DISCORD_BOT_TOKEN", "t"), ("DOCOBO_GATEWAY", "OFF")]).expect("valid").gateway);
        let err = config(&[("DOCOBO_GATEWAY", "on"), ("DOCOBO_PUBLIC_URL", "example.org")]).expect_err("bad");
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(err.to_string().contains("DOCOBO_GATEWAY: on needs DISCORD_BOT_TOKEN"), "{err}");
        let err = config(&[("DISCORD_BOT_TOKEN", "t"), ("DOCOBO_GATEWAY", "maybe")]).expect_err("bad");
        assert!(err.to_string().contains("must be on or off"), "{err}");
    }

    #[test]
    fn discord_pacing_and_timeout_have_defaults_and_bounds() {
        let c = config(&[]).expect("valid");
        assert_eq!((c.discord_rate, c.discord_timeout.as_secs()), (45, 10));
        let c = config(&[("DOCOBO_DISCORD_RATE", "500"), ("DOCOBO_DISCORD_TIMEOUT", "1.5")]).expect("valid");
        assert_eq!((c.discord_rate, c.discord_timeout.as_millis()), (500, 1500));
        let err =
            config(&[("DOCOBO_DISCORD_RATE", "0"), ("DOCOBO_DISCORD_TIMEOUT", "soon")]).expect_err("bad");
        assert_eq!(err.0.len(), 2, "{err}");
    }

    #[test]
    fn the_environment_wins_over_the_file_and_the_file_over_defaults() {
        let dir = std::env::temp_dir().join(format!("docobo-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("docobo.toml");
        std::fs::write(
            &path,
            "DOCOBO_LISTEN = \"0.0.0.0:8080\"\nDOCOBO_DISCORD_RATE = 90\nDOCOBO_GATEWAY = false\n",
        )
        .expect("write");
        let env: HashMap<&str, &str> = HashMap::from([("DOCOBO_DISCORD_RATE", "120")]);
        let c = Config::layered(|k| env.get(k).map(|v| v.to_string()), read_file(&path)).expect("valid");
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080", "from the file");
        assert_eq!(c.discord_rate, 120, "the environment wins");
        assert!(!c.gateway, "booleans read as on/off");
        assert_eq!(c.database_url, "sqlite://docobo.db?mode=rwc", "the default stays");

        std::fs::write(&path, "DOCOBO_LISTNE = \"0.0.0.0:1\"\nDOCOBO_DISCORD_RATE = \"fast\"\n")
            .expect("write");
        let err = Config::layered(|_| None, read_file(&path)).expect_err("bad");
        let text = err.to_string();
        assert_eq!(err.0.len(), 2, "{text}");
        assert!(text.contains("unknown key DOCOBO_LISTNE") && text.contains("DOCOBO_DISCORD_RATE"), "{text}");
        std::fs::write(&path, "DOCOBO_LISTEN = ").expect("write");
        let err = Config::layered(|_| None, read_file(&path)).expect_err("bad");
        assert!(err.to_string().contains("not valid TOML"), "{err}");
        let (_, problems) = read_file(&dir.join("missing.toml"));
        assert!(problems[0].contains("cannot be read"), "{problems:?}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn secrets_are_redacted_in_debug_output_and_the_description() {
        let c = config(&[
            ("DISCORD_BOT_TOKEN", "MTIz.token.value"),
            ("DOCOBO_ADMIN_TOKEN", "admin-token-0123456789"),
            ("DOCOBO_DATABASE_URL", "postgres://docobo:hunter2@db/docobo"),
        ])
        .expect("valid");
        let described = format!("{:?}", c.describe());
        for shown in [format!("{c:?}"), described.clone()] {
            for secret in ["MTIz.token.value", "admin-token-0123456789"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
        }
        assert!(described.contains("postgres://docobo:[redacted]@db/docobo"), "{described}");
        assert_eq!(c.describe().len(), KEYS.len(), "every key is described");
    }

    #[test]
    fn l9_an_old_secret_key_needs_a_new_one_beside_it() {
        const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let err = config(&[("DOCOBO_SECRET_KEY_OLD", KEY)]).expect_err("old alone");
        assert!(err.to_string().contains("DOCOBO_SECRET_KEY_OLD"), "{err}");
        let both = config(&[("DOCOBO_SECRET_KEY", KEY), ("DOCOBO_SECRET_KEY_OLD", KEY)]).expect("rotating");
        assert!(both.secret_key_old.is_some() && !format!("{both:?}").contains(KEY), "redacted: {both:?}");
    }

    #[test]
    fn l12_webhook_bodies_are_kept_ninety_days_unless_told_otherwise() {
        assert_eq!(config(&[]).expect("defaults").event_retention, Some(time::Duration::days(90)));
        assert_eq!(config(&[("DOCOBO_EVENT_RETENTION_DAYS", "off")]).expect("off").event_retention, None);
        let err = config(&[("DOCOBO_EVENT_RETENTION_DAYS", "0")]).expect_err("zero");
        assert!(err.to_string().contains("DOCOBO_EVENT_RETENTION_DAYS"), "{err}");
    }

    #[test]
    fn the_default_is_what_an_empty_environment_gives() {
        assert_eq!(config(&[]).expect("defaults").describe(), Config::default().describe());
    }

    #[test]
    fn a_short_admin_token_is_refused() {
        let err = config(&[("DOCOBO_ADMIN_TOKEN", "short")]).expect_err("bad");
        assert!(err.to_string().contains("DOCOBO_ADMIN_TOKEN"), "{err}");
        assert!(!err.to_string().contains("short"), "{err}");
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::redact_url;

    #[test]
    fn l5_passwords_with_at_signs_or_in_the_query_are_redacted() {
        assert_eq!(redact_url("postgres://u:p@ss@host/db"), "postgres://u:[redacted]@host/db");
        assert_eq!(
            redact_url("postgres://u@host/db?sslmode=disable&password=hunter2"),
            "postgres://u@host/db?sslmode=disable&password=[redacted]"
        );
        assert_eq!(redact_url("sqlite://docobo.db?mode=rwc"), "sqlite://docobo.db?mode=rwc");
    }
}
