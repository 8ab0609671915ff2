//! The built book as a reader sees it: `labbook build` a fixture book, serve it on 127.0.0.1
//! from a tiny static file server, and let Debian's headless Chromium load it with JavaScript on.
//!
//! The dumped DOM must hold the badges and the expected-output panel, no annotation comment, and
//! no trace of the `<script>` a snapshot holds having run (it would add `#xss-ran` and set the
//! title). Screenshots are written to `$LABBOOK_SCREENSHOTS` when it is set, for a person to look
//! at. Without Chromium the test fails under CI (`CI=true`) and is skipped elsewhere.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Labbook, fixture_book};

/// The Chromium to drive: `$LABBOOK_CHROMIUM`, or the first browser found on the `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("LABBOOK_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
    .find(|candidate| candidate.is_file())
}

/// The Chromium to drive, or `None` (the test is skipped) when there is none outside CI; under
/// CI a missing Chromium fails the test.
fn chromium_or_skip() -> Option<PathBuf> {
    let browser = chromium();
    if browser.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !ci,
            "Chromium is not installed, and CI must run the browser test: \
             `apt-get install -y chromium` (or set LABBOOK_CHROMIUM)"
        );
        eprintln!("skipped: Chromium not found (apt-get install -y chromium)");
    }
    browser
}

/// Serves the files under `root` on an ephemeral port of 127.0.0.1 until the test ends.
fn serve(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            std::thread::spawn(move || respond(stream, &root));
        }
    });
    format!("http://{address}")
}

fn respond(mut stream: TcpStream, root: &Path) {
    let mut request = String::new();
    if BufReader::new(&stream).read_line(&mut request).is_err() {
        return;
    }
    // "GET /path?query HTTP/1.1": only plain relative paths inside the root are served.
    let target = request.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let mut file = root.to_path_buf();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if part == ".." {
            file = root.join("missing");
            break;
        }
        file.push(part);
    }
    if file.is_dir() {
        file.push("index.html");
    }
    let (status, body) = match std::fs::read(&file) {
        Ok(body) => ("200 OK", body),
        Err(_) => ("404 Not Found", b"not found".to_vec()),
    };
    let kind = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// Runs headless Chromium with `args` and returns its stdout. A browser that hangs is killed
/// after a generous limit, so that the test fails rather than never ends.
fn run_chromium(browser: &Path, profile: &Path, args: &[&str]) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            // Let the page's own scripts (mdBook's book.js) finish before the dump.
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stdout), &mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match child.try_wait().expect("wait for chromium") {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within 120 s: {args:?}");
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    reader.join().expect("reader")
}

/// The DOM of the page at `url` once its scripts ran.
fn dump_dom(browser: &Path, profile: &Path, url: &str) -> String {
    run_chromium(browser, profile, &["--dump-dom", url])
}

/// `labbook build BOOK` in `dir`, with the course stylesheet.
fn build(dir: &Path, book: &str) {
    Labbook::new()
        .args(["build", book])
        .current_dir(dir)
        .with_course_css()
        .run()
        .success();
}

