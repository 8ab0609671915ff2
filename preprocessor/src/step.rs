//! What the book shows around one runnable block: the badge that says what to do with it, its
//! number and anchor, and what its output should be.
//!
//! Everything returned here is HTML that is already escaped; it only ever goes on a single
//! Markdown line, so that a blank line in a snapshot cannot end the HTML block early.

use labbook::annotation::Expect;
use labbook::model::{Lab, SessionInfo, Step, StepKind};

/// What a check without an accepted snapshot says instead of its expected output: for readers,
/// who never run labbook themselves.
pub const NOT_RECORDED: &str = "No expected output has been recorded for this check yet.";

use super::html::{code, escape};

/// The words on a step's badge: what the reader should do with the block, as HTML.
pub fn badge(lab: &Lab, step: &Step) -> String {
    match step.kind {
        StepKind::Setup => "Set up".into(),
        StepKind::Run => "Run".into(),
        StepKind::Verify => "Check".into(),
        StepKind::WriteFile => match written_file(step) {
            Some(file) => format!("Writes {}", code(&file)),
            None => "Writes a file".into(),
        },
        StepKind::OpenSession => match &step.opens {
            Some(info) => format!("Opens a shell in {}", place(info)),
            None => "Opens a shell".into(),
        },
        StepKind::SessionInput => match session_of(lab, step).and_then(|s| s.opens.as_ref()) {
            Some(info) => format!("Type inside {}", place(info)),
            None => "Type inside the shell opened before".into(),
        },
        // An author's `until=` is what the harness waits for, so it wins over the prose.
        StepKind::Watch => match (&step.annotation.until, &step.stop_hint) {
            (Some(until), _) => format!("Stop with Ctrl+C when you see {}", code(until)),
            (None, Some(hint)) => format!("Stop with Ctrl+C when {}", escape(hint)),
            (None, None) => "Stop with Ctrl+C when you have seen enough".into(),
        },
        StepKind::Background => "Keeps running in the background".into(),
        StepKind::Optional => "Optional".into(),
        StepKind::Troubleshoot => "Only if something failed".into(),
        StepKind::Cleanup => "Always run at the end".into(),
        StepKind::Skip => "Not part of the lab".into(),
        StepKind::Output => "What you should see".into(),
    }
}

/// Where a session's shell runs, in words: "the `debug` pod", "`deploy/web`", "a `alpine`
/// container".
fn place(info: &SessionInfo) -> String {
    match (info.tool.as_str(), &info.target) {
        ("docker", Some(target)) => format!("a {} container", code(target)),
        ("docker", None) => "a container".into(),
        ("ssh", Some(target)) => format!("{} (over ssh)", code(target)),
        ("su" | "sudo", _) => "the login shell opened before".into(),
        (_, Some(target)) if target.contains('/') => code(target),
        (_, Some(target)) => format!("the {} pod", code(target)),
        (_, None) => "a pod".into(),
    }
}

/// The `open-session` step a `session-input` step is typed into.
pub fn session_of<'a>(lab: &'a Lab, step: &Step) -> Option<&'a Step> {
    step.session.as_deref().and_then(|id| lab.step(id))
}

/// The file a `write-file` step writes, as the shell parser saw it.
fn written_file(step: &Step) -> Option<String> {
    step.analysis
        .commands
        .iter()
        .filter(|c| !c.substituted)
        .find_map(|c| c.written_file())
}

/// What the reader is shown under a block about its output.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected<'a> {
    /// Nothing: the step's output is not asserted.
    Nothing,
    /// The output is compared with a snapshot; `None` when none is accepted yet.
    Snapshot(Option<String>),
    /// The output is checked by a rule from the annotation.
    Rule(&'a Expect),
}

/// Whether and how a step's output is asserted.
pub fn expectation(step: &Step) -> Option<&Expect> {
    match &step.annotation.expect {
        Some(expect) => Some(expect),
        None if matches!(step.kind, StepKind::Verify | StepKind::WriteFile) => {
            Some(&Expect::Snapshot)
        }
        None => None,
    }
}

