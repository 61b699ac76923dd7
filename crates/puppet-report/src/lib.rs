//! Puppet agent run reports (`lastrunreport`, `last_run_report.yaml`): the
//! resource events of a run, as the `changes` of the psick::puppet_agent
//! result.
//!
//! Puppet writes the report with Ruby's Psych: Ruby-tagged YAML
//! (`--- !ruby/object:Puppet::Transaction::Report`; older agents also tag
//! every `Puppet::Resource::Status` and `Puppet::Transaction::Event`, and
//! symbols as `!ruby/sym`), strings that are not UTF-8 as `!binary` base64.
//! Tags name Ruby classes, so they are ignored and fields are read by name.
//! Reports reach tens of MiB (logs, metrics, every resource of the catalog),
//! so no document tree is ever built: the YAML is read as a stream of
//! events (saphyr-parser), only the fields used are kept and everything
//! else is skipped event by event. Most of what is never read (`logs`,
//! `metrics`, the tags, times and counts of each resource, the history of
//! each event) is dropped line by line before parsing, which leaves the
//! parser a quarter of the file. A report up to [`MAX_IN_MEMORY_BYTES`] is
//! filtered in chunks into memory and parsed there (several times faster);
//! a larger one is streamed from the file, so memory stays bounded.
//!
//! A crate of its own so that the task's size-optimised build can compile
//! this one hot loop for speed.

pub mod yaml;

mod change;
mod filter;
mod walk;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use saphyr_parser::ScanError;

pub use change::Report;
pub use walk::parse;

use filter::{Prefilter, Utf8Chars, prefilter};
use walk::parse_chars;

/// Values (and messages, titles) are cut at this many bytes.
pub const MAX_VALUE_BYTES: usize = 1024;

/// Reports larger than this are not read: no agent run writes one.
pub const MAX_REPORT_BYTES: u64 = 512 * 1024 * 1024;

/// Reports up to this size have their kept lines (about a quarter of them)
/// gathered in memory and parsed in place, which is several times faster;
/// larger ones are streamed, so memory stays bounded whatever the size.
pub const MAX_IN_MEMORY_BYTES: u64 = 24 * 1024 * 1024;

/// Why a report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be opened or read.
    #[error("could not read the run's report {}: {source}", path.display())]
    Io {
        /// The report file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The file is implausibly large.
    #[error(
        "the run's report {} is {size} bytes, more than the {MAX_REPORT_BYTES} this task reads",
        path.display()
    )]
    TooLarge {
        /// The report file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The file could not be understood.
    #[error("the run's report {} {problem}", path.display())]
    Unreadable {
        /// The report file.
        path: PathBuf,
        /// What is wrong with it.
        problem: Problem,
    },
}

