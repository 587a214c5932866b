//! The demo's signal relay: an analyst posts a signal with a chart in the source channel, edits
//! it and deletes it; the fake gateway tells the server, and each step's mirror request is timed
//! at the fake Discord in both paid channels.

use std::time::{Duration, Instant};

use docobo_adapters::simulator::discord::FakeDiscord;
use docobo_adapters::simulator::gateway::FakeGateway;
use docobo_core::domain::{ChannelId, GuildId, NewRelay, Via};
use docobo_core::ports::RelayRepo;
use serde_json::json;

use crate::error::Failure;

pub const SOURCE_GUILD: u64 = 111_000_000_000_000_001;
pub const SOURCE: u64 = 111_000_000_000_000_100;
/// The paid channels, in the demo's server.
pub const TARGETS: [u64; 2] = [987_654_321_098_765_501, 987_654_321_098_765_502];
const ANALYST: u64 = 444_000_000_000_000_001;

/// Relays the source channel into both paid channels of `guild`.
pub async fn configure(repo: &impl RelayRepo, guild: u64) -> Result<(), Failure> {
    for target in TARGETS {
        let relay = NewRelay {
            source_guild: GuildId::new(SOURCE_GUILD)?,
            source_channel: ChannelId::new(SOURCE)?,
            target_guild: GuildId::new(guild)?,
            target_channel: ChannelId::new(target)?,
            via: Via::Webhook,
            name: Some("signals".into()),
            ping_role: None,
            access_role: None,
        };
        repo.add_relay(&relay, time::OffsetDateTime::now_utc()).await?;
    }
    Ok(())
}

/// Waits until both paid channels got a request (`method`, path containing `part`) after
/// `since`; the slower one's delay.
async fn mirrored(
    discord: &FakeDiscord,
    method: &str,
    part: &str,
    since: Instant,
) -> Result<Duration, Failure> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let arrivals: Vec<Instant> = discord
            .arrivals(method)
            .into_iter()
            .filter(|(path, at)| path.contains(part) && *at >= since)
            .map(|(_, at)| at)
            .collect();
        if arrivals.len() >= TARGETS.len() {
            return Ok(arrivals.iter().map(|at| at.duration_since(since)).max().unwrap_or_default());
        }
        if Instant::now() > deadline {
            return Err(Failure::Other(format!("the relay did not {method} in both paid channels")));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Posts, edits and deletes a signal; calls `line` with each step and its latency.
pub async fn run(
    discord: &FakeDiscord,
    gateway: &FakeGateway,
    mut line: impl FnMut(String),
) -> Result<Vec<Duration>, Failure> {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut latencies = Vec::new();
    let signal = discord.source_message(
        SOURCE_GUILD,
        SOURCE,
        ANALYST,
        "BTC long 64k, target 70k",
        &[("chart.png", "a chart")],
    );
    let at = Instant::now();
    gateway.dispatch("MESSAGE_CREATE", signal.clone());
    let took = mirrored(discord, "POST", "wait=true", at).await?;
    let files: usize = TARGETS
        .iter()
        .map(|t| discord.channel_messages(*t).iter().map(|m| m.files.len()).sum::<usize>())
        .sum();
    latencies.push(took);
    line(format!(
        "relay: a signal with a chart posted in the source channel → mirrored in both paid channels, {files} chart(s) \
         re-uploaded ({:.1} ms after the source event)",
        ms(took)
    ));
    let mut edit = signal.clone();
    edit["content"] = json!("BTC long 64k, target 70k, stop 61k");
    edit["edited_timestamp"] = json!(
        time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    );
    let at = Instant::now();
    gateway.dispatch("MESSAGE_UPDATE", edit);
    let took = mirrored(discord, "PATCH", "/messages/", at).await?;
    latencies.push(took);
    line(format!("relay: the analyst edits it → both mirrors edited ({:.1} ms)", ms(took)));
    let at = Instant::now();
    gateway.dispatch(
        "MESSAGE_DELETE",
        json!({ "id": signal["id"], "channel_id": SOURCE.to_string(), "guild_id": SOURCE_GUILD.to_string() }),
    );
    let took = mirrored(discord, "DELETE", "/messages/", at).await?;
    latencies.push(took);
    line(format!("relay: the analyst deletes it → both mirrors deleted ({:.1} ms)", ms(took)));
    Ok(latencies)
}
