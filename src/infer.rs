//! Kind inference without annotations: from the heading path, the cue and the commands.
//!
//! The order of precedence is what a careful reader applies: a section that is clearly not part of
//! the main flow (Next Steps, Troubleshooting, Cleanup) wins; then what the prose says (typed inside
//! a pod, optional); then what the commands do (open a shell, never end, keep running, write a
//! file), the strongest first; then the section kind (Verify, Setup); and otherwise it is a plain run.

use std::sync::LazyLock;

use regex::Regex;

use crate::kubectl::Invocation;
use crate::model::{Dialect, Reason, SessionInfo, StepKind};
use crate::shell::{Analysis, Command};
use crate::text::Caseless;

/// The sections that decide a kind on their own, in precedence order.
const DOMINANT_SECTIONS: [(StepKind, &str); 3] = [
    (
        StepKind::Skip,
        r"^\s*(next steps?|what'?s next|further reading)\b",
    ),
    (StepKind::Troubleshoot, r"\btroubleshoot"),
    (
        StepKind::Cleanup,
        r"^\s*(clean\s*-?\s*up|tear\s*-?\s*down)\b",
    ),
];

/// The sections that apply when the commands say nothing stronger; the deepest heading decides.
const WEAK_SECTIONS: [(StepKind, &str); 3] = [
    (StepKind::Optional, r"\(\s*optional\s*\)|^\s*optional\b"),
    (StepKind::Verify, r"^\s*(verify|verification)\b"),
    (
        StepKind::Setup,
        r"^\s*((lab|environment|cluster)\s+)?set\s*-?\s*up\b|^\s*prerequisites\b|\blab setup\b",
    ),
];

static DOMINANT: LazyLock<Vec<(StepKind, Caseless)>> =
    LazyLock::new(|| compile(&DOMINANT_SECTIONS));
static WEAK: LazyLock<Vec<(StepKind, Caseless)>> = LazyLock::new(|| compile(&WEAK_SECTIONS));

fn compile(table: &[(StepKind, &str)]) -> Vec<(StepKind, Caseless)> {
    table
        .iter()
        .map(|(kind, pattern)| (*kind, Caseless::new(pattern)))
        .collect()
}

/// A cue saying that the block is typed inside a pod or container shell (or on the host a session
/// logged in to).
static SESSION_CUE: LazyLock<Caseless> = LazyLock::new(|| {
    Caseless::new(
        r"^\s*(now\s+|then\s+|from\s+)?inside\b|\b(inside|within|in)\s+(the|this|that|your)\s+([\w-]+\s+){0,2}(pod|container|shell|session|generator|prompt)\b|\bon\s+the\s+(node|bastion|host|vm|jump\s*box|remote\s+machine)\b|^\s*then\b[^.]*\brun\b",
    )
});

/// A cue saying that the block is optional.
static OPTIONAL_CUE: LazyLock<Caseless> = LazyLock::new(|| {
    Caseless::new(
        r"\b(optional(ly)?|alternative(ly)?|if you (want|like|wish|prefer)|if you('re| are) (unsure|not sure))\b",
    )
});

/// A cue saying that the block is for when something went wrong.
static TROUBLE_CUE: LazyLock<Caseless> = LazyLock::new(|| {
    Caseless::new(
        r"\b(in case|if) you (run into|hit|have|see|get) (any )?(problems?|issues?|trouble|errors?)\b|\bif (something|anything|it) (goes wrong|fails)\b",
    )
});

/// Prose that tells the reader when to press Ctrl+C.
static STOP_HINT: LazyLock<Caseless> = LazyLock::new(|| {
    Caseless::new(r"ctrl\s*\+?\s*-?c\b[^.]*?\b(when|once|after|until|as soon as)\s+([^.\n]+)")
});

