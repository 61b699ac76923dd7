//! `kick inventory add|remove|list`: connection entries of PE's Node
//! Inventory API, against Kick's orchestrator or PE alike. Secrets come
//! from a file (`--private-key`) or standard input (`--password-stdin`,
//! `--sudo-password-stdin`), never from arguments, and are printed only by
//! `list --sensitive --format json`.

use std::io::Write;

use orchestrator_client::types::{Connection, ConnectionsQuery, CreateConnection, Duplicates};
use serde_json::{Map, Value, json};

use crate::cli::{
    Format, InventoryAddArgs, InventoryCommand, InventoryListArgs, InventoryRemoveArgs,
};
use crate::context::Context;
use crate::error::Error;
use crate::render::table;

/// Runs `kick inventory add|remove|list`.
pub async fn run(ctx: &mut Context, c: InventoryCommand) -> Result<u8, Error> {
    match c {
        InventoryCommand::Add(a) => add(ctx, a).await,
        InventoryCommand::Remove(a) => remove(ctx, a).await,
        InventoryCommand::List(a) => list(ctx, a).await,
    }
}

/// The password and sudo password from standard input: one line each, in
/// that order, for the flags given.
fn stdin_secrets(password: bool, sudo: bool) -> Result<(Option<String>, Option<String>), Error> {
    if !password && !sudo {
        return Ok((None, None));
    }
    let flag = match (password, sudo) {
        (true, true) => "--password-stdin and --sudo-password-stdin",
        (true, false) => "--password-stdin",
        _ => "--sudo-password-stdin",
    };
    split_secrets(&crate::input::read_stdin(flag)?, password, sudo, flag)
}

fn split_secrets(
    text: &str,
    password: bool,
    sudo: bool,
    flag: &str,
) -> Result<(Option<String>, Option<String>), Error> {
    let mut lines = text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l));
    let mut next = |what: &str| {
        lines
            .next()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| Error::ReadStdin {
                flag: flag.to_owned(),
                reason: format!("no {what} on its line (give one line per secret)"),
            })
    };
    let p = password.then(|| next("password")).transpose()?;
    let s = sudo.then(|| next("sudo password")).transpose()?;
    Ok((p, s))
}

/// The create-connection request `kick inventory add` sends.
fn request(
    a: &InventoryAddArgs,
    key: Option<String>,
    password: Option<String>,
    sudo: Option<String>,
) -> CreateConnection {
    let mut params = Map::new();
    params.insert("user".into(), json!(a.user));
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            params.insert(k.into(), v);
        }
    };
    put("hostname", a.hostname.as_ref().map(|h| json!(h)));
    put("port", a.port.map(|p| json!(p)));
    put("run-as", a.run_as.as_ref().map(|u| json!(u)));
    put("tmpdir", a.tmpdir.as_ref().map(|d| json!(d)));
    put(
        "host-key-check",
        a.no_host_key_check.then_some(json!(false)),
    );
    let mut sensitive = Map::new();
    for (k, v) in [
        ("private-key-content", key),
        ("password", password),
        ("sudo-password", sudo),
    ] {
        if let Some(v) = v {
            sensitive.insert(k.into(), Value::String(v));
        }
    }
    CreateConnection {
        certnames: a.nodes.clone(),
        kind: "ssh".into(),
        parameters: params,
        sensitive_parameters: sensitive,
        duplicates: Some(if a.replace {
            Duplicates::Replace
        } else {
            Duplicates::Error
        }),
    }
}

async fn add(ctx: &mut Context, a: InventoryAddArgs) -> Result<u8, Error> {
    if a.hostname.is_some() && a.nodes.len() > 1 {
        return Err(Error::Usage(
            "--hostname names one address: give it with one NODE (each node is reached at its certname otherwise)".into(),
        ));
    }
    let key = a
        .private_key
        .as_ref()
        .map(|p| crate::input::read_arg_file(&p.to_string_lossy()))
        .transpose()?;
    let (password, sudo) = stdin_secrets(a.password_stdin, a.sudo_password_stdin)?;
    let (client, _) = super::connect(&a.conn, None, ctx.streams.err.as_mut())?;
    let created = client
        .create_connection(&request(&a, key, password, sudo))
        .await?;
    let mut io = ctx.take_streams();
    match a.output.format {
        Format::Json | Format::Jsonl => super::write_json_line(&mut io.out, &created)?,
        Format::Human => writeln!(
            io.out,
            "Added {} (connection {}).",
            a.nodes.join(", "),
            created.connection_id
        )?,
    }
    Ok(0)
}

async fn remove(ctx: &mut Context, a: InventoryRemoveArgs) -> Result<u8, Error> {
    let (client, _) = super::connect(&a.conn, None, ctx.streams.err.as_mut())?;
    client.delete_connection(&a.nodes).await?;
    let mut io = ctx.take_streams();
    match a.output.format {
        Format::Json | Format::Jsonl => {
            super::write_json_line(&mut io.out, &json!({"removed": a.nodes}))?;
        }
        Format::Human => writeln!(
            io.out,
            "Removed the connection entries of {}.",
            a.nodes.join(", ")
        )?,
    }
    Ok(0)
}

