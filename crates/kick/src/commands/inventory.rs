//! `kick inventory [NODE...]`: the PCP inventory (`add`, `remove` and
//! `list` are in [`super::connections`]).

use std::io::Write;

use crate::cli::{Format, InventoryArgs};
use crate::context::Context;
use crate::error::Error;
use crate::outcome::Outcome;
use crate::render::{style, table};

/// Runs `kick inventory` (and its subcommands).
pub async fn run(ctx: &mut Context, a: InventoryArgs) -> Result<u8, Error> {
    if let Some(c) = a.command {
        return super::connections::run(ctx, c).await;
    }
    let (client, _) = super::connect(&a.conn, None, ctx.streams.err.as_mut())?;
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
            let color = io.color(a.output.color);
            let rows = list
                .items
                .iter()
                .map(|n| {
                    let (state, o) = if n.connected {
                        ("connected", Outcome::Unchanged)
                    } else {
                        ("not connected", Outcome::Errored)
                    };
                    vec![
                        n.name.clone(),
                        style::paint(color, style::outcome(o), state),
                        n.timestamp.as_deref().unwrap_or("-").to_owned(),
                    ]
                })
                .collect();
            let columns = [
                table::left("NODE"),
                table::left("CONNECTED"),
                table::left("SINCE"),
            ];
            io.out.write_all(table::render(&columns, rows).as_bytes())?;
        }
    }
    Ok(0)
}
