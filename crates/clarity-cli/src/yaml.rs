//! A small block-style YAML emitter for the Kubernetes manifests of `clarity jobs k8s`.
//!
//! Hand-written on purpose: the workspace has no YAML crate (`serde_yaml` is deprecated and not
//! in Cargo.lock), the manifests need only maps, lists, strings, integers, booleans and literal
//! blocks, and a fixed key order (apiVersion, kind, metadata, spec, as people write them) that
//! `serde_json`'s sorted maps would not give. Output is deterministic: keys in the order given.
//!
//! Strings are written plain only when that cannot be read back as anything but the same
//! string (letters, digits, `._/-`, starting with a letter or `/`, and not a YAML 1.1 boolean
//! or null word); every other string is a JSON string literal, which is a valid YAML
//! double-quoted scalar. Multi-line text (the config, the merge script) is a literal block
//! (`|`, `|-` or `|+` as its trailing newlines require) when that is exact, else quoted.

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    Str(String),
    Int(i64),
    Bool(bool),
    /// Text written as a literal block where possible.
    Block(String),
    List(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl From<&str> for Yaml {
    fn from(s: &str) -> Yaml {
        Yaml::Str(s.to_string())
    }
}

impl From<String> for Yaml {
    fn from(s: String) -> Yaml {
        Yaml::Str(s)
    }
}

impl Yaml {
    /// A map with the entries in this order.
    pub fn map<'a>(entries: impl IntoIterator<Item = (&'a str, Yaml)>) -> Yaml {
        Yaml::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    /// Appends this value as a block at `indent` spaces (a map's entries or a list's items,
    /// one per line; a scalar on its own line).
    pub fn emit(&self, out: &mut String, indent: usize) {
        let pad = " ".repeat(indent);
        match self {
            Yaml::Map(entries) if !entries.is_empty() => {
                for (k, v) in entries {
                    out.push_str(&pad);
                    out.push_str(&scalar(k));
                    out.push(':');
                    v.emit_after_key(out, indent);
                }
            }
            Yaml::List(items) if !items.is_empty() => {
                for item in items {
                    let mut sub = String::new();
                    match item {
                        Yaml::Map(e) if !e.is_empty() => item.emit(&mut sub, indent + 2),
                        Yaml::List(e) if !e.is_empty() => item.emit(&mut sub, indent + 2),
                        Yaml::Block(t) if block_ok(t) => {
                            sub.push_str(&" ".repeat(indent + 2));
                            sub.push_str(&block(t, indent + 2));
                        }
                        _ => {
                            sub.push_str(&" ".repeat(indent + 2));
                            sub.push_str(&inline(item));
                            sub.push('\n');
                        }
                    }
                    // The first line's indentation becomes `- `.
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&sub[indent + 2..]);
                }
            }
            _ => {
                out.push_str(&pad);
                out.push_str(&inline(self));
                out.push('\n');
            }
        }
    }

    /// The value of a map entry, after `key:` (nested blocks on the next lines; lists at the
    /// key's own indentation, as kubectl writes them).
    fn emit_after_key(&self, out: &mut String, indent: usize) {
        match self {
            Yaml::Map(e) if !e.is_empty() => {
                out.push('\n');
                self.emit(out, indent + 2);
            }
            Yaml::List(e) if !e.is_empty() => {
                out.push('\n');
                self.emit(out, indent);
            }
            Yaml::Block(t) if block_ok(t) => {
                out.push(' ');
                out.push_str(&block(t, indent + 2));
            }
            _ => {
                out.push(' ');
                out.push_str(&inline(self));
                out.push('\n');
            }
        }
    }
}

/// A value on one line (scalars; empty maps and lists as `{}` / `[]`).
fn inline(v: &Yaml) -> String {
    match v {
        Yaml::Str(s) | Yaml::Block(s) => scalar(s),
        Yaml::Int(i) => i.to_string(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::List(_) => "[]".into(),
        Yaml::Map(_) => "{}".into(),
    }
}

/// A string scalar: plain when unambiguous, else a double-quoted (JSON) literal.
fn scalar(s: &str) -> String {
    const WORDS: [&str; 11] = [
        "y", "n", "yes", "no", "true", "false", "on", "off", "null", "nan", "inf",
    ];
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
        && !WORDS.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

/// Whether `t` reads back exactly from a literal block: not only line breaks, printable (tabs
/// allowed), no carriage returns, and a first non-empty line that does not start with a space
/// (that would need an indentation indicator). Leading empty lines are fine.
fn block_ok(t: &str) -> bool {
    let body = t.trim_end_matches('\n');
    !body.is_empty()
        && !body.trim_start_matches('\n').starts_with(' ')
        && t.chars().all(|c| c == '\n' || c == '\t' || !c.is_control())
        && !t.contains('\u{feff}')
}

/// `|` / `|-` / `|+` and the lines of `t` at `indent` (ends with a newline).
fn block(t: &str, indent: usize) -> String {
    let body = t.trim_end_matches('\n');
    let trailing = t.len() - body.len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let pad = " ".repeat(indent);
    let mut s = format!("|{chomp}\n");
    for line in body.split('\n') {
        if !line.is_empty() {
            s.push_str(&pad);
            s.push_str(line);
        }
        s.push('\n');
    }
    // `|+` keeps the extra line breaks: one per empty line after the body.
    for _ in 1..trailing {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emit(v: &Yaml) -> String {
        let mut s = String::new();
        v.emit(&mut s, 0);
        s
    }

    #[test]
    fn scalars_are_quoted_unless_unambiguous() {
        assert_eq!(scalar("batch/v1"), "batch/v1");
        assert_eq!(scalar("10Gi"), "\"10Gi\"");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("No"), "\"No\"");
        assert_eq!(scalar("4"), "\"4\"");
        assert_eq!(scalar(""), "\"\"");
        assert_eq!(scalar("a: b"), "\"a: b\"");
        assert_eq!(scalar("$(X)/4"), "\"$(X)/4\"");
        assert_eq!(scalar("say \"hi\"\n"), r#""say \"hi\"\n""#);
    }

    #[test]
    fn nested_maps_lists_and_blocks() {
        let v = Yaml::map([
            ("kind", "Job".into()),
            ("n", Yaml::Int(3)),
            ("empty", Yaml::List(vec![])),
            (
                "items",
                Yaml::List(vec![
                    Yaml::map([("name", "a".into()), ("ro", Yaml::Bool(true))]),
                    "plain".into(),
                    Yaml::Block("x\ny\n".into()),
                ]),
            ),
            ("text", Yaml::Block("a = 1\n\n[b]\nc = 2\n".into())),
            ("nonl", Yaml::Block("one line".into())),
            ("extra", Yaml::Block("z\n\n".into())),
            ("spaced", Yaml::Block("  indented".into())),
        ]);
        assert_eq!(
            emit(&v),
            "kind: Job\n\"n\": 3\nempty: []\nitems:\n- name: a\n  ro: true\n- plain\n- |\n  x\n  y\n\
             text: |\n  a = 1\n\n  [b]\n  c = 2\nnonl: |-\n  one line\nextra: |+\n  z\n\n\
             spaced: \"  indented\"\n"
        );
    }

    #[test]
    fn control_characters_force_quoting() {
        assert!(!block_ok("a\r\nb\n"));
        assert!(!block_ok("\n\n"));
        assert!(block_ok("a\tb\n"));
        assert!(block_ok("\n\na\n"));
        assert!(!block_ok("\n  a\n"));
    }
}
