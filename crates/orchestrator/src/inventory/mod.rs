//! PE's Node Inventory: connection entries that say how to reach a node
//! without an agent (over SSH), kept in the job database (tables of schema
//! migration 2) and held in memory for the job runner's lookups.
//!
//! An entry maps certnames (each in at most one entry) to a `type` (`ssh`),
//! plain `parameters`, and `sensitive_parameters` sealed with the key in
//! `<state-dir>/inventory.key` ([`crypto`]). Secrets stay sealed in memory
//! too; they are opened only to build a node's [`SshTarget`] (as
//! [`secrecy::SecretString`]s) or for a `query/connections` with
//! `sensitive=true` from a token allowed to see them.
//!
//! - [`validate`]: what an entry may say (bolt-server's SSH schema).
//! - [`bolt`]: a Bolt inventory file (version 2) loaded at start.
//! - [`crate::api`]'s `node_inventory`: the HTTP endpoints.

pub mod bolt;
pub mod crypto;
pub mod validate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chacha20poly1305::XNonce;
use chacha20poly1305::aead::Generate;
use rusqlite::{Connection, params};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::app::App;
use crate::error::Error;
use crate::store::Store;
use crate::transport::SshTarget;
use validate::Invalid;

/// A connection entry as stored: its secrets sealed.
pub struct Entry {
    pub id: String,
    /// In the order they were given.
    pub certnames: Vec<String>,
    /// `ssh`.
    pub kind: String,
    pub parameters: Map<String, Value>,
    sealed: Vec<u8>,
    /// When it was created (seconds since the epoch): the listing order.
    pub created: f64,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("id", &self.id)
            .field("certnames", &self.certnames)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A checked entry to create.
#[derive(Debug)]
pub struct NewEntry {
    pub certnames: Vec<String>,
    pub parameters: Map<String, Value>,
    /// `sensitive_parameters` as JSON text.
    sensitive: SecretString,
    /// `duplicates: replace`.
    pub replace: bool,
}

impl NewEntry {
    /// An SSH entry, checked: secret keys given in `parameters` move to
    /// `sensitive_parameters` (they would otherwise be stored and shown in
    /// the clear).
    pub fn ssh(
        certnames: Vec<String>,
        mut parameters: Map<String, Value>,
        mut sensitive: Map<String, Value>,
        replace: bool,
    ) -> Result<Self, Invalid> {
        let mut seen = std::collections::HashSet::new();
        let certnames: Vec<String> = certnames
            .into_iter()
            .filter(|c| seen.insert(c.clone()))
            .collect();
        if certnames.is_empty() {
            return Err(Invalid::new("`certnames` must name at least one node"));
        }
        if let Some(bad) = certnames
            .iter()
            .find(|c| c.is_empty() || c.trim() != c.as_str() || c.contains(['/', '\0']))
        {
            return Err(Invalid::new(format!("{bad:?} is not a certname")));
        }
        for key in validate::SECRET_KEYS {
            if let Some(v) = parameters.remove(key) {
                if sensitive.contains_key(key) {
                    return Err(Invalid::new(format!(
                        "`{key}` is in both parameters and sensitive_parameters; give it once"
                    )));
                }
                tracing::warn!(
                    key,
                    "a secret was sent in `parameters`; it is stored encrypted, with sensitive_parameters"
                );
                sensitive.insert(key.to_owned(), v);
            }
        }
        validate::ssh(&parameters, &sensitive)?;
        if certnames.len() > 1 && parameters.contains_key("hostname") {
            tracing::warn!(
                certnames = certnames.len(),
                "a connection entry for several certnames sets `hostname`: every one of them will reach the same address"
            );
        }
        Ok(Self {
            certnames,
            parameters,
            sensitive: Value::Object(sensitive).to_string().into(),
            replace,
        })
    }
}

/// Why `create-connection` did not create.
#[derive(Debug)]
pub enum CreateError {
    /// Certnames that already have an entry (`duplicates` is not `replace`).
    Duplicates(Vec<String>),
    /// The database failed.
    Store(String),
}

/// A node's entry could not be turned into a target; says why, never a secret.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the connection entry of {certname} cannot be used: {why}")]
pub struct LookupError {
    pub certname: String,
    pub why: String,
}

#[derive(Default)]
struct Index {
    /// By id.
    entries: HashMap<String, Arc<Entry>>,
    /// Certname → entry id.
    owner: HashMap<String, String>,
}

/// The connection entries.
pub struct Inventory {
    sealer: crypto::Sealer,
    /// Writes go through this connection, then to `index`, both locked:
    /// memory never disagrees with what was committed.
    conn: Mutex<Connection>,
    index: RwLock<Index>,
}

impl std::fmt::Debug for Inventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inventory").finish_non_exhaustive()
    }
}