/// What is wrong with a report's content.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// The YAML does not parse.
    #[error("is not valid YAML ({0}); it may have been cut short")]
    Yaml(#[from] ScanError),
    /// The document ends before the report does.
    #[error("ends early: it was cut short while being written or copied")]
    Truncated,
    /// The YAML is not a Puppet run report.
    #[error("is not a Puppet run report ({0})")]
    NotAReport(&'static str),
    /// Reading failed part way.
    #[error("could not be read to the end: {0}")]
    Io(#[from] io::Error),
}

/// Reads the report at `path`, keeping at most `limit` changes.
pub fn read(path: &Path, limit: usize) -> Result<Report, ReportError> {
    read_with(path, limit, MAX_IN_MEMORY_BYTES)
}

/// [`read`], streaming reports larger than `in_memory` bytes.
fn read_with(path: &Path, limit: usize, in_memory: u64) -> Result<Report, ReportError> {
    let io_error = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let size = file.metadata().map_err(io_error)?.len();
    if size > MAX_REPORT_BYTES {
        return Err(ReportError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let unreadable = |problem| ReportError::Unreadable {
        path: path.to_path_buf(),
        problem,
    };
    if size <= in_memory {
        // A file that grew past the limit since its size was taken reads as
        // truncated, as does one that does not end with a line break.
        let filtered = prefilter(file, in_memory).map_err(io_error)?;
        if !filtered.complete {
            return Err(unreadable(Problem::Truncated));
        }
        let text = match String::from_utf8(filtered.kept) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        return parse(&text, limit).map_err(unreadable);
    }
    let lines = Prefilter::new(io::BufReader::with_capacity(64 * 1024, file));
    let mut chars = Utf8Chars::new(lines);
    let parsed = parse_chars(&mut chars, limit);
    match (chars.error.take(), parsed) {
        (Some(e), _) => Err(Problem::Io(e)),
        (None, Ok(_)) if !chars.reader.complete => Err(Problem::Truncated),
        (None, r) => r,
    }
    .map_err(unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::{checksum_from_base64, split_resource};
    use orchestrator_types::psick::{Change, ChangeStatus, CorrectiveCounts};
    use std::io::Read;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/reports/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The report's first change that `wanted`.
    fn change(r: &Report, wanted: impl Fn(&Change) -> bool) -> &Change {
        r.changes.iter().find(|c| wanted(c)).unwrap()
    }

    #[track_caller]
    fn assert_corrective(r: &Report, corrective: u64, intentional: u64) {
        let counts = CorrectiveCounts {
            corrective,
            intentional,
        };
        assert_eq!(r.corrective_change, counts);
    }

    /// A report of `n` file resources each with a pending content change,
    /// in the shape of the real noop report (its header, one of its
    /// resource statuses repeated, its tail).
    pub fn generated(n: usize) -> String {
        let real = fixture("puppet-7.23-noop.yaml");
        let (head, rest) = real.split_once("resource_statuses:\n").unwrap();
        let tail = &rest[rest.find("\ncorrective_change: false\n").unwrap() + 1..];
        let start = rest
            .find("  File[/tmp/kick-e2e/node1.example.com/managed.txt]:\n")
            .unwrap();
        let end = start + rest[start..].find("\n  Schedule[puppet]:").unwrap() + 1;
        let block = &rest[start..end];
        let mut text = String::with_capacity(head.len() + n * (block.len() + 8) + tail.len());
        text.push_str(head);
        text.push_str("resource_statuses:\n");
        for i in 0..n {
            text.push_str(&block.replace("managed.txt", &format!("managed-{i}.txt")));
        }
        text.push_str(tail);
        text
    }

    #[test]
    fn a_real_noop_report_lists_each_pending_change() {
        let r = parse(&fixture("puppet-7.23-noop.yaml"), 100).unwrap();
        assert_eq!(
            r.transaction_uuid.as_deref(),
            Some("30daa2f6-30a0-4568-8e0c-48817dcb21bc")
        );
        assert_eq!(r.changes.len(), 3);
        assert_eq!(r.changes_truncated, 0);
        let c = &r.changes[2];
        assert_eq!(
            c.resource,
            "File[/tmp/kick-e2e/node1.example.com/managed.txt]"
        );
        assert_eq!(c.resource_type, "File");
        assert_eq!(c.title, "/tmp/kick-e2e/node1.example.com/managed.txt");
        assert_eq!(c.property.as_deref(), Some("ensure"));
        assert_eq!(c.previous.as_deref(), Some("absent"));
        assert_eq!(c.desired.as_deref(), Some("file"));
        assert_eq!(c.message, "current_value 'absent', should be 'file' (noop)");
        assert_eq!(c.status, ChangeStatus::Noop);
        assert!(!c.corrective);
        assert_corrective(&r, 0, 3);
    }

    #[test]
    fn a_real_corrective_run_decodes_puppets_base64_checksum() {
        let r = parse(&fixture("puppet-7.23-corrective.yaml"), 100).unwrap();
        let content = change(&r, |c| c.property.as_deref() == Some("content"));
        assert_eq!(
            content.desired.as_deref(),
            Some("{sha256}aa1e7b7c0a08357466dcf0421c74440665be25f0d121bf11b07356b2a86407da")
        );
        assert!(
            content
                .message
                .contains(content.desired.as_deref().unwrap())
        );
        assert!(content.corrective && content.status == ChangeStatus::Success);
        // Two events on managed.txt (content, mode) count as one resource.
        assert_corrective(&r, 1, 1);
    }

    #[test]
    fn a_real_failed_resource_is_a_failure_and_lists_render_as_json() {
        let r = parse(&fixture("puppet-7.23-failmixed.yaml"), 100).unwrap();
        let exec = change(&r, |c| c.resource == "Exec[always-fails]");
        assert_eq!(exec.status, ChangeStatus::Failure);
        assert_eq!(exec.previous.as_deref(), Some("notrun"));
        assert_eq!(exec.desired.as_deref(), Some(r#"["0"]"#));
        // The failed resource does not count as changed.
        assert_eq!(r.corrective_change.intentional, 1);
    }

    #[test]
    fn ruby_tags_binary_strings_and_aliases() {
        let r = parse(&fixture("ruby-tags-binary.yaml"), 100).unwrap();
        assert_eq!(
            r.transaction_uuid.as_deref(),
            Some("4e6f1d7c-6b2a-4c55-9b1e-2b1c0f1c7e11")
        );
        // The event with an unknown status is left out.
        assert_eq!(r.changes.len(), 2, "{:#?}", r.changes);
        let file = &r.changes[0];
        assert_eq!(file.resource, "File[/etc/latin1.conf]");
        assert_eq!(file.message, "content changed in \u{fffd} latin-1 file");
        assert_eq!(file.status, ChangeStatus::Success);
        let user = &r.changes[1];
        assert_eq!(
            (user.resource_type.as_str(), user.title.as_str()),
            ("User", "deploy")
        );
        assert_eq!(user.previous.as_deref(), Some("[\"adm\",\"web-\u{fffd}\"]"));
        assert_eq!(user.desired.as_deref(), Some(r#"["adm","sudo"]"#));
        assert_eq!(user.status, ChangeStatus::Noop);
        assert!(user.corrective);
        assert_corrective(&r, 1, 1);
    }

    #[test]
    fn five_thousand_resources_are_capped_at_the_limit() {
        let text = generated(5000);
        let r = parse(&text, 100).unwrap();
        assert_eq!(r.changes.len(), 100);
        assert_eq!(r.changes_truncated, 4900);
        assert_eq!(r.corrective_change.intentional, 5000);
        assert_eq!(
            r.changes[99].resource,
            "File[/tmp/kick-e2e/node1.example.com/managed-99.txt]"
        );
        let none = parse(&text, 0).unwrap();
        assert!(none.changes.is_empty());
        assert_eq!(none.changes_truncated, 5000);
    }

    #[test]
    fn long_values_are_cut_at_one_kib() {
        let long = "x".repeat(5000);
        let text = fixture("puppet-7.23-noop.yaml")
            .replace("desired_value: file\n", &format!("desired_value: {long}\n"))
            .replace(
                "desired_value: directory\n",
                &format!("desired_value:\n      - {long}\n      - {long}\n"),
            );
        let r = parse(&text, 100).unwrap();
        for c in &r.changes[..] {
            let d = c.desired.as_deref().unwrap();
            assert!(d.len() <= MAX_VALUE_BYTES, "{}", d.len());
        }
        assert!(r.changes[2].desired.as_deref().unwrap().ends_with("xx..."));
        assert!(
            r.changes[0]
                .desired
                .as_deref()
                .unwrap()
                .starts_with("[\"xxx")
        );
    }

    #[test]
    fn a_truncated_report_is_an_error_wherever_it_was_cut() {
        let text = fixture("puppet-7.23-noop.yaml");
        let closing = text.find("\ncorrective_change: false\n").unwrap();
        // At every line end before the closing key, and mid-line.
        let cuts = text[..closing]
            .match_indices('\n')
            .map(|(i, _)| i + 1)
            .step_by(3)
            .chain((1..closing).step_by(211));
        for cut in cuts {
            let r = parse(&text[..cut], 100);
            assert!(
                r.is_err(),
                "cut at {cut} parsed: {:?}",
                r.map(|r| r.changes.len())
            );
        }
        assert!(matches!(
            parse(&text[..text.len() - 1], 100),
            Err(Problem::Truncated)
        ));
    }

    #[test]
    fn other_documents_are_not_reports() {
        for text in [
            "\n",
            "- a\n- b\n",
            "host: x\nlogs: []\n",
            "just text\n",
            "a: [1\n",
        ] {
            let e = parse(text, 10).unwrap_err();
            assert!(
                matches!(e, Problem::NotAReport(_) | Problem::Yaml(_)),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_read_or_refused_without_overflowing_the_stack() {
        let nested = |depth: usize| {
            let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            fixture("puppet-7.23-noop.yaml")
                .replace("desired_value: file\n", &format!("desired_value: {deep}\n"))
        };
        let r = parse(&nested(50), 100).unwrap();
        assert!(r.changes[2].desired.as_deref().unwrap().starts_with("[[[["));
        // The parser's own recursion limit refuses absurd nesting cleanly.
        assert!(matches!(
            parse(&nested(100_000), 100),
            Err(Problem::Yaml(_))
        ));
    }

    #[test]
    fn utf8_chars_across_chunks_and_invalid_bytes() {
        // A reader that hands out one byte at a time splits every
        // multi-byte character.
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        let bytes = b"a\xc3\xa9b\xffc\xe2\x82";
        let text: String = Utf8Chars::new(OneByte(bytes)).collect();
        assert_eq!(text, "a\u{e9}b\u{fffd}c\u{fffd}");
    }

    #[test]
    fn files_read_in_memory_and_streamed_give_the_parsed_result() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "puppet-7.23-noop.yaml",
            "puppet-7.23-corrective.yaml",
            "puppet-7.23-failmixed.yaml",
            "puppet-7.23-complex-keys.yaml",
            "ruby-tags-binary.yaml",
            "generated",
        ] {
            let text = match name {
                "generated" => generated(50),
                _ => fixture(name),
            };
            let path = dir.path().join(name);
            std::fs::write(&path, &text).unwrap();
            let parsed = parse(&text, 100).unwrap();
            assert_eq!(read_with(&path, 100, u64::MAX).unwrap(), parsed, "{name}");
            assert_eq!(read_with(&path, 100, 0).unwrap(), parsed, "{name} streamed");
            std::fs::write(&path, &text[..text.len() / 2]).unwrap();
            for in_memory in [u64::MAX, 0] {
                let e = read_with(&path, 100, in_memory).unwrap_err().to_string();
                assert!(e.contains(path.to_str().unwrap()), "{e}");
            }
        }
        let e = read(&dir.path().join("absent.yaml"), 1).unwrap_err();
        assert!(matches!(e, ReportError::Io { .. }), "{e}");
    }

    fn prefiltered(text: &str) -> String {
        let mut kept = String::new();
        Prefilter::new(text.as_bytes())
            .read_to_string(&mut kept)
            .unwrap();
        kept
    }

    #[test]
    fn logs_and_metrics_are_skipped_and_everything_else_kept() {
        let text = "--- !ruby/object:Puppet::Transaction::Report\nhost: a\nlogs:\n- level: info\n  \
                    message: |-\n    two\n\n    lines\n- level: notice\nmetrics:\n  resources:\n    \
                    name: r\nresource_statuses: {}\nlogs: []\n---\nx: 1\n";
        let kept = prefiltered(text);
        assert_eq!(
            kept,
            "--- !ruby/object:Puppet::Transaction::Report\nhost: a\nresource_statuses: {}\n---\nx: 1\n"
        );
    }

    #[test]
    fn status_and_event_fields_that_are_not_read_are_dropped() {
        let text = "resource_statuses:\n  File[/a]:\n    title: \"/a\"\n    tags:\n    - file\n    \
                    - class\n    line: 3\n    resource_type: File\n    events:\n    \
                    - audited: false\n      property: mode\n      tags:\n      - dropped\n      \
                    message: |-\n        two\n\n        lines\n      historical_value:\n      \
                    - h\n      previous_value:\n      - p\n      name: mode_changed\n      \
                    status: noop\n    - property: owner\n      time: 1\n    \
                    containment_path:\n    - Stage[main]\n    corrective_change: false\n  \
                    Notify[b]: !ruby/object:Puppet::Resource::Status\n    time: 1\n    \
                    resource: Notify[b]\ncorrective_change: false\n";
        let kept = prefiltered(text);
        assert_eq!(
            kept,
            "resource_statuses:\n  File[/a]:\n    resource_type: File\n    events:\n    \
             - audited: false\n      property: mode\n      message: |-\n        two\n\n        \
             lines\n      previous_value:\n      - p\n      status: noop\n    \
             - property: owner\n    corrective_change: false\n  \
             Notify[b]: !ruby/object:Puppet::Resource::Status\ncorrective_change: false\n"
        );
        // What is dropped is never read: the report reads the same without it.
        assert_eq!(parse(&kept, 10).unwrap(), parse(text, 10).unwrap());
    }

    #[test]
    fn statuses_under_complex_keys_keep_their_whole_key() {
        // Puppet 7.23's report of a noop `puppet apply`: a title past 128
        // characters with `: ` in it (a folded single-quoted `? ` key) and one
        // with a line break (a `? |-` key whose second line looks like a field).
        let text = fixture("puppet-7.23-complex-keys.yaml");
        let long = "a very long notify title, with a colon: here, that goes on and on past the one \
                    hundred and twenty eight characters at which Psych writes a complex key instead";
        let r = parse(
            &String::from_utf8(prefilter(text.as_bytes(), u64::MAX).unwrap().kept).unwrap(),
            100,
        )
        .unwrap();
        assert_eq!(r, parse(&text, 100).unwrap());
        let resources: Vec<(&str, &str, &str)> = r
            .changes
            .iter()
            .map(|c| {
                (
                    c.resource.as_str(),
                    c.resource_type.as_str(),
                    c.title.as_str(),
                )
            })
            .collect();
        assert_eq!(
            resources,
            [
                ("Notify[a short one]", "Notify", "a short one"),
                (&format!("Notify[{long}]"), "Notify", long),
                (
                    "Notify[two\nlines: in a title]",
                    "Notify",
                    "two\nlines: in a title"
                ),
                (
                    "File[/tmp/ck/files/plain.conf]",
                    "File",
                    "/tmp/ck/files/plain.conf"
                ),
            ]
        );
    }

    #[test]
    fn both_ways_of_reading_drop_the_same_lines() {
        // Many 64 KiB chunks, and lines longer than one, kept and dropped.
        let long = "x".repeat(200 * 1024);
        let long_lines = generated(3)
            .replacen("    tags:\n", &format!("    tags:\n    - {long}\n"), 1)
            .replacen("      message: ", &format!("      message: {long}"), 1);
        assert_eq!(long_lines.matches(&long).count(), 2);
        for text in [
            fixture("puppet-7.23-noop.yaml"),
            fixture("puppet-7.23-failmixed.yaml"),
            fixture("puppet-7.23-complex-keys.yaml"),
            generated(2000),
            long_lines,
        ] {
            let kept = prefiltered(&text);
            let filtered = prefilter(text.as_bytes(), u64::MAX).unwrap();
            assert!(filtered.complete);
            assert_eq!(String::from_utf8(filtered.kept).unwrap(), kept);
            assert!(
                kept.len() < text.len() / 2,
                "{} of {}",
                kept.len(),
                text.len()
            );
        }
    }

    #[test]
    fn checksums_in_base64_are_decoded_and_nothing_else() {
        assert_eq!(
            checksum_from_base64("e3NoYTI1Nn1hYTFl").as_deref(),
            Some("{sha256}aa1e")
        );
        assert_eq!(checksum_from_base64("aGVsbG8gd29ybGQh"), None); // "hello world!"
        assert_eq!(checksum_from_base64("directory"), None);
        assert_eq!(checksum_from_base64("{sha256}aa1e"), None);
    }

    #[test]
    fn resources_split_into_type_and_title() {
        assert_eq!(
            split_resource("File[/etc/a[1]]"),
            ("File".into(), "/etc/a[1]".into())
        );
        assert_eq!(split_resource("odd"), (String::new(), "odd".into()));
    }
}
