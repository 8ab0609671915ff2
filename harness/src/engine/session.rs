//! Interactive sessions without a TTY: rewriting the opening command and splitting the transcript.
//!
//! A reader types `kubectl run debug -it … -- sh`, then types the following blocks inside the pod.
//! The harness has no terminal to offer, so it drops `-t` from the opening command (keeping `-i`,
//! so that stdin is attached) and feeds the concatenated `session-input` blocks on stdin. The
//! session ends when the input does. Between two input blocks it types a marker command, so that
//! the transcript can be split back into one output per input block.
//!
//! Each input step is then reported with the session's status and its part of the transcript
//! ([`judge_input`]).

use std::path::PathBuf;
use std::time::Duration;

use labbook::Step;
use labbook::report::StepStatus;

use super::judge::{Judge, Judgement};
use super::terminal::{Ending, Outcome};

/// The code of an `open-session` block with `-t`/`--tty` dropped from the command on Markdown
/// line `line` (and its continuation lines), up to a `--` that starts the remote command.
pub fn drop_tty(code: &str, code_lines: &[usize], line: usize) -> String {
    let mut out = Vec::new();
    let mut rewriting = false;
    let mut done = false;
    for (i, text) in code.split('\n').enumerate() {
        let markdown_line = code_lines.get(i).copied().unwrap_or(0);
        if !done && markdown_line == line {
            rewriting = true;
        }
        if rewriting && !done {
            let (rewritten, reached_end) = rewrite_line(text);
            out.push(rewritten);
            if reached_end || !text.trim_end().ends_with('\\') {
                done = true;
            }
        } else {
            out.push(text.to_string());
        }
    }
    out.join("\n")
}

/// Rewrites the flags of one line; returns whether `--` (the end of the flags) was reached.
fn rewrite_line(line: &str) -> (String, bool) {
    let mut out = String::with_capacity(line.len());
    let mut reached_end = false;
    let mut rest = line;
    while !rest.is_empty() {
        let space_len = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..space_len]);
        rest = &rest[space_len..];
        let word_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..word_len];
        rest = &rest[word_len..];
        if reached_end || word.is_empty() {
            out.push_str(word);
            continue;
        }
        if word == "--" {
            reached_end = true;
            out.push_str(word);
            continue;
        }
        match rewrite_flag(word) {
            Some(replacement) => out.push_str(&replacement),
            None => out.push_str(word),
        }
    }
    // Dropping a flag may leave a double space; that is harmless for the shell.
    (out, reached_end)
}

/// The replacement of one word, or `None` to keep it. `-t` becomes `-i` (stdin is what the
/// session needs); `-it`/`-ti` become `-i`; `--tty` (any value) is dropped (kubectl and docker
/// spell the stdin flag differently, and authors who write `--tty` write `--stdin`/`-i` too).
fn rewrite_flag(word: &str) -> Option<String> {
    if word == "--tty" || word.starts_with("--tty=") {
        return Some(String::new());
    }
    let letters = word.strip_prefix('-')?;
    if letters.is_empty()
        || letters.starts_with('-')
        || !letters.contains('t')
        || !letters.chars().all(|c| matches!(c, 'i' | 't' | 'q' | 'd'))
    {
        return None;
    }
    let mut kept: String = letters.chars().filter(|c| *c != 't').collect();
    if !kept.contains('i') {
        kept.push('i');
    }
    Some(format!("-{kept}"))
}

/// The marker typed between two input blocks: a plain `echo`, which every shell has.
pub fn marker(token: &str, index: usize) -> String {
    format!("::labbook-session-{token}-{index}::")
}

