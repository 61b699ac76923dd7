//! `--junit FILE`: one testsuite per job (per wave in a rollout), one
//! testcase per node, timed by the node's run.
//!
//! - unchanged: passes;
//! - changed: passes in a real run (its changes in `system-out`); in a noop
//!   run it is a failure of type `drift` listing what would change, so a
//!   scheduled noop pipeline goes red on drift;
//! - failed, errored, stopped: a failure whose type is the error kind;
//! - skipped: skipped, with the orchestrator's reason; a node still
//!   running (`kick job show` of a job in progress) is skipped too.
//!
//! The document follows the JUnit XML format CI systems read (Jenkins,
//! GitLab, GitHub test reporters); `schema/junit.xsd` describes it and the
//! tests validate against it.

use quick_junit::{NonSuccessKind, Report, SerializeError, TestCase, TestCaseStatus, TestSuite};

use super::{JobRecord, NodeRecord};
use crate::drift::verb;
use crate::outcome::Outcome;

/// The failure type of a noop node with pending changes.
pub const DRIFT: &str = "drift";

/// The JUnit XML document for `jobs`.
pub fn render(jobs: &[JobRecord]) -> Result<String, SerializeError> {
    let mut report = Report::new("kick");
    for job in jobs {
        report.add_test_suite(suite(job));
    }
    report.to_string()
}

fn suite(job: &JobRecord) -> TestSuite {
    let mut s = TestSuite::new(job.title());
    if let Some(d) = job.duration {
        s.set_time(d);
    }
    s.add_property(("job", job.id.as_str()));
    s.add_property(("what", job.what.as_str()));
    s.add_property(("noop", if job.noop { "true" } else { "false" }));
    s.add_property(("state", job.state.as_str()));
    if let Some(e) = &job.environment {
        s.add_property(("environment", e.as_str()));
    }
    for node in &job.nodes {
        s.add_test_case(case(job, node));
    }
    s
}

fn case(job: &JobRecord, node: &NodeRecord) -> TestCase {
    let status = match node.outcome {
        Outcome::Unchanged => TestCaseStatus::success(),
        Outcome::Changed if !job.noop => TestCaseStatus::success(),
        Outcome::Changed => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_type(DRIFT).set_message(pending_message(node));
            st.set_description(changes_text(node));
            st
        }
        Outcome::Failed | Outcome::Errored | Outcome::Stopped => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_type(kind(node)).set_message(message(node));
            let mut text = node.error_msg.clone().unwrap_or_default();
            if !node.changes.is_empty() {
                text.push_str("\n\n");
                text.push_str(&changes_text(node));
            }
            st.set_description(text);
            st
        }
        Outcome::Skipped => {
            let mut st = TestCaseStatus::skipped();
            st.set_type(kind(node)).set_message(message(node));
            st
        }
        // Only `kick job show` of a job still going reports these.
        Outcome::Running => {
            let mut st = TestCaseStatus::skipped();
            st.set_type("kick/node-running")
                .set_message("the node had not finished when the job was shown");
            st
        }
    };
    let mut c = TestCase::new(node.name.as_str(), status);
    c.set_classname(job.what.as_str());
    if let Some(d) = node.duration {
        c.set_time(d);
    }
    if node.outcome == Outcome::Changed && !job.noop {
        c.set_system_out(changes_text(node));
    }
    c
}

fn kind(node: &NodeRecord) -> String {
    node.error_kind
        .clone()
        .unwrap_or_else(|| format!("kick/node-{}", node.outcome.as_str()))
}

fn message(node: &NodeRecord) -> String {
    // The attribute holds the first line; the text node has all of it.
    node.error_msg
        .as_deref()
        .and_then(|m| m.lines().next())
        .map_or_else(
            || format!("the node {}", node.outcome.as_str()),
            str::to_owned,
        )
}

fn pending_message(node: &NodeRecord) -> String {
    let n = node.changes.len() as u64 + node.changes_truncated;
    match n {
        0 => "changes pending (the task's result does not list them)".to_owned(),
        1 => "1 change pending".to_owned(),
        n => format!("{n} changes pending"),
    }
}

/// One line per change: `File[/etc/motd] content would change: <message>`.
pub fn changes_text(node: &NodeRecord) -> String {
    let mut s = String::new();
    for c in &node.changes {
        s.push_str(&c.resource);
        if let Some(p) = &c.property {
            s.push(' ');
            s.push_str(p);
        }
        s.push(' ');
        s.push_str(verb(c.status));
        if !c.message.is_empty() {
            s.push_str(": ");
            s.push_str(&c.message);
        }
        s.push('\n');
    }
    if node.changes_truncated > 0 {
        s.push_str(&format!(
            "… and {} more not listed (changes_limit)\n",
            node.changes_truncated
        ));
    }
    if s.is_empty() {
        s.push_str("the task's result lists no changes\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::tests::sample_job;

    const XSD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/junit.xsd");

    /// Validates `xml` with xmllint against the committed schema.
    pub(crate) fn validate(xml: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        std::fs::write(&path, xml).unwrap();
        let out = std::process::Command::new("xmllint")
            .args(["--noout", "--schema", XSD])
            .arg(&path)
            .output()
            .expect("xmllint runs (Debian package libxml2-utils)");
        assert!(
            out.status.success(),
            "not valid against {XSD}:\n{}\n{xml}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn a_noop_job_fails_on_drift_and_on_failed_nodes_and_skips_skipped_ones() {
        let job = sample_job();
        let xml = render(std::slice::from_ref(&job)).unwrap();
        validate(&xml);
        assert_eq!(xml.matches("type=\"drift\"").count(), 4);
        assert!(xml.contains("type=\"psick/run-failed\""));
        assert!(xml.contains("&lt;catalog&gt; &amp;"));
        assert!(xml.contains(
            "<skipped message=\"the node was not connected\" type=\"kick/node-skipped\"/>"
        ));
        insta::assert_snapshot!(xml);
    }

    #[test]
    fn a_real_run_passes_changed_nodes_with_their_changes_as_output() {
        let mut job = sample_job();
        job.noop = false;
        let mut wave2 = sample_job();
        wave2.id = "43".into();
        wave2.label = Some("wave 2 of 2".into());
        let xml = render(&[job, wave2]).unwrap();
        validate(&xml);
        assert_eq!(xml.matches("<testsuite ").count(), 2);
        assert!(xml.contains("name=\"wave 2 of 2, job 43: psick::puppet_agent (noop)\""));
        assert!(xml.contains("<system-out>File[/etc/motd] content would change"));
    }

    #[test]
    fn the_schema_rejects_what_is_not_junit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.xml");
        std::fs::write(&path, "<testsuites><testcase name=\"x\"/></testsuites>").unwrap();
        let ok = std::process::Command::new("xmllint")
            .args(["--noout", "--schema", XSD])
            .arg(&path)
            .output()
            .unwrap()
            .status
            .success();
        assert!(!ok, "a testcase outside a testsuite must not validate");
    }
}
