//! Fuzzes the chapter parser and both plan renderings: arbitrary bytes must never panic.
//!
//! Run with the dictionary of the dialects labbook reads (admonitions, tabs, attribute fences,
//! front matter, Hugo shortcodes, Killercoda markers, prompts, placeholders), so that the fuzzer
//! reaches them: `cargo fuzz run parse_and_plan -- -dict=markdown.dict`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The CLI rejects non-UTF-8 before parsing; lossy conversion keeps the fuzzer exploring Markdown.
    let text = String::from_utf8_lossy(data);
    if let Ok(lab) = labbook::Lab::parse("fuzz.md", &text) {
        let _ = labbook::plan::to_text(&lab);
        let _ = serde_json::to_string(&labbook::plan::to_json([&lab]));
    }
});
