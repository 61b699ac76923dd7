//! `kick inventory [NODE...]`.

use std::io::Write;

use crate::Context;
use crate::cli::{Format, InventoryArgs};
use crate::error::Error;

/// Runs `kick inventory`.
pub async fn run(ctx: &mut Context, a: InventoryArgs) -> Result<u8, Error> {
    let (client, _) = super::connect(&a.conn, &ctx.watch, ctx.streams.err.as_mut())?;
    let list = if a.nodes.is_empty() {
        client.inventory().await?
    } else {
        client.inventory_nodes(&a.nodes).await?
    };
    let mut io = ctx.take_streams();
    match a.output.format {
        Format::Json => super::write_json_line(&mut io.out, &list)?,
        Format::Jsonl => super::write_json_lines(&mut io.out, &list.items)?,
        Format::Human => {
            let width = list
                .items
                .iter()
                .map(|n| n.name.len())
                .max()
                .unwrap_or(4)
                .max(4);
            writeln!(io.out, "{:<width$}  {:<13}  SINCE", "NODE", "CONNECTED")?;
            for n in &list.items {
                let state = if n.connected {
                    "connected"
                } else {
                    "not connected"
                };
                let state = crate::render::style::paint(
                    io.color(a.output.color),
                    if n.connected {
                        crate::render::style::outcome(crate::outcome::Outcome::Unchanged)
                    } else {
                        crate::render::style::outcome(crate::outcome::Outcome::Errored)
                    },
                    &format!("{state:<13}"),
                );
                writeln!(
                    io.out,
                    "{:<width$}  {state}  {}",
                    n.name,
                    n.timestamp.as_deref().unwrap_or("-")
                )?;
            }
        }
    }
    Ok(0)
}
