//! `--partition slice:K/N | hash:K/N`: splitting a course's labs across CI jobs, in nextest's
//! syntax.
//!
//! Shards are numbered from 1. `slice:` deals the labs out in reading order (the i-th lab, from 0,
//! goes to shard `i % N + 1`), so shards are balanced but a lab moves when one is added before
//! it. `hash:` places each lab by a hash of its key, so a lab stays in its shard whatever is
//! added or removed elsewhere: a shard's snapshots and caches stay warm across course edits.
//!
//! The key is the chapter's path relative to the book's `src` folder (or the path as given,
//! without a leading `./`, outside a book), so every machine and every spelling of the command
//! line puts a lab in the same shard. The hash is FNV-1a 64, written here because `std`'s hasher
//! is not promised to stay the same across Rust releases.

use std::fmt;
use std::path::{Component, Path};
use std::str::FromStr;

use labbook::{Course, Lab};

/// How the labs are split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// By position in reading order.
    Slice,
    /// By a stable hash of the lab's key.
    Hash,
}

/// One shard out of a total: `hash:2/4` is the second of four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// How labs are assigned.
    pub strategy: Strategy,
    /// This shard, from 1.
    pub shard: u64,
    /// How many shards there are.
    pub total: u64,
}

/// A `--partition` value that is not `slice:K/N` or `hash:K/N` with `1 <= K <= N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    /// No known strategy prefix.
    #[error("failed to read partition `{0}`: expected `slice:K/N` or `hash:K/N`, e.g. `hash:1/4`")]
    Syntax(String),
    /// K or N is not a number.
    #[error("failed to read partition `{0}`: K and N must be whole numbers, e.g. `hash:1/4`")]
    Number(String),
    /// N is zero, K is zero, or K is above N.
    #[error(
        "failed to read partition `{0}`: the shard K must be between 1 and the total N (shards count from 1)"
    )]
    Range(String),
}

impl FromStr for Partition {
    type Err = PartitionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (strategy, rest) = match text.split_once(':') {
            Some(("slice", rest)) => (Strategy::Slice, rest),
            Some(("hash", rest)) => (Strategy::Hash, rest),
            _ => return Err(PartitionError::Syntax(text.into())),
        };
        let (shard, total) = rest
            .split_once('/')
            .ok_or_else(|| PartitionError::Syntax(text.into()))?;
        let number = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| PartitionError::Number(text.into()))
        };
        let (shard, total) = (number(shard)?, number(total)?);
        if shard == 0 || total == 0 || shard > total {
            return Err(PartitionError::Range(text.into()));
        }
        Ok(Self {
            strategy,
            shard,
            total,
        })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let strategy = match self.strategy {
            Strategy::Slice => "slice",
            Strategy::Hash => "hash",
        };
        write!(f, "{strategy}:{}/{}", self.shard, self.total)
    }
}

impl Partition {
    /// Whether the lab at `index` (in reading order, from 0) with `key` belongs to this shard.
    pub fn contains(&self, index: usize, key: &str) -> bool {
        let bucket = match self.strategy {
            Strategy::Slice => index as u64 % self.total,
            Strategy::Hash => fnv1a(key.as_bytes()) % self.total,
        };
        bucket + 1 == self.shard
    }

    /// The positions (in `keys`' order) of the labs in this shard.
    pub fn select<S: AsRef<str>>(&self, keys: &[S]) -> Vec<usize> {
        keys.iter()
            .enumerate()
            .filter(|(i, key)| self.contains(*i, key.as_ref()))
            .map(|(i, _)| i)
            .collect()
    }
}

/// The key a lab is placed by: its path relative to the book's `src` folder, or as given
/// (without `./`) outside a book, with `/` separators.
pub fn lab_key(course: &Course, lab: &Lab) -> String {
    let relative = course
        .src
        .as_deref()
        .and_then(|src| lab.path.strip_prefix(src).ok())
        .unwrap_or(&lab.path);
    path_key(relative)
}

