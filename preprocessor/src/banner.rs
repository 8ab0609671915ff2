//! The lab banner: when the lab was last verified, on which cluster and tool versions, how long
//! it took and whether it passed; or, honestly, that it has not been verified yet.

use std::fmt::Write as _;
use std::path::Path;

use labbook::report::{LabStatus, Report};

use super::html::{date, duration, escape, tool_version};

/// The banner of one lab, as one line of HTML.
///
/// `report` is the book's run report, if there is one; `chapter` is the chapter's path, used to
/// find the lab in it.
pub fn banner(report: Option<&Report>, chapter: &Path) -> String {
    let Some(report) = report else {
        return unverified("No run of this lab has been recorded yet.");
    };
    let Some(lab) = report.lab(chapter) else {
        return unverified(&format!(
            "The last recorded run ({}) did not include this lab.",
            time(&report.started_at)
        ));
    };
    let (status, word) = match lab.status {
        LabStatus::Passed => ("passed", "Verified"),
        LabStatus::Failed => ("failed", "Failed"),
        LabStatus::Interrupted => ("interrupted", "Interrupted"),
    };
    let verb = match lab.status {
        LabStatus::Passed => "Last verified",
        LabStatus::Failed | LabStatus::Interrupted => "Last run",
    };
    let mut text = format!(
        "{verb} {} in {}",
        time(&report.started_at),
        escape(&duration(lab.duration_ms))
    );
    let _ = match report.backend.as_str() {
        "none" => write!(text, ", without a cluster"),
        "kind" => write!(text, ", on a kind cluster"),
        other => write!(text, ", on cluster backend <code>{}</code>", escape(other)),
    };
    if lab.status == LabStatus::Failed {
        let failed = lab
            .steps
            .iter()
            .filter(|s| s.status == labbook::report::StepStatus::Failed)
            .count();
        if failed > 0 {
            let _ = write!(
                text,
                ": {failed} step{} failed",
                if failed == 1 { "" } else { "s" }
            );
        }
    }
    text.push('.');
    let mut out = format!(
        "<div class=\"labbook-banner\" data-status=\"{status}\"><strong class=\"labbook-banner-status\">{word}</strong> <span class=\"labbook-banner-text\">{text}</span>"
    );
    if !report.tools.is_empty() {
        out.push_str(" <span class=\"labbook-banner-tools\">");
        let tools: Vec<String> = report
            .tools
            .iter()
            .map(|(name, version)| {
                format!(
                    "<span class=\"labbook-tool\">{}</span>",
                    escape(&tool_version(name, version))
                )
            })
            .collect();
        out.push_str(&tools.join(" "));
        out.push_str("</span>");
    }
    out.push_str("</div>");
    out
}

fn unverified(why: &str) -> String {
    format!(
        "<div class=\"labbook-banner\" data-status=\"unverified\"><strong class=\"labbook-banner-status\">Not verified yet</strong> <span class=\"labbook-banner-text\">{why}</span></div>"
    )
}

fn time(rfc3339: &str) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        escape(rfc3339),
        escape(&date(rfc3339))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use labbook::report::{LabReport, StepReport, StepStatus};

    fn report(paths: &[&str]) -> Report {
        Report {
            started_at: "2025-01-31T14:02:03Z".into(),
            backend: "kind".into(),
            tools: [
                (
                    "kind".to_string(),
                    "kind v0.24.0 go1.22.6 linux/amd64".to_string(),
                ),
                ("kubectl".to_string(), "Client Version: v1.31.0".to_string()),
            ]
            .into(),
            labs: paths
                .iter()
                .map(|p| LabReport {
                    path: p.to_string(),
                    title: "T".into(),
                    status: LabStatus::Failed,
                    duration_ms: 192_000,
                    steps: vec![StepReport {
                        id: "verify-1".into(),
                        kind: labbook::StepKind::Verify,
                        line: 3,
                        status: StepStatus::Failed,
                        exit_code: Some(1),
                        duration_ms: 10,
                        output: String::new(),
                        failure: None,
                        diff: None,
                        settle_ms: None,
                    }],
                    warnings: vec![],
                    diagnostics: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn banners_tell_the_state_of_the_lab() {
        let r = report(&["src/lab.md"]);
        let shown = banner(Some(&r), Path::new("/b/src/lab.md"));
        assert!(shown.contains("data-status=\"failed\""), "{shown}");
        assert!(shown.contains("Last run <time datetime=\"2025-01-31T14:02:03Z\">2025-01-31 14:02 UTC</time> in 3 min 12 s, on a kind cluster: 1 step failed."), "{shown}");
        assert!(shown.contains("kind v0.24.0"), "{shown}");
        assert!(shown.contains("kubectl Client Version: v1.31.0"), "{shown}");
        let missing = banner(Some(&r), Path::new("/b/src/other.md"));
        assert!(missing.contains("Not verified yet"), "{missing}");
        assert!(missing.contains("did not include this lab"), "{missing}");
        let mut odd = report(&["src/lab.md"]);
        odd.backend = "kind\n\n# not a heading".into();
        odd.started_at = "2025\r\n\r\n".into();
        odd.tools.insert("a\n\nb".into(), "1\n\n2".into());
        let odd = banner(Some(&odd), Path::new("/b/src/lab.md"));
        assert!(!odd.contains('\n') && !odd.contains('\r'), "{odd}");
        let none = banner(None, Path::new("/b/src/lab.md"));
        assert!(none.contains("Not verified yet"), "{none}");
        for html in [shown, missing, odd, none] {
            assert!(!html.contains('\n'));
        }
    }
}