/// The text fed on the session's stdin: each input block in order, with a marker command before
/// every block but the first.
pub fn input(token: &str, blocks: &[&str]) -> String {
    let mut text = String::new();
    for (i, block) in blocks.iter().enumerate() {
        if i > 0 {
            text.push_str(&format!("echo '{}'\n", marker(token, i)));
        }
        text.push_str(block);
        if !block.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

/// Splits a session transcript into one output per input block (`None` for blocks whose marker
/// never appeared: the session had ended before they were typed). The markers are removed.
pub fn split(token: &str, transcript: &str, blocks: usize) -> Vec<Option<String>> {
    let mut parts: Vec<Option<String>> = vec![None; blocks];
    if blocks == 0 {
        return parts;
    }
    let mut current = 0;
    let mut text = String::new();
    for line in transcript.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        let next = (current + 1..blocks).find(|i| bare == marker(token, *i));
        match next {
            Some(i) => {
                parts[current] = Some(std::mem::take(&mut text));
                current = i;
            }
            None => text.push_str(line),
        }
    }
    parts[current] = Some(text);
    parts
}

/// The transcript without the markers, for the `open-session` step's own report.
pub fn strip_markers(token: &str, transcript: &str) -> String {
    let prefix = format!("::labbook-session-{token}-");
    transcript
        .split_inclusive('\n')
        .filter(|line| !line.starts_with(&prefix))
        .collect()
}

/// The outcome of a session, for its input steps.
pub struct SessionRun {
    /// The status of its open-session step.
    pub status: StepStatus,
    /// That step's failure.
    pub failure: Option<String>,
    /// The output of each input block, `None` when the session ended before it was typed.
    pub parts: Vec<Option<String>>,
}

/// The judgement of a session-input step, and the output reported for it, from its session's
/// run and its part of the transcript.
pub fn judge_input(
    judge: &Judge,
    step: &Step,
    session_id: &str,
    session: &SessionRun,
    part: Option<String>,
) -> (String, Judgement) {
    match (&part, session.status) {
        (None, StepStatus::Passed | StepStatus::Stopped) => (
            String::new(),
            Judgement::failed(
                StepStatus::Failed,
                None,
                format!(
                    "the session `{session_id}` had ended before this block was typed (did an \
                     earlier block `exit`?)"
                ),
            ),
        ),
        (_, StepStatus::Passed | StepStatus::Stopped) => {
            let output = part.unwrap_or_default();
            let outcome = Outcome {
                number: 0,
                output: output.clone(),
                truncated: false,
                status: Some(0),
                failures: Vec::new(),
                ending: Ending::Finished,
                duration: Duration::ZERO,
                cwd: PathBuf::new(),
                folders: Vec::new(),
            };
            (output, judge.expectation(step, &outcome, None))
        }
        (_, status) => (
            part.unwrap_or_default(),
            Judgement::failed(
                status,
                None,
                format!(
                    "its session `{session_id}` failed: {}",
                    session
                        .failure
                        .as_deref()
                        .unwrap_or("see the open-session step")
                ),
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tty_flags_are_dropped_before_the_remote_command() {
        let cases = [
            (
                "kubectl run debug --image=busybox:1.36 --restart=Never -it --rm -- sh",
                "kubectl run debug --image=busybox:1.36 --restart=Never -i --rm -- sh",
            ),
            (
                "kubectl exec -ti deploy/web -c app -- /bin/sh",
                "kubectl exec -i deploy/web -c app -- /bin/sh",
            ),
            (
                "kubectl exec -t -i web -- sh -c 'ls -t'",
                "kubectl exec -i -i web -- sh -c 'ls -t'",
            ),
            (
                "docker run --tty --interactive --rm alpine:3.20",
                "docker run  --interactive --rm alpine:3.20",
            ),
            ("docker run -itd alpine", "docker run -id alpine"),
            (
                "kubectl run x --image=y -i --rm -- sh",
                "kubectl run x --image=y -i --rm -- sh",
            ),
            ("kubectl get pods -o wide", "kubectl get pods -o wide"),
        ];
        for (input, expected) in cases {
            assert_eq!(drop_tty(input, &[7], 7), expected, "{input}");
        }
    }

    #[test]
    fn only_the_session_command_and_its_continuations_are_rewritten() {
        let code = "kubectl get pods -t\nkubectl run a -it \\\n  --rm -t -- sh\necho -t";
        let rewritten = drop_tty(code, &[10, 11, 12, 13], 11);
        assert_eq!(
            rewritten,
            "kubectl get pods -t\nkubectl run a -i \\\n  --rm -i -- sh\necho -t"
        );
    }

    #[test]
    fn transcripts_split_back_into_blocks() {
        let blocks = ["hostname\n", "ls\nexit"];
        let stdin = input("t0", &blocks);
        assert_eq!(
            stdin,
            "hostname\necho '::labbook-session-t0-1::'\nls\nexit\n"
        );
        let transcript = "banner\npod-a\n::labbook-session-t0-1::\nfile1\nfile2\n";
        assert_eq!(
            split("t0", transcript, 2),
            vec![
                Some("banner\npod-a\n".to_string()),
                Some("file1\nfile2\n".to_string())
            ]
        );
        assert_eq!(
            split("t0", "pod-a\n", 2),
            vec![Some("pod-a\n".to_string()), None]
        );
        assert_eq!(
            strip_markers("t0", transcript),
            "banner\npod-a\nfile1\nfile2\n"
        );
    }
}
