//! Printed output, prompts and fence info strings: which lines of a block a reader types.
//!
//! Real courses show what a command prints right in its block (after `$ ` prompts, or plainly after
//! the command), or in a block of its own after "Output:". A reader types only the commands; labbook
//! runs only those, and the lint checks only those. This module decides, line by line, which is which,
//! and whether a whole block is printed output (the `output` kind).

use std::sync::LazyLock;

use regex::Regex;

/// The language of a fence's info string, as labbook reads it.
///
/// Attribute forms (`{.shell .copy}`, `bash {linenos=true}`, `bash,norun`) give their first word;
/// `*-session` languages are read as `console`, and Azure's CLI blocks as `bash`.
pub fn fence_lang(info: &str) -> String {
    let info = info.trim();
    let word = if let Some(attrs) = info.strip_prefix('{') {
        attrs
            .split(|c: char| c.is_whitespace() || c == '}' || c == ',')
            .find_map(|w| w.strip_prefix('.'))
            .unwrap_or("")
    } else {
        info.split(|c: char| c.is_whitespace() || c == ',' || c == '{')
            .next()
            .unwrap_or("")
    };
    let lang = word.to_ascii_lowercase();
    match lang.as_str() {
        "shell-session" | "bash-session" | "sh-session" | "console-session" | "shellsession" => {
            "console".into()
        }
        "azurecli" | "azurecli-interactive" | "azure-cli" | "azure-cli-interactive" => {
            "bash".into()
        }
        _ => lang,
    }
}

/// Fence languages whose blocks a reader runs.
pub const RUNNABLE_LANGS: [&str; 5] = ["bash", "sh", "shell", "zsh", "console"];

/// Fence languages that show what a command printed when the prose says so.
const SHOWN_LANGS: [&str; 8] = [
    "",
    "text",
    "output",
    "plain",
    "txt",
    "log",
    "none",
    "plaintext",
];

/// Fence languages of data that is printed output only when the cue says it is.
const DATA_LANGS: [&str; 5] = ["json", "yaml", "yml", "html", "xml"];

/// The commands a block runs, with the Markdown line of each, and whether it shows printed output.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Commands {
    /// What a reader types, one line per code line.
    pub code: String,
    /// The Markdown line of each line of `code`.
    pub lines: Vec<usize>,
    /// Whether some lines of the block are printed output, not commands.
    pub printed: bool,
    /// The printed lines, in order.
    pub shown: String,
    /// The Markdown line of the first printed line.
    pub shown_line: usize,
}

impl Commands {
    /// Keeps line `i` of the block (Markdown line `line`) as printed output.
    fn show(&mut self, text: &str, line: usize) {
        if self.shown.is_empty() {
            self.shown_line = line;
        }
        self.shown.push_str(text);
        self.shown.push('\n');
    }
}

/// The printed output a block of printed output shows: its text, without the `$ ` command lines
/// (and what continues them) of a transcript. Returns the text and the Markdown line of its first
/// line.
pub(crate) fn shown_output(text: &str, first_line: usize) -> (String, usize) {
    let prompted = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| PROMPT.is_match(l));
    if !prompted {
        return (text.to_string(), first_line);
    }
    let raw: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let commands = prompt_commands(&raw, first_line, true);
    (commands.shown, commands.shown_line)
}

/// A shell prompt at the start of a line: `$ `, `[root@pod:/]$ `, `user@host:~$ `.
static PROMPT: LazyLock<Regex> = LazyLock::new(|| {
    crate::text::static_regex(
        r"^[ \t]*(?:\[[^\]\n]*\][ \t]?|[\w.-]+@[\w.-]+(?::[^\s$#]*)?[ \t]?)?\$(?:[ \t]|$)",
    )
});

