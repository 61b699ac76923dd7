//! Job history in an embedded SQLite database (`<state_dir>/jobs.db`, WAL
//! mode). Every change a job goes through is committed by the thread that
//! made it, together with whatever was queued while another commit ran
//! (group commit, no thread hop); a job's events are shown to readers only
//! once committed, so nothing seen is lost in a crash. Finished jobs live only here and are read when asked for, so
//! memory does not grow with history.
//!
//! Start-up repairs what a crash leaves: a job found unfinished keeps the
//! nodes that had ended, fails those that were running and skips those not
//! started, saying why. Job ids are never reused: the next id is past every
//! id seen in the `jobs` table, in damaged records and in `last-job-id`. A
//! record that cannot be read is moved to the `damaged_jobs` table (or, for
//! a database SQLite cannot open, the file is renamed aside) and reported.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use orchestrator_types::NodeState;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Failure};
use crate::job::{EventRecord, JobHead, JobRecord, NodeRecord, Pending};
use crate::time;

mod repair;
pub mod schema;
mod write;
use repair::{check_heads, import_json, recover, set_aside};
use schema::connect;
use write::{Committer, checkpoint, job_row, node_row, pending_rows, write_rows};

/// Why an unfinished job is ended on start-up, and why jobs killed at
/// shutdown fail.
pub const INTERRUPTED: &str = "the Kick orchestrator stopped (shutdown or crash)";

/// The database file under the state directory.
pub const DB_FILE: &str = "jobs.db";
/// The highest job id ever handed out, kept beside the database so that ids
/// stay unique even if the database has to be set aside.
const ID_FILE: &str = "last-job-id";

/// One row to write.
#[derive(Debug)]
enum Row {
    Job {
        head: Box<JobHead>,
        text: String,
    },
    Node {
        job: u64,
        idx: usize,
        state: NodeState,
        start: Option<f64>,
        finish: Option<f64>,
        record: String,
    },
    Event {
        job: u64,
        id: u64,
        node: Option<u32>,
        record: String,
    },
    /// A plan job, scheduled job or task target, kept whole.
    Record {
        kind: Kind,
        name: u64,
        record: String,
    },
}

/// The kinds of whole records the store keeps beside job history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Plan jobs (their names come from the jobs' sequence).
    Plan,
    /// Scheduled jobs.
    Schedule,
    /// Task targets.
    TaskTarget,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Schedule => "schedule",
            Self::TaskTarget => "task_target",
        }
    }
}

enum Msg {
    /// Rows committed together; then `durable` is raised to the count.
    Rows {
        rows: Vec<Row>,
        durable: Option<(Arc<AtomicU64>, u64)>,
    },
    /// Answered once everything sent before it is committed.
    Flush(tokio::sync::oneshot::Sender<Result<(), String>>),
}

/// What opening found.
#[derive(Debug, Default)]
pub struct Opened {
    /// The first id a new job may take.
    pub next_job: u64,
    /// Records set aside: job id (when known) and what was wrong.
    pub damaged: Vec<(u64, String)>,
    /// The first names new scheduled jobs and task targets may take.
    pub next_schedule: u64,
    pub next_task_target: u64,
}

/// A job as the store has it.
#[derive(Debug)]
pub enum Stored {
    Head(Box<JobHead>),
    /// The record was set aside; why.
    Damaged(String),
}

/// What `GET /jobs` filters and sorts on.
#[derive(Debug, Default)]
pub struct JobQuery {
    pub command: Option<String>,
    pub task: Option<String>,
    pub min_finish: Option<String>,
    pub max_finish: Option<String>,
    pub order_by: String,
    pub desc: bool,
    pub limit: Option<u64>,
    pub offset: u64,
}

/// What `GET /jobs/:id/nodes` filters and sorts on.
#[derive(Debug)]
pub struct NodeQuery {
    pub state: Option<NodeState>,
    pub order_by: String,
    pub desc: bool,
    pub limit: Option<u64>,
    pub offset: u64,
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    committer: Committer,
    /// Dropped with the store: ends the checkpoint thread.
    _checkpoints: mpsc::Sender<()>,
    read: Mutex<Connection>,
    path: PathBuf,
    /// Without a state directory the database lives in a directory removed
    /// when the service ends.
    _scratch: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn state_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::State {
        path: path.to_owned(),
        msg: e.to_string(),
    }
}

fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