fn db_err(e: rusqlite::Error) -> String {
    format!("the connection entries could not be saved: {e}")
}

/// A random (version 4) UUID.
fn new_id() -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&XNonce::generate()[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

impl Inventory {
    /// Opens the entries of `store`'s database, with the key file of its
    /// directory (created on first start).
    pub fn open(store: &Store) -> Result<Self, Error> {
        let sealer = crypto::Sealer::load_or_create(store.dir())?;
        let state = |e: rusqlite::Error| Error::State {
            path: store.dir().join(crate::store::DB_FILE),
            msg: format!("cannot read the connection entries: {e}"),
        };
        let conn = store.connection().map_err(state)?;
        let index = load(&conn).map_err(state)?;
        Ok(Self {
            sealer,
            conn: Mutex::new(conn),
            index: RwLock::new(index),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The entries of `certnames` (each once), or all; oldest first.
    pub fn entries(&self, certnames: Option<&[String]>) -> Vec<Arc<Entry>> {
        let index = self.read();
        let mut out: Vec<Arc<Entry>> = match certnames {
            None => index.entries.values().cloned().collect(),
            Some(names) => {
                let mut ids: Vec<&String> =
                    names.iter().filter_map(|c| index.owner.get(c)).collect();
                ids.sort();
                ids.dedup();
                ids.iter()
                    .filter_map(|id| index.entries.get(*id).cloned())
                    .collect()
            }
        };
        out.sort_by(|a, b| a.created.total_cmp(&b.created).then(a.id.cmp(&b.id)));
        out
    }

    /// An entry's `sensitive_parameters`, opened.
    pub fn sensitive(&self, entry: &Entry) -> Result<Map<String, Value>, crypto::OpenError> {
        let plain = self.sealer.open(entry.id.as_bytes(), &entry.sealed)?;
        serde_json::from_slice(&plain).map_err(|_| crypto::OpenError)
    }

    /// How the job runner reaches `certname`: its entry with the secrets
    /// opened; `None` when it has no entry.
    pub fn ssh_target(&self, certname: &str) -> Result<Option<SshTarget>, LookupError> {
        let entry = {
            let index = self.read();
            match index
                .owner
                .get(certname)
                .and_then(|id| index.entries.get(id))
            {
                Some(e) => e.clone(),
                None => return Ok(None),
            }
        };
        let fail = |why: String| LookupError {
            certname: certname.to_owned(),
            why,
        };
        if entry.kind != "ssh" {
            return Err(fail(format!("its type is {}, not ssh", entry.kind)));
        }
        let sensitive = self.sensitive(&entry).map_err(|e| fail(e.to_string()))?;
        validate::ssh(&entry.parameters, &sensitive)
            .map(|p| Some(p.into_target(certname)))
            .map_err(|e| fail(e.msg))
    }

    /// Creates an entry; returns its id.
    pub fn create(&self, new: NewEntry) -> Result<String, CreateError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        let taken: Vec<String> = new
            .certnames
            .iter()
            .filter(|c| index.owner.contains_key(*c))
            .cloned()
            .collect();
        if !taken.is_empty() && !new.replace {
            return Err(CreateError::Duplicates(taken));
        }
        let id = new_id();
        let sealed = self
            .sealer
            .seal(id.as_bytes(), new.sensitive.expose_secret().as_bytes());
        let created = crate::time::now();
        let tx = conn
            .transaction()
            .map_err(|e| CreateError::Store(db_err(e)))?;
        let changed = release(&tx, &index, &taken).map_err(|e| CreateError::Store(db_err(e)))?;
        let write = || -> rusqlite::Result<()> {
            tx.execute(
                "INSERT INTO connections (id, type, parameters, sensitive, created) VALUES (?1, 'ssh', ?2, ?3, ?4)",
                params![id, Value::Object(new.parameters.clone()).to_string(), sealed, created],
            )?;
            let mut add = tx.prepare_cached(
                "INSERT INTO connection_certnames (certname, connection, pos) VALUES (?1, ?2, ?3)",
            )?;
            for (pos, c) in new.certnames.iter().enumerate() {
                add.execute(params![c, id, pos as i64])?;
            }
            Ok(())
        };
        write().map_err(|e| CreateError::Store(db_err(e)))?;
        tx.commit().map_err(|e| CreateError::Store(db_err(e)))?;
        apply(&mut index, changed);
        for c in &new.certnames {
            index.owner.insert(c.clone(), id.clone());
        }
        index.entries.insert(
            id.clone(),
            Arc::new(Entry {
                id: id.clone(),
                certnames: new.certnames,
                kind: "ssh".to_owned(),
                parameters: new.parameters,
                sealed,
                created,
            }),
        );
        Ok(id)
    }

    /// Takes `certnames` out of every entry; an entry left without
    /// certnames is removed.
    pub fn delete(&self, certnames: &[String]) -> Result<(), String> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(db_err)?;
        let changed = release(&tx, &index, certnames).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        apply(&mut index, changed);
        Ok(())
    }
}

/// What releasing certnames did to their entries: each entry's id and what
/// is left of it (`None`: removed).
type Changed = Vec<(String, Option<Arc<Entry>>)>;

/// Takes `certnames` out of their entries in `tx`; the index is changed by
/// [`apply`] once `tx` is committed.
fn release(
    tx: &rusqlite::Transaction<'_>,
    index: &Index,
    certnames: &[String],
) -> rusqlite::Result<Changed> {
    let mut left: HashMap<String, Vec<String>> = HashMap::new();
    for c in certnames {
        let Some(id) = index.owner.get(c) else {
            continue;
        };
        tx.execute("DELETE FROM connection_certnames WHERE certname = ?1", [c])?;
        let names = left.entry(id.clone()).or_insert_with(|| {
            index
                .entries
                .get(id)
                .map(|e| e.certnames.clone())
                .unwrap_or_default()
        });
        names.retain(|n| n != c);
    }
    let mut changed = Vec::new();
    for (id, names) in left {
        if names.is_empty() {
            tx.execute("DELETE FROM connections WHERE id = ?1", [&id])?;
            changed.push((id, None));
        } else if let Some(old) = index.entries.get(&id) {
            let e = Entry {
                id: id.clone(),
                certnames: names,
                kind: old.kind.clone(),
                parameters: old.parameters.clone(),
                sealed: old.sealed.clone(),
                created: old.created,
            };
            changed.push((id, Some(Arc::new(e))));
        }
    }
    Ok(changed)
}

fn apply(index: &mut Index, changed: Changed) {
    for (id, entry) in changed {
        let before = index.entries.remove(&id);
        for c in before.iter().flat_map(|e| &e.certnames) {
            index.owner.remove(c);
        }
        if let Some(e) = entry {
            for c in &e.certnames {
                index.owner.insert(c.clone(), id.clone());
            }
            index.entries.insert(id, e);
        }
    }
}

fn load(conn: &Connection) -> rusqlite::Result<Index> {
    let mut index = Index::default();
    let mut names: HashMap<String, Vec<String>> = HashMap::new();
    let mut q = conn.prepare(
        "SELECT certname, connection FROM connection_certnames ORDER BY connection, pos",
    )?;
    for row in q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
        let (certname, id) = row?;
        index.owner.insert(certname.clone(), id.clone());
        names.entry(id).or_default().push(certname);
    }
    let mut q = conn.prepare("SELECT id, type, parameters, sensitive, created FROM connections")?;
    let rows = q.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Vec<u8>>(3)?,
            r.get::<_, f64>(4)?,
        ))
    })?;
    for row in rows {
        let (id, kind, parameters, sealed, created) = row?;
        let parameters = match serde_json::from_str(&parameters) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(connection_id = %id, "a connection entry's parameters cannot be read ({e}); it is left out");
                continue;
            }
        };
        let certnames = names.remove(&id).unwrap_or_default();
        index.entries.insert(
            id.clone(),
            Arc::new(Entry {
                id,
                certnames,
                kind,
                parameters,
                sealed,
                created,
            }),
        );
    }
    // Certnames of entries left out above.
    index.owner.retain(|_, id| index.entries.contains_key(id));
    Ok(index)
}

/// The lookups the job runner and the API use.
impl App {
    /// How `certname` is reached over SSH: its connection entry with the
    /// secrets opened; `Ok(None)` when it has none.
    pub fn ssh_target(&self, certname: &str) -> Result<Option<SshTarget>, LookupError> {
        self.inventory.ssh_target(certname)
    }
}

/// Loads a Bolt inventory file's targets as entries, each replacing the
/// entry of its certname.
pub fn load_bolt_file(inventory: &Inventory, path: &std::path::Path) -> Result<usize, Error> {
    let entries = bolt::load(path)?;
    let n = entries.len();
    for e in entries {
        inventory.create(e).map_err(|e| Error::State {
            path: path.to_owned(),
            msg: match e {
                CreateError::Store(m) => m,
                CreateError::Duplicates(_) => "a certname is defined twice".to_owned(),
            },
        })?;
    }
    tracing::info!(path = %path.display(), targets = n, "Bolt inventory file loaded");
    Ok(n)
}
