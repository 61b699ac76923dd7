//! The database's schema and its migrations, in one place.
//!
//! `PRAGMA user_version` holds how many of [`MIGRATIONS`] a database has
//! had. Opening applies the missing ones in order, each in its own
//! transaction together with the new version, so a crash leaves the
//! database at one version or the next, never between. A database of a
//! newer Kick (a version past the last migration here) is refused rather
//! than written by code that does not know its tables.
//!
//! Databases made before migrations existed have version 0 and the tables
//! of migration 1, which creates them only if missing: they upgrade like an
//! empty database. A new migration is appended, never edited.

use rusqlite::Connection;

/// Migration 1: job history, plan jobs, schedules and task targets (the
/// schema of every release before versioning, hence `IF NOT EXISTS`).
const V1_HISTORY: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    name INTEGER PRIMARY KEY,
    command TEXT NOT NULL,
    state TEXT NOT NULL,
    owner TEXT NOT NULL,
    environment TEXT NOT NULL,
    task TEXT,
    timestamp REAL NOT NULL,
    finished TEXT,
    head TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS nodes (
    job INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    state TEXT NOT NULL,
    start REAL,
    finish REAL,
    record TEXT NOT NULL,
    PRIMARY KEY (job, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    job INTEGER NOT NULL,
    id INTEGER NOT NULL,
    node INTEGER,
    record TEXT NOT NULL,
    PRIMARY KEY (job, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    name INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS damaged_jobs (
    name INTEGER NOT NULL,
    found REAL NOT NULL,
    reason TEXT NOT NULL,
    head TEXT
);
";

/// Migration 2: the Node Inventory API's connection entries. `sensitive`
/// is the AEAD-sealed JSON object of `sensitive_parameters` (see
/// `crate::inventory::crypto`); a certname belongs to at most one entry.
const V2_CONNECTIONS: &str = "
CREATE TABLE connections (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    parameters TEXT NOT NULL,
    sensitive BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE connection_certnames (
    certname TEXT PRIMARY KEY,
    connection TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    pos INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX connection_certnames_by_connection ON connection_certnames(connection);
";

/// Every migration, in order; a database's `user_version` counts those it had.
pub const MIGRATIONS: &[&str] = &[V1_HISTORY, V2_CONNECTIONS];

/// The version a database has once migrated.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// SQLite refused (a damaged file, a full disk, ...).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer Kick.
    #[error(
        "the database has schema version {found}, newer than this kick-orchestrator knows ({LATEST}); run the newer kick-orchestrator, or start this one on another state directory"
    )]
    TooNew {
        /// The database's version.
        found: u32,
    },
}

/// Page cache of each connection, KiB: history is read a page at a time, so
/// a small cache does, and memory stays flat however large the database.
const CACHE_KIB: i64 = 1024;

/// Opens a connection with the service's settings (WAL, a busy timeout).
/// The schema is not touched: [`migrate`] once, on the first connection.
pub fn connect(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // In WAL mode NORMAL loses nothing committed when the process dies;
    // only a power cut can take the last transactions.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(conn)
}

/// The database's schema version.
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Applies the migrations `conn`'s database lacks; returns the version it
/// had before.
pub fn migrate(conn: &mut Connection) -> Result<u32, MigrateError> {
    let found = version(conn)?;
    if found > LATEST {
        return Err(MigrateError::TooNew { found });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        // PRAGMA takes no bound parameters; the number is ours.
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
    }
    if found < LATEST {
        tracing::info!(from = found, to = LATEST, "job database schema upgraded");
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(conn: &Connection) -> Vec<String> {
        conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn an_empty_database_gets_every_migration() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = connect(&dir.path().join("db")).unwrap();
        assert_eq!(migrate(&mut c).unwrap(), 0);
        assert_eq!(version(&c).unwrap(), LATEST);
        let t = tables(&c);
        for want in ["jobs", "nodes", "events", "records", "connections"] {
            assert!(t.iter().any(|n| n == want), "{want} missing: {t:?}");
        }
        // Again: nothing to do.
        assert_eq!(migrate(&mut c).unwrap(), LATEST);
    }

    #[test]
    fn a_database_of_before_versioning_keeps_its_rows_and_upgrades() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            // What releases before migrations left: the tables, version 0.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(V1_HISTORY).unwrap();
            c.execute(
                "INSERT INTO records (kind, name, record) VALUES ('schedule', 3, '{}')",
                [],
            )
            .unwrap();
        }
        let mut c = connect(&path).unwrap();
        assert_eq!(migrate(&mut c).unwrap(), 0);
        assert_eq!(version(&c).unwrap(), LATEST);
        let n: i64 = c
            .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        assert!(tables(&c).iter().any(|t| t == "connection_certnames"));
    }

    #[test]
    fn a_newer_database_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = connect(&dir.path().join("db")).unwrap();
        c.execute_batch(&format!("PRAGMA user_version = {}", LATEST + 1))
            .unwrap();
        let e = migrate(&mut c).unwrap_err();
        assert!(matches!(e, MigrateError::TooNew { found } if found == LATEST + 1));
        assert!(e.to_string().contains("newer than this kick-orchestrator"));
        assert!(tables(&c).is_empty());
    }
}
