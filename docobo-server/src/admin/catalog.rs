//! The admin API's catalog operations: paid roles and provider credentials, under the same rules
//! as the CLI and `/setup` (`docobo_core::service::catalog`).

use std::collections::BTreeMap;
use std::sync::Arc;

use docobo_core::domain::{Guild, GuildId, Money, PaidRole, ProductLink, ProviderName, RoleId, Term};
use docobo_core::ports::{CatalogRepo, CredentialError};
use docobo_core::service::{CatalogRefusal, NoticeChange, configure_notices, sell_role, set_credentials};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::views::ApiError;
use super::{AdminToken, id};
use crate::state::AppState;

/// Where members pay for a role: a provider and, where it sells by product, the product and
/// optionally one variant.
#[derive(Debug, Clone, Object)]
pub struct LinkView {
    /// The provider's name (`polar`, `sepay`, …).
    pub provider: String,
    #[oai(skip_serializing_if_is_none)]
    pub product: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub variant: Option<String>,
}

/// A role to put on sale.
#[derive(Debug, Object)]
pub struct RoleRequest {
    /// What members see; defaults to "Role <id>".
    pub name: Option<String>,
    /// In the currency's units, e.g. `5.00` or `250000`.
    pub price: String,
    /// ISO 4217 code, e.g. `USD`, `VND`.
    pub currency: String,
    /// `recurring`, `lifetime` or a number of days such as `30d`.
    pub term: String,
    pub links: Vec<LinkView>,
}

/// A role for sale.
#[derive(Debug, Object)]
pub struct RoleView {
    pub guild_id: String,
    pub role_id: String,
    pub name: String,
    pub price: String,
    pub term: String,
    pub links: Vec<LinkView>,
}

impl From<&PaidRole> for RoleView {
    fn from(r: &PaidRole) -> Self {
        RoleView {
            guild_id: r.guild.to_string(),
            role_id: r.role.to_string(),
            name: r.name.clone(),
            price: r.price.to_string(),
            term: r.term.to_string(),
            links: r
                .links
                .iter()
                .map(|l| LinkView {
                    provider: l.provider.to_string(),
                    product: l.product.clone(),
                    variant: l.variant.clone(),
                })
                .collect(),
        }
    }
}

/// A provider's credentials: the same fields as its `/setup` form, by field id.
#[derive(Debug, Object)]
pub struct CredentialsRequest {
    pub values: BTreeMap<String, String>,
}

/// Stored credentials (never echoed) and where the provider must send webhooks.
#[derive(Debug, Object)]
pub struct CredentialsView {
    pub provider: String,
    pub webhook_url: String,
}

/// A guild's member notices.
#[derive(Debug, Object)]
pub struct NoticesView {
    pub guild_id: String,
    /// Whether members get notices at all.
    pub enabled: bool,
    /// Whether a first payment gets a welcome.
    pub welcome: bool,
    /// Reminder lead times before access ends, e.g. `3d,1d`; `none` for none.
    pub remind: String,
    /// `en` or `vi`.
    pub locale: String,
}

impl From<&Guild> for NoticesView {
    fn from(g: &Guild) -> Self {
        let n = &g.notices;
        NoticesView {
            guild_id: g.id.to_string(),
            enabled: n.enabled,
            welcome: n.welcome,
            remind: n.remind.to_string(),
            locale: n.locale.to_string(),
        }
    }
}

/// A change to a guild's member notices; absent fields are kept.
#[derive(Debug, Object)]
pub struct NoticesRequest {
    pub enabled: Option<bool>,
    pub welcome: Option<bool>,
    /// Reminder lead times, e.g. `3d,1d` or `12h`; `none` for none.
    pub remind: Option<String>,
    /// `en` or `vi`.
    pub locale: Option<String>,
}

fn notices_view(guild: GuildId, found: Option<Guild>) -> Result<Json<NoticesView>, ApiError> {
    let found = found.ok_or_else(|| ApiError::not_found(format!("guild {guild} is not registered")))?;
    Ok(Json(NoticesView::from(&found)))
}

/// `raw` parsed, if given; a problem naming `field` when it does not parse.
fn parsed<T: std::str::FromStr>(field: &str, raw: Option<&str>, problems: &mut Vec<String>) -> Option<T>
where
    T::Err: std::fmt::Display,
{
    raw?.parse().map_err(|e| problems.push(format!("{field}: {e}"))).ok()
}

fn refusal(e: CatalogRefusal) -> ApiError {
    match e {
        CatalogRefusal::NotSellable(_) | CatalogRefusal::Credentials(CredentialError::Invalid(_)) => {
            ApiError::bad(e)
        }
        CatalogRefusal::UnknownGuild(_) | CatalogRefusal::UnknownProvider { .. } => ApiError::not_found(e),
        CatalogRefusal::Credentials(CredentialError::Unavailable(_)) => ApiError::unavailable(e),
        CatalogRefusal::Store(s) => s.into(),
    }
}