#[test]
fn the_built_book_reads_right_in_a_browser() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let (tmp, book) = fixture_book("render-kinds");
    build(tmp.path(), "render-kinds");
    let base = serve(book.join("book/html"));
    let profile = tmp.path().join("chromium-profile");

    // mdBook's highlighter marks every `<code>` element; the words around it are what matter.
    let dump = |page: &str| {
        dump_dom(&browser, &profile, &format!("{base}/{page}"))
            .replace("<code class=\"hljs\">", "<code>")
    };
    let kinds = dump("kinds.html");
    // mdBook's own script ran (it adds copy buttons to code blocks), so an injected one would have.
    assert!(
        kinds.contains("clip-button"),
        "page scripts did not run:\n{kinds}"
    );
    assert_eq!(kinds.matches("class=\"labbook-step\"").count(), 18);
    for needle in [
        "<span class=\"labbook-badge\">Set up</span>",
        "<span class=\"labbook-badge\">Check</span>",
        "Opens a shell in the <code>debug</code> pod",
        "Type inside the <code>debug</code> pod",
        "Stop with Ctrl+C when every pod shows Running",
        "Keeps running in the background",
        "Only if something failed",
        "Always run at the end",
        "Not part of the lab",
        // The panels' labels come from the stylesheet (see the screenshots).
        "<div class=\"labbook-expected\" data-redacted=\"\">",
        "<p class=\"labbook-expected-missing\">No expected output has been recorded for this check yet.</p>",
        "<div class=\"labbook-expected labbook-expected-rule\">The output contains <code>Welcome</code>.</div>",
        "class=\"labbook-banner\" data-status=\"passed\"",
    ] {
        assert!(kinds.contains(needle), "kinds.html lacks {needle}");
    }

    let escaping = dump("escaping.html");
    assert!(escaping.contains("class=\"labbook-expected\""));
    assert!(
        escaping.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{escaping}"
    );
    assert!(
        !escaping.contains("<p id=\"xss-ran\">"),
        "the snapshot's script ran:\n{escaping}"
    );
    assert!(
        !escaping.contains("<title>XSS-RAN"),
        "the snapshot's script ran:\n{escaping}"
    );
    assert!(
        !escaping.contains("<img src=\"x\""),
        "the snapshot's markup became an element"
    );

    for page in [&kinds, &escaping] {
        assert!(
            !page.contains("<!-- labbook"),
            "an annotation comment reached the page"
        );
        assert!(
            !page.contains("<!--labbook"),
            "an annotation comment reached the page"
        );
    }

    // A screenshot proves the page renders with the stylesheet; keep it when asked to.
    let shots = std::env::var_os("LABBOOK_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("screenshots"));
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    for page in ["kinds", "escaping", "lists"] {
        let png = shots.join(format!("{page}.png"));
        run_chromium(
            &browser,
            &profile,
            &[
                "--window-size=1100,3200",
                &format!("--screenshot={}", png.display()),
                &format!("{base}/{page}.html"),
            ],
        );
        let bytes = std::fs::read(&png).expect("screenshot written");
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is not a PNG",
            png.display()
        );
    }
}

#[test]
fn printed_output_the_last_run_did_not_print_carries_a_note() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    // A real run writes the report the book shows: `report = "last-run/report.json"`.
    let tmp = tempfile::tempdir().expect("temporary folder");
    let book = tmp.path().join("warned");
    crate::support::copy_dir(
        &crate::support::repo().join("fixtures/printed/warned"),
        &book,
    );
    std::fs::create_dir_all(book.join("theme")).expect("theme folder");
    std::fs::copy(
        crate::support::repo().join("book/theme/labbook.css"),
        book.join("theme/labbook.css"),
    )
    .expect("stylesheet copies");
    Labbook::new()
        .args([
            "run",
            "warned",
            "--cluster",
            "none",
            "--report",
            "warned/last-run",
        ])
        .current_dir(tmp.path())
        .env_remove("GITHUB_ACTIONS")
        .run()
        .success();
    build(tmp.path(), "warned");
    // The book has the html renderer only, so mdBook writes it to `book/` itself.
    let base = serve(book.join("book"));
    let profile = tmp.path().join("chromium-profile");
    let page = dump_dom(&browser, &profile, &format!("{base}/stale.html"));
    for needle in [
        "<span class=\"labbook-badge\">What you should see</span>",
        "<strong>The last run printed something different</strong>",
        // What the run printed, escaped, folded in a <details>.
        "<details>",
        "What the last run printed</summary>",
        "<pre>version 2.0 &amp; &lt;b&gt;beta&lt;/b&gt;</pre>",
        "<p class=\"labbook-printed-matched\">matched the last run on <time",
    ] {
        assert!(page.contains(needle), "stale.html lacks {needle}:\n{page}");
    }
    // The printed text stays as the author wrote it, and the run's markup never became markup.
    assert!(
        page.contains("version 1.0 &amp; &lt;b&gt;beta&lt;/b&gt;"),
        "{page}"
    );
    assert!(!page.contains("<b>beta</b>"), "{page}");
    assert_eq!(
        page.matches("The last run printed something different")
            .count(),
        1
    );
}

/// `fixtures/books/wide-output` (a prose-only page and a lab whose accepted output has a line
/// far wider than a phone or a sheet of paper) built with the course stylesheet, plus `extra`
/// appended to its `book.toml` and `files` (name, content) added beside it. Returns the
/// temporary folder and the html folder.
fn wide_book(extra: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let (tmp, book) = fixture_book("wide-output");
    for (name, content) in files {
        std::fs::write(book.join(name), content).expect("file written");
    }
    let toml = book.join("book.toml");
    let text = std::fs::read_to_string(&toml).expect("book.toml");
    std::fs::write(&toml, format!("{text}{extra}")).expect("book.toml written");
    build(tmp.path(), "wide-output");
    // One renderer: mdBook writes the html to `book/` itself.
    (tmp, book.join("book"))
}

