//! Writing the history: the rows a job's changes become, the group-commit
//! thread that writes them in one transaction each, checkpoints, and the
//! last-job-id file.

use super::*;

pub(super) fn job_row(rec: &JobRecord) -> Row {
    let head = rec.head_for_store();
    Row::Job {
        text: to_json(&head),
        head: Box::new(head),
    }
}

pub(super) fn node_row(rec: &JobRecord, idx: usize) -> Row {
    let n = &rec.nodes[idx];
    Row::Node {
        job: rec.name,
        idx,
        state: n.state,
        start: n.start,
        finish: n.finish,
        record: to_json(n),
    }
}

/// Records that ids up to `name` are taken (jobs and plan jobs share them).
pub(super) fn bump_next_job(tx: &rusqlite::Transaction<'_>, name: u64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('next_job', ?1)
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
    )?
    .execute([clamp(name).saturating_add(1)])?;
    Ok(())
}

pub(super) fn write_rows(tx: &rusqlite::Transaction<'_>, rows: &[Row]) -> rusqlite::Result<()> {
    for row in rows {
        match row {
            Row::Job { head, text } => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO jobs
                     (name, command, state, owner, environment, task, timestamp, finished, head)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?
                .execute(params![
                    clamp(head.name),
                    head.command.as_str(),
                    head.state.as_str(),
                    head.owner,
                    head.environment,
                    head.task(),
                    head.timestamp,
                    head.finished.map(time::seconds),
                    text
                ])?;
                bump_next_job(tx, head.name)?;
            }
            Row::Node {
                job,
                idx,
                state,
                start,
                finish,
                record,
            } => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO nodes (job, idx, state, start, finish, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    clamp(*job),
                    *idx as i64,
                    state.as_str(),
                    start,
                    finish,
                    record
                ])?;
            }
            Row::Event {
                job,
                id,
                node,
                record,
            } => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO events (job, id, node, record) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![clamp(*job), clamp(*id), node, record])?;
            }
            Row::Record { kind, name, record } if record.is_empty() => {
                tx.prepare_cached("DELETE FROM records WHERE kind = ?1 AND name = ?2")?
                    .execute(params![kind.as_str(), clamp(*name)])?;
            }
            Row::Record { kind, name, record } => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO records (kind, name, record) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![kind.as_str(), clamp(*name), record])?;
                if *kind == Kind::Plan {
                    bump_next_job(tx, *name)?;
                }
            }
        }
    }
    Ok(())
}

/// Group commit without a thread hop: whoever sends changes while no
/// commit is running commits them at once, with everything queued
/// meanwhile; changes sent during a commit are taken by that committer
/// before it lets go. A node's end is thus committed on the thread that
/// recorded it, unless another commit is under way.
pub(super) struct Committer {
    pub(super) conn: Mutex<(Connection, u64)>,
    pub(super) queue: Mutex<Vec<Msg>>,
    pub(super) id_file: Option<PathBuf>,
}

impl Committer {
    pub(super) fn submit(&self, msg: Msg) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(msg);
        loop {
            let Ok(mut conn) = self.conn.try_lock() else {
                // The committer holding it takes the queue before it lets go.
                return;
            };
            let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
            if !batch.is_empty() {
                let (c, last_id) = &mut *conn;
                commit(c, batch, self.id_file.as_deref(), last_id);
            }
            drop(conn);
            // Something queued after the take, while the lock was held?
            if self
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
            {
                return;
            }
        }
    }
}

pub(super) fn commit(
    conn: &mut Connection,
    batch: Vec<Msg>,
    id_file: Option<&Path>,
    last_id: &mut u64,
) {
    let result = conn
        .transaction()
        .and_then(|tx| {
            for m in &batch {
                if let Msg::Rows { rows, .. } = m {
                    write_rows(&tx, rows)?;
                }
            }
            tx.commit()
        })
        .map_err(|e| format!("cannot save job history: {e}"));
    if let Err(e) = &result {
        tracing::error!("{e}");
    }
    let newest = batch
        .iter()
        .filter_map(|m| match m {
            Msg::Rows { rows, .. } => rows.iter().find_map(|r| match r {
                Row::Job { head, .. } => Some(head.name),
                Row::Record {
                    kind: Kind::Plan,
                    name,
                    ..
                } => Some(*name),
                _ => None,
            }),
            Msg::Flush(_) => None,
        })
        .max()
        .unwrap_or(0);
    if let Some(path) = id_file
        && newest > *last_id
    {
        *last_id = newest;
        write_id(path, newest);
    }
    for m in batch {
        match m {
            Msg::Rows {
                durable: Some((d, n)),
                ..
            } => {
                d.fetch_max(n, Ordering::Release);
            }
            Msg::Rows { .. } => {}
            Msg::Flush(tx) => {
                let _ = tx.send(result.clone());
            }
        }
    }
}

/// Moves the WAL into the database every second (PASSIVE: never blocks the
/// writer), until the store is dropped.
pub(super) fn checkpoint(conn: Connection, until: mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) =
        until.recv_timeout(std::time::Duration::from_secs(1))
    {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "job history checkpoint failed; will retry");
        }
    }
}

pub(super) fn write_id(path: &Path, id: u64) {
    if let Err(e) = crate::atomic::write(path, format!("{id}\n").as_bytes()) {
        tracing::error!(path = %path.display(), error = %e, "cannot record the last job id");
    }
}

/// The rows of a record's pending changes, which are cleared.
pub(super) fn pending_rows(rec: &mut JobRecord) -> Vec<Row> {
    let pending = std::mem::take(&mut rec.pending);
    let mut rows = Vec::with_capacity(pending.len() + 1);
    let mut head = false;
    for p in pending {
        match p {
            Pending::Head => head = true,
            Pending::Node(i) if i < rec.nodes.len() => rows.push(node_row(rec, i)),
            Pending::Node(_) => {}
            Pending::Event(id) => {
                if let Some(e) = rec.events.get(id as usize - 1) {
                    rows.push(Row::Event {
                        job: rec.name,
                        id,
                        node: e.node,
                        record: to_json(e),
                    });
                }
            }
        }
    }
    // Counts in the head are for finished jobs (the last save is a state
    // change); a live job's counts come from memory.
    if head {
        rows.push(job_row(rec));
    }
    rows
}