impl Store {
    /// Opens (or creates) the database, repairs what a crash left and starts
    /// the writer thread. `None`: a scratch database, gone at exit.
    pub fn open(state_dir: Option<&Path>) -> Result<(Self, Opened), Error> {
        let (dir, scratch) = match state_dir {
            Some(d) => (d.to_owned(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("kick-orchestrator-")
                    .tempdir()
                    .map_err(|e| state_err(&std::env::temp_dir(), e))?;
                (t.path().to_owned(), Some(t))
            }
        };
        std::fs::create_dir_all(&dir).map_err(|e| state_err(&dir, e))?;
        let path = dir.join(DB_FILE);
        let mut opened = Opened::default();
        let first = |path: &Path| -> Result<Connection, schema::MigrateError> {
            let mut c = connect(path)?;
            schema::migrate(&mut c)?;
            Ok(c)
        };
        let mut conn = match first(&path) {
            Ok(c) => c,
            Err(schema::MigrateError::Sqlite(e)) if is_damage(&e) => {
                let aside = set_aside(&path).map_err(|e| state_err(&path, e))?;
                let msg = format!(
                    "the job database could not be read ({e}); it was moved to {} and a new one started",
                    aside.display()
                );
                tracing::error!("{msg}");
                opened.damaged.push((0, msg));
                first(&path).map_err(|e| state_err(&path, e))?
            }
            Err(e @ schema::MigrateError::TooNew { .. }) => {
                return Err(Error::Config {
                    path,
                    msg: e.to_string(),
                });
            }
            Err(e) => return Err(state_err(&path, e)),
        };
        let err = |e: rusqlite::Error| state_err(&path, e);
        import_json(&mut conn, &dir.join("jobs"), &mut opened).map_err(err)?;
        check_heads(&mut conn, &mut opened).map_err(err)?;
        recover(&mut conn).map_err(err)?;
        let id_file = dir.join(ID_FILE);
        let floor = match std::fs::read_to_string(&id_file) {
            Ok(s) => s.trim().parse::<u64>().unwrap_or_else(|_| {
                tracing::warn!(path = %id_file.display(), "unreadable last job id; ignoring it");
                0
            }),
            Err(_) => 0,
        };
        let highest: u64 = conn
            .query_row(
                "SELECT max(coalesce((SELECT max(name) FROM jobs), 0),
                            coalesce((SELECT max(name) FROM damaged_jobs), 0),
                            coalesce((SELECT max(name) FROM records WHERE kind = 'plan'), 0),
                            coalesce((SELECT value - 1 FROM meta WHERE key = 'next_job'), 0))",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(err)?
            .max(0) as u64;
        opened.next_job = highest.max(floor) + 1;
        let next_of = |kind: Kind| -> Result<u64, Error> {
            let n: i64 = conn
                .query_row(
                    "SELECT coalesce(max(name), 0) FROM records WHERE kind = ?1",
                    [kind.as_str()],
                    |r| r.get(0),
                )
                .map_err(err)?;
            Ok(n.max(0) as u64 + 1)
        };
        opened.next_schedule = next_of(Kind::Schedule)?;
        opened.next_task_target = next_of(Kind::TaskTarget)?;
        for (name, why) in &opened.damaged {
            tracing::warn!(job = name, "damaged job record kept aside: {why}");
        }

        let read = connect(&path).map_err(err)?;
        // Checkpoints (which sync the database file) run beside the writer,
        // not inside its commits, so a commit never waits for a disk sync.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(err)?;
        let checkpointer = connect(&path).map_err(err)?;
        let (stop_checkpoints, ticks) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("job-store-checkpoint".into())
            .spawn(move || checkpoint(checkpointer, ticks))
            .map_err(|e| state_err(&path, e))?;
        let committer = Committer {
            conn: Mutex::new((conn, 0)),
            queue: Mutex::new(Vec::new()),
            id_file: scratch.is_none().then_some(id_file),
        };
        Ok((
            Self {
                inner: Arc::new(Inner {
                    committer,
                    _checkpoints: stop_checkpoints,
                    read: Mutex::new(read),
                    path,
                    _scratch: scratch,
                }),
            },
            opened,
        ))
    }

    /// The directory the database is in (the state directory, or a scratch
    /// one).
    pub fn dir(&self) -> &Path {
        self.inner.path.parent().unwrap_or(Path::new("."))
    }

    /// Another connection to the database (migrated when the store opened),
    /// for the modules that keep their own tables in it.
    pub fn connection(&self) -> rusqlite::Result<Connection> {
        connect(&self.inner.path)
    }

    fn send(&self, msg: Msg) {
        self.inner.committer.submit(msg);
    }

    /// Writes a new job with all its nodes.
    pub fn create(&self, rec: &mut JobRecord) {
        rec.pending.clear();
        let mut rows = vec![job_row(rec)];
        rows.extend((0..rec.nodes.len()).map(|i| node_row(rec, i)));
        self.send(Msg::Rows {
            rows,
            durable: None,
        });
    }

    /// Sends the record's pending changes; `durable` is raised to its event
    /// count once they are committed.
    pub fn save(&self, rec: &mut JobRecord, durable: &Arc<AtomicU64>) {
        let rows = pending_rows(rec);
        self.send(Msg::Rows {
            rows,
            durable: Some((durable.clone(), rec.events.len() as u64)),
        });
    }

    /// Rewrites one node of a stored job: a run whose fate became known only
    /// after a restart (committed with the next batch; `flush` to wait).
    pub fn put_node(&self, job: u64, idx: usize, node: &NodeRecord) {
        let row = Row::Node {
            job,
            idx,
            state: node.state,
            start: node.start,
            finish: node.finish,
            record: to_json(node),
        };
        self.send(Msg::Rows {
            rows: vec![row],
            durable: None,
        });
    }

    /// Writes a whole record (committed with the next batch; `flush` to wait).
    pub fn put<T: serde::Serialize>(&self, kind: Kind, name: u64, record: &T) {
        self.send(Msg::Rows {
            rows: vec![Row::Record {
                kind,
                name,
                record: to_json(record),
            }],
            durable: None,
        });
    }

    /// Removes a whole record.
    pub fn remove(&self, kind: Kind, name: u64) {
        self.send(Msg::Rows {
            rows: vec![Row::Record {
                kind,
                name,
                record: String::new(),
            }],
            durable: None,
        });
    }

    /// A whole record.
    pub async fn get<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        kind: Kind,
        name: u64,
    ) -> Result<Option<T>, Failure> {
        self.read(move |c| {
            c.query_row(
                "SELECT record FROM records WHERE kind = ?1 AND name = ?2",
                params![kind.as_str(), clamp(name)],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .map(|t| parse(&t))
            .transpose()
        })
        .await
    }

    /// Every record of a kind, by name.
    pub async fn all<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        kind: Kind,
    ) -> Result<Vec<T>, Failure> {
        self.read(move |c| {
            c.prepare_cached("SELECT record FROM records WHERE kind = ?1 ORDER BY name")?
                .query_map([kind.as_str()], |r| r.get::<_, String>(0))?
                .map(|r| r.and_then(|t| parse(&t)))
                .collect()
        })
        .await
    }