/// The delimiter of a heredoc the line starts (`<<EOF`, `<<-'EOF'`, `<< "END"`).
static HEREDOC: LazyLock<Regex> = LazyLock::new(|| {
    crate::text::static_regex(r#"<<-?[ \t]*(?:'([\w.-]+)'|"([\w.-]+)"|\\?([\w.-]+))"#)
});

/// Lines that are printed output, never a command a reader types (one set: one pass per line).
static OUTPUT_LINE: LazyLock<regex::RegexSet> = LazyLock::new(|| {
    regex::RegexSet::new(
        [
            // A table header: two or more upper-case columns (`NAME   READY   STATUS`).
            r"^\s*[A-Z][A-Z0-9_()%./-]*(?: [A-Z][A-Z0-9_()%./-]*)?(?:\s{2,}[A-Z][A-Z0-9_()%./-]*(?: [A-Z][A-Z0-9_()%./-]*)?)+\s*$",
            // A lone upper-case column header, indented.
            r"^\s+[A-Z][A-Z0-9_]{2,}\s*$",
            // An elision.
            r"^\s*(?:\.\.\.|…)\s*$",
            // HTML.
            r"^\s*<(?:[a-zA-Z][\w-]*[\s>/]|[a-zA-Z][\w-]*$|!DOCTYPE|!--|/[a-zA-Z])",
            // What kubectl says it did.
            r"^\s*[\w.-]+(?:/[\w.-]+)+ (?:created|configured|unchanged|deleted|exposed|labeled|annotated|patched|scaled|restarted|serverside-applied)\b",
            // `Key: value` (describe, YAML, logs) and YAML list entries.
            r"^\s*[A-Za-z][\w.()-]*(?: \d+)?:(?:\s|$)",
            r"^\s*- [\w.-]+:(?:\s|$)",
            // JSON and Go-printed maps.
            r#"^\s*(?:\{\s*"|\{\s*$|\[\s*\{|\[map\[|"[\w.-]+"\s*:)"#,
            // `set -x` traces and box-drawing trees.
            r"^\s*\+{1,3} \S",
            r"^\s*[│└├─┌┐┘┴┬╰╭]",
            // A bare URL.
            r"^\s*https?://\S+\s*$",
        ]
        .map(crate::text::ascii_classes),
    )
    .expect("static regex set")
});

/// Whether a line is printed output rather than a command.
pub(crate) fn is_output_line(line: &str) -> bool {
    OUTPUT_LINE.is_match(line)
}

/// The state of a command that goes on to the next line.
#[derive(Default)]
struct Continuation {
    /// The heredoc delimiter being waited for.
    heredoc: Option<String>,
    /// The quote left open (`'` or `"`).
    quote: Option<char>,
    /// Whether the line asks for more (`\`, `|`, `&&`, `||` at its end).
    more: bool,
}

impl Continuation {
    fn open(&self) -> bool {
        self.heredoc.is_some() || self.quote.is_some() || self.more
    }

    /// Reads one line of a command and updates what it leaves open.
    fn read(&mut self, line: &str) {
        if let Some(delimiter) = &self.heredoc {
            if line.trim() == delimiter {
                self.heredoc = None;
            }
            return;
        }
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (self.quote, c) {
                (Some('\''), '\'') => self.quote = None,
                (Some('\''), _) => {}
                (Some('"'), '\\') | (None, '\\') => {
                    chars.next();
                }
                (Some('"'), '"') => self.quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => self.quote = Some(c),
                (None, '#') => break,
                _ => {}
            }
        }
        let trimmed = line.trim_end();
        self.more = self.quote.is_none()
            && (trimmed.ends_with('\\')
                || trimmed.ends_with('|')
                || trimmed.ends_with("&&")
                || trimmed.ends_with("||"));
        if self.quote.is_none() {
            self.heredoc = heredoc_delimiter(line);
        }
    }
}

/// The delimiter of the heredoc a command line starts, if it starts one (`<<EOF`, `<<-'END'`;
/// not a `<<<` here-string).
pub(crate) fn heredoc_delimiter(line: &str) -> Option<String> {
    if !line.contains("<<") {
        return None;
    }
    HEREDOC.captures_iter(line).find_map(|c| {
        let whole = c.get(0)?;
        let before = line[..whole.start()].ends_with('<');
        let after = line[whole.start() + 2..].starts_with('<');
        if before || after {
            return None;
        }
        c.get(1)
            .or(c.get(2))
            .or(c.get(3))
            .map(|m| m.as_str().to_string())
    })
}

