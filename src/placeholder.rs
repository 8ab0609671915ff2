//! Placeholders: values the reader must fill in before running a command.
//!
//! Courses write them as `<your-namespace>`, `YOUR_PROJECT_ID`, `{{ var }}`, or leave a Hugo shortcode
//! (`{{< version >}}`) that the site renders. None of them is shell: pasted as is, `<ns>` is two
//! redirections. The lint reports them once by name instead of as syntax errors, the analysis reads the
//! block with each one replaced by a plain word, and `run` fills them from the book's `variables` or
//! refuses the step.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

/// A value the reader must fill in, as written in a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placeholder {
    /// The text as written: `<your-namespace>`, `{{ var }}`, `YOUR_PROJECT_ID`.
    pub text: String,
    /// Its name, the key a book's `variables` fills it by: `your-namespace`, `var`, `YOUR_PROJECT_ID`.
    pub name: String,
    /// The Markdown line it is on.
    pub line: usize,
}

static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    crate::text::static_regex(
        r"(?x)
        (?P<angle>(?:^|[^<\w$])<(?P<an>[A-Za-z][\w.-]*(?:\ [\w.-]+){0,3})>)
        | \{\{[<%]\s*(?P<sn>/?[\w.-]+)[^}]*?[>%]\}\}
        | \{\{\s*(?P<tn>\.?[\w.-]+)\s*\}\}
        | (?P<yn>(?:^|[^\w$\{])\b(?:YOUR|REPLACE|INSERT)_[A-Z0-9_]+\b)
        ",
    )
});

/// The placeholders in `code`, whose line `i` is Markdown line `lines[i]`.
///
/// Heredoc bodies are data, not commands: `<b>` in an HTML file written by a heredoc is not a
/// placeholder, so lines inside a heredoc are not searched.
pub(crate) fn find(code: &str, lines: &[usize]) -> Vec<Placeholder> {
    let mut found = Vec::new();
    let mut heredoc: Option<String> = None;
    for (i, line) in code.lines().enumerate() {
        if let Some(delimiter) = &heredoc {
            if line.trim() == delimiter {
                heredoc = None;
            }
            continue;
        }
        let markdown_line = lines.get(i).copied().unwrap_or(0);
        // Every form needs one of these bytes: most lines skip the regex.
        let may_hold = line.bytes().any(|b| matches!(b, b'<' | b'{' | b'_'));
        for c in may_hold
            .then(|| PLACEHOLDER.captures_iter(line))
            .into_iter()
            .flatten()
        {
            let (text, name) = if let Some(name) = c.name("an") {
                // `grep "<title>.*</title>"`: a tag closed on the same line is HTML, not a value.
                if line.contains(&format!("</{}>", name.as_str())) {
                    continue;
                }
                let whole = c.name("angle").expect("angle group");
                let text = whole.as_str().trim_start_matches(|ch: char| ch != '<');
                (text.to_string(), name.as_str().to_string())
            } else if let Some(name) = c.name("sn").or(c.name("tn")) {
                (
                    c[0].to_string(),
                    name.as_str().trim_start_matches('.').to_string(),
                )
            } else {
                let text = c["yn"].trim_start_matches(|ch: char| !ch.is_ascii_uppercase());
                (text.to_string(), text.to_string())
            };
            found.push(Placeholder {
                text,
                name,
                line: markdown_line,
            });
        }
        heredoc = crate::printed::heredoc_delimiter(line);
    }
    found
}

/// `code` with every placeholder replaced: by `value(name)` where it gives one, else by a plain word
/// made of its name, so that the shell parser and ShellCheck read the command as the reader will
/// type it once filled in.
pub fn fill(
    code: &str,
    placeholders: &[Placeholder],
    value: impl Fn(&str) -> Option<String>,
) -> String {
    let mut out = code.to_string();
    for p in placeholders {
        let with = value(&p.name).unwrap_or_else(|| word(&p.name));
        out = out.replacen(&p.text, &with, 1);
    }
    out
}

/// A placeholder's name as a word the shell reads as one plain argument.
fn word(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_placeholders_by_name() {
        // (code, names)
        let cases: &[(&str, &[&str])] = &[
            (
                "kubectl get pods -n <your-namespace>\n",
                &["your-namespace"],
            ),
            ("curl -I http://<guestbook_IP>/\n", &["guestbook_IP"]),
            ("export TAG=<version number>\n", &["version number"]),
            (
                "gcloud config set project YOUR_PROJECT_ID\n",
                &["YOUR_PROJECT_ID"],
            ),
            ("echo $YOUR_PROJECT_ID ${YOUR_ZONE}\n", &[]),
            ("export V={{< edge-version >}}\n", &["edge-version"]),
            ("kubectl create ns {{ namespace }}\n", &["namespace"]),
            ("cat <<EOF > f.html\n<b>bold</b>\nEOF\nsort <in.txt\n", &[]),
            ("diff <(ls a) <(ls b)\n", &[]),
            ("curl -s web | grep -o \"<title>.*</title>\"\n", &[]),
            ("kubectl apply -f - <<EOF\nname: <x>\nEOF\n", &[]),
        ];
        for (code, names) in cases {
            let lines: Vec<usize> = (1..=code.lines().count()).collect();
            let found: Vec<String> = find(code, &lines).into_iter().map(|p| p.name).collect();
            assert_eq!(found, *names, "{code:?}");
        }
    }

    #[test]
    fn fill_uses_values_or_plain_words() {
        let code = "kubectl -n <your-namespace> get pods -l app=<app name>\n";
        let found = find(code, &[3]);
        let filled = fill(code, &found, |name| {
            (name == "your-namespace").then(|| "shop".to_string())
        });
        assert_eq!(filled, "kubectl -n shop get pods -l app=app_name\n");
        assert_eq!(found[0].line, 3);
    }
}