/// The index (in the heading path) and kind of the section that decides, if any.
pub fn section_kind(heading: &[String], dominant: bool) -> Option<(StepKind, String)> {
    if dominant {
        for (kind, pattern) in DOMINANT.iter() {
            if let Some(h) = heading.iter().find(|h| pattern.is_match(&plain_heading(h))) {
                return Some((*kind, h.clone()));
            }
        }
        return None;
    }
    for h in heading.iter().rev() {
        for (kind, pattern) in WEAK.iter() {
            if pattern.is_match(&plain_heading(h)) {
                return Some((*kind, h.clone()));
            }
        }
    }
    None
}

/// Whether the cue says the block is typed into a pod shell; returns the words that say so.
pub(crate) fn session_cue(cue: &str) -> Option<String> {
    SESSION_CUE.is_match(cue).then(|| quote_cue(cue))
}

/// The cue as shown in a reason: its first sentence, cut to a readable length.
fn quote_cue(cue: &str) -> String {
    let sentence = cue
        .split_inclusive(['.', ':', '!', '?'])
        .next()
        .unwrap_or(cue)
        .trim();
    if sentence.chars().count() > 60 {
        format!("{}…", sentence.chars().take(60).collect::<String>())
    } else {
        sentence.to_string()
    }
}

/// Whether the cue says the block is optional; returns the words that say so.
pub(crate) fn optional_cue(cue: &str) -> Option<String> {
    OPTIONAL_CUE.is_match(cue).then(|| quote_cue(cue))
}

/// Whether the cue says the block is only for when something went wrong.
pub(crate) fn trouble_cue(cue: &str) -> Option<String> {
    TROUBLE_CUE.is_match(cue).then(|| quote_cue(cue))
}

/// A heading as read for its kind: without emoji, `:shortcode:` icons and leading symbols, so that
/// `:white_check_mark: Verify` and `✅ Verify` read as `Verify`.
fn plain_heading(heading: &str) -> std::borrow::Cow<'_, str> {
    static ICON: LazyLock<Regex> = LazyLock::new(|| crate::text::static_regex(r":[a-z0-9_+-]+:"));
    let without = ICON.replace_all(heading, "");
    let trimmed = without.trim_start_matches(|c: char| !c.is_alphanumeric() && c != '(');
    if trimmed.len() == heading.len() {
        std::borrow::Cow::Borrowed(heading)
    } else {
        std::borrow::Cow::Owned(trimmed.to_string())
    }
}

/// What the prose says to wait for before stopping a watch.
pub(crate) fn stop_hint(prose: &str) -> Option<String> {
    STOP_HINT
        .group(prose, 2)
        .map(|words| words.trim().to_string())
}

/// The strongest kind the commands of a block imply, with the reason and any session it opens.
pub(crate) fn command_kind(analysis: &Analysis) -> Option<(StepKind, Reason, Option<SessionInfo>)> {
    let top = || analysis.commands.iter().filter(|c| !c.substituted);
    if let Some((command, session)) = top().find_map(|c| open_session(c).map(|s| (c, s))) {
        let what = match &session.target {
            Some(target) => format!("opens a {} shell in `{target}`", session.dialect),
            None => format!("opens a {} shell", session.dialect),
        };
        return Some((
            StepKind::OpenSession,
            Reason::Command {
                what,
                line: command.line,
            },
            Some(session),
        ));
    }
    if let Some((command, why)) = top().find_map(|c| never_ends(c).map(|w| (c, w))) {
        return Some((
            StepKind::Watch,
            Reason::Command {
                what: format!("never ends: {why}"),
                line: command.line,
            },
            None,
        ));
    }
    if let Some(line) = analysis.endless_loops.first() {
        return Some((
            StepKind::Watch,
            Reason::Command {
                what: "never ends: an endless `while true` loop".into(),
                line: *line,
            },
            None,
        ));
    }
    if let Some(command) = top().find(|c| c.background) {
        return Some((
            StepKind::Background,
            Reason::Command {
                what: format!(
                    "keeps running in the background: `{} … &`",
                    command.program()
                ),
                line: command.line,
            },
            None,
        ));
    }
    if let Some((command, file)) = top().find_map(|c| c.written_file().map(|f| (c, f))) {
        return Some((
            StepKind::WriteFile,
            Reason::Command {
                what: format!("writes `{file}` from a heredoc"),
                line: command.line,
            },
            None,
        ));
    }
    None
}

