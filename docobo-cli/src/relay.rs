//! `docobo relay add|list|remove`: the signal relay's configuration, under the same rules as the
//! admin API (`docobo_core::service::add_relay`).

use docobo_adapters::seaorm::SeaOrmRepo;
use docobo_core::domain::{JobState, NewRelay, RelayId};
use docobo_core::ports::{RelayRepo, SystemClock};
use docobo_core::service::{RelayError, add_relay};
use serde_json::json;

use crate::args::RelayCommand;
use crate::error::Failure;
use crate::output::{print, time_text};

pub async fn run(repo: &SeaOrmRepo, command: RelayCommand) -> Result<(), Failure> {
    match command {
        RelayCommand::Add {
            source_guild,
            source_channel,
            target_guild,
            target_channel,
            via,
            name,
            ping_role,
            role,
        } => {
            let relay = NewRelay {
                source_guild,
                source_channel,
                target_guild,
                target_channel,
                via,
                name,
                ping_role,
                access_role: role,
            };
            let added = add_relay(repo, &SystemClock, relay).await.map_err(|e| match e {
                RelayError::Store(e) => Failure::Other(e.to_string()),
                usage => Failure::Usage(usage.to_string()),
            })?;
            println!(
                "relay {}: channel {} (guild {}) → channel {} (guild {}) via {}",
                added.id,
                added.source_channel,
                added.source_guild,
                added.target_channel,
                added.target_guild,
                added.via
            );
        }
        RelayCommand::List { json } => {
            let parked = repo.mirror_jobs(JobState::Parked, 10_000).await?;
            let rows = repo.relays().await?.into_iter().map(|r| {
                let stuck = parked.iter().filter(|j| j.relay == r.id).count();
                json!({
                    "id": r.id, "source_guild_id": r.source_guild, "source_channel_id": r.source_channel,
                    "target_guild_id": r.target_guild, "target_channel_id": r.target_channel, "via": r.via,
                    "name": r.name, "ping_role_id": r.ping_role, "access_role_id": r.access_role, "parked_jobs": stuck,
                    "created_at": time_text(Some(r.created_at)),
                })
            });
            let columns = [
                "id",
                "source_channel_id",
                "target_guild_id",
                "target_channel_id",
                "via",
                "name",
                "parked_jobs",
            ];
            print(json, &columns, rows.collect());
        }
        RelayCommand::Remove { id } => {
            if !repo.remove_relay(RelayId(id)).await? {
                return Err(Failure::Other(format!("no relay {id} (see `docobo relay list`)")));
            }
            println!("relay {id} removed (mirrors already posted stay)");
        }
    }
    Ok(())
}