fn paid_role(guild: GuildId, role: RoleId, request: &RoleRequest) -> Result<PaidRole, ApiError> {
    let currency = request.currency.to_ascii_uppercase().parse().map_err(ApiError::bad)?;
    let price = Money::parse(&request.price, currency).map_err(ApiError::bad)?;
    let term: Term = request.term.to_ascii_lowercase().parse().map_err(ApiError::bad)?;
    let name = request.name.clone().unwrap_or_else(|| format!("Role {role}"));
    let mut paid = PaidRole::new(guild, role, name, price, term).map_err(ApiError::bad)?;
    for link in &request.links {
        let provider: ProviderName = link.provider.parse().map_err(ApiError::bad)?;
        paid.link(ProductLink { provider, product: link.product.clone(), variant: link.variant.clone() });
    }
    Ok(paid)
}

pub(super) struct Catalog {
    pub(super) state: Arc<AppState>,
}

#[OpenApi]
impl Catalog {
    /// A guild's roles for sale.
    #[oai(path = "/guilds/:guild_id/roles", method = "get")]
    async fn roles(
        &self,
        _auth: AdminToken,
        guild_id: Path<String>,
    ) -> Result<Json<Vec<RoleView>>, ApiError> {
        let guild: GuildId = id(&guild_id)?;
        Ok(Json(self.state.repo.paid_roles(guild).await?.iter().map(Into::into).collect()))
    }

    /// Puts a role on sale, or changes it. Refused (400, every reason named, nothing stored) when
    /// a link breaks a provider's rules: a bank transfer never renews, so it cannot pay for a
    /// recurring role.
    #[oai(path = "/guilds/:guild_id/roles/:role_id", method = "put")]
    async fn put_role(
        &self,
        _auth: AdminToken,
        guild_id: Path<String>,
        role_id: Path<String>,
        body: Json<RoleRequest>,
    ) -> Result<Json<RoleView>, ApiError> {
        let paid = paid_role(id(&guild_id)?, id(&role_id)?, &body)?;
        sell_role(&self.state.repo, &self.state.providers, &paid).await.map_err(refusal)?;
        Ok(Json(RoleView::from(&paid)))
    }

    /// A guild's member notices.
    #[oai(path = "/guilds/:guild_id/notices", method = "get")]
    async fn notices(
        &self,
        _auth: AdminToken,
        guild_id: Path<String>,
    ) -> Result<Json<NoticesView>, ApiError> {
        let guild: GuildId = id(&guild_id)?;
        notices_view(guild, self.state.repo.guild(guild).await?)
    }

    /// Changes a guild's member notices. Refused (400, every bad field named, nothing changed)
    /// when a value is invalid.
    #[oai(path = "/guilds/:guild_id/notices", method = "put")]
    async fn put_notices(
        &self,
        _auth: AdminToken,
        guild_id: Path<String>,
        body: Json<NoticesRequest>,
    ) -> Result<Json<NoticesView>, ApiError> {
        let guild: GuildId = id(&guild_id)?;
        let mut problems = Vec::new();
        let remind = parsed("remind", body.remind.as_deref(), &mut problems);
        let locale = body.locale.as_deref().map(str::to_ascii_lowercase);
        let locale = parsed("locale", locale.as_deref(), &mut problems);
        if !problems.is_empty() {
            return Err(ApiError::bad(problems.join("; ")));
        }
        let change = NoticeChange { enabled: body.enabled, welcome: body.welcome, remind, locale };
        notices_view(guild, configure_notices(&self.state.repo, guild, change).await?)
    }

    /// Checks a provider's credentials with the provider, then stores them sealed. The values
    /// are the fields of the provider's `/setup` form.
    #[oai(path = "/guilds/:guild_id/providers/:provider", method = "put")]
    async fn put_credentials(
        &self,
        _auth: AdminToken,
        guild_id: Path<String>,
        provider: Path<String>,
        body: Json<CredentialsRequest>,
    ) -> Result<Json<CredentialsView>, ApiError> {
        let guild: GuildId = id(&guild_id)?;
        let found =
            self.state.providers.named(&provider).ok_or_else(|| {
                ApiError::not_found(format!("no provider named {:?} runs here", provider.0))
            })?;
        let credentials = found.credentials_from_form(&body.values).map_err(ApiError::bad)?;
        let name = found.name();
        set_credentials(&self.state.repo, &self.state.providers, guild, name, &credentials)
            .await
            .map_err(refusal)?;
        Ok(Json(CredentialsView {
            provider: name.to_string(),
            webhook_url: self.state.bot.webhook_url(name, guild),
        }))
    }
}
