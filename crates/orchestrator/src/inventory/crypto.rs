//! Connection entries' secrets at rest: XChaCha20-Poly1305 under a 32-byte
//! key kept in `<state-dir>/inventory.key` (mode 0600, created on first
//! start).
//!
//! A sealed record is `1` (the format), a random 24-byte nonce, then the
//! ciphertext and its tag. The connection id is the associated data, so a
//! record moved to another row no longer opens. The key file is refused
//! when group or others may read it, as OpenSSH refuses a private key.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, Generate, Payload};
use chacha20poly1305::{Key, KeyInit, XChaCha20Poly1305, XNonce};
use secrecy::zeroize::Zeroizing;

use crate::error::Error;

/// The key file's name in the state directory.
pub const KEY_FILE: &str = "inventory.key";

const KEY_LEN: usize = 32;
const FORMAT: u8 = 1;
const NONCE_LEN: usize = 24;

/// Seals and opens secrets with the service's key. Its `Debug` shows no key.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer { .. }")
    }
}

/// A sealed record that does not open: another key, or a damaged record.
#[derive(Debug, thiserror::Error)]
#[error(
    "the secrets of this connection entry cannot be decrypted (was {KEY_FILE} replaced, or the database damaged?); recreate the entry"
)]
pub struct OpenError;

fn key_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Config {
        path: path.to_owned(),
        msg: msg.into(),
    }
}

impl Sealer {
    /// Reads `<dir>/inventory.key`, or creates it (mode 0600) when absent.
    pub fn load_or_create(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(KEY_FILE);
        let key = match read_key(&path)? {
            Some(k) => k,
            None => create_key(&path)?,
        };
        Ok(Self {
            cipher: XChaCha20Poly1305::new(&key),
        })
    }

    /// `plain` sealed under a fresh random nonce, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let nonce = XNonce::generate();
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: plain, aad })
            // Only a message past 256 GiB fails; ours are a few KiB.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The plaintext of a record [`Sealer::seal`] made with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let [FORMAT, rest @ ..] = sealed else {
            return Err(OpenError);
        };
        if rest.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, msg) = rest.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| OpenError)?;
        self.cipher
            .decrypt(&nonce, Payload { msg, aad })
            .map(Zeroizing::new)
            .map_err(|_| OpenError)
    }
}

fn read_key(path: &Path) -> Result<Option<Key>, Error> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(key_err(
            path,
            format!(
                "the key of the connection entries' secrets is accessible to group or others (mode {mode:04o}); make it private with `chmod 600 {}` (and check who read it)",
                path.display()
            ),
        ));
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?);
    Key::try_from(bytes.as_slice()).map(Some).map_err(|_| {
        key_err(
            path,
            format!(
                "the key of the connection entries' secrets must be {KEY_LEN} bytes, this file has {}; restore it from a backup (a new key cannot open the stored secrets)",
                bytes.len()
            ),
        )
    })
}

fn create_key(path: &Path) -> Result<Key, Error> {
    let key = Key::generate();
    let dir = path.parent().unwrap_or(Path::new("."));
    let write = || -> std::io::Result<()> {
        // tempfile creates it with mode 0600; the whole key appears under
        // its name at once (a crash leaves no short key file), and never
        // over a key another process just made.
        let mut f = tempfile::NamedTempFile::new_in(dir)?;
        f.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(&key)?;
        f.as_file().sync_all()?;
        f.persist_noclobber(path).map_err(|e| e.error)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| Error::State {
        path: path.to_owned(),
        msg: format!("cannot create the key of the connection entries' secrets: {e}"),
    })?;
    tracing::info!(path = %path.display(), "created the key of the connection entries' secrets");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_id() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sealer::load_or_create(dir.path()).unwrap();
        let sealed = s.seal(b"id-1", b"hunter2");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(s.open(b"id-1", &sealed).unwrap().as_slice(), b"hunter2");
        assert!(s.open(b"id-2", &sealed).is_err(), "bound to its id");
        // Random nonces: the same secret seals differently each time.
        assert_ne!(s.seal(b"id-1", b"hunter2"), sealed);
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The same key again after a restart.
        let again = Sealer::load_or_create(dir.path()).unwrap();
        assert_eq!(again.open(b"id-1", &sealed).unwrap().as_slice(), b"hunter2");
        let other = tempfile::tempdir().unwrap();
        let stranger = Sealer::load_or_create(other.path()).unwrap();
        assert!(stranger.open(b"id-1", &sealed).is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(s.open(b"id-1", &flipped).is_err());
        assert!(s.open(b"id-1", &[]).is_err());
    }

    #[test]
    fn a_readable_or_short_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Sealer::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = Sealer::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(e.contains("mode 0640") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, b"short").unwrap();
        let e = Sealer::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(e.contains("must be 32 bytes, this file has 5"), "{e}");
    }
}