/// The wide line of the fixture's accepted snapshot.
fn wide_line() -> String {
    let snap = std::fs::read_to_string(
        crate::support::repo()
            .join("fixtures/books/wide-output/snapshots/wide__verify-the-wide-line-1.snap"),
    )
    .expect("snapshot");
    let line = snap
        .lines()
        .find(|l| l.ends_with("end-of-the-wide-line"))
        .expect("the wide line")
        .to_string();
    assert!(line.len() > 300, "{line}");
    line
}

#[test]
fn only_lab_pages_carry_a_banner() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let (tmp, html) = wide_book("", &[]);
    let base = serve(html);
    let profile = tmp.path().join("chromium-profile");
    let dump = |page: &str| dump_dom(&browser, &profile, &format!("{base}/{page}"));
    let prose = dump("index.html");
    assert!(prose.contains("This page is prose only"), "{prose}");
    assert!(
        !prose.contains("labbook-banner"),
        "a banner on prose:\n{prose}"
    );
    let lab = dump("wide.html");
    assert_eq!(lab.matches("class=\"labbook-banner\"").count(), 1, "{lab}");
    assert!(lab.contains("end-of-the-wide-line"), "{lab}");
}

/// Printed to PDF by Chromium, the wide line of expected output wraps instead of being cut at
/// the panel's edge: its every character is in the PDF's text (`pdftotext`, poppler-utils).
#[test]
fn print_wraps_wide_expected_output_instead_of_clipping_it() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if Command::new("pdftotext").arg("-v").output().is_err() {
        assert!(
            !ci,
            "pdftotext is not installed: apt-get install -y poppler-utils"
        );
        eprintln!("skipped: pdftotext not found (apt-get install -y poppler-utils)");
        return;
    }
    let (tmp, html) = wide_book("", &[]);
    let base = serve(html);
    let profile = tmp.path().join("chromium-profile");
    let pdf = tmp.path().join("wide.pdf");
    run_chromium(
        &browser,
        &profile,
        &[
            "--no-pdf-header-footer",
            &format!("--print-to-pdf={}", pdf.display()),
            &format!("{base}/wide.html"),
        ],
    );
    let output = Command::new("pdftotext")
        .args(["-layout"])
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext runs");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    let line = wide_line();
    assert!(
        squeeze(&text).contains(&squeeze(&line)),
        "the wide line is clipped in print; the PDF says:\n{text}"
    );
    assert!(text.contains("a short second line"), "{text}");
}

/// Measures the page once it has loaded and leaves the figures in `#labbook-measure` for
/// `--dump-dom`: the viewport and page widths, the theme, and each expected-output panel's box,
/// its body's scroll width, how far a reader can scroll it, and its text and background colours.
const MEASURE_JS: &str = r#"
window.addEventListener("load", function () {
  setTimeout(function () {
    function background(element) {
      for (var e = element; e; e = e.parentElement) {
        var c = getComputedStyle(e).backgroundColor;
        if (c && c !== "transparent" && c !== "rgba(0, 0, 0, 0)") { return c; }
      }
      return "rgb(255, 255, 255)";
    }
    var root = document.documentElement;
    var figures = {
      viewport: root.clientWidth,
      page: root.scrollWidth,
      theme: root.className,
      panels: Array.prototype.map.call(document.querySelectorAll(".labbook-expected"), function (panel) {
        var body = panel.querySelector(".labbook-expected-body");
        var p = panel.getBoundingClientRect(), b = body.getBoundingClientRect();
        // Scroll to the end of the wide line: only a scroll container moves.
        body.scrollLeft = body.scrollWidth;
        return {
          left: p.left, right: p.right, body_right: b.right,
          body_client: body.clientWidth, body_scroll: body.scrollWidth,
          scrolled_to: body.scrollLeft + body.clientWidth,
          color: getComputedStyle(body).color, background: background(body)
        };
      })
    };
    var out = document.createElement("pre");
    out.id = "labbook-measure";
    out.hidden = true;
    out.textContent = JSON.stringify(figures);
    document.body.appendChild(out);
  }, 200);
});
"#;

