//! Fixture-driven tests of the lab model: every `fixtures/labs/*.md` is planned, and its text and
//! JSON plans are compared with the accepted insta snapshots (`cargo insta review` accepts changes).

use std::path::Path;

use labbook::Lab;

fn lab_for(path: &Path) -> Lab {
    let source = std::fs::read_to_string(path).expect("fixture is readable");
    let name = path.file_name().expect("file name").to_string_lossy();
    Lab::parse(Path::new("fixtures/labs").join(&*name), &source).expect("fixture parses")
}

#[test]
fn text_plans() {
    insta::glob!("../../fixtures/labs", "*.md", |path| {
        insta::assert_snapshot!(labbook::plan::to_text(&lab_for(path)));
    });
}

#[test]
fn json_plans() {
    insta::glob!("../../fixtures/labs", "*.md", |path| {
        let lab = lab_for(path);
        insta::assert_json_snapshot!(labbook::plan::to_json([&lab]));
    });
}

/// Every kind is produced by at least one fixture without an annotation, except those that only
/// an annotation can give.
#[test]
fn fixtures_cover_every_kind() {
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(crate::support::root().join("fixtures/labs")).expect("fixtures")
    {
        let path = entry.expect("entry").path();
        for step in lab_for(&path).steps {
            if !step.annotation.is_present() {
                seen.insert(step.kind);
            }
        }
    }
    let missing: Vec<_> = labbook::StepKind::ALL
        .iter()
        .filter(|k| !seen.contains(k))
        .collect();
    assert!(missing.is_empty(), "no fixture infers {missing:?}");
}
