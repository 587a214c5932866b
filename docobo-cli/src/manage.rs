//! Commands that look at or override one member's access: `subs show`, `grant`, `revoke`, and
//! `export`, which writes a server's entitlements or payments as CSV.

use docobo_adapters::seaorm::SeaOrmRepo;
use docobo_core::domain::{Entitlement, EntitlementId, GuildId, RoleJobKey};
use docobo_core::ports::{AuditLog, EntitlementRepo, SystemClock};
use docobo_core::service::{ManualError, export_table, grant_manually, revoke_manually};
use serde_json::{Value, json};

use crate::args::{ExportData, ExportFormat, ManualArgs};
use crate::error::Failure;
use crate::output::print;
use crate::output::time_text;
use crate::repo::registered;

/// The fields `subs list` and `subs show` print for an entitlement.
pub fn entitlement_json(e: &Entitlement) -> Value {
    json!({
        "id": e.id, "guild_id": e.guild, "user_id": e.user, "role_id": e.role,
        "provider": e.provider, "external_ref": e.external_ref, "status": e.status().as_str(),
        "access_until": time_text(e.access_until()),
        "created_at": time_text(Some(e.created_at)), "updated_at": time_text(Some(e.updated_at)),
    })
}

/// `docobo subs show <ID>`: the entitlement, then the member's audit trail for its role.
pub async fn show(repo: &SeaOrmRepo, id: i64, json: bool) -> Result<(), Failure> {
    let e = repo
        .entitlement_by_id(EntitlementId(id))
        .await?
        .ok_or_else(|| Failure::Other(format!("no entitlement {id} (see `docobo subs list`)")))?;
    let trail: Vec<Value> = repo
        .audit_trail(e.guild, e.user)
        .await?
        .into_iter()
        .filter(|a| a.role == e.role)
        .map(|a| {
            json!({ "at": time_text(Some(a.at)), "action": a.action, "reason": a.reason, "cause": a.cause })
        })
        .collect();
    let mut view = entitlement_json(&e);
    if json {
        view["audit"] = Value::Array(trail);
        println!("{view}");
        return Ok(());
    }
    if let Value::Object(fields) = &view {
        for (name, value) in fields {
            let value = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
            println!("{name:<14}{value}");
        }
    }
    println!("\naudit trail for this member and role:");
    print(false, &["at", "action", "reason", "cause"], trail);
    Ok(())
}

/// `docobo grant|revoke <GUILD_ID> <USER_ID> <ROLE_ID> --reason TEXT`.
pub async fn manual(repo: &SeaOrmRepo, args: ManualArgs, grant: bool) -> Result<(), Failure> {
    let key = RoleJobKey { guild: args.guild, user: args.user, role: args.role };
    let result = if grant {
        grant_manually(repo, &SystemClock, key, &args.reason).await
    } else {
        revoke_manually(repo, &SystemClock, key, &args.reason).await
    };
    let report = result.map_err(|e| match e {
        ManualError::NoReason => Failure::Usage(format!("--reason: {e}")),
        other => Failure::Other(other.to_string()),
    })?;
    let (user, role) = (args.user, args.role);
    if grant {
        let until = report.access_until.map_or_else(
            || "until revoked".to_owned(),
            |t| format!("until {}", time_text(Some(t)).as_str().unwrap_or_default()),
        );
        println!("granted role {role} to {user} {until} (the server's worker applies it on Discord)");
    } else {
        let revoked = report.references.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        println!("revoked role {role} from {user}: {revoked} (the server's worker removes it on Discord)");
    }
    Ok(())
}

/// `docobo export --guild G --format csv [--data payments]`: one CSV row per entitlement or
/// payment on stdout, with a progress bar on stderr when it is a terminal.
pub async fn export(
    repo: &SeaOrmRepo,
    guild: GuildId,
    format: ExportFormat,
    data: ExportData,
) -> Result<(), Failure> {
    let ExportFormat::Csv = format;
    registered(repo, guild).await?;
    let data = match data {
        ExportData::Entitlements => docobo_core::service::ExportData::Entitlements,
        ExportData::Payments => docobo_core::service::ExportData::Payments,
    };
    let table = export_table(repo, guild, data).await?;
    let progress = indicatif::ProgressBar::new(table.rows.len() as u64);
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    out.write_record(table.columns)?;
    for row in &table.rows {
        out.write_record(row)?;
        progress.inc(1);
    }
    out.flush()?;
    progress.finish_and_clear();
    Ok(())
}