/// A path with `/` separators and no `./`, so that two spellings of one path are one key.
pub fn path_key(path: &Path) -> String {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect::<std::path::PathBuf>()
        .to_string_lossy()
        .replace('\\', "/")
}

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Keeps only this shard's labs of each course (all of them without a partition). Slices are
/// dealt across the courses together, in the order the paths were given.
pub fn filter(courses: &mut [Course], partition: Option<Partition>) {
    let Some(partition) = partition else { return };
    let mut index = 0;
    for course in courses.iter_mut() {
        let labs = std::mem::take(&mut course.labs);
        let keys: Vec<String> = labs.iter().map(|lab| lab_key(course, lab)).collect();
        course.labs = labs
            .into_iter()
            .zip(keys)
            .filter(|(_, key)| {
                let keep = partition.contains(index, key);
                index += 1;
                keep
            })
            .map(|(lab, _)| lab)
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{}/lab-{i}.md", i % 7)).collect()
    }

    #[test]
    fn parses_nextest_syntax_and_refuses_the_rest() {
        let ok = [
            ("slice:1/2", Strategy::Slice, 1, 2),
            ("hash:4/4", Strategy::Hash, 4, 4),
            ("hash:1/1", Strategy::Hash, 1, 1),
        ];
        for (text, strategy, shard, total) in ok {
            let p: Partition = text.parse().expect(text);
            assert_eq!(
                p,
                Partition {
                    strategy,
                    shard,
                    total
                }
            );
            assert_eq!(p.to_string(), text);
        }
        let bad = [
            ("3/2", "expected `slice:K/N`"),
            ("hash:3/2", "between 1 and the total"),
            ("slice:0/4", "between 1 and the total"),
            ("hash:1/0", "between 1 and the total"),
            ("hash:a/2", "whole numbers"),
            ("hash:-1/2", "whole numbers"),
            ("hash:1", "expected `slice:K/N`"),
            ("count:1/2", "expected `slice:K/N`"),
            ("", "expected `slice:K/N`"),
        ];
        for (text, message) in bad {
            let err = text.parse::<Partition>().expect_err(text).to_string();
            assert!(err.contains(message), "{text}: {err}");
            assert!(err.starts_with("failed to read partition"), "{err}");
        }
    }

    #[test]
    fn shards_are_disjoint_and_cover_every_lab() {
        for strategy in [Strategy::Slice, Strategy::Hash] {
            for (labs, total) in [(0, 3), (1, 4), (5, 5), (23, 4), (40, 7), (3, 1)] {
                let keys = keys(labs);
                let mut seen = BTreeSet::new();
                let mut count = 0;
                for shard in 1..=total {
                    let p = Partition {
                        strategy,
                        shard,
                        total,
                    };
                    let picked = p.select(&keys);
                    count += picked.len();
                    seen.extend(picked);
                }
                assert_eq!(count, labs, "{strategy:?} {labs}/{total}: disjoint");
                assert_eq!(
                    seen,
                    (0..labs).collect(),
                    "{strategy:?} {labs}/{total}: union"
                );
            }
        }
    }

    #[test]
    fn slices_are_balanced_in_reading_order() {
        let keys = keys(7);
        let shard = |k| {
            Partition {
                strategy: Strategy::Slice,
                shard: k,
                total: 3,
            }
            .select(&keys)
        };
        assert_eq!(shard(1), [0, 3, 6]);
        assert_eq!(shard(2), [1, 4]);
        assert_eq!(shard(3), [2, 5]);
    }

    #[test]
    fn a_hashed_lab_stays_in_its_shard_when_labs_are_added_elsewhere() {
        let before = keys(20);
        let mut after = vec!["intro.md".to_string(), "m0/new.md".to_string()];
        after.extend(before.iter().cloned());
        after.push("m9/appendix.md".into());
        for shard in 1..=4 {
            let p = Partition {
                strategy: Strategy::Hash,
                shard,
                total: 4,
            };
            let names = |keys: &[String]| -> BTreeSet<String> {
                p.select(keys)
                    .into_iter()
                    .map(|i| keys[i].clone())
                    .collect()
            };
            let old = names(&before);
            let new = names(&after);
            assert!(old.is_subset(&new), "shard {shard}: {old:?} moved");
        }
    }

    #[test]
    fn hash_is_fixed_across_releases() {
        // FNV-1a's published test vectors: a change here moves labs between shards in every CI.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn keys_ignore_how_the_path_was_spelled() {
        let cases = [
            ("./m1/lab.md", "m1/lab.md"),
            ("m1/./lab.md", "m1/lab.md"),
            ("lab.md", "lab.md"),
            ("/abs/m1/lab.md", "/abs/m1/lab.md"),
        ];
        for (path, expected) in cases {
            assert_eq!(path_key(Path::new(path)), expected, "{path}");
        }
    }
}