/// The "Expected output" panel, as one line of HTML, or `None` when there is nothing to show.
///
/// `redact` escapes snapshot text and marks its redaction placeholders. The panels' fixed
/// labels ("Expected output", "Expected file content", "Expected result", what a placeholder
/// means, "No expected output has been recorded …") come from the stylesheet, not the page: repeated under every
/// check they would fill the book's search index with the same words and make every page
/// heavier, while the page itself keeps only what differs from step to step.
pub fn expected_panel(expected: &Expected<'_>, redact: &dyn Fn(&str) -> String) -> Option<String> {
    Some(match expected {
        Expected::Nothing => return None,
        Expected::Snapshot(Some(text)) => {
            let body = redact(text);
            let redacted = if body.contains("<var>") {
                " data-redacted"
            } else {
                ""
            };
            format!(
                "<div class=\"labbook-expected\"{redacted}><pre class=\"labbook-expected-body\">{body}</pre></div>"
            )
        }
        // The words stay in the page (not only in the stylesheet) so that every reader, search
        // and screen reader included, is told honestly that nothing was recorded yet.
        Expected::Snapshot(None) => {
            format!("<p class=\"labbook-expected-missing\">{NOT_RECORDED}</p>")
        }
        Expected::Rule(rule) => format!(
            "<div class=\"labbook-expected labbook-expected-rule\">{}</div>",
            rule_words(rule)
        ),
    })
}

