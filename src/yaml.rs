//! YAML documents with the line of every node, read with serde-saphyr.
//!
//! The manifest checks deserialize into typed structs through `serde_json::Value` (so that
//! serde_ignored and serde_path_to_error can name the path of an unknown field or a wrong type),
//! and then need the line of that path in the heredoc. This module keeps both: a small tree whose
//! nodes carry their line, built by serde-saphyr's `Spanned` wrapper (no hand-written YAML parser),
//! and a lookup from a path to the line.
//!
//! It lives in the model (layer 3) because `Lab::manifests` (layer 5) parses every manifest once,
//! for the lint's checks and the kind backend's namespace scope alike.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// One YAML node and the 1-based line (within the parsed text) where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The node's value.
    pub value: Value,
    /// The line of the node itself (for a nested mapping, its first key).
    pub line: usize,
}

/// A mapping entry: the key, the key's line, and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key, as text.
    pub key: String,
    /// The line of the key.
    pub line: usize,
    /// The value under the key.
    pub value: Node,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// A string, number or boolean, as YAML resolved it.
    Scalar(serde_json::Value),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<Entry>),
}

/// YAML that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// The 1-based line within the parsed text.
    pub line: usize,
    /// The parser's message, without location.
    pub message: String,
}

/// One step of a path into a document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

impl fmt::Display for Seg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seg::Key(k) => f.write_str(k),
            Seg::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Writes a path the way Kubernetes docs do: `spec.template.spec.containers[0].image`.
pub fn path_text(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Parses every document of a multi-document stream; empty documents are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, YamlError> {
    let options = serde_saphyr::options! {
        with_snippet: false,
    };
    serde_saphyr::from_str_multiple_with_options::<Node, Vec<Node>>(text, options).map_err(|e| {
        let line = e.location().map_or(1, |l| l.line().max(1) as usize);
        let message = e.to_string();
        // The message may end with its own location; the caller shows the Markdown line instead.
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .trim()
            .to_string();
        YamlError { line, message }
    })
}

impl Node {
    /// The value under a mapping key.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    /// The scalar as text, for strings, numbers and booleans.
    pub fn as_str(&self) -> Option<String> {
        match &self.value {
            Value::Scalar(serde_json::Value::String(s)) => Some(s.clone()),
            Value::Scalar(other) => Some(other.to_string()),
            _ => None,
        }
    }

    /// The node as JSON, the form the typed checks and the cluster model use.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Scalar(v) => v.clone(),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// The line that best shows `path`: the key of its last step that exists, so that an unknown
    /// field points at its own key and a wrong value at the key that holds it.
    pub fn line_of(&self, path: &[Seg]) -> usize {
        let mut node = self;
        let mut line = self.line;
        for seg in path {
            match (seg, &node.value) {
                (Seg::Key(k), Value::Map(entries)) => match entries.iter().find(|e| &e.key == k) {
                    Some(entry) => {
                        line = entry.line;
                        node = &entry.value;
                    }
                    None => return line,
                },
                (Seg::Index(i), Value::Seq(items)) => match items.get(*i) {
                    Some(item) => {
                        line = item.line;
                        node = item;
                    }
                    None => return line,
                },
                _ => return line,
            }
        }
        line
    }

    /// The node at `path`, if it exists.
    pub fn at(&self, path: &[Seg]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = match (seg, &node.value) {
                (Seg::Key(k), Value::Map(_)) => node.get(k)?,
                (Seg::Index(i), Value::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            value: spanned.value,
            line: spanned.referenced.line() as usize,
        })
    }
}

/// A mapping key: any scalar, kept as text, with its line.
struct Key {
    text: String,
    line: usize,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        let text = match spanned.value {
            Value::Scalar(serde_json::Value::String(s)) => s,
            Value::Scalar(other) => other.to_string(),
            Value::Null => "null".to_string(),
            // Complex keys are legal YAML but never appear in manifests; keep something readable.
            Value::Seq(_) | Value::Map(_) => "?".to_string(),
        };
        Ok(Key {
            text,
            line: spanned.referenced.line() as usize,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Scalar(v.into()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Scalar(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Scalar(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Scalar(
            serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into),
        ))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Scalar(v.into()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Scalar(v.into()))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Scalar(
            String::from_utf8_lossy(v).into_owned().into(),
        ))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Key>()? {
            let value = map.next_value::<Node>()?;
            entries.push(Entry {
                key: key.text,
                line: key.line,
                value,
            });
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_know_their_lines() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: \"1\"\n---\nkind: Service\nspec:\n  ports:\n  - port: 80\n    name: http\n";
        let docs = parse_documents(text).expect("parses");
        assert_eq!(docs.len(), 2);
        let cases: &[(usize, &[Seg], usize)] = &[
            (0, &[Seg::Key("kind".into())], 2),
            (
                0,
                &[Seg::Key("metadata".into()), Seg::Key("name".into())],
                4,
            ),
            (0, &[Seg::Key("data".into()), Seg::Key("missing".into())], 5),
            (
                1,
                &[
                    Seg::Key("spec".into()),
                    Seg::Key("ports".into()),
                    Seg::Index(0),
                    Seg::Key("name".into()),
                ],
                12,
            ),
        ];
        for (doc, path, line) in cases {
            assert_eq!(docs[*doc].line_of(path), *line, "{path:?}");
        }
        assert_eq!(
            docs[1].to_json(),
            serde_json::json!({"kind": "Service", "spec": {"ports": [{"port": 80, "name": "http"}]}})
        );
    }

    #[test]
    fn errors_have_a_line() {
        let cases = [
            ("a: 1\nb: [1, 2\n", 2..=3),
            ("a: 1\n  b: 2\n", 2..=2),
            ("a: 1\na: 2\n", 2..=2),
        ];
        for (text, lines) in cases {
            let error = parse_documents(text).expect_err(text);
            assert!(lines.contains(&error.line), "{text:?}: {error:?}");
            assert!(!error.message.is_empty());
        }
    }

    #[test]
    fn empty_and_odd_input_does_not_panic() {
        for text in [
            "",
            "---\n",
            "---\n---\n",
            "[",
            "? [a]\n: b\n",
            "*x",
            "\u{0}",
        ] {
            let _ = parse_documents(text);
        }
    }

    #[test]
    fn paths_read_like_kubernetes_docs() {
        let path = [
            Seg::Key("spec".into()),
            Seg::Key("containers".into()),
            Seg::Index(0),
            Seg::Key("image".into()),
        ];
        assert_eq!(path_text(&path), "spec.containers[0].image");
    }
}
