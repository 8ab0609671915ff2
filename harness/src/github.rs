//! GitHub Actions workflow commands: `::error file=…,line=…,title=…::message` annotations, and
//! whether labbook runs under Actions at all.
//!
//! Messages may span lines (a snapshot diff, a hint): GitHub reads `%0A` as a newline in the
//! message, so a diff shows as a diff in the annotation.

/// Whether labbook runs in a GitHub Actions job.
pub fn actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// The level of an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `::error`.
    Error,
    /// `::warning`.
    Warning,
    /// `::notice`.
    Notice,
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// One annotation, on one line whatever the message holds.
pub fn annotation(level: Level, file: &str, line: usize, title: &str, message: &str) -> String {
    let level = match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Notice => "notice",
    };
    let mut properties = format!("file={},line={line}", escape_property(file));
    if !title.is_empty() {
        properties.push_str(&format!(",title={}", escape_property(title)));
    }
    format!(
        "::{level} {properties}::{}",
        escape_data(message.trim_end())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_stay_on_one_line() {
        let cases = [
            (
                annotation(Level::Error, "a,b.md", 3, "", "100%\ndone\n"),
                "::error file=a%2Cb.md,line=3::100%25%0Adone",
            ),
            (
                annotation(
                    Level::Warning,
                    "m.md",
                    7,
                    "lint: rule-x",
                    "what\r\nhelp: how",
                ),
                "::warning file=m.md,line=7,title=lint%3A rule-x::what%0D%0Ahelp: how",
            ),
            (
                annotation(Level::Notice, "m.md", 1, "", "-old\n+new"),
                "::notice file=m.md,line=1::-old%0A+new",
            ),
        ];
        for (got, expected) in cases {
            assert_eq!(got, expected);
            assert!(!got.contains('\n'));
        }
    }
}
