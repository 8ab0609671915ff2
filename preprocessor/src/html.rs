//! Small HTML helpers: escaping and the few formats the book shows (durations, dates, tool
//! versions).
//!
//! Every piece of text that comes from the Markdown, a snapshot or a report goes through
//! [`escape`] before it is put in HTML; nothing is concatenated unescaped.

use std::fmt::Write as _;

/// Escapes text for HTML element content and double- or single-quoted attribute values.
///
/// Line breaks become character references too: everything labbook adds to a chapter stands on
/// one Markdown line, and a raw blank line would end the HTML block early and hand the rest to
/// the Markdown parser. (In ordinary text they still read as spaces.)
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text that goes inside a `<pre>`: as [`escape`], with Windows line endings read as
/// one line break (a lone carriage return, as in progress output, shows as a space).
pub fn escape_pre(text: &str) -> String {
    escape(&text.replace("\r\n", "\n"))
}

/// `<code>text</code>`, escaped.
pub fn code(text: &str) -> String {
    format!("<code>{}</code>", escape(text))
}

/// A duration in words a reader scans quickly: `850 ms`, `12 s`, `3 min 12 s`, `1 h 4 min`.
pub fn duration(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0 => format!("{ms} ms"),
        1..60 => format!("{secs} s"),
        60..3600 if secs.is_multiple_of(60) => format!("{} min", secs / 60),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ if (secs % 3600) / 60 == 0 => format!("{} h", secs / 3600),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
}

/// An RFC 3339 time shown as `2025-01-31 14:02 UTC` (or as given when it is not RFC 3339).
pub fn date(rfc3339: &str) -> String {
    let Some((day, time)) = rfc3339.split_once(['T', 't', ' ']) else {
        return rfc3339.to_string();
    };
    let valid_day = day.len() == 10 && day.chars().all(|c| c.is_ascii_digit() || c == '-');
    let hm = time.get(..5).filter(|hm| {
        hm.chars().enumerate().all(|(i, c)| match i {
            2 => c == ':',
            _ => c.is_ascii_digit(),
        })
    });
    match hm {
        Some(hm) if valid_day => {
            let zone = &time[5..];
            let zone =
                zone.trim_start_matches(|c: char| c.is_ascii_digit() || c == ':' || c == '.');
            let zone = match zone {
                "Z" | "z" | "+00:00" => "UTC",
                other => other,
            };
            let mut out = format!("{day} {hm}");
            if !zone.is_empty() {
                let _ = write!(out, " {zone}");
            }
            out
        }
        _ => rfc3339.to_string(),
    }
}

/// A tool version as a report stores it ("as the tool prints it"), cut to its first line and
/// prefixed with the tool's name unless the line already starts with it.
pub fn tool_version(name: &str, printed: &str) -> String {
    let first = printed
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let first: String = if first.chars().count() > 60 {
        format!("{}…", first.chars().take(60).collect::<String>())
    } else {
        first.to_string()
    };
    if first.is_empty() {
        name.to_string()
    } else if first.to_lowercase().starts_with(&name.to_lowercase()) {
        first
    } else {
        format!("{name} {first}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_could_open_markup() {
        let cases = [
            ("plain", "plain"),
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("a & b", "a &amp; b"),
            ("\"quoted\" 'single'", "&quot;quoted&quot; &#39;single&#39;"),
            ("<!-- labbook: x -->", "&lt;!-- labbook: x --&gt;"),
            ("ünïcödé", "ünïcödé"),
            ("two\n\nlines\r", "two&#10;&#10;lines&#13;"),
        ];
        for (input, expected) in cases {
            assert_eq!(escape(input), expected, "{input}");
        }
    }

    #[test]
    fn pre_text_stays_on_one_line() {
        let cases = [
            ("a\nb", "a&#10;b"),
            ("a\n\nb\n", "a&#10;&#10;b&#10;"),
            ("x\r\ny", "x&#10;y"),
            ("10%\r20%\r\r", "10%&#13;20%&#13;&#13;"),
            ("<b>\n", "&lt;b&gt;&#10;"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(escape_pre(input), expected, "{input:?}");
            assert!(!escape_pre(input).contains('\n'));
        }
    }

    #[test]
    fn durations_read_naturally() {
        let cases = [
            (0, "0 ms"),
            (850, "850 ms"),
            (1_000, "1 s"),
            (12_400, "12 s"),
            (60_000, "1 min"),
            (192_000, "3 min 12 s"),
            (3_600_000, "1 h"),
            (3_840_000, "1 h 4 min"),
        ];
        for (ms, expected) in cases {
            assert_eq!(duration(ms), expected, "{ms}");
        }
    }

    #[test]
    fn dates_are_shortened_when_rfc3339() {
        let cases = [
            ("2025-01-31T14:02:03Z", "2025-01-31 14:02 UTC"),
            ("2025-01-31T14:02:03.123456Z", "2025-01-31 14:02 UTC"),
            ("2025-01-31T14:02:03+02:00", "2025-01-31 14:02 +02:00"),
            ("2025-01-31T14:02:03+00:00", "2025-01-31 14:02 UTC"),
            ("yesterday", "yesterday"),
            ("2025-01-31Tnoon", "2025-01-31Tnoon"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(date(input), expected, "{input}");
        }
    }

    #[test]
    fn tool_versions_are_short() {
        let cases = [
            (
                "kind",
                "kind v0.24.0 go1.22.6 linux/amd64",
                "kind v0.24.0 go1.22.6 linux/amd64",
            ),
            (
                "kubectl",
                "Client Version: v1.31.0\nKustomize Version: v5.4.2",
                "kubectl Client Version: v1.31.0",
            ),
            ("istioctl", "1.23.2", "istioctl 1.23.2"),
            ("bash", "", "bash"),
        ];
        for (name, printed, expected) in cases {
            assert_eq!(tool_version(name, printed), expected, "{name}");
        }
    }
}
