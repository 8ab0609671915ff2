//! `labbook init [DIR]`: scaffold a course, as `mdbook init` scaffolds a book: `book.toml` with
//! the preprocessor, the stylesheet and `extra-watch-dirs = ["snapshots"]` (so `mdbook serve`
//! rebuilds when a snapshot is accepted), `SUMMARY.md`, a first lab that runs without a cluster,
//! and a GitHub workflow that lints and runs it.
//!
//! It only adds missing files: a file that exists is kept as it is and named in the output, so
//! `labbook init` on an existing book just adds the stylesheet.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::EXIT_OK;

const BOOK_TOML: &str = r#"[book]
title = "My course"
authors = []
language = "en"
src = "src"

[build]
# `mdbook serve` rebuilds when `labbook run --accept` or `labbook review` accepts a snapshot.
extra-watch-dirs = ["snapshots"]

[preprocessor.labbook]
# Readers start every lab in the book folder.
start-dir = "."

[output.html]
# The badges, expected output and banners that mdbook-labbook adds need this stylesheet.
additional-css = ["theme/labbook.css"]
"#;

const SUMMARY: &str = "# Summary

[Introduction](README.md)

- [Your first lab](first-lab.md)
";

const README: &str = "# Introduction

Each chapter with commands is a lab: `labbook run` executes it like a careful reader, and the
book shows when it was last verified. Start with the first lab.
";

const FIRST_LAB: &str = r#"# Your first lab

This lab needs nothing but a shell. Replace it with your own: every `bash` block runs, in order,
in one terminal, and each Verify section is checked against the output you accepted.

## Set up

Make a folder for the lab and step into it:

```bash
mkdir -p workspace
cd workspace
```

## Write a configuration file

```bash
cat > app.conf <<'EOF'
name = shop
replicas = 2
EOF
```

## Verify the configuration

The file holds two settings:

```bash
grep -c ' = ' app.conf
```

## Cleanup

```bash
cd ..
rm -rf workspace
```
"#;

const WORKFLOW: &str = r#"# Lints the course and runs its labs on every push and pull request. Run it by hand with
# `accept` ticked to record the snapshots of new labs: they come back as the
# `recorded-snapshots` artifact, ready to commit into snapshots/.
name: labs

on:
  push:
    branches: [main]
  pull_request:
  workflow_dispatch:
    inputs:
      accept:
        description: "Record mode: accept every output as the new snapshot"
        type: boolean
        default: false

permissions:
  contents: read

concurrency:
  group: labs-${{ github.ref }}
  cancel-in-progress: ${{ github.ref != 'refs/heads/main' }}

jobs:
  labs:
    runs-on: ubuntu-24.04
    timeout-minutes: 30
    steps:
      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0

      - name: Install labbook
        run: cargo install --locked --git https://github.com/labbook/labbook labbook-harness

      - name: Lint
        run: labbook lint .

      - name: Run the labs
        if: ${{ !cancelled() }}
        env:
          ACCEPT: ${{ inputs.accept }}
        run: |
          accept=()
          if [ "$ACCEPT" = "true" ]; then accept=(--accept); fi
          status=0
          labbook run . --report out "${accept[@]}" || status=$?
          mkdir -p out/pending-snapshots
          find snapshots -name '*.snap.new' -exec cp {} out/pending-snapshots/ \; 2>/dev/null || true
          if [ -f out/report.json ]; then labbook report summary out >> "$GITHUB_STEP_SUMMARY"; fi
          exit "$status"

      - name: Upload the report and pending snapshots
        if: always()
        uses: actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02 # v4.6.2
        with:
          name: labs-report
          path: out/
          if-no-files-found: warn

      - name: Upload the recorded snapshots
        if: ${{ always() && inputs.accept }}
        uses: actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02 # v4.6.2
        with:
          name: recorded-snapshots
          path: snapshots/*.snap
          if-no-files-found: warn
"#;

/// The files of a new course, relative to its folder.
pub fn files() -> [(&'static str, &'static str); 6] {
    [
        ("book.toml", BOOK_TOML),
        (mdbook_labbook::STYLESHEET_PATH, mdbook_labbook::STYLESHEET),
        ("src/SUMMARY.md", SUMMARY),
        ("src/README.md", README),
        ("src/first-lab.md", FIRST_LAB),
        (".github/workflows/labs.yml", WORKFLOW),
    ]
}

/// Runs `labbook init DIR`.
pub fn run(dir: &Path) -> anyhow::Result<u8> {
    let mut created: Vec<PathBuf> = Vec::new();
    let mut kept: Vec<PathBuf> = Vec::new();
    for (relative, text) in files() {
        let path = dir.join(relative);
        if path.exists() || path.is_symlink() {
            kept.push(path);
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create {}", parent.display()))?;
        }
        // `create_new`: never overwrite a file that appeared in the meantime.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, text.as_bytes()))
            .with_context(|| format!("failed to write {}", path.display()))?;
        created.push(path);
    }
    let snapshots = dir.join("snapshots");
    if !snapshots.exists() {
        std::fs::create_dir_all(&snapshots)
            .with_context(|| format!("failed to create {}", snapshots.display()))?;
        created.push(snapshots);
    }
    let mut out = String::new();
    for path in &created {
        out.push_str(&format!("created {}\n", path.display()));
    }
    for path in &kept {
        out.push_str(&format!("kept    {} (it exists)\n", path.display()));
    }
    let shown = dir.display();
    out.push_str(&format!(
        "\nNext: `labbook run {shown} --accept` records the first lab's snapshots, \
         `labbook build {shown}` builds the book.\n"
    ));
    crate::cli::print_stdout(&out)?;
    Ok(EXIT_OK)
}
