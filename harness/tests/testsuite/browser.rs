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

#[test]
fn the_built_book_reads_right_in_a_browser() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let (tmp, book) = fixture_book("render-kinds");
    Labbook::new()
        .args(["build", "render-kinds"])
        .current_dir(tmp.path())
        .with_course_css()
        .run()
        .success();
    let base = serve(book.join("book/html"));
    let profile = tmp.path().join("chromium-profile");

    // mdBook's highlighter marks every `<code>` element; the words around it are what matter.
    let dump = |page: &str| {
        run_chromium(
            &browser,
            &profile,
            &["--dump-dom", &format!("{base}/{page}")],
        )
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
    Labbook::new()
        .args(["build", "warned"])
        .current_dir(tmp.path())
        .with_course_css()
        .run()
        .success();
    // The book has the html renderer only, so mdBook writes it to `book/` itself.
    let base = serve(book.join("book"));
    let profile = tmp.path().join("chromium-profile");
    let page = run_chromium(
        &browser,
        &profile,
        &["--dump-dom", &format!("{base}/stale.html")],
    );
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