/// The commands of a block, by its language.
///
/// With `$ ` prompts (in `console`, or in a shell fence whose first line has one) only the prompt
/// lines and what continues them (`> ` lines, `\` lines, heredoc bodies) are commands. A `console`
/// block without `$ ` but with `> ` prompts uses those. Otherwise every line is a command until the
/// first line that is plainly printed output; that line and the rest are what the commands print.
pub(crate) fn commands(lang: &str, text: &str, first_line: usize) -> Commands {
    let raw: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let first_text = raw.iter().find(|l| !l.trim().is_empty()).copied();
    let prompted = lang == "console" || first_text.is_some_and(|l| PROMPT.is_match(l));
    if prompted {
        let dollar = raw.iter().any(|l| PROMPT.is_match(l));
        return prompt_commands(&raw, first_line, dollar);
    }
    let mut out = Commands::default();
    let mut state = Continuation::default();
    for (i, line) in raw.iter().enumerate() {
        if !state.open() && is_output_line(line) {
            out.printed = true;
            if out.lines.is_empty() {
                // The block opens with printed output: none of it is a command.
                return out;
            }
            for (j, rest) in raw.iter().enumerate().skip(i) {
                out.show(rest, first_line + j);
            }
            break;
        }
        state.read(line);
        out.code.push_str(line);
        out.code.push('\n');
        out.lines.push(first_line + i);
    }
    // Blank lines after the last command are not commands, but keep the code as the block wrote it.
    out
}

fn prompt_commands(raw: &[&str], first_line: usize, dollar: bool) -> Commands {
    let mut out = Commands::default();
    let mut state = Continuation::default();
    let mut last_was_command = false;
    for (i, line) in raw.iter().enumerate() {
        let trimmed = line.trim_start();
        let command: Option<&str> = if state.heredoc.is_some() {
            Some(trimmed.strip_prefix("> ").unwrap_or(line))
        } else if state.open() {
            Some(
                trimmed
                    .strip_prefix("> ")
                    .or_else(|| (trimmed == ">").then_some(""))
                    .unwrap_or(line),
            )
        } else if dollar {
            if let Some(m) = PROMPT.find(line) {
                Some(&line[m.end()..])
            } else if last_was_command {
                trimmed.strip_prefix("> ")
            } else {
                None
            }
        } else {
            trimmed.strip_prefix("> ")
        };
        match command {
            Some(command) => {
                state.read(command);
                out.code.push_str(command);
                out.code.push('\n');
                out.lines.push(first_line + i);
                last_was_command = true;
            }
            None => {
                if !line.trim().is_empty() {
                    out.printed = true;
                }
                if out.printed {
                    out.show(line, first_line + i);
                }
                last_was_command = false;
            }
        }
    }
    out
}

/// Programs that start the commands of a block written without a language.
const PROGRAMS: [&str; 50] = [
    "kubectl", "helm", "istioctl", "gcloud", "az", "aws", "eksctl", "curl", "wget", "cd", "export",
    "git", "docker", "kind", "make", "linkerd", "cat", "echo", "source", "minikube", "openssl",
    "watch", "ls", "mkdir", "cp", "mv", "rm", "sudo", "ssh", "tar", "unzip", "chmod", "jq",
    "meshctl", "glooctl", "kubectx", "kubens", "while", "for", "if", "sleep", "bash", "sh", "k3d",
    "awk", "sed", "grep", "sort", "python3", "go",
];

