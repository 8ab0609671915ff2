//! Layer 1 of the model: small text rules everyone must apply the same way: ids and slugs, and
//! cutting a line for display.

/// How [`sanitize`] turns text into an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Step ids from headings: lowercase letters and digits (any script), other runs of
    /// characters as one dash, no dash at the ends (`Set Up: Kind` → `set-up-kind`).
    Slug,
    /// Names for other programs (kind clusters, DNS labels): like [`Style::Slug`], but ASCII only.
    AsciiSlug,
    /// Parts of file names and HTML anchors: letters, digits, `-`, `_` and `.` kept as written,
    /// every other character one dash (`m1__lab`, `verify-2`).
    FileName,
}

/// Turns text into an id in the given style. Every id labbook derives from text (step ids,
/// snapshot names, anchors, cluster names) goes through here.
pub fn sanitize(text: &str, style: Style) -> String {
    match style {
        Style::FileName => text
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '-'
                }
            })
            .collect(),
        Style::Slug => slug(
            text.chars().flat_map(char::to_lowercase),
            char::is_alphanumeric,
        ),
        Style::AsciiSlug => slug(text.chars().map(|c| c.to_ascii_lowercase()), |c: char| {
            c.is_ascii_alphanumeric()
        }),
    }
}

fn slug(chars: impl Iterator<Item = char>, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::new();
    for c in chars {
        if keep(c) {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Cuts `text` to at most `max` characters, marking a cut with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_each_style() {
        let cases = [
            ("Set Up: Kind", Style::Slug, "set-up-kind"),
            ("  Überblick -- Teil 2 ", Style::Slug, "überblick-teil-2"),
            ("---", Style::Slug, ""),
            (
                "  Überblick -- Teil 2 ",
                Style::AsciiSlug,
                "berblick-teil-2",
            ),
            ("Module_1/Lab.MD", Style::AsciiSlug, "module-1-lab-md"),
            ("m1__lab", Style::FileName, "m1__lab"),
            ("verify 2/ä", Style::FileName, "verify-2-ä"),
            ("a..b c", Style::FileName, "a..b-c"),
        ];
        for (text, style, want) in cases {
            assert_eq!(sanitize(text, style), want, "{text:?} {style:?}");
        }
    }

    #[test]
    fn truncate_marks_the_cut() {
        let cases = [
            ("short", 10, "short"),
            ("exactly10!", 10, "exactly10!"),
            ("a bit longer", 5, "a bit…"),
            ("ünïcödé", 3, "ünï…"),
        ];
        for (text, max, want) in cases {
            assert_eq!(truncate(text, max), want, "{text}");
        }
    }
}