    /// Days (`YYYY-MM-DD`, UTC) from `from` to `to` with the distinct nodes
    /// that started a run each day, by job command (`*`: any command).
    pub async fn nodes_per_day(
        &self,
        from: String,
        to: String,
    ) -> Result<Vec<(String, String, u64)>, Failure> {
        self.read(move |c| {
            c.prepare_cached(
                "WITH runs AS (
                     SELECT date(n.start, 'unixepoch') AS day, j.command AS command,
                            json_extract(n.record, '$.name') AS node
                     FROM nodes n JOIN jobs j ON j.name = n.job
                     WHERE n.start IS NOT NULL)
                 SELECT day, command, count(DISTINCT node) FROM runs
                 WHERE day BETWEEN ?1 AND ?2 GROUP BY day, command
                 UNION ALL
                 SELECT day, '*', count(DISTINCT node) FROM runs
                 WHERE day BETWEEN ?1 AND ?2 GROUP BY day",
            )?
            .query_map(params![from, to], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?.max(0) as u64))
            })?
            .collect()
        })
        .await
    }

    /// Waits until everything sent so far is committed.
    pub async fn flush(&self) -> Result<(), String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Msg::Flush(tx));
        rx.await
            .unwrap_or_else(|_| Err("the job history committer is gone".into()))
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, Failure> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.read.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| Failure::internal(format!("reading job history failed: {e}")))?
        .map_err(|e| Failure::internal(format!("reading job history failed: {e}")))
    }

    /// A stored job's head.
    pub async fn head(&self, name: u64) -> Result<Option<Stored>, Failure> {
        self.read(move |c| {
            let head: Option<String> = c
                .query_row(
                    "SELECT head FROM jobs WHERE name = ?1",
                    [name as i64],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(text) = head {
                return Ok(Some(match serde_json::from_str::<JobHead>(&text) {
                    Ok(h) => Stored::Head(Box::new(h)),
                    Err(e) => Stored::Damaged(format!("its record cannot be read ({e})")),
                }));
            }
            c.query_row(
                "SELECT reason FROM damaged_jobs WHERE name = ?1 ORDER BY found DESC LIMIT 1",
                [name as i64],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map(|r| r.map(Stored::Damaged))
        })
        .await
    }

    /// Job names and heads of one page of `GET /jobs`, and the total.
    pub async fn list(&self, q: JobQuery) -> Result<(Vec<(u64, String)>, u64), Failure> {
        self.read(move |c| {
            let key = match q.order_by.as_str() {
                "owner" => "owner",
                "timestamp" => "timestamp",
                "environment" => "environment",
                "state" => "state",
                _ => "name",
            };
            let dir = if q.desc { "DESC" } else { "ASC" };
            let filter = "WHERE (?1 IS NULL OR command = ?1)
                 AND (?2 IS NULL OR instr(coalesce(task, ''), ?2) > 0)
                 AND (?3 IS NULL OR finished >= ?3)
                 AND (?4 IS NULL OR finished <= ?4)";
            let args = params![q.command, q.task, q.min_finish, q.max_finish];
            let total: i64 =
                c.query_row(&format!("SELECT count(*) FROM jobs {filter}"), args, |r| {
                    r.get(0)
                })?;
            let mut st = c.prepare_cached(&format!(
                "SELECT name, head FROM jobs {filter} ORDER BY {key} {dir}, name {dir} LIMIT ?5 OFFSET ?6"
            ))?;
            let rows = st
                .query_map(
                    params![
                        q.command,
                        q.task,
                        q.min_finish,
                        q.max_finish,
                        q.limit.map_or(-1, clamp),
                        clamp(q.offset)
                    ],
                    |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((rows, total as u64))
        })
        .await
    }

    /// One page of a stored job's nodes, and how many match.
    pub async fn nodes(&self, job: u64, q: NodeQuery) -> Result<(Vec<NodeRecord>, u64), Failure> {
        self.read(move |c| {
            let dir = if q.desc { "DESC" } else { "ASC" };
            let key = match q.order_by.as_str() {
                "state" => format!("state {dir}, idx {dir}"),
                "duration" => format!(
                    "CASE WHEN start IS NULL THEN -1.0 ELSE coalesce(finish, ?5) - start END {dir}, idx {dir}"
                ),
                "start_timestamp" => format!("coalesce(start, -1.0) {dir}, idx {dir}"),
                "finish_timestamp" => format!("coalesce(finish, -1.0) {dir}, idx {dir}"),
                _ => format!("idx {dir}"),
            };
            let state = q.state.map(|s| s.as_str());
            let total: i64 = c.query_row(
                "SELECT count(*) FROM nodes WHERE job = ?1 AND (?2 IS NULL OR state = ?2)",
                params![job as i64, state],
                |r| r.get(0),
            )?;
            let mut st = c.prepare_cached(&format!(
                "SELECT record FROM nodes WHERE job = ?1 AND (?2 IS NULL OR state = ?2)
                 ORDER BY {key} LIMIT ?3 OFFSET ?4"
            ))?;
            let now = time::now();
            let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![
                Box::new(job as i64),
                Box::new(state),
                Box::new(q.limit.map_or(-1, clamp)),
                Box::new(clamp(q.offset)),
            ];
            if q.order_by == "duration" {
                args.push(Box::new(now));
            }
            let rows = st
                .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    r.get::<_, String>(0)
                })?
                .map(|r| r.and_then(|t| parse(&t)))
                .collect::<rusqlite::Result<Vec<NodeRecord>>>()?;
            Ok((rows, total as u64))
        })
        .await
    }

    /// Up to `limit` events of a stored job from id `from`, each with the
    /// node it is about.
    pub async fn events(
        &self,
        job: u64,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, EventRecord, Option<NodeRecord>)>, Failure> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT e.id, e.record, n.record FROM events e
                 LEFT JOIN nodes n ON n.job = e.job AND n.idx = e.node
                 WHERE e.job = ?1 AND e.id >= ?2 ORDER BY e.id LIMIT ?3",
            )?;
            st.query_map(params![job as i64, clamp(from), limit as i64], |r| {
                let id = r.get::<_, i64>(0)? as u64;
                let e: EventRecord = parse(&r.get::<_, String>(1)?)?;
                let n = match r.get::<_, Option<String>>(2)? {
                    Some(t) => Some(parse::<NodeRecord>(&t)?),
                    None => None,
                };
                Ok((id, e, n))
            })?
            .collect()
        })
        .await
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialise a job record");
        "null".to_owned()
    })
}