async fn list(ctx: &mut Context, a: InventoryListArgs) -> Result<u8, Error> {
    let (client, _) = super::connect(&a.conn, None, ctx.streams.err.as_mut())?;
    let q = ConnectionsQuery {
        certnames: (!a.nodes.is_empty()).then(|| a.nodes.clone()),
        sensitive: a.sensitive.then_some(true),
        extract: None,
    };
    let list = client.connections(&q).await?;
    let mut io = ctx.take_streams();
    let format = if a.json {
        Format::Json
    } else {
        a.output.format
    };
    match format {
        Format::Json => super::write_json_line(&mut io.out, &list)?,
        Format::Jsonl => super::write_json_lines(&mut io.out, &list.items)?,
        Format::Human => {
            io.out
                .write_all(render(&list.items, a.sensitive).as_bytes())?;
            if a.sensitive
                && list.items.iter().all(|c| c.sensitive_parameters.is_none())
                && !list.items.is_empty()
            {
                writeln!(
                    io.err,
                    "note: the orchestrator showed no secrets; the token lacks the permission to view them"
                )?;
            }
        }
    }
    Ok(0)
}

/// The table of `kick inventory list`: a line per certname, secrets named,
/// never shown.
pub fn render(items: &[Connection], sensitive: bool) -> String {
    let mut columns = vec![
        table::left("NODE"),
        table::left("USER"),
        table::left("ADDRESS"),
        table::left("RUN-AS"),
        table::left("HOST-KEY-CHECK"),
        table::left("CONNECTION"),
    ];
    if sensitive {
        columns.push(table::left("SECRETS"));
    }
    let empty = Map::new();
    let mut rows = Vec::new();
    for c in items {
        let p = c.parameters.as_ref().unwrap_or(&empty);
        let s = c.sensitive_parameters.as_ref();
        let text = |k: &str| {
            p.get(k)
                .or_else(|| s.and_then(|s| s.get(k)))
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        };
        for name in c.certnames.iter().flatten() {
            let host = text("hostname").unwrap_or_else(|| name.clone());
            let port = text("port").unwrap_or_else(|| "22".into());
            let mut row = vec![
                name.clone(),
                text("user")
                    .or_else(|| text("username"))
                    .unwrap_or_else(|| "-".into()),
                format!("{host}:{port}"),
                text("run-as").unwrap_or_else(|| "-".into()),
                text("host-key-check").unwrap_or_else(|| "default".into()),
                c.connection_id.chars().take(8).collect(),
            ];
            if sensitive {
                let held: Vec<&str> = ["password", "private-key-content", "sudo-password"]
                    .into_iter()
                    .filter(|k| s.is_some_and(|s| s.contains_key(*k)))
                    .collect();
                row.push(match (s, held.is_empty()) {
                    (None, _) => "(not shown)".into(),
                    (Some(_), true) => "-".into(),
                    (Some(_), false) => held.join(", "),
                });
            }
            rows.push(row);
        }
    }
    table::render(&columns, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<Connection> {
        serde_json::from_value(json!([
            {"connection_id": "3f2b9c1e-0a6d-4e8f-9b1a-2c3d4e5f6a7b", "certnames": ["web1.example", "web2.example"],
             "type": "ssh", "parameters": {"user": "deploy", "run-as": "root", "port": 2222},
             "sensitive_parameters": {"private-key-content": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n", "sudo-password": "s3cr3t"}},
            {"connection_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "certnames": ["db1.example"],
             "type": "ssh", "parameters": {"hostname": "10.0.0.5", "host-key-check": false},
             "sensitive_parameters": {"username": "admin", "password": "s3cr3t"}}
        ]))
        .unwrap()
    }

    #[test]
    fn the_list_table_names_secrets_and_never_shows_them() {
        let with = render(&items(), true);
        assert!(!with.contains("s3cr3t") && !with.contains("AAAA"), "{with}");
        insta::assert_snapshot!("inventory_list_sensitive", with);
        let mut plain = items();
        for c in &mut plain {
            c.sensitive_parameters = None;
        }
        insta::assert_snapshot!("inventory_list", render(&plain, false));
        insta::assert_snapshot!("inventory_list_sensitive_not_shown", render(&plain, true));
    }

    #[test]
    fn secrets_from_stdin_one_line_each() {
        let f = "--password-stdin";
        assert_eq!(
            split_secrets("pw\r\nsudo\n", true, true, f).unwrap(),
            (Some("pw".into()), Some("sudo".into()))
        );
        assert_eq!(
            split_secrets("sudo only\n", false, true, f).unwrap(),
            (None, Some("sudo only".into()))
        );
        assert_eq!(
            split_secrets("with spaces  \n", true, false, f)
                .unwrap()
                .0
                .as_deref(),
            Some("with spaces  ")
        );
        let e = split_secrets("pw\n", true, true, f)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no sudo password") && !e.contains("pw\n"), "{e}");
        assert!(split_secrets("", true, false, f).is_err());
    }
}
