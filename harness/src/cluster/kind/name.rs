//! Cluster names: `labbook-<run>-<lab>`, valid for kind, Docker and DNS, unique per lab and run.

use labbook::text::Style;

/// The longest cluster name labbook makes. kind names its node container `<name>-control-plane`
/// and its context `kind-<name>`; both must stay valid host and DNS names.
pub const MAX_NAME_LEN: usize = 40;

/// The cluster name of a lab in a run: `labbook-<run>-<lab>`, lowercase letters, digits and
/// dashes, at most [`MAX_NAME_LEN`] characters.
///
/// A run id longer than 8 characters is replaced by its hash (a prefix of a timestamp would
/// collide between runs on the same day), and a lab slug too long for the rest is cut and given
/// a hash of the whole slug, so that two labs sharing a long prefix still get different
/// clusters. The same inputs always give the same name.
pub fn cluster_name(run_id: &str, lab_slug: &str) -> String {
    let run = sanitize(run_id);
    let run = if run.is_empty() {
        "run".to_string()
    } else if run.len() > 8 {
        format!("{:08x}", fnv1a(run_id.as_bytes()) as u32)
    } else {
        run
    };
    let lab = match sanitize(lab_slug) {
        s if s.is_empty() => "lab".to_string(),
        s => s,
    };
    let name = format!("labbook-{run}-{lab}");
    if name.len() <= MAX_NAME_LEN {
        return name;
    }
    let hash = format!("{:06x}", fnv1a(lab_slug.as_bytes()) & 0xff_ffff);
    let room = MAX_NAME_LEN - "labbook-".len() - run.len() - 1 - hash.len() - 1;
    let cut = lab[..room].trim_end_matches('-');
    format!("labbook-{run}-{cut}-{hash}")
}

/// Lowercase ASCII letters and digits, other runs of characters as one dash, no dash at the ends.
fn sanitize(text: &str) -> String {
    labbook::text::sanitize(text, Style::AsciiSlug)
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust versions and platforms, unlike
/// `DefaultHasher`, so cluster names are reproducible.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names() {
        let long_lab = "module-05-traffic-management-and-deployment-safety";
        let cases = [
            ("run1", "intro", "labbook-run1-intro"),
            (
                "RUN_1",
                "Module 02/Service Mesh.md",
                "labbook-run-1-module-02-service-mesh-md",
            ),
            ("", "", "labbook-run-lab"),
            ("r", "--é--", "labbook-r-lab"),
            ("20250101-120000", "intro", "labbook-ac8a352e-intro"),
            ("r1", long_lab, "labbook-r1-module-05-traffic-mana-b389a4"),
        ];
        for (run, lab, want) in cases {
            let name = cluster_name(run, lab);
            assert_eq!(name, want, "{run} {lab}");
            assert!(name.len() <= MAX_NAME_LEN, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
            assert!(!name.ends_with('-'), "{name}");
        }
        // Labs that share a long prefix still get their own cluster.
        let a = cluster_name("r1", &format!("{long_lab}-part-one"));
        let b = cluster_name("r1", &format!("{long_lab}-part-two"));
        assert_ne!(a, b);
        assert_eq!(a.len(), MAX_NAME_LEN);
    }
}
