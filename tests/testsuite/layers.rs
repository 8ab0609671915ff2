//! The model's modules form layers (see the crate docs): each module may use only modules of its
//! own or an earlier layer, so that there is no import cycle.

use std::path::Path;

/// (module, layer), as in `src/lib.rs`'s `//!` docs.
const LAYERS: &[(&str, u8)] = &[
    ("kinds", 1),
    ("tools", 1),
    ("text", 1),
    ("error", 1),
    ("printed", 1),
    ("redact", 1),
    ("placeholder", 2),
    ("dialect", 2),
    ("shell", 2),
    ("similarity", 2),
    ("kubectl", 3),
    ("yaml", 3),
    ("annotation", 4),
    ("model", 5),
    ("manifest", 5),
    ("infer", 6),
    ("parse", 6),
    ("course", 7),
    ("images", 7),
    ("plan", 8),
    ("report", 8),
    ("snapshot", 8),
];

fn layer(module: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(m, _)| *m == module)
        .map(|(_, l)| *l)
        .unwrap_or_else(|| panic!("module `{module}` has no layer in this table"))
}

#[test]
fn modules_use_only_earlier_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for entry in std::fs::read_dir(&src).expect("src is readable") {
        let path = entry.expect("entry").path();
        let module = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if module == "lib" || path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let own = layer(module);
        let text = std::fs::read_to_string(&path).expect("module is readable");
        // Unit tests may build fixtures with any layer; only the module's own code counts.
        let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
        for (at, _) in code.match_indices("crate::") {
            let used: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if used.is_empty() {
                continue;
            }
            assert!(
                layer(&used) <= own,
                "`{module}` (layer {own}) uses `{used}` (layer {})",
                layer(&used)
            );
        }
        checked += 1;
    }
    assert_eq!(checked, LAYERS.len(), "every module is in the table");
}
