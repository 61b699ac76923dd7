//! Repairing what a crash or an older version left, at start-up: damaged
//! databases and records set aside, unfinished jobs ended, the JSON files of
//! older versions imported once.

use super::*;

/// Renames a database SQLite cannot read (and its WAL files) aside.
pub(super) fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = time::now() as u64;
    let aside = path.with_extension(format!("db.damaged-{stamp}"));
    std::fs::rename(path, &aside)?;
    for ext in ["-wal", "-shm"] {
        let mut from = path.as_os_str().to_owned();
        from.push(ext);
        let mut to = aside.as_os_str().to_owned();
        to.push(ext);
        let _ = std::fs::rename(from, to);
    }
    Ok(aside)
}

pub(super) fn set_damaged(
    tx: &rusqlite::Transaction<'_>,
    name: u64,
    reason: &str,
    head: Option<&str>,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO damaged_jobs (name, found, reason, head) VALUES (?1, ?2, ?3, ?4)",
        params![clamp(name), time::now(), reason, head],
    )?;
    Ok(())
}

/// Moves job heads that cannot be read to `damaged_jobs` (their nodes and
/// events stay where they are: the id is never used again).
pub(super) fn check_heads(conn: &mut Connection, opened: &mut Opened) -> rusqlite::Result<()> {
    let bad: Vec<(u64, String, String)> = {
        let mut st = conn.prepare("SELECT name, head FROM jobs")?;
        st.query_map([], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
        })?
        .filter_map(|r| match r {
            Ok((name, text)) => serde_json::from_str::<JobHead>(&text)
                .err()
                .map(|e| Ok((name, text, e.to_string()))),
            Err(e) => Some(Err(e)),
        })
        .collect::<rusqlite::Result<_>>()?
    };
    if bad.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for (name, text, e) in bad {
        let reason = format!(
            "its record in {DB_FILE} could not be read ({e}); it was moved to the damaged_jobs table"
        );
        set_damaged(&tx, name, &reason, Some(&text))?;
        tx.execute("DELETE FROM jobs WHERE name = ?1", [clamp(name)])?;
        opened.damaged.push((name, reason));
    }
    tx.commit()
}

/// Ends every job the database holds as unfinished (see
/// [`JobRecord::finish_interrupted`]).
pub(super) fn recover(conn: &mut Connection) -> rusqlite::Result<()> {
    let unfinished: Vec<String> = {
        let mut st = conn.prepare(
            "SELECT head FROM jobs WHERE state NOT IN ('finished', 'failed', 'stopped')",
        )?;
        st.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    for text in unfinished {
        let head: JobHead = parse(&text)?;
        let name = head.name;
        let nodes: Vec<NodeRecord> = conn
            .prepare("SELECT record FROM nodes WHERE job = ?1 ORDER BY idx")?
            .query_map([clamp(name)], |r| r.get::<_, String>(0))?
            .map(|r| r.and_then(|t| parse(&t)))
            .collect::<rusqlite::Result<_>>()?;
        let events: Vec<EventRecord> = conn
            .prepare("SELECT record FROM events WHERE job = ?1 ORDER BY id")?
            .query_map([clamp(name)], |r| r.get::<_, String>(0))?
            .map(|r| r.and_then(|t| parse(&t)))
            .collect::<rusqlite::Result<_>>()?;
        let mut rec = JobRecord {
            head,
            nodes,
            events,
            pending: Vec::new(),
        };
        if !rec.finish_interrupted(INTERRUPTED) {
            continue;
        }
        tracing::warn!(
            job = name,
            "job was unfinished when the service stopped; ended it"
        );
        let tx = conn.transaction()?;
        let rows = pending_rows(&mut rec);
        write_rows(&tx, &rows)?;
        tx.commit()?;
    }
    Ok(())
}

/// Imports the JSON files older versions kept under `<state_dir>/jobs/`,
/// once; the files are left where they are.
pub(super) fn import_json(
    conn: &mut Connection,
    dir: &Path,
    opened: &mut Opened,
) -> rusqlite::Result<()> {
    let done: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'json_imported'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if done.is_some() || !dir.is_dir() {
        return Ok(());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let tx = conn.transaction()?;
    let mut imported = 0usize;
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let id = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok());
        match serde_json::from_str::<JobRecord>(&text) {
            Ok(mut rec) => {
                let mut rows = vec![job_row(&rec)];
                rows.extend((0..rec.nodes.len()).map(|i| node_row(&rec, i)));
                rows.extend(rec.events.iter().enumerate().map(|(i, e)| Row::Event {
                    job: rec.name,
                    id: i as u64 + 1,
                    node: e.node,
                    record: to_json(e),
                }));
                rec.pending.clear();
                write_rows(&tx, &rows)?;
                imported += 1;
            }
            Err(e) => {
                let reason = format!(
                    "{} could not be read ({e}); it was kept in the damaged_jobs table",
                    path.display()
                );
                if let Some(id) = id {
                    set_damaged(&tx, id, &reason, Some(&text))?;
                }
                opened.damaged.push((id.unwrap_or(0), reason));
            }
        }
    }
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('json_imported', 1)",
        [],
    )?;
    tx.commit()?;
    if imported > 0 {
        tracing::info!(jobs = imported, dir = %dir.display(), "imported the job history of an older version");
    }
    Ok(())
}
