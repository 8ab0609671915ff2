//! `labbook images PATH… [--format text|json]`: every container image a course uses, with the
//! file and line of each reference, floating tags flagged.
//!
//! The references come from [`labbook::images::of_course`] (the one reader of images, which the
//! lint and `run --preload` call too); this module only groups them by image and prints them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use labbook::images::{ImageUse, Role, Tag};
use serde_json::json;

use crate::cli::{EXIT_OK, Format};

/// One image and every place that names it.
struct Listed<'a> {
    image: &'a str,
    tag: Tag,
    role: Role,
    uses: Vec<&'a ImageUse>,
}

/// Groups references by image (sorted by name), each place once.
fn group(uses: &[ImageUse]) -> Vec<Listed<'_>> {
    let mut by_image: BTreeMap<&str, Listed<'_>> = BTreeMap::new();
    for used in uses {
        let listed = by_image.entry(&used.image).or_insert_with(|| Listed {
            image: &used.image,
            tag: used.tag,
            role: used.role,
            uses: Vec::new(),
        });
        // A manifest file applied by two labs is one reference.
        if !listed
            .uses
            .iter()
            .any(|u| u.file == used.file && u.line == used.line)
        {
            listed.uses.push(used);
        }
    }
    by_image.into_values().collect()
}

fn tag_note(tag: Tag) -> Option<&'static str> {
    match tag {
        Tag::Latest => Some("floating: the `latest` tag"),
        Tag::Untagged => Some("floating: no tag, which means `latest`"),
        Tag::Dynamic => Some("known only when the lab runs"),
        Tag::Pinned | Tag::Digest => None,
    }
}

fn role_note(role: Role) -> Option<&'static str> {
    match role {
        Role::Node => Some("kind node"),
        Role::Istio => Some("Istio"),
        Role::Workload => None,
    }
}

fn path_text(path: &std::path::Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// The text listing: each image, then its references indented, then a count.
pub fn to_text(uses: &[ImageUse]) -> String {
    let listed = group(uses);
    let mut out = String::new();
    for image in &listed {
        let notes: Vec<&str> = [role_note(image.role), tag_note(image.tag)]
            .into_iter()
            .flatten()
            .collect();
        out.push_str(image.image);
        if !notes.is_empty() {
            out.push_str(&format!("  ({})", notes.join("; ")));
        }
        out.push('\n');
        for used in &image.uses {
            out.push_str(&format!(
                "  {}:{}  {}",
                path_text(&used.file),
                used.line,
                used.source.name()
            ));
            if let Some(applied) = &used.applied_at {
                out.push_str(&format!(
                    ", applied at {}:{}",
                    path_text(&applied.chapter),
                    applied.line
                ));
            }
            out.push('\n');
        }
    }
    let floating = listed.iter().filter(|i| i.tag.is_floating()).count();
    out.push_str(&format!(
        "\n{} image{}, {floating} floating (`:latest` or no tag), {} reference{}\n",
        listed.len(),
        if listed.len() == 1 { "" } else { "s" },
        uses.len(),
        if uses.len() == 1 { "" } else { "s" },
    ));
    out
}

/// The JSON listing: `{"images":[{"image","tag","floating","role","uses":[{"file","line",
/// "source","applied_at"?}]}]}`.
pub fn to_json(uses: &[ImageUse]) -> serde_json::Value {
    let images: Vec<serde_json::Value> = group(uses)
        .iter()
        .map(|image| {
            let uses: Vec<serde_json::Value> = image
                .uses
                .iter()
                .map(|u| {
                    let mut item = json!({
                        "file": path_text(&u.file),
                        "line": u.line,
                        "source": u.source,
                    });
                    if let Some(applied) = &u.applied_at {
                        item["applied_at"] = json!({
                            "chapter": path_text(&applied.chapter),
                            "line": applied.line,
                        });
                    }
                    item
                })
                .collect();
            json!({
                "image": image.image,
                "tag": image.tag,
                "floating": image.tag.is_floating(),
                "role": image.role,
                "uses": uses,
            })
        })
        .collect();
    json!({ "images": images })
}

/// Runs `labbook images`; unreadable input is an error (exit code 2).
pub fn run(paths: &[PathBuf], format: Format) -> anyhow::Result<u8> {
    let mut uses = Vec::new();
    for path in paths {
        let course = labbook::course::load(path)?;
        uses.extend(labbook::images::of_course(&course));
    }
    let text = match format {
        Format::Text => to_text(&uses),
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&to_json(&uses))?;
            text.push('\n');
            text
        }
    };
    crate::cli::print_stdout(&text)?;
    Ok(EXIT_OK)
}
