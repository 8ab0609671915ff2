//! `labbook report merge DIR… --out DIR`: one report from the shards of a partitioned run.
//!
//! Each shard's `report.json` is read; the merged one holds every lab of every shard, in the
//! order the folders were given, and its `junit.xml` is written from it by the same function
//! `labbook run` uses, so the two files can never disagree. Diagnostics files the labs list are
//! copied beside it, so nothing a shard recorded is lost.
//!
//! A merge is refused (exit code 2) when two shards hold the same lab (the partition was wrong,
//! or one shard's folder was given twice), when the reports come from labbook versions with
//! different report contracts, or when they ran on different cluster backends (one banner states
//! one backend: results of a version matrix are kept apart, not merged).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use labbook::report::Report;

use crate::cli::EXIT_OK;

/// The report contract of a labbook version: the major version, or `0.minor` before 1.0, as
/// Cargo reads compatibility.
pub fn contract(version: &str) -> String {
    let mut parts = version.trim().split('.');
    match (parts.next(), parts.next()) {
        (Some("0"), Some(minor)) => format!("0.{minor}"),
        (Some(major), _) => major.to_string(),
        (None, _) => String::new(),
    }
}

/// One shard's report and the file it came from.
struct Shard {
    file: PathBuf,
    report: Report,
}

fn read(dir: &Path) -> anyhow::Result<Shard> {
    let file = dir.join("report.json");
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("failed to read {}", file.display()))?;
    let report = serde_json::from_str(&text)
        .with_context(|| format!("failed to read {}: not a labbook report", file.display()))?;
    Ok(Shard { file, report })
}

/// Merges reports already read; `Err` names the files that cannot be merged.
fn merge(shards: &[Shard]) -> anyhow::Result<Report> {
    let Some(first) = shards.first() else {
        bail!("failed to merge: no report folder given");
    };
    let version = |s: &Shard| s.report.tools.get("labbook").cloned().unwrap_or_default();
    for shard in shards {
        if shard.report.version != first.report.version {
            bail!(
                "failed to merge {} (report contract {}) with {} (report contract {}): run \
                 every shard with the same labbook",
                first.file.display(),
                first.report.version,
                shard.file.display(),
                shard.report.version,
            );
        }
        let (a, b) = (version(first), version(shard));
        if contract(&a) != contract(&b) {
            bail!(
                "failed to merge {} (labbook {}) with {} (labbook {}): their report contracts \
                 differ; run every shard with the same labbook",
                first.file.display(),
                if a.is_empty() { "unknown" } else { &a },
                shard.file.display(),
                if b.is_empty() { "unknown" } else { &b },
            );
        }
        if shard.report.backend != first.report.backend {
            bail!(
                "failed to merge {} (backend {}) with {} (backend {}): a merged report states \
                 one cluster backend; keep results of different backends apart",
                first.file.display(),
                first.report.backend,
                shard.file.display(),
                shard.report.backend
            );
        }
    }

    // A lab is in two reports only when it ran twice with the same versions: the combinations
    // of a version matrix are kept apart, each lab carrying its own.
    let mut owners: BTreeMap<String, Vec<&Path>> = BTreeMap::new();
    for shard in shards {
        for lab in &shard.report.labs {
            let mut key = crate::partition::path_key(Path::new(&lab.path));
            if !lab.versions.is_empty() {
                let versions: Vec<String> = lab
                    .versions
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect();
                key.push_str(&format!(" ({})", versions.join(", ")));
            }
            owners.entry(key).or_default().push(&shard.file);
        }
    }
    let duplicates: Vec<String> = owners
        .iter()
        .filter(|(_, files)| files.len() > 1)
        .map(|(lab, files)| {
            let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            format!("  {lab}: in {}", files.join(", "))
        })
        .collect();
    if !duplicates.is_empty() {
        bail!(
            "failed to merge: {} lab{} in more than one report (were the shards partitioned \
             with the same --partition total?):\n{}",
            duplicates.len(),
            if duplicates.len() == 1 {
                " is"
            } else {
                "s are"
            },
            duplicates.join("\n")
        );
    }

    // Tool versions that differ between runners are all kept, so the banner does not claim one.
    let mut tools: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for shard in shards {
        for (name, value) in &shard.report.tools {
            let values = tools.entry(name.clone()).or_default();
            if !values.contains(value) {
                values.push(value.clone());
            }
        }
    }
    // The versions every shard shares; a merge across combinations states none of its own.
    let mut versions = first.report.versions.clone();
    versions.retain(|k, v| shards.iter().all(|s| s.report.versions.get(k) == Some(v)));
    Ok(Report {
        version: first.report.version,
        versions,
        // RFC 3339 UTC strings sort by time: the merged run started with its first shard.
        started_at: shards
            .iter()
            .map(|s| s.report.started_at.clone())
            .min()
            .unwrap_or_default(),
        backend: first.report.backend.clone(),
        tools: tools
            .into_iter()
            .map(|(name, values)| (name, values.join(" / ")))
            .collect(),
        labs: shards
            .iter()
            .flat_map(|s| s.report.labs.iter().cloned())
            .collect(),
    })
}

