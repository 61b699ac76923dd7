//! The change model: the report fields the task result takes ([`Report`]), and how a
//! resource status and its events become [`Change`]s and corrective counts.

use base64::Engine as _;
use orchestrator_types::psick::{Change, ChangeStatus, CorrectiveCounts};

/// The report fields that become part of the task result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// `transaction_uuid`.
    pub transaction_uuid: Option<String>,
    /// The first `limit` resource events, in the report's order.
    pub changes: Vec<Change>,
    /// Events left out by the limit.
    pub changes_truncated: u64,
    /// Resources with applied or pending changes, by whether the change was
    /// corrective.
    pub corrective_change: CorrectiveCounts,
}

/// The fields of one resource status, while its events are read.
#[derive(Default)]
pub(crate) struct Status {
    pub(crate) resource: Option<String>,
    pub(crate) resource_type: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) corrective: bool,
}

/// Collects changes across resources.
pub(crate) struct Collector {
    pub(crate) limit: usize,
    pub(crate) report: Report,
}

impl Collector {
    pub(crate) fn push(&mut self, change: Change) {
        if self.report.changes.len() < self.limit {
            self.report.changes.push(change);
        } else {
            self.report.changes_truncated += 1;
        }
    }

    /// A resource status read: its events (`pending`, in order) become changes of the
    /// resource the status (or else its key, `Type[title]`) names, and the resource counts
    /// as changed, corrective or intentional, when one of them applied or would have.
    pub(crate) fn add_status(&mut self, status: Status, key: Option<String>, pending: Vec<Change>) {
        let resource = status.resource.or(key).unwrap_or_default();
        let (key_type, key_title) = split_resource(&resource);
        let resource_type = status.resource_type.unwrap_or(key_type);
        let title = status.title.unwrap_or(key_title);
        let mut changed = false;
        let mut corrective = status.corrective;
        for mut change in pending {
            changed |= matches!(change.status, ChangeStatus::Noop | ChangeStatus::Success);
            corrective |= change.corrective;
            if self.report.changes.len() < self.limit {
                change.resource.clone_from(&resource);
                change.resource_type.clone_from(&resource_type);
                change.title.clone_from(&title);
            }
            self.push(change);
        }
        if changed {
            let counts = &mut self.report.corrective_change;
            if corrective {
                counts.corrective += 1;
            } else {
                counts.intentional += 1;
            }
        }
    }
}

/// An event before its fields are read.
pub(crate) fn blank() -> Change {
    Change {
        resource: String::new(),
        resource_type: String::new(),
        title: String::new(),
        property: None,
        previous: None,
        desired: None,
        message: String::new(),
        status: ChangeStatus::Failure,
        corrective: false,
    }
}

/// An event whose fields were read, given its `status`; `None` for an
/// event without a known status.
pub(crate) fn finish_event(mut change: Change, status: Option<&str>) -> Option<Change> {
    change.status = match status {
        Some("noop") => ChangeStatus::Noop,
        Some("success") => ChangeStatus::Success,
        Some("failure") => ChangeStatus::Failure,
        Some("audit") => ChangeStatus::Audit,
        _ => return None,
    };
    // Puppet 7 stringifies a Binary desired value (file content's
    // checksum) as base64; show it as the checksum the message names.
    for value in [&mut change.previous, &mut change.desired] {
        if let Some(checksum) = value.as_deref().and_then(checksum_from_base64) {
            *value = Some(checksum);
        }
    }
    Some(change)
}

/// `File[/etc/motd]` → (`File`, `/etc/motd`).
pub(crate) fn split_resource(resource: &str) -> (String, String) {
    match resource.split_once('[') {
        Some((ty, rest)) if rest.ends_with(']') => {
            (ty.to_owned(), rest[..rest.len() - 1].to_owned())
        }
        _ => (String::new(), resource.to_owned()),
    }
}

/// The checksum a base64 value encodes, when it encodes one
/// (`e3NoYTI1Nn1h...` → `{sha256}a...`).
pub(crate) fn checksum_from_base64(value: &str) -> Option<String> {
    if value.len() < 12 || !value.len().is_multiple_of(4) || value.starts_with('{') {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (algo, digest) = text.strip_prefix('{')?.split_once('}')?;
    let known = [
        "md5",
        "md5lite",
        "sha1",
        "sha1lite",
        "sha224",
        "sha256",
        "sha256lite",
        "sha384",
        "sha512",
        "mtime",
        "ctime",
    ];
    (known.contains(&algo) && !digest.is_empty() && digest.bytes().all(|b| b.is_ascii_graphic()))
        .then_some(text)
}