/// Whether a block written without a language holds commands a reader runs.
pub(crate) fn looks_like_commands(text: &str) -> bool {
    let Some(first) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
    else {
        return false;
    };
    if PROMPT.is_match(first) {
        return true;
    }
    if is_output_line(first) {
        return false;
    }
    let word = first.split_whitespace().next().unwrap_or("");
    if word.starts_with("./") || PROGRAMS.contains(&word) {
        return true;
    }
    // `pod=$(kubectl …)`: an assignment from a command.
    word.split_once('=').is_some_and(|(name, value)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && (value.starts_with("$(") || value.starts_with("\"$(") || value.starts_with('`'))
    })
}

/// Whether lines a shell would take for commands read as a sentence a program printed
/// ("Retrieving host names…"): a capitalised first word that is no program.
pub(crate) fn looks_like_prose(code: &str) -> bool {
    if looks_like_commands(code) {
        return false;
    }
    code.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .and_then(|l| l.split_whitespace().next())
        .is_some_and(|word| {
            let mut chars = word.chars();
            chars.next().is_some_and(|c| c.is_ascii_uppercase())
                && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        })
}

/// Prose that introduces printed output.
static OUTPUT_CUE: LazyLock<crate::text::Caseless> = LazyLock::new(|| {
    crate::text::Caseless::new(
        r"(?x)
        \boutputs?\b[^.]{0,40}?(?:\bis\b|\bwill\b|\bshould\b|\blooks?\b|\bsimilar\b|:\s*$)
        | \b(?:example|sample|expected|typical)\s+(?:output|response|result)s?\b
        | \byou\s+(?:should|will|'ll|would|might|may)\s+(?:now\s+|then\s+|also\s+)?(?:see|get)\b
        | \bsimilar\s+to\b[^.]*:\s*$
        | \blooks?\s+(?:something\s+|a\s+little\s+|at\s+little\s+)?like\b[^.]*:\s*$
        | \b(?:returns|prints|displays|outputs|responds\s+with)\b[^.]*:\s*$
        | (?:^|\.\s+|\bfor\s+)example:\s*$
        | ^\s*(?:output|result|response)s?\s*:?\s*$
        ",
    )
});

/// Whether the cue says the block shows printed output; returns the words that say so.
pub(crate) fn output_cue(cue: &str) -> Option<String> {
    OUTPUT_CUE.find(cue).map(|words| words.trim().to_string())
}

/// Whether the cue names output outright ("Output:", "Example output", "The output is similar
/// to"): then a block that does not start with a known program is printed output.
pub(crate) fn names_output(cue: &str) -> bool {
    output_cue(cue).is_some_and(|words| words.to_ascii_lowercase().contains("output"))
}

/// Whether a block that is not run shows what the step before it printed.
///
/// `cue` is the prose between the two blocks, `None` when the block follows the step directly.
pub(crate) fn shows_output(lang: &str, text: &str, cue: Option<&str>) -> bool {
    let said = cue.and_then(output_cue).is_some();
    if lang == "output" {
        return true;
    }
    let first_is_output = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(is_output_line);
    if SHOWN_LANGS.contains(&lang) || lang == "console" {
        return said || (cue.is_none() && (first_is_output || !looks_like_commands(text)));
    }
    DATA_LANGS.contains(&lang) && said
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_strings() {
        let cases = [
            ("bash", "bash"),
            ("{.shell .copy}", "shell"),
            ("bash {linenos=true}", "bash"),
            ("bash,norun", "bash"),
            ("bash,norun-workshop", "bash"),
            (",nocopy", ""),
            ("json,nocopy", "json"),
            ("shell-session", "console"),
            ("sh-session", "console"),
            ("azurecli-interactive", "bash"),
            ("Shell", "shell"),
            ("", ""),
        ];
        for (info, lang) in cases {
            assert_eq!(fence_lang(info), lang, "{info:?}");
        }
    }

    #[test]
    fn which_lines_are_commands() {
        // (lang, block, commands, printed)
        let cases: &[(&str, &str, &str, bool)] = &[
            ("bash", "kubectl get pods\n", "kubectl get pods\n", false),
            (
                "bash",
                "kubectl get pods\nNAME   READY   STATUS\nweb    1/1     Running\n",
                "kubectl get pods\n",
                true,
            ),
            (
                "bash",
                "$ kubectl apply -f - <<EOF\nkind: Pod\nmetadata:\n  name: x\nEOF\n",
                "kubectl apply -f - <<EOF\nkind: Pod\nmetadata:\n  name: x\nEOF\n",
                false,
            ),
            (
                "bash",
                "cat <<EOF | kubectl apply -f -\napiVersion: v1\nkind: Secret\nEOF\n",
                "cat <<EOF | kubectl apply -f -\napiVersion: v1\nkind: Secret\nEOF\n",
                false,
            ),
            (
                "shell",
                "$ kubectl get svc\nNAME   TYPE\nweb    ClusterIP\n$ echo done\ndone\n",
                "kubectl get svc\necho done\n",
                true,
            ),
            (
                "console",
                "> linkerd viz stat deploy\nNAME   MESHED   SUCCESS\n",
                "linkerd viz stat deploy\n",
                true,
            ),
            (
                "console",
                "$ echo a \\\n  b\n$ cat <<EOF\n> x\n> EOF\nx\n",
                "echo a \\\n  b\ncat <<EOF\nx\nEOF\n",
                true,
            ),
            (
                "bash",
                "kubectl patch x -p='[{\"op\":\n  \"add\"}]'\nNAME:  x\n",
                "kubectl patch x -p='[{\"op\":\n  \"add\"}]'\n",
                true,
            ),
            ("bash", "NAME   READY\nweb    1/1\n", "", true),
            (
                "bash",
                "curl -s http://web/\n<html>\n<title>Hi</title>\n",
                "curl -s http://web/\n",
                true,
            ),
            (
                "bash",
                "kubectl get pods -o wide\n    POD_IP\n    [map[ip:10.0.0.1]]\n",
                "kubectl get pods -o wide\n",
                true,
            ),
            (
                "bash",
                "[ root@pod:/ ]$ nslookup web\nServer:    10.0.0.10\n",
                "nslookup web\n",
                true,
            ),
            (
                "bash",
                "if [ -d x ]; then\n  cd x\nfi\n",
                "if [ -d x ]; then\n  cd x\nfi\n",
                false,
            ),
        ];
        for (lang, block, code, printed) in cases {
            let got = commands(lang, block, 10);
            assert_eq!(got.code, *code, "{block:?}");
            assert_eq!(got.printed, *printed, "{block:?}");
            assert_eq!(got.lines.len(), code.lines().count(), "{block:?}");
        }
    }

    #[test]
    fn output_cues() {
        let yes = [
            "Output:",
            "The output is similar to:",
            "You should see something like this:",
            "Example output:",
            "Expected output:",
            "Sample output:",
            "The command returns:",
            "It prints:",
            "Confirm the pod is Running. For example:",
            "The output will end up looking at little like:",
        ];
        for cue in yes {
            assert!(output_cue(cue).is_some(), "{cue:?}");
        }
        let no = [
            "Run the following command:",
            "Check your Service:",
            "Install the CLI:",
            "Forward the port so that you can see the dashboard",
        ];
        for cue in no {
            assert!(output_cue(cue).is_none(), "{cue:?}");
        }
    }

    #[test]
    fn blocks_without_a_language() {
        let yes = [
            "gcloud services enable x\n",
            "cd common/\n",
            "./install.sh\n",
            "$ kubectl get pods\nNAME\n",
            "pod=$(kubectl get pods -o name)\n",
        ];
        for block in yes {
            assert!(looks_like_commands(block), "{block:?}");
        }
        let no = [
            "NAME   READY\n",
            "service/web created\n",
            "KUBERNETES_SERVICE_HOST=10.0.0.1\n",
            "Hit enter for command prompt\n",
            "",
        ];
        for block in no {
            assert!(!looks_like_commands(block), "{block:?}");
        }
        assert!(looks_like_prose("Retrieving host names...\nOK\n"));
        assert!(!looks_like_prose("awk -F, -f calc.awk costs.csv\n"));
        assert!(!looks_like_prose("myscript --flag\n"));
    }
}
