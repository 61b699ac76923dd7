//! The RBAC token: read from the token file, sent as `X-Authentication`,
//! never shown in `Debug` output or logs.

use std::path::Path;

use reqwest::header::HeaderValue;

use crate::config::Warning;
use crate::error::Error;

/// An RBAC token. `Debug` prints `Token(<redacted>)`; there is no `Display`.
#[derive(Clone)]
pub struct Token(HeaderValue);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// A token held only in memory (an in-process service's), checked as a
    /// token file's would be; `None` when it cannot be a header value.
    pub fn from_secret(token: &str) -> Option<Token> {
        let mut value = HeaderValue::from_str(token).ok()?;
        value.set_sensitive(true);
        Some(Token(value))
    }

    /// The header value, marked sensitive so hyper's and reqwest's debug
    /// output leave it out.
    pub(crate) fn header(&self) -> &HeaderValue {
        &self.0
    }
}

/// Reads the token file: trailing whitespace (the newline `puppet access`
/// writes, CRLF from editors) is stripped; a file others may read gives a
/// warning, as the token grants the user's PE permissions.
pub fn read_token_file(path: &Path) -> Result<(Token, Vec<Warning>), Error> {
    let mut warnings = Vec::new();
    let bytes = std::fs::read(path).map_err(|source| Error::TokenFile {
        path: path.to_owned(),
        source,
    })?;
    permission_warning(path, &mut warnings);
    let problem = |p: &str| Error::Token {
        path: path.to_owned(),
        problem: p.to_owned(),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| problem("is not text"))?;
    let token = text.trim_end();
    if token.is_empty() {
        return Err(problem("is empty"));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(problem(
            "holds more than one token (it contains whitespace or control characters)",
        ));
    }
    let mut value = HeaderValue::from_str(token)
        .map_err(|_| problem("contains characters a token cannot have"))?;
    value.set_sensitive(true);
    Ok((Token(value), warnings))
}

#[cfg(unix)]
fn permission_warning(path: &Path, warnings: &mut Vec<Warning>) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            warnings.push(Warning(format!(
                "the token file {} can be read by other users (mode {mode:03o}); anyone who reads it can act as you in PE. Run `chmod 600 {}`",
                path.display(),
                path.display()
            )));
        }
    }
}

#[cfg(not(unix))]
fn permission_warning(_path: &Path, _warnings: &mut Vec<Warning>) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "s3cr3t-token-value\n").unwrap();
        let (t, _) = read_token_file(&p).unwrap();
        let dbg = format!("{t:?} {:?}", t.header());
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert_eq!(t.header().to_str().unwrap(), "s3cr3t-token-value");
    }
}