/// Runs `labbook report merge`; `Err` is bad input (exit code 2).
pub fn run(dirs: &[PathBuf], out: &Path) -> anyhow::Result<u8> {
    let shards: Vec<Shard> = dirs.iter().map(|d| read(d)).collect::<Result<_, _>>()?;
    let merged = merge(&shards)?;
    let target = out.join("report.json");
    if target.exists() {
        bail!(
            "failed to merge into {}: it already holds a report.json; give an empty or new folder",
            out.display()
        );
    }
    // Diagnostics are named relative to their report folder: copy them to the same place.
    for (shard, dir) in shards.iter().zip(dirs) {
        for lab in &shard.report.labs {
            for file in &lab.diagnostics {
                let (from, to) = (dir.join(file), out.join(file));
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("failed to create {}", parent.display()))?;
                }
                std::fs::copy(&from, &to).with_context(|| {
                    format!("failed to copy {} to {}", from.display(), to.display())
                })?;
            }
        }
    }
    crate::engine::reports::write(out, &merged)?;
    let shard_count = shards.len();
    crate::cli::print_stdout(&format!(
        "labbook: merged {} lab{} from {shard_count} report{} into {}\n",
        merged.labs.len(),
        if merged.labs.len() == 1 { "" } else { "s" },
        if shard_count == 1 { "" } else { "s" },
        out.display()
    ))?;
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use labbook::report::{LabReport, LabStatus};

    use super::*;

    fn shard(file: &str, version: &str, backend: &str, labs: &[&str]) -> Shard {
        Shard {
            file: file.into(),
            report: Report {
                version: labbook::report::CONTRACT_VERSION,
                versions: Default::default(),
                started_at: format!("2026-11-30T0{}:00:00Z", labs.len()),
                backend: backend.into(),
                tools: [("labbook".to_string(), version.to_string())].into(),
                labs: labs
                    .iter()
                    .map(|path| LabReport {
                        path: path.to_string(),
                        title: "T".into(),
                        status: LabStatus::Passed,
                        duration_ms: 1,
                        steps: vec![],
                        warnings: vec![],
                        diagnostics: vec![],
                        versions: Default::default(),
                        images: None,
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn contracts_follow_cargo_compatibility() {
        let cases = [
            ("0.1.0", "0.1"),
            ("0.1.7", "0.1"),
            ("0.2.0", "0.2"),
            ("1.4.2", "1"),
            ("2.0.0", "2"),
            ("", ""),
        ];
        for (version, expected) in cases {
            assert_eq!(contract(version), expected, "{version}");
        }
    }

    #[test]
    fn merges_or_refuses() {
        let cases: [(&[Shard], Result<usize, &str>); 6] = [
            (
                &[
                    shard("a", "0.1.0", "none", &["src/a.md"]),
                    shard("b", "0.1.3", "none", &["src/b.md", "src/c.md"]),
                ],
                Ok(3),
            ),
            (&[shard("a", "0.1.0", "none", &[])], Ok(0)),
            (
                &[
                    shard("a", "0.1.0", "none", &["src/a.md"]),
                    shard("b", "0.1.0", "none", &["./src/a.md"]),
                ],
                Err("src/a.md: in a, b"),
            ),
            (
                &[
                    shard("a", "0.1.0", "none", &["src/a.md"]),
                    shard("b", "0.2.0", "none", &["src/b.md"]),
                ],
                Err("report contracts differ"),
            ),
            (
                &[
                    shard("a", "0.1.0", "none", &["src/a.md"]),
                    shard("b", "0.1.0", "kind", &["src/b.md"]),
                ],
                Err("one cluster backend"),
            ),
            (&[], Err("no report folder")),
        ];
        for (shards, expected) in cases {
            match (merge(shards), expected) {
                (Ok(report), Ok(labs)) => assert_eq!(report.labs.len(), labs),
                (Err(e), Err(message)) => {
                    assert!(format!("{e:#}").contains(message), "{e:#}");
                }
                (got, want) => panic!("got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn keeps_every_tool_version_and_the_earliest_start() {
        let shards = [
            shard("a", "0.1.0", "none", &["a.md", "b.md"]),
            shard("b", "0.1.1", "none", &["c.md"]),
        ];
        let merged = merge(&shards).expect("merges");
        assert_eq!(merged.tools["labbook"], "0.1.0 / 0.1.1");
        assert_eq!(merged.started_at, "2026-11-30T01:00:00Z");
    }
}