/// Whether a command line after `--` (or a container's default) is an interactive shell.
fn interactive_shell(command: &[String]) -> Option<Option<&String>> {
    match command {
        [] => Some(None),
        [shell, rest @ ..] => {
            Dialect::from_shell(shell)?;
            let scripted = rest.iter().any(|a| {
                a == "-c"
                    || (a.starts_with('-') && !a.starts_with("--") && a.contains('c'))
                    || !a.starts_with('-')
            });
            (!scripted).then_some(Some(shell))
        }
    }
}

fn dialect_for(shell: Option<&String>, image: Option<&str>) -> Dialect {
    if let Some(d) = shell.and_then(|s| Dialect::from_shell(s)) {
        return d;
    }
    // Without an explicit shell the image's default runs; most small images only have sh.
    match image {
        Some(i) if i.contains("netshoot") || i.contains("ubuntu") || i.contains("debian") => {
            Dialect::Bash
        }
        _ => Dialect::Sh,
    }
}

/// The session a command opens: `kubectl run|exec|debug|attach -it … -- sh`, `docker run -it …`.
pub(crate) fn open_session(command: &Command) -> Option<SessionInfo> {
    if let Some(k) = Invocation::parse(command) {
        if !matches!(k.sub, "run" | "exec" | "debug" | "attach") || !k.has(Some('i'), "--stdin") {
            return None;
        }
        let image = k.flag(&["--image"]).map(str::to_string);
        let shell = if k.sub == "attach" {
            None
        } else {
            interactive_shell(k.after)?
        };
        if k.sub == "exec" && k.after.is_empty() {
            return None;
        }
        let restart = k.flag(&["--restart"]);
        return Some(SessionInfo {
            tool: "kubectl".into(),
            target: k.positionals.first().map(|s| s.to_string()),
            dialect: dialect_for(shell, image.as_deref()),
            shell: shell.cloned(),
            image,
            remove: k.has(None, "--rm"),
            restart_never: restart.is_some_and(|r| r.eq_ignore_ascii_case("never")),
            line: command.line,
        });
    }
    if let Some(session) = login_session(command) {
        return Some(session);
    }
    let docker_sub = command.args().first().map(String::as_str);
    if command.program() == "docker" && matches!(docker_sub, Some("run" | "exec")) {
        let exec = docker_sub == Some("exec");
        let args = &command.args()[1..];
        let interactive = args
            .iter()
            .take_while(|a| a.starts_with('-'))
            .any(|a| a == "--interactive" || (!a.starts_with("--") && a.contains('i')));
        if !interactive {
            return None;
        }
        let mut i = 0;
        while i < args.len() && args[i].starts_with('-') {
            let takes_value = matches!(
                args[i].as_str(),
                "--name"
                    | "-e"
                    | "--env"
                    | "-v"
                    | "--volume"
                    | "-p"
                    | "--publish"
                    | "--network"
                    | "-w"
                    | "--workdir"
                    | "--entrypoint"
                    | "-u"
                    | "--user"
                    | "--platform"
            );
            i += if takes_value { 2 } else { 1 };
        }
        let target = args.get(i)?.clone();
        let shell = interactive_shell(&args[i + 1..])?;
        if exec && shell.is_none() {
            // `docker exec -it ctr` without a command is an error, not a shell.
            return None;
        }
        let image = (!exec).then(|| target.clone());
        return Some(SessionInfo {
            tool: "docker".into(),
            target: Some(target),
            dialect: dialect_for(shell, image.as_deref()),
            shell: shell.cloned(),
            image,
            remove: args.iter().any(|a| a == "--rm"),
            restart_never: true,
            line: command.line,
        });
    }
    None
}

