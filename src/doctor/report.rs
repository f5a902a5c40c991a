//! The result of one online check and how it is printed: a line for people (`PASS  kafka.topic
//! shop.orders: 3 partitions, READ granted`) or a JSON object per line for scripts, and the exit
//! code of a whole run. Pure.

use serde::Serialize;
use std::fmt::Write as _;

/// Exit code when every check passed (warnings allowed).
pub const EXIT_OK: u8 = 0;
/// Exit code when at least one online check failed.
pub const EXIT_FAILED: u8 = 1;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "UPPERCASE")]
#[strum(serialize_all = "UPPERCASE")]
pub enum Status {
    Pass,
    /// Works, but something deserves attention (or could not be verified without side effects).
    Warn,
    Fail,
    /// Not run because a check it depends on failed (that one says why).
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One check: what was checked (`name` and `subject`), what was found, what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub status: Status,
    /// Which check, e.g. `kafka.topic`, `mcm.tls`.
    #[serde(rename = "check")]
    pub name: &'static str,
    /// What it was run on: a topic, the group, a host, a URL.
    pub subject: String,
    /// What was found.
    pub detail: String,
    /// What to do about it, when there is something to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn new(
        status: Status,
        name: &'static str,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) -> Check {
        Check {
            status,
            name,
            subject: subject.into(),
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn pass(
        name: &'static str,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) -> Check {
        Check::new(Status::Pass, name, subject, detail)
    }

    pub fn warn(
        name: &'static str,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) -> Check {
        Check::new(Status::Warn, name, subject, detail)
    }

    pub fn fail(
        name: &'static str,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) -> Check {
        Check::new(Status::Fail, name, subject, detail)
    }

    pub fn skip(
        name: &'static str,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) -> Check {
        Check::new(Status::Skip, name, subject, detail)
    }

    /// Adds what to do.
    pub fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }

    /// The human line: `FAIL  kafka.topic shop.orders: does not exist …; fix: create it …`.
    pub fn line(&self) -> String {
        let mut s = format!("{:<4}  {}", self.status.as_str(), self.name);
        if !self.subject.is_empty() {
            let _ = write!(s, " {}", self.subject);
        }
        let _ = write!(s, ": {}", self.detail);
        if let Some(fix) = &self.fix {
            let _ = write!(s, "; fix: {fix}");
        }
        s
    }

    /// One JSON object on one line.
    pub fn json(&self) -> String {
        // A struct of strings and a unit enum always serialises.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// How a run is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// One line per check, then a count.
    #[default]
    Text,
    /// One JSON object per check, one per line.
    Json,
}

/// Everything printed for `checks`.
pub fn render(checks: &[Check], format: Format) -> String {
    let mut out = String::new();
    for c in checks {
        let line = match format {
            Format::Text => c.line(),
            Format::Json => c.json(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    if format == Format::Text {
        let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
        let _ = writeln!(
            out,
            "{} passed, {} warning(s), {} failed, {} skipped",
            count(Status::Pass),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Skip)
        );
    }
    out
}

/// 1 when any check failed, else 0 (warnings and skips alone do not fail a run: a skip always
/// follows the failure that caused it).
pub fn exit_code(checks: &[Check]) -> u8 {
    if checks.iter().any(|c| c.status == Status::Fail) {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_status_check_subject_finding_and_fix() {
        let c = Check::fail("kafka.topic", "shop.orders", "does not exist").fix("create it");
        assert_eq!(
            c.line(),
            "FAIL  kafka.topic shop.orders: does not exist; fix: create it"
        );
        let p = Check::pass("mcm.dns", "", "resolves");
        assert_eq!(p.line(), "PASS  mcm.dns: resolves");
        assert_eq!(Check::warn("a", "b", "c").line(), "WARN  a b: c");
        assert_eq!(Check::skip("a", "b", "c").line(), "SKIP  a b: c");
    }

    #[test]
    fn json_has_one_object_per_check_and_no_fix_key_without_a_fix() {
        let checks = [
            Check::pass("kafka.brokers", "b:9092", "1 broker"),
            Check::fail("mcm.auth", "ACME_TEST", "refused \"key\"").fix("check mcm.api_key"),
        ];
        let text = render(&checks, Format::Json);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        assert_eq!(lines.len(), 2, "no summary line in JSON");
        assert_eq!(lines[0]["status"], "PASS");
        assert_eq!(lines[0]["check"], "kafka.brokers");
        assert!(lines[0].get("fix").is_none());
        assert_eq!(lines[1]["status"], "FAIL");
        assert_eq!(lines[1]["detail"], "refused \"key\"");
        assert_eq!(lines[1]["fix"], "check mcm.api_key");
    }

    #[test]
    fn text_ends_with_the_counts() {
        let checks = [
            Check::pass("a", "", "x"),
            Check::warn("b", "", "x"),
            Check::fail("c", "", "x"),
            Check::skip("d", "", "x"),
        ];
        let text = render(&checks, Format::Text);
        assert_eq!(
            text.lines().last(),
            Some("1 passed, 1 warning(s), 1 failed, 1 skipped")
        );
    }

    #[test]
    fn any_failure_exits_1_and_warnings_alone_exit_0() {
        let pass = Check::pass("a", "", "x");
        let warn = Check::warn("b", "", "x");
        let fail = Check::fail("c", "", "x");
        let skip = Check::skip("d", "", "x");
        assert_eq!(exit_code(&[]), EXIT_OK);
        assert_eq!(exit_code(&[pass.clone(), warn.clone()]), EXIT_OK);
        assert_eq!(exit_code(&[pass, warn, fail, skip.clone()]), EXIT_FAILED);
        assert_eq!(exit_code(&[skip]), EXIT_OK);
    }
}