/// A 390×844 CSS-pixel phone screen showing `wide.html`: headless Chromium will not make its
/// window narrower than 500 pixels, so the page is shown in a frame of a phone's width (its media
/// queries then see 390). The frame's figures are copied out for `--dump-dom`.
const PHONE_HTML: &str = r#"<!DOCTYPE html>
<html><body style="margin: 0">
<iframe id="phone" src="wide.html" style="width: 390px; height: 844px; border: 0"></iframe>
<script>
  function copy() {
    var frame = document.getElementById("phone").contentDocument;
    var figures = frame && frame.getElementById("labbook-measure");
    if (!figures) { setTimeout(copy, 100); return; }
    var out = document.createElement("pre");
    out.id = "labbook-measure";
    out.hidden = true;
    out.textContent = figures.textContent;
    document.body.appendChild(out);
  }
  copy();
</script>
</body></html>
"#;

/// `rgb(r, g, b)` or `rgba(…)` as relative luminance (WCAG 2).
fn luminance(css: &str) -> f64 {
    let inside = css
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inside, _)| inside)
        .unwrap_or_else(|| panic!("not a colour: {css}"));
    let channels: Vec<f64> = inside
        .split(',')
        .take(3)
        .map(|c| c.trim().parse::<f64>().expect("channel") / 255.0)
        .map(|c| {
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        })
        .collect();
    0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]
}

/// On a phone-sized window in mdBook's dark `coal` theme, the wide expected output scrolls inside
/// its panel: neither the panel nor the page is wider than the screen, and the text is readable
/// on the panel (contrast at least 4.5:1, WCAG AA).
#[test]
fn wide_expected_output_scrolls_inside_its_panel_on_a_dark_phone() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let (tmp, html) = wide_book(
        "\n[output.html]\ndefault-theme = \"coal\"\npreferred-dark-theme = \"coal\"\n\
         additional-css = [\"theme/labbook.css\"]\nadditional-js = [\"measure.js\"]\n",
        &[("measure.js", MEASURE_JS)],
    );
    std::fs::write(html.join("phone.html"), PHONE_HTML).expect("phone.html");
    let base = serve(html);
    let profile = tmp.path().join("chromium-profile");
    let dom = run_chromium(
        &browser,
        &profile,
        &[
            "--window-size=600,900",
            "--dump-dom",
            &format!("{base}/phone.html"),
        ],
    );
    let json = dom
        .split_once("<pre id=\"labbook-measure\" hidden=\"\">")
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .map(|(json, _)| json.replace("&quot;", "\"").replace("&amp;", "&"))
        .unwrap_or_else(|| panic!("the measuring script did not run:\n{dom}"));
    let figures: serde_json::Value = serde_json::from_str(&json).expect("figures parse");
    let number = |v: &serde_json::Value| v.as_f64().expect("a number");
    let viewport = number(&figures["viewport"]);
    assert_eq!(viewport, 390.0, "not a phone-sized viewport: {figures}");
    assert!(
        figures["theme"]
            .as_str()
            .is_some_and(|t| t.split(' ').any(|c| c == "coal")),
        "the coal theme is not applied: {figures}"
    );
    assert!(
        number(&figures["page"]) <= viewport,
        "the page scrolls sideways: {figures}"
    );
    let panels = figures["panels"].as_array().expect("panels");
    assert_eq!(panels.len(), 1, "{figures}");
    let panel = &panels[0];
    assert!(number(&panel["left"]) >= 0.0, "{figures}");
    assert!(
        number(&panel["right"]) <= viewport,
        "the panel is wider than the screen: {figures}"
    );
    assert!(
        number(&panel["body_right"]) <= number(&panel["right"]) + 0.5,
        "the output runs past its panel's edge (clipped, not scrollable): {figures}"
    );
    assert!(
        number(&panel["body_scroll"]) > 2.0 * number(&panel["body_client"]),
        "the wide line is not wider than its panel: {figures}"
    );
    assert!(
        number(&panel["scrolled_to"]) >= number(&panel["body_scroll"]) - 1.0,
        "the end of the wide line cannot be scrolled to: {figures}"
    );
    let (fg, bg) = (
        luminance(panel["color"].as_str().expect("color")),
        luminance(panel["background"].as_str().expect("background")),
    );
    let contrast = (fg.max(bg) + 0.05) / (fg.min(bg) + 0.05);
    assert!(
        bg < 0.2,
        "the panel is not dark in the coal theme: {figures}"
    );
    assert!(
        contrast >= 4.5,
        "contrast {contrast:.1}:1 in the coal theme: {figures}"
    );
}