/// A login shell on another host or as another user: `ssh host` with no remote command, `su -`,
/// `sudo -i`, `sudo -s`, `sudo su -`.
fn login_session(command: &Command) -> Option<SessionInfo> {
    let args = command.args();
    let session = |tool: &str, target: Option<String>| SessionInfo {
        tool: tool.into(),
        target,
        dialect: Dialect::Bash,
        shell: None,
        image: None,
        remove: false,
        restart_never: true,
        line: command.line,
    };
    match command.program() {
        "ssh" => {
            // Options that take a value, from ssh(1).
            const VALUED: &str = "BbcDEeFIiJLlmOoPpQRSWw";
            let mut i = 0;
            while i < args.len() && args[i].starts_with('-') {
                let flag = &args[i][1..];
                let takes_value = flag.len() == 1 && VALUED.contains(flag);
                i += if takes_value { 2 } else { 1 };
            }
            let host = args.get(i)?;
            // `-N` (no command) and `-f` (background) are tunnels, not shells.
            let tunnel = args[..i].iter().any(|a| a == "-N" || a == "-f");
            (args.len() == i + 1 && !tunnel).then(|| session("ssh", Some(host.clone())))
        }
        "su" => {
            let scripted = args.iter().any(|a| a == "-c" || a == "--command");
            let user = args.iter().find(|a| !a.starts_with('-')).cloned();
            (!scripted && args.len() <= 2).then(|| session("su", user))
        }
        "sudo" => match args
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["-i"] | ["-s"] | ["su"] | ["su", "-"] | ["-i", "-u", _] | ["-u", _, "-i"] => {
                Some(session("sudo", None))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Why a command never ends by itself, if it does not.
pub(crate) fn never_ends(command: &Command) -> Option<String> {
    if command.background {
        return None;
    }
    let args = command.args();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if let Some(k) = Invocation::parse(command) {
        let watch = k.has(Some('w'), "--watch") || k.has(None, "--watch-only");
        return match k.sub {
            "port-forward" | "proxy" => Some(format!("`kubectl {}` keeps serving", k.sub)),
            "logs" if k.has(Some('f'), "--follow") => {
                Some("`kubectl logs -f` follows the log".into())
            }
            "get" | "events" | "describe" | "top" if watch => {
                Some(format!("`kubectl {} --watch` streams changes", k.sub))
            }
            _ => None,
        };
    }
    match command.program() {
        "watch" => Some("`watch` repeats until stopped".into()),
        "tail" | "journalctl" if has("-f") || has("-F") || has("--follow") => {
            Some(format!("`{} -f` follows the file", command.program()))
        }
        "istioctl"
            if args
                .first()
                .is_some_and(|a| matches!(a.as_str(), "dashboard" | "d" | "dash")) =>
        {
            Some("`istioctl dashboard` keeps a port-forward open".into())
        }
        "ping" if !args.iter().any(|a| a.starts_with("-c")) => {
            Some("`ping` without -c runs forever".into())
        }
        "sleep" if has("infinity") => Some("`sleep infinity`".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::analyze;

    fn kind_of(code: &str) -> Option<StepKind> {
        let lines: Vec<usize> = (1..=code.lines().count()).collect();
        command_kind(&analyze(code, &lines)).map(|(k, _, _)| k)
    }

    #[test]
    fn command_kinds() {
        let cases: &[(&str, Option<StepKind>)] = &[
            ("kubectl get pods", None),
            (
                "kubectl run debug --image=nicolaka/netshoot -it --rm -- bash",
                Some(StepKind::OpenSession),
            ),
            (
                "kubectl run tg --image=curlimages/curl --restart=Never --rm -it -- sh",
                Some(StepKind::OpenSession),
            ),
            (
                "kubectl exec -it deploy/web -c app -- /bin/sh",
                Some(StepKind::OpenSession),
            ),
            (
                "kubectl -n demo exec -ti web-0 -- bash -l",
                Some(StepKind::OpenSession),
            ),
            ("docker run -it --rm alpine", Some(StepKind::OpenSession)),
            (
                "kubectl run test --image=curlimages/curl --rm -it -- curl http://reviews/",
                None,
            ),
            (
                "kubectl run t --image=fortio/fortio --rm -it -- load -qps 10 http://x/",
                None,
            ),
            ("kubectl exec -it web -- sh -c 'echo hi'", None),
            ("kubectl exec deploy/web -- curl -s http://x/", None),
            (
                "kubectl set image deploy/b hello=nginx\nkubectl get pods -l app=b -w",
                Some(StepKind::Watch),
            ),
            ("kubectl get pods --watch", Some(StepKind::Watch)),
            ("kubectl logs -f deploy/web", Some(StepKind::Watch)),
            ("kubectl logs deploy/web --follow", Some(StepKind::Watch)),
            (
                "kubectl -n istio-system port-forward svc/kiali 20001",
                Some(StepKind::Watch),
            ),
            ("watch kubectl get pods", Some(StepKind::Watch)),
            ("istioctl dashboard kiali", Some(StepKind::Watch)),
            (
                "while true; do curl -s x; sleep 1; done",
                Some(StepKind::Watch),
            ),
            (
                "kubectl port-forward svc/kiali 20001 &",
                Some(StepKind::Background),
            ),
            ("cat > a.md <<EOF\nhi\nEOF", Some(StepKind::WriteFile)),
            ("cat >> a.md << 'EOF'\nhi\nEOF", Some(StepKind::WriteFile)),
            ("tee b.yaml <<EOF\nx: 1\nEOF", Some(StepKind::WriteFile)),
            ("kubectl apply -f - <<EOF\nkind: Pod\nEOF", None),
            ("kubectl rollout status deploy/web", None),
            (
                "kubectl run lg --image=busybox --restart=Never -- /bin/sh -c \"while true; do wget -q x; done\"",
                None,
            ),
        ];
        for (code, expected) in cases {
            assert_eq!(kind_of(code), *expected, "{code}");
        }
    }

    #[test]
    fn sessions_know_their_shell_and_target() {
        let code = "kubectl run traffic --image=curlimages/curl --restart=Never --rm -it -- sh";
        let analysis = analyze(code, &[7]);
        let session = open_session(&analysis.commands[0]).expect("session");
        assert_eq!(session.dialect, Dialect::Sh);
        assert_eq!(session.target.as_deref(), Some("traffic"));
        assert_eq!(session.image.as_deref(), Some("curlimages/curl"));
        assert!(session.remove && session.restart_never);
        assert_eq!(session.line, 7);
        let bash = analyze(
            "kubectl run debug --image=nicolaka/netshoot -it --rm -- bash",
            &[1],
        );
        let session = open_session(&bash.commands[0]).expect("session");
        assert_eq!(session.dialect, Dialect::Bash);
        assert!(!session.restart_never);
    }

    /// The tool and the target of a session, or `None` when a command opens no session.
    type Session<'a> = Option<(&'a str, Option<&'a str>)>;

    #[test]
    fn sessions_beyond_kubectl() {
        let cases: &[(&str, Session)] = &[
            ("docker exec -it web sh", Some(("docker", Some("web")))),
            (
                "docker exec -it -u root web bash",
                Some(("docker", Some("web"))),
            ),
            ("docker exec -it web", None),
            ("docker exec web ls", None),
            (
                "kubectl debug -it node/kind-worker --image=busybox",
                Some(("kubectl", Some("node/kind-worker"))),
            ),
            ("kubectl attach -it web", Some(("kubectl", Some("web")))),
            ("ssh bastion", Some(("ssh", Some("bastion")))),
            (
                "ssh -i key.pem ubuntu@10.0.0.5",
                Some(("ssh", Some("ubuntu@10.0.0.5"))),
            ),
            ("ssh bastion uptime", None),
            ("ssh -N -L 8080:web:80 bastion", None),
            ("su -", Some(("su", None))),
            ("su - admin", Some(("su", Some("admin")))),
            ("su -c whoami", None),
            ("sudo -i", Some(("sudo", None))),
            ("sudo su -", Some(("sudo", None))),
            ("sudo apt-get update", None),
        ];
        for (code, expected) in cases {
            let analysis = analyze(code, &[1]);
            let found = open_session(&analysis.commands[0]);
            let found = found
                .as_ref()
                .map(|s| (s.tool.as_str(), s.target.as_deref()));
            assert_eq!(found, *expected, "{code}");
        }
    }

    #[test]
    fn headings_with_icons_and_optional() {
        let heading = |h: &str| vec![h.to_string()];
        let cases: &[(&str, bool, Option<StepKind>)] = &[
            (":white_check_mark: Verify", false, Some(StepKind::Verify)),
            ("✅ Verify the rollout", false, Some(StepKind::Verify)),
            ("🧹 Clean up", true, Some(StepKind::Cleanup)),
            ("Clean up", true, Some(StepKind::Cleanup)),
            (
                "Use the tone analyzer (Optional)",
                false,
                Some(StepKind::Optional),
            ),
            ("Optional: a faster path", false, Some(StepKind::Optional)),
            ("Deploy the app", false, None),
        ];
        for (text, dominant, kind) in cases {
            assert_eq!(
                section_kind(&heading(text), *dominant).map(|s| s.0),
                *kind,
                "{text}"
            );
        }
        assert!(
            trouble_cue("Follow these steps in case you run into problems with make:").is_some()
        );
        assert!(optional_cue("If you're unsure which version runs, use:").is_some());
        assert!(session_cue("On the node:").is_some());
        assert!(session_cue("Then, press enter and run `nslookup web`:").is_some());
    }

    #[test]
    fn cues_and_sections() {
        let heading = |hs: &[&str]| hs.iter().map(|h| h.to_string()).collect::<Vec<_>>();
        assert_eq!(
            section_kind(
                &heading(&["Troubleshooting Guide", "If metrics not appearing:"]),
                true
            )
            .map(|s| s.0),
            Some(StepKind::Troubleshoot)
        );
        assert_eq!(
            section_kind(&heading(&["Cleanup"]), true).map(|s| s.0),
            Some(StepKind::Cleanup)
        );
        assert_eq!(
            section_kind(&heading(&["Next Steps"]), true).map(|s| s.0),
            Some(StepKind::Skip)
        );
        assert_eq!(
            section_kind(&heading(&["Exercise 1", "Verify: pods"]), true),
            None
        );
        assert_eq!(
            section_kind(&heading(&["Exercise 1", "Step 1", "Verify: pods"]), false).map(|s| s.0),
            Some(StepKind::Verify)
        );
        assert_eq!(
            section_kind(&heading(&["Technical Foundation", "Lab Setup"]), false).map(|s| s.0),
            Some(StepKind::Setup)
        );
        assert_eq!(
            section_kind(&heading(&["Step 2: Expose the services"]), false),
            None
        );
        assert!(session_cue("Inside the debug pod:").is_some());
        assert!(session_cue("Inside debug pod:").is_some());
        assert!(session_cue("Inside the traffic generator:").is_some());
        assert!(session_cue("At the prompt in the client pod, run:").is_some());
        assert!(session_cue("Create the deployment inside the cluster:").is_none());
        assert!(optional_cue("Optional (to see it in action):").is_some());
        assert!(optional_cue("you can run this alternative load generator:").is_some());
        assert!(optional_cue("Deploy the services:").is_none());
        assert_eq!(
            stop_hint("Stop watching with Ctrl+C when rollout completes.").as_deref(),
            Some("rollout completes")
        );
    }
}