/// An expectation rule in words, as HTML.
fn rule_words(rule: &Expect) -> String {
    match rule {
        Expect::Snapshot => "The output recorded by the last run.".into(),
        Expect::Exit { code: 0 } => "It succeeds (exit code 0).".into(),
        Expect::Exit { code: c } => {
            format!(
                "It fails on purpose, with exit code {}.",
                code(&c.to_string())
            )
        }
        Expect::Contains { text } => format!("The output contains {}.", code(text)),
        Expect::Regex { pattern } => {
            format!(
                "The output matches the regular expression {}.",
                code(pattern)
            )
        }
        Expect::Split { shares, tolerance } => {
            let parts: Vec<String> = shares
                .iter()
                .map(|(label, share)| format!("{} about {share}%", code(label)))
                .collect();
            format!(
                "Counts split {}, give or take {tolerance} points: traffic is random, so \
                 exact numbers differ from run to run.",
                parts.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(source: &str) -> Lab {
        Lab::parse("chapter.md", source).expect("fixture parses")
    }

    #[test]
    fn badges_say_what_to_do() {
        let cases: &[(&str, &[&str])] = &[
            (
                "## Lab Setup\n\n```bash\nkind create cluster\n```\n",
                &["Set up"],
            ),
            ("```bash\nkubectl apply -f app.yaml\n```\n", &["Run"]),
            ("## Verify\n\n```bash\nkubectl get pods\n```\n", &["Check"]),
            (
                "```bash\ncat > app.yaml <<'EOF'\na: 1\nEOF\n```\n",
                &["Writes <code>app.yaml</code>"],
            ),
            (
                "```bash\ntee b.yaml <<EOF\na: 1\nEOF\n```\n",
                &["Writes <code>b.yaml</code>"],
            ),
            (
                "```bash\nkubectl run debug --image=busybox --restart=Never -it --rm -- sh\n```\n\nInside the `debug` pod:\n\n```sh\nwget -qO- web\n```\n",
                &[
                    "Opens a shell in the <code>debug</code> pod",
                    "Type inside the <code>debug</code> pod",
                ],
            ),
            (
                "```sh\nkubectl exec -it deploy/web -- sh\n```\n\nInside it:\n\n```sh\nls\n```\n",
                &[
                    "Opens a shell in <code>deploy/web</code>",
                    "Type inside <code>deploy/web</code>",
                ],
            ),
            (
                "```bash\ndocker run -it --rm alpine:3.20\n```\n\nIn the container shell:\n\n```sh\nls\n```\n",
                &[
                    "Opens a shell in a <code>alpine:3.20</code> container",
                    "Type inside a <code>alpine:3.20</code> container",
                ],
            ),
            (
                "```bash\nkubectl exec -it \"po<d>\" -- sh\n```\n",
                &["Opens a shell in the <code>po&lt;d&gt;</code> pod"],
            ),
            (
                "```bash\nkubectl get pods -w\n```\n\nStop watching with Ctrl+C when pods &lt;web&gt; & db are Running.\n",
                &["Stop with Ctrl+C when pods &lt;web&gt; &amp; db are Running"],
            ),
            (
                "<!-- labbook: until=\"rolled out\" -->\n```bash\nkubectl rollout status deploy/web -w\n```\n",
                &["Stop with Ctrl+C when you see <code>rolled out</code>"],
            ),
            (
                "```bash\nkubectl logs -f deploy/web\n```\n",
                &["Stop with Ctrl+C when you have seen enough"],
            ),
            (
                "```bash\nkubectl port-forward svc/web 8080:80 &\n```\n",
                &["Keeps running in the background"],
            ),
            (
                "Optionally, look around:\n\n```bash\nls\n```\n",
                &["Optional"],
            ),
            (
                "## Troubleshooting\n\n```bash\nkubectl describe pods\n```\n",
                &["Only if something failed"],
            ),
            (
                "## Cleanup\n\n```bash\nkind delete cluster\n```\n",
                &["Always run at the end"],
            ),
            (
                "## Next Steps\n\n```bash\nopen next.html\n```\n",
                &["Not part of the lab"],
            ),
        ];
        for (source, expected) in cases {
            let lab = lab(source);
            let badges: Vec<String> = lab.steps.iter().map(|s| badge(&lab, s)).collect();
            assert_eq!(&badges, expected, "{source}");
        }
    }

    #[test]
    fn panels_show_snapshots_rules_or_say_nothing_is_recorded() {
        let lab = lab("## Verify\n\n```bash\nkubectl get pods\n```\n\n\
             <!-- labbook: expect=contains:\"<ok>\" -->\n```bash\ncurl web\n```\n\n\
             <!-- labbook: expect=split:v1=90,v2=10 -->\n```bash\nfor i in 1 2; do curl r; done\n```\n\n\
             <!-- labbook: expect=exit:3 -->\n```bash\nfalse\n```\n");
        let mark = |s: &str| super::super::html::escape_pre(s).replace("[age]", "<var>[age]</var>");
        let shown = expected_panel(
            &Expected::Snapshot(Some("<script>alert(1)</script>\n\nweb   [age]".into())),
            &mark,
        )
        .expect("panel");
        assert_eq!(
            shown,
            "<div class=\"labbook-expected\" data-redacted><pre class=\"labbook-expected-body\">\
             &lt;script&gt;alert(1)&lt;/script&gt;&#10;&#10;web   <var>[age]</var></pre></div>"
        );
        let plain = expected_panel(&Expected::Snapshot(Some("ok".into())), &mark).expect("panel");
        assert_eq!(
            plain,
            "<div class=\"labbook-expected\"><pre class=\"labbook-expected-body\">ok</pre></div>"
        );
        let missing = expected_panel(&Expected::Snapshot(None), &mark).expect("panel");
        assert_eq!(
            missing,
            format!("<p class=\"labbook-expected-missing\">{NOT_RECORDED}</p>")
        );
        let rules: Vec<String> = lab.steps[1..]
            .iter()
            .map(|s| {
                let rule = expectation(s).expect("rule");
                expected_panel(&Expected::Rule(rule), &mark).expect("panel")
            })
            .collect();
        assert!(
            rules[0].contains("The output contains <code>&lt;ok&gt;</code>."),
            "{}",
            rules[0]
        );
        assert!(
            rules[1].contains(
                "<code>v1</code> about 90%, <code>v2</code> about 10%, give or take 15 points"
            ),
            "{}",
            rules[1]
        );
        assert!(
            rules[2].contains("exit code <code>3</code>"),
            "{}",
            rules[2]
        );
        assert!(rules.iter().all(|r| !r.contains('\n')));
        assert_eq!(expected_panel(&Expected::Nothing, &mark), None);
    }

    #[test]
    fn only_checked_steps_have_expectations() {
        let lab = lab(
            "```bash\nls\n```\n\n## Verify\n\n```bash\nls\n```\n\n```bash\ncat > f <<EOF\nx\nEOF\n```\n\n\
             <!-- labbook: kind=run expect=snapshot -->\n```bash\nls\n```\n",
        );
        let got: Vec<Option<&Expect>> = lab.steps.iter().map(expectation).collect();
        assert_eq!(
            got,
            [
                None,
                Some(&Expect::Snapshot),
                Some(&Expect::Snapshot),
                Some(&Expect::Snapshot)
            ]
        );
    }
}
