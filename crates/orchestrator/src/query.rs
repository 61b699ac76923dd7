//! Query-string parsing that answers bad input with PE's validation errors
//! (axum's `Query` extractor would answer plain text).

use crate::error::Failure;

/// Decoded `key=value` pairs.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// `application/x-www-form-urlencoded` pairs, as browsers and clients
    /// send them (`+` is a space, a malformed `%` escape is kept as is).
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The keys given, in order (repeated ones repeated).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A non-negative integer parameter.
    pub fn uint(&self, key: &str) -> Result<Option<u64>, Failure> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                Failure::validation(format!(
                    "The '{key}' parameter must be a non-negative integer, got '{v}'"
                ))
            }),
        }
    }

    /// One of the allowed values.
    pub fn one_of(&self, key: &str, allowed: &[&str]) -> Result<Option<String>, Failure> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if allowed.contains(&v) => Ok(Some(v.to_owned())),
            Some(v) => Err(Failure::validation(format!(
                "The '{key}' parameter must be one of {}, got '{v}'",
                allowed.join(", ")
            ))),
        }
    }
}

/// A job id from the path: an integer.
pub fn job_id(raw: &str) -> Result<u64, Failure> {
    // Digits only: `u64::from_str` would also take "+1".
    let digits = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| raw.parse().ok()).flatten().ok_or_else(|| {
        Failure::validation(format!("The job id must be an integer, got '{raw}'"))
            .details(serde_json::json!({ "id": raw }))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes() {
        assert!(super::job_id("+1").is_err());
        assert!(super::job_id("").is_err());
        assert!(super::job_id("99999999999999999999").is_err());
        assert_eq!(super::job_id("12").ok(), Some(12));
        let p = super::Params::parse(Some("a=1&b=x%20y+z&c=%zz&d"));
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("x y z"));
        assert_eq!(p.get("c"), Some("%zz"));
        assert_eq!(p.get("d"), Some(""));
        assert!(p.uint("b").is_err());
    }
}
