//! A cheap, deterministic stand-in for the fuzzer that runs in every `cargo test`: mutated
//! fixtures and random bytes must parse or fail with an error, never panic.

/// A small xorshift generator, so the test is reproducible without extra dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "```bash\n",
    "```\n",
    "~~~sh\n",
    "````\n",
    "<!-- labbook: kind=verify -->\n",
    "<!-- labbook:",
    "-->",
    "# Title\n",
    "## Verify: x\n",
    "Inside the debug pod:\n\n",
    "kubectl run d -it --rm -- sh\n",
    "cat > f <<EOF\n",
    "EOF\n",
    "$ echo\n",
    "> ",
    "- item\n  ",
    "\r\n",
    "\0",
    "$(",
    "'",
    "\"",
    "`",
    "while true; do",
    "done &\n",
    "<!-- labbook: expect=split:a=50,b=50 -->\n",
    "\u{feff}",
    "é",
    // Other dialects: admonitions, tabs, attribute fences, front matter, shortcodes, markers.
    "!!! tip \"Stuck?\"\n    ",
    "???+ note\n    ",
    "=== \"Linux\"\n    ",
    "=== \"macOS\"\n\n    ```bash\n    ls\n",
    "```{.shell .copy}\n",
    "```bash {linenos=true}\n",
    "```bash,norun\n",
    "```shell-session\n",
    "~~~\n",
    "---\ntitle: \"T\"\n---\n",
    "+++\ntitle = 'T'\n+++\n",
    "{{< text bash >}}\n",
    "{{< /text >}}\n",
    "```{{exec}}\n",
    "```{{copy}}\n",
    "--8<-- \"part.md\"\n",
    "<your-namespace>",
    "{{ var }}",
    "YOUR_PROJECT_ID",
    "> [!NOTE]\n> ",
    "Output:\n\n",
    "NAME   READY   STATUS\n",
    "<!-- expected_similarity=0.8 -->\n",
    "<!-- labbook: var.x=y -->\n",
];

#[test]
fn mutated_markdown_never_panics() {
    let fixtures = crate::support::root().join("fixtures/labs");
    let mut seeds: Vec<String> = std::fs::read_dir(fixtures)
        .expect("fixtures")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("utf-8 fixture"))
        .collect();
    seeds.push(String::new());
    let mut rng = Rng(0x005e_ed1a_b00c);
    for round in 0..3000 {
        let mut text = seeds[round % seeds.len()].clone();
        for _ in 0..1 + rng.below(6) {
            let piece = PIECES[rng.below(PIECES.len())];
            let mut at = rng.below(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            if rng.below(3) == 0 && at < text.len() {
                let mut end = (at + rng.below(40)).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(at..end, "");
            }
            text.insert_str(at.min(text.len()), piece);
        }
        if let Ok(lab) = labbook::Lab::parse("mutated.md", &text) {
            let _ = labbook::plan::to_text(&lab);
            let _ = serde_json::to_string(&labbook::plan::to_json([&lab])).expect("serializes");
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..500 {
        let len = rng.below(400);
        let bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0xff) as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        let _ = labbook::Lab::parse("random.md", &text);
    }
}
