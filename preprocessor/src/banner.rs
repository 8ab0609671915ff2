//! The lab banner: when the lab was last verified, on which cluster and tool versions, how long
//! it took and whether it passed; or, honestly, that it has not been verified yet.

use std::fmt::Write as _;
use std::path::Path;

use labbook::report::{LabReport, LabStatus, Report};

use super::html::{date, duration, escape, tool_version};

/// The banner of one lab, as one line of HTML.
///
/// `report` is the book's run report, if there is one; `chapter` is the chapter's path, used to
/// find the lab in it.
pub fn banner(report: Option<&Report>, chapter: &Path) -> String {
    let Some(report) = report else {
        return unverified("No run of this lab has been recorded yet.");
    };
    let runs = report.lab_runs(chapter);
    let Some(lab) = headline(&runs) else {
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
    if runs.iter().any(|r| !r.versions.is_empty()) {
        out.push_str(&matrix(&runs));
    }
    out.push_str("</div>");
    out
}

/// The run the banner's headline speaks of: with several (a merged version matrix), a failed
/// one first, then an interrupted one, so that "Verified" is never said over a failure.
fn headline<'a>(runs: &[&'a LabReport]) -> Option<&'a LabReport> {
    [LabStatus::Failed, LabStatus::Interrupted]
        .iter()
        .find_map(|status| runs.iter().find(|r| r.status == *status))
        .or(runs.last())
        .copied()
}

/// The versions the lab ran with, one row per combination, with the result in words (not only
/// colour): `Kubernetes v1.33.1 | Istio 1.27.1 | ✓ passed`.
fn matrix(runs: &[&LabReport]) -> String {
    let mut keys: Vec<&str> = Vec::new();
    for run in runs {
        for key in run.versions.keys() {
            if !keys.contains(&key.as_str()) {
                keys.push(key);
            }
        }
    }
    // Kubernetes first, then Istio, then the rest by name (BTreeMap order).
    keys.sort_by_key(|k| match *k {
        "kubernetes" => (0, *k),
        "istio" => (1, *k),
        _ => (2, *k),
    });
    let label = |key: &str| match key {
        "kubernetes" => "Kubernetes".to_string(),
        "istio" => "Istio".to_string(),
        other => escape(other),
    };
    let mut out = String::from("<table class=\"labbook-versions\"><thead><tr>");
    for key in &keys {
        let _ = write!(out, "<th>{}</th>", label(key));
    }
    out.push_str("<th>Result</th></tr></thead><tbody>");
    for run in runs {
        let (status, result) = match run.status {
            LabStatus::Passed => ("passed", "\u{2713} passed"),
            LabStatus::Failed => ("failed", "\u{2717} failed"),
            LabStatus::Interrupted => ("interrupted", "interrupted"),
        };
        let _ = write!(out, "<tr data-status=\"{status}\">");
        for key in &keys {
            let value = run.versions.get(*key).map_or("-", String::as_str);
            let _ = write!(out, "<td>{}</td>", escape(value));
        }
        let _ = write!(out, "<td>{result}</td></tr>");
    }
    out.push_str("</tbody></table>");
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
    use labbook::report::{StepReport, StepStatus};

    fn report(paths: &[&str]) -> Report {
        Report {
            version: labbook::report::CONTRACT_VERSION,
            versions: Default::default(),
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
                        printed: Vec::new(),
                    }],
                    warnings: vec![],
                    diagnostics: vec![],
                    versions: Default::default(),
                    images: None,
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

    #[test]
    fn a_version_matrix_is_a_table_with_words_and_the_failure_leads() {
        let mut r = report(&["src/lab.md", "src/lab.md"]);
        r.labs[0].status = LabStatus::Passed;
        r.labs[0].versions = [
            ("kubernetes".to_string(), "v1.33.1".to_string()),
            ("istio".to_string(), "1.26.2".to_string()),
        ]
        .into();
        r.labs[1].versions = [
            ("kubernetes".to_string(), "v1.33.1".to_string()),
            ("istio".to_string(), "<1.27>".to_string()),
        ]
        .into();
        let shown = banner(Some(&r), Path::new("/b/src/lab.md"));
        // The headline speaks of the failed combination, not of the one that passed.
        assert!(
            shown.starts_with("<div class=\"labbook-banner\" data-status=\"failed\">"),
            "{shown}"
        );
        let table = shown.split("<table").nth(1).expect("a table");
        assert_eq!(
            table,
            " class=\"labbook-versions\"><thead><tr><th>Kubernetes</th><th>Istio</th><th>Result</th></tr></thead><tbody><tr data-status=\"passed\"><td>v1.33.1</td><td>1.26.2</td><td>\u{2713} passed</td></tr><tr data-status=\"failed\"><td>v1.33.1</td><td>&lt;1.27&gt;</td><td>\u{2717} failed</td></tr></tbody></table></div>"
        );
        // A report without versions keeps the banner it always had.
        let plain = banner(Some(&report(&["src/lab.md"])), Path::new("/b/src/lab.md"));
        assert!(!plain.contains("<table"), "{plain}");
    }
}
